"""Bad input: a clear error naming the field and the fix, a non-zero exit,
and nothing on disk lost or changed (compared file by file, mode by mode)."""

import datetime
import json
import os
import re
import shutil
import subprocess
import sys

import pytest

from conftest import failed, ok, playbook, snapshot


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


@pytest.mark.parametrize("damage,found", [
    ({"index.txt": None}, "has a CA (ca.crt) but no index.txt"),
    ({"serial": None}, "has a CA (ca.crt) but no serial"),
    ({"index.txt.attr": "unique_subject = no\nunique_subjects = no\n"}, "line 2 is 'unique_subjects = no'"),
    ({"index.txt.attr": "unique_subject = sometimes\n"}, "line 1 is 'unique_subject = sometimes'"),
    ({"serial": "12G4\n"}, "holds '12G4', not a serial number"),
])
def test_a_pki_folder_easyrsa_could_not_run_on_is_refused_untouched(pki, damage, found):
    """Neither 3.1 nor 3.2: what was found is said, and every module leaves the folder as it was."""
    for name, content in damage.items():
        path = os.path.join(pki, name)
        if content is None:
            os.unlink(path)
        else:
            with open(path, "w") as handle:
                handle.write(content)
    for module, args in (("vpn_ca", {}), ("vpn_cert", {"name": ["client2"], "type": "client"}),
                         ("vpn_cert", {"name": ["client1"], "state": "revoked"}), ("vpn_crl", {})):
        refused(module, dict(args, pki_dir=pki), pki, found, "Nothing was changed")


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


BAD_SUBJECT_ALT_NAMES = [
    ("DNS:vpn.bücher.example", ["not ASCII", "punycode", "vpn.xn--bcher-kva.example"]),
    ("DNS:bad name with spaces", ["not a DNS name", "1-63 letters, digits and inner hyphens"]),
    ("email:x", ["not an email address", "email:local@domain"]),
    ("URI:not a uri", ["not a URI", "no spaces"]),
]


def test_bad_subject_alt_name_is_refused_before_any_key(ca):
    # One CA for all four (a CA each would double the time). Each bad entry sits next to a good
    # one, so it alone is at fault. Before, cryptography refused it after private/vpn.key was written.
    for entry, expected in BAD_SUBJECT_ALT_NAMES:
        args = {"pki_dir": ca, "name": ["vpn"], "type": "server", "subject_alt_names": ["DNS:vpn.example.com", entry]}
        refused("vpn_cert", args, ca, "subject_alt_names entry '%s'" % entry, *expected)
    # What the messages ask for is accepted.
    good = ["DNS:vpn.xn--bcher-kva.example", "DNS:*.vpn.example.com", "email:ops@example.com", "URI:https://vpn.example.com/a%20b"]
    issued = ok("vpn_cert", {"pki_dir": ca, "name": ["vpn"], "type": "server", "subject_alt_names": good})["certificates"]["vpn"]
    assert issued["subject_alt_names"] == good


def test_days_beyond_100_years_or_below_1_is_refused(ca, tmp_path):
    fresh = str(tmp_path / "fresh")
    for module, args in (("vpn_ca", {"pki_dir": fresh}), ("vpn_ca", {"pki_dir": ca}),
                         ("vpn_cert", {"pki_dir": ca, "name": ["c"], "type": "client"}), ("vpn_crl", {"pki_dir": ca})):
        refused(module, dict(args, days=3000000), args["pki_dir"], "days=3000000 is more than 36500 (100 years)", "Set days to at most 36500")
    assert not os.path.exists(fresh)
    refused("vpn_cert", {"pki_dir": ca, "name": ["c"], "type": "client", "days": 0}, ca, "days=0 is less than 1", "Set days to 1 or more")
    # The limit itself is accepted.
    issued = ok("vpn_cert", {"pki_dir": ca, "name": ["c"], "type": "client", "days": 36500})["certificates"]["c"]
    assert issued["not_after"][:4] in {str(datetime.date.today().year + 99), str(datetime.date.today().year + 100)}


