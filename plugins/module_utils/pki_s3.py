# -*- coding: utf-8 -*-
# Copyright: clientvpn.pki contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A PKI kept in S3, worked on in a local folder (``vpn_pki_s3``): pull (lock, download,
decrypt), the other modules on the folder, push (compare-and-swap, encrypt, upload what
changed, release the lock), or release alone.

Everything that can be refused is refused before the first write, to S3 or to disk:
the folder, the bucket and prefix, the keys' encryption, the lock. ``changed`` speaks of
the PKI (files written locally by a pull, objects written in S3 by a push); what was
done with the lock is in ``lock``.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import os

from ansible_collections.clientvpn.pki.plugins.module_utils import s3_sync
from ansible_collections.clientvpn.pki.plugins.module_utils.errors import PkiError
from ansible_collections.clientvpn.pki.plugins.module_utils.kms_envelope import SCOPE_CA_KEY, SUFFIX, Envelopes
from ansible_collections.clientvpn.pki.plugins.module_utils.s3_lock import LOCK_NAME, LeaseLock, default_owner
from ansible_collections.clientvpn.pki.plugins.module_utils.s3_objects import Conflict, RequestCounter, S3Prefix
from ansible_collections.clientvpn.pki.plugins.module_utils.safe_folder import SafeFolder

# Names listed in the result, at most (the counts are always complete).
MAX_LISTED = 100
DOWNLOADS_AT_ONCE = 10


def from_params(params, connect_s3, connect_kms):
    return PkiS3(params, connect_s3, connect_kms)


