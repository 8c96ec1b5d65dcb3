# -*- coding: utf-8 -*-
# Copyright: clientvpn.pki contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""CertificateAuthority: create, adopt, refuse, replace, encrypt."""

from __future__ import annotations

import os
import stat

import pytest

from ansible_collections.clientvpn.pki.plugins.module_utils import x509_inspect
from ansible_collections.clientvpn.pki.plugins.module_utils.ca_manager import CertificateAuthority
from ansible_collections.clientvpn.pki.plugins.module_utils.errors import PkiError
from ansible_collections.clientvpn.pki.plugins.module_utils.pki_store import PkiStore
from ansible_collections.clientvpn.pki.plugins.module_utils.x509_profiles import generate_key, key_to_pem

CN = "Unit Test CA"


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def make_ca(store, common_name=CN, key_size=1024, days=3650, passphrase=None, force=False):
    return CertificateAuthority(store, common_name, key_size, days, "sha256", passphrase=passphrase, force=force)


@pytest.fixture
def new_store(tmp_path):
    return PkiStore(str(tmp_path / "pki"))


def test_check_mode_on_nothing_writes_nothing(new_store, tmp_path):
    result = make_ca(new_store).run(check_mode=True)
    assert result["changed"] is True
    assert result["action"] == "created"
    assert any("create the CA 'Unit Test CA' (RSA 1024)" == change for change in result["changes"])
    assert result["common_name"] == CN
    assert result["diff"]["before"] == {}
    assert not os.path.exists(new_store.root)
    assert os.listdir(str(tmp_path)) == []


def test_create_then_unchanged(new_store, helpers):
    result = make_ca(new_store).run(check_mode=False)
    assert result["changed"] is True
    assert result["action"] == "created"
    assert result["backup_files"] == []
    cert = x509_inspect.load_certificate(new_store.ca_cert)
    key, encrypted = x509_inspect.load_private_key(new_store.ca_key)
    assert encrypted is False
    assert x509_inspect.key_matches(key, cert)
    assert x509_inspect.common_name(cert) == CN
    assert x509_inspect.rsa_key_size(cert.public_key()) == 1024
    assert result["serial"] == x509_inspect.serial_hex(cert)
    assert mode(new_store.ca_key) == 0o600
    assert mode(new_store.root) == 0o700
    assert helpers.read(new_store.index) == b""
    assert helpers.read(new_store.serial) == b"01\n"
    assert result["warnings"] == []

    before = helpers.snapshot(new_store.root)
    check = make_ca(new_store).run(check_mode=True)
    assert check["changed"] is False and check["action"] == "unchanged"
    again = make_ca(new_store).run(check_mode=False)
    assert again["changed"] is False
    assert again["action"] == "unchanged"
    assert again["changes"] == []
    assert again["serial"] == result["serial"]
    assert helpers.snapshot(new_store.root) == before


def test_short_lived_ca_warns(new_store):
    result = make_ca(new_store, days=30).run(check_mode=False)
    assert len(result["warnings"]) == 1
    assert new_store.ca_cert in result["warnings"][0]


def test_wrong_passphrase_changes_nothing(new_store, helpers):
    make_ca(new_store, passphrase="right passphrase").run(check_mode=False)
    assert x509_inspect.is_encrypted_pem(helpers.read(new_store.ca_key))
    before = helpers.snapshot(new_store.root)
    with pytest.raises(PkiError) as caught:
        make_ca(new_store, passphrase="wrong passphrase").run(check_mode=False)
    assert "passphrase" in str(caught.value)
    assert "Nothing was changed" in str(caught.value)
    assert helpers.snapshot(new_store.root) == before
    with pytest.raises(PkiError, match="passphrase"):
        make_ca(new_store).run(check_mode=False)
    assert helpers.snapshot(new_store.root) == before
    assert make_ca(new_store, passphrase="right passphrase").run(check_mode=False)["changed"] is False


def test_other_common_name_is_refused(pki, helpers):
    before = helpers.snapshot(pki.root)
    with pytest.raises(PkiError) as caught:
        make_ca(pki, common_name="Another CA").run(check_mode=False)
    message = str(caught.value)
    assert "'Unit Test CA'" in message and "'Another CA'" in message
    assert "force" in message
    assert helpers.snapshot(pki.root) == before


def test_other_key_size_is_refused(pki, helpers):
    before = helpers.snapshot(pki.root)
    with pytest.raises(PkiError) as caught:
        make_ca(pki, key_size=2048).run(check_mode=False)
    assert "RSA 1024, not RSA 2048" in str(caught.value)
    assert helpers.snapshot(pki.root) == before


def test_half_a_ca_is_refused(pki, helpers):
    os.unlink(pki.ca_cert)
    before = helpers.snapshot(pki.root)
    with pytest.raises(PkiError, match="ca.crt is missing"):
        make_ca(pki).run(check_mode=False)
    assert helpers.snapshot(pki.root) == before


