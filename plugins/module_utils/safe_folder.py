# -*- coding: utf-8 -*-
# Copyright: clientvpn.pki contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A folder whose files are written safely: the PKI, the staging folder, the profiles.

Every write goes to a temporary file in the destination's directory, created
with its final mode (0600 for keys) from the first byte whatever the umask,
fsync-ed, and is then renamed over the target, so a crash leaves either the old
or the new file, never half of one, and never a key that others could read. The
temporary files a killed run leaves (``.tmp-*``) are removed by the next run,
under the folder's lock. An ``OSError`` is left to the module boundary
(``module_runner``), which turns it into one message naming the path.

A rename is durable only once its directory is fsync-ed. The folder notes each
directory that gained or lost a name (a rename into it, a new folder, a removal)
and ``sync_dirs()`` fsyncs each of them once: a record that names files
(index.txt, the staging manifest, the S3 working copy's state) calls it before
it is written, and leaving ``locked()`` calls it for what came after the record.
Once per directory per batch, not per file: 20,000 new clients are a handful
of directory fsyncs, not 80,000.
"""

from __future__ import annotations

import collections
import contextlib
import errno
import fcntl
import os
import stat
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from ansible_collections.clientvpn.pki.plugins.module_utils.errors import PkiError

DIR_MODE = 0o700
SECRET_MODE = 0o600
# easy-rsa runs with umask 077: everything it writes is 0600, certificates too.
FILE_MODE = 0o600
LOCK_TIMEOUT_SECONDS = 300
TEMP_PREFIX = ".tmp-"
# Files written at once: each write ends with an fsync (about 7 ms here), which the file system commits
# together when several threads wait on it; the GIL is not held while they wait.
WRITE_THREADS = 8
# Permission bits that let another user in.
OTHERS = stat.S_IRWXG | stat.S_IRWXO
BY_OTHERS_WRITABLE = stat.S_IWGRP | stat.S_IWOTH


class SafeFolder(object):
    """One folder (created 0700 when missing) and the safe writes into it.

    ``what`` names the option that gave the folder, for messages.
    """

    def __init__(self, root, what="dest"):
        self.root = root
        self.what = what
        if not root or not os.path.isabs(root):
            raise PkiError(
                "%s=%r is not an absolute path: a module runs in a directory of Ansible's choosing, so a "
                "relative path has no fixed meaning. Give an absolute path, for example "
                "'{{ playbook_dir }}/pki' or '~/clientvpn/pki' (Ansible expands ~). Nothing was changed." % (what, root)
            )
        if os.path.exists(root) and not os.path.isdir(root):
            raise PkiError(
                "%s %s exists and is not a directory. Point %s at a directory "
                "(it is created when missing)." % (what, root, what)
            )
        # Directories whose entries changed since their last fsync; the writer threads add to it too.
        self._unsynced_dirs = set()
        self._unsynced_lock = threading.Lock()

    def path(self, *parts):
        return os.path.join(self.root, *parts)

    # -- locking -------------------------------------------------------------
    @contextlib.contextmanager
    def locked(self, exclusive=True):
        """Hold a flock on the folder itself (no lock file to leave behind).

        Writers take it exclusively, check mode shares it, so two runs at once
        never interleave their writes (in a PKI: never reuse a serial nor
        interleave index.txt rewrites).
        """
        if not os.path.isdir(self.root):
            yield
            self.sync_dirs()
            return
        fd = os.open(self.root, os.O_RDONLY)
        try:
            mode = fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH
            deadline = time.monotonic() + LOCK_TIMEOUT_SECONDS
            while True:
                try:
                    fcntl.flock(fd, mode | fcntl.LOCK_NB)
                    break
                except OSError as exc:
                    if exc.errno not in (errno.EAGAIN, errno.EACCES) or time.monotonic() > deadline:
                        raise PkiError(
                            "could not lock %s within %d s: another run is using this PKI. "
                            "Retry when it has finished." % (self.root, LOCK_TIMEOUT_SECONDS)
                        )
                    time.sleep(0.05)
            yield
            # What the run renamed after its last record, durable before the next run may read it.
            self.sync_dirs()
        finally:
            os.close(fd)

    # -- durability of names ------------------------------------------------------
    def changed_dir(self, directory):
        """Note that ``directory`` gained or lost a name: its entry is on disk only after ``sync_dirs()``."""
        with self._unsynced_lock:
            self._unsynced_dirs.add(directory)

    def sync_dirs(self):
        """fsync every directory noted since the last call, once each, so that the renames, new folders and
        removals in them survive a power cut. Call it before writing a record that names those files."""
        with self._unsynced_lock:
            directories, self._unsynced_dirs = sorted(self._unsynced_dirs), set()
        for directory in directories:
            try:
                fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
            except FileNotFoundError:
                continue  # removed since (an emptied folder): its parent holds that change
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        return directories

    def unlink(self, path):
        """Remove a file; the removal is durable after ``sync_dirs()``."""
        os.unlink(path)
        self.changed_dir(os.path.dirname(path))

    def rmdir(self, path):
        """Remove an empty folder; the removal is durable after ``sync_dirs()``."""
        os.rmdir(path)
        self.changed_dir(os.path.dirname(path))

    # -- files ---------------------------------------------------------------
    def ensure_dir(self, directory):
        """Create ``directory`` and any missing parent, each 0700 (makedirs would give parents the umask's mode)."""
        missing = []
        while not os.path.isdir(directory):
            missing.append(directory)
            parent = os.path.dirname(directory)
            if parent == directory:  # a root that is not a directory: nothing to climb to
                raise PkiError("cannot create %s: %s is not a directory." % (missing[0], directory))
            directory = parent
        for new in reversed(missing):
            try:
                os.mkdir(new, DIR_MODE)
            except FileExistsError:
                if not os.path.isdir(new):
                    raise
                # made in between by another thread of this run (ParallelWriter's, the module's own)
            else:
                self.changed_dir(os.path.dirname(new))
            os.chmod(new, DIR_MODE)
        self.ensure_mode(missing[0] if missing else directory, DIR_MODE)

    def read(self, path):
        with open(path, "rb") as handle:
            return handle.read()

    def write(self, path, data, mode=FILE_MODE):
        """Write atomically: a temp file in the same directory, with ``mode`` before the
        first byte (mkstemp makes it 0600 whatever the umask), fsync-ed, renamed over ``path``
        (the new name durable after ``sync_dirs()``)."""
        fd, tmp_path = tempfile.mkstemp(prefix=TEMP_PREFIX, dir=os.path.dirname(path))
        try:
            with os.fdopen(fd, "wb") as handle:
                os.fchmod(handle.fileno(), mode)
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp_path, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp_path)
            raise
        self.changed_dir(os.path.dirname(path))

    def put(self, path, data, mode, check_mode):
        """Make ``path`` hold ``data`` with ``mode``: 'written', 'chmod' or 'unchanged'."""
        if not os.path.exists(path) or self.read(path) != data:
            if not check_mode:
                self.write(path, data, mode)
            return "written"
        if self.mode_of(path) != mode:
            if not check_mode:
                os.chmod(path, mode)
            return "chmod"
        return "unchanged"

    def prepare_root(self, check_mode):
        """The directory itself, 0700 (for folders other than a PKI): the changes it needs."""
        if not os.path.isdir(self.root):
            changes = ["create directory %s" % self.root]
        elif self.mode_of(self.root) != DIR_MODE:
            changes = ["set mode 0700 on %s" % self.root]
        else:
            return []
        if not check_mode:
            self.ensure_dir(self.root)
        return changes

    def backup(self, path):
        """Keep a dated copy next to ``path`` (Ansible's backup naming), 0600 like the
        key it may be, and return its name."""
        backup = "%s.%s.%s" % (path, os.getpid(), time.strftime("%Y-%m-%d@%H:%M:%S~"))
        self.write(backup, self.read(path), SECRET_MODE)
        return backup

    def move(self, source, destination, mode=None):
        """Rename within the PKI (the mode travels with the file); ``mode`` is set
        before the move, so a key never lands in its new folder readable by others."""
        self.ensure_dir(os.path.dirname(destination))
        if mode is not None:
            self.ensure_mode(source, mode)
        os.replace(source, destination)
        self.changed_dir(os.path.dirname(source))
        self.changed_dir(os.path.dirname(destination))

    def mode_of(self, path):
        return stat.S_IMODE(os.stat(path).st_mode)

    def ensure_mode(self, path, mode, check_mode=False):
        """Give ``path`` ``mode``; True when it had another one."""
        if self.mode_of(path) == mode:
            return False
        if not check_mode:
            os.chmod(path, mode)
        return True

    # -- hygiene -----------------------------------------------------------------
    # Folders under the root whose keys must stay private (PkiStore: private/, ...).
    key_dirs = ()
    # Folders of bundles that hold keys (easy-rsa 3.2's inline/): closed like key_dirs, but no
    # key is ever read from them to be signed.
    bundle_dirs = ()

    def hygiene(self):
        """Before a run uses the folder (under the lock): what must be tidied, found once.
        The folder and its ``key_dirs`` that other users can enter are to be closed (0700),
        or refused here when they belong to another user; the temp files a killed run left
        are to be removed. ``Tidying.apply()`` does it, after the run's other checks."""
        loose, keys_exposed = [], False
        for directory in (self.root,) + tuple(self.path(d) for d in self.key_dirs + self.bundle_dirs):
            if not os.path.isdir(directory):
                continue
            info = os.stat(directory)
            mode = stat.S_IMODE(info.st_mode)
            if not mode & OTHERS:
                continue
            if info.st_uid != os.geteuid():
                raise PkiError(
                    "%s is mode %04o (other users can enter it) and belongs to uid %d, not to this user (uid %d): "
                    "it is not ours to fix. Have its owner run chmod 0700 on it, or run as its owner. "
                    "Nothing was changed." % (directory, mode, info.st_uid, os.geteuid())
                )
            if directory in (self.path(d) for d in self.key_dirs) and mode & BY_OTHERS_WRITABLE:
                keys_exposed = True
            loose.append((directory, mode))
        return Tidying(loose, self.stray_temp_files(), keys_exposed)

    def stray_temp_files(self):
        found = []
        if not os.path.isdir(self.root):
            return found
        for directory, dirs, files in os.walk(self.root):
            found.extend(os.path.join(directory, name) for name in files if name.startswith(TEMP_PREFIX))
        return sorted(found)

    def owned_by_others(self, path):
        """True when ``path`` belongs to another user (a file we did not write)."""
        return os.stat(path).st_uid != os.geteuid()


def in_parallel(function, items):
    """[function(item) for item in items], on WRITE_THREADS threads, each over one slice of ``items``: for file
    work that waits on the disk. One task per slice, not per item: 40,000 items that need no disk (a no-op)
    would otherwise pay a thread hand-off each, and hold 40,000 futures."""
    items = list(items)
    if len(items) < 2:
        return [function(item) for item in items]
    size = -(-len(items) // WRITE_THREADS)
    slices = [items[start:start + size] for start in range(0, len(items), size)]
    with ThreadPoolExecutor(len(slices)) as pool:
        return [result for results in pool.map(lambda part: [function(item) for item in part], slices) for result in results]


class ParallelWriter(object):
    """Writes groups of files on WRITE_THREADS threads: the files of a group in their order (a key before the
    certificate that names it), the groups side by side and beside the caller's work (signing the next one).
    ``wait()`` returns when every file is written (its bytes durable, as SafeFolder.write makes them) or raises
    the first error; the caller writes what must come after them (index.txt) only then, through a write that
    first fsyncs the directories they were renamed into (``SafeFolder.sync_dirs``)."""

    MAX_PENDING = 4 * WRITE_THREADS  # groups queued at most: their bytes are held until written

    def __init__(self, folder):
        self.folder = folder
        self.pool = None
        self.pending = collections.deque()

    def submit(self, files, then=None):
        """Write ``files``, [(path, data, mode)], in that order, on a writer thread; then the files ``then()``
        returns, made once those are written (easy-rsa 3.2's inline file is made of the certificate and key on disk)."""
        if self.pool is None:
            self.pool = ThreadPoolExecutor(WRITE_THREADS)
        while len(self.pending) >= self.MAX_PENDING:
            self.pending.popleft().result()
        self.pending.append(self.pool.submit(self._write_group, files, then))

    def _write_group(self, files, then):
        for path, data, mode in files:
            self._write(path, data, mode)
        for path, data, mode in then() if then else ():
            self._write(path, data, mode)

    def _write(self, path, data, mode):
        directory = os.path.dirname(path)
        if not os.path.isdir(directory):  # easy-rsa 3.2.2+ make inline/private/ with the first certificate
            self.folder.ensure_dir(directory)
        self.folder.write(path, data, mode)

    def wait(self):
        try:
            while self.pending:
                self.pending.popleft().result()
        finally:
            if self.pool is not None:
                self.pool.shutdown(wait=True)
                self.pool = None


class Tidying(object):
    """What ``SafeFolder.hygiene()`` found: folders to close, temp files to remove."""

    def __init__(self, loose_dirs, temp_files, keys_exposed):
        self.loose_dirs = loose_dirs  # [(directory, its mode)]
        self.temp_files = temp_files
        # a key folder others could write to: keys found there cannot be trusted
        self.keys_exposed = keys_exposed

    @property
    def changes(self):
        return [
            "set mode 0700 on %s (was %04o: other users could enter it)" % (directory, mode) for directory, mode in self.loose_dirs
        ] + ["remove %s (left by an interrupted run)" % path for path in self.temp_files]

    def apply(self):
        for directory, mode in self.loose_dirs:
            os.chmod(directory, DIR_MODE)
        for path in self.temp_files:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
