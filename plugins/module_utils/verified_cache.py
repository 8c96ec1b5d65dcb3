# -*- coding: utf-8 -*-
# Copyright: clientvpn.pki contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The facts of certificate and key files already parsed and verified, kept between runs
so that a run over 20,000 unchanged names does not parse and verify 20,000 certificates.

What is safe to skip, and why (docs/performance.md#the-verified-cache):

* Facts are kept by the SHA-256 of a file's bytes, and hold only what follows from those
  bytes (and, for a certificate, from the CA certificate's: the whole cache is for one
  ``ca.crt``, by its SHA-256). Bytes never seen before are parsed and verified.
* A file is not even read again when its inode, size, mtime and ctime are those recorded
  with its SHA-256. Nothing but the kernel sets a ctime, to the current time, on every
  change of content or metadata: ``touch -d`` can set an mtime back, not a ctime. A stamp
  is recorded only for a file whose ctime is older than STAMP_SETTLE_SECONDS, so a change
  within the same clock tick after the recording still gives another ctime; a file younger
  than that is read and hashed on every run until it is older.
* Still done on every run: the ``stat`` of every file, its mode, its ``index.txt`` row, its
  expiry against today's date, and every decision made from the facts.

The cache is an SQLite file outside the PKI (``cache_dir``, one per CA certificate: copies
of a PKI, such as a job's working copy, share its facts), so a run on an adopted easy-rsa
PKI writes nothing into the PKI. It is written only outside check mode and only when a run
learnt something. One that is unreadable, from another format, or that another user could
have written (not ours, or writable by others) is not used: the run is then as slow as
without a cache, never less strict.
"""

from __future__ import annotations

import os
import stat
import time

try:
    import sqlite3
except ImportError:  # pragma: no cover - a Python built without it: no cache
    sqlite3 = None

from ansible_collections.clientvpn.pki.plugins.module_utils.certificate_facts import CertFacts, KeyFacts, sha256_hex
from ansible_collections.clientvpn.pki.plugins.module_utils.errors import PkiError
from ansible_collections.clientvpn.pki.plugins.module_utils.safe_folder import BY_OTHERS_WRITABLE, SECRET_MODE, SafeFolder

CACHE_FORMAT = 3
STAMP_SETTLE_SECONDS = 2
# Past this many files a run reads the whole cache in three queries instead of one query per file.
PREFETCH_FROM = 64
KINDS = {"certificate": CertFacts, "key": KeyFacts}
_TABLES = {"certificate": "certificates", "key": "keys"}
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS about (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS files (path TEXT PRIMARY KEY, stamp TEXT NOT NULL, digest TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS certificates (digest TEXT PRIMARY KEY, %s)" % ", ".join(CertFacts.FIELDS),
    "CREATE TABLE IF NOT EXISTS keys (digest TEXT PRIMARY KEY, %s)" % ", ".join(KeyFacts.FIELDS),
)


def _stamp(info):
    return "%d:%d:%d:%d:%d" % (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)


class VerifiedCache(object):
    """Facts by file, for one CA certificate (its bytes). ``cache_dir=None``: no cache.
    ``files``: about how many files the run will look up (many: the cache is read at once)."""

    def __init__(self, cache_dir, ca_cert_bytes, check_mode=False, files=0):
        self.ca = sha256_hex(ca_cert_bytes)
        self.check_mode = check_mode
        self.folder = SafeFolder(cache_dir, what="cache_dir") if cache_dir else None
        self.path = self.folder.path(self.ca[:32] + ".sqlite") if cache_dir else None
        self.db = None
        self.prefetched = None  # {"files": {path: (stamp, digest)}, "certificate": {digest: row}, "key": {digest: row}}
        self.learnt = {"facts": {}, "files": {}}
        self.warnings = []
        if self.path and sqlite3 is not None:
            self._open(files >= PREFETCH_FROM)

    def _open(self, prefetch):
        try:
            untrusted = self._untrusted()
            if untrusted:
                self.warnings.append("did not use the cache %s: %s; remove it (it is rebuilt) or fix its owner and mode (0600 in a 0700 folder)."
                                     % (self.path, untrusted))
                return
            self.db = sqlite3.connect("file:%s?mode=ro" % self.path, uri=True, timeout=5)
            if dict(self.db.execute("SELECT name, value FROM about")) != {"format": str(CACHE_FORMAT), "ca": self.ca}:
                self.close()
            elif prefetch:
                self.prefetched = {"files": dict((path, (stamp, digest)) for path, stamp, digest in self.db.execute("SELECT * FROM files"))}
                for kind, table in _TABLES.items():
                    self.prefetched[kind] = dict((row[0], row[1:]) for row in self.db.execute("SELECT * FROM %s" % table))
                self.close()
        except (OSError, sqlite3.Error):
            self.close()  # missing or unreadable: rebuilt by this run
            self.prefetched = None

    def _untrusted(self):
        """Why the cache may hold what someone else wrote, or None. Raises OSError when it is missing."""
        for path in (self.path, os.path.dirname(self.path)):
            info = os.lstat(path)
            if stat.S_ISLNK(info.st_mode):
                return "%s is a symbolic link" % path
            if info.st_uid != os.geteuid():
                return "%s belongs to uid %d" % (path, info.st_uid)
            if info.st_mode & BY_OTHERS_WRITABLE:
                return "%s is writable by other users" % path
        return None

    def close(self):
        if self.db is not None:
            self.db.close()
            self.db = None

    # -- reading -------------------------------------------------------------------
    def certificate(self, path, parse):
        """CertFacts of the certificate file ``path``, or None when there is none;
        ``parse(data)`` makes them from the file's bytes when they are not known."""
        return self._facts("certificate", path, parse)

    def key(self, path, parse):
        """KeyFacts of the private key file ``path``, or None when there is none."""
        return self._facts("key", path, parse)

    def _facts(self, kind, path, parse):
        try:
            info = os.stat(path)
        except FileNotFoundError:
            return None
        stamp = _stamp(info)
        recorded = self._recorded_file(path)
        if recorded is not None and recorded[0] == stamp:
            known = self._known_digest(recorded[1], kind)
            if known is not None:
                return known
        with open(path, "rb") as handle:  # read after the stat: a change after it gives another ctime
            data = handle.read()
        if self.path is None:  # no cache: nothing to look up or remember
            return parse(data)
        digest = sha256_hex(data)
        facts = self._known_digest(digest, kind)
        if facts is None:
            facts = parse(data)
            self.learnt["facts"][(digest, kind)] = facts
        if time.time() - info.st_ctime > STAMP_SETTLE_SECONDS:
            self.learnt["files"][path] = (stamp, digest)
        return facts

    def _recorded_file(self, path):
        if self.prefetched is not None:
            return self.prefetched["files"].get(path)
        if self.db is None:
            return None
        return self.db.execute("SELECT stamp, digest FROM files WHERE path = ?", (path,)).fetchone()

    def _known_digest(self, digest, kind):
        if (digest, kind) in self.learnt["facts"]:
            return self.learnt["facts"][(digest, kind)]
        if self.prefetched is not None:
            row = self.prefetched[kind].get(digest)
        elif self.db is not None:
            row = self.db.execute("SELECT * FROM %s WHERE digest = ?" % _TABLES[kind], (digest,)).fetchone()
            row = row[1:] if row else None
        else:
            row = None
        try:
            return KINDS[kind].from_row(row) if row is not None else None
        except (TypeError, ValueError):
            return None  # a row of another shape: made again

    def learn(self, kind, data, facts):
        """Facts of bytes this run wrote (a new key, a new certificate): the next run need not parse them."""
        if self.path is not None:
            self.learnt["facts"][(sha256_hex(data), kind)] = facts

    # -- writing -------------------------------------------------------------------
    def save(self):
        """Write what this run learnt (never in check mode). A cache that cannot be written is a warning, never a failure."""
        self.close()
        if not self.path or sqlite3 is None or self.check_mode or not any(self.learnt.values()):
            return
        try:
            self._write()
        except (OSError, PkiError, sqlite3.Error) as exc:
            self.warnings.append("could not write the cache %s (%s): the next run verifies these certificates again." % (self.path, exc))

    def _write(self):
        self.folder.ensure_dir(self.folder.root)
        # Created 0600 before SQLite opens it (it would use the umask); its journal takes the same mode.
        os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW, SECRET_MODE))
        untrusted = self._untrusted()
        if untrusted:
            raise PkiError("it may hold what another user wrote: %s" % untrusted)
        db = sqlite3.connect(self.path, timeout=5)
        try:
            with db:
                for statement in _SCHEMA:
                    db.execute(statement)
                about = dict(db.execute("SELECT name, value FROM about"))
                if about != {"format": str(CACHE_FORMAT), "ca": self.ca}:
                    for table in ("files",) + tuple(_TABLES.values()):
                        db.execute("DELETE FROM %s" % table)
                    db.executemany("INSERT OR REPLACE INTO about VALUES (?, ?)", (("format", str(CACHE_FORMAT)), ("ca", self.ca)))
                for kind, table in _TABLES.items():
                    rows = [(digest,) + facts.to_row() for (digest, of_kind), facts in self.learnt["facts"].items() if of_kind == kind]
                    db.executemany("INSERT OR REPLACE INTO %s VALUES (%s)" % (table, ", ".join("?" * (1 + len(KINDS[kind].FIELDS)))), rows)
                db.executemany("INSERT OR REPLACE INTO files VALUES (?, ?, ?)",
                               ((path, stamp, digest) for path, (stamp, digest) in self.learnt["files"].items()))
        finally:
            db.close()
