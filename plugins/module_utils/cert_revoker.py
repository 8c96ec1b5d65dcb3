# -*- coding: utf-8 -*-
# Copyright: clientvpn.pki contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Revoking certificates the way ``easyrsa revoke`` does, many names per run.

For each name with an ``issued/<name>.crt`` signed by this CA: its
``index.txt`` row becomes ``R`` with the revocation time and reason, and its
files move to ``revoked/{certs,private,reqs}_by_serial/<SERIAL>.*``. The
still-valid certificates its renewals left behind (``renewed/issued/<name>.crt``
and ``renewed/certs_by_serial/``: same subject, same key) are revoked with it,
so a user who leaves loses every certificate of that name, not only the newest;
another name that shares the common name keeps its own. ``index.txt`` is read
and written once, and no other file is rewritten, however long the database.
"""

from __future__ import annotations

import datetime
import os

from ansible_collections.clientvpn.pki.plugins.module_utils import x509_inspect as inspect
from ansible_collections.clientvpn.pki.plugins.module_utils.easyrsa_index import format_subject, format_time, valid_entry
from ansible_collections.clientvpn.pki.plugins.module_utils.errors import PkiError
from ansible_collections.clientvpn.pki.plugins.module_utils.pki_store import check_name

# RFC 5280 reason codes, spelled as `openssl ca -crl_reason` writes them in index.txt.
REASONS = ("unspecified", "keyCompromise", "CACompromise", "affiliationChanged", "superseded", "cessationOfOperation", "certificateHold")


class CertificateRevoker(object):
    def __init__(self, store, names, reason=None):
        self.names = list(dict.fromkeys(names or []))
        if not self.names:
            raise PkiError("name is empty: give the certificate name(s) to revoke.")
        for name in self.names:
            check_name(name)
        if reason is not None and reason not in REASONS:
            raise PkiError("reason=%s: use one of %s." % (reason, ", ".join(REASONS)))
        self.store = store
        self.reason = reason

    def run(self, check_mode):
        store = self.store
        if not os.path.exists(store.ca_cert) or not store.is_initialised():
            raise PkiError("%s holds no certificate authority: nothing to revoke." % store.root)
        with store.locked(exclusive=not check_mode):
            ca_cert = inspect.load_certificate(store.ca_cert)
            entries = store.read_index()
            now = format_time(datetime.datetime.now(datetime.timezone.utc))
            revocation = now + ("," + self.reason if self.reason else "")
            results, moves = {}, []
            for name in self.names:
                results[name] = self._revoke(name, ca_cert, entries, revocation, moves)
            changed = any(result["action"] == "revoked" for result in results.values())
            if changed and not check_mode:
                for source, destination in moves:
                    store.move(source, destination)
                for serial in (serial for result in results.values() for serial in result["serials"]):
                    if os.path.exists(store.by_serial(serial)):
                        os.unlink(store.by_serial(serial))
                store.write_index(entries)
        return {
            "changed": changed,
            "pki_dir": store.root,
            "certificates": results,
            "warnings": [],
            "diff": {
                "before": dict((name, "valid") for name, result in results.items() if result["action"] == "revoked"),
                "after": dict((name, "revoked") for name, result in results.items() if result["action"] == "revoked"),
            },
        }

    def _revoke(self, name, ca_cert, entries, revocation, moves):
        """Mark the rows (in ``entries``, in place) and plan the file moves for one name."""
        store = self.store
        cert_path = store.cert(name)
        if not os.path.exists(cert_path):
            return {"action": "unchanged", "serials": [], "reason": "no issued/%s.crt: never issued, or already revoked" % name}
        cert = inspect.load_certificate(cert_path)
        if not inspect.is_issued_by(cert, ca_cert):
            raise PkiError(
                "%s was not issued by this CA (issuer %s): it cannot be revoked here. Nothing was changed."
                % (cert_path, cert.issuer.rfc4514_string())
            )
        serial = inspect.serial_hex(cert)
        subject = format_subject(inspect.common_name(cert))
        if not any(entry.serial == serial for entry in entries):
            entries.append(valid_entry(cert.serial_number, inspect.not_after(cert), inspect.common_name(cert)))
        renewed = self._renewed_serials(name, cert, subject, entries)
        serials = []
        for entry in entries:
            if entry.status == "V" and (entry.serial == serial or entry.serial in renewed):
                entry.status, entry.revoked = "R", revocation
                serials.append(entry.serial)
        moves.append((cert_path, store.path("revoked", "certs_by_serial", serial + ".crt")))
        for source, folder, extension in ((store.key(name), "private_by_serial", ".key"), (store.req(name), "reqs_by_serial", ".req")):
            if os.path.exists(source):
                moves.append((source, store.path("revoked", folder, serial + extension)))
        slot = store.renewed_cert(name)
        if os.path.exists(slot):
            moves.append((slot, store.path("revoked", "certs_by_serial", inspect.serial_hex(inspect.load_certificate(slot)) + ".crt")))
        return {"action": "revoked", "serials": serials, "serial": serial, "revocation": revocation}

    def _renewed_serials(self, name, cert, subject, entries):
        """Serials of this name's earlier certificates: the one in its renewed/issued slot, and
        those renewals moved on to renewed/certs_by_serial/ that have the same subject and key
        (a renewal keeps the key; another name with the same CN has its own). Only rows of
        this subject are looked at, so a long index costs nothing here."""
        store = self.store
        slot = store.renewed_cert(name)
        serials = set([inspect.serial_hex(inspect.load_certificate(slot))]) if os.path.exists(slot) else set()
        public_key = inspect.public_key_der(cert.public_key())
        for entry in entries:
            path = store.renewed_by_serial(entry.serial)
            if entry.status == "V" and entry.subject == subject and os.path.exists(path):
                old = inspect.load_certificate(path)
                if inspect.public_key_der(old.public_key()) == public_key:
                    serials.add(entry.serial)
        return serials
