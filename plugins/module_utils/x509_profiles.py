# -*- coding: utf-8 -*-
# Copyright: clientvpn.pki contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a CA, a server and a client certificate are, and how they are made.

The extensions are easy-rsa's ``x509-types/`` (``ca``, ``server``, ``client``)
so certificates made here are indistinguishable in purpose from the ones
``easyrsa build-ca`` / ``build-server-full`` / ``build-client-full`` make.
"""

from __future__ import annotations

import datetime
import ipaddress
import multiprocessing
import os
import re
import signal
from urllib.parse import urlsplit

try:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    HAS_CRYPTOGRAPHY = True
    CRYPTOGRAPHY_IMPORT_ERROR = None
except ImportError as exc:  # pragma: no cover - reported by the modules
    HAS_CRYPTOGRAPHY = False
    CRYPTOGRAPHY_IMPORT_ERROR = exc

from ansible_collections.clientvpn.pki.plugins.module_utils.errors import PkiError

CERT_TYPES = ("server", "client")
# The signature digests a module offers (the `digest` option of vpn_ca, vpn_cert, vpn_crl).
DIGESTS = ("sha256", "sha384", "sha512")
PUBLIC_EXPONENT = 65537


def extended_key_usage(cert_type):
    """The one EKU purpose of each easy-rsa type."""
    return {"server": ExtendedKeyUsageOID.SERVER_AUTH, "client": ExtendedKeyUsageOID.CLIENT_AUTH}[cert_type]


def _key_usage(cert_sign=False, key_encipherment=False):
    return x509.KeyUsage(
        digital_signature=not cert_sign,
        content_commitment=False,
        key_encipherment=key_encipherment,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def digest_of(name):
    return getattr(hashes, name.upper())()


def _cn_name(common_name):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _validity(days):
    now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    return now, now + datetime.timedelta(days=days)


# -- subject alternative names ------------------------------------------------
# A DNS name as RFC 5280 (4.2.1.6) and ACM take it: LDH labels (RFC 1123) of 1-63 characters,
# at most 253 in all, optionally under one leading wildcard label.
MAX_DNS_NAME_LENGTH = 253
_DNS_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\Z")


def _punycode(name):
    """The IDNA (punycode) form of a non-ASCII domain, or None when it has none."""
    try:
        return name.encode("idna").decode("ascii")
    except UnicodeError:
        return None


def _dns_name_problem(name, wildcard=True):
    """Why ``name`` is not a DNS name for a certificate, or None."""
    if not name.isascii():
        ascii_form = _punycode(name)
        return "it is not ASCII: write the punycode form%s" % (" %s" % ascii_form if ascii_form else "")
    if len(name) > MAX_DNS_NAME_LENGTH:
        return "it is %d characters long, more than %d" % (len(name), MAX_DNS_NAME_LENGTH)
    labels = name.split(".")
    if wildcard and len(labels) > 1 and labels[0] == "*":
        labels = labels[1:]
    for label in labels:
        if not _DNS_LABEL.match(label):
            return (
                "label %r is not 1-63 letters, digits and inner hyphens (labels are separated by single dots; "
                "a wildcard is only a leading '*.')" % label
            )
    return None


def _san_problem(kind, value):
    """Why ``value`` cannot be a SAN of ``kind``, or None."""
    if kind == "DNS":
        problem = _dns_name_problem(value)
        return problem and "%r is not a DNS name: %s" % (value, problem)
    if kind == "email":
        local, at_sign, domain = value.rpartition("@")
        local_ok = bool(at_sign and local) and local.isascii() and not any(char.isspace() for char in local)
        if local_ok and not domain.isascii() and _punycode(domain):
            return "%r is not ASCII: write its domain in punycode, email:%s@%s" % (value, local, _punycode(domain))
        if not local_ok or _dns_name_problem(domain, wildcard=False):
            return "%r is not an email address: write it as email:local@domain, in ASCII" % value
        return None
    if kind == "URI":
        if any(char.isspace() for char in value) or not value.isascii():
            return "%r is not a URI: a URI has no spaces and is ASCII (percent-encode the rest)" % value
        if not urlsplit(value).scheme:
            return "%r is not a URI: it needs a scheme, as in URI:https://vpn.example.com/" % value
    return None


def normalize_san(entry):
    """``DNS:x`` / ``IP:x`` / ``email:x`` / ``URI:x`` (easy-rsa's --san syntax), canonical case.

    Every entry is checked here, before any key is made: cryptography would refuse
    the certificate only after the key was written.
    """
    prefix, sep, value = str(entry).partition(":")
    kind = {"dns": "DNS", "ip": "IP", "email": "email", "uri": "URI"}.get(prefix.strip().lower())
    value = value.strip()
    if not sep or kind is None or not value:
        raise PkiError(
            "subject_alt_names entry '%s' is not understood: write it as DNS:name, IP:address, "
            "email:address or URI:uri (as in easyrsa --san=DNS:server)." % (entry,)
        )
    if kind == "IP":
        try:
            value = str(ipaddress.ip_address(value))
        except ValueError:
            raise PkiError("subject_alt_names entry '%s': %r is not an IP address." % (entry, value))
    problem = _san_problem(kind, value)
    if problem:
        raise PkiError("subject_alt_names entry '%s': %s." % (entry, problem))
    return "%s:%s" % (kind, value)


def _general_name(san):
    kind, value = san.split(":", 1)
    if kind == "DNS":
        return x509.DNSName(value)
    if kind == "IP":
        return x509.IPAddress(ipaddress.ip_address(value))
    if kind == "email":
        return x509.RFC822Name(value)
    return x509.UniformResourceIdentifier(value)


def describe_general_name(name):
    if isinstance(name, x509.DNSName):
        return "DNS:" + name.value
    if isinstance(name, x509.IPAddress):
        return "IP:" + str(name.value)
    if isinstance(name, x509.RFC822Name):
        return "email:" + name.value
    if isinstance(name, x509.UniformResourceIdentifier):
        return "URI:" + name.value
    return "other:" + repr(name.value)


# -- keys -----------------------------------------------------------------------
def generate_key(key_size):
    return rsa.generate_private_key(public_exponent=PUBLIC_EXPONENT, key_size=key_size)


def _default_signals():
    """A key worker's signals as Python starts them: it may be forked from a process with handlers of
    its own (Ansible's worker, when the action runs the backend there), which a worker must not run:
    the pool's terminate() would wait for a worker that never ends."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)


def _generate_key_der(key_size):
    key = generate_key(key_size)
    return key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


def generate_keys(key_sizes):
    """New RSA keys, in order, made on every core: key generation is what a first run of
    many clients costs.

    A generator: the caller signs and writes each certificate while the workers make
    the next keys, so that work hides behind key generation instead of following it.
    Worker processes are forked (no re-import of the module) and hand back DER, which
    is loaded without the RSA check the worker's key generation just satisfied.
    """
    workers = min(len(key_sizes), os.cpu_count() or 1)
    if workers < 2:
        for size in key_sizes:
            yield generate_key(size)
        return
    with multiprocessing.get_context("fork").Pool(workers, initializer=_default_signals) as pool:
        for der in pool.imap(_generate_key_der, key_sizes, chunksize=max(1, min(16, len(key_sizes) // (workers * 4)))):
            yield serialization.load_der_private_key(der, password=None, unsafe_skip_rsa_key_validation=True)


def key_to_pem(key, passphrase=None):
    """PKCS#8 PEM like easy-rsa 3; encrypted when a passphrase is given."""
    encryption = serialization.BestAvailableEncryption(passphrase.encode()) if passphrase else serialization.NoEncryption()
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)


def to_pem(cert_or_request):
    return cert_or_request.public_bytes(serialization.Encoding.PEM)


# -- certificates -------------------------------------------------------------
def build_ca(key, common_name, days, digest):
    """A self-signed CA as ``easyrsa build-ca`` makes it (x509-types/ca)."""
    name = _cn_name(common_name)
    serial = x509.random_serial_number()
    not_before, not_after = _validity(days)
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        # critical, as easy-rsa 3.2.6+ and RFC 5280 want for a CA
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(ski, critical=False)
        # keyid:always,issuer:always
        .add_extension(
            x509.AuthorityKeyIdentifier(ski.digest, [x509.DirectoryName(name)], serial),
            critical=False,
        )
        .add_extension(_key_usage(cert_sign=True), critical=False)
    )
    return builder.sign(key, digest_of(digest))


def renew_ca(old, key, days):
    """The CA certificate renewed: the same key, subject and key identifier (every certificate and CRL
    the CA signed still names it), a new serial and validity, the old extensions with their
    criticality, and an authorityKeyIdentifier with the key identifier only, so that nothing names a
    serial (docs/ca-renewal.md). Signed with the old certificate's digest."""
    not_before, not_after = _validity(days)
    ski = _has_ski(old) and old.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    ski = ski or x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    builder = (
        x509.CertificateBuilder()
        .subject_name(old.subject)
        .issuer_name(old.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(ski, critical=False)
        .add_extension(x509.AuthorityKeyIdentifier(ski.digest, None, None), critical=False)
    )
    for extension in old.extensions:
        if not isinstance(extension.value, (x509.SubjectKeyIdentifier, x509.AuthorityKeyIdentifier)):
            builder = builder.add_extension(extension.value, critical=extension.critical)
    return builder.sign(key, old.signature_hash_algorithm)


def build_request(key, common_name, subject_alt_names, digest):
    """The request easy-rsa keeps in reqs/<name>.req (with the SANs it asked for)."""
    builder = x509.CertificateSigningRequestBuilder().subject_name(_cn_name(common_name))
    if subject_alt_names:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([_general_name(san) for san in subject_alt_names]), critical=False
        )
    return builder.sign(key, digest_of(digest))


def sign_leaf(ca_cert, ca_key, public_key, spec, serial):
    """Sign a server or client certificate the way easy-rsa's x509-types do.

    ``spec`` is a LeafSpec (common_name, subject_alt_names, cert_type, days, digest).
    """
    not_before, not_after = _validity(spec.days)
    ca_ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest if _has_ski(ca_cert) else None
    # keyid only, unlike easy-rsa's keyid,issuer:always: a leaf that names its CA certificate's serial
    # no longer chains once the CA certificate is renewed (same key, new serial): docs/ca-renewal.md.
    if ca_ski is not None:
        authority_key_id = x509.AuthorityKeyIdentifier(ca_ski, None, None)
    else:  # a CA without a key identifier (adopted): its name and serial are all there is
        authority_key_id = x509.AuthorityKeyIdentifier(None, [x509.DirectoryName(ca_cert.issuer)], ca_cert.serial_number)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_cn_name(spec.common_name))
        .issuer_name(ca_cert.subject)
        .public_key(public_key)
        .serial_number(serial)
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        # keyid,issuer:always
        .add_extension(authority_key_id, critical=False)
        .add_extension(x509.ExtendedKeyUsage([extended_key_usage(spec.cert_type)]), critical=False)
        .add_extension(_key_usage(key_encipherment=spec.cert_type == "server"), critical=False)
    )
    if spec.subject_alt_names:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([_general_name(san) for san in spec.subject_alt_names]), critical=False
        )
    return builder.sign(ca_key, digest_of(spec.digest))


def _has_ski(cert):
    try:
        cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
        return True
    except x509.ExtensionNotFound:
        return False
