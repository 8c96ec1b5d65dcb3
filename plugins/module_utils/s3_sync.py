# -*- coding: utf-8 -*-
# Copyright: clientvpn.pki contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The working copy of a PKI kept in S3: what the folder holds, what was pulled (the
base), and what a pull or a push must transfer.

Names are paths relative to the PKI, ``dir/`` for a folder (kept in S3 as an empty
"folder" object, so the empty folders of a PKI come back too). A private key is kept as
``<path>.kms`` when encrypted (kms_envelope). The base, in ``<pki_dir>/.clientvpn-s3.json``
(0600, never pushed), maps each object pulled or pushed to its ETag and the SHA-256 of
its plain content: a push compares the folder with it (what to upload, what to delete)
and S3 with it (whether another run wrote in between: then nothing is pushed).

Order of a push: folders, files in the order the modules write them on disk
(``FILE_PHASES``), then the database (``DATABASE_ORDER``), then deletions; so a push that
dies half-way leaves S3 as a crash leaves a disk - files without their rows, which the
next run picks up - never a row without its files, a certificate without its key, nor a
serial twice.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import stat

from ansible_collections.clientvpn.pki.plugins.module_utils.errors import PkiError
from ansible_collections.clientvpn.pki.plugins.module_utils.kms_envelope import SCOPE_CA_KEY, SCOPE_PRIVATE_KEYS, SUFFIX
from ansible_collections.clientvpn.pki.plugins.module_utils.s3_objects import safe_name
from ansible_collections.clientvpn.pki.plugins.module_utils.safe_folder import FILE_MODE, TEMP_PREFIX

STATE_FILE = ".clientvpn-s3.json"
STATE_FORMAT = "clientvpn.pki s3 working copy"
STATE_VERSION = 1
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
CA_KEY = "private/ca.key"
KEY_FOLDERS = ("private/", "revoked/private_by_serial/", "renewed/private_by_serial/", "inline/private/")
# Uploaded last, in this order: serial before the index, so a row is never there without its serial having moved on.
DATABASE_ORDER = ("index.txt.attr.old", "index.txt.old", "serial.old", "index.txt.attr", "serial", "index.txt")
# Files go up in the order the modules write them on disk, so that a push cut anywhere leaves what a crash can
# leave on disk, which the next run completes: where a replaced file is kept (renewed/, revoked/, expired/,
# expired-ca.list, a backup "<file>.<pid>.<date>~") before the file is overwritten; the private key, then its
# request, then its certificate (a certificate whose key never arrived would be registered as valid and then
# replaced, its key lost); the copies of the certificate (certs_by_serial/, inline/) and the rest last.
KEPT_FOLDERS = ("renewed/", "revoked/", "expired/")
KEPT_FILES = ("expired-ca.list",)
FILE_PHASES = (("private/",), ("reqs/",), ("issued/", "ca.crt"))
# What the first page of a listing of a PKI holds (a prefix without any is not a PKI).
PKI_MARKS = ("index.txt", "ca.crt", "serial", "private/", "issued/", "certs_by_serial/", "reqs/", "revoked/")


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def secret_scope(name, data):
    """Which data key encrypts this file: the CA key (and its backups), any other private key
    (by folder, or by content: easy-rsa 3.2's inline bundles), or None (not secret)."""
    if name.endswith("/"):
        return None
    if name == CA_KEY or name.startswith(CA_KEY + "."):
        return SCOPE_CA_KEY
    if name.startswith(KEY_FOLDERS) or b"PRIVATE KEY-----" in data:
        return SCOPE_PRIVATE_KEYS
    return None


def entry_name(object_name):
    """The working copy's name of an object: without the .kms of an encrypted key."""
    return object_name[:-len(SUFFIX)] if object_name.endswith(SUFFIX) else object_name


def scan(root):
    """{name: (sha256, scope)} of every folder and file of the working copy but its state and temp files."""
    found = {}
    for directory, dirs, files in os.walk(root):
        relative = os.path.relpath(directory, root)
        relative = "" if relative == "." else relative + "/"
        for name in dirs + files:
            path = os.path.join(directory, name)
            info = os.lstat(path)
            if name.startswith(TEMP_PREFIX) or (not relative and name == STATE_FILE):
                continue
            if not (stat.S_ISDIR(info.st_mode) or stat.S_ISREG(info.st_mode)):
                raise PkiError("%s is not a plain file or folder (a link?): a working copy holds only those. Remove it, or "
                               "give pki_dir a folder made by a pull. Nothing was pushed." % path)
            if name.endswith(SUFFIX):
                raise PkiError("%s: names ending in %s are kept for encrypted keys in S3. Rename it. Nothing was pushed." % (path, SUFFIX))
            if stat.S_ISDIR(info.st_mode):
                found[relative + name + "/"] = (EMPTY_SHA256, None)
            else:
                with open(path, "rb") as handle:
                    data = handle.read()
                found[relative + name] = (sha256(data), secret_scope(relative + name, data))
    return found


