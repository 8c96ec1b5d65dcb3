# -*- coding: utf-8 -*-
# Copyright: clientvpn.pki contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Revoking certificates the way ``easyrsa revoke`` does, many names per run.

For each name with an ``issued/<name>.crt`` signed by this CA: its
``index.txt`` row becomes ``R`` with the revocation time and reason, and its
files move to ``revoked/{certs,private,reqs}_by_serial/<SERIAL>.*`` (easy-rsa
3.2 also removes its inline files, and keeps ``certs_by_serial/``). The
still-valid certificates its renewals left behind (``renewed/issued/<name>.crt``,
3.2's ``expired/<name>.crt``, and ``renewed/certs_by_serial/``: same subject,
same key) are revoked with it,
so a user who leaves loses every certificate of that name, not only the newest;
another name that shares the common name keeps its own. ``index.txt`` is read
and written once, and no other file is rewritten, however long the database.

Crash safety: ``index.txt`` is the truth and is written first (as
``openssl ca -revoke`` does before easy-rsa moves files); the files move after
it, the certificate last. A run killed at any instant leaves either a ``V``
row with everything in place (nothing happened), or an ``R`` row whose
``issued/<name>.crt`` is still there: the next run finds it and completes the
moves. A ``V`` row whose certificate already sits in ``revoked/`` (left by an
older release, which moved files first, or by hand) is made ``R`` by every
run, and reported.
"""

from __future__ import annotations

import datetime
import os

from ansible_collections.clientvpn.pki.plugins.module_utils import x509_inspect
from ansible_collections.clientvpn.pki.plugins.module_utils.ca_manager import open_ca
from ansible_collections.clientvpn.pki.plugins.module_utils.easyrsa_inline import InlineFiles
from ansible_collections.clientvpn.pki.plugins.module_utils.easyrsa_index import REVOCATION_REASONS, entry_for, format_subject, format_time, oneline_subject
from ansible_collections.clientvpn.pki.plugins.module_utils.errors import PkiError
from ansible_collections.clientvpn.pki.plugins.module_utils.names import unique_names
from ansible_collections.clientvpn.pki.plugins.module_utils.safe_folder import SECRET_MODE

# The reasons vpn_cert's reason option accepts, spelled as index.txt spells them.
REASONS = tuple(REVOCATION_REASONS)


def now_as_revocation_time(reason=None):
    now = format_time(datetime.datetime.now(datetime.timezone.utc))
    return now + ("," + reason if reason else "")


def finish_interrupted_revocations(store, entries):
    """Mark ``R`` (in ``entries``, in place) every ``V`` row whose certificate was already
    moved into ``revoked/certs_by_serial/``: a revocation whose index write never happened.
    Returns the rows it completed."""
    folder = store.path("revoked", "certs_by_serial")
    try:
        moved = set(name[:-4] for name in os.listdir(folder) if name.endswith(".crt"))
    except FileNotFoundError:
        return []
    completed = []
    for entry in entries:
        if entry.status == "V" and entry.serial in moved:
            entry.status, entry.revoked = "R", now_as_revocation_time()
            completed.append(entry)
    return completed


def describe_completed(entries):
    return [
        "completed an interrupted revocation: %s (serial %s) was already in revoked/certs_by_serial/ but "
        "index.txt still said valid; it is now revoked" % (entry.subject, entry.serial)
        for entry in entries
    ]


def revocation_moves(store, name, serial):
    """The file moves of revoking ``name`` (certificate ``serial``) as easyrsa revoke makes them, in
    crash-safe order: the certificate last, since while issued/<name>.crt is there a re-run finds
    its R row. A destination of None removes the file: the inline files (easy-rsa 3.2) and, in a
    3.1 PKI, the certificate's certs_by_serial copy (3.2 keeps it)."""
    moves = [(path, None) for path in InlineFiles(store).removed_paths(name)]
    if not store.layout.keeps_by_serial_copies:
        moves.append((store.by_serial(serial), None))
    moves.append((store.key(name), store.path("revoked", "private_by_serial", serial + ".key")))
    moves.append((store.req(name), store.path("revoked", "reqs_by_serial", serial + ".req")))
    for slot in store.earlier_cert_slots(name):
        if os.path.exists(slot):
            moves.append((slot, store.path("revoked", "certs_by_serial", x509_inspect.serial_hex(x509_inspect.load_certificate(slot)) + ".crt")))
    moves.append((store.cert(name), store.path("revoked", "certs_by_serial", serial + ".crt")))
    return moves


def apply_moves(store, moves):
    for source, destination in moves:
        if not os.path.exists(source):
            continue  # moved by an interrupted run
        if destination is None:
            store.unlink(source)
        else:
            store.move(source, destination, SECRET_MODE)


def revoked_subjects(entries):
    """{subject: [serials]} of the revoked rows."""
    found = {}
    for entry in entries:
        if entry.status == "R":
            found.setdefault(entry.subject, []).append(entry.serial)
    return found


