# -*- coding: utf-8 -*-
# Copyright: clientvpn.pki contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The PKI directory: layout, atomic writes, lock, database files."""

from __future__ import annotations

import multiprocessing
import os
import stat
import threading

import pytest

from ansible_collections.clientvpn.pki.plugins.module_utils import pki_store, safe_folder
from ansible_collections.clientvpn.pki.plugins.module_utils.easyrsa_index import IndexEntry
from ansible_collections.clientvpn.pki.plugins.module_utils.errors import PkiError
from ansible_collections.clientvpn.pki.plugins.module_utils.easyrsa_layout import INIT_DIRS
from ansible_collections.clientvpn.pki.plugins.module_utils.pki_store import PkiStore


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


# -- PkiStore basics -------------------------------------------------------------------
def test_pki_dir_that_is_a_file(tmp_path):
    path = tmp_path / "pki"
    path.write_text("not a directory")
    with pytest.raises(PkiError) as caught:
        PkiStore(str(path))
    assert "pki_dir %s" % path in str(caught.value)
    assert "not a directory" in str(caught.value)


def test_missing_pki_dir_is_accepted_and_not_created(tmp_path):
    store = PkiStore(str(tmp_path / "pki"))
    assert not os.path.exists(store.root)


def test_paths_follow_easyrsa_layout(tmp_path):
    root = str(tmp_path / "pki")
    store = PkiStore(root)
    assert store.ca_cert == os.path.join(root, "ca.crt")
    assert store.ca_key == os.path.join(root, "private", "ca.key")
    assert store.index == os.path.join(root, "index.txt")
    assert store.serial == os.path.join(root, "serial")
    assert store.cert("c1") == os.path.join(root, "issued", "c1.crt")
    assert store.key("c1") == os.path.join(root, "private", "c1.key")
    assert store.req("c1") == os.path.join(root, "reqs", "c1.req")
    assert store.by_serial("0A") == os.path.join(root, "certs_by_serial", "0A.pem")
    assert store.renewed_by_serial("0A") == os.path.join(root, "renewed", "certs_by_serial", "0A.crt")
    assert store.renewed_cert("c1") == os.path.join(root, "renewed", "issued", "c1.crt")


# -- layout -----------------------------------------------------------------------------
@pytest.fixture(params=["without-easyrsa-config", "with-easyrsa-config"])
def config_source(request, tmp_path, monkeypatch):
    """Run the layout tests with and without an installed openssl-easyrsa.cnf."""
    if request.param == "without-easyrsa-config":
        monkeypatch.setattr(pki_store, "EASYRSA_DATA_DIRS", (str(tmp_path / "no-easyrsa"),))
        return None
    data_dir = tmp_path / "easy-rsa"
    data_dir.mkdir()
    (data_dir / "openssl-easyrsa.cnf").write_bytes(b"# easy-rsa config\n")
    monkeypatch.setattr(pki_store, "EASYRSA_DATA_DIRS", (str(tmp_path / "no-easyrsa"), str(data_dir)))
    return str(data_dir / "openssl-easyrsa.cnf")


def test_ensure_layout(tmp_path, config_source):
    root = str(tmp_path / "pki")
    store = PkiStore(root)
    before = store.layout_changes()
    assert "create directory %s" % root in before
    assert "create %s" % store.index in before
    assert any("openssl-easyrsa.cnf" in change for change in before) == (config_source is not None)
    assert not os.path.exists(root), "layout_changes() must not touch the disk"

    store.ensure_layout()

    for directory in ("",) + INIT_DIRS["3.1"]:
        path = os.path.join(root, directory)
        assert os.path.isdir(path), directory
        assert mode(path) == 0o700, directory
    assert open(store.index, "rb").read() == b""
    assert open(os.path.join(root, "index.txt.attr"), "rb").read() == b"unique_subject = no\n"
    assert open(store.serial, "rb").read() == b"01\n"
    for path in (store.index, os.path.join(root, "index.txt.attr"), store.serial):
        assert mode(path) == 0o600
    config_copy = os.path.join(root, "openssl-easyrsa.cnf")
    if config_source:
        assert open(config_copy, "rb").read() == b"# easy-rsa config\n"
    else:
        assert not os.path.exists(config_copy)
    assert store.layout_changes() == []


def test_layout_changes_with_the_real_easyrsa_install(tmp_path):
    """Whatever is installed on this machine, ensure_layout() leaves nothing to do."""
    store = PkiStore(str(tmp_path / "pki"))
    store.ensure_layout()
    assert store.layout_changes() == []


def test_ensure_layout_fixes_modes_and_keeps_existing_files(tmp_path, config_source):
    store = PkiStore(str(tmp_path / "pki"))
    store.ensure_layout()
    os.chmod(store.path("issued"), 0o755)
    with open(store.serial, "wb") as handle:
        handle.write(b"ABCD\n")
    assert store.layout_changes() == ["set mode 0700 on %s" % store.path("issued")]
    store.ensure_layout()
    assert mode(store.path("issued")) == 0o700
    assert open(store.serial, "rb").read() == b"ABCD\n"
    assert store.layout_changes() == []


