# -*- coding: utf-8 -*-
# Copyright: clientvpn.pki contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""vpn_stage with cache_dir: a source and its staged copy whose stamps (device, inode, size, mtime,
ctime) are those recorded with the same SHA-256 are not read; any change, even one that keeps the
size and sets the mtime back, is read and copied; check mode writes neither folder nor cache; a
cache others could write is ignored with a warning."""

from __future__ import annotations

import builtins
import os
import stat
import time

import pytest

from ansible_collections.clientvpn.pki.plugins.module_utils import verified_cache
from ansible_collections.clientvpn.pki.plugins.module_utils.staging import EDITED, StagingFolder
from ansible_collections.clientvpn.pki.plugins.module_utils.verified_cache import STAMP_SETTLE_SECONDS, digests_file

NAMES = ("alice", "bob")


@pytest.fixture
def settled(monkeypatch):
    """time.time() a few seconds ahead: files written by the test count as settled (as in test_verified_cache)."""
    real = time.time
    monkeypatch.setattr(verified_cache.time, "time", lambda: real() + STAMP_SETTLE_SECONDS + 1)


@pytest.fixture
def opened(monkeypatch):
    """The paths opened through open() from now on: which files a run read."""
    paths = []
    real_open = builtins.open

    def watching_open(file, *args, **kwargs):
        paths.append(str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", watching_open)
    return paths


@pytest.fixture
def pki(tmp_path):
    """The files vpn_stage copies from a PKI (staging only copies bytes: no need for real certificates)."""
    root = tmp_path / "pki"
    for folder in ("issued", "private"):
        (root / folder).mkdir(parents=True)
    (root / "ca.crt").write_bytes(b"certificate of the CA\n")
    for name in NAMES:
        (root / "issued" / (name + ".crt")).write_bytes(b"certificate of %s\n" % name.encode())
        (root / "private" / (name + ".key")).write_bytes(b"private key of %s\n" % name.encode())
    return root


def _stage(tmp_path, names=NAMES, check_mode=False, cache_dir="cache", **options):
    pki = tmp_path / "pki"
    certificates = [str(pki / "ca.crt")] + [str(pki / "issued" / (name + ".crt")) for name in names]
    keys = [str(pki / "private" / (name + ".key")) for name in names]
    cache = str(tmp_path / cache_dir) if cache_dir else None
    return StagingFolder(str(tmp_path / "stage"), certificates, keys, cache_dir=cache, **options).run(check_mode)


def _files(tmp_path):
    """Every source and staged path: what a run with settled stamps must not open."""
    pki, stage = tmp_path / "pki", tmp_path / "stage"
    paths = [pki / "ca.crt", stage / "ca.crt"]
    for name in NAMES:
        paths += [pki / "issued" / (name + ".crt"), pki / "private" / (name + ".key"), stage / (name + ".crt"), stage / (name + ".key")]
    return set(str(path) for path in paths)


def _change_behind_our_back(path):
    """One byte different in place (same inode), same size, mtime set back: only the ctime tells."""
    before = os.stat(str(path))
    data = bytearray(path.read_bytes())
    data[0] ^= 1
    time.sleep(0.05)  # a later clock tick than the recorded stamp's: the kernel's ctime moves in ticks
    with open(str(path), "r+b") as handle:
        handle.write(bytes(data))
    os.utime(str(path), ns=(before.st_atime_ns, before.st_mtime_ns))
    after = os.stat(str(path))
    assert (after.st_ino, after.st_size, after.st_mtime_ns) == (before.st_ino, before.st_size, before.st_mtime_ns)
    assert after.st_ctime_ns != before.st_ctime_ns
    return bytes(data)


def test_a_no_op_run_reads_no_file_whose_stamps_hold(pki, tmp_path, settled, opened):
    assert set(_stage(tmp_path)["files"].values()) == {"copied"}
    second = _stage(tmp_path)  # the staged copies are read once more, and their stamps recorded
    assert set(second["files"].values()) == {"unchanged"} and not second["changed"]
    cache_file = str(tmp_path / "cache" / digests_file(str(tmp_path / "stage")))
    assert stat.S_IMODE(os.stat(str(tmp_path / "cache")).st_mode) == 0o700 and stat.S_IMODE(os.stat(cache_file).st_mode) == 0o600
    written = os.stat(cache_file).st_mtime_ns

    del opened[:]
    third = _stage(tmp_path)
    assert set(third["files"].values()) == {"unchanged"} and not third["changed"] and third["warnings"] == []
    assert _files(tmp_path).isdisjoint(opened), sorted(_files(tmp_path) & set(opened))
    assert os.stat(cache_file).st_mtime_ns == written  # nothing learnt: not written
    assert os.listdir(str(tmp_path / "cache")) == [os.path.basename(cache_file)]  # one file for this staging folder


def test_young_files_are_read_every_time_and_get_no_stamp(pki, tmp_path, opened):
    """Files changed less than STAMP_SETTLE_SECONDS ago: a change within the same clock tick would keep their ctime."""
    _stage(tmp_path)
    del opened[:]
    assert set(_stage(tmp_path)["files"].values()) == {"unchanged"}
    assert _files(tmp_path) <= set(opened)
    assert not os.path.exists(str(tmp_path / "cache"))  # nothing settled, nothing learnt


@pytest.mark.parametrize("where", ["staged", "source"])
def test_a_file_changed_with_the_same_size_and_mtime_is_copied(pki, tmp_path, settled, where):
    _stage(tmp_path)
    _stage(tmp_path)
    source, staged = pki / "private" / "alice.key", tmp_path / "stage" / "alice.key"
    changed = _change_behind_our_back(staged if where == "staged" else source)

    result = _stage(tmp_path)
    assert result["files"]["alice.key"] == "copied" and result["files"]["alice.crt"] == "unchanged"
    assert staged.read_bytes() == (b"private key of alice\n" if where == "staged" else changed)
    assert stat.S_IMODE(os.stat(str(staged)).st_mode) == 0o600
    assert set(_stage(tmp_path)["files"].values()) == {"unchanged"}


def test_a_wrong_mode_is_set_back(pki, tmp_path, settled):
    _stage(tmp_path)
    _stage(tmp_path)
    os.chmod(str(tmp_path / "stage" / "alice.crt"), 0o600)
    os.chmod(str(tmp_path / "stage" / "bob.key"), 0o644)
    result = _stage(tmp_path)
    assert result["files"]["alice.crt"] == "chmod" and result["files"]["bob.key"] == "chmod"
    assert stat.S_IMODE(os.stat(str(tmp_path / "stage" / "alice.crt")).st_mode) == 0o644
    assert stat.S_IMODE(os.stat(str(tmp_path / "stage" / "bob.key")).st_mode) == 0o600


def test_a_staged_link_is_never_known_by_its_own_stamp(pki, tmp_path, settled):
    """A link's stamp says nothing of the bytes it points to: staged paths are lstat-ed and only regular files skipped."""
    _stage(tmp_path)
    elsewhere, staged = tmp_path / "elsewhere.crt", tmp_path / "stage" / "alice.crt"
    elsewhere.write_bytes(b"certificate of alice\n")
    os.chmod(str(elsewhere), 0o644)
    staged.unlink()
    os.symlink(str(elsewhere), str(staged))
    _stage(tmp_path)
    elsewhere.write_bytes(b"certificate of mallory\n")
    result = _stage(tmp_path)
    assert result["files"]["alice.crt"] == "copied"
    assert not os.path.islink(str(staged)) and staged.read_bytes() == b"certificate of alice\n"


