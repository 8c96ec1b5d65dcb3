# -*- coding: utf-8 -*-
# Copyright: clientvpn.pki contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Server and client certificates of an easy-rsa PKI, many names per run.

For each name the issuer reads what is on disk and decides, in this order:

* keep it (``unchanged``): the key is RSA of the requested size and belongs
  to the certificate, the current CA signed it, CN / SANs / EKU are as asked,
  it is not revoked and does not expire within ``renew_before_days``;
* ``renewed``: only the expiry is due (or ``renew`` asks for it), so the
  key is kept (ACM re-import cannot change the key type or size, and a kept
  key leaves nothing to redistribute) and the old certificate goes where easy-rsa 3.1 puts it, ``renewed/issued/<name>.crt``;
* ``reissued``: anything else differs; the key is kept unless it is missing,
  of the wrong size or belonged to a revoked certificate; a certificate from
  another CA is backed up, with a warning;
* ``created``: nothing was there.

A name whose certificate was revoked is refused unless ``reissue_revoked``
asks for it (a name left in a nightly run's list must not come back), and so
is a key this run did not make and cannot trust (owned by another user, or
found in a ``private/`` others could write to): it is never certified
silently. Every refusal happens before the first write.

``index.txt`` and ``serial`` are read once and written once per run, under
the PKI directory lock, so a list of hundreds of names costs one database
rewrite.
"""

from __future__ import annotations

import os

from ansible_collections.clientvpn.pki.plugins.module_utils import x509_inspect
from ansible_collections.clientvpn.pki.plugins.module_utils.ca_manager import open_ca
from ansible_collections.clientvpn.pki.plugins.module_utils.clientvpn_rules import (
    check_common_name,
    check_days,
    check_key_size,
    check_server_has_domain,
)
from ansible_collections.clientvpn.pki.plugins.module_utils.cert_revoker import (
    apply_moves,
    describe_completed,
    finish_interrupted_revocations,
    revocation_moves,
    revoked_subjects,
)
from ansible_collections.clientvpn.pki.plugins.module_utils.easyrsa_index import format_subject, random_serial, valid_entry
from ansible_collections.clientvpn.pki.plugins.module_utils.errors import PkiError
from ansible_collections.clientvpn.pki.plugins.module_utils.pki_store import SECRET_MODE, check_name
from ansible_collections.clientvpn.pki.plugins.module_utils.x509_profiles import (
    CERT_TYPES,
    build_request,
    generate_keys,
    key_to_pem,
    normalize_san,
    sign_leaf,
    to_pem,
)

_VERB = {"created": "create", "renewed": "renew", "reissued": "reissue"}


class LeafSpec(object):
    """What one name should look like."""

    def __init__(self, name, common_name, subject_alt_names, cert_type, key_size, days, digest, sans_given=True):
        self.name = name
        self.common_name = common_name
        self.subject_alt_names = subject_alt_names
        self.cert_type = cert_type
        self.key_size = key_size
        self.days = days
        self.digest = digest
        # Unset SANs keep what an existing certificate has (as easy-rsa 3.2 renew
        # copies them); the default is only for a certificate made from nothing.
        self.sans_given = sans_given

    def keeping_sans_of(self, cert):
        existing = x509_inspect.subject_alt_names(cert)
        if self.sans_given or not existing:
            return self
        if self.cert_type == "server" and not any(san.startswith("DNS:") for san in existing):
            return self
        return LeafSpec(self.name, self.common_name, existing, self.cert_type, self.key_size, self.days, self.digest)


class NamePlan(object):
    """What will happen to one name, decided before anything is written."""

    def __init__(self, spec):
        self.spec = spec
        self.action = "unchanged"
        self.reasons = []
        self.changes = []
        self.key = None
        self.new_key = False
        self.cert = None
        self.cert_is_ours = False
        self.register = False
        self.backups = []
        self.warnings = []
        self.issued = None
        # serial of the revoked certificate this name had, if any
        self.revoked = None

    @property
    def changed(self):
        return bool(self.changes)


def build_specs(names, cert_type, common_name, subject_alt_names, key_size, days, digest):
    """Validate the module's options and turn them into one LeafSpec per name."""
    if cert_type not in CERT_TYPES:
        raise PkiError("type=%s: use 'server' or 'client'." % cert_type)
    check_key_size("key_size", key_size)
    check_days("days", days)
    unique = list(dict.fromkeys(names or []))
    if not unique:
        raise PkiError("name is empty: give one certificate name or a list of names.")
    if common_name is not None and len(unique) > 1:
        raise PkiError(
            "common_name=%r was given with %d names: each certificate needs its own CN. Leave "
            "common_name unset (each CN is then its name) or use one name per task." % (common_name, len(unique))
        )
    explicit_sans = None if subject_alt_names is None else [normalize_san(san) for san in subject_alt_names]
    specs = []
    for name in unique:
        check_name(name)
        cn = common_name if common_name is not None else name
        check_common_name("common_name", cn, from_name=name if common_name is None else None)
        sans = explicit_sans
        if sans is None:
            # easy-rsa 3.1 gave servers DNS:<CN>; 3.2 dropped it and ACM then refuses them.
            sans = ["DNS:%s" % cn] if cert_type == "server" else []
        if cert_type == "server":
            check_server_has_domain(name, sans)
        specs.append(LeafSpec(name, cn, list(dict.fromkeys(sans)), cert_type, key_size, days, digest, explicit_sans is not None))
    return specs


class CertificateIssuer(object):
    def __init__(self, store, specs, renew_before_days=30, ca_passphrase=None, renew=False, reissue_revoked=False):
        if renew_before_days < 0:
            raise PkiError("renew_before_days=%s must be 0 or more." % renew_before_days)
        too_short = [spec.name for spec in specs if spec.days <= renew_before_days]
        if too_short:
            raise PkiError(
                "renew_before_days=%d is not smaller than days=%d: every run would renew %s. "
                "Lower renew_before_days or raise days." % (renew_before_days, specs[0].days, too_short[0])
            )
        self.store = store
        self.specs = specs
        self.renew_before_days = renew_before_days
        self.ca_passphrase = ca_passphrase
        self.renew = renew
        self.reissue_revoked = reissue_revoked

    def run(self, check_mode):
        store = self.store
        if check_mode and not os.path.exists(store.root):
            # A check run of a whole play: vpn_ca would have created the CA by now.
            return self._result([self._plan_without_ca(spec) for spec in self.specs], [])
        with store.locked(exclusive=not check_mode):
            changes, keys_exposed = store.tidy(check_mode=True)
            self.ca_cert, self.ca_key = open_ca(store, self.ca_passphrase)
            entries = store.read_index()
            interrupted = finish_interrupted_revocations(store, entries)
            changes.extend(describe_completed(interrupted))
            rows = dict((entry.serial, entry) for entry in entries)
            revoked = revoked_subjects(entries)
            plans = [self._plan(spec, rows, revoked) for spec in self.specs]
            self._refuse(plans, entries, keys_exposed)
            if not check_mode and (changes or any(plan.changed for plan in plans)):
                store.tidy(check_mode=False)
                self._apply(plans, entries, rows, index_changed=bool(interrupted))
        return self._result(plans, changes)

    def _refuse(self, plans, entries, keys_exposed):
        """Everything this run must not do, found before the first write."""
        revoked = [plan for plan in plans if plan.revoked and not self.reissue_revoked]
        if revoked:
            raise PkiError(
                "refusing to issue a new certificate to %s: revoked in %s (serial %s). Remove them from the list of "
                "names (pki_clients), or set reissue_revoked: true (role variable pki_reissue_revoked) to give them a "
                "new certificate and key on purpose. Nothing was changed." % (
                    ", ".join(plan.spec.name for plan in revoked), self.store.index, ", ".join(plan.revoked for plan in revoked))
            )
        untrusted = [plan for plan in plans if self._signs_existing_key(plan) and (keys_exposed or self.store.owned_by_others(self.store.key(plan.spec.name)))]
        if untrusted:
            raise PkiError(
                "refusing to certify %s: %s. A key this run did not make may have been planted by someone else. "
                "Check where it came from; move it out of private/ to have a new key made, or, if it is yours, "
                "chown it to this user and chmod 0700 private/. Nothing was changed." % (
                    ", ".join(self.store.key(plan.spec.name) for plan in untrusted),
                    "private/ is writable by other users" if keys_exposed else "it belongs to another user")
            )
        if self.store.unique_subject():
            valid = set(entry.subject for entry in entries if entry.status == "V")
            clashes = [plan.spec.name for plan in plans if plan.action != "unchanged" and format_subject(plan.spec.common_name) in valid]
            if clashes:
                raise PkiError(
                    "index.txt.attr says unique_subject = yes: openssl ca allows one valid certificate per subject, and %s "
                    "already has one, so easyrsa would refuse every later command on this PKI. Revoke the old certificate "
                    "first (state: revoked), or set 'unique_subject = no' in %s (easy-rsa 3.1's default). Nothing was changed."
                    % (", ".join(clashes), self.store.path("index.txt.attr"))
                )

    @staticmethod
    def _signs_existing_key(plan):
        return plan.action in ("created", "renewed", "reissued") and not plan.new_key and plan.key is not None

    # -- deciding ----------------------------------------------------------------
    def _plan(self, spec, rows, revoked):
        store, plan = self.store, NamePlan(spec)
        key_path, cert_path = store.key(spec.name), store.cert(spec.name)
        if os.path.exists(key_path):
            plan.key, encrypted = x509_inspect.load_private_key(key_path, None, passphrase_field=None, check_key=False)
            have = x509_inspect.rsa_key_size(plan.key.public_key())
            if have != spec.key_size:
                plan.new_key = True
                plan.reasons.append("key is %s, wanted RSA %d" % (x509_inspect.key_kind(plan.key.public_key()), spec.key_size))
        else:
            plan.new_key = True
            plan.reasons.append("no private key")
        expiring = False
        if os.path.exists(cert_path):
            plan.cert = x509_inspect.load_certificate(cert_path)
            plan.spec = spec = spec.keeping_sans_of(plan.cert)
            plan.cert_is_ours = x509_inspect.is_issued_by(plan.cert, self.ca_cert)
            row = rows.get(x509_inspect.serial_hex(plan.cert))
            if not plan.cert_is_ours:
                issuer = plan.cert.issuer.rfc4514_string()
                plan.reasons.append("signed by another CA (issuer %s; ca.crt does not verify it)" % issuer)
                plan.warnings.append(
                    "%s was signed by another CA (issuer %s; ca.crt does not verify it): it is reissued by this CA "
                    "and the old file kept as a backup." % (cert_path, issuer)
                )
            elif row is not None and row.status == "R":
                plan.new_key, plan.revoked = True, row.serial
                plan.reasons.append("certificate %s is revoked in index.txt" % row.serial)
            elif row is None:
                plan.register = True
            if plan.key is not None and not x509_inspect.key_matches(plan.key, plan.cert):
                plan.reasons.append("certificate does not belong to private/%s.key" % spec.name)
            plan.reasons.extend(x509_inspect.leaf_differences(plan.cert, spec))
            if x509_inspect.expires_within(plan.cert, self.renew_before_days):
                expiring = True
                plan.reasons.append(
                    "expires %s, within renew_before_days=%d" % (x509_inspect.not_after(plan.cert).isoformat(), self.renew_before_days)
                )
            elif self.renew:
                expiring = True
                plan.reasons.append("renew: true")
        else:
            plan.reasons.append("no certificate")
            earlier = revoked.get(format_subject(spec.common_name))
            if earlier:
                plan.new_key, plan.revoked = True, earlier[-1]
                plan.reasons.append("certificate %s of this name was revoked" % earlier[-1])

        if not plan.reasons:
            if plan.register:
                plan.action = "registered"
                plan.changes.append("add %s to index.txt" % spec.name)
        elif plan.cert is None:
            plan.action = "created"
        elif expiring and len(plan.reasons) == 1:
            plan.action = "renewed"
        else:
            plan.action = "reissued"
        if plan.action in ("created", "renewed", "reissued"):
            plan.changes.append("%s %s: %s" % (_VERB[plan.action], spec.name, "; ".join(plan.reasons)))
        if not plan.new_key and os.path.exists(key_path) and store.mode_of(key_path) != SECRET_MODE:
            plan.changes.append("set mode 0600 on %s" % key_path)
        return plan

    def _plan_without_ca(self, spec):
        plan = NamePlan(spec)
        plan.action = "created"
        plan.reasons = ["no certificate authority yet in %s" % self.store.root]
        plan.changes.append("create %s: %s" % (spec.name, plan.reasons[0]))
        return plan

    # -- doing ---------------------------------------------------------------------
    def _apply(self, plans, entries, rows, index_changed):
        store = self.store
        taken = set(rows)
        last_serial = None
        keyless = [plan for plan in plans if plan.new_key and plan.action not in ("unchanged", "registered")]
        fresh_keys = generate_keys([plan.spec.key_size for plan in keyless])  # made while the loop below works
        for plan in plans:
            spec = plan.spec
            if plan.action in ("unchanged", "registered"):
                if plan.action == "registered":
                    # a certificate whose row an interrupted run never wrote
                    entries.append(valid_entry(plan.cert.serial_number, x509_inspect.not_after(plan.cert), x509_inspect.common_name(plan.cert)))
                    if not os.path.exists(store.by_serial(x509_inspect.serial_hex(plan.cert))):
                        store.write(store.by_serial(x509_inspect.serial_hex(plan.cert)), to_pem(plan.cert))
                if store.mode_of(store.key(spec.name)) != SECRET_MODE:
                    os.chmod(store.key(spec.name), SECRET_MODE)
                continue
            if plan.register:
                # a certificate an interrupted run left without its row: recorded before it is replaced
                entries.append(valid_entry(plan.cert.serial_number, x509_inspect.not_after(plan.cert), x509_inspect.common_name(plan.cert)))
            self._retire(plan)
            if plan.new_key:
                if plan.key is not None:
                    plan.backups.append(store.backup(store.key(spec.name)))
                plan.key = next(fresh_keys)
                store.write(store.key(spec.name), key_to_pem(plan.key), SECRET_MODE)
            elif store.mode_of(store.key(spec.name)) != SECRET_MODE:
                os.chmod(store.key(spec.name), SECRET_MODE)
            request = build_request(plan.key, spec.common_name, spec.subject_alt_names, spec.digest)
            store.write(store.req(spec.name), to_pem(request))
            serial = random_serial(taken)
            cert = sign_leaf(self.ca_cert, self.ca_key, plan.key.public_key(), spec, serial)
            pem = to_pem(cert)
            store.write(store.cert(spec.name), pem)
            store.write(store.by_serial(x509_inspect.serial_hex(cert)), pem)
            entry = valid_entry(serial, x509_inspect.not_after(cert), spec.common_name)
            entries.append(entry)
            taken.add(entry.serial)
            last_serial = serial
            plan.issued = cert
        fresh_keys.close()  # stops the worker pool now, not when garbage collected
        # Rows last: a run killed before this leaves certificates without rows, which the
        # next run registers (their keys match, this CA signed them).
        if index_changed or any(plan.action != "unchanged" for plan in plans):
            store.write_index(entries)
        if last_serial is not None:
            store.write_next_serial(last_serial)

    def _retire(self, plan):
        """Move the certificate being replaced out of issued/, the way easy-rsa renew does."""
        store = self.store
        if plan.cert is None:
            return
        cert_path = store.cert(plan.spec.name)
        if plan.revoked and plan.cert_is_ours:
            self._finish_revocation(plan)
        elif plan.cert_is_ours:
            serial = x509_inspect.serial_hex(plan.cert)
            # easy-rsa 3.1 renew keeps the old certificate at renewed/issued/<name>.crt (what
            # `easyrsa revoke-renewed <name>` reads); one already there from an earlier renewal
            # moves on to renewed/certs_by_serial/<SERIAL>.crt, so none is lost.
            slot = store.renewed_cert(plan.spec.name)
            if os.path.exists(slot):
                store.move(slot, store.renewed_by_serial(x509_inspect.serial_hex(x509_inspect.load_certificate(slot))))
            store.move(cert_path, slot)
            if os.path.exists(store.by_serial(serial)):
                os.unlink(store.by_serial(serial))
        else:
            plan.backups.append(store.backup(cert_path))

    def _finish_revocation(self, plan):
        """A revoked certificate still in issued/ (its revocation was interrupted): its files go
        where easyrsa revoke puts them, before the name gets its new certificate and key."""
        apply_moves(self.store, revocation_moves(self.store, plan.spec.name, x509_inspect.serial_hex(plan.cert)))
        plan.key = None

    # -- reporting -------------------------------------------------------------------
    def _result(self, plans, changes):
        store = self.store
        certificates, before, after = {}, {}, {}
        # a closed folder, a removed temp file, a completed revocation: said loudly, not only in `changes`
        warnings = list(changes)
        for plan in plans:
            name = plan.spec.name
            cert = plan.issued or plan.cert
            entry = {
                "action": plan.action,
                "changed": plan.changed,
                "reasons": plan.reasons if plan.action != "unchanged" else [],
                "type": plan.spec.cert_type,
                "certificate": store.cert(name),
                "private_key": store.key(name),
                "request": store.req(name),
                "backup_files": plan.backups,
            }
            if cert is not None and (plan.issued is not None or plan.action in ("unchanged", "registered")):
                entry.update(x509_inspect.facts(cert))
            certificates[name] = entry
            warnings.extend(plan.warnings)
            if plan.changed:
                before[name] = x509_inspect.facts(plan.cert) if plan.cert is not None else {}
                after[name] = x509_inspect.facts(plan.issued) if plan.issued is not None else {
                    "common_name": plan.spec.common_name,
                    "subject_alt_names": plan.spec.subject_alt_names,
                    "key": "RSA %d" % plan.spec.key_size,
                }
        return {
            "changed": bool(changes) or any(plan.changed for plan in plans),
            "changes": changes,
            "pki_dir": store.root,
            "certificates": certificates,
            "warnings": warnings,
            "diff": {"before": before, "after": after},
        }
