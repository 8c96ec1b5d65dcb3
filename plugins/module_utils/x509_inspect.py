# -*- coding: utf-8 -*-
# Copyright: clientvpn.pki contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reading the keys and certificates already on disk, and saying how they differ.

Loading never guesses: a file that does not parse, a key that a passphrase
does not open, a key that does not belong to its certificate are errors that
name the file and say what to do. Comparisons return human reasons, which the
modules report and use to decide keep / renew / reissue / refuse.
"""

from __future__ import annotations

import datetime

try:
    from cryptography import x509
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID
except ImportError:  # pragma: no cover - reported by the modules
    pass

from ansible_collections.clientvpn.pki.plugins.module_utils.easyrsa_index import format_serial
from ansible_collections.clientvpn.pki.plugins.module_utils.errors import PkiError
from ansible_collections.clientvpn.pki.plugins.module_utils.x509_profiles import describe_general_name


def _read(path):
    with open(path, "rb") as handle:
        return handle.read()


def load_certificate(path, data=None):
    """The certificate in ``path`` (``data``: its bytes, already read)."""
    try:
        return x509.load_pem_x509_certificate(_read(path) if data is None else data)
    except ValueError as exc:
        raise PkiError(
            "%s is not a readable PEM certificate (%s). Restore it from a backup or move it out of "
            "the PKI so it can be issued again; nothing was changed." % (path, exc)
        )


def is_encrypted_pem(data):
    return b"ENCRYPTED PRIVATE KEY" in data or b"Proc-Type: 4,ENCRYPTED" in data


def load_private_key(path, passphrase=None, passphrase_field="passphrase", check_key=True, what="its passphrase", role_variable=None, data=None):
    """Return ``(key, encrypted)``; a passphrase given for a clear key is ignored.

    ``what`` names the secret for the reader ("the CA passphrase"), ``role_variable``
    the roles' variable that sets it.

    ``passphrase_field=None``: an encrypted key is refused (leaf keys stay clear).
    ``check_key=False`` skips OpenSSL's RSA consistency check (~35 ms a key),
    for keys only compared with their certificate, never used to sign: with
    thousands of clients it is most of a run with nothing to do.
    ``data``: the file's bytes, already read.
    """
    data = _read(path) if data is None else data
    encrypted = is_encrypted_pem(data)
    if encrypted and passphrase_field is None:
        raise PkiError(
            "%s is encrypted; certificate keys stay unencrypted, as with easyrsa ... nopass (ACM and the client "
            "profiles need them in clear). Decrypt it in place (openssl pkey -in KEY -out KEY), or move it away "
            "and a new key is made. Nothing was changed." % path
        )
    in_roles = "; in the clientvpn.pki roles and playbooks, the variable %s" % role_variable if role_variable else ""
    if encrypted and not passphrase:
        raise PkiError("%s is encrypted and no passphrase was given: set %s (option %s%s). Nothing was changed." % (path, what, passphrase_field, in_roles))
    try:
        key = serialization.load_pem_private_key(
            data, password=passphrase.encode() if encrypted else None, unsafe_skip_rsa_key_validation=not check_key
        )
    except ValueError as exc:
        if encrypted:
            raise PkiError("%s does not open with the given %s: check %s%s. Nothing was changed." % (path, passphrase_field, what, in_roles))
        raise PkiError(
            "%s is not a readable PEM private key (%s). Restore it from a backup; nothing was changed." % (path, exc)
        )
    except TypeError as exc:
        raise PkiError("%s could not be loaded: %s" % (path, exc))
    return key, encrypted


def public_key_der(public_key):
    return public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def key_matches(private_key, cert):
    return public_key_der(private_key.public_key()) == public_key_der(cert.public_key())


def rsa_key_size(public_key):
    return public_key.key_size if isinstance(public_key, rsa.RSAPublicKey) else None


def key_kind(public_key):
    size = rsa_key_size(public_key)
    return "RSA %d" % size if size else type(public_key).__name__


def is_issued_by(cert, ca_cert):
    """True when ``ca_cert`` signed ``cert`` (names match and the signature verifies)."""
    try:
        cert.verify_directly_issued_by(ca_cert)
        return True
    except (ValueError, TypeError, InvalidSignature):
        return False


def common_name(cert):
    values = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return values[0].value if values else None


def subject_alt_names(cert):
    try:
        extension = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return []
    return [describe_general_name(name) for name in extension.value]


def extended_key_usages(cert):
    try:
        return set(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
    except x509.ExtensionNotFound:
        return set()


def aki_serial_hex(cert):
    """The issuer serial the authorityKeyIdentifier of a certificate or CRL names (easy-rsa's issuer:always), or None."""
    try:
        serial = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value.authority_cert_serial_number
    except x509.ExtensionNotFound:
        return None
    return format_serial(serial) if serial is not None else None


def names_other_ca_serial(cert, ca_cert):
    """True when the certificate's authorityKeyIdentifier names a CA certificate other than ``ca_cert``:
    it chains only to that other one (OpenSSL matches the serial)."""
    named = aki_serial_hex(cert)
    return named is not None and named != serial_hex(ca_cert)


def not_after(cert):
    return cert.not_valid_after_utc


def serial_hex(cert):
    return format_serial(cert.serial_number)


def facts(cert):
    """The non-secret facts that modules return and show in diffs."""
    return {
        "common_name": common_name(cert),
        "subject_alt_names": subject_alt_names(cert),
        "serial": serial_hex(cert),
        "not_before": cert.not_valid_before_utc.isoformat(),
        "not_after": not_after(cert).isoformat(),
        "key": key_kind(cert.public_key()),
    }


def expires_within(cert, days, now=None):
    now = now or datetime.datetime.now(datetime.timezone.utc)
    return not_after(cert) - now < datetime.timedelta(days=days)