def test_prune_finds_unedited_files_by_stamp_and_edited_ones_by_their_bytes(pki, tmp_path, settled, opened):
    _stage(tmp_path)
    _stage(tmp_path)
    edited = _change_behind_our_back(tmp_path / "stage" / "bob.crt")
    del opened[:]
    result = _stage(tmp_path, names=("alice",), prune=True)
    assert result["removed"] == ["bob.key"] and result["left_alone"] == {"bob.crt": EDITED}
    assert str(tmp_path / "stage" / "bob.key") not in opened and str(tmp_path / "stage" / "bob.crt") in opened
    assert (tmp_path / "stage" / "bob.crt").read_bytes() == edited


def test_check_mode_writes_neither_the_folder_nor_the_cache(pki, tmp_path, settled, helpers):
    planned = _stage(tmp_path, check_mode=True)
    assert set(planned["files"].values()) == {"copied"}
    assert not os.path.exists(str(tmp_path / "stage")) and not os.path.exists(str(tmp_path / "cache"))

    _stage(tmp_path)
    _change_behind_our_back(pki / "issued" / "bob.crt")
    before = helpers.snapshot(str(tmp_path))
    planned = _stage(tmp_path, check_mode=True)
    assert planned["files"]["bob.crt"] == "copied" and planned["files"]["alice.crt"] == "unchanged"
    assert helpers.snapshot(str(tmp_path)) == before