def looks_like_pki(first_page):
    """Whether the first page of a non-empty listing is a PKI's (easy-rsa's files and folders)."""
    return any(mark in first_page for mark in PKI_MARKS)


def check_remote(remote, url):
    """Refuse a listing whose names are not a PKI's paths (before anything is written)."""
    odd = sorted(name for name in remote if not safe_name(name) or os.path.basename(name.rstrip("/")).startswith(TEMP_PREFIX)
                 or name in (STATE_FILE, STATE_FILE + SUFFIX))
    twice = sorted(name for name in remote if name.endswith(SUFFIX) and entry_name(name) in remote)
    if odd or twice:
        raise PkiError(
            "%s holds objects that cannot be a PKI's files: %s. Point prefix at the folder of the PKI, or remove those objects. "
            "Nothing was written." % (url, ", ".join(odd[:5] + ["%s and %s (one file twice)" % (entry_name(n), n) for n in twice[:5]]))
        )


def local_changes(local, base):
    """Names that differ between the working copy and its base (changed, new or gone)."""
    pulled = dict((entry_name(name), meta["sha256"]) for name, meta in base.items())
    return sorted(set(name for name, (digest, scope) in local.items() if pulled.get(name) != digest) | (set(pulled) - set(local)))


def remote_changes(base, remote):
    """How S3 differs from the base: ['<name> (changed|added|removed)']."""
    changes = ["%s (changed)" % name for name in sorted(set(base) & set(remote)) if base[name]["etag"] != remote[name].etag]
    changes += ["%s (added)" % name for name in sorted(set(remote) - set(base))]
    return changes + ["%s (removed)" % name for name in sorted(set(base) - set(remote))]


def plan_pull(remote, base):
    """(objects to download, objects of the base gone from S3)."""
    downloads = sorted(name for name, info in remote.items() if name not in base or base[name]["etag"] != info.etag)
    return downloads, sorted(name for name in base if name not in remote)


def _upload_rank(item):
    name = item[1]
    if name.endswith("/"):
        return (0, 0, name)
    if name in DATABASE_ORDER:
        return (2, DATABASE_ORDER.index(name), name)
    if name.startswith(KEPT_FOLDERS) or name in KEPT_FILES or name.endswith("~"):
        return (1, 0, name)
    phase = [number for number, starts in enumerate(FILE_PHASES, 1) if name.startswith(starts)]
    return (1, phase[0] if phase else len(FILE_PHASES) + 1, name)


def plan_push(local, base, stored_as):
    """([(object, name, scope)] to upload, in push order; [object] to delete). ``stored_as(name, scope)``
    gives an object's name (``.kms`` when encrypted) or refuses."""
    desired = {}
    for name, (digest, scope) in local.items():
        desired[stored_as(name, scope)] = (name, digest, scope)
    uploads = [(obj, name, scope) for obj, (name, digest, scope) in desired.items() if obj not in base or base[obj]["sha256"] != digest]
    deletes = sorted((name for name in base if name not in desired), key=lambda name: (name.endswith("/"), name))
    return sorted(uploads, key=_upload_rank), deletes


def write_entries(folder, contents, removals):
    """Put the pulled content into the working copy (folders 0700, files 0600 from their first byte),
    then remove what S3 no longer has (files before their folders)."""
    folder.ensure_dir(folder.root)
    for name in sorted(contents):
        path = folder.path(name.rstrip("/"))
        if name.endswith("/"):
            folder.ensure_dir(path)
        else:
            folder.ensure_dir(os.path.dirname(path))
            folder.write(path, contents[name], FILE_MODE)
    for name in sorted(removals, reverse=True):
        path = folder.path(name.rstrip("/"))
        try:
            if name.endswith("/"):
                folder.rmdir(path)
            else:
                folder.unlink(path)
        except OSError as exc:
            if exc.errno not in (errno.ENOENT, errno.ENOTEMPTY):
                raise


def load_state(folder):
    """The working copy's state, or None when the folder is none."""
    path = folder.path(STATE_FILE)
    if not os.path.exists(path):
        return None
    try:
        state = json.loads(folder.read(path).decode("utf-8"))
        if state.get("format") != STATE_FORMAT or state.get("version") != STATE_VERSION or not isinstance(state.get("base"), dict):
            raise ValueError("not a %s, version %d" % (STATE_FORMAT, STATE_VERSION))
    except (ValueError, AttributeError) as exc:
        raise PkiError("%s is unreadable (%s). Remove the working copy %s and pull again." % (path, exc, folder.root))
    return state


def new_state(bucket, prefix):
    return {"format": STATE_FORMAT, "version": STATE_VERSION, "bucket": bucket, "prefix": prefix, "base": {}, "lock": None}


def save_state(folder, state):
    """The state names the files of the working copy: their directories are fsync-ed first."""
    folder.sync_dirs()
    folder.write(folder.path(STATE_FILE), (json.dumps(state, sort_keys=True, indent=1) + "\n").encode("utf-8"), FILE_MODE)
