# -*- coding: utf-8 -*-
# Copyright: clientvpn.pki contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The easy-rsa 3 PKI directory: its layout and its database (``index.txt``, ``serial``).

The layout is exactly easy-rsa's, so ``easyrsa`` keeps working on a PKI built
here and a PKI built by ``easyrsa`` is adopted as it is::

    ca.crt  private/ca.key  issued/<name>.crt  private/<name>.key  reqs/<name>.req
    index.txt  index.txt.attr  serial  certs_by_serial/<SERIAL>.pem
    revoked/{certs,private,reqs}_by_serial/  renewed/issued/<name>.crt  renewed/certs_by_serial/
    expired/<name>.crt  inline/[private/]<name>.inline  (easy-rsa 3.2)

Every path of a certificate is derived here from ``(pki_dir, name)``; the
writes, the lock and the folder hygiene are the SafeFolder's.
"""

from __future__ import annotations

import os
import re

try:
    from cryptography import x509
except ImportError:  # pragma: no cover - reported by the modules
    pass

from ansible_collections.clientvpn.pki.plugins.module_utils.easyrsa_index import format_index, format_serial, parse_index
from ansible_collections.clientvpn.pki.plugins.module_utils.easyrsa_layout import EASYRSA_32, EASYRSA_CONFIG, EasyrsaLayout
from ansible_collections.clientvpn.pki.plugins.module_utils.errors import PkiError
from ansible_collections.clientvpn.pki.plugins.module_utils.safe_folder import DIR_MODE, SafeFolder

# Folders that hold keys: their mode is checked on every run, not only at creation.
KEY_DIRS = ("private", "revoked/private_by_serial")
INDEX_ATTR = "unique_subject = no\n"
# How openssl ca reads a yes/no setting of index.txt.attr (its parse_yes_or_no).
_YES, _NO = ("y", "yes", "true", "t", "on", "1"), ("n", "no", "false", "f", "off", "0")
# easy-rsa 3.1 reads its openssl configuration from the PKI; init-pki copies it
# from the first of these that has it. We do the same in a 3.1 PKI, so easyrsa
# commands work on it wherever easy-rsa is installed.
EASYRSA_DATA_DIRS = ("/etc/easy-rsa", "/usr/share/easy-rsa", "/usr/local/share/easy-rsa")
INITIAL_SERIAL = "01\n"
_PREVIOUS_CA_HEADER = b"# Easy-RSA expired CA certificate list:"
_HEX = re.compile(r"^[0-9A-Fa-f]+$")


class PkiStore(SafeFolder):
    """The layout and database of one easy-rsa PKI directory."""

    def __init__(self, pki_dir, easyrsa_version=None):
        super(PkiStore, self).__init__(pki_dir, what="pki_dir")
        self.requested_version = easyrsa_version
        self._layout = None
        # Joined once: a run over 20,000 names builds 40,000 of these paths.
        self._issued_prefix = self.path("issued", "")
        self._private_prefix = self.path("private", "")

    @property
    def layout(self):
        """The easy-rsa version this PKI follows (found once per run)."""
        if self._layout is None:
            self._layout = EasyrsaLayout.choose(self.root, self.requested_version)
        return self._layout

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
        return self._issued_prefix + name + ".crt"

    def key(self, name):
        return self._private_prefix + name + ".key"

    def req(self, name):
        return self.path("reqs", name + ".req")

    def by_serial(self, serial_hex):
        return self.path("certs_by_serial", serial_hex + ".pem")

    def renewed_cert(self, name):
        return self.path("renewed", "issued", name + ".crt")

    @property
    def previous_ca_list(self):
        """The CA certificates a renewal replaced, newest first (easy-rsa 3.2.2+ renew-ca's file)."""
        return self.path("expired-ca.list")

    def previous_ca_certs(self):
        if not os.path.exists(self.previous_ca_list):
            return []
        try:
            return x509.load_pem_x509_certificates(self.read(self.previous_ca_list))
        except ValueError as exc:
            raise PkiError("%s holds no readable PEM certificate (%s). Restore it from a backup: it keeps the CA "
                           "certificates a renewal replaced. Nothing was changed." % (self.previous_ca_list, exc))

    def keep_previous_ca(self, cert_pem):
        """Put a replaced CA certificate first in expired-ca.list, the way easy-rsa 3.2.2+ renew-ca does:
        its header, the certificate file as it was, then the earlier list less its first header line.
        Kept once, so a re-run after a crash adds nothing."""
        kept = self.read(self.previous_ca_list) if os.path.exists(self.previous_ca_list) else b""
        if cert_pem in kept:
            return
        kept = re.sub(rb"(?m)^" + re.escape(_PREVIOUS_CA_HEADER) + rb"$", b"", kept)
        self.write(self.previous_ca_list, _PREVIOUS_CA_HEADER + b"\n# " + b"=" * 37 + b"\n\n" + cert_pem + kept)

    def expired_cert(self, name):
        return self.path("expired", name + ".crt")

    def earlier_cert_slots(self, name):
        """Where easy-rsa leaves a name's still-valid earlier certificate: ``renew`` (3.1, 3.2.2+)
        in renewed/issued/, ``expire`` (3.2) in expired/."""
        return (self.renewed_cert(name), self.expired_cert(name))

    def renewed_by_serial(self, serial_hex):
        return self.path("renewed", "certs_by_serial", serial_hex + ".crt")

    # -- layout --------------------------------------------------------------
    def _layout_dirs(self):
        """What a PKI must have: all of its version's when the CA is to be built (build-ca makes
        them) or in a 3.1 PKI (as before); nothing more in a 3.2 PKI, which gets a folder only
        when an operation needs it, as easy-rsa 3.2 does."""
        if os.path.exists(self.ca_cert) and self.layout.version == EASYRSA_32 and self.layout.detected:
            return ()
        return self.layout.init_dirs

    def layout_changes(self):
        """What ensure_layout() would create or chmod, as short sentences."""
        changes = []
        for directory in (self.root,) + tuple(self.path(d) for d in self._layout_dirs()):
            if not os.path.isdir(directory):
                changes.append("create directory %s" % directory)
            elif self.mode_of(directory) != DIR_MODE:
                changes.append("set mode 0700 on %s" % directory)
        if not os.path.exists(self.ca_cert):
            changes.extend("create %s" % path for path, dummy in self._database_files() if not os.path.exists(path))
        config = self._easyrsa_config_source()
        if config:
            changes.append("copy %s into the PKI, as easyrsa 3.1 init-pki does" % config)
        return changes

    def _database_files(self):
        return ((self.index, b""), (self.path("index.txt.attr"), INDEX_ATTR.encode()), (self.serial, INITIAL_SERIAL.encode()))

    def _easyrsa_config_source(self):
        """The installed easy-rsa configuration to copy into a 3.1 PKI that lacks one."""
        if not self.layout.keeps_config_in_pki or os.path.exists(self.path(EASYRSA_CONFIG)):
            return None
        for directory in EASYRSA_DATA_DIRS:
            candidate = os.path.join(directory, EASYRSA_CONFIG)
            if os.path.isfile(candidate):
                return candidate
        return None

    def ensure_layout(self):
        """Before the CA is built or adopted; the database files only for a new CA (an existing
        CA without them is refused by check_database)."""
        for directory in (self.root,) + tuple(self.path(d) for d in self._layout_dirs()):
            self.ensure_dir(directory)
        if not os.path.exists(self.ca_cert):
            for path, content in self._database_files():
                if not os.path.exists(path):
                    self.write(path, content)
        config = self._easyrsa_config_source()
        if config:
            self.write(self.path(EASYRSA_CONFIG), self.read(config))

    def check_database(self):
        """An existing CA's database as openssl ca reads it, or an error saying what was found
        (before anything is written)."""
        missing = [os.path.basename(path) for path in (self.index, self.serial) if not os.path.isfile(path)]
        if missing:
            raise PkiError(
                "%s has a CA (ca.crt) but no %s: not an easy-rsa 3.1 or 3.2 PKI as it stands (build-ca creates "
                "index.txt and serial, and every command needs them). Restore %s from a backup (openssl ca keeps "
                "the previous one as index.txt.old / serial.old). Nothing was changed."
                % (self.root, " and no ".join(missing), " and ".join(missing))
            )
        self.unique_subject()
        text = self.read(self.serial).decode("ascii", "replace").strip()
        if not _HEX.match(text):
            raise PkiError(
                "%s holds %r, not a serial number: openssl ca writes one line of hexadecimal digits there (01, or "
                "the last serial plus one). Restore it from serial.old or write 01 (serials here are random and "
                "checked against index.txt). Nothing was changed." % (self.serial, text[:40])
            )

    key_dirs = KEY_DIRS
    bundle_dirs = ("inline", "inline/private")

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
        subject (plain openssl ca's default; easy-rsa writes ``no``). A setting openssl ca
        would not understand is refused."""
        path = self.path("index.txt.attr")
        if not os.path.exists(path):
            return False  # easy-rsa's openssl configuration says unique_subject = no
        unique = False
        for number, line in enumerate(self.read(path).decode("utf-8", "replace").splitlines(), start=1):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            key, sep, value = line.partition("=")
            value = value.strip().lower()
            if not sep or key.strip() != "unique_subject" or value not in _YES + _NO:
                raise PkiError(
                    "%s line %d is %r: openssl ca understands only 'unique_subject = yes' or 'unique_subject = no' "
                    "there (easy-rsa writes 'unique_subject = no'). Fix that line. Nothing was changed." % (path, number, line)
                )
            unique = value in _YES
        return unique

    def write_index(self, entries):
        """Replace index.txt, keeping the previous one as index.txt.old like openssl ca. The files its rows
        name are durable first: their bytes by each write's fsync, their names by the fsync of their directories."""
        self.sync_dirs()
        if os.path.exists(self.index):
            self.write(self.path("index.txt.old"), self.read(self.index))
        self.write(self.index, format_index(entries).encode())
        if not os.path.exists(self.path("index.txt.attr")):
            # what openssl ca writes with the database (a 3.2 PKI has none before its first certificate)
            self.write(self.path("index.txt.attr"), INDEX_ATTR.encode())

    def write_next_serial(self, last_serial):
        """Leave ``serial`` as openssl ca does: the last serial used, plus one."""
        if os.path.exists(self.serial):
            self.write(self.path("serial.old"), self.read(self.serial))
        self.write(self.serial, (format_serial(last_serial + 1) + "\n").encode())
