# -*- coding: utf-8 -*-
# Copyright: clientvpn.pki contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""x509_profiles (what easy-rsa's x509-types make) and x509_inspect (reading them back)."""

from __future__ import annotations

import datetime
import os
import signal
import subprocess
import sys

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID

from ansible_collections.clientvpn.pki.plugins.module_utils import x509_inspect
from ansible_collections.clientvpn.pki.plugins.module_utils.certificate_facts import CertFacts
from ansible_collections.clientvpn.pki.plugins.module_utils.errors import PkiError
from ansible_collections.clientvpn.pki.plugins.module_utils.x509_profiles import (
    build_ca,
    build_request,
    generate_key,
    key_to_pem,
    normalize_san,
    sign_leaf,
    to_pem,
)


def ext(cert, cls):
    return cert.extensions.get_extension_for_class(cls)


@pytest.fixture(scope="module")
def ca():
    key = generate_key(1024)
    return build_ca(key, "Profile CA", 3650, "sha256"), key


@pytest.fixture
def issued(pki, helpers):
    helpers.issue(pki, "server", "server")
    helpers.issue(pki, "client1", "client")
    return {
        "ca": x509_inspect.load_certificate(pki.ca_cert),
        "server": x509_inspect.load_certificate(pki.cert("server")),
        "client": x509_inspect.load_certificate(pki.cert("client1")),
    }


# -- the CA ---------------------------------------------------------------------------
def test_ca_extensions(ca):
    cert, key = ca
    basic = ext(cert, x509.BasicConstraints)
    assert basic.critical is True
    assert basic.value.ca is True
    usage = ext(cert, x509.KeyUsage).value
    assert usage.key_cert_sign and usage.crl_sign
    assert not usage.digital_signature and not usage.key_encipherment
    ski = ext(cert, x509.SubjectKeyIdentifier).value
    assert ski.digest == x509.SubjectKeyIdentifier.from_public_key(key.public_key()).digest
    aki = ext(cert, x509.AuthorityKeyIdentifier).value
    assert aki.key_identifier == ski.digest
    assert aki.authority_cert_issuer == [x509.DirectoryName(cert.subject)]
    assert aki.authority_cert_serial_number == cert.serial_number
    assert cert.subject == cert.issuer
    assert x509_inspect.common_name(cert) == "Profile CA"
    assert x509_inspect.is_issued_by(cert, cert)


def test_ca_validity(ca):
    cert, dummy = ca
    length = cert.not_valid_after_utc - cert.not_valid_before_utc
    assert length == datetime.timedelta(days=3650)
    assert abs(cert.not_valid_before_utc - datetime.datetime.now(datetime.timezone.utc)) < datetime.timedelta(minutes=5)


def test_ca_made_by_ca_manager(issued):
    ca = issued["ca"]
    assert ext(ca, x509.BasicConstraints).value.ca is True
    assert x509_inspect.rsa_key_size(ca.public_key()) == 1024


# -- leaf certificates --------------------------------------------------------------------
def test_server_certificate(issued):
    ca, cert = issued["ca"], issued["server"]
    assert x509_inspect.extended_key_usages(cert) == {ExtendedKeyUsageOID.SERVER_AUTH}
    usage = ext(cert, x509.KeyUsage).value
    assert usage.digital_signature and usage.key_encipherment
    assert not (usage.key_cert_sign or usage.crl_sign or usage.content_commitment or usage.data_encipherment or usage.key_agreement)
    assert x509_inspect.subject_alt_names(cert) == ["DNS:server"]
    basic = ext(cert, x509.BasicConstraints).value
    assert basic.ca is False
    aki = ext(cert, x509.AuthorityKeyIdentifier).value
    # keyid only: a leaf naming the CA certificate's serial would not chain to a renewed CA certificate
    assert aki.key_identifier == ext(ca, x509.SubjectKeyIdentifier).value.digest
    assert aki.authority_cert_serial_number is None and aki.authority_cert_issuer is None
    assert ext(cert, x509.SubjectKeyIdentifier).value.digest == x509.SubjectKeyIdentifier.from_public_key(cert.public_key()).digest
    assert cert.issuer == ca.subject
    assert x509_inspect.is_issued_by(cert, ca)
    assert x509_inspect.common_name(cert) == "server"


def test_client_certificate(issued):
    ca, cert = issued["ca"], issued["client"]
    assert x509_inspect.extended_key_usages(cert) == {ExtendedKeyUsageOID.CLIENT_AUTH}
    usage = ext(cert, x509.KeyUsage).value
    assert usage.digital_signature
    assert not (usage.key_encipherment or usage.key_cert_sign or usage.crl_sign)
    assert x509_inspect.subject_alt_names(cert) == []
    with pytest.raises(x509.ExtensionNotFound):
        ext(cert, x509.SubjectAlternativeName)
    assert ext(cert, x509.BasicConstraints).value.ca is False
    assert ext(cert, x509.AuthorityKeyIdentifier).value.key_identifier == ext(ca, x509.SubjectKeyIdentifier).value.digest
    assert x509_inspect.is_issued_by(cert, ca)
    assert not x509_inspect.is_issued_by(cert, issued["server"])


