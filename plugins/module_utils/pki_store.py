# -*- coding: utf-8 -*-
# Copyright: clientvpn.pki contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The easy-rsa 3 PKI directory: its paths, its lock and its atomic writes.

The layout is exactly easy-rsa's, so ``easyrsa`` keeps working on a PKI built
here and a PKI built by ``easyrsa`` is adopted as it is::

    ca.crt  private/ca.key  issued/<name>.crt  private/<name>.key  reqs/<name>.req
    index.txt  index.txt.attr  serial  certs_by_serial/<SERIAL>.pem
    revoked/{certs,private,reqs}_by_serial/  renewed/issued/<name>.crt  renewed/certs_by_serial/

Every write goes to a temporary file in the destination's directory, created
with its final mode (0600 for keys) from the first byte whatever the umask,
and is then renamed over the target, so a crash leaves either the old or the
new file, never half of one, and never a key that others could read. The
temporary files a killed run leaves (``.tmp-*``) are removed by the next run,
under the lock.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import re
import stat
import tempfile
import time

from ansible_collections.clientvpn.pki.plugins.module_utils.easyrsa_index import format_index, format_serial, parse_index
from ansible_collections.clientvpn.pki.plugins.module_utils.errors import PkiError

DIR_MODE = 0o700
SECRET_MODE = 0o600
# easy-rsa runs with umask 077: everything it writes is 0600, certificates too.
FILE_MODE = 0o600

# What `easyrsa init-pki` + `build-ca` create (easy-rsa 3.1); nothing more, so
# adopting an easy-rsa PKI changes nothing.
LAYOUT_DIRS = (
    "private",
    "reqs",
    "issued",
    "certs_by_serial",
    "revoked",
    "revoked/certs_by_serial",
    "revoked/private_by_serial",
    "revoked/reqs_by_serial",
)
INDEX_ATTR = "unique_subject = no\n"
# easy-rsa 3.1 reads its openssl configuration from the PKI; init-pki copies it
# from the first of these that has it. We do the same, so easyrsa commands work
# on our PKI wherever easy-rsa is installed.
EASYRSA_CONFIG = "openssl-easyrsa.cnf"
EASYRSA_DATA_DIRS = ("/etc/easy-rsa", "/usr/share/easy-rsa", "/usr/local/share/easy-rsa")
INITIAL_SERIAL = "01\n"
# File names easy-rsa would accept; anything else could escape pki_dir or
# confuse openssl's configuration parsing.
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.@+=-]*$")
MAX_NAME_LENGTH = 200
LOCK_TIMEOUT_SECONDS = 300
TEMP_PREFIX = ".tmp-"
# Folders that hold keys: their mode is checked on every run, not only at creation.
KEY_DIRS = ("private", "revoked/private_by_serial")
# Permission bits that let another user in.
OTHERS = stat.S_IRWXG | stat.S_IRWXO
BY_OTHERS_WRITABLE = stat.S_IWGRP | stat.S_IWOTH


def check_name(name):
    """Refuse a certificate name that is not a plain file name inside pki_dir."""
    reason = None
    if not name:
        reason = "it is empty"
    elif "\0" in name:
        reason = "it contains a NUL byte"
    elif "/" in name or "\\" in name:
        reason = "it contains a path separator"
    elif ".." in name:
        reason = "it contains '..'"
    elif name.startswith("-"):
        reason = "it starts with '-'"
    elif name.startswith("."):
        reason = "it starts with '.' (a hidden file)"
    elif name.lower() == "ca":
        reason = "'ca' is the certificate authority's own file name (private/ca.key)"
    elif len(name) > MAX_NAME_LENGTH:
        reason = "it is longer than %d characters" % MAX_NAME_LENGTH
    elif not _NAME.fullmatch(name):
        reason = "it has characters other than letters, digits and _ . @ + = -"
    if reason:
        raise PkiError(
            "name %r cannot be used: %s. A name becomes issued/<name>.crt and private/<name>.key, "
            "so use a plain file name such as 'client1.domain.tld'." % (name, reason)
        )


