# -*- coding: utf-8 -*-
# Copyright: clientvpn.pki contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The staging folder: step 6 of the seed procedure (mkdir custom_folder; cp ...).

All files are compared and copied in one run, so staging hundreds of client
certificates costs one task, not one module start per file.

The files come by name from an easy-rsa PKI (``pki_dir`` and ``names``: ca.crt and
each name's certificate and key, located by PkiStore), or as paths, or both.

The folder is what the operator hands to others, so it must hold only what is
current. A manifest in the folder (``.clientvpn-stage.json``, 0600) records each
file this module staged with the sha256 of what it wrote: ``prune`` and
``remove`` delete only recorded files whose content is still what was staged.
Anything else in the folder (acm-arns.json, files put there by hand, a staged
file edited since) is left alone.
"""

from __future__ import annotations

import json
import os
import stat

from ansible_collections.clientvpn.pki.plugins.module_utils.errors import PkiError
from ansible_collections.clientvpn.pki.plugins.module_utils.names import unique_names
from ansible_collections.clientvpn.pki.plugins.module_utils.pending import made_by_an_earlier_task
from ansible_collections.clientvpn.pki.plugins.module_utils.pki_store import PkiStore
from ansible_collections.clientvpn.pki.plugins.module_utils.safe_folder import SECRET_MODE, SafeFolder, in_parallel
from ansible_collections.clientvpn.pki.plugins.module_utils.verified_cache import FileDigests

CERTIFICATE_MODE = 0o644
MANIFEST = ".clientvpn-stage.json"
MANIFEST_VERSION = 1
# What pki_files may pick from a PKI: ca.crt, issued/<name>.crt, private/<name>.key.
PKI_FILES = ("ca_certificate", "certificate", "private_key")

# Why a file asked for in remove (or due to prune) is still in the folder.
NOT_STAGED = "not staged by vpn_stage: left alone"
ABSENT = "not in the folder"
EDITED = "changed since it was staged: left alone and no longer tracked"
NOT_A_FILE = "no longer a regular file: left alone and no longer tracked"


def _missing(source, target):
    return PkiError("%s does not exist: nothing to stage as %s. Build it first (clientvpn.pki.pki)." % (source, target))


def _lstat(path):
    """os.lstat of ``path``, or None when there is nothing there."""
    try:
        return os.lstat(path)
    except FileNotFoundError:
        return None


def check_file_name(name):
    """A name in ``remove`` must be a file directly in the folder, and not the manifest."""
    if not name or name in (".", "..") or "/" in name or "\\" in name or "\0" in name:
        raise PkiError("remove: %r is not a file name in the staging folder. Give names such as 'bob.example.com.crt'." % name)
    if name == MANIFEST:
        raise PkiError("remove: %s is the staging folder's manifest, not a staged file." % MANIFEST)


def pki_sources(pki_dir, names, pki_files=PKI_FILES, names_file=None):
    """(certificate paths, private key paths) of ``names`` and of the names ``names_file`` lists in the PKI,
    as its layout places them."""
    store = PkiStore(pki_dir)
    names = unique_names(names, option="names", wanted="the certificate names to stage", names_file=names_file) if names or names_file else []
    certificates = [store.ca_cert] if "ca_certificate" in pki_files else []
    if "certificate" in pki_files:
        certificates.extend(store.cert(name) for name in names)
    private_keys = [store.key(name) for name in names] if "private_key" in pki_files else []
    return certificates, private_keys


def from_params(params):
    """vpn_stage's options: the PKI's files by name (pki_dir, names, pki_files), then the paths given."""
    certificates, private_keys = [], []
    if params["pki_dir"]:
        certificates, private_keys = pki_sources(params["pki_dir"], params["names"], params["pki_files"], params["names_file"])
    return StagingFolder(
        params["dest"], certificates + params["certificates"], private_keys + params["private_keys"], prune=params["prune"], remove=params["remove"],
        report=params["report"], cache_dir=params["cache_dir"],
    )


class StagingFolder(object):
    def __init__(self, dest, certificates, private_keys, prune=False, remove=(), report="all", cache_dir=None):
        self.files = {}
        for sources, mode in ((certificates, CERTIFICATE_MODE), (private_keys, SECRET_MODE)):
            for source in sources:
                name = os.path.basename(source)
                if name in self.files and self.files[name][0] != source:
                    raise PkiError(
                        "%s and %s would both be staged as %s: give files distinct names." % (self.files[name][0], source, name)
                    )
                if name == MANIFEST:
                    raise PkiError("%s cannot be staged: %s is the name of the staging folder's manifest." % (source, MANIFEST))
                self.files[name] = (source, mode)
        for name in remove:
            check_file_name(name)
            if name in self.files:
                raise PkiError(
                    "%s is both staged (from %s) and listed in remove: drop it from one of the two." % (name, self.files[name][0])
                )
        self.prune = prune
        self.remove = sorted(set(remove))
        self.report = report
        # Same directory handling and atomic writes as the PKI itself.
        self.folder = SafeFolder(dest)
        # The SHA-256 of files whose stamps did not change, so that they are not read (verified_cache).
        self.cache_dir = cache_dir
        self.digests = None

    def run(self, check_mode):
        if not self.files and not os.path.lexists(self.folder.root):
            # Only removals, from a folder that is not there: nothing to do, and no folder made for it.
            return {"changed": False, "changes": [], "dest": self.folder.root, "files": {}, "removed": [],
                    "left_alone": dict((name, ABSENT) for name in self.remove), "diff": {"before": {}, "after": {}}}
        # Locked like the PKI, so that two runs neither interleave manifest rewrites nor
        # remove each other's temp files.
        with self.folder.locked(exclusive=not check_mode):
            self.digests = FileDigests(self.cache_dir, self.folder.root, check_mode, files=2 * len(self.files) + len(self.remove))
            result = self._run(check_mode)
            self.digests.save()
        result["warnings"].extend(self.digests.warnings)
        return result

    def _run(self, check_mode):
        folder = self.folder
        changes, actions, warnings = folder.prepare_root(check_mode), {}, []
        tidying = folder.hygiene()
        changes.extend(tidying.changes)
        if not check_mode:
            tidying.apply()
        recorded = self._read_manifest(warnings)
        manifest = {}
        for name, (action, digest) in self._stage_all(check_mode):
            actions[name], manifest[name] = action, digest
            if action != "unchanged":
                changes.append("%s %s" % (action, name))

        removed, left_alone = [], {}
        unwanted = set(self.remove) | (set(recorded) if self.prune else set())
        for name in sorted(set(recorded) - set(self.files)):
            if name not in unwanted:
                manifest[name] = recorded[name]  # staged by an earlier run; not ours to judge now
                continue
            outcome = self._remove(name, recorded[name], check_mode)
            if outcome == "removed":
                removed.append(name)
                changes.append("removed %s" % name)
            elif outcome == ABSENT:
                changes.append("forget %s (already gone from the folder)" % name)
            else:
                left_alone[name] = outcome
                warnings.append("%s: %s. Remove it by hand if it must not be handed out." % (folder.path(name), outcome))
        for name in self.remove:
            if name not in recorded:
                left_alone[name] = NOT_STAGED if os.path.lexists(folder.path(name)) else ABSENT

        if manifest or os.path.lexists(folder.path(MANIFEST)):
            action = self._put_manifest(manifest, check_mode)
            if action == "written":
                changes.append("record %d staged file(s) in %s" % (len(manifest), MANIFEST))
            elif action == "chmod":
                changes.append("set mode 0600 on %s" % MANIFEST)
        return {
            "changed": bool(changes),
            "changes": changes,
            "dest": folder.root,
            # report: changed - what was done to the files that changed only (thousands of files otherwise)
            "files": actions if self.report == "all" else dict((name, action) for name, action in actions.items() if action != "unchanged"),
            "removed": removed,
            "left_alone": left_alone,
            "warnings": warnings,
            "diff": {"before": {}, "after": {}},
        }

    def _stage_all(self, check_mode):
        """[(name, (action, sha256))] of every file. Those known by their stamps first, here: they wait on no
        disk, and threads would only take turns at the GIL. The others side by side: a copy waits on its fsync,
        which the file system commits with the others'."""
        files = sorted(self.files.items())
        outcomes = [self._stage(name, source, mode, check_mode, read=False) for name, (source, mode) in files]
        rest = [index for index, outcome in enumerate(outcomes) if outcome is None]
        for index, outcome in zip(rest, in_parallel(lambda index: self._stage(files[index][0], files[index][1][0], files[index][1][1], check_mode), rest)):
            outcomes[index] = outcome
        return zip((name for name, dummy in files), outcomes)

    def _stage(self, name, source, mode, check_mode, read=True):
        """Copy one file; returns (action, sha256 of what the folder then holds); with ``read=False``, None
        instead of reading a file.

        A file whose stamp is the one recorded with its SHA-256 (verified_cache) is not read: a source and
        its staged copy (a regular file, with the mode wanted) both known by stamp, with the same digest,
        are left alone unread. Anything else is read and compared as without a cache."""
        folder = self.folder
        target = folder.path(name)
        if made_by_an_earlier_task(source, check_mode):
            return "copied", None
        source_info = self._source_info(source, target)
        data, digest = None, self.digests.known(source, source_info)
        if digest is None:
            if not read:
                return None
            data, digest = self._read_source(source, source_info, target)
        staged = _lstat(target)
        staged_digest = None
        if staged is not None and stat.S_ISREG(staged.st_mode):
            staged_digest = self.digests.known(target, staged)
            if staged_digest is None and read:
                staged_digest = self.digests.read(target, staged)[1]
        if staged_digest == digest:
            if stat.S_IMODE(staged.st_mode) == mode:
                return "unchanged", digest
            if not check_mode:
                os.chmod(target, mode)
            return "chmod", digest
        if not read:
            return None  # to be copied, or compared by its bytes: the caller's writer threads do it
        # Not there, other bytes, or a link or no regular file at all: exactly as without a cache.
        if data is None:
            data, digest = self._read_source(source, source_info, target)
        action = folder.put(target, data, mode, check_mode)
        return ("copied" if action == "written" else action), digest

    def _source_info(self, source, target):
        try:
            return os.stat(source)
        except FileNotFoundError:
            raise _missing(source, target)

    def _read_source(self, source, info, target):
        """(bytes, SHA-256) of the source, read after its stat ``info``."""
        try:
            return self.digests.read(source, info)
        except (FileNotFoundError, IsADirectoryError):
            raise _missing(source, target)

    def _remove(self, name, staged_sha256, check_mode):
        """Delete a recorded file if it still holds what was staged: 'removed', or why not."""
        path = self.folder.path(name)
        info = _lstat(path)
        if info is None:
            return ABSENT
        if not stat.S_ISREG(info.st_mode):  # a link (lstat does not follow it), a directory...
            return NOT_A_FILE
        if self.digests.digest(path, info) != staged_sha256:
            return EDITED
        if not check_mode:
            self.folder.unlink(path)
        return "removed"

    def _read_manifest(self, warnings):
        """{name: sha256} of what earlier runs staged; empty when there is no (usable) manifest."""
        path = self.folder.path(MANIFEST)
        if not os.path.lexists(path):
            return {}
        if os.path.islink(path) or not os.path.isfile(path):
            raise PkiError("%s is not a regular file. Move it away: vpn_stage keeps its record of staged files there." % path)
        try:
            content = json.loads(self.folder.read(path).decode("utf-8"))
            return dict((str(name), str(entry["sha256"])) for name, entry in content["files"].items())
        except (ValueError, KeyError, TypeError, AttributeError):
            # Nothing recorded means nothing is removed: the safe side. It is rewritten with what is staged now.
            warnings.append("%s is not a vpn_stage manifest: it is rewritten, and files staged before it are no longer pruned." % path)
            return {}

    def _put_manifest(self, manifest, check_mode):
        """Write the manifest (atomically, 0600) unless it already says this: 'written', 'chmod' or 'unchanged'."""
        content = {
            "comment": "Files clientvpn.pki.vpn_stage staged here, with the sha256 of what it wrote; prune and remove delete only these.",
            "version": MANIFEST_VERSION,
            # None: a check run's source that does not exist yet (a real run would record its digest).
            "files": dict((name, {"sha256": digest or "unknown"}) for name, digest in manifest.items()),
        }
        # The files it names (and the removals it no longer names) durable first: their directory's fsync.
        self.folder.sync_dirs()
        return self.folder.put(self.folder.path(MANIFEST), manifest_bytes(content), SECRET_MODE, check_mode)


def manifest_bytes(content):
    """json.dumps(content, indent=2, sort_keys=True) + newline, byte for byte, with the files written
    by the C encoder: the pure-Python one that indent=2 needs takes ~1 s for 40,000 files."""
    files = content["files"]
    head = json.dumps(dict(content, files={}), indent=2, sort_keys=True)
    if not files:
        return (head + "\n").encode("utf-8")
    entries = ",\n".join('    %s: {\n      "sha256": %s\n    }' % (json.dumps(name), json.dumps(files[name]["sha256"])) for name in sorted(files))
    return (head.replace('"files": {}', '"files": {\n%s\n  }' % entries, 1) + "\n").encode("utf-8")