def test_sign_leaf_serial_days_digest_and_sans(ca, helpers):
    ca_cert, ca_key = ca
    key = generate_key(1024)
    spec = helpers.specs("srv", "server", subject_alt_names=["DNS:vpn.example.com", "IP:10.0.0.1", "email:a@b.c", "URI:https://x"], days=10, digest="sha384")[0]
    cert = sign_leaf(ca_cert, ca_key, key.public_key(), spec, 0xABCDEF)
    assert cert.serial_number == 0xABCDEF
    assert x509_inspect.serial_hex(cert) == "ABCDEF"
    assert cert.not_valid_after_utc - cert.not_valid_before_utc == datetime.timedelta(days=10)
    assert cert.signature_hash_algorithm.name == "sha384"
    assert sorted(x509_inspect.subject_alt_names(cert)) == sorted(["DNS:vpn.example.com", "IP:10.0.0.1", "email:a@b.c", "URI:https://x"])
    assert x509_inspect.key_matches(key, cert)
    assert not x509_inspect.key_matches(ca_key, cert)
    assert x509_inspect.expires_within(cert, 11)
    assert not x509_inspect.expires_within(cert, 9)
    assert CertFacts.of(cert, ca_cert).differences(spec) == []
    facts = x509_inspect.facts(cert)
    assert facts["serial"] == "ABCDEF" and facts["key"] == "RSA 1024" and facts["common_name"] == "srv"


def test_leaf_differences_names_what_differs(ca, helpers):
    ca_cert, ca_key = ca
    key = generate_key(1024)
    cert = sign_leaf(ca_cert, ca_key, key.public_key(), helpers.specs("srv", "server")[0], 5)
    other = helpers.specs("srv", "client", common_name="other")[0]
    reasons = CertFacts.of(cert, ca_cert).differences(other)
    assert len(reasons) == 3
    assert "common name is 'srv', wanted 'other'" in reasons[0]
    assert "DNS:srv" in reasons[1]
    assert "client-only" in reasons[2]


def test_build_request_carries_sans():
    key = generate_key(1024)
    request = build_request(key, "server", ["DNS:server"], "sha256")
    assert request.is_signature_valid
    sans = request.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["server"]


# -- subject alternative names ------------------------------------------------------------
@pytest.mark.parametrize(
    "entry, normal",
    [
        ("dns:x", "DNS:x"),
        ("DNS:server", "DNS:server"),
        (" Dns : vpn.example.com ", "DNS:vpn.example.com"),
        ("ip:10.0.0.1", "IP:10.0.0.1"),
        ("IP:2001:DB8::1", "IP:2001:db8::1"),
        ("EMAIL:a@b.c", "email:a@b.c"),
        ("uri:https://example.com/x", "URI:https://example.com/x"),
    ],
)
def test_normalize_san(entry, normal):
    assert normalize_san(entry) == normal


def test_normalize_san_leading_zero_ip_is_refused_or_normalized():
    try:
        result = normalize_san("IP:010.0.0.1")
    except PkiError as exc:
        assert "010.0.0.1" in str(exc)
    else:
        # never read as octal 8.0.0.1
        assert result == "IP:10.0.0.1"


@pytest.mark.parametrize("entry", ["garbage", "server", "DNS:", "FOO:bar", ":x", "IP:not-an-ip", "IP:300.1.1.1", ""])
def test_normalize_san_garbage(entry):
    with pytest.raises(PkiError) as caught:
        normalize_san(entry)
    assert repr(entry) in str(caught.value)


# -- keys -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def key():
    return generate_key(1024)


def test_key_to_pem_is_pkcs8(key):
    assert key_to_pem(key).startswith(b"-----BEGIN PRIVATE KEY-----")
    assert key_to_pem(key, "pw").startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")


def test_load_clear_key(tmp_path, key):
    path = tmp_path / "k.key"
    path.write_bytes(key_to_pem(key))
    loaded, encrypted = x509_inspect.load_private_key(str(path))
    assert encrypted is False
    assert x509_inspect.public_key_der(loaded.public_key()) == x509_inspect.public_key_der(key.public_key())
    # a passphrase given for a clear key is ignored
    loaded, encrypted = x509_inspect.load_private_key(str(path), "unused")
    assert encrypted is False


def test_load_encrypted_key(tmp_path, key):
    path = tmp_path / "k.key"
    path.write_bytes(key_to_pem(key, "s3cret"))
    loaded, encrypted = x509_inspect.load_private_key(str(path), "s3cret")
    assert encrypted is True
    assert x509_inspect.public_key_der(loaded.public_key()) == x509_inspect.public_key_der(key.public_key())


