# -*- coding: utf-8 -*-
# Copyright: clientvpn.pki contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A PKI's health, read without writing anything: what expires when, what is out of
step, and for each problem the date and the fix.

The outages a Client VPN operator suffers are dates nobody watched: the CRL's
nextUpdate (an expired CRL refuses every connection), the server certificate,
the CA. Each is a ``problem`` once it is within its threshold (days), with a
severity: ``critical`` stops connections when it happens (the health playbook
fails on it, so AWX notifies), ``warning`` is work to plan.
"""

from __future__ import annotations

import datetime
import os

try:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
except ImportError:  # pragma: no cover - reported by the modules
    pass

from ansible_collections.clientvpn.pki.plugins.module_utils import x509_inspect
from ansible_collections.clientvpn.pki.plugins.module_utils.acm import recorded_copies
from ansible_collections.clientvpn.pki.plugins.module_utils.certificate_facts import CertFacts
from ansible_collections.clientvpn.pki.plugins.module_utils.clientvpn_rules import CLIENT_VPN_MAX_CRL_ENTRIES
from ansible_collections.clientvpn.pki.plugins.module_utils.crl_manager import crl_revoked_set, revoked_set
from ansible_collections.clientvpn.pki.plugins.module_utils.easyrsa_index import parse_time
from ansible_collections.clientvpn.pki.plugins.module_utils.errors import PkiError
from ansible_collections.clientvpn.pki.plugins.module_utils.pki_store import PkiStore
from ansible_collections.clientvpn.pki.plugins.module_utils.verified_cache import VerifiedCache
from ansible_collections.clientvpn.pki.plugins.module_utils.x509_profiles import extended_key_usage

# Days before a date that make it a problem (module options of vpn_pki_info).
DEFAULT_THRESHOLDS = {"ca": 180, "server": 30, "crl": 14, "client": 30}
CRL_WARNING_ENTRIES = CLIENT_VPN_MAX_CRL_ENTRIES * 9 // 10


def _iso(moment):
    return moment.isoformat() if moment is not None else None


class PkiHealth(object):
    """Reads one PKI (a ``PkiStore``) under a shared lock; ``report()`` is the whole picture."""

    def __init__(self, store, thresholds=None, now=None, profiles_dir=None, cache_dir=None):
        self.store = store
        self.profiles_dir = profiles_dir
        self.cache_dir = cache_dir
        self.cache = None
        self.thresholds = dict(DEFAULT_THRESHOLDS, **(thresholds or {}))
        for what, days in self.thresholds.items():
            if days is None or days < 0:
                raise PkiError("%s_expiry_days=%s: give a number of days, 0 or more." % (what, days))
        self.now = now or datetime.datetime.now(datetime.timezone.utc)
        self.problems = []

    def days_left(self, moment):
        return (moment - self.now).days if moment is not None else None

    def report(self, check_mode=True):
        """The whole picture; the verified cache is written only when ``check_mode`` is false."""
        store = self.store
        if not os.path.exists(store.ca_cert):
            raise PkiError("%s holds no certificate authority (ca.crt): nothing to report. Check pki_dir." % store.root)
        with store.locked(exclusive=False):
            store.check_database()
            ca_bytes = store.read(store.ca_cert)
            ca_cert = x509_inspect.load_certificate(store.ca_cert, data=ca_bytes)
            entries = store.read_index()
            self.cache = VerifiedCache(self.cache_dir, ca_bytes, check_mode, files=len(entries))
            ca = self._ca(ca_cert)
            named = self._named(ca_cert)
            certificates = self._certificates(entries, named, ca_cert)
            self._on_previous_ca(ca_cert, named)
            profiles = self.profiles(self.profiles_dir, ca_cert) if self.profiles_dir else {}
            crl = self._crl(ca_cert, entries)
            self.cache.save()
        return {
            "pki_dir": store.root,
            "checked_at": self.now.isoformat(),
            "easyrsa_version": store.layout.version,
            "thresholds": self.thresholds,
            "ca": ca,
            "certificates": certificates,
            "crl": crl,
            "acm": {},
            "profiles": profiles,
            "problems": self.problems,
            "summary": self.summary(certificates),
            "warnings": self.cache.warnings,
        }

    def add_acm(self, report, copies):
        """ACM's copies (acm.recorded_copies) into the report, with their problems."""
        report["acm"] = copies
        for name, copy in copies.items():
            if not copy["found"]:
                self.problem("acm_missing", "critical", copy["certificate_arn"], None,
                             "the ACM certificate recorded for %s no longer exists" % name,
                             "import it again (ansible-playbook clientvpn.pki.mutual_auth), and point the endpoint at the new ARN")
            elif not copy["same_as_disk"]:
                self.problem("acm_differs", "critical", copy["certificate_arn"], parse_time_iso(copy["not_after"]),
                             "ACM holds serial %s for %s, not the certificate and chain on disk" % (copy["serial"], name),
                             "re-import it into the same ARN: ansible-playbook clientvpn.pki.mutual_auth (or renew_server)")
        report["summary"] = self.summary(report["certificates"])

    def summary(self, certificates):
        expired = [cert for cert in certificates if cert["status"] == "E" or (cert["status"] == "V" and cert["days_left"] < 0)]
        valid = [cert for cert in certificates if cert["status"] == "V" and cert["days_left"] >= 0]
        return {
            "valid": len(valid),
            "revoked": sum(1 for cert in certificates if cert["status"] == "R"),
            "expired": len(expired),
            "expiring": sum(1 for cert in valid if cert["days_left"] <= self.thresholds[cert["type"] if cert["type"] == "server" else "client"]),
            "problems": len(self.problems),
            "critical": sum(1 for problem in self.problems if problem["severity"] == "critical"),
        }

    def problem(self, code, severity, what, moment, message, fix):
        self.problems.append({
            "code": code, "severity": severity, "object": what, "date": _iso(moment), "days_left": self.days_left(moment),
            "message": message, "fix": fix,
        })

    # -- the CA ------------------------------------------------------------------------
    def _ca(self, ca_cert):
        not_after = x509_inspect.not_after(ca_cert)
        previous = [dict(x509_inspect.facts(cert), days_left=self.days_left(x509_inspect.not_after(cert)))
                    for cert in self.store.previous_ca_certs()]
        if self.days_left(not_after) <= self.thresholds["ca"]:
            self.problem(
                "ca_expiring", "critical", self.store.ca_cert, not_after,
                "the CA certificate expires on %s: every certificate it signed stops working then" % not_after.date(),
                "renew the CA, keeping its key: ansible-playbook clientvpn.pki.renew_ca (docs/ca-renewal.md)",
            )
        return dict(x509_inspect.facts(ca_cert), days_left=self.days_left(not_after), previous=previous)

    def _on_previous_ca(self, ca_cert, named):
        """Valid certificates in issued/ whose authorityKeyIdentifier names a CA certificate a renewal
        replaced: they stop working when it expires (vpn_cert renews them on its next run)."""
        stale = []
        ca_serial = x509_inspect.serial_hex(ca_cert)
        for name, folder, facts in named.values():
            if folder == "issued" and facts.names_other_ca_serial(ca_serial) and facts.issued_by_ca:
                stale.append(name)
        if stale:
            self.problem("certificates_on_previous_ca", "warning", "%d certificate(s)" % len(stale), None,
                         "%s name(s) the CA certificate a renewal replaced: they stop working when it expires" % ", ".join(sorted(stale)[:5]),
                         "run clientvpn.pki.mutual_auth (it renews them with their keys), then hand out their new profiles")

    # -- client profiles ---------------------------------------------------------------
    def profiles(self, folder, ca_cert):
        """{name: {"has_current_ca": bool, "ca_not_after": date its newest CA certificate expires}} of the
        .ovpn files in ``folder``; those without the current CA certificate are a problem."""
        current = ca_cert.public_bytes(serialization.Encoding.DER)
        found, outdated = {}, []
        for filename in sorted(os.listdir(folder)) if os.path.isdir(folder) else []:
            if not filename.endswith(".ovpn"):
                continue
            text = self.store.read(os.path.join(folder, filename))
            block = text[text.find(b"<ca>"):text.find(b"</ca>")] if b"<ca>" in text else b""
            try:
                cas = x509.load_pem_x509_certificates(block) if block else []
            except ValueError:
                cas = []
            anchors = [x509_inspect.not_after(cert) for cert in cas]
            entry = {"has_current_ca": any(cert.public_bytes(serialization.Encoding.DER) == current for cert in cas),
                     "ca_not_after": _iso(max(anchors)) if anchors else None}
            found[filename[:-5]] = entry
            if not entry["has_current_ca"]:
                outdated.append((filename[:-5], max(anchors) if anchors else None))
        if outdated:
            soonest = min((when for name, when in outdated if when is not None), default=None)
            self.problem("profiles_outdated", "critical" if soonest is not None and self.days_left(soonest) <= self.thresholds["ca"] else "warning",
                         folder, soonest,
                         "%d profile(s) do not carry the current CA certificate (%s): they stop connecting when the CA "
                         "certificate they trust expires" % (len(outdated), ", ".join(name for name, when in outdated[:5])),
                         "write them again (clientvpn.pki.client_profiles) and hand them out before that date")
        return found

    # -- the certificates in index.txt ---------------------------------------------------
    def _facts(self, path, ca_cert):
        """CertFacts of a certificate file, from the cache when its bytes were seen before."""
        return self.cache.certificate(path, lambda data: CertFacts.of(x509_inspect.load_certificate(path, data=data), ca_cert))

    def _named(self, ca_cert):
        """{serial: (name, folder, CertFacts)} of the certificates kept under a name: issued/, and the
        earlier ones renew (renewed/issued/) and 3.2's expire (expired/) left."""
        found, unreadable = {}, []
        for folder in ("expired", "renewed/issued", "issued"):
            path = self.store.path(*folder.split("/"))
            for filename in sorted(os.listdir(path)) if os.path.isdir(path) else []:
                if filename.endswith(".crt"):
                    try:
                        facts = self._facts(os.path.join(path, filename), ca_cert)
                    except PkiError:  # reported, not fatal: the report is most needed when things are broken
                        unreadable.append(os.path.join(folder, filename))
                        continue
                    found[facts.serial] = (filename[:-4], folder, facts)
        if unreadable:
            self.problem("certificate_unreadable", "critical", "%d file(s)" % len(unreadable), None,
                         "%s is not a readable PEM certificate" % ", ".join(unreadable[:5]),
                         "restore it from a backup, or move it out of the PKI so that clientvpn.pki.vpn_cert issues it again")
        return found

    def _by_serial(self, serial, ca_cert):
        """(folder, CertFacts) of a certificate kept only by its serial, or (None, None)."""
        for folder, path in (("certs_by_serial", self.store.by_serial(serial)), ("renewed/certs_by_serial", self.store.renewed_by_serial(serial)),
                             ("revoked/certs_by_serial", self.store.path("revoked", "certs_by_serial", serial + ".crt"))):
            facts = self._facts(path, ca_cert)  # None when there is no such file
            if facts is not None:
                return folder, facts
        return None, None

    def _certificates(self, entries, named, ca_cert):
        certificates = []
        for entry in entries:
            name, folder, cert = named.get(entry.serial, (None, None, None))
            if cert is None:
                folder, cert = self._by_serial(entry.serial, ca_cert)
            not_after = parse_time(entry.expires)
            certificates.append({
                "name": name,
                "common_name": cert.common_name if cert is not None else entry.subject,
                "type": _type_of(cert),
                "status": entry.status,
                "serial": entry.serial,
                "not_after": _iso(not_after),
                "days_left": self.days_left(not_after),
                "revoked_at": _iso(parse_time(entry.revoked.split(",")[0])) if entry.status == "R" else None,
                "key": cert.key if cert is not None else None,
                "folder": folder,
                "current": folder == "issued",
                "files_present": folder == "issued" and os.path.exists(self.store.key(name)),
            })
        self._certificate_problems(certificates)
        return sorted(certificates, key=lambda cert: cert["not_after"])

    def _certificate_problems(self, certificates):
        live = [cert for cert in certificates if cert["status"] == "V"]
        for cert in live:
            if cert["type"] == "server" and cert["current"] and cert["days_left"] <= self.thresholds["server"]:
                self.problem(
                    "server_expiring", "critical", self.store.cert(cert["name"]), parse_time_iso(cert["not_after"]),
                    "the server certificate %s expires on %s: the endpoint refuses every connection then"
                    % (cert["name"], cert["not_after"][:10]),
                    "renew it into the same ACM ARN: ansible-playbook clientvpn.pki.renew_server",
                )
        clients = [cert for cert in live if cert["type"] != "server" and cert["current"] and 0 <= cert["days_left"] <= self.thresholds["client"]]
        if clients:
            first = min(clients, key=lambda cert: cert["days_left"])
            self.problem(
                "clients_expiring", "warning", "%d client certificate(s)" % len(clients), parse_time_iso(first["not_after"]),
                "%d client certificate(s) expire within %d days, the first %s on %s"
                % (len(clients), self.thresholds["client"], first["name"] or first["common_name"], first["not_after"][:10]),
                "run clientvpn.pki.mutual_auth with them in pki_clients: it renews certificates within pki_renew_before_days; "
                "then hand out the new profiles",
            )
        self._missing_files(live)

    def _missing_files(self, live):
        missing = [cert for cert in live if cert["days_left"] >= 0 and cert["folder"] is None]
        if missing:
            self.problem(
                "certificate_file_missing", "warning", "%d row(s) of index.txt" % len(missing), None,
                "%d valid row(s) of index.txt have no certificate file anywhere in the PKI (serial %s)"
                % (len(missing), ", ".join(cert["serial"] for cert in missing[:5]) + (", ..." if len(missing) > 5 else "")),
                "restore the files from a backup; a certificate that may still be in use and cannot be found cannot be "
                "revoked by file: plan a new CA if it matters",
            )

    # -- the CRL ---------------------------------------------------------------------------
    def _crl(self, ca_cert, entries):
        path = self.store.path("crl.pem")
        wanted = revoked_set(entries)
        if not os.path.exists(path):
            if wanted:
                self.problem("crl_missing", "critical", path, None,
                             "%d certificate(s) are revoked in index.txt but there is no crl.pem: the endpoint accepts them" % len(wanted),
                             "publish the CRL: ansible-playbook clientvpn.pki.revoke_client")
            return {"present": False, "entries": 0, "this_update": None, "next_update": None, "days_left": None, "matches_index": not wanted}
        try:
            crl = x509.load_pem_x509_crl(self.store.read(path))
        except ValueError as exc:
            self.problem("crl_unreadable", "critical", path, None, "crl.pem is not a readable PEM CRL (%s)" % exc,
                         "sign it again: ansible-playbook clientvpn.pki.revoke_client")
            return {"present": True, "entries": 0, "this_update": None, "next_update": None, "days_left": None, "matches_index": False}
        listed = crl_revoked_set(crl)
        matches = set(listed) == set(wanted) and crl.issuer == ca_cert.subject and crl.is_signature_valid(ca_cert.public_key())
        self._crl_problems(path, crl, len(listed), matches)
        return {"present": True, "entries": len(listed), "this_update": _iso(crl.last_update_utc), "next_update": _iso(crl.next_update_utc),
                "days_left": self.days_left(crl.next_update_utc), "matches_index": matches}

    def _crl_problems(self, path, crl, entries, matches):
        if self.days_left(crl.next_update_utc) <= self.thresholds["crl"]:
            self.problem("crl_expiring", "critical", path, crl.next_update_utc,
                         "the CRL's nextUpdate is %s: after it the endpoint refuses every connection" % crl.next_update_utc.date(),
                         "re-sign it: ansible-playbook clientvpn.pki.revoke_client (it re-signs a CRL within crl_renew_before_days), "
                         "and schedule it nightly (docs/awx.md)")
        if not matches:
            self.problem("crl_out_of_date", "critical", path, crl.last_update_utc,
                         "crl.pem does not list exactly the revoked rows of index.txt (or this CA did not sign it)",
                         "publish the CRL: ansible-playbook clientvpn.pki.revoke_client")
        if entries > CRL_WARNING_ENTRIES:
            self.problem("crl_too_large", "critical" if entries > CLIENT_VPN_MAX_CRL_ENTRIES else "warning", path, None,
                         "the CRL lists %d certificates; Client VPN takes at most %d" % (entries, CLIENT_VPN_MAX_CRL_ENTRIES),
                         "plan a new CA before the CRL reaches the limit: revoked certificates stay listed until they expire")


class HealthCheck(object):
    """vpn_pki_info's backend: the PKI's report, then ACM's copies when ``connect`` (aws.connector) is given."""

    def __init__(self, pki_dir, thresholds, connect=None, profiles_dir=None, cache_dir=None):
        self.health = PkiHealth(PkiStore(pki_dir), thresholds, profiles_dir=profiles_dir, cache_dir=cache_dir)
        self.connect = connect

    def run(self, check_mode):
        report = self.health.report(check_mode)
        if self.connect is not None:
            self.health.add_acm(report, recorded_copies(self.connect(), self.health.store))
        return dict(report, changed=False)


def parse_time_iso(text):
    return datetime.datetime.fromisoformat(text)


def _type_of(facts):
    usages = facts.extended_key_usages if facts is not None else []
    for cert_type in ("server", "client"):
        if extended_key_usage(cert_type).dotted_string in usages:
            return cert_type
    return "unknown"
