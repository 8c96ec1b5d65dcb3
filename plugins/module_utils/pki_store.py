# -*- coding: utf-8 -*-
# Copyright: clientvpn.pki contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The easy-rsa 3 PKI directory: its layout and its database (``index.txt``, ``serial``).

The layout is exactly easy-rsa's, so ``easyrsa`` keeps working on a PKI built
here and a PKI built by ``easyrsa`` is adopted as it is::

    ca.crt  private/ca.key  issued/<name>.crt  private/<name>.key  reqs/<name>.req
    index.txt  index.txt.attr  serial  certs_by_serial/<SERIAL>.pem
    revoked/{certs,private,reqs}_by_serial/  renewed/issued/<name>.crt  renewed/certs_by_serial/

Every path of a certificate is derived here from ``(pki_dir, name)``; the
writes, the lock and the folder hygiene are the SafeFolder's.
"""

from __future__ import annotations

import os

from ansible_collections.clientvpn.pki.plugins.module_utils.easyrsa_index import format_index, format_serial, parse_index
from ansible_collections.clientvpn.pki.plugins.module_utils.errors import PkiError
from ansible_collections.clientvpn.pki.plugins.module_utils.safe_folder import DIR_MODE, SafeFolder

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
# Folders that hold keys: their mode is checked on every run, not only at creation.
KEY_DIRS = ("private", "revoked/private_by_serial")
INDEX_ATTR = "unique_subject = no\n"
# easy-rsa 3.1 reads its openssl configuration from the PKI; init-pki copies it
# from the first of these that has it. We do the same, so easyrsa commands work
# on our PKI wherever easy-rsa is installed.
EASYRSA_CONFIG = "openssl-easyrsa.cnf"
EASYRSA_DATA_DIRS = ("/etc/easy-rsa", "/usr/share/easy-rsa", "/usr/local/share/easy-rsa")
INITIAL_SERIAL = "01\n"


class PkiStore(SafeFolder):
    """The layout and database of one easy-rsa PKI directory."""

    def __init__(self, pki_dir):
        super(PkiStore, self).__init__(pki_dir, what="pki_dir")

    # -- paths -------------------------------------------------------------
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
            elif self.mode_of(directory) != DIR_MODE:
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

    def is_initialised(self):
        return os.path.isfile(self.index) and os.path.isfile(self.serial)

    key_dirs = KEY_DIRS

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
