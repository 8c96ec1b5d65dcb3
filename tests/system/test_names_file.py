"""pki_clients_file: the client names in a text file the modules read themselves (thousands of names
without an Ansible list to template), through mutual_auth, revoke and client_profiles, with the same
checks as pki_clients: check mode exact, a second run changes nothing, a name dropped from the file
leaves the staging folder, a bad line stops the run before anything is written."""

import json
import os

from conftest import ENDPOINT_CONFIG, failed, ok, playbook, recap, snapshot

FILE_CLIENTS = ["alice.example.com", "bob.example.com", "carol.example.com"]


def _args(tmp_path, clients_file, *extra):
    return ["clientvpn.pki.mutual_auth", "-e", "pki_dir=%s" % (tmp_path / "pki"), "-e", "stage_dir=%s" % (tmp_path / "stage"),
            "-e", "pki_clients_file=%s" % clients_file, "-e", "pki_cache_dir=%s" % (tmp_path / "cache"),
            "-e", json.dumps({"pki_clients": ["listed.example.com"], "clientvpn_acm_import": False, "pki_key_size": 1024})] + list(extra)


def test_mutual_auth_issues_and_stages_the_names_of_pki_clients_file(tmp_path):
    clients_file = tmp_path / "clients.txt"
    clients_file.write_text("# one user per line\nalice.example.com\n\n  bob.example.com\ncarol.example.com\nalice.example.com\n")
    args = _args(tmp_path, clients_file)

    assert recap(playbook(args, check=True).stdout)["changed"] > 0
    assert sorted(os.listdir(tmp_path)) == ["clients.txt"]
    assert recap(playbook(args).stdout)["changed"] > 0
    issued = sorted(name[:-4] for name in os.listdir(tmp_path / "pki" / "issued"))
    assert issued == sorted(FILE_CLIENTS + ["listed.example.com", "server"])
    staged = sorted(os.listdir(tmp_path / "stage"))
    assert staged == sorted([".clientvpn-stage.json", "ca.crt"] + [name + ext for name in issued for ext in (".crt", ".key")])

    before = [snapshot(str(tmp_path / folder)) for folder in ("pki", "stage")]
    assert recap(playbook(args, check=True).stdout)["changed"] == 0
    assert recap(playbook(args).stdout)["changed"] == 0
    assert [snapshot(str(tmp_path / folder)) for folder in ("pki", "stage")] == before  # the cache may learn stamps

    # bob leaves the file: his files leave the folder handed out (his certificate stays in the PKI until revoked).
    clients_file.write_text("alice.example.com\ncarol.example.com\n")
    assert recap(playbook(args, check=True).stdout)["changed"] == 1
    assert (tmp_path / "stage" / "bob.example.com.key").exists()
    assert recap(playbook(args).stdout)["changed"] == 1
    assert not (tmp_path / "stage" / "bob.example.com.key").exists() and (tmp_path / "stage" / "alice.example.com.key").exists()
    assert (tmp_path / "pki" / "issued" / "bob.example.com.crt").exists()

    # client_profiles takes the same file.
    config = tmp_path / "endpoint.ovpn"
    config.write_text(ENDPOINT_CONFIG % (tmp_path / "pki" / "ca.crt").read_text())
    profiles = ["clientvpn.pki.client_profiles", "-e", "pki_dir=%s" % (tmp_path / "pki"), "-e", "pki_clients_file=%s" % clients_file,
                "-e", "profiles_config_file=%s" % config, "-e", "profiles_dest=%s" % (tmp_path / "profiles")]
    assert recap(playbook(profiles).stdout)["changed"] == 1
    assert sorted(os.listdir(tmp_path / "profiles")) == ["alice.example.com.ovpn", "carol.example.com.ovpn"]


def test_a_bad_line_in_pki_clients_file_stops_the_run_before_any_client_file_is_written(tmp_path):
    clients_file = tmp_path / "clients.txt"
    clients_file.write_text("alice.example.com\nbob smith\n")
    proc = playbook(_args(tmp_path, clients_file), succeed=False)
    assert "names_file=%s line 2: name 'bob smith' cannot be used" % clients_file in proc.stdout
    # the CA and the server come first (their tasks run before the clients'), but no client file is written
    assert not (tmp_path / "pki" / "issued" / "alice.example.com.crt").exists()
    assert not (tmp_path / "stage").exists()

    missing = playbook(_args(tmp_path, tmp_path / "nope.txt"), succeed=False)
    assert "names_file=%s does not exist" % (tmp_path / "nope.txt") in missing.stdout


def test_client_imports_into_acm_of_a_names_file_are_refused_before_anything_is_written(tmp_path):
    clients_file = tmp_path / "clients.txt"
    clients_file.write_text("alice.example.com\n")
    args = _args(tmp_path, clients_file, "-e", json.dumps({"clientvpn_acm_import": True, "acm_import_clients": True}))
    proc = playbook(args, succeed=False)
    assert "List the clients to import in pki_clients" in proc.stdout
    assert sorted(os.listdir(tmp_path)) == ["clients.txt"]


def test_vpn_cert_revokes_the_names_of_a_file_and_an_empty_file_is_no_error(tmp_path, ca):
    ok("vpn_cert", {"pki_dir": ca, "name": ["alice", "bob", "carol"], "type": "client", "key_size": 1024})
    listing = tmp_path / "leavers.txt"
    listing.write_text("# left in November\nbob\ncarol\n")
    revoked = ok("vpn_cert", {"pki_dir": ca, "names_file": str(listing), "state": "revoked"})
    assert revoked["changed"] and sorted(name for name, entry in revoked["certificates"].items() if entry["action"] == "revoked") == ["bob", "carol"]
    rows = [row.split("\t") for row in open(os.path.join(ca, "index.txt")).read().splitlines()]
    assert sorted(row[5] for row in rows if row[0] == "R") == ["/CN=bob", "/CN=carol"]

    listing.write_text("# nobody\n")
    before = snapshot(ca)
    nothing = ok("vpn_cert", {"pki_dir": ca, "names_file": str(listing), "type": "client"})
    assert not nothing["changed"] and nothing["certificates"] == {}
    assert snapshot(ca) == before
    message = failed("vpn_cert", {"pki_dir": ca, "type": "client"})
    assert "one of the following is required: name, names_file" in message
