# -*- coding: utf-8 -*-
# Copyright: clientvpn.pki contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Inline files rendered byte for byte as easy-rsa writes them.

The reference is the inline files real easy-rsa 3.2.0 / 3.2.2 / 3.2.6 wrote
into tests/fixtures/easyrsa (make-fixtures.sh): each is rendered again from
its PKI's own files. The sections no fixture has (TLS keys, dh.pem, an EC
server, the external CA list, a missing key) are checked against the text
of easy-rsa 3.2.6's ``inline_file()``.
"""

from __future__ import annotations

import datetime
import glob
import os
import shutil

import pytest

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ansible_collections.clientvpn.pki.plugins.module_utils.easyrsa_inline import DH_PLACEHOLDER, README, STYLE_320, STYLE_32X, InlineFiles
from ansible_collections.clientvpn.pki.plugins.module_utils.errors import PkiError
from ansible_collections.clientvpn.pki.plugins.module_utils.pki_store import PkiStore

COLLECTION = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..", ".."))
FIXTURES = os.path.join(COLLECTION, "tests", "fixtures", "easyrsa")
STYLES = {"3.2.0": STYLE_320, "3.2.2": STYLE_32X, "3.2.6": STYLE_32X}
PKIS = [(version, mode) for version in sorted(STYLES) for mode in ("seed", "passphrase")]
# Every inline file the real scripts wrote: (version, mode, path inside the PKI).
INLINE_FILES = sorted(
    (version, mode, os.path.relpath(path, os.path.join(FIXTURES, version, mode)))
    for version, mode in PKIS
    for path in glob.glob(os.path.join(FIXTURES, version, mode, "inline", "**", "*.inline"), recursive=True)
)
TLS_KEY_BODY = (
    "#\n# 2048 bit OpenVPN static key\n#\n-----BEGIN OpenVPN Static key V1-----\n"
    + "".join("%032x\n" % (line * 0x0123456789ABCDEF) for line in range(1, 17))
    + "-----END OpenVPN Static key V1-----\n"
)
DH_PEM = b"-----BEGIN DH PARAMETERS-----\nMIIBCAKCAQEA//8=\n-----END DH PARAMETERS-----\n"


def read(path):
    with open(path, "rb") as handle:
        return handle.read()


def write(path, data):
    with open(path, "wb") as handle:
        handle.write(data)


def fixture_pki(tmp_path, version, mode):
    root = str(tmp_path / "pki")
    shutil.copytree(os.path.join(FIXTURES, version, mode), root)
    return PkiStore(root)


def name_of(relative_path):
    return os.path.basename(relative_path)[:-len(".inline")]


def test_every_fixture_pki_has_its_inline_files():
    # 3 certificates in seed (the revoked one's was removed), 1 in passphrase, per version
    assert len(INLINE_FILES) == 12, INLINE_FILES


@pytest.mark.parametrize("version, mode, relative_path", INLINE_FILES, ids=["/".join(case) for case in INLINE_FILES])
def test_renders_what_easyrsa_wrote(tmp_path, version, mode, relative_path):
    store = fixture_pki(tmp_path, version, mode)
    name = name_of(relative_path)
    expected = read(store.path(relative_path))
    os.remove(store.path(relative_path))  # rendered from the certificate, key and CA only
    expired = store.path("expired", name + ".crt")
    if version == "3.2.0" and os.path.exists(expired):
        # 3.2.0's sign-req writes no inline file: the one there is build-*-full's, of the expired certificate
        shutil.copy(expired, store.cert(name))
    if version == "3.2.2" and b"# Certificate type: server\n" in expected:
        # rendered as 3.2.6 writes it: 3.2.3 added the DH section of server certificates
        expected = expected.replace(b"\n</ca>\n\n", b"\n</ca>\n\n" + DH_PLACEHOLDER + b"\n\n")
    rendered = InlineFiles(store).render(name)
    assert rendered[store.path(relative_path)] == expected
    assert set(rendered) <= {store.path(relative_path), store.path("inline", "private", "README.inline.private")}


@pytest.mark.parametrize("version, mode", PKIS)
def test_style_of_each_fixture(tmp_path, version, mode):
    assert InlineFiles(fixture_pki(tmp_path, version, mode)).style() == STYLES[version]


def test_no_inline_folder_means_nothing_to_write(tmp_path):
    store = fixture_pki(tmp_path, "3.2.6", "seed")
    shutil.rmtree(store.path("inline"))
    inline = InlineFiles(store)
    assert inline.style() is None
    assert inline.render("server") == {}


def test_inline_folder_without_private_is_the_320_style(tmp_path):
    store = fixture_pki(tmp_path, "3.2.6", "seed")
    shutil.rmtree(store.path("inline", "private"))
    rendered = InlineFiles(store).render("client1.domain.tld")
    assert list(rendered) == [store.path("inline", "client1.domain.tld.inline")]
    assert rendered[store.path("inline", "client1.domain.tld.inline")].startswith(b"# Easy-RSA Type: client\n# Name: client1.domain.tld\n\n\n<cert>\n")


def test_readme_is_written_only_when_missing(tmp_path):
    store = fixture_pki(tmp_path, "3.2.2", "seed")  # 3.2.2's README says it in other words
    readme = store.path("inline", "private", "README.inline.private")
    assert readme not in InlineFiles(store).render("server")
    os.remove(readme)
    assert InlineFiles(store).render("server")[readme] == README == read(os.path.join(FIXTURES, "3.2.6", "seed", "inline", "private", "README.inline.private"))


def _with_tls_key(store, kind):
    write(store.path("private", "easyrsa-tls.key"), ("# Easy-RSA %s Key\n%s" % (kind, TLS_KEY_BODY)).encode())
    return ("# Easy-RSA %s Key\n%s" % (kind, TLS_KEY_BODY.rstrip("\n"))).encode()


def _up_to_ca(body):
    return body[:body.index(b"\n</ca>\n") + len(b"\n</ca>\n")]


def test_server_with_tls_crypt_key_and_dh_params(tmp_path):
    store = fixture_pki(tmp_path, "3.2.6", "seed")
    fixture = read(store.path("inline", "private", "server.inline"))
    key = _with_tls_key(store, "TLS-CRYPT")
    write(store.path("dh.pem"), DH_PEM)
    body = InlineFiles(store).render("server")[store.path("inline", "private", "server.inline")]
    assert _up_to_ca(body) == _up_to_ca(fixture)
    assert body[len(_up_to_ca(fixture)):] == b"\n<dh>\n" + DH_PEM.rstrip(b"\n") + b"\n</dh>\n\n<tls-crypt>\n" + key + b"\n</tls-crypt>\n\n"


@pytest.mark.parametrize("name, before, direction", [
    ("server", b"\n# </dh>", b"key-direction 0"),
    ("client1.domain.tld", b"\n</ca>", b"key-direction 1"),
])
def test_tls_auth_key_with_its_key_direction(tmp_path, name, before, direction):
    store = fixture_pki(tmp_path, "3.2.6", "seed")
    key = _with_tls_key(store, "TLS-AUTH")
    body = InlineFiles(store).render(name)[store.path("inline", "private", name + ".inline")]
    assert body.endswith(before + b"\n\n<tls-auth>\n" + key + b"\n</tls-auth>\n\n" + direction + b"\n\n")


def test_external_ca_list_goes_inside_ca(tmp_path):
    store = fixture_pki(tmp_path, "3.2.6", "seed")
    other_ca = read(os.path.join(FIXTURES, "3.2.6", "passphrase", "ca.crt"))
    write(store.path("inline", "external-ca.list"), other_ca + b"\n")
    body = InlineFiles(store).render("client1.domain.tld")[store.path("inline", "private", "client1.domain.tld.inline")]
    assert (b"<ca>\n" + read(store.ca_cert).rstrip(b"\n") + b"\n" + other_ca.rstrip(b"\n") + b"\n</ca>\n\n") in body


def test_certificate_without_its_key_goes_to_the_public_folder(tmp_path):
    store = fixture_pki(tmp_path, "3.2.6", "seed")
    os.remove(store.key("client1.domain.tld"))
    rendered = InlineFiles(store).render("client1.domain.tld")
    body = rendered[store.path("inline", "client1.domain.tld.inline")]
    assert b"\n</cert>\n\n# When you recieve your key place it in the\n# 'pki/private' sub-dir of your PKI" in body
    assert b"\n# <key>\n# * Paste your private key here *\n# </key>\n\n<ca>\n" in body
    _with_tls_key(store, "TLS-CRYPT")  # the TLS key is a secret too
    assert store.path("inline", "private", "client1.domain.tld.inline") in InlineFiles(store).render("client1.domain.tld")


def _sign(store, name, usages=(ExtendedKeyUsageOID.SERVER_AUTH,)):
    """An EC certificate signed by the PKI's CA, as plain PEM like the modules write."""
    ca_key = serialization.load_pem_private_key(read(store.ca_key), None)
    ca_cert = x509.load_pem_x509_certificate(read(store.ca_cert))
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (
        x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(ca_cert.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=30))
    )
    if usages:
        builder = builder.add_extension(x509.ExtendedKeyUsage(list(usages)), critical=False)
    cert = builder.sign(ca_key, hashes.SHA256())
    write(store.cert(name), cert.public_bytes(serialization.Encoding.PEM))
    write(store.key(name), key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return cert


def _inline_pki(pki):
    pki.ensure_dir(pki.path("inline"))
    pki.ensure_dir(pki.path("inline", "private"))
    return InlineFiles(pki)


def test_ec_server_needs_no_dh_params(pki):
    inline = _inline_pki(pki)
    cert = _sign(pki, "ecserver")
    body = inline.render("ecserver")[pki.path("inline", "private", "ecserver.inline")]
    fingerprint = ":".join("%02X" % byte for byte in cert.fingerprint(hashes.SHA256()))
    assert body.startswith((
        "# Easy-RSA Inline file\n# Certificate type: server\n# commonName: ecserver\n# SHA256 fingerprint:\n# %s\n"
        "# Decimal serial number: %d\n\n<cert>\n" % (fingerprint, cert.serial_number)).encode())
    assert body.endswith(b"\n</ca>\n\n# Diffie-Hellman parameters file not required\ndh none\n\n# Easy-RSA TLS Key not found!\n\n")


SERVER, CLIENT = ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH


@pytest.mark.parametrize("usages, cert_type, type_320", [
    ((SERVER, CLIENT), "serverClient", "serverClient"),
    ((CLIENT, SERVER), "'TLS Web Client Authentication, TLS Web Server Authentication'", None),
    ((ExtendedKeyUsageOID.CODE_SIGNING,), "codeSigning", "codeSign"),
    ((ExtendedKeyUsageOID.EMAIL_PROTECTION, x509.ObjectIdentifier("1.2.3.4")), "'E-mail Protection, 1.2.3.4'", None),
    ((), "undefined", "undefined"),
])
def test_type_is_read_from_the_eku_as_openssl_prints_it(pki, usages, cert_type, type_320):
    inline = _inline_pki(pki)
    _sign(pki, "odd", usages)
    body = inline.render("odd")[pki.path("inline", "private", "odd.inline")]
    assert ("# Certificate type: %s\n" % cert_type).encode() in body
    tls = "" if cert_type == "serverClient" else "\n</ca>"  # serverClient has a DH section before it
    assert body.endswith(("%s\n\n# No TLS Key support for cert-type: %s\n\n" % (tls, cert_type)).encode())
    assert (cert_type == "serverClient") == (b"\ndh none\n" in body)
    shutil.rmtree(pki.path("inline", "private"))
    assert InlineFiles(pki).render("odd")[pki.path("inline", "odd.inline")].startswith(("# Easy-RSA Type: %s\n" % (type_320 or cert_type)).encode())


def test_certificate_issued_here(pki, helpers):
    helpers.issue(pki, ["c1"])
    body = _inline_pki(pki).render("c1")[pki.path("inline", "private", "c1.inline")]
    assert b"\n\n<cert>\n" + read(pki.cert("c1")).rstrip(b"\n") + b"\n</cert>\n\n<key>\n" + read(pki.key("c1")).rstrip(b"\n") + b"\n</key>\n\n" in body
    assert b"# Certificate type: client\n# commonName: c1\n" in body


@pytest.mark.parametrize("version, expected", [
    ("3.2.6", b"\n</key>\n\n# When you recieve your CA certificate place it in the\n# 'pki' sub-dir of your PKI and use command 'inline'\n"
              b"# to rebuild this inline file with your CA certificate.\n# <ca>\n# * Paste your CA certificate here *\n# </ca>\n\n# Easy-RSA TLS Key"),
    ("3.2.0", b"\n</key>\n\n<ca>\n* Paste your CA certificate here *\n</ca>\n\n"),
])
def test_missing_ca_certificate_leaves_a_placeholder(tmp_path, version, expected):
    store = fixture_pki(tmp_path, version, "seed")
    os.remove(store.ca_cert)
    assert expected in list(InlineFiles(store).render("client1.domain.tld").values())[-1]


def test_missing_certificate_is_refused(tmp_path):
    store = fixture_pki(tmp_path, "3.2.6", "seed")
    with pytest.raises(PkiError) as caught:
        InlineFiles(store).render("revoked.domain.tld")
    assert store.cert("revoked.domain.tld") in str(caught.value)


def test_paths_removed_on_revoke_and_renew(tmp_path):
    store = fixture_pki(tmp_path, "3.2.6", "seed")
    assert InlineFiles(store).removed_paths("server") == [store.path("inline", "server.inline"), store.path("inline", "private", "server.inline")]