def test_force_replaces_and_backs_up(pki, helpers):
    helpers.issue(pki, ["c1", "c2"])
    old = {path: helpers.read(path) for path in (pki.ca_cert, pki.ca_key, pki.index, pki.serial)}
    assert old[pki.index].count(b"\n") == 2

    check = make_ca(pki, common_name="New CA", force=True).run(check_mode=True)
    assert check["action"] == "replaced" and check["changed"] is True
    assert {path: helpers.read(path) for path in old} == old

    result = make_ca(pki, common_name="New CA", force=True).run(check_mode=False)
    assert result["action"] == "replaced"
    assert result["changed"] is True
    assert len(result["backup_files"]) == 4
    backed_up = dict((helpers.read(backup), backup) for backup in result["backup_files"])
    for path, content in old.items():
        assert content in backed_up, "no backup of %s" % path
        assert os.path.dirname(backed_up[content]) == os.path.dirname(path)
    new_cert = x509_inspect.load_certificate(pki.ca_cert)
    assert helpers.read(pki.ca_cert) != old[pki.ca_cert]
    assert helpers.read(pki.ca_key) != old[pki.ca_key]
    assert x509_inspect.common_name(new_cert) == "New CA"
    key, dummy = x509_inspect.load_private_key(pki.ca_key)
    assert x509_inspect.key_matches(key, new_cert)
    assert helpers.read(pki.index) == b""
    assert helpers.read(pki.serial) == b"01\n"
    assert result["diff"]["before"]["common_name"] == CN
    assert result["diff"]["after"]["common_name"] == "New CA"


def test_force_with_wrong_passphrase_replaces(new_store, helpers):
    make_ca(new_store, passphrase="old").run(check_mode=False)
    result = make_ca(new_store, passphrase="new", force=True).run(check_mode=False)
    assert result["action"] == "replaced"
    key, encrypted = x509_inspect.load_private_key(new_store.ca_key, "new")
    assert encrypted


def test_passphrase_encrypts_a_clear_key(pki, helpers):
    old_public = x509_inspect.public_key_der(x509_inspect.load_certificate(pki.ca_cert).public_key())
    old_cert = helpers.read(pki.ca_cert)
    check = make_ca(pki, passphrase="s3cret").run(check_mode=True)
    assert check["action"] == "encrypted" and check["changed"] is True
    assert not x509_inspect.is_encrypted_pem(helpers.read(pki.ca_key))

    result = make_ca(pki, passphrase="s3cret").run(check_mode=False)
    assert result["action"] == "encrypted"
    assert result["changed"] is True
    assert x509_inspect.is_encrypted_pem(helpers.read(pki.ca_key))
    key, encrypted = x509_inspect.load_private_key(pki.ca_key, "s3cret")
    assert encrypted
    assert x509_inspect.public_key_der(key.public_key()) == old_public
    assert helpers.read(pki.ca_cert) == old_cert
    assert mode(pki.ca_key) == 0o600
    again = make_ca(pki, passphrase="s3cret").run(check_mode=False)
    assert again["changed"] is False and again["action"] == "unchanged"


def test_key_mode_is_reported_and_fixed(pki, helpers):
    os.chmod(pki.ca_key, 0o644)
    check = make_ca(pki).run(check_mode=True)
    assert check["changed"] is True
    assert "set mode 0600 on %s" % pki.ca_key in check["changes"]
    assert mode(pki.ca_key) == 0o644
    result = make_ca(pki).run(check_mode=False)
    assert result["changed"] is True
    assert result["action"] == "unchanged"
    assert "set mode 0600 on %s" % pki.ca_key in result["changes"]
    assert mode(pki.ca_key) == 0o600
    assert make_ca(pki).run(check_mode=False)["changed"] is False


def test_adopts_ca_missing_layout(pki, helpers):
    """A CA whose PKI lacks some easy-rsa directories is kept, the directories added."""
    os.rmdir(pki.path("revoked", "reqs_by_serial"))
    cert = helpers.read(pki.ca_cert)
    result = make_ca(pki).run(check_mode=False)
    assert result["action"] == "unchanged"
    assert result["changed"] is True
    assert os.path.isdir(pki.path("revoked", "reqs_by_serial"))
    assert helpers.read(pki.ca_cert) == cert


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"key_size": 4096}, "key_size=4096"),
        ({"key_size": 512}, "key_size=512"),
        ({"common_name": ""}, "common_name is empty"),
        ({"common_name": "   "}, "common_name is empty"),
        ({"common_name": "x" * 65}, "at most 64"),
        ({"days": 0}, "days=0"),
    ],
)
def test_bad_options_fail_before_touching_disk(new_store, tmp_path, kwargs, message):
    with pytest.raises(PkiError) as caught:
        make_ca(new_store, **kwargs).run(check_mode=False)
    assert message in str(caught.value)
    assert not os.path.exists(new_store.root)
    assert os.listdir(str(tmp_path)) == []


def test_key_not_matching_cert_is_refused(pki, helpers):
    helpers.write(pki.ca_key, key_to_pem(generate_key(1024)))
    before = helpers.snapshot(pki.root)
    with pytest.raises(PkiError, match="does not belong to ca.crt"):
        make_ca(pki).run(check_mode=False)
    assert helpers.snapshot(pki.root) == before
