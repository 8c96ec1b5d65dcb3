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

``FileDigests`` keeps only the stamps and SHA-256 of files, by the same rules, in the same
``cache_dir``, one file per staging folder (``staged-<hash of its path>.sqlite``): ``vpn_stage``
does not read a source nor its staged copy whose stamps give the same SHA-256.
"""

from __future__ import annotations

import os
import stat
import threading
import time

try:
    import sqlite3
except ImportError:  # pragma: no cover - a Python built without it: no cache
    sqlite3 = None

from ansible_collections.clientvpn.pki.plugins.module_utils.certificate_facts import CertFacts, KeyFacts, sha256_hex
from ansible_collections.clientvpn.pki.plugins.module_utils.errors import PkiError
from ansible_collections.clientvpn.pki.plugins.module_utils.safe_folder import BY_OTHERS_WRITABLE, SECRET_MODE, SafeFolder

CACHE_FORMAT = 3
DIGESTS_FORMAT = 1
STAMP_SETTLE_SECONDS = 2
# Past this many files a run reads the whole cache in three queries instead of one query per file.
PREFETCH_FROM = 64
KINDS = {"certificate": CertFacts, "key": KeyFacts}
_TABLES = {"certificate": "certificates", "key": "keys"}
_FILES_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS about (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS files (path TEXT PRIMARY KEY, stamp TEXT NOT NULL, digest TEXT NOT NULL)",
)
_SCHEMA = _FILES_SCHEMA + (
    "CREATE TABLE IF NOT EXISTS certificates (digest TEXT PRIMARY KEY, %s)" % ", ".join(CertFacts.FIELDS),
    "CREATE TABLE IF NOT EXISTS keys (digest TEXT PRIMARY KEY, %s)" % ", ".join(KeyFacts.FIELDS),
)


def digests_file(folder):
    """The name of FileDigests' file for one folder: a run reads the stamps of its own files only, and the
    rows of folders long gone (a job's, a test's) never slow down the runs of another."""
    return "staged-%s.sqlite" % sha256_hex(folder.encode("utf-8", "surrogateescape"))[:32]


def _stamp(info):
    return "%d:%d:%d:%d:%d" % (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)


class _StampedFiles(object):
    """An SQLite file in ``cache_dir`` whose table ``files`` holds, by path, a file's stamp and the SHA-256 of
    its bytes: when it is trusted, how a stamp is looked up and recorded, how it is written. ``about`` is what
    its table ``about`` must say (another format: rebuilt); ``schema`` and ``tables`` its other tables; ``lost``
    what a run that cannot write it costs the next one. ``cache_dir=None``: no cache."""

    def __init__(self, cache_dir, file_name, about, check_mode, files, schema=_FILES_SCHEMA, tables=(), lost=""):
        self.about, self.schema, self.tables, self.lost = about, schema, tables, lost
        self.check_mode = check_mode
        self.folder = SafeFolder(cache_dir, what="cache_dir") if cache_dir else None
        self.path = self.folder.path(file_name) if cache_dir else None
        self.db = None
        # vpn_stage's copying threads look files up through the one connection: Python's sqlite3 does
        # not make that safe from 3.12 on (InterfaceError "bad parameter or other API misuse", or a
        # wrong row on 3.13), so one lookup at a time.
        self.db_lock = threading.Lock()
        self.prefetched = None  # {"files": {path: "<stamp> <digest>"}, and the prefetch_tables()}
        self.learnt = {"files": {}}
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
            # read only, and looked up from vpn_stage's copying threads (through _lookup)
            self.db = sqlite3.connect("file:%s?mode=ro" % self.path, uri=True, timeout=5, check_same_thread=False)
            if dict(self.db.execute("SELECT name, value FROM about")) != self.about:
                self.close()
            elif prefetch:
                # "<stamp> <digest>" by path, built by SQLite and dict() without a Python loop (80,000 rows at 20,000 clients)
                self.prefetched = {"files": dict(self.db.execute("SELECT path, stamp || ' ' || digest FROM files"))}
                self.prefetched.update(self.prefetch_tables(self.db))
                self.close()
        except (OSError, sqlite3.Error):
            self.close()  # missing or unreadable: rebuilt by this run
            self.prefetched = None

    def prefetch_tables(self, db):
        """{name: rows} of the other tables, read with ``files`` when a run looks up many files."""
        return {}

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

    # -- stamps --------------------------------------------------------------------
    def _recorded_file(self, path):
        """"<stamp> <digest>" recorded for ``path``, or None."""
        if self.prefetched is not None:
            return self.prefetched["files"].get(path)
        if self.db is None:
            return None
        row = self._lookup("SELECT stamp || ' ' || digest FROM files WHERE path = ?", (path,))
        return row[0] if row else None

    def _lookup(self, query, arguments):
        """The first row ``query`` finds, one thread at a time."""
        with self.db_lock:
            return self.db.execute(query, arguments).fetchone()

    def _digest_by_stamp(self, path, info):
        """The SHA-256 recorded with ``info``'s stamp (``path``'s os.stat or os.lstat), or None: its bytes are unknown."""
        recorded = self._recorded_file(path)
        if recorded is None:
            return None
        stamp, dummy, digest = recorded.partition(" ")
        return digest if stamp == _stamp(info) else None

    def _hashed(self, path, info, data):
        """The SHA-256 of ``data``, ``path``'s bytes read after ``info`` was taken (a change after it gives another
        ctime); the stamp is recorded with it when the file's ctime is old enough to be told from a later change."""
        digest = sha256_hex(data)
        if self.path is not None and time.time() - info.st_ctime > STAMP_SETTLE_SECONDS:
            self.learnt["files"][path] = (_stamp(info), digest)
        return digest

    # -- writing -------------------------------------------------------------------
    def save(self):
        """Write what this run learnt (never in check mode). A cache that cannot be written is a warning, never a failure."""
        self.close()
        if not self.path or sqlite3 is None or self.check_mode or not any(self.learnt.values()):
            return
        try:
            self._write()
        except (OSError, PkiError, sqlite3.Error) as exc:
            self.warnings.append("could not write the cache %s (%s): %s." % (self.path, exc, self.lost))

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
                for statement in self.schema:
                    db.execute(statement)
                if dict(db.execute("SELECT name, value FROM about")) != self.about:
                    for table in ("files",) + self.tables:
                        db.execute("DELETE FROM %s" % table)
                    db.executemany("INSERT OR REPLACE INTO about VALUES (?, ?)", sorted(self.about.items()))
                self.write_tables(db)
                db.executemany("INSERT OR REPLACE INTO files VALUES (?, ?, ?)",
                               ((path, stamp, digest) for path, (stamp, digest) in self.learnt["files"].items()))
        finally:
            db.close()

    def write_tables(self, db):
        """Write what this run learnt into the other tables (in the transaction that writes ``files``)."""