# -- writes --------------------------------------------------------------------------------
def _files(directory):
    return sorted(os.listdir(directory))


def test_write_is_0600_and_leaves_no_temp_file(tmp_path):
    store = PkiStore(str(tmp_path))
    path = str(tmp_path / "file.txt")
    old_umask = os.umask(0o022)
    try:
        store.write(path, b"hello")
    finally:
        os.umask(old_umask)
    assert open(path, "rb").read() == b"hello"
    assert mode(path) == 0o600
    assert _files(str(tmp_path)) == ["file.txt"]


@pytest.mark.parametrize("umask", [0o000, 0o022, 0o077])
def test_key_is_0600_from_its_first_byte(tmp_path, monkeypatch, umask):
    """The temp file already has its final mode when the first byte is written."""
    store = PkiStore(str(tmp_path))
    seen = []
    real_fdopen = os.fdopen

    def watching_fdopen(fd, *args, **kwargs):
        handle = real_fdopen(fd, *args, **kwargs)
        real_write = handle.write

        def write(data):
            seen.append(stat.S_IMODE(os.fstat(fd).st_mode))
            return real_write(data)

        handle.write = write
        return handle

    monkeypatch.setattr(os, "fdopen", watching_fdopen)
    old_umask = os.umask(umask)
    try:
        store.write(str(tmp_path / "a.key"), b"secret", 0o600)
        store.write(str(tmp_path / "a.crt"), b"public", 0o644)
    finally:
        os.umask(old_umask)
    assert seen == [0o600, 0o644]
    assert mode(str(tmp_path / "a.key")) == 0o600 and mode(str(tmp_path / "a.crt")) == 0o644


def test_relative_path_is_refused():
    for relative in ("pki", "./pki", "../pki", ""):
        with pytest.raises(PkiError, match="not an absolute path"):
            PkiStore(relative)


def test_backup_of_a_loose_key_is_0600(tmp_path):
    store = PkiStore(str(tmp_path))
    path = str(tmp_path / "old.key")
    with open(path, "wb") as handle:
        handle.write(b"old key")
    os.chmod(path, 0o644)
    backup = store.backup(path)
    assert mode(backup) == 0o600 and open(backup, "rb").read() == b"old key"


def test_write_with_mode_and_overwrite(tmp_path):
    store = PkiStore(str(tmp_path))
    path = str(tmp_path / "file.txt")
    store.write(path, b"one", 0o644)
    assert mode(path) == 0o644
    store.write(path, b"two", 0o640)
    assert open(path, "rb").read() == b"two"
    assert mode(path) == 0o640
    assert _files(str(tmp_path)) == ["file.txt"]


def test_write_failure_keeps_old_file_and_no_temp_file(tmp_path, monkeypatch):
    store = PkiStore(str(tmp_path))
    path = str(tmp_path / "file.txt")
    store.write(path, b"old")

    def broken_replace(src, dest):
        assert os.path.exists(src)
        raise OSError("disk on fire")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk on fire"):
        store.write(path, b"new")
    assert open(path, "rb").read() == b"old"
    assert mode(path) == 0o600
    assert _files(str(tmp_path)) == ["file.txt"]


def test_put_writes_only_what_differs(tmp_path):
    store = PkiStore(str(tmp_path))
    path = str(tmp_path / "file.txt")
    assert store.put(path, b"a", 0o600, check_mode=True) == "written"
    assert not os.path.exists(path)
    assert store.put(path, b"a", 0o600, check_mode=False) == "written"
    inode = os.stat(path).st_ino
    assert store.put(path, b"a", 0o600, check_mode=False) == "unchanged"
    assert os.stat(path).st_ino == inode
    os.chmod(path, 0o644)
    assert store.put(path, b"a", 0o600, check_mode=True) == "chmod"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o644
    assert store.put(path, b"a", 0o600, check_mode=False) == "chmod"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert store.put(path, b"b", 0o600, check_mode=False) == "written"
    assert open(path, "rb").read() == b"b"


def test_backup_and_move(tmp_path):
    store = PkiStore(str(tmp_path))
    path = str(tmp_path / "file.txt")
    store.write(path, b"content")
    backup = store.backup(path)
    assert backup != path and open(backup, "rb").read() == b"content"
    destination = store.renewed_by_serial("0A")
    store.move(path, destination)
    assert not os.path.exists(path)
    assert open(destination, "rb").read() == b"content"


def test_move_creates_every_missing_directory_0700(tmp_path):
    """renewed/ and renewed/certs_by_serial/ are both new here: both must be 0700, whatever the umask."""
    store = PkiStore(str(tmp_path / "pki"))
    store.ensure_layout()
    store.write(store.cert("c1"), b"cert")
    old_umask = os.umask(0o022)
    try:
        store.move(store.cert("c1"), store.renewed_by_serial("0A"))
    finally:
        os.umask(old_umask)
    assert mode(store.path("renewed", "certs_by_serial")) == 0o700
    assert mode(store.path("renewed")) == 0o700


