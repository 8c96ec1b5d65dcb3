# -*- coding: utf-8 -*-
# Copyright: clientvpn.pki contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A CA renewal that no connected user notices (docs/ca-renewal.md): same key, subject and key
identifier, new serial; the old certificate kept; leaves naming its serial renewed; the endpoint
and the profiles given the CA certificates they need through the overlap."""

from __future__ import annotations

import datetime
import os
import shutil

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa

from ansible_collections.clientvpn.pki.plugins.module_utils import x509_inspect
from ansible_collections.clientvpn.pki.plugins.module_utils.ca_manager import CertificateAuthority
from ansible_collections.clientvpn.pki.plugins.module_utils.client_profiles import ClientProfiles
from ansible_collections.clientvpn.pki.plugins.module_utils.clientvpn_rules import ENDPOINT_CA_SWITCH_DAYS, endpoint_ca, profile_cas
from ansible_collections.clientvpn.pki.plugins.module_utils.errors import PkiError
from ansible_collections.clientvpn.pki.plugins.module_utils.pki_store import PkiStore

FIXTURE = os.path.join(os.path.dirname(__file__), "..", "..", "..", "fixtures", "easyrsa", "3.2.6", "seed")
NOW = datetime.datetime.now(datetime.timezone.utc)


def renew(store, helpers, check_mode=False, **kwargs):
    ca = CertificateAuthority(PkiStore(store.root), kwargs.pop("common_name", helpers.CA_NAME), kwargs.pop("key_size", 1024),
                              kwargs.pop("days", 3650), "sha256", **kwargs)
    return ca.run(check_mode)


def ext(cert, kind):
    return cert.extensions.get_extension_for_class(kind)


def test_renewal_keeps_key_subject_and_key_identifier(pki, helpers):
    old = x509_inspect.load_certificate(pki.ca_cert)
    key_before = helpers.read(pki.ca_key)
    before = helpers.snapshot(pki.root)
    checked = renew(pki, helpers, check_mode=True, renew=True)
    assert (checked["changed"], checked["action"]) == (True, "renewed")
    assert helpers.snapshot(pki.root) == before

    result = renew(pki, helpers, renew=True)
    new = x509_inspect.load_certificate(pki.ca_cert)
    assert result["action"] == "renewed" and result["serial"] == x509_inspect.serial_hex(new)
    assert helpers.read(pki.ca_key) == key_before
    assert new.subject == old.subject and new.serial_number != old.serial_number
    assert ext(new, x509.SubjectKeyIdentifier).value == ext(old, x509.SubjectKeyIdentifier).value
    aki = ext(new, x509.AuthorityKeyIdentifier).value
    assert (aki.key_identifier, aki.authority_cert_serial_number) == (ext(old, x509.SubjectKeyIdentifier).value.digest, None)
    assert ext(new, x509.BasicConstraints).critical == ext(old, x509.BasicConstraints).critical
    assert ext(new, x509.KeyUsage).value == ext(old, x509.KeyUsage).value
    assert new.not_valid_after_utc >= old.not_valid_after_utc  # days from now
    assert [cert.serial_number for cert in pki.previous_ca_certs()] == [old.serial_number]
    assert helpers.read(pki.previous_ca_list).startswith(b"# Easy-RSA expired CA certificate list:\n# =====")
    # done: the next run has nothing to do
    assert renew(pki, helpers)["changed"] is False


def test_a_second_renewal_keeps_both_earlier_certificates_newest_first(pki, helpers):
    first = x509_inspect.load_certificate(pki.ca_cert)
    renew(pki, helpers, renew=True)
    second = x509_inspect.load_certificate(pki.ca_cert)
    renew(pki, helpers, renew=True)
    assert [cert.serial_number for cert in pki.previous_ca_certs()] == [second.serial_number, first.serial_number]
    assert helpers.read(pki.previous_ca_list).count(b"# Easy-RSA expired CA certificate list:") == 1


def test_a_crash_between_the_two_writes_is_completed_once(pki, helpers):
    """The old certificate is kept first; killed before ca.crt is written, the next run renews and keeps it once."""
    old_pem = helpers.read(pki.ca_cert)
    pki.keep_previous_ca(old_pem)
    renew(pki, helpers, renew=True)
    assert len(pki.previous_ca_certs()) == 1


def test_renew_before_days(pki, helpers):
    assert renew(pki, helpers, renew_before_days=3000)["changed"] is False
    assert renew(pki, helpers, renew_before_days=3650, days=7300)["action"] == "renewed"
    with pytest.raises(PkiError, match="renew_before_days=3650 with days=3650"):
        renew(pki, helpers, renew_before_days=3650)


def test_leaves_naming_the_old_serial_are_renewed_with_their_keys(tmp_path, helpers):
    """easy-rsa's leaves (keyid, issuer and serial) chain only to the certificate they name."""
    root = str(tmp_path / "pki")
    shutil.copytree(FIXTURE, root)
    store = PkiStore(root)
    key_before = helpers.read(store.key("client1.domain.tld"))
    renew(store, helpers, renew=True, common_name="Easy-RSA CA", key_size=2048)
    result = helpers.issue(store, ["client1.domain.tld"], key_size=2048)["certificates"]["client1.domain.tld"]
    assert result["action"] == "renewed" and "authorityKeyIdentifier names the CA certificate" in result["reasons"][0]
    assert helpers.read(store.key("client1.domain.tld")) == key_before
    leaf = x509_inspect.load_certificate(store.cert("client1.domain.tld"))
    assert ext(leaf, x509.AuthorityKeyIdentifier).value.authority_cert_serial_number is None
    assert helpers.issue(store, ["client1.domain.tld"], key_size=2048)["changed"] is False


