# -*- coding: utf-8 -*-
# Copyright: clientvpn.pki contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The easy-rsa 3 PKI directory: its paths, its lock and its atomic writes.

The layout is exactly easy-rsa's, so ``easyrsa`` keeps working on a PKI built
here and a PKI built by ``easyrsa`` is adopted as it is::

    ca.crt  private/ca.key  issued/<name>.crt  private/<name>.key  reqs/<name>.req
    index.txt  index.txt.attr  serial  certs_by_serial/<SERIAL>.pem
    revoked/{certs,private,reqs}_by_serial/  renewed/issued/<name>.crt  renewed/certs_by_serial/

Every write goes to a temporary file in the destination's directory and is
then moved over it with ``atomic_move``, so a crash leaves either the old or
the new file, never half of one.
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

    ``module`` supplies ``atomic_move`` and ``backup_local`` (an AnsibleModule,
    or a stand-in in unit tests).
    """

    def __init__(self, module, pki_dir, what="pki_dir"):
        self.module = module
        self.root = pki_dir
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
            directory = os.path.dirname(directory)
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
        """Write atomically: temp file in the same directory, then atomic_move."""
        directory = os.path.dirname(path)
        fd, tmp_path = tempfile.mkstemp(prefix=".tmp-", dir=directory)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            self.module.atomic_move(tmp_path, path)
        finally:
            if os.path.exists(tmp_path):
                os.unlink(tmp_path)
        # atomic_move gives a new file the umask's mode: set ours (the
        # directory is 0700, so nobody else could read it in between).
        os.chmod(path, mode)

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
        """Keep a dated copy next to ``path`` (Ansible's backup naming) and return its name."""
        return self.module.backup_local(path)

    def move(self, source, destination):
        self.ensure_dir(os.path.dirname(destination))
        self.module.atomic_move(source, destination)

    def mode_of(self, path):
        return stat.S_IMODE(os.stat(path).st_mode)

    # -- database --------------------------------------------------------------
    def read_index(self):
        if not os.path.exists(self.index):
            return []
        try:
            text = self.read(self.index).decode("utf-8")
        except UnicodeDecodeError:
            raise PkiError("%s is not text. Restore it from index.txt.old or a backup; nothing was changed." % self.index)
        return parse_index(text, self.index)

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
