"""vpn_stage keeps the staging folder to what is current (issue 10): what it
staged is recorded in .clientvpn-stage.json with a sha256; prune and remove
delete only those files, unedited; everything else is left and reported.
Check mode reports the same and writes nothing. The module runs as AnsiballZ
runs it, on real files; files given by path, or by name from a PKI. Wall time: about 10 s."""

import json
import os
import stat

from conftest import failed, ok, snapshot

MANIFEST = ".clientvpn-stage.json"


def _sources(tmp_path, names):
    source = tmp_path / "pki"
    source.mkdir(exist_ok=True)
    for name in names:
        (source / name).write_text("material of %s\n" % name)
    return source


def _stage_args(dest, source, names, **options):
    return dict(
        options,
        dest=str(dest),
        certificates=[str(source / name) for name in names if name.endswith(".crt")],
        private_keys=[str(source / name) for name in names if name.endswith(".key")],
    )


def _recorded(dest):
    return sorted(json.loads((dest / MANIFEST).read_text())["files"])


def test_prune_removes_what_is_no_longer_listed_and_only_that(tmp_path):
    everyone = ["ca.crt", "server.crt", "server.key", "alice.crt", "alice.key", "bob.crt", "bob.key", "carol.crt", "carol.key"]
    source = _sources(tmp_path, everyone)
    dest = tmp_path / "custom_folder"
    first = ok("vpn_stage", _stage_args(dest, source, everyone))
    assert first["removed"] == [] and first["left_alone"] == {}
    assert _recorded(dest) == sorted(everyone)
    assert stat.S_IMODE(os.stat(dest / MANIFEST).st_mode) == 0o600
    # Not ours: written by the acm role, and by hand. A staged file edited since.
    (dest / "acm-arns.json").write_text("{}\n")
    (dest / "README.txt").write_text("for the helpdesk\n")
    (dest / "carol.crt").write_text("edited by hand\n")

    # bob and carol left the list.
    now = ["ca.crt", "server.crt", "server.key", "alice.crt", "alice.key"]
    before = snapshot(str(tmp_path))
    predicted = ok("vpn_stage", _stage_args(dest, source, now, prune=True), check_mode=True)
    assert snapshot(str(tmp_path)) == before
    pruned = ok("vpn_stage", _stage_args(dest, source, now, prune=True))
    for result in (predicted, pruned):
        assert result["changed"]
        assert result["removed"] == ["bob.crt", "bob.key", "carol.key"]
        assert result["left_alone"] == {"carol.crt": "changed since it was staged: left alone and no longer tracked"}
        assert "removed bob.key" in result["changes"]
    assert predicted["changes"] == pruned["changes"]
    assert any("carol.crt" in warning for warning in map(str, pruned.get("warnings", [])))
    assert sorted(os.listdir(dest)) == sorted(now + ["acm-arns.json", "README.txt", "carol.crt", MANIFEST])
    assert (dest / "carol.crt").read_text() == "edited by hand\n"
    assert _recorded(dest) == sorted(now)

    again = ok("vpn_stage", _stage_args(dest, source, now, prune=True))
    assert not again["changed"] and again["removed"] == [] and again["left_alone"] == {}


def test_without_prune_nothing_is_removed(tmp_path):
    names = ["ca.crt", "bob.crt", "bob.key"]
    source = _sources(tmp_path, names)
    dest = tmp_path / "custom_folder"
    ok("vpn_stage", _stage_args(dest, source, names))
    kept = ok("vpn_stage", _stage_args(dest, source, ["ca.crt"]))
    assert not kept["changed"] and kept["removed"] == []
    assert sorted(os.listdir(dest)) == sorted(names + [MANIFEST])
    # Still recorded: a later prune (or remove) can take them.
    assert _recorded(dest) == sorted(names)
    assert ok("vpn_stage", _stage_args(dest, source, ["ca.crt"], prune=True))["removed"] == ["bob.crt", "bob.key"]


def test_remove_takes_only_recorded_unedited_files(tmp_path):
    names = ["ca.crt", "alice.crt", "alice.key", "bob.crt", "bob.key"]
    source = _sources(tmp_path, names)
    dest = tmp_path / "custom_folder"
    ok("vpn_stage", _stage_args(dest, source, names))
    (dest / "dave.key").write_text("put here by hand\n")
    asked = {"remove": ["bob.crt", "bob.key", "dave.key", "erin.crt"]}

    before = snapshot(str(tmp_path))
    predicted = ok("vpn_stage", dict(asked, dest=str(dest)), check_mode=True)
    assert snapshot(str(tmp_path)) == before
    removed = ok("vpn_stage", dict(asked, dest=str(dest)))
    for result in (predicted, removed):
        assert result["changed"] and result["removed"] == ["bob.crt", "bob.key"]
        assert result["left_alone"] == {"dave.key": "not staged by vpn_stage: left alone", "erin.crt": "not in the folder"}
    assert sorted(os.listdir(dest)) == sorted(["ca.crt", "alice.crt", "alice.key", "dave.key", MANIFEST])
    # The other records stay, so the next staging run (with or without prune) is unchanged.
    assert _recorded(dest) == ["alice.crt", "alice.key", "ca.crt"]

    again = ok("vpn_stage", dict(asked, dest=str(dest)))
    assert not again["changed"] and again["removed"] == []
    assert again["left_alone"]["bob.crt"] == "not in the folder"


