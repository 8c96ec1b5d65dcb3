"""Bad input: a clear error naming the field and the fix, a non-zero exit,
and nothing on disk lost or changed (compared file by file, mode by mode)."""

import json
import os
import shutil

import pytest

from conftest import failed, ok, snapshot


@pytest.fixture
def pki(ca):
    ok("vpn_cert", {"pki_dir": ca, "name": ["server"], "type": "server"})
    ok("vpn_cert", {"pki_dir": ca, "name": ["client1"], "type": "client"})
    return ca


def refused(module, args, pki_dir, *expected):
    before = snapshot(pki_dir)
    message = failed(module, args)
    for text in expected:
        assert text in message, message
    assert snapshot(pki_dir) == before
    return message


@pytest.mark.parametrize("module,args,expected", [
    ("vpn_ca", {"key_size": 4096}, ["key_size=4096", "1024 or 2048"]),
    ("vpn_ca", {"key_size": 512}, ["key_size=512", "1024 or 2048"]),
    ("vpn_ca", {"common_name": ""}, ["common_name is empty", "CN"]),
    ("vpn_cert", {"name": ["c"], "type": "client", "key_size": 4096}, ["key_size=4096"]),
    ("vpn_cert", {"name": ["c"], "type": "client", "key_size": 512}, ["key_size=512"]),
    ("vpn_cert", {"name": ["c"], "type": "client", "common_name": " "}, ["common_name is empty"]),
    ("vpn_cert", {"name": ["../escape"], "type": "client"}, ["'../escape'", "path separator"]),
    ("vpn_cert", {"name": ["sub/dir"], "type": "client"}, ["'sub/dir'", "path separator"]),
    ("vpn_cert", {"name": [".."], "type": "client"}, ["'..'"]),
    ("vpn_cert", {"name": ["nul\x00byte"], "type": "client"}, ["NUL"]),
    ("vpn_cert", {"name": ["-rf"], "type": "client"}, ["starts with '-'"]),
    ("vpn_cert", {"name": [""], "type": "client"}, ["empty"]),
    ("vpn_cert", {"name": ["server"], "type": "server", "subject_alt_names": ["IP:10.0.0.1"]}, ["no DNS entry", "DNS:server"]),
    ("vpn_cert", {"name": ["server"], "type": "server", "subject_alt_names": ["nonsense"]}, ["'nonsense'", "DNS:name"]),
    ("vpn_cert", {"name": ["a", "b"], "type": "client", "common_name": "x"}, ["common_name", "each certificate needs its own CN"]),
    ("vpn_cert", {"name": ["c"], "type": "client", "days": 20, "renew_before_days": 30}, ["renew_before_days=30", "days=20"]),
])
def test_option_errors_name_the_field(pki, module, args, expected):
    refused(module, dict(args, pki_dir=pki), pki, *expected)


def test_pki_dir_that_is_a_file(tmp_path):
    path = tmp_path / "not-a-dir"
    path.write_text("precious\n")
    for module, args in (("vpn_ca", {}), ("vpn_cert", {"name": ["c"], "type": "client"})):
        message = failed(module, dict(args, pki_dir=str(path)))
        assert "pki_dir" in message and "not a directory" in message
    assert path.read_text() == "precious\n"


def test_wrong_ca_passphrase(tmp_path):
    pki = str(tmp_path / "pki")
    ok("vpn_ca", {"pki_dir": pki, "passphrase": "right one"})
    refused("vpn_ca", {"pki_dir": pki, "passphrase": "wrong one"}, pki, "does not open", "passphrase")
    refused("vpn_cert", {"pki_dir": pki, "name": ["c"], "type": "client", "ca_passphrase": "wrong one"}, pki,
            "does not open", "ca_passphrase")
    refused("vpn_cert", {"pki_dir": pki, "name": ["c"], "type": "client"}, pki, "is encrypted", "ca_passphrase")
    assert ok("vpn_cert", {"pki_dir": pki, "name": ["c"], "type": "client", "ca_passphrase": "right one"})["changed"]


def test_ca_key_that_does_not_match_ca_crt(pki, tmp_path):
    other = str(tmp_path / "other")
    ok("vpn_ca", {"pki_dir": other})
    shutil.copy(os.path.join(other, "private", "ca.key"), os.path.join(pki, "private", "ca.key"))
    refused("vpn_ca", {"pki_dir": pki}, pki, "does not belong to ca.crt", "force: true")
    refused("vpn_cert", {"pki_dir": pki, "name": ["client2"], "type": "client"}, pki, "does not belong to", "vpn_ca")


@pytest.mark.parametrize("content", [b"garbage\n", b"-----BEGIN CERTIFICATE-----\nMIIDSzCCAjOgAwIBAgIRAK\n"])
def test_garbage_or_truncated_certificate_in_issued(pki, content):
    with open(os.path.join(pki, "issued", "client1.crt"), "wb") as handle:
        handle.write(content)
    refused("vpn_cert", {"pki_dir": pki, "name": ["client1"], "type": "client"}, pki,
            "issued/client1.crt is not a readable PEM certificate", "backup")


def test_malformed_index_row(pki):
    with open(os.path.join(pki, "index.txt"), "a") as handle:
        handle.write("V\tnot-a-date\t\tABCDEF\tunknown\t/CN=x\n")
    refused("vpn_cert", {"pki_dir": pki, "name": ["client2"], "type": "client"}, pki, "index.txt line 3", "expiry time")


def test_certificate_of_another_ca_is_reissued_with_a_backup(pki, tmp_path):
    other = str(tmp_path / "other")
    ok("vpn_ca", {"pki_dir": other, "common_name": "Other CA"})
    ok("vpn_cert", {"pki_dir": other, "name": ["client1"], "type": "client"})
    foreign = open(os.path.join(other, "issued", "client1.crt"), "rb").read()
    shutil.copy(os.path.join(other, "issued", "client1.crt"), os.path.join(pki, "issued", "client1.crt"))

    result = ok("vpn_cert", {"pki_dir": pki, "name": ["client1"], "type": "client"})
    entry = result["certificates"]["client1"]
    assert entry["action"] == "reissued"
    assert any("another CA" in reason for reason in entry["reasons"])
    # ansible-core 2.19 returns structured warnings: search their JSON.
    assert "another CA" in json.dumps(result.get("warnings", []))
    assert len(entry["backup_files"]) == 1 and open(entry["backup_files"][0], "rb").read() == foreign
    assert open(os.path.join(pki, "issued", "client1.crt"), "rb").read() != foreign
