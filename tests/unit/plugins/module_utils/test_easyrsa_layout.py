# -*- coding: utf-8 -*-
# Copyright: clientvpn.pki contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which easy-rsa built a PKI, what a new PKI of each version gets, and the database checks
that refuse a folder that is neither (before anything is written)."""

from __future__ import annotations

import os
import shutil

import pytest

from ansible_collections.clientvpn.pki.plugins.module_utils import pki_store
from ansible_collections.clientvpn.pki.plugins.module_utils.ca_manager import CertificateAuthority, open_ca
from ansible_collections.clientvpn.pki.plugins.module_utils.easyrsa_layout import INIT_DIRS, EasyrsaLayout
from ansible_collections.clientvpn.pki.plugins.module_utils.errors import PkiError
from ansible_collections.clientvpn.pki.plugins.module_utils.pki_store import PkiStore

FIXTURES = os.path.join(os.path.dirname(__file__), "..", "..", "..", "fixtures", "easyrsa")


def touch(root, *names):
    for name in names:
        path = os.path.join(str(root), name)
        if name.endswith("/"):
            os.makedirs(path, exist_ok=True)
        else:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            open(path, "w").close()


@pytest.mark.parametrize("marks,version", [
    (["openssl-easyrsa.cnf", "vars", "vars.example"], "3.1"),  # 3.1's init-pki
    (["safessl-easyrsa.cnf"], "3.1"),
    (["vars.example", "private/", "reqs/"], "3.2"),  # 3.2's init-pki
    (["inline/"], "3.2"),  # 3.2.0
    (["inline/private/"], "3.2"),  # 3.2.1+
    (["expired/"], "3.2"),
    (["openssl-easyrsa.cnf", "inline/"], "3.1"),  # 3.1.2+ init-pki
    (["openssl-easyrsa.cnf", "inline/private/"], "3.2"),  # a 3.2 PKI with a configuration copied in
])
def test_detects_the_version_from_what_init_pki_left(tmp_path, marks, version):
    touch(tmp_path, *marks)
    layout = EasyrsaLayout.detect(str(tmp_path))
    assert (layout.version, layout.detected) == (version, True)
    assert layout.evidence


@pytest.mark.parametrize("release", ["3.2.0", "3.2.2", "3.2.6"])
def test_every_committed_easyrsa_32_fixture_is_detected_as_32(release):
    for pki in ("seed", "passphrase"):
        assert EasyrsaLayout.detect(os.path.join(FIXTURES, release, pki)).version == "3.2"


def test_a_pki_without_traces_follows_the_request_or_31(tmp_path):
    assert EasyrsaLayout.detect(str(tmp_path)) is None
    assert EasyrsaLayout.choose(str(tmp_path), None).version == "3.1"
    chosen = EasyrsaLayout.choose(str(tmp_path), "3.2")
    assert (chosen.version, chosen.detected) == ("3.2", False)


def test_asking_another_version_of_an_existing_pki_is_refused(tmp_path):
    touch(tmp_path, "expired/")
    with pytest.raises(PkiError, match=r"easyrsa_version is 3\.1, but .* easy-rsa 3\.2 \(it has expired/"):
        EasyrsaLayout.choose(str(tmp_path), "3.1")
    assert EasyrsaLayout.choose(str(tmp_path), "3.2").version == "3.2"


def test_a_new_32_pki_gets_32s_folders_and_no_openssl_config(tmp_path, monkeypatch):
    data_dir = tmp_path / "easy-rsa"
    touch(data_dir, "openssl-easyrsa.cnf")
    monkeypatch.setattr(pki_store, "EASYRSA_DATA_DIRS", (str(data_dir),))
    store = PkiStore(str(tmp_path / "pki"), easyrsa_version="3.2")
    store.ensure_layout()
    for directory in INIT_DIRS["3.2"]:
        assert os.path.isdir(store.path(directory)), directory
    assert not os.path.exists(store.path("openssl-easyrsa.cnf"))
    assert not os.path.exists(store.path("revoked", "reqs_by_serial"))  # made by 3.2's revoke, when needed
    assert EasyrsaLayout.detect(store.root).version == "3.2"


def test_an_existing_32_pki_is_given_no_folder(tmp_path, monkeypatch):
    data_dir = tmp_path / "easy-rsa"
    touch(data_dir, "openssl-easyrsa.cnf")
    monkeypatch.setattr(pki_store, "EASYRSA_DATA_DIRS", (str(data_dir),))
    root = tmp_path / "pki"
    touch(root, "vars.example", "ca.crt", "private/", "reqs/", "issued/", "index.txt", "serial")
    os.chmod(str(root), 0o700)
    for directory in ("private", "reqs", "issued"):
        os.chmod(str(root / directory), 0o700)
    assert PkiStore(str(root)).layout_changes() == []


# -- a folder that is neither 3.1 nor 3.2 -------------------------------------------------------------
@pytest.fixture
def adopted(tmp_path, helpers):
    """A CA built here, to be damaged."""
    store = PkiStore(str(tmp_path / "pki"))
    CertificateAuthority(store, helpers.CA_NAME, 1024, 3650, "sha256").run(False)
    return store


@pytest.mark.parametrize("damage,found", [
    (lambda store: os.unlink(store.index), "no index.txt"),
    (lambda store: os.unlink(store.serial), "no serial"),
    (lambda store: open(store.path("index.txt.attr"), "w").write("unique_subject = maybe\n"), "line 1 is 'unique_subject = maybe'"),
    (lambda store: open(store.path("index.txt.attr"), "w").write("# ok\nunique_subject = no\ncopy_extensions = copy\n"),
     "line 3 is 'copy_extensions = copy'"),
    (lambda store: open(store.serial, "w").write("serial-please\n"), "holds 'serial-please', not a serial number"),
    (lambda store: open(store.serial, "w").write(""), "holds '', not a serial number"),
])
def test_a_damaged_database_is_refused_saying_what_was_found(adopted, helpers, damage, found):
    damage(adopted)
    before = helpers.snapshot(adopted.root)
    for action in (lambda: CertificateAuthority(PkiStore(adopted.root), helpers.CA_NAME, 1024, 3650, "sha256").run(False),
                   lambda: open_ca(PkiStore(adopted.root), None)):
        with pytest.raises(PkiError) as caught:
            action()
        assert found in str(caught.value) and "Nothing was changed" in str(caught.value)
    assert helpers.snapshot(adopted.root) == before


@pytest.mark.parametrize("text,unique", [("unique_subject = yes\n", True), ("unique_subject=NO\n", False), ("", False), ("\n# note\n", False)])
def test_index_attr_settings_openssl_understands(adopted, text, unique):
    with open(adopted.path("index.txt.attr"), "w") as handle:
        handle.write(text)
    assert adopted.unique_subject() is unique
    adopted.check_database()


def test_a_32_pki_without_certificates_gets_inline_private_with_the_first_one(tmp_path, helpers):
    """What easy-rsa 3.2.2+ leave after init-pki + build-ca: vars.example, no inline/ yet."""
    root = tmp_path / "pki"
    touch(root, "vars.example")
    store = PkiStore(str(root))
    CertificateAuthority(store, helpers.CA_NAME, 1024, 3650, "sha256").run(False)
    shutil.rmtree(store.path("inline"))  # easy-rsa's build-ca makes none
    helpers.issue(PkiStore(str(root)), "c1")
    inline = store.path("inline", "private", "c1.inline")
    assert os.stat(inline).st_mode & 0o777 == 0o600
    assert os.stat(store.path("inline", "private")).st_mode & 0o777 == 0o700
    assert os.path.exists(store.path("inline", "private", "README.inline.private"))


def test_inline_folders_are_closed_like_key_folders(tmp_path, helpers):
    store = PkiStore(str(tmp_path / "pki"), easyrsa_version="3.2")
    CertificateAuthority(store, helpers.CA_NAME, 1024, 3650, "sha256").run(False)
    os.chmod(store.path("inline", "private"), 0o755)
    tidying = store.hygiene()
    assert [directory for directory, dummy in tidying.loose_dirs] == [store.path("inline", "private")]
    assert tidying.keys_exposed is False  # no key is signed from there
