# -*- coding: utf-8 -*-
# Copyright: clientvpn.pki contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""CrlPublisher: crl.pem and crl.der from the R rows of index.txt, signed by the CA, only when needed."""

from __future__ import annotations

import datetime
import os

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from ansible_collections.clientvpn.pki.plugins.module_utils import x509_inspect
from ansible_collections.clientvpn.pki.plugins.module_utils.cert_revoker import CertificateRevoker
from ansible_collections.clientvpn.pki.plugins.module_utils.clientvpn_rules import CLIENT_VPN_MAX_CRL_ENTRIES
from ansible_collections.clientvpn.pki.plugins.module_utils.crl_manager import CrlPublisher
from ansible_collections.clientvpn.pki.plugins.module_utils.easyrsa_index import IndexEntry, format_serial, format_time, parse_time
from ansible_collections.clientvpn.pki.plugins.module_utils.errors import PkiError
from ansible_collections.clientvpn.pki.plugins.module_utils.pki_store import PkiStore
from ansible_collections.clientvpn.pki.plugins.module_utils.x509_profiles import build_ca, generate_key, key_to_pem

UTC = datetime.timezone.utc
CLIENTS = ["c1", "c2", "c3"]


def publish(store, check_mode=False, **kwargs):
    return CrlPublisher(store, **kwargs).run(check_mode)


def load_crl(store):
    with open(store.path("crl.pem"), "rb") as handle:
        return x509.load_pem_x509_crl(handle.read())


def crl_number(crl):
    return crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number


def serials_of(crl):
    return sorted(format_serial(item.serial_number) for item in crl)


@pytest.fixture
def revoked(pki, helpers):
    """c1 revoked for keyCompromise, c2 revoked without a reason, c3 valid: their serials by name."""
    helpers.issue(pki, CLIENTS)
    serials = dict((name, x509_inspect.serial_hex(x509_inspect.load_certificate(pki.cert(name)))) for name in CLIENTS)
    CertificateRevoker(pki, ["c1"], "keyCompromise").run(False)
    CertificateRevoker(pki, ["c2"]).run(False)
    return serials


@pytest.fixture(scope="module")
def other_keys():
    return generate_key(1024)


def foreign_crl(key, issuer_cn):
    """A CRL that another key signed, in the name of ``issuer_cn``."""
    ca = build_ca(key, issuer_cn, 30, "sha256")
    now = datetime.datetime.now(UTC)
    builder = x509.CertificateRevocationListBuilder().issuer_name(ca.subject).last_update(now).next_update(now + datetime.timedelta(days=90))
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


# -- first CRL -------------------------------------------------------------------------------------
def test_first_crl_lists_the_revoked_rows(pki, helpers, revoked):
    started = datetime.datetime.now(UTC).replace(microsecond=0)
    result = publish(pki)
    assert result["changed"] is True
    assert result["reasons"] == ["no valid crl.pem signed by this CA"]

    pem, der = helpers.read(pki.path("crl.pem")), helpers.read(pki.path("crl.der"))
    assert pem.startswith(b"-----BEGIN X509 CRL-----")
    crl = x509.load_pem_x509_crl(pem)
    assert crl.public_bytes(serialization.Encoding.DER) == der
    assert x509.load_der_x509_crl(der).public_bytes(serialization.Encoding.PEM) == pem

    ca_cert = x509_inspect.load_certificate(pki.ca_cert)
    assert crl.issuer == ca_cert.subject
    assert crl.is_signature_valid(ca_cert.public_key())
    assert crl.signature_hash_algorithm.name == "sha256"
    assert crl_number(crl) == 1
    ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    assert crl.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value.key_identifier == ski
    assert started <= crl.last_update_utc <= datetime.datetime.now(UTC)
    assert crl.next_update_utc - crl.last_update_utc == datetime.timedelta(days=180)

    rows = dict((row.serial, row) for row in pki.read_index())
    assert serials_of(crl) == sorted([revoked["c1"], revoked["c2"]])
    c1 = crl.get_revoked_certificate_by_serial_number(int(revoked["c1"], 16))
    c2 = crl.get_revoked_certificate_by_serial_number(int(revoked["c2"], 16))
    assert c1.revocation_date_utc == parse_time(rows[revoked["c1"]].revoked.split(",")[0])
    assert c2.revocation_date_utc == parse_time(rows[revoked["c2"]].revoked)
    assert c1.extensions.get_extension_for_class(x509.CRLReason).value.reason == x509.ReasonFlags.key_compromise
    assert len(c2.extensions) == 0
    assert crl.get_revoked_certificate_by_serial_number(int(revoked["c3"], 16)) is None

    assert result["revoked_count"] == 2
    assert result["revoked_serials"] == sorted([revoked["c1"], revoked["c2"]])
    assert result["crl"] == pki.path("crl.pem") and result["crl_der"] == pki.path("crl.der")
    assert result["this_update"] == crl.last_update_utc.isoformat()
    assert result["next_update"] == crl.next_update_utc.isoformat()
    assert result["warnings"] == []