# -- database ---------------------------------------------------------------------------------
ROW1 = IndexEntry("V", "290226200630Z", "", "F7D1FB8D1FD51DFBFEE8D31C98795DF1", "unknown", "/CN=server")
ROW2 = IndexEntry("R", "290226200630Z", "261124201245Z", "B343ED2FA0E9C8936FC40788EC805469", "unknown", "/CN=c2")


def test_write_index_keeps_index_txt_old(tmp_path):
    store = PkiStore(str(tmp_path / "pki"))
    store.ensure_layout()
    store.write_index([ROW1])
    assert open(store.path("index.txt.old"), "rb").read() == b""
    first = open(store.index, "rb").read()
    assert first == (ROW1.to_line() + "\n").encode()
    store.write_index([ROW1, ROW2])
    assert open(store.path("index.txt.old"), "rb").read() == first
    assert [e.serial for e in store.read_index()] == [ROW1.serial, ROW2.serial]
    assert mode(store.index) == 0o600


def test_read_index_missing_and_not_text(tmp_path):
    store = PkiStore(str(tmp_path / "pki"))
    assert store.read_index() == []
    store.ensure_layout()
    with open(store.index, "wb") as handle:
        handle.write(b"\xff\xfe\x00garbage")
    with pytest.raises(PkiError) as caught:
        store.read_index()
    assert store.index in str(caught.value)


def test_read_index_names_file_and_line(tmp_path):
    store = PkiStore(str(tmp_path / "pki"))
    store.ensure_layout()
    with open(store.index, "w") as handle:
        handle.write(ROW1.to_line() + "\nbroken row\n")
    with pytest.raises(PkiError) as caught:
        store.read_index()
    assert "%s line 2 " % store.index in str(caught.value)


def test_write_next_serial_is_last_plus_one(tmp_path):
    store = PkiStore(str(tmp_path / "pki"))
    store.ensure_layout()
    store.write_next_serial(0xF7D1FB8D1FD51DFBFEE8D31C98795DF1)
    assert open(store.serial, "rb").read() == b"F7D1FB8D1FD51DFBFEE8D31C98795DF2\n"
    assert open(store.path("serial.old"), "rb").read() == b"01\n"
    store.write_next_serial(0xFF)
    assert open(store.serial, "rb").read() == b"0100\n"
    store.write_next_serial(0x0E)
    assert open(store.serial, "rb").read() == b"0F\n"


# -- lock -------------------------------------------------------------------------------------
def _hold_lock(root, exclusive, held, release):
    store = PkiStore(root)
    with store.locked(exclusive=exclusive):
        held.set()
        release.wait(20)


@pytest.fixture
def lock_holder(tmp_path):
    """Start another process holding the PKI lock; returns (root, release event)."""
    root = str(tmp_path / "pki")
    os.mkdir(root)
    context = multiprocessing.get_context("fork")
    started = []

    def start(exclusive=True):
        held, release = context.Event(), context.Event()
        process = context.Process(target=_hold_lock, args=(root, exclusive, held, release))
        process.start()
        started.append((process, release))
        assert held.wait(20), "the other process never took the lock"
        return release

    yield root, start
    for process, release in started:
        release.set()
        process.join(20)


def _contend(root, exclusive):
    """Try to take the lock in a thread; returns the Event set once it is held."""
    acquired, done = threading.Event(), threading.Event()

    def run():
        try:
            with PkiStore(root).locked(exclusive=exclusive):
                acquired.set()
        finally:
            done.set()

    thread = threading.Thread(target=run)
    thread.daemon = True
    thread.start()
    return acquired, done


def test_lock_is_exclusive_between_processes(lock_holder):
    root, start = lock_holder
    release = start(exclusive=True)
    acquired, done = _contend(root, exclusive=True)
    assert not acquired.wait(0.6), "took the lock while another process held it"
    release.set()
    assert acquired.wait(10), "never took the lock after the other process released it"
    assert done.wait(10)


def test_exclusive_lock_blocks_shared(lock_holder):
    root, start = lock_holder
    release = start(exclusive=True)
    acquired, done = _contend(root, exclusive=False)
    assert not acquired.wait(0.6)
    release.set()
    assert acquired.wait(10)
    assert done.wait(10)


def test_shared_locks_coexist(lock_holder):
    root, start = lock_holder
    start(exclusive=False)
    acquired, done = _contend(root, exclusive=False)
    assert acquired.wait(10), "two check-mode runs must not wait for each other"
    assert done.wait(10)


def test_lock_timeout_raises(lock_holder, monkeypatch):
    root, start = lock_holder
    start(exclusive=True)
    monkeypatch.setattr(safe_folder, "LOCK_TIMEOUT_SECONDS", 0.3)
    with pytest.raises(PkiError) as caught:
        with PkiStore(root).locked():
            pytest.fail("the lock was taken while another process held it")
    assert "could not lock %s" % root in str(caught.value)


def test_lock_on_missing_dir_does_not_create_it(tmp_path):
    root = str(tmp_path / "pki")
    with PkiStore(root).locked():
        pass
    assert not os.path.exists(root)
    assert _files(str(tmp_path)) == []