def test_a_broken_manifest_removes_nothing_and_is_rewritten(tmp_path):
    names = ["ca.crt", "bob.crt"]
    source = _sources(tmp_path, names)
    dest = tmp_path / "custom_folder"
    ok("vpn_stage", _stage_args(dest, source, names))
    (dest / MANIFEST).write_text("not json")
    result = ok("vpn_stage", _stage_args(dest, source, ["ca.crt"], prune=True))
    assert result["removed"] == [] and (dest / "bob.crt").exists()
    assert any("not a vpn_stage manifest" in warning for warning in map(str, result.get("warnings", [])))
    assert _recorded(dest) == ["ca.crt"]
    assert stat.S_IMODE(os.stat(dest / MANIFEST).st_mode) == 0o600


def test_remove_refuses_what_is_not_a_staged_file_name(tmp_path):
    source = _sources(tmp_path, ["ca.crt"])
    dest = tmp_path / "custom_folder"
    ok("vpn_stage", _stage_args(dest, source, ["ca.crt"]))
    before = snapshot(str(tmp_path))
    for name, expected in (("../pki/ca.crt", "not a file name"), (MANIFEST, "manifest"), ("ca.crt", "both staged")):
        message = failed("vpn_stage", _stage_args(dest, source, ["ca.crt"], remove=[name]))
        assert expected in message, message
    assert snapshot(str(tmp_path)) == before


def test_files_by_name_from_the_pki(ca, tmp_path):
    """pki_dir and names: ca.crt and each name's certificate and key, found in the PKI's layout."""
    dest = tmp_path / "custom_folder"
    by_name = {"dest": str(dest), "pki_dir": ca, "names": ["server", "client1.domain.tld", "alice.example.com"], "prune": True}
    # Check mode of a whole play from an empty folder: what an earlier task would issue counts as copied.
    empty = dict(by_name, pki_dir=str(tmp_path / "not-built-yet"))
    planned = ok("vpn_stage", empty, check_mode=True)
    assert planned["changed"] and set(planned["files"].values()) == {"copied"} and len(planned["files"]) == 7
    assert not dest.exists() and not (tmp_path / "not-built-yet").exists()

    ok("vpn_cert", {"pki_dir": ca, "name": ["server"], "type": "server"})
    ok("vpn_cert", {"pki_dir": ca, "name": ["client1.domain.tld", "alice.example.com"], "type": "client"})
    staged = ok("vpn_stage", by_name)
    expected = ["alice.example.com.crt", "alice.example.com.key", "ca.crt", "client1.domain.tld.crt", "client1.domain.tld.key",
                "server.crt", "server.key"]
    assert sorted(staged["files"]) == expected and set(staged["files"].values()) == {"copied"}
    for name in expected:
        source = "ca.crt" if name == "ca.crt" else os.path.join("private" if name.endswith(".key") else "issued", name)
        with open(os.path.join(ca, source), "rb") as handle:
            assert (dest / name).read_bytes() == handle.read(), name
        assert stat.S_IMODE(os.stat(dest / name).st_mode) == (0o600 if name.endswith(".key") else 0o644)
    assert ok("vpn_stage", by_name)["changed"] is False

    # alice dropped from the names: her files leave the folder; only the certificates asked for with pki_files.
    fewer = dict(by_name, names=["server", "client1.domain.tld"])
    pruned = ok("vpn_stage", fewer)
    assert pruned["removed"] == ["alice.example.com.crt", "alice.example.com.key"]
    certificates_only = ok("vpn_stage", dict(fewer, pki_files=["certificate"]), check_mode=True)
    assert sorted(certificates_only["files"]) == ["client1.domain.tld.crt", "server.crt"]
    assert certificates_only["removed"] == ["ca.crt", "client1.domain.tld.key", "server.key"]

    assert "pki_dir" in failed("vpn_stage", {"dest": str(dest), "names": ["server"]})
    assert "'ca'" in failed("vpn_stage", dict(by_name, names=["ca"]))
    missing = failed("vpn_stage", dict(by_name, names=["server", "carol.example.com"]))
    assert os.path.join(ca, "issued", "carol.example.com.crt") + " does not exist" in missing
    assert sorted(os.listdir(dest)) == sorted(["ca.crt", "client1.domain.tld.crt", "client1.domain.tld.key", "server.crt", "server.key",
                                               MANIFEST])


def test_removing_from_a_folder_that_is_not_there_creates_nothing(tmp_path):
    """revoke_client removes the revoked clients' files from the staging folder: with no folder
    there is nothing to remove, and none is made for it (check mode or not)."""
    dest = str(tmp_path / "never-staged")
    for check_mode in (True, False):
        result = ok("vpn_stage", {"dest": dest, "remove": ["bob.crt", "bob.key"]}, check_mode=check_mode)
        assert result["changed"] is False and result["removed"] == []
        assert result["left_alone"] == {"bob.crt": "not in the folder", "bob.key": "not in the folder"}
    assert not os.path.exists(dest)


def test_report_changed_lists_only_what_changed(ca, tmp_path):
    dest = str(tmp_path / "stage")
    ok("vpn_cert", {"pki_dir": ca, "name": ["alice", "bob"], "type": "client"})
    first = ok("vpn_stage", {"dest": dest, "pki_dir": ca, "names": ["alice"], "report": "changed"})
    assert sorted(first["files"]) == ["alice.crt", "alice.key", "ca.crt"]
    second = ok("vpn_stage", {"dest": dest, "pki_dir": ca, "names": ["alice", "bob"], "report": "changed"})
    assert second["files"] == {"bob.crt": "copied", "bob.key": "copied"}
    assert len(ok("vpn_stage", {"dest": dest, "pki_dir": ca, "names": ["alice", "bob"]})["files"]) == 5
