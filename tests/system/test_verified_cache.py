"""The verified cache (cache_dir) never makes a run less strict: a certificate changed behind
our back is noticed even when its size and mtime are the same (mtime forged with
`touch -d`), and the cache lives outside the PKI, written only by real runs.
The pki role uses it by default (pki_cache_dir)."""

import json
import os
import sqlite3
import subprocess
import time

from conftest import ok, playbook, recap, snapshot

CLIENTS = ["alice", "bob"]
STAMP_SETTLE_SECONDS = 2  # verified_cache.STAMP_SETTLE_SECONDS


def _issue(pki, cache, check_mode=False, names=None):
    return ok("vpn_cert", {"pki_dir": pki, "name": names or CLIENTS, "type": "client", "cache_dir": cache}, check_mode=check_mode)


def _touch_back(path, stat_before):
    """Set the file's mtime back to what it was, as `touch -d` does (an operator restoring a
    backup, or someone covering their tracks)."""
    stamp = "@%d.%09d" % divmod(stat_before.st_mtime_ns, 10 ** 9)
    subprocess.run(["touch", "-m", "-d", stamp, path], check=True)
    assert os.stat(path).st_mtime_ns == stat_before.st_mtime_ns


def _stamped_paths(cache):
    """The files the cache will not read again while their stamp holds."""
    with sqlite3.connect(os.path.join(cache, os.listdir(cache)[0])) as db:
        return set(path for (path,) in db.execute("SELECT path FROM files"))


def test_a_certificate_changed_with_the_same_size_and_mtime_is_noticed(ca, tmp_path):
    cache = str(tmp_path / "cache")
    _issue(ca, cache)
    time.sleep(STAMP_SETTLE_SECONDS + 0.5)  # files that old get a stamp: the next run does not even read them
    _issue(ca, cache)
    assert os.path.join(ca, "issued", "alice.crt") in _stamped_paths(cache)

    # A byte of the signature flipped: the file still parses, is as long as before, has the same mtime.
    path = os.path.join(ca, "issued", "alice.crt")
    before, pem = os.stat(path), open(path).read()
    body = pem.split("\n")
    line = len(body) - 3  # a line of the signature, near the end of the base64
    body[line] = body[line][:10] + ("A" if body[line][10] != "A" else "B") + body[line][11:]
    with open(path, "w") as handle:
        handle.write("\n".join(body))
    _touch_back(path, before)
    assert os.stat(path).st_size == before.st_size

    planned = _issue(ca, cache, check_mode=True)
    alice = planned["certificates"]["alice"]
    assert alice["action"] == "reissued" and any("signed by another CA" in reason for reason in alice["reasons"]), alice
    assert planned["certificates"]["bob"]["action"] == "unchanged"


def test_a_no_op_run_writes_neither_the_pki_nor_the_cache(ca, tmp_path):
    cache = str(tmp_path / "cache")
    _issue(ca, cache, check_mode=True)
    assert not os.path.exists(cache)  # check mode writes nothing, the cache included
    _issue(ca, cache)
    cache_file = os.path.join(cache, os.listdir(cache)[0])
    pki_before, cache_before = snapshot(ca), os.stat(cache_file).st_mtime_ns
    again = _issue(ca, cache)
    assert again["changed"] is False
    assert snapshot(ca) == pki_before and os.stat(cache_file).st_mtime_ns == cache_before
    assert oct(os.stat(cache).st_mode & 0o777) == "0o700" and oct(os.stat(cache_file).st_mode & 0o777) == "0o600"


def test_report_changed_returns_the_changed_names_only(ca, tmp_path):
    cache = str(tmp_path / "cache")
    _issue(ca, cache)
    result = ok("vpn_cert", {"pki_dir": ca, "name": CLIENTS + ["carol"], "type": "client", "cache_dir": cache, "report": "changed"})
    assert list(result["certificates"]) == ["carol"] and result["certificates"]["carol"]["action"] == "created"
    assert result["summary"] == {"unchanged": 2, "created": 1}


def test_the_pki_role_keeps_its_cache_outside_the_pki(tmp_path):
    pki, cache = str(tmp_path / "pki"), str(tmp_path / "role-cache")
    args = ["clientvpn.pki.mutual_auth", "-e", json.dumps({
        "pki_dir": pki, "stage_dir": str(tmp_path / "stage"), "pki_clients": CLIENTS, "clientvpn_acm_import": False, "pki_cache_dir": cache})]
    assert recap(playbook(args).stdout)["changed"] > 0
    # the verified cache, and the staging folder's once the files it stages are old enough to record
    assert os.listdir(cache) and all(name.endswith(".sqlite") for name in os.listdir(cache))
    assert not any("cache" in name or name.endswith(".sqlite") for name in os.listdir(pki))
    assert recap(playbook(args).stdout)["changed"] == 0
