# -*- coding: utf-8 -*-
# Copyright: clientvpn.pki contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The CA's certificate revocation list: ``crl.pem`` and ``crl.der`` from ``index.txt``.

A new CRL is signed only when the revoked set in ``index.txt`` differs from
the one in ``crl.pem``, or when ``crl.pem`` is within ``renew_before_days``
of its nextUpdate: OpenVPN (and so Client VPN) refuses every client once the
CRL has expired, so its nextUpdate is reported for monitoring.
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
from ansible_collections.clientvpn.pki.plugins.module_utils.ca_manager import open_ca
from ansible_collections.clientvpn.pki.plugins.module_utils.clientvpn_rules import CLIENT_VPN_MAX_CRL_ENTRIES, check_days
from ansible_collections.clientvpn.pki.plugins.module_utils.easyrsa_index import REVOCATION_REASONS, format_serial, parse_time
from ansible_collections.clientvpn.pki.plugins.module_utils.errors import PkiError
from ansible_collections.clientvpn.pki.plugins.module_utils.safe_folder import FILE_MODE
from ansible_collections.clientvpn.pki.plugins.module_utils.x509_profiles import digest_of

# index.txt's spelling of a reason, from the name of cryptography's ReasonFlags member.
_INDEX_REASON = dict((flag, reason) for reason, flag in REVOCATION_REASONS.items())


def revoked_set(entries):
    """{serial (int): (revocation time, reason or None)} from the R rows of index.txt."""
    revoked = {}
    for entry in entries:
        if entry.status == "R":
            when, sep, reason = entry.revoked.partition(",")
            revoked[int(entry.serial, 16)] = (parse_time(when), reason or None)
    return revoked


def crl_revoked_set(crl):
    revoked = {}
    for item in crl:
        try:
            reason = item.extensions.get_extension_for_class(x509.CRLReason).value.reason
            reason = _INDEX_REASON[reason.name]
        except x509.ExtensionNotFound:
            reason = None
        revoked[item.serial_number] = (item.revocation_date_utc, reason)
    return revoked


class CrlPublisher(object):
    def __init__(self, store, days=180, renew_before_days=30, digest="sha256", ca_passphrase=None):
        # days < 1 fails this first rule, whose message names both options; check_days adds the upper limit.
        if not 0 <= renew_before_days < days:
            raise PkiError("days=%s and renew_before_days=%s: need days >= 1 and 0 <= renew_before_days < days." % (days, renew_before_days))
        check_days("days", days)
        self.store = store
        self.days = days
        self.renew_before_days = renew_before_days
        self.digest = digest
        self.ca_passphrase = ca_passphrase
        self.pem_path = store.path("crl.pem")
        self.der_path = store.path("crl.der")

    def run(self, check_mode):
        store = self.store
        with store.locked(exclusive=not check_mode):
            tidying = store.hygiene()
            ca_cert, ca_key = open_ca(store, self.ca_passphrase)
            if not check_mode:
                tidying.apply()
            wanted = revoked_set(store.read_index())
            current = self._current(ca_cert)
            reasons = self._reasons(current, wanted)
            crl = current
            if reasons:
                crl = None if check_mode else self._sign(ca_cert, ca_key, wanted, current)
                if crl is not None:
                    store.write(self.pem_path, crl.public_bytes(serialization.Encoding.PEM))
                    store.write(self.der_path, crl.public_bytes(serialization.Encoding.DER))
            elif os.path.exists(self.der_path) and store.put(
                self.der_path, current.public_bytes(serialization.Encoding.DER), FILE_MODE, check_mode
            ) != "unchanged":
                # crl.der is derived from crl.pem: a stale one is brought in step. A missing one is
                # left missing while crl.pem is current (easy-rsa 3.1 and 3.2.0 write none).
                reasons.append("crl.der is not crl.pem in DER form")
        return self._result(crl, wanted, tidying.changes + reasons)

    def _current(self, ca_cert):
        if not os.path.exists(self.pem_path):
            return None
        with open(self.pem_path, "rb") as handle:
            data = handle.read()
        try:
            crl = x509.load_pem_x509_crl(data)
        except ValueError:
            return None  # unreadable: replaced below (it was ours to write)
        if crl.issuer != ca_cert.subject or not crl.is_signature_valid(ca_cert.public_key()):
            return None
        if x509_inspect.names_other_ca_serial(crl, ca_cert):
            # easy-rsa's gen-crl names the CA certificate's serial: after a CA renewal OpenSSL finds
            # no CRL for any client with it (docs/ca-renewal.md); signed again, keyid only.
            return None
        return crl

    def _reasons(self, current, wanted):
        if current is None:
            return ["no valid crl.pem signed by this CA"]
        reasons = []
        if crl_revoked_set(current) != wanted:
            reasons.append("the revoked certificates in index.txt changed")
        remaining = current.next_update_utc - datetime.datetime.now(datetime.timezone.utc)
        if remaining < datetime.timedelta(days=self.renew_before_days):
            reasons.append("nextUpdate %s is within renew_before_days=%d" % (current.next_update_utc.isoformat(), self.renew_before_days))
        return reasons

    def _sign(self, ca_cert, ca_key, wanted, current):
        now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
        number = 1
        if current is not None:
            try:
                number = current.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number + 1
            except x509.ExtensionNotFound:
                pass
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(ca_cert.subject)
            .last_update(now)
            .next_update(now + datetime.timedelta(days=self.days))
            .add_extension(x509.CRLNumber(number), critical=False)
        )
        try:
            ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
            builder = builder.add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False)
        except x509.ExtensionNotFound:
            pass
        for serial, (when, reason) in sorted(wanted.items()):
            item = x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(when)
            if reason:
                item = item.add_extension(x509.CRLReason(getattr(x509.ReasonFlags, REVOCATION_REASONS[reason])), critical=False)
            builder = builder.add_revoked_certificate(item.build())
        return builder.sign(ca_key, digest_of(self.digest))

    def _result(self, crl, wanted, reasons):
        """``crl`` is the CRL now on disk, or None when check mode only predicts a new one."""
        result = {
            "changed": bool(reasons),
            "reasons": reasons,
            "crl": self.pem_path,
            "crl_der": self.der_path,
            "revoked_count": len(wanted),
            "revoked_serials": sorted(format_serial(serial) for serial in wanted),
            "warnings": [],
            "diff": {"before": {}, "after": {"revoked_count": len(wanted)}},
        }
        if crl is not None:
            result["this_update"] = crl.last_update_utc.isoformat()
            result["next_update"] = crl.next_update_utc.isoformat()
        if len(wanted) > CLIENT_VPN_MAX_CRL_ENTRIES:
            result["warnings"].append(
                "the CRL lists %d certificates; an AWS Client VPN endpoint accepts at most %d. Start a new CA "
                "(and reissue) before importing it." % (len(wanted), CLIENT_VPN_MAX_CRL_ENTRIES)
            )
        return result