class PkiStore(object):
    """Paths, lock and file I/O of one easy-rsa PKI directory.

    ``module`` is the AnsibleModule (kept for callers; writes do not need it).
    """

    def __init__(self, module, pki_dir, what="pki_dir"):
        self.module = module
        self.root = pki_dir
        self.what = what
        if not pki_dir or not os.path.isabs(pki_dir):
            raise PkiError(
                "%s=%r is not an absolute path: a module runs in a directory of Ansible's choosing, so a "
                "relative path has no fixed meaning. Give an absolute path, for example "
                "'{{ playbook_dir }}/pki' or '~/clientvpn/pki' (Ansible expands ~). Nothing was changed." % (what, pki_dir)
            )
        if os.path.exists(pki_dir) and not os.path.isdir(pki_dir):
            raise PkiError(
                "%s %s exists and is not a directory. Point %s at a directory "
                "(it is created when missing)." % (what, pki_dir, what)
            )

    # -- paths -------------------------------------------------------------
    def path(self, *parts):
        return os.path.join(self.root, *parts)

    @property
    def ca_cert(self):
        return self.path("ca.crt")

    @property
    def ca_key(self):
        return self.path("private", "ca.key")

    @property
    def index(self):
        return self.path("index.txt")

    @property
    def serial(self):
        return self.path("serial")

    def cert(self, name):
        return self.path("issued", name + ".crt")

    def key(self, name):
        return self.path("private", name + ".key")

    def req(self, name):
        return self.path("reqs", name + ".req")

    def by_serial(self, serial_hex):
        return self.path("certs_by_serial", serial_hex + ".pem")

    def renewed_cert(self, name):
        return self.path("renewed", "issued", name + ".crt")

    def renewed_by_serial(self, serial_hex):
        return self.path("renewed", "certs_by_serial", serial_hex + ".crt")

    # -- layout --------------------------------------------------------------
    def layout_changes(self):
        """What ensure_layout() would create or chmod, as short sentences."""
        changes = []
        for directory in (self.root,) + tuple(self.path(d) for d in LAYOUT_DIRS):
            if not os.path.isdir(directory):
                changes.append("create directory %s" % directory)
            elif stat.S_IMODE(os.stat(directory).st_mode) != DIR_MODE:
                changes.append("set mode 0700 on %s" % directory)
        for path in (self.index, self.path("index.txt.attr"), self.serial):
            if not os.path.exists(path):
                changes.append("create %s" % path)
        config = self._easyrsa_config_source()
        if config:
            changes.append("copy %s into the PKI, as easyrsa init-pki does" % config)
        return changes

    def _easyrsa_config_source(self):
        """The installed easy-rsa configuration to copy in, if the PKI lacks one."""
        if os.path.exists(self.path(EASYRSA_CONFIG)):
            return None
        for directory in EASYRSA_DATA_DIRS:
            candidate = os.path.join(directory, EASYRSA_CONFIG)
            if os.path.isfile(candidate):
                return candidate
        return None

    def ensure_layout(self):
        for directory in (self.root,) + tuple(self.path(d) for d in LAYOUT_DIRS):
            self.ensure_dir(directory)
        for path, content in ((self.index, ""), (self.path("index.txt.attr"), INDEX_ATTR), (self.serial, INITIAL_SERIAL)):
            if not os.path.exists(path):
                self.write(path, content.encode())
        config = self._easyrsa_config_source()
        if config:
            self.write(self.path(EASYRSA_CONFIG), self.read(config))

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
            os.mkdir(new, DIR_MODE)
            os.chmod(new, DIR_MODE)
        target = missing[0] if missing else directory
        if stat.S_IMODE(os.stat(target).st_mode) != DIR_MODE:
            os.chmod(target, DIR_MODE)

    def is_initialised(self):
        return os.path.isfile(self.index) and os.path.isfile(self.serial)

    # -- locking -------------------------------------------------------------
    @contextlib.contextmanager
    def locked(self, exclusive=True):
        """Hold a flock on the PKI directory itself (no lock file to leave behind).

        Writers take it exclusively, check mode shares it, so two runs at once
        never reuse a serial nor interleave index.txt rewrites.
        """
        if not os.path.isdir(self.root):
            yield
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
        finally:
            os.close(fd)

    # -- files ---------------------------------------------------------------
    def read(self, path):
        with open(path, "rb") as handle:
            return handle.read()

    def write(self, path, data, mode=FILE_MODE):
        """Write atomically: a temp file in the same directory, with ``mode`` before the
        first byte (mkstemp makes it 0600 whatever the umask), renamed over ``path``."""
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
        if mode is not None and self.mode_of(source) != mode:
            os.chmod(source, mode)
        os.replace(source, destination)

    def mode_of(self, path):
        return stat.S_IMODE(os.stat(path).st_mode)

    # -- hygiene -----------------------------------------------------------------
    def tidy(self, check_mode):
        """Before a run uses the PKI (under the lock): folders others can enter are closed
        (0700), or refused when they belong to another user; the temp files a killed run
        left are removed. Returns what it did (or would do) as short sentences, and
        whether ``private/`` was writable by others (its keys cannot be trusted)."""
        changes, keys_exposed = [], False
        for directory in (self.root,) + tuple(self.path(d) for d in KEY_DIRS):
            if not os.path.isdir(directory):
                continue
            info = os.stat(directory)
            loose = stat.S_IMODE(info.st_mode) & OTHERS
            if not loose:
                continue
            if info.st_uid != os.geteuid():
                raise PkiError(
                    "%s is mode %04o (other users can enter it) and belongs to uid %d, not to this user (uid %d): "
                    "it is not ours to fix. Have its owner run chmod 0700 on it, or run as its owner. "
                    "Nothing was changed." % (directory, stat.S_IMODE(info.st_mode), info.st_uid, os.geteuid())
                )
            if directory != self.root and loose & BY_OTHERS_WRITABLE:
                keys_exposed = True
            changes.append("set mode 0700 on %s (was %04o: other users could enter it)" % (directory, stat.S_IMODE(info.st_mode)))
            if not check_mode:
                os.chmod(directory, DIR_MODE)
        for path in self.stray_temp_files():
            changes.append("remove %s (left by an interrupted run)" % path)
            if not check_mode:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)
        return changes, keys_exposed

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

    # -- database --------------------------------------------------------------
    def read_index(self):
        if not os.path.exists(self.index):
            return []
        try:
            text = self.read(self.index).decode("utf-8")
        except UnicodeDecodeError:
            raise PkiError("%s is not text. Restore it from index.txt.old or a backup; nothing was changed." % self.index)
        return parse_index(text, self.index)

    def unique_subject(self):
        """What index.txt.attr says: True when openssl ca allows one valid certificate per
        subject (easy-rsa 3.0 and plain openssl ca default; 3.1+ write ``no``)."""
        path = self.path("index.txt.attr")
        if not os.path.exists(path):
            return False  # easy-rsa 3.1+ always writes the file; openssl ca's default needs it
        for line in self.read(path).decode("utf-8", "replace").splitlines():
            key, sep, value = line.partition("=")
            if sep and key.strip() == "unique_subject":
                return value.strip().lower() in ("y", "yes", "true", "on", "1")
        return False

    def write_index(self, entries):
        """Replace index.txt, keeping the previous one as index.txt.old like openssl ca."""
        if os.path.exists(self.index):
            self.write(self.path("index.txt.old"), self.read(self.index))
        self.write(self.index, format_index(entries).encode())

    def write_next_serial(self, last_serial):
        """Leave ``serial`` as openssl ca does: the last serial used, plus one."""
        if os.path.exists(self.serial):
            self.write(self.path("serial.old"), self.read(self.serial))
        self.write(self.serial, (format_serial(last_serial + 1) + "\n").encode())