def _ca(days_left, serial_base, key):
    """A CA certificate of ``key`` expiring in ``days_left`` days."""
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "CA")])
    return (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(serial_base).not_valid_before(NOW - datetime.timedelta(days=1))
            .not_valid_after(NOW + datetime.timedelta(days=days_left)).sign(key, hashes.SHA256()))


def test_which_ca_certificates_the_endpoint_and_the_profiles_need():
    key, other = rsa.generate_private_key(65537, 1024), rsa.generate_private_key(65537, 1024)
    current = _ca(3650, 3, key)
    overlap, ending, expired, stranger = _ca(300, 2, key), _ca(ENDPOINT_CA_SWITCH_DAYS - 1, 1, key), _ca(-1, 4, key), _ca(300, 5, other)
    assert endpoint_ca(current, [overlap], NOW) is overlap  # old clients chain only to it
    assert endpoint_ca(current, [ending], NOW) is current  # switched before it expires
    assert endpoint_ca(current, [expired, stranger], NOW) is current
    assert endpoint_ca(current, [], NOW) is current
    assert profile_cas(current, [overlap, expired, stranger], NOW) == [current, overlap]


ENDPOINT = "client\ndev tun\nremote cvpn-endpoint-0.prod.clientvpn.eu-west-1.amazonaws.com 443\n<ca>\n%s</ca>\nverb 3\n"


def test_profiles_carry_the_renewed_and_the_earlier_ca_certificate(pki, helpers, tmp_path):
    helpers.issue(pki, ["alice"])
    old_pem = helpers.read(pki.ca_cert).decode()
    renew(pki, helpers, renew=True)
    ClientProfiles(pki.root, ["alice"], str(tmp_path / "profiles"), ENDPOINT % old_pem).run(False)
    profile = helpers.read(str(tmp_path / "profiles" / "alice.ovpn")).decode()
    block = profile[profile.index("<ca>"):profile.index("</ca>")]
    assert [cert.serial_number for cert in x509.load_pem_x509_certificates(block.encode())] == [
        x509_inspect.load_certificate(pki.ca_cert).serial_number, x509.load_pem_x509_certificate(old_pem.encode()).serial_number]
    assert profile.endswith("verb 3\n<cert>\n" + profile.split("<cert>\n")[1])


def test_health_says_what_still_depends_on_the_replaced_ca_certificate(tmp_path, helpers):
    """After a renewal: easy-rsa's leaves naming the old serial, and profiles without the renewed CA certificate."""
    from ansible_collections.clientvpn.pki.plugins.module_utils.pki_health import PkiHealth

    root = str(tmp_path / "pki")
    shutil.copytree(FIXTURE, root)
    store = PkiStore(root)
    old_pem = helpers.read(store.ca_cert).decode()
    os.makedirs(str(tmp_path / "profiles"))
    ClientProfiles(root, ["client1.domain.tld"], str(tmp_path / "profiles"), ENDPOINT % old_pem).run(False)
    renew(store, helpers, renew=True, common_name="Easy-RSA CA", key_size=2048)
    report = PkiHealth(PkiStore(root), profiles_dir=str(tmp_path / "profiles")).report()
    codes = dict((problem["code"], problem) for problem in report["problems"])
    assert sorted(codes) == ["certificates_on_previous_ca", "profiles_outdated"]
    assert "client1.domain.tld" in codes["certificates_on_previous_ca"]["message"]
    assert report["profiles"]["client1.domain.tld"]["has_current_ca"] is False
    assert codes["profiles_outdated"]["date"] == x509.load_pem_x509_certificate(old_pem.encode()).not_valid_after_utc.isoformat()
    assert [previous["serial"] for previous in report["ca"]["previous"]] == [
        x509_inspect.serial_hex(x509.load_pem_x509_certificate(old_pem.encode()))]
    # mutual_auth renews the leaves, the profiles are written again: nothing left to say
    helpers.issue(store, ["server"], cert_type="server", key_size=2048)
    helpers.issue(store, ["client1.domain.tld", "reissued.domain.tld"], key_size=2048)
    ClientProfiles(root, ["client1.domain.tld"], str(tmp_path / "profiles"), ENDPOINT % old_pem).run(False)
    assert PkiHealth(PkiStore(root), profiles_dir=str(tmp_path / "profiles")).report()["problems"] == []