class VerifiedCache(_StampedFiles):
    """Facts by file, for one CA certificate (its bytes). ``cache_dir=None``: no cache.
    ``files``: about how many files the run will look up (many: the cache is read at once)."""

    def __init__(self, cache_dir, ca_cert_bytes, check_mode=False, files=0):
        self.ca = sha256_hex(ca_cert_bytes)
        super(VerifiedCache, self).__init__(
            cache_dir, self.ca[:32] + ".sqlite", {"format": str(CACHE_FORMAT), "ca": self.ca}, check_mode, files,
            schema=_SCHEMA, tables=tuple(_TABLES.values()), lost="the next run verifies these certificates again",
        )
        self.learnt["facts"] = {}

    def prefetch_tables(self, db):
        return dict((kind, dict((row[0], row[1:]) for row in db.execute("SELECT * FROM %s" % table))) for kind, table in _TABLES.items())

    # -- reading -------------------------------------------------------------------
    def certificate(self, path, parse):
        """CertFacts of the certificate file ``path``, or None when there is none;
        ``parse(data)`` makes them from the file's bytes when they are not known."""
        return self._facts("certificate", path, parse)

    def key(self, path, parse):
        """(KeyFacts, os.stat) of the private key file ``path``, or (None, None) when there is none: the
        caller checks the key's mode with the stat that found the facts."""
        try:
            info = os.stat(path)
        except FileNotFoundError:
            return None, None
        return self._facts("key", path, parse, info), info

    def _facts(self, kind, path, parse, info=None):
        if info is None:
            try:
                info = os.stat(path)
            except FileNotFoundError:
                return None
        recorded = self._digest_by_stamp(path, info)
        if recorded is not None:
            known = self._known_digest(recorded, kind)
            if known is not None:
                return known
        with open(path, "rb") as handle:  # read after the stat: a change after it gives another ctime
            data = handle.read()
        if self.path is None:  # no cache: nothing to look up or remember
            return parse(data)
        digest = self._hashed(path, info, data)
        facts = self._known_digest(digest, kind)
        if facts is None:
            facts = parse(data)
            self.learnt["facts"][(digest, kind)] = facts
        return facts

    def _known_digest(self, digest, kind):
        if (digest, kind) in self.learnt["facts"]:
            return self.learnt["facts"][(digest, kind)]
        if self.prefetched is not None:
            row = self.prefetched[kind].get(digest)
        elif self.db is not None:
            row = self._lookup("SELECT * FROM %s WHERE digest = ?" % _TABLES[kind], (digest,))
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
    def write_tables(self, db):
        for kind, table in _TABLES.items():
            rows = [(digest,) + facts.to_row() for (digest, of_kind), facts in self.learnt["facts"].items() if of_kind == kind]
            db.executemany("INSERT OR REPLACE INTO %s VALUES (%s)" % (table, ", ".join("?" * (1 + len(KINDS[kind].FIELDS)))), rows)


class FileDigests(_StampedFiles):
    """The SHA-256 of files' bytes, known by their stamp without reading them: for vpn_stage, the PKI's files
    and their staged copies in ``folder``, by absolute path, in a file for that folder. ``cache_dir=None``: no
    cache, every file is read. ``files``: about how many files the run will look up (many: read at once).

    The caller takes each file's os.stat (a source, followed like open() follows it) or os.lstat (a file it
    must see as it is: regular, not a link) and passes it in, so that it has the file's mode and type, and
    nothing is stat-ed twice."""

    def __init__(self, cache_dir, folder, check_mode=False, files=0):
        super(FileDigests, self).__init__(
            cache_dir, digests_file(folder), {"format": str(DIGESTS_FORMAT), "folder": folder}, check_mode, files,
            lost="the next run reads these files again",
        )

    def known(self, path, info):
        """The SHA-256 of ``path``'s bytes when ``info`` is the stamp recorded with it, without reading it; else None."""
        return self._digest_by_stamp(path, info)

    def read(self, path, info):
        """(bytes, SHA-256) of ``path``, read after ``info`` was taken; its stamp is recorded when settled."""
        with open(path, "rb") as handle:
            data = handle.read()
        return data, self._hashed(path, info, data)

    def digest(self, path, info):
        """The SHA-256 of ``path``'s bytes: by its stamp, or read."""
        known = self.known(path, info)
        return known if known is not None else self.read(path, info)[1]