def test_encrypted_key_without_passphrase_names_field(tmp_path, key):
    path = tmp_path / "k.key"
    path.write_bytes(key_to_pem(key, "s3cret"))
    with pytest.raises(PkiError) as caught:
        x509_inspect.load_private_key(str(path), None, "ca_passphrase")
    assert "ca_passphrase" in str(caught.value)
    assert str(path) in str(caught.value)


def test_traditional_encrypted_key_without_passphrase(tmp_path, key):
    path = tmp_path / "k.key"
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.BestAvailableEncryption(b"pw")
    )
    path.write_bytes(pem)
    with pytest.raises(PkiError, match="ca_passphrase"):
        x509_inspect.load_private_key(str(path), None, "ca_passphrase")


def test_wrong_passphrase(tmp_path, key):
    path = tmp_path / "k.key"
    path.write_bytes(key_to_pem(key, "s3cret"))
    with pytest.raises(PkiError) as caught:
        x509_inspect.load_private_key(str(path), "Hunter2xyz", "ca_passphrase")
    assert str(path) in str(caught.value)
    assert "ca_passphrase" in str(caught.value)
    assert "Hunter2xyz" not in str(caught.value)


@pytest.mark.parametrize("data", [b"garbage", b"", b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"])
def test_garbage_key(tmp_path, data):
    path = tmp_path / "k.key"
    path.write_bytes(data)
    with pytest.raises(PkiError) as caught:
        x509_inspect.load_private_key(str(path))
    assert str(path) in str(caught.value)


# -- certificates on disk -------------------------------------------------------------------------
def test_load_certificate_garbage(tmp_path):
    path = tmp_path / "c.crt"
    path.write_bytes(b"this is not a certificate\n")
    with pytest.raises(PkiError) as caught:
        x509_inspect.load_certificate(str(path))
    assert str(path) in str(caught.value)


def test_load_certificate_truncated(tmp_path, ca):
    pem = to_pem(ca[0])
    path = tmp_path / "c.crt"
    path.write_bytes(pem[: len(pem) // 2])
    with pytest.raises(PkiError) as caught:
        x509_inspect.load_certificate(str(path))
    assert str(path) in str(caught.value)


def test_load_certificate_with_corrupt_body(tmp_path, ca):
    lines = to_pem(ca[0]).split(b"\n")
    lines[3] = b"A" * len(lines[3])
    path = tmp_path / "c.crt"
    path.write_bytes(b"\n".join(lines))
    with pytest.raises(PkiError) as caught:
        x509_inspect.load_certificate(str(path))
    assert str(path) in str(caught.value)


def test_load_certificate_after_easyrsa_text_dump(tmp_path, ca):
    """easy-rsa 3.1 writes issued/<name>.crt as `openssl x509 -text` output followed by the PEM."""
    cert = ca[0]
    dump = (
        "Certificate:\n"
        "    Data:\n"
        "        Version: 3 (0x2)\n"
        "        Serial Number:\n"
        "            f7:d1:fb:8d:1f:d5:1d:fb:fe:e8:d3:1c:98:79:5d:f1\n"
        "        Signature Algorithm: sha256WithRSAEncryption\n"
        "        Issuer: CN=Profile CA\n"
        "        Validity\n"
        "            Not Before: Nov 24 20:06:30 2026 GMT\n"
        "            Not After : Feb 26 20:06:30 2029 GMT\n"
        "        Subject: CN=server\n"
        "        X509v3 extensions:\n"
        "            X509v3 Basic Constraints: \n"
        "                CA:FALSE\n"
        "    Signature Algorithm: sha256WithRSAEncryption\n"
        "    Signature Value:\n"
        "        3a:4f:00:11\n"
    ).encode()
    path = tmp_path / "server.crt"
    path.write_bytes(dump + to_pem(cert))
    loaded = x509_inspect.load_certificate(str(path))
    assert loaded.serial_number == cert.serial_number
    assert loaded == cert


def test_key_kind_and_is_encrypted_pem(key):
    assert x509_inspect.key_kind(key.public_key()) == "RSA 1024"
    assert x509_inspect.is_encrypted_pem(key_to_pem(key, "x"))
    assert not x509_inspect.is_encrypted_pem(key_to_pem(key))


def test_key_workers_end_when_forked_from_a_process_with_its_own_signal_handlers(tmp_path):
    """Ansible's worker (where the action runs the backend) handles SIGTERM itself; key workers forked
    from it must not, or the pool's terminate() waits for them forever."""
    collections = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..", "..", "..", "..", ".."))
    code = (
        "import signal\n"
        "signal.signal(signal.SIGTERM, lambda *args: None)\n"
        "from ansible_collections.clientvpn.pki.plugins.module_utils.x509_profiles import generate_keys\n"
        "print(len(list(generate_keys([1024] * 6))))\n"
    )
    env = dict(os.environ, PYTHONPATH=collections + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the process and the key workers it waits for
        proc.communicate()
        pytest.fail("generate_keys never returned: its key workers did not end")
    assert proc.returncode == 0 and out.strip() == "6", err
