"""vpn_stage with cache_dir: a source and its staged copy whose stamps (inode, size, mtime, ctime)
are those recorded with the same SHA-256 are not read, and that never makes a run less strict: a
staged key changed behind our back with the same size and its mtime forged back with `touch -d` is
noticed and restored. Check mode writes nothing, the cache included. The stage role passes
stage_cache_dir. Wall time: about 15 s."""

import hashlib
import json
import os
import sqlite3
import subprocess
import sys
import time

from conftest import ok, playbook, recap, snapshot

CLIENTS = ["alice", "bob"]
STAMP_SETTLE_SECONDS = 2  # verified_cache.STAMP_SETTLE_SECONDS


def _cache_file(cache, dest):
    """verified_cache.digests_file: one file per staging folder, named from its path."""
    return os.path.join(cache, "staged-%s.sqlite" % hashlib.sha256(dest.encode()).hexdigest()[:32])


def _stage(pki, dest, cache, check_mode=False):
    return ok("vpn_stage", {"dest": dest, "pki_dir": pki, "names": CLIENTS, "cache_dir": cache}, check_mode=check_mode)


def _stamped_paths(cache, dest):
    """The files the cache will not read again while their stamp holds."""
    with sqlite3.connect(_cache_file(cache, dest)) as db:
        return set(path for (path,) in db.execute("SELECT path FROM files"))


def _flip_a_byte_keeping_size_and_mtime(path):
    """One base64 character of the key changed in place, its mtime set back with `touch -d`."""
    before = os.stat(path)
    with open(path, "r+b") as handle:
        pem = handle.read()
        middle = pem.index(b"\n", len(pem) // 2) + 5
        handle.seek(middle)
        handle.write(b"A" if pem[middle:middle + 1] != b"A" else b"B")
    stamp = "@%d.%09d" % divmod(before.st_mtime_ns, 10 ** 9)
    subprocess.run(["touch", "-m", "-d", stamp, path], check=True)
    after = os.stat(path)
    assert (after.st_ino, after.st_size, after.st_mtime_ns) == (before.st_ino, before.st_size, before.st_mtime_ns)
    with open(path, "rb") as handle:
        assert handle.read() != pem


def test_a_staged_key_changed_with_the_same_size_and_mtime_is_restored(ca, tmp_path):
    ok("vpn_cert", {"pki_dir": ca, "name": CLIENTS, "type": "client"})
    dest, cache = str(tmp_path / "stage"), str(tmp_path / "cache")
    assert _stage(ca, dest, cache)["changed"]
    time.sleep(STAMP_SETTLE_SECONDS + 0.5)  # files that old get a stamp: the next runs do not read them
    again = _stage(ca, dest, cache)
    assert not again["changed"] and set(again["files"].values()) == {"unchanged"}
    staged_key, source_key = os.path.join(dest, "alice.key"), os.path.join(ca, "private", "alice.key")
    assert {staged_key, source_key, os.path.join(ca, "ca.crt")} <= _stamped_paths(cache, dest)
    assert oct(os.stat(cache).st_mode & 0o777) == "0o700" and oct(os.stat(_cache_file(cache, dest)).st_mode & 0o777) == "0o600"

    _flip_a_byte_keeping_size_and_mtime(staged_key)
    before = snapshot(str(tmp_path))
    planned = _stage(ca, dest, cache, check_mode=True)
    assert planned["changed"] and planned["files"]["alice.key"] == "copied" and planned["files"]["bob.key"] == "unchanged"
    assert snapshot(str(tmp_path)) == before  # the PKI, the folder and the cache

    restored = _stage(ca, dest, cache)
    assert restored["changes"] == ["copied alice.key"]
    with open(staged_key, "rb") as staged, open(source_key, "rb") as source:
        assert staged.read() == source.read()
    assert oct(os.stat(staged_key).st_mode & 0o777) == "0o600"
    assert not _stage(ca, dest, cache)["changed"]


def test_the_stage_role_passes_stage_cache_dir(ca, tmp_path):
    ok("vpn_cert", {"pki_dir": ca, "name": CLIENTS, "type": "client"})
    time.sleep(STAMP_SETTLE_SECONDS + 0.5)  # the PKI's files settled: the role's run records their stamps
    cache = str(tmp_path / "cache")
    stage_vars = {"stage_pki_dir": ca, "stage_names": CLIENTS}
    play = [{"hosts": "localhost", "gather_facts": False, "vars": {"ansible_python_interpreter": sys.executable}, "tasks": [
        {"ansible.builtin.include_role": {"name": "clientvpn.pki.stage"},
         "vars": dict(stage_vars, stage_dir=str(tmp_path / "stage"), stage_cache_dir=cache)},
        {"ansible.builtin.include_role": {"name": "clientvpn.pki.stage"},
         "vars": dict(stage_vars, stage_dir=str(tmp_path / "uncached"), stage_cache_dir="")},
    ]}]
    path = tmp_path / "stage.json"
    path.write_text(json.dumps(play))
    assert recap(playbook([str(path)]).stdout)["changed"] == 2
    dest = str(tmp_path / "stage")
    assert os.listdir(cache) == [os.path.basename(_cache_file(cache, dest))]  # none for the folder staged with stage_cache_dir=""
    assert os.path.join(ca, "private", "alice.key") in _stamped_paths(cache, dest)
    assert sorted(os.listdir(tmp_path / "uncached")) == sorted([".clientvpn-stage.json", "ca.crt"] + [n + e for n in CLIENTS for e in (".crt", ".key")])