def test_common_name_longer_than_64_names_the_way_out(ca):
    long_name = "client-" + "x" * 63
    message = refused("vpn_cert", {"pki_dir": ca, "name": [long_name], "type": "client"}, ca,
                      "name '%s' is 70 characters long" % long_name, "shorter name",
                      "set common_name to a CN of at most 64 characters (with one name per task)")
    assert "the common name of" not in message
    refused("vpn_cert", {"pki_dir": ca, "name": ["c"], "type": "client", "common_name": "y" * 65}, ca,
            "common_name '%s' is 65 characters long" % ("y" * 65), "Set common_name to a CN of at most 64 characters")


def _python_with_old_cryptography():
    """(interpreter, version) of a Python on this machine whose cryptography is older than 42."""
    for candidate in ("/usr/bin/python3", "/usr/local/bin/python3"):
        if not os.path.exists(candidate):
            continue
        proc = subprocess.run([candidate, "-c", "import cryptography; print(cryptography.__version__)"],
                              capture_output=True, text=True, check=False)
        found = re.match(r"(\d+)\.", proc.stdout)
        if proc.returncode == 0 and found and int(found.group(1)) < 42:
            return candidate, proc.stdout.strip()
    message = "no Python with cryptography < 42 (Debian 12's python3-cryptography is 38.0.4: apt-get install python3-cryptography)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)


def test_cryptography_older_than_42_is_a_message_not_a_traceback(ca, tmp_path):
    old_python, old_version = _python_with_old_cryptography()
    result_file = tmp_path / "result.json"
    play = [{
        "hosts": "localhost",
        "gather_facts": False,
        "connection": "local",
        "vars": {"ansible_python_interpreter": sys.executable},
        "tasks": [
            {"name": "vpn_ca run by a Python whose cryptography is too old", "clientvpn.pki.vpn_ca": {"pki_dir": ca},
             "vars": {"ansible_python_interpreter": old_python}, "register": "too_old", "ignore_errors": True},
            {"name": "Keep the result", "ansible.builtin.copy": {"content": "{{ too_old | to_json }}", "dest": str(result_file)}},
        ],
    }]
    path = tmp_path / "old-cryptography.yml"
    path.write_text(json.dumps(play))
    before = snapshot(ca)
    playbook([str(path)])
    result = json.loads(result_file.read_text())
    # A traceback would show as MODULE FAILURE with module_stdout / module_stderr.
    assert result["failed"] and "module_stdout" not in result and "Traceback" not in result.get("exception", ""), result
    assert result["msg"].startswith("cryptography >= 42.0 required, found %s. " % old_version), result["msg"]
    assert "pip install 'cryptography>=42.0'" in result["msg"] and "ansible_python_interpreter" in result["msg"]
    assert snapshot(ca) == before


def test_path_blocked_by_a_file_is_a_message_not_a_traceback(ca, tmp_path):
    blocker = tmp_path / "blocker"
    blocker.write_text("precious\n")
    before = snapshot(str(tmp_path))
    message = failed("vpn_stage", {"dest": str(blocker / "stage"), "certificates": [os.path.join(ca, "ca.crt")]})
    assert message.startswith("%s: File exists. " % blocker), message
    assert "file or directory" in message and "uid" in message
    assert snapshot(str(tmp_path)) == before


def test_acm_import_of_a_missing_file_names_the_option(ca, local_acm, tmp_path):
    ok("vpn_cert", {"pki_dir": ca, "name": ["server"], "type": "server"})
    files = {
        "certificate": os.path.join(ca, "issued", "server.crt"),
        "private_key": os.path.join(ca, "private", "server.key"),
        "certificate_chain": os.path.join(ca, "ca.crt"),
    }
    common = {"region": "eu-west-1", "endpoint_url": local_acm.url, "pki_dir": ca}
    missing = str(tmp_path / "missing.pem")
    for option in files:
        refused("vpn_acm_import", dict(common, **dict(files, **{option: missing})), ca,
                "%s %s cannot be read: No such file or directory" % (option, missing), "readable PEM file")
    refused("vpn_acm_import", dict(common, **dict(files, certificate_chain=ca)), ca, "certificate_chain %s cannot be read: Is a directory" % ca)
    listed = {"certificates": [{"certificate": files["certificate"], "private_key": missing}], "certificate_chain": files["certificate_chain"]}
    refused("vpn_acm_import", dict(common, **listed), ca, "certificates[0].private_key %s cannot be read" % missing)
    assert "ImportCertificate" not in local_acm.requests()
