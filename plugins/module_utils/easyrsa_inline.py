# -*- coding: utf-8 -*-
# Copyright: clientvpn.pki contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""easy-rsa's inline files: a certificate's OpenVPN-ready bundle (cert, key, CA, TLS key).

easy-rsa writes one beside every certificate it issues and removes it on
revoke and renew. Here they are rendered byte for byte as easy-rsa would
write them, in the style the PKI on disk already shows; the caller writes
them (``store.write``) and removes them. Two styles exist:

``3.2.0`` (``inline_creds()``; also 3.1.2-3.1.7 with one blank line less)
    ``inline/<name>.inline``, the key included: ``# Easy-RSA Type: <type>``,
    ``# Name: <name>``, then ``<cert>``, ``<key>``, ``<ca>``. easy-rsa 3.2.0
    writes it from build-*-full only (not sign-req; it has no renew) and
    removes it on revoke only.

``3.2.x`` (``inline_file()``, rendered as 3.2.6 writes it)
    ``inline/private/<name>.inline`` when it holds a key (the certificate's
    key or the PKI's TLS key), else ``inline/<name>.inline``; the header
    gives type, commonName, SHA-256 fingerprint and decimal serial; then
    ``<cert>``, ``<key>``, ``<ca>``, a DH section for servers and the TLS
    key. Written by sign-req (so build-*-full and renew too), removed
    (both paths; 3.2.1: the public one) by revoke and renew. The older
    3.2.x differ from 3.2.6: 3.2.1-3.2.2 have no DH section, take the type
    from the sign-req command rather than the EKU, say ``codeSign`` for
    ``codeSigning`` and rewrite another README text every time; 3.2.3
    brought the DH section and the README written only when missing;
    3.2.6 the external CA list in ``<ca>``.

On disk: 3.2.0 (and 3.1.2-3.2.1) ``init-pki`` make ``inline/``; 3.2.1+
make ``inline/private/`` with the first certificate; 3.2.2+ make neither
before it. Self-signed certificates (``easyrsa self-sign-*``) are not
rendered: the modules issue only CA-signed ones.
"""

from __future__ import annotations

import os

try:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import ExtendedKeyUsageOID
except ImportError:  # pragma: no cover - reported by the modules
    pass

from ansible_collections.clientvpn.pki.plugins.module_utils.easyrsa_layout import EASYRSA_32
from ansible_collections.clientvpn.pki.plugins.module_utils.errors import PkiError
from ansible_collections.clientvpn.pki.plugins.module_utils.x509_inspect import common_name, load_certificate

STYLE_320 = "3.2.0"
STYLE_32X = "3.2.x"
README = (
    b"# Inline files in the 'private' directory contain security keys\n"
    b"# which MUST ONLY be transmitted over a SECURE connection.\n"
    b"# eg. 'https' or 'scp'.\n"
)
# bc's default BC_LINE_LENGTH (70): a longer number is split into lines of 68
# digits and a backslash (never for a serial within RFC 5280's 20 octets).
BC_DIGITS_PER_LINE = 68
DH_NOT_REQUIRED = b"# Diffie-Hellman parameters file not required\ndh none"
DH_PLACEHOLDER = b"# <dh>\n# * Paste your Diffie-Hellman parameters file here *\n# </dh>"
KEY_DIRECTIONS = {"server": b"key-direction 0", "client": b"key-direction 1"}


def _cat(data):
    """What ``$(cat file)`` gives: the content without its trailing newlines."""
    return data.rstrip(b"\n")


def _openssl_eku_names():
    """How ``openssl x509 -ext extendedKeyUsage`` names the usages."""
    return {
        ExtendedKeyUsageOID.SERVER_AUTH: "TLS Web Server Authentication",
        ExtendedKeyUsageOID.CLIENT_AUTH: "TLS Web Client Authentication",
        ExtendedKeyUsageOID.CODE_SIGNING: "Code Signing",
        ExtendedKeyUsageOID.EMAIL_PROTECTION: "E-mail Protection",
        ExtendedKeyUsageOID.TIME_STAMPING: "Time Stamping",
        ExtendedKeyUsageOID.OCSP_SIGNING: "OCSP Signing",
        ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE: "Any Extended Key Usage",
    }


def easyrsa_cert_type(cert, code_signing="codeSigning"):
    """easy-rsa's ``ssl_cert_x509v3_eku``: the type named by the EKU as openssl prints it.

    Only the exact openssl texts are known types (server then client makes
    ``serverClient``); any other EKU is its text in single quotes.
    """
    try:
        usages = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return "undefined"
    names = _openssl_eku_names()
    text = ", ".join(names.get(oid, oid.dotted_string) for oid in usages)
    known = {
        "TLS Web Server Authentication, TLS Web Client Authentication": "serverClient",
        "TLS Web Client Authentication": "client",
        "TLS Web Server Authentication": "server",
        "Code Signing": code_signing,
        "": "undefined",
    }
    return known.get(text, "'%s'" % text)


def sha256_fingerprint(cert):
    """``openssl x509 -sha256 -fingerprint`` without its prefix: upper-case hex pairs joined by colons."""
    return ":".join("%02X" % byte for byte in bytearray(cert.fingerprint(hashes.SHA256())))


def decimal_serial(cert):
    """``echo "ibase=16; <SERIAL>" | bc``, line breaks included for very long serials."""
    digits = str(cert.serial_number)
    return "\\\n".join(digits[start:start + BC_DIGITS_PER_LINE] for start in range(0, len(digits), BC_DIGITS_PER_LINE))


class InlineFiles(object):
    """The inline files easy-rsa writes for a certificate of one PKI (a ``PkiStore``)."""

    def __init__(self, store):
        self.store = store
        self._style = ()  # not found yet

    def style(self):
        """STYLE_32X (inline/private/ exists), STYLE_320 (only inline/), or None (write nothing). A 3.2
        PKI without inline/ and without a certificate yet gets STYLE_32X, as 3.2.2+ makes the folder
        with the first one; with certificates and no inline/, its easy-rsa ran with inline files off.
        Found once, so that a run decides before its first certificate."""
        if self._style == ():
            self._style = self._find_style()
        return self._style

    def _find_style(self):
        if os.path.isdir(self.store.path("inline", "private")):
            return STYLE_32X
        if os.path.isdir(self.store.path("inline")):
            return STYLE_320
        if self.store.layout.version == EASYRSA_32 and not self._has_certificates():
            return STYLE_32X
        return None

    def _has_certificates(self):
        try:
            return any(name.endswith(".crt") for name in os.listdir(self.store.path("issued")))
        except FileNotFoundError:
            return False

    def render(self, name):
        """``{absolute path: bytes}`` easy-rsa would write after issuing ``issued/<name>.crt``; {} without a style."""
        style = self.style()
        if style is None:
            return {}
        cert_path = self.store.cert(name)
        if not os.path.isfile(cert_path):
            raise PkiError("%s is missing: there is no certificate to write the inline file of '%s' from." % (cert_path, name))
        cert_pem = _cat(self.store.read(cert_path))
        cert = load_certificate(cert_path)
        if style == STYLE_320:
            return {self.store.path("inline", name + ".inline"): self._render_320(name, cert, cert_pem)}
        files = {}
        readme = self.store.path("inline", "private", "README.inline.private")
        if not os.path.exists(readme):
            files[readme] = README
        path, body = self._render_32x(name, cert, cert_pem)
        files[path] = body
        return files

    def removed_paths(self, name):
        """The inline files of ``name`` that easy-rsa 3.2.2+ revoke and renew delete (``rm -f``: some may not exist)."""
        return [self.store.path("inline", name + ".inline"), self.store.path("inline", "private", name + ".inline")]

    # -- sources ------------------------------------------------------------------------
    def _optional(self, *parts):
        """``$(cat file)`` of a PKI file, or None when it is missing."""
        path = self.store.path(*parts)
        return _cat(self.store.read(path)) if os.path.isfile(path) else None

    def _key_section(self, name, missing):
        key = self._optional("private", name + ".key")
        return b"<key>\n" + key + b"\n</key>" if key is not None else missing

    # -- 3.2.0 -------------------------------------------------------------------------
    def _render_320(self, name, cert, cert_pem):
        ca = self._optional("ca.crt")
        lines = [
            ("# Easy-RSA Type: %s" % easyrsa_cert_type(cert, code_signing="codeSign")).encode("utf-8"),
            ("# Name: %s" % name).encode("utf-8"),
        ]
        if self.store.layout.version == EASYRSA_32:
            lines.append(b"")  # the self-signed details 3.2.0 prints, empty for a CA-signed certificate
        lines += [
            b"",
            b"<cert>\n" + cert_pem + b"\n</cert>",
            b"",
            self._key_section(name, b"<key>\n* Paste your private key here *\n</key>"),
            b"",
            b"<ca>\n" + ca + b"\n</ca>" if ca is not None else b"<ca>\n* Paste your CA certificate here *\n</ca>",
            b"",
        ]
        return b"\n".join(lines) + b"\n"

    # -- 3.2.x (3.2.6) -------------------------------------------------------------------
    def _render_32x(self, name, cert, cert_pem):
        cert_type = easyrsa_cert_type(cert)
        cn = common_name(cert)
        if cn is None:
            raise PkiError("%s has no commonName: easy-rsa cannot write its inline file either." % self.store.cert(name))
        tls_section, tls_private = self._tls_section(cert_type)
        key_section = self._key_section(name, (
            b"# When you recieve your key place it in the\n"
            b"# 'pki/private' sub-dir of your PKI and use command 'inline'\n"
            b"# to rebuild this inline file with your key.\n"
            b"# <key>\n# * Paste your private key here *\n# </key>"
        ))
        header = "# Easy-RSA Inline file\n# Certificate type: %s\n# commonName: %s\n# SHA256 fingerprint:\n# %s\n# Decimal serial number: %s" % (
            cert_type, cn, sha256_fingerprint(cert), decimal_serial(cert))
        body = b"\n\n".join((
            header.encode("utf-8"),
            b"<cert>\n" + cert_pem + b"\n</cert>",
            key_section,
            self._ca_section(cert_type, cert),
            tls_section,
        )) + b"\n\n"
        private = key_section.startswith(b"<key>") or tls_private
        return self.store.path(*(("inline", "private") if private else ("inline",)) + (name + ".inline",)), body

    def _ca_section(self, cert_type, cert):
        """``<ca>`` (with inline/external-ca.list) and, for servers, the DH parameters."""
        ca = self._optional("ca.crt")
        if ca is None:
            section = (
                b"# When you recieve your CA certificate place it in the\n"
                b"# 'pki' sub-dir of your PKI and use command 'inline'\n"
                b"# to rebuild this inline file with your CA certificate.\n"
                b"# <ca>\n# * Paste your CA certificate here *\n# </ca>"
            )
        else:
            external = self._optional("inline", "external-ca.list")
            section = b"<ca>\n" + ca + (b"\n" + external if external is not None else b"") + b"\n</ca>"
        if cert_type not in ("server", "serverClient"):
            return section
        # easy-rsa asks EASYRSA_ALGO (rsa unless set); the certificate's key says what it was.
        if not isinstance(cert.public_key(), rsa.RSAPublicKey):
            return section + b"\n\n" + DH_NOT_REQUIRED
        dh = self._optional("dh.pem")
        return section + b"\n\n" + (b"<dh>\n" + dh + b"\n</dh>" if dh is not None else DH_PLACEHOLDER)

    def _tls_section(self, cert_type):
        """The TLS-AUTH / TLS-CRYPT key section, and whether it puts the file in inline/private/."""
        key = self._optional("private", "easyrsa-tls.key")
        label = b""
        if key is not None:
            label = b"tls-auth" if b"TLS-AUTH" in key else b"tls-crypt" if b"TLS-CRYPT" in key else b""
        private = False
        if os.path.isfile(self.store.path("easyrsa-keepsafe-tls.key")):
            # That PSK was shared already: easy-rsa leaves a note, not the key.
            section = b"# Add the existing TLS AUTH/CRYPT-V1 Key here:\n# <%s>\n# * Paste The existing pre-shared TLS key here *\n# </%s>" % (label, label)
            if label == b"tls-auth":
                section += b"\n#\n# Add the required 'key-direction 0|1' here:\n# key-direction 1"
            label = b""
        elif key is not None:
            private = True
            section = b"<%s>\n%s\n</%s>" % (label, key, label) if label else b"# Easy-RSA TLS Key not recognised!"
        else:
            section = b"# Easy-RSA TLS Key not found!"
        direction = KEY_DIRECTIONS.get(cert_type)
        if direction is None:
            return ("# No TLS Key support for cert-type: %s" % cert_type).encode("utf-8"), private
        if label == b"tls-auth":
            section += b"\n\n" + direction
        return section, private
