# -*- coding: utf-8 -*-
# Copyright: clientvpn.pki contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Issuing server and client certificates of an easy-rsa PKI, many names per run.

The plans come from ``cert_plan`` (what each name needs); here they are
checked against what must never happen, then carried out. A renewed
certificate's predecessor goes where easy-rsa renew puts it,
``renewed/issued/<name>.crt``; a certificate from another CA is backed up,
with a warning. In an easy-rsa 3.2 PKI with ``inline/``, every certificate
issued gets its inline file, as easy-rsa 3.2 writes it.

A name whose certificate was revoked is refused unless ``reissue_revoked``
asks for it (a name left in a nightly run's list must not come back), and so
is a key this run did not make and cannot trust (owned by another user, or
found in a ``private/`` others could write to): it is never certified
silently. Every refusal happens before the first write.

``index.txt`` and ``serial`` are read once and written once per run, under
the PKI directory lock, so a list of hundreds of names costs one database
rewrite. The rows are written last: a run killed before leaves certificates
without rows, which the next run registers.
"""

from __future__ import annotations

import itertools
import os

from ansible_collections.clientvpn.pki.plugins.module_utils import x509_inspect
from ansible_collections.clientvpn.pki.plugins.module_utils.ca_manager import open_ca
from ansible_collections.clientvpn.pki.plugins.module_utils.cert_plan import NamePlanner, plan_without_ca
from ansible_collections.clientvpn.pki.plugins.module_utils.certificate_facts import CertFacts, KeyFacts
from ansible_collections.clientvpn.pki.plugins.module_utils.cert_revoker import (
    apply_moves,
    describe_completed,
    finish_interrupted_revocations,
    revocation_moves,
    revoked_subjects,
)
from ansible_collections.clientvpn.pki.plugins.module_utils.easyrsa_inline import InlineFiles
from ansible_collections.clientvpn.pki.plugins.module_utils.easyrsa_index import entry_for, format_subject, random_serial
from ansible_collections.clientvpn.pki.plugins.module_utils.errors import PkiError
from ansible_collections.clientvpn.pki.plugins.module_utils.pending import made_by_an_earlier_task
from ansible_collections.clientvpn.pki.plugins.module_utils.safe_folder import FILE_MODE, SECRET_MODE, ParallelWriter
from ansible_collections.clientvpn.pki.plugins.module_utils.verified_cache import VerifiedCache
from ansible_collections.clientvpn.pki.plugins.module_utils.x509_profiles import build_request, generate_keys, key_to_pem, sign_leaf, to_pem


class CertificateIssuer(object):
    def __init__(self, store, specs, renew_before_days=30, ca_passphrase=None, renew=False, reissue_revoked=False, cache_dir=None, report="all"):
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
        self.cache_dir = cache_dir
        self.report = report

    def run(self, check_mode):
        store = self.store
        if made_by_an_earlier_task(store.ca_cert, check_mode):
            return self._result([plan_without_ca(spec, store.ca_cert) for spec in self.specs], [])
        with store.locked(exclusive=not check_mode):
            tidying = store.hygiene()
            changes = tidying.changes
            self.ca_cert, self.ca_key = open_ca(store, self.ca_passphrase)
            entries = store.read_index()
            interrupted = finish_interrupted_revocations(store, entries)
            changes.extend(describe_completed(interrupted))
            rows = dict((entry.serial, entry) for entry in entries)
            self.cache = cache = VerifiedCache(self.cache_dir, store.read(store.ca_cert), check_mode, files=2 * len(self.specs))
            planner = NamePlanner(store, self.ca_cert, self.renew_before_days, self.renew, rows, revoked_subjects(entries), cache)
            plans = [planner.plan(spec) for spec in self.specs]
            self._refuse(plans, entries, tidying.keys_exposed)
            if not check_mode and (changes or any(plan.changed for plan in plans)):
                tidying.apply()
                self._apply(plans, entries, rows, index_changed=bool(interrupted))
            cache.save()
        result = self._result(plans, changes)
        result["warnings"].extend(cache.warnings)
        return result

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
        untrusted = [plan for plan in plans if plan.signs_existing_key and (keys_exposed or self.store.owned_by_others(self.store.key(plan.spec.name)))]
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

    # -- doing ---------------------------------------------------------------------
    def _apply(self, plans, entries, rows, index_changed):
        store = self.store
        taken = set(rows)
        last_serial = None
        inline = InlineFiles(store)
        inline.style()  # found before this run's first certificate changes what issued/ holds
        keyless = [plan for plan in plans if plan.new_key and plan.action not in ("unchanged", "registered")]
        key_maker = generate_keys([plan.spec.key_size for plan in keyless])  # made while the loop below works
        # The key workers fork now, before any writer thread exists (a fork copies no thread).
        fresh_keys = itertools.chain([next(key_maker)], key_maker) if keyless else key_maker
        writer = ParallelWriter(store)
        try:
            last_serial = self._issue_all(plans, entries, taken, inline, fresh_keys, writer)
        finally:
            writer.wait()  # every file written and fsync-ed (or the first error raised) before a row names it
            key_maker.close()  # stops the key workers now, not when garbage collected
        # Rows last (write_index first fsyncs the directories the files were renamed into): a run killed
        # before this leaves certificates without rows, which the next run registers (their keys match,
        # this CA signed them).
        if index_changed or any(plan.action != "unchanged" for plan in plans):
            store.write_index(entries)
        if last_serial is not None:
            store.write_next_serial(last_serial)

    def _issue_all(self, plans, entries, taken, inline, fresh_keys, writer):
        """Sign what each plan needs (files written by ``writer``) and add its rows to ``entries``; the last serial."""
        store = self.store
        last_serial = None
        for plan in plans:
            if plan.action in ("unchanged", "registered"):
                if plan.action == "registered":
                    # a certificate whose row an interrupted run never wrote
                    entries.append(entry_for(plan.cert))
                    self._write_missing(plan.cert, plan.spec.name, inline)
                if plan.key_mode_wrong:
                    store.ensure_mode(store.key(plan.spec.name), SECRET_MODE)
                continue
            if plan.register:
                # a certificate an interrupted run left without its row: recorded before it is replaced
                entries.append(entry_for(plan.cert))
            self._retire(plan)
            cert = self._issue(plan, fresh_keys, random_serial(taken), inline, writer)
            # What the result reports, not the objects: 20,000 certificates and keys held to the end weigh 100 MB.
            plan.issued, plan.key = x509_inspect.facts(cert), None
            entry = entry_for(cert)
            entries.append(entry)
            taken.add(entry.serial)
            last_serial = cert.serial_number
        return last_serial

    def _issue(self, plan, fresh_keys, serial, inline, writer):
        """The name's key (a fresh one, or the one kept), request, certificate, copy by serial and
        inline file, written in that order by ``writer``; returns the certificate. What it writes is
        recorded in the verified cache."""
        store, spec = self.store, plan.spec
        files = []
        if plan.new_key:
            if plan.has_key:
                plan.backups.append(store.backup(store.key(spec.name)))
            plan.key = key = next(fresh_keys)
            key_pem = key_to_pem(key)
            files.append((store.key(spec.name), key_pem, SECRET_MODE))
            self.cache.learn("key", key_pem, KeyFacts.of(key))
        else:
            store.ensure_mode(store.key(spec.name), SECRET_MODE)
        files.append((store.req(spec.name), to_pem(build_request(plan.key, spec.common_name, spec.subject_alt_names, spec.digest)), FILE_MODE))
        cert = sign_leaf(self.ca_cert, self.ca_key, plan.key.public_key(), spec, serial)
        pem = to_pem(cert)
        files.append((store.cert(spec.name), pem, FILE_MODE))
        self.cache.learn("certificate", pem, CertFacts.of(cert, self.ca_cert))
        files.append((store.by_serial(x509_inspect.serial_hex(cert)), pem, FILE_MODE))
        writer.submit(files, then=lambda: [(path, content, FILE_MODE) for path, content in inline.render(spec.name).items()])
        return cert

    def _write_missing(self, cert, name, inline):
        """The files an interrupted run did not write after the certificate (its copy by serial,
        its inline file), before its row is added."""
        store = self.store
        files = dict(inline.render(name))
        files[store.by_serial(x509_inspect.serial_hex(cert))] = to_pem(cert)
        for path, content in files.items():
            if not os.path.exists(path):
                store.ensure_dir(os.path.dirname(path))
                store.write(path, content)

    def _retire(self, plan):
        """Move the certificate being replaced out of issued/, the way easy-rsa renew does."""
        store = self.store
        if plan.cert_facts is None:
            return
        cert_path = store.cert(plan.spec.name)
        if plan.revoked and plan.cert_is_ours:
            self._finish_revocation(plan)
        elif plan.cert_is_ours:
            serial = plan.cert_facts.serial
            # easy-rsa 3.1 renew keeps the old certificate at renewed/issued/<name>.crt (what
            # `easyrsa revoke-renewed <name>` reads); one already there from an earlier renewal
            # moves on to renewed/certs_by_serial/<SERIAL>.crt, so none is lost.
            slot = store.renewed_cert(plan.spec.name)
            if os.path.exists(slot):
                store.move(slot, store.renewed_by_serial(x509_inspect.serial_hex(x509_inspect.load_certificate(slot))))
            store.move(cert_path, slot)
            if not store.layout.keeps_by_serial_copies and os.path.exists(store.by_serial(serial)):
                store.unlink(store.by_serial(serial))
        else:
            plan.backups.append(store.backup(cert_path))

    def _finish_revocation(self, plan):
        """A revoked certificate still in issued/ (its revocation was interrupted): its files go
        where easyrsa revoke puts them, before the name gets its new certificate and key."""
        apply_moves(self.store, revocation_moves(self.store, plan.spec.name, plan.cert_facts.serial))
        plan.key = None

    # -- reporting -------------------------------------------------------------------
    def _result(self, plans, changes):
        """Every name's detail (``report: all``), or only the changed names' (``report: changed``,
        for lists of thousands); ``summary`` counts them all either way."""
        certificates, before, after, summary = {}, {}, {}, {}
        # a closed folder, a removed temp file, a completed revocation: said loudly, not only in `changes`
        warnings = list(changes)
        for plan in plans:
            name = plan.spec.name
            summary[plan.action] = summary.get(plan.action, 0) + 1
            warnings.extend(plan.warnings)
            if self.report == "all" or plan.changed:
                certificates[name] = self._detail(plan)
            if plan.changed:
                before[name] = plan.cert_facts.facts() if plan.cert_facts is not None else {}
                after[name] = plan.issued if plan.issued is not None else {
                    "common_name": plan.spec.common_name,
                    "subject_alt_names": plan.spec.subject_alt_names,
                    "key": "RSA %d" % plan.spec.key_size,
                }
        return {
            "changed": bool(changes) or any(plan.changed for plan in plans),
            "changes": changes,
            "pki_dir": self.store.root,
            "summary": summary,
            "certificates": certificates,
            "warnings": warnings,
            "diff": {"before": before, "after": after},
        }

    def _detail(self, plan):
        store, name = self.store, plan.spec.name
        detail = {
            "action": plan.action,
            "changed": plan.changed,
            "reasons": plan.reason_texts if plan.action != "unchanged" else [],
            "type": plan.spec.cert_type,
            "certificate": store.cert(name),
            "private_key": store.key(name),
            "request": store.req(name),
            "backup_files": plan.backups,
        }
        if plan.issued is not None:
            detail.update(plan.issued)
        elif plan.cert_facts is not None and plan.action in ("unchanged", "registered"):
            detail.update(plan.cert_facts.facts())
        return detail