class CertificateRevoker(object):
    def __init__(self, store, names, reason=None, ca_passphrase=None, names_file=None):
        self.names = unique_names(names, wanted="the certificate name(s) to revoke", names_file=names_file)
        if reason is not None and reason not in REASONS:
            raise PkiError("reason=%s: use one of %s." % (reason, ", ".join(REASONS)))
        self.store = store
        self.reason = reason
        self.ca_passphrase = ca_passphrase

    def run(self, check_mode):
        store = self.store
        if not os.path.exists(store.ca_cert):
            raise PkiError("%s holds no certificate authority: nothing to revoke." % store.root)
        with store.locked(exclusive=not check_mode):
            tidying = store.hygiene()
            changes = tidying.changes
            # Every precondition before the first write: the CA key must open (the CRL that
            # follows needs it), so a wrong passphrase fails here, not after index.txt changed.
            ca_cert, dummy = open_ca(store, self.ca_passphrase)
            entries = store.read_index()
            completed_rows = finish_interrupted_revocations(store, entries)
            revocation = now_as_revocation_time(self.reason)
            results, moves = {}, []
            for name in self.names:
                results[name] = self._revoke(name, ca_cert, entries, revocation, moves)
            self._refuse_unknown(results, entries, set(entry.serial for entry in completed_rows))
            index_changed = bool(completed_rows) or any(result["action"] == "revoked" for result in results.values())
            interrupted = describe_completed(completed_rows)
            changes.extend(interrupted)
            changes.extend("%s %s" % (result["action"], name) for name, result in results.items() if result["action"] in ("revoked", "completed"))
            if changes and not check_mode:
                tidying.apply()
                if index_changed:
                    store.write_index(entries)
                apply_moves(store, moves)
        done = dict((name, "revoked") for name, result in results.items() if result["action"] in ("revoked", "completed"))
        return {
            "changed": bool(changes),
            "changes": changes,
            "pki_dir": store.root,
            "certificates": results,
            "warnings": interrupted + [
                "completed the interrupted revocation of %s: %s" % (name, result["reason"])
                for name, result in results.items() if result["action"] == "completed"
            ],
            "diff": {"before": dict((name, "valid") for name in done), "after": done},
        }

    def _revoke(self, name, ca_cert, entries, revocation, moves):
        """Mark the rows (in ``entries``, in place) and plan the file moves for one name."""
        store = self.store
        cert_path = store.cert(name)
        if not os.path.exists(cert_path):
            return {"action": "unknown", "serials": []}
        cert = x509_inspect.load_certificate(cert_path)
        if not x509_inspect.is_issued_by(cert, ca_cert):
            raise PkiError(
                "%s was not issued by this CA (issuer %s): it cannot be revoked here. Nothing was changed."
                % (cert_path, cert.issuer.rfc4514_string())
            )
        serial = x509_inspect.serial_hex(cert)
        subject = oneline_subject(cert.subject)
        row = next((entry for entry in entries if entry.serial == serial), None)
        if row is None:
            row = entry_for(cert)
            entries.append(row)
        if row.status == "R":
            # index.txt says revoked but the files never moved: a run killed half-way.
            result = {"action": "completed", "serials": [serial], "serial": serial, "revocation": row.revoked,
                      "reason": "index.txt already said revoked; its files are moved to revoked/ now"}
        else:
            renewed = self._renewed_serials(name, cert, subject, entries)
            serials = []
            for entry in entries:
                if entry.status == "V" and (entry.serial == serial or entry.serial in renewed):
                    entry.status, entry.revoked = "R", revocation
                    serials.append(entry.serial)
            result = {"action": "revoked", "serials": serials, "serial": serial, "revocation": revocation}
        moves.extend(revocation_moves(store, name, serial))
        return result

    def _refuse_unknown(self, results, entries, just_completed):
        """A name without issued/<name>.crt is fine only when its certificate is already revoked:
        anything else is a typo or a name this PKI never issued, and must not end green."""
        revoked = revoked_subjects(entries)
        unknown = []
        for name, result in results.items():
            if result["action"] != "unknown":
                continue
            serials = revoked.get(format_subject(name))
            if serials and just_completed.intersection(serials):
                result.update(action="completed", serials=sorted(just_completed.intersection(serials)),
                              reason="its files were already in revoked/; index.txt now says revoked")
            elif serials:
                result.update(action="unchanged", serials=[], reason="already revoked (serial %s)" % ", ".join(serials))
            else:
                unknown.append(name)
        if unknown:
            raise PkiError(
                "cannot revoke %s: no issued/<name>.crt and no revoked certificate with that common name in %s. "
                "Check the spelling (names are file names in issued/). Nothing was changed."
                % (", ".join(repr(name) for name in unknown), self.store.index)
            )

    def _renewed_serials(self, name, cert, subject, entries):
        """Serials of this name's earlier certificates: those in its renewed/issued and expired
        slots, and those renewals moved on to renewed/certs_by_serial/ that have the same subject
        and key (a renewal keeps the key; another name with the same CN has its own). Only rows
        of this subject are looked at, so a long index costs nothing here."""
        store = self.store
        serials = set(
            x509_inspect.serial_hex(x509_inspect.load_certificate(slot)) for slot in store.earlier_cert_slots(name) if os.path.exists(slot)
        )
        public_key = x509_inspect.public_key_der(cert.public_key())
        for entry in entries:
            if entry.status != "V" or entry.subject != subject:
                continue
            path = store.renewed_by_serial(entry.serial)
            if os.path.exists(path):
                old = x509_inspect.load_certificate(path)
                if x509_inspect.public_key_der(old.public_key()) == public_key:
                    serials.add(entry.serial)
        return serials
