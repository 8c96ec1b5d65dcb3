# -*- coding: utf-8 -*-
# Copyright: clientvpn.pki contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which easy-rsa built a PKI (3.1 or 3.2), and what that version does differently.

A PKI does not record its easy-rsa version, but ``init-pki`` leaves traces:
3.1 copies its openssl configuration (``openssl-easyrsa.cnf``, and a
``safessl-easyrsa.cnf``) into the PKI; 3.2 never does, writes ``vars.example``
only, and later makes ``inline/`` (3.2.1+: ``inline/private/``) for the
certificates it issues and ``expired/`` (``expire``). A PKI with none of these (built by clientvpn.pki
without easy-rsa installed, or by hand with ``openssl ca``) is treated as 3.1,
as it always was. docs/easyrsa.md lists the differences read in easy-rsa's
source; here is only what the modules do differently.
"""

from __future__ import annotations

import os

from ansible_collections.clientvpn.pki.plugins.module_utils.errors import PkiError

EASYRSA_31 = "3.1"
EASYRSA_32 = "3.2"
VERSIONS = (EASYRSA_31, EASYRSA_32)
# easy-rsa 3.1 reads its openssl configuration from the PKI: init-pki copies it there.
EASYRSA_CONFIG = "openssl-easyrsa.cnf"
_MARKS_31 = (EASYRSA_CONFIG, "safessl-easyrsa.cnf")
# Only 3.2 makes these (`expire`; the folder of inline files holding keys, 3.2.1+).
# 3.1.2+ make inline/ too, but with the configuration copied in.
_MARKS_32 = ("expired", "inline/private")
# What `init-pki` + `build-ca` leave: 3.1.0, and 3.2.6 plus the inline/private/ folder
# 3.2.2+ make with the first certificate (made here with the PKI, so that a PKI built
# here says which easy-rsa it follows before its first certificate).
INIT_DIRS = {
    EASYRSA_31: ("private", "reqs", "issued", "certs_by_serial", "revoked", "revoked/certs_by_serial",
                 "revoked/private_by_serial", "revoked/reqs_by_serial"),
    EASYRSA_32: ("private", "reqs", "issued", "certs_by_serial", "revoked", "revoked/certs_by_serial",
                 "revoked/private_by_serial", "inline", "inline/private"),
}


class EasyrsaLayout(object):
    """The easy-rsa version a PKI follows, with the evidence for it."""

    def __init__(self, version, evidence, detected=True):
        self.version = version
        self.evidence = evidence
        self.detected = detected  # False: nothing in the PKI says; the version is the one asked for

    @classmethod
    def detect(cls, root):
        """From what is in ``root``; None when it shows no easy-rsa at all (a new PKI)."""
        def found(names):
            return [name for name in names if os.path.exists(os.path.join(root, name))]

        marks = found(_MARKS_32)
        if marks:
            return cls(EASYRSA_32, "it has %s/, which only easy-rsa 3.2 makes" % "/, ".join(marks))
        marks = found(_MARKS_31)
        if marks:
            return cls(EASYRSA_31, "it has %s, which easy-rsa 3.1's init-pki copies into a PKI" % ", ".join(marks))
        marks = found(("inline", "vars.example"))
        if marks:
            return cls(EASYRSA_32, "it has %s but no openssl-easyrsa.cnf, as easy-rsa 3.2's init-pki leaves it" % " and ".join(marks))
        return None

    @classmethod
    def choose(cls, root, requested):
        """The layout to follow: the PKI's own; for a PKI without traces, ``requested`` (3.1 when unset).
        Asking for the other version of an existing PKI is refused: its files would not change."""
        detected = cls.detect(root)
        if detected is None:
            return cls(requested or EASYRSA_31, "easyrsa_version: %s" % requested if requested else "the default", detected=False)
        if requested and requested != detected.version:
            raise PkiError(
                "easyrsa_version is %s, but %s was built by easy-rsa %s (%s). A PKI keeps the layout of the easy-rsa "
                "that built it: remove easyrsa_version (role variable pki_easyrsa_version), or set it to %s. "
                "Nothing was changed." % (requested, root, detected.version, detected.evidence, detected.version)
            )
        return detected

    @property
    def init_dirs(self):
        return INIT_DIRS[self.version]

    @property
    def keeps_config_in_pki(self):
        """3.1 needs openssl-easyrsa.cnf in the PKI; 3.2 carries its own."""
        return self.version == EASYRSA_31

    @property
    def keeps_by_serial_copies(self):
        """3.2 (2+) leaves certs_by_serial/<SERIAL>.pem when it revokes or renews; 3.1 removes it."""
        return self.version == EASYRSA_32