class PkiS3(object):
    def __init__(self, params, connect_s3, connect_kms):
        self.params = params
        self.counter = RequestCounter()
        self.folder = SafeFolder(params["pki_dir"], what="pki_dir")
        self.objects = S3Prefix(connect_s3, params["bucket"], params["prefix"], self.counter)
        self.lock = LeaseLock(self.objects, params.get("lock_owner") or default_owner(), params["lock_ttl_seconds"])
        self.envelopes = Envelopes(lambda: self.counter.watch(connect_kms()), params.get("kms_key_id"), self.objects.bucket, self.objects.prefix)
        self.warnings = []

    def run(self, check_mode):
        action = {"pull": self.pull, "push": self.push, "release": self.release}[self.params["state"]]
        result = action(check_mode)
        result.update(state=self.params["state"], location=self.objects.url, aws_requests=self.counter.summary(), warnings=self.warnings)
        return result

    # -- pull ------------------------------------------------------------------
    def pull(self, check_mode):
        state = self._pull_target()
        base = state["base"] if state else {}
        first_page = self.objects.list(max_keys=1000)
        first_page.pop(LOCK_NAME, None)
        if first_page and not s3_sync.looks_like_pki(first_page):
            raise PkiError("%s holds objects (%s, ...) but no PKI: none of %s. Point prefix at a PKI, or at an empty prefix to start "
                           "one. Nothing was written." % (self.objects.url, ", ".join(sorted(first_page)[:3]), ", ".join(s3_sync.PKI_MARKS)))
        if state:
            self._refuse_local_changes(base)
        if check_mode:
            downloads, removals = s3_sync.plan_pull(self._remote(), base)
            return self._pull_result(downloads, removals, {"status": "would be acquired" if self.params["lock"] else "not taken"})
        lock_info, own_lock = None, (state or {}).get("lock")
        if self.params["lock"]:
            lock_info, warnings = self.lock.acquire(self.params["lock_wait_seconds"], own_etag=own_lock["etag"] if own_lock else None)
            self.warnings.extend(warnings)
        try:
            return self._pull_locked(state, lock_info)
        except BaseException:
            if lock_info and lock_info["status"] != "renewed":
                with contextlib.suppress(PkiError):  # the error that stopped the pull is the one to report
                    self.lock.release(lock_info["etag"])
            raise

    def _pull_target(self):
        """The working copy's state when pki_dir is one of this bucket and prefix; None when it is empty or missing."""
        root = self.folder.root
        if not os.path.isdir(root) or not os.listdir(root):
            return None
        state = s3_sync.load_state(self.folder)
        if state is None:
            raise PkiError("pki_dir %s holds files but is no working copy (it has no %s). Give an empty or missing folder: a pull "
                           "makes it the working copy. Nothing was written." % (root, s3_sync.STATE_FILE))
        if (state["bucket"], state["prefix"]) != (self.objects.bucket, self.objects.prefix):
            raise PkiError("pki_dir %s is the working copy of s3://%s/%s, not of %s. Give another pki_dir, or the bucket and prefix "
                           "it was pulled from. Nothing was written." % (root, state["bucket"], state["prefix"], self.objects.url))
        return state

    def _refuse_local_changes(self, base):
        changes = s3_sync.local_changes(s3_sync.scan(self.folder.root), base)
        if changes:
            raise PkiError("the working copy %s has changes that were not pushed (%s). Push them (state=push), or remove the folder "
                           "to drop them, then pull. Nothing was written." % (self.folder.root, ", ".join(changes[:5])))

    def _remote(self):
        remote = self.objects.list()
        remote.pop(LOCK_NAME, None)
        s3_sync.check_remote(remote, self.objects.url)
        return remote

    def _pull_locked(self, state, lock_info):
        state = state or s3_sync.new_state(self.objects.bucket, self.objects.prefix)
        remote = self._remote()
        downloads, removals = s3_sync.plan_pull(remote, state["base"])
        # Ten at a time (botocore's connection pool): one by one, a PKI of 1,000 clients is 4,000 round trips in a row.
        with concurrent.futures.ThreadPoolExecutor(max_workers=DOWNLOADS_AT_ONCE) as pool:
            plains = list(pool.map(lambda name: self._download(name, remote[name], state["base"]), downloads))
        contents = dict((s3_sync.entry_name(name), plain) for name, plain in zip(downloads, plains))
        with self.folder.locked():
            s3_sync.write_entries(self.folder, contents, [s3_sync.entry_name(name) for name in removals])
            for name in removals:
                del state["base"][name]
            if lock_info:
                state["lock"] = dict((key, lock_info[key]) for key in ("owner", "etag", "acquired_at", "expires_at", "ttl"))
            s3_sync.save_state(self.folder, state)
        return self._pull_result(downloads, removals, self._lock_result(lock_info) if lock_info else {"status": "not taken"})

    def _download(self, name, info, base):
        """One object's plain content (decrypted in memory), recorded in the base."""
        if name.endswith("/"):
            base[name] = {"etag": info.etag, "size": 0, "sha256": s3_sync.EMPTY_SHA256}
            return b""
        got = self.objects.get(name)
        if got is None:
            raise PkiError("%s%s went away during the pull: something writes there without the lock. Find it, then retry. "
                           "Nothing was written." % (self.objects.url, name))
        data, etag = got[0], got[1]
        plain = self.envelopes.decrypt(s3_sync.entry_name(name), data, self.objects.url + name) if name.endswith(SUFFIX) else data
        base[name] = {"etag": etag, "size": len(data), "sha256": s3_sync.sha256(plain)}
        return plain

    def _pull_result(self, downloads, removals, lock):
        pulled = [s3_sync.entry_name(name) for name in downloads]
        removed = [s3_sync.entry_name(name) for name in removals]
        return dict(changed=bool(pulled or removed), pulled=pulled[:MAX_LISTED], removed=removed[:MAX_LISTED],
                    files=dict(pulled=len(pulled), removed=len(removed)), lock=lock)

    # -- push ------------------------------------------------------------------
    def push(self, check_mode):
        state = s3_sync.load_state(self.folder)
        if state is None and check_mode:
            self.warnings.append("%s is no working copy yet (a pull in check mode writes none): nothing to compare." % self.folder.root)
            return self._push_result([], [], {"status": "not held"})
        if state is None or (state["bucket"], state["prefix"]) != (self.objects.bucket, self.objects.prefix):
            raise PkiError("pki_dir %s is no working copy of %s: pull into it first (state=pull). Nothing was pushed."
                           % (self.folder.root, self.objects.url))
        with self.folder.locked():
            local = s3_sync.scan(self.folder.root)
            if "index.txt" not in local:
                raise PkiError("pki_dir %s holds no index.txt: it is not a PKI, and pushing it would empty %s. Nothing was pushed."
                               % (self.folder.root, self.objects.url))
            uploads, deletes = s3_sync.plan_push(local, state["base"], self._stored_as)
            if uploads or deletes:
                self._check_push(state, check_mode)
            if check_mode:
                return self._push_result(uploads, deletes, {"status": "would be released" if self.params["release_lock"] else "kept"})
            if uploads or deletes:
                self._transfer(state, uploads, deletes)
            lock = self._release_after_push(state)
            s3_sync.save_state(self.folder, state)
        return self._push_result(uploads, deletes, lock)

    def _stored_as(self, name, scope):
        """The object's name of a working copy's file: ``.kms`` when it is to be encrypted; refusals of plaintext keys."""
        if scope is None:
            return name
        encrypt = scope == SCOPE_CA_KEY or self.params["encrypt_private_keys"]
        if encrypt and self.params.get("kms_key_id"):
            return name + SUFFIX
        if scope == SCOPE_CA_KEY and not self.params["allow_plaintext_ca_key"]:
            raise PkiError("kms_key_id is not set, so the CA key %s would be stored in S3 in plaintext. Set kms_key_id (a symmetric "
                           "KMS key: docs/pki-in-s3.md), or allow_plaintext_ca_key=true if the bucket alone may guard it. "
                           "Nothing was pushed." % name)
        if encrypt:
            raise PkiError("kms_key_id is not set, so the private key %s cannot be encrypted (encrypt_private_keys=true). Set "
                           "kms_key_id, or encrypt_private_keys=false to keep the other private keys in plaintext. Nothing was pushed." % name)
        return name

    def _check_push(self, state, check_mode):
        """Refuse a push that must not happen: a working copy without the lock, S3 changed since the pull (compare-and-swap)."""
        if not state.get("lock") and not check_mode:  # a check run pulls without it; the real run takes it
            raise PkiError("the working copy %s holds no lock (pulled with lock=false, or released by an earlier push): it may not "
                           "change %s. Pull again into an empty folder and redo the change. Nothing was pushed." % (self.folder.root, self.objects.url))
        if not check_mode:
            # the lease renewed first: proof that the lock is still ours, and time for the upload. Under the owner the
            # pull wrote (the AWX job, pki_s3_lock_owner), not this process's host:pid: a job killed in its push is
            # named by it in the next job's messages.
            self.lock.owner = self.params.get("lock_owner") or state["lock"].get("owner") or self.lock.owner
            state["lock"]["etag"], state["lock"]["expires_at"] = self.lock.renew(state["lock"]["etag"], state["lock"]["acquired_at"])
            s3_sync.save_state(self.folder, state)
        changes = s3_sync.remote_changes(state["base"], self._remote())
        if changes:
            raise PkiError("%s changed since this working copy was pulled (%s%s): another run wrote without the lock, or after this one "
                           "lost it. Nothing was pushed. Pull again into an empty folder and redo the change."
                           % (self.objects.url, ", ".join(changes[:5]), ", ..." if len(changes) > 5 else ""))

    def _transfer(self, state, uploads, deletes):
        """Upload, then delete, each write conditional on what the base says S3 holds; the base follows each write."""
        base = state["base"]
        self.envelopes.prepare(scope for obj, name, scope in uploads if obj.endswith(SUFFIX))
        try:
            for obj, name, scope in uploads:
                data = b"" if name.endswith("/") else self.folder.read(self.folder.path(name))
                body = self.envelopes.encrypt(scope, name, data) if obj.endswith(SUFFIX) else data
                previous = base.get(obj)
                etag = self._conditional(self.objects.put, obj, body, if_match=previous["etag"] if previous else None, create_only=not previous)
                base[obj] = {"etag": etag, "size": len(body), "sha256": s3_sync.sha256(data)}
            for obj in deletes:
                self._conditional(self.objects.delete, obj, if_match=base[obj]["etag"])
                del base[obj]
        finally:
            s3_sync.save_state(self.folder, state)

    def _conditional(self, write, obj, *args, **kwargs):
        try:
            return write(obj, *args, **kwargs)
        except Conflict:
            raise PkiError("%s%s changed in S3 during this push: another run writes without the lock. The push stopped there; "
                           "the objects written before it are recorded in the working copy. Find that writer, then pull again into "
                           "an empty folder and redo the change." % (self.objects.url, obj))

    def _release_after_push(self, state):
        if not state.get("lock"):
            return {"status": "not held"}
        if not self.params["release_lock"]:
            return dict(self._lock_result(state["lock"]), status="kept")
        return self._release(state)

    def _push_result(self, uploads, deletes, lock):
        uploaded = [name for obj, name, scope in uploads]
        return dict(changed=bool(uploads or deletes), uploaded=uploaded[:MAX_LISTED], deleted=deletes[:MAX_LISTED],
                    files=dict(uploaded=len(uploaded), deleted=len(deletes)), lock=lock)

    # -- the lock ----------------------------------------------------------------
    def release(self, check_mode):
        state = s3_sync.load_state(self.folder)
        if not state or not state.get("lock"):
            return dict(changed=False, lock={"status": "not held"})
        if check_mode:
            return dict(changed=True, lock=dict(self._lock_result(state["lock"]), status="would be released"))
        with self.folder.locked():
            lock = self._release(state)
            s3_sync.save_state(self.folder, state)
        return dict(changed=lock["status"] == "released", lock=lock)

    def _release(self, state):
        status = self.lock.release(state["lock"]["etag"])
        if status == "taken over":
            self.warnings.append("the lock %s%s was another run's already (ours had expired): left alone" % (self.objects.url, LOCK_NAME))
        lock = dict(self._lock_result(state["lock"]), status=status)
        state["lock"] = None
        return lock

    @staticmethod
    def _lock_result(lock):
        return dict((key, lock.get(key)) for key in ("owner", "acquired_at", "expires_at", "ttl", "status", "waited_seconds", "taken_over_from")
                    if key in lock)