@pytest.mark.parametrize("loosen", ["file", "folder"])
def test_a_cache_others_could_write_is_not_used(pki, tmp_path, settled, opened, loosen):
    _stage(tmp_path)
    _stage(tmp_path)
    cache_dir = str(tmp_path / "cache")
    cache_file = os.path.join(cache_dir, digests_file(str(tmp_path / "stage")))
    os.chmod(cache_file if loosen == "file" else cache_dir, 0o666 if loosen == "file" else 0o777)
    del opened[:]
    result = _stage(tmp_path)
    assert set(result["files"].values()) == {"unchanged"}
    assert _files(tmp_path) <= set(opened)  # every file read, as without a cache
    assert "did not use the cache" in result["warnings"][0] and "writable by other users" in result["warnings"][0]
    if loosen == "file":  # nor written: someone else may have written it
        assert len(result["warnings"]) == 2 and "could not write the cache" in result["warnings"][1]
    else:  # our folder closed again (0700), our own 0600 file rewritten: only we could have written it
        assert len(result["warnings"]) == 1 and stat.S_IMODE(os.stat(cache_dir).st_mode) == 0o700


def test_without_cache_dir_every_file_is_read_and_nothing_kept(pki, tmp_path, settled, opened):
    _stage(tmp_path, cache_dir=None)
    del opened[:]
    assert set(_stage(tmp_path, cache_dir=None)["files"].values()) == {"unchanged"}
    assert _files(tmp_path) <= set(opened)
    assert sorted(os.listdir(str(tmp_path))) == ["pki", "stage"]


def test_threads_looking_files_up_at_once_all_get_the_recorded_digest(tmp_path, settled):
    """vpn_stage's copying threads share the cache's one connection (below PREFETCH_FROM files, every
    lookup is a query): Python 3.12's sqlite3 failed them (InterfaceError) and 3.13's gave wrong rows."""
    import concurrent.futures  # pylint: disable=import-outside-toplevel
    import hashlib  # pylint: disable=import-outside-toplevel

    folder, cache = str(tmp_path / "stage"), str(tmp_path / "cache")
    os.mkdir(folder, 0o700)
    paths = []
    for index in range(verified_cache.PREFETCH_FROM - 1):
        path = os.path.join(folder, "file%02d" % index)
        with open(path, "wb") as handle:
            handle.write(b"content %d" % index)
        paths.append(path)
    digests = verified_cache.FileDigests(cache, folder, files=len(paths))
    for path in paths:
        digests.read(path, os.stat(path))
    digests.save()

    again = verified_cache.FileDigests(cache, folder, files=len(paths))
    assert again.prefetched is None and again.db is not None  # looked up one query at a time
    expected = dict((path, hashlib.sha256(b"content %d" % index).hexdigest()) for index, path in enumerate(paths))
    infos = dict((path, os.stat(path)) for path in paths)
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        found = list(pool.map(lambda path: (path, again.known(path, infos[path])), paths * 40))
    again.close()
    assert [item for item in found if item[1] != expected[item[0]]] == []
