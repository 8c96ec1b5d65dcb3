# -*- coding: utf-8 -*-
# Copyright: clientvpn.pki contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The certificate authority of an easy-rsa PKI: create it, adopt it, never lose it.

An existing CA is kept when its key opens, belongs to ``ca.crt`` and has the
requested common name and size. Anything else is refused with what differs,
unless ``force`` asks for a replacement, which first backs up the old CA and
its database.
"""

from __future__ import annotations

import datetime
import os

from ansible_collections.clientvpn.pki.plugins.module_utils import x509_inspect
from ansible_collections.clientvpn.pki.plugins.module_utils.clientvpn_rules import check_common_name, check_days, check_key_size
from ansible_collections.clientvpn.pki.plugins.module_utils.errors import PkiError
from ansible_collections.clientvpn.pki.plugins.module_utils.pki_store import INITIAL_SERIAL
from ansible_collections.clientvpn.pki.plugins.module_utils.safe_folder import SECRET_MODE
from ansible_collections.clientvpn.pki.plugins.module_utils.x509_profiles import build_ca, generate_key, key_to_pem, renew_ca, to_pem

# Past this, the CA's end is near enough to plan a new PKI: say so.
EXPIRY_WARNING_DAYS = 180


def open_ca(store, passphrase):
    """The CA certificate and key that sign, checked to belong together."""
    if not (os.path.exists(store.ca_cert) and os.path.exists(store.ca_key)):
        raise PkiError(
            "%s holds no certificate authority (ca.crt, private/ca.key, index.txt, serial). "
            "Create it first with clientvpn.pki.vpn_ca." % store.root
        )
    store.check_database()
    cert = x509_inspect.load_certificate(store.ca_cert)
    key, dummy = x509_inspect.load_private_key(store.ca_key, passphrase, "ca_passphrase", what="the CA passphrase", role_variable="pki_ca_passphrase")
    if not x509_inspect.key_matches(key, cert):
        raise PkiError(
            "%s does not belong to %s: the CA cannot sign. Restore the matching key, or rebuild the "
            "CA with clientvpn.pki.vpn_ca (force: true). Nothing was changed." % (store.ca_key, store.ca_cert)
        )
    return cert, key


class CertificateAuthority(object):
    def __init__(self, store, common_name, key_size, days, digest, passphrase=None, force=False, renew=False, renew_before_days=0):
        check_common_name("common_name", common_name)
        check_key_size("key_size", key_size)
        check_days("days", days)
        if not 0 <= renew_before_days < days:
            raise PkiError(
                "renew_before_days=%s with days=%s: need 0 <= renew_before_days < days, or every run would renew the CA."
                % (renew_before_days, days)
            )
        self.renew = renew
        self.renew_before_days = renew_before_days
        self.store = store
        self.common_name = common_name
        self.key_size = key_size
        self.days = days
        self.digest = digest
        self.passphrase = passphrase
        self.force = force

    def run(self, check_mode):
        store = self.store
        if not check_mode:
            store.ensure_dir(store.root)
        with store.locked(exclusive=not check_mode):
            tidying = store.hygiene()
            plan = self._plan()
            plan["changes"][:0] = tidying.changes
            if not check_mode:
                tidying.apply()
                self._apply(plan)
        return self._result(plan)

    # -- deciding --------------------------------------------------------------
    def _plan(self):
        store = self.store
        plan = {"action": "unchanged", "changes": store.layout_changes(), "existing": None, "backups": []}
        have_cert, have_key = os.path.exists(store.ca_cert), os.path.exists(store.ca_key)
        if not have_cert and not have_key:
            plan["action"] = "created"
            plan["changes"].append("create the CA %r (RSA %d)" % (self.common_name, self.key_size))
            return plan
        if have_cert and not self.force:  # a replaced CA starts a new database
            store.check_database()
        problems = self._problems(have_cert, have_key, plan)
        if problems:
            if not self.force:
                raise PkiError(
                    "the CA in %s is not the one asked for: %s. Nothing was changed. If that CA is the right "
                    "one, set common_name / key_size / passphrase to match it. To replace it instead, set "
                    "force: true: ca.crt, private/ca.key, index.txt and serial are backed up first, and every "
                    "certificate the old CA issued must be issued again." % (store.root, "; ".join(p.rstrip(".") for p in problems))
                )
            plan["action"] = "replaced"
            plan["changes"].append("replace the CA (%s)" % "; ".join(problems))
            return plan
        if plan["encrypt"]:
            plan["action"] = "encrypted"
            plan["changes"].append("encrypt %s with the given passphrase" % store.ca_key)
        renewal = self._renewal_reason(plan["existing"])
        if renewal:
            plan["action"] = "renewed"
            plan["changes"].append(
                "renew the CA certificate, keeping its key and subject (%s); the old one is kept in %s" % (renewal, store.previous_ca_list)
            )
        if store.mode_of(store.ca_key) != SECRET_MODE:
            plan["changes"].append("set mode 0600 on %s" % store.ca_key)
        return plan

    def _problems(self, have_cert, have_key, plan):
        store = self.store
        plan["encrypt"] = False
        if not have_cert:
            return ["ca.crt is missing but private/ca.key exists"]
        if not have_key:
            return ["private/ca.key is missing but ca.crt exists"]
        # A file that does not parse or a key the passphrase does not open says nothing about
        # whether this is the CA asked for: an error of its own, unless force asks to replace it.
        try:
            cert = x509_inspect.load_certificate(store.ca_cert)
            # Only compared here; a renewal that signs with it loads it again with OpenSSL's RSA check (~35 ms).
            key, encrypted = x509_inspect.load_private_key(store.ca_key, self.passphrase, what="the CA passphrase", role_variable="pki_ca_passphrase",
                                                           check_key=False)
        except PkiError as exc:
            if self.force:
                return [str(exc)]
            raise
        plan["existing"] = cert
        problems = []
        if not x509_inspect.key_matches(key, cert):
            problems.append("private/ca.key does not belong to ca.crt")
        if x509_inspect.common_name(cert) != self.common_name:
            problems.append("its common name is %r, not %r" % (x509_inspect.common_name(cert), self.common_name))
        if x509_inspect.rsa_key_size(cert.public_key()) != self.key_size:
            problems.append("its key is %s, not RSA %d" % (x509_inspect.key_kind(cert.public_key()), self.key_size))
        plan["encrypt"] = bool(self.passphrase) and not encrypted
        plan["key"] = key
        return problems

    def _renewal_reason(self, cert):
        if self.renew:
            return "renew: true"
        if self.renew_before_days and x509_inspect.expires_within(cert, self.renew_before_days):
            return "it expires %s, within renew_before_days=%d" % (x509_inspect.not_after(cert).date(), self.renew_before_days)
        return None

    # -- doing -------------------------------------------------------------------
    def _apply(self, plan):
        store = self.store
        store.ensure_layout()
        action = plan["action"]
        if action == "replaced":
            for path in (store.ca_cert, store.ca_key, store.index, store.serial):
                if os.path.exists(path):
                    plan["backups"].append(store.backup(path))
            # A new CA starts a new database: the old rows belong to the old CA.
            store.write_index([])
            store.write(store.serial, INITIAL_SERIAL.encode())
        if action in ("created", "replaced"):
            key = generate_key(self.key_size)
            plan["new_cert"] = build_ca(key, self.common_name, self.days, self.digest)
            store.write(store.ca_key, key_to_pem(key, self.passphrase), SECRET_MODE)
            store.write(store.ca_cert, to_pem(plan["new_cert"]))
        else:
            if plan["encrypt"]:
                store.write(store.ca_key, key_to_pem(plan["key"], self.passphrase), SECRET_MODE)
            store.ensure_mode(store.ca_key, SECRET_MODE)
        if action == "renewed":
            # The old certificate is kept first: a crash in between leaves it kept and ca.crt unchanged,
            # and the next run renews again (keep_previous_ca adds it once).
            signing_key = x509_inspect.load_private_key(store.ca_key, self.passphrase, what="the CA passphrase", role_variable="pki_ca_passphrase")[0]
            plan["new_cert"] = renew_ca(plan["existing"], signing_key, self.days)
            store.keep_previous_ca(store.read(store.ca_cert))
            store.write(store.ca_cert, to_pem(plan["new_cert"]))

    def _result(self, plan):
        store = self.store
        result = {
            "changed": bool(plan["changes"]),
            "action": plan["action"],
            "changes": plan["changes"],
            "pki_dir": store.root,
            "easyrsa_version": store.layout.version,
            "ca_certificate": store.ca_cert,
            "ca_private_key": store.ca_key,
            "backup_files": plan["backups"],
            "warnings": [],
        }
        before = x509_inspect.facts(plan["existing"]) if plan["existing"] is not None else {}
        if plan.get("new_cert") is not None:
            after = x509_inspect.facts(plan["new_cert"])
        elif plan["action"] in ("created", "replaced"):
            # check mode: what will be made, minus what only signing decides
            after = {"common_name": self.common_name, "key": "RSA %d" % self.key_size, "subject_alt_names": []}
        else:
            after = before
        result.update(after)
        result["diff"] = {"before": before, "after": after}
        not_after = after.get("not_after")
        if not_after:
            remaining = datetime.datetime.fromisoformat(not_after) - datetime.datetime.now(datetime.timezone.utc)
            if remaining < datetime.timedelta(days=EXPIRY_WARNING_DAYS):
                result["warnings"].append(
                    "the CA certificate %s expires on %s: every certificate it signed stops working then. "
                    "Plan a new CA well before." % (store.ca_cert, not_after)
                )
        return result