def test_empty_index_gives_an_empty_crl(pki):
    result = publish(pki)
    assert result["changed"] is True and result["revoked_count"] == 0
    crl = load_crl(pki)
    assert len(crl) == 0
    assert crl.is_signature_valid(x509_inspect.load_certificate(pki.ca_cert).public_key())


def test_second_run_is_unchanged(pki, helpers, revoked):
    publish(pki)
    before = helpers.snapshot(pki.root)
    for check_mode in (True, False):
        result = publish(pki, check_mode=check_mode)
        assert result["changed"] is False
        assert result["reasons"] == []
        assert result["next_update"] == load_crl(pki).next_update_utc.isoformat()
        assert helpers.snapshot(pki.root) == before


def test_new_revocation_gives_a_new_crl_with_the_next_number(pki, helpers, revoked):
    publish(pki)
    CertificateRevoker(pki, ["c3"], "cessationOfOperation").run(False)
    before = helpers.snapshot(pki.root)

    check = publish(pki, check_mode=True)
    assert check["changed"] is True
    assert check["reasons"] == ["the revoked certificates in index.txt changed"]
    assert check["revoked_count"] == 3
    assert "next_update" not in check and "this_update" not in check
    assert helpers.snapshot(pki.root) == before

    result = publish(pki)
    assert result["changed"] is True
    crl = load_crl(pki)
    assert crl_number(crl) == 2
    assert serials_of(crl) == sorted(revoked.values())
    c3 = crl.get_revoked_certificate_by_serial_number(int(revoked["c3"], 16))
    assert c3.extensions.get_extension_for_class(x509.CRLReason).value.reason == x509.ReasonFlags.cessation_of_operation
    assert helpers.read(pki.path("crl.der")) == crl.public_bytes(serialization.Encoding.DER)
    assert publish(pki)["changed"] is False


def test_crl_near_its_next_update_is_renewed(pki, helpers, revoked):
    first = publish(pki, days=10, renew_before_days=5)
    assert first["changed"] is True
    assert publish(pki, days=10, renew_before_days=5)["changed"] is False
    old = load_crl(pki)

    result = publish(pki, days=180, renew_before_days=30)
    assert result["changed"] is True
    assert len(result["reasons"]) == 1
    assert "renew_before_days=30" in result["reasons"][0]
    assert old.next_update_utc.isoformat() in result["reasons"][0]
    crl = load_crl(pki)
    assert crl_number(crl) == crl_number(old) + 1 == 2
    assert crl.next_update_utc - crl.last_update_utc == datetime.timedelta(days=180)
    assert serials_of(crl) == serials_of(old)
    assert publish(pki, days=180, renew_before_days=30)["changed"] is False


@pytest.mark.parametrize("issuer_cn", ["Unit Test CA", "Other CA"])
def test_crl_of_another_ca_is_replaced(pki, helpers, revoked, other_keys, issuer_cn):
    helpers.write(pki.path("crl.pem"), foreign_crl(other_keys, issuer_cn))
    result = publish(pki)
    assert result["changed"] is True
    assert result["reasons"] == ["no valid crl.pem signed by this CA"]
    crl = load_crl(pki)
    assert crl.is_signature_valid(x509_inspect.load_certificate(pki.ca_cert).public_key())
    assert crl_number(crl) == 1
    assert serials_of(crl) == sorted([revoked["c1"], revoked["c2"]])


@pytest.mark.parametrize("garbage", [b"", b"garbage, not a CRL\n", b"-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n"])
def test_unreadable_crl_is_replaced(pki, helpers, revoked, garbage):
    helpers.write(pki.path("crl.pem"), garbage)
    result = publish(pki)
    assert result["changed"] is True
    crl = load_crl(pki)
    assert crl.is_signature_valid(x509_inspect.load_certificate(pki.ca_cert).public_key())
    assert len(crl) == 2


def test_more_than_client_vpn_limit_warns(pki, helpers):
    expires = format_time(datetime.datetime.now(UTC) + datetime.timedelta(days=400))
    rows = [
        IndexEntry("R", expires, "250101000000Z,superseded", format_serial((1 << 127) | number), "unknown", "/CN=u%05d" % number)
        for number in range(CLIENT_VPN_MAX_CRL_ENTRIES + 1)
    ]
    pki.write_index(rows)
    before = helpers.snapshot(pki.root)
    result = publish(pki, check_mode=True)
    assert result["changed"] is True
    assert result["revoked_count"] == 20001
    assert len(result["warnings"]) == 1
    assert "20000" in result["warnings"][0] and "20001" in result["warnings"][0]
    assert helpers.snapshot(pki.root) == before


def test_at_the_client_vpn_limit_no_warning(pki):
    expires = format_time(datetime.datetime.now(UTC) + datetime.timedelta(days=400))
    rows = [IndexEntry("R", expires, "250101000000Z", format_serial(0x1000 + number), "unknown", "/CN=u%d" % number) for number in range(20000)]
    pki.write_index(rows)
    result = publish(pki, check_mode=True)
    assert result["revoked_count"] == 20000
    assert result["warnings"] == []


@pytest.mark.parametrize("days, renew_before_days", [(0, 0), (-5, 0), (10, 10), (10, 11), (10, -1)])
def test_bad_days_are_refused(pki, days, renew_before_days):
    with pytest.raises(PkiError) as caught:
        CrlPublisher(pki, days=days, renew_before_days=renew_before_days)
    assert "days=%s" % days in str(caught.value)
    assert "renew_before_days=%s" % renew_before_days in str(caught.value)


def test_encrypted_ca_key_needs_ca_passphrase(pki, helpers, revoked):
    key, dummy = x509_inspect.load_private_key(pki.ca_key)
    helpers.write(pki.ca_key, key_to_pem(key, "ca-pw"))
    before = helpers.snapshot(pki.root)
    with pytest.raises(PkiError) as caught:
        publish(pki)
    assert "ca_passphrase" in str(caught.value)
    assert helpers.snapshot(pki.root) == before
    with pytest.raises(PkiError, match="ca_passphrase"):
        publish(pki, ca_passphrase="wrong")
    assert publish(pki, ca_passphrase="ca-pw")["changed"] is True
    assert len(load_crl(pki)) == 2


def test_no_ca(tmp_path):
    store = PkiStore(str(tmp_path / "pki"))
    with pytest.raises(PkiError, match="vpn_ca"):
        publish(store)
    assert not os.path.exists(store.root)


# -- crl.der kept in step with crl.pem ---------------------------------------------------------------
def test_missing_crl_der_is_left_missing_while_the_crl_is_current(pki, helpers, revoked):
    """easy-rsa 3.1 and 3.2.0 write crl.pem only: their current CRL is adopted without a write, and
    crl.der comes back with the next CRL signed."""
    publish(pki)
    os.unlink(pki.path("crl.der"))
    assert publish(pki, check_mode=True)["changed"] is False
    assert publish(pki)["changed"] is False
    assert not os.path.exists(pki.path("crl.der"))
    publish(pki, days=400, renew_before_days=399)  # due: signed again
    assert helpers.read(pki.path("crl.der")) == load_crl(pki).public_bytes(serialization.Encoding.DER)


def test_stale_crl_der_is_replaced(pki, helpers, revoked):
    """A crl.der that is not crl.pem's CRL (garbage, or left from an older CRL) must be brought in step."""
    publish(pki)
    helpers.write(pki.path("crl.der"), b"stale")
    result = publish(pki)
    assert helpers.read(pki.path("crl.der")) == load_crl(pki).public_bytes(serialization.Encoding.DER)
    assert result["changed"] is True
