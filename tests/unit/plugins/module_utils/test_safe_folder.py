# -*- coding: utf-8 -*-
# Copyright: clientvpn.pki contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Files written side by side: ParallelWriter keeps each group's order and reports the first error,
in_parallel keeps the items' order, and ensure_dir takes a folder another thread made in between.

Durable names: a rename is on disk only once its directory is fsync-ed. Every record that names files
(index.txt, the staging manifest, the S3 working copy's state) is written after the directories those
files were renamed into (or removed from) are fsync-ed, once each per batch, not once per file; and a
run leaves no directory un-synced (os.fsync and os.replace are watched, the fsync's target read back
from /proc/self/fd)."""

from __future__ import annotations

import os
import stat
import threading

import pytest

from ansible_collections.clientvpn.pki.plugins.module_utils import safe_folder
from ansible_collections.clientvpn.pki.plugins.module_utils.cert_revoker import CertificateRevoker
from ansible_collections.clientvpn.pki.plugins.module_utils.errors import PkiError
from ansible_collections.clientvpn.pki.plugins.module_utils.s3_sync import STATE_FILE, new_state, save_state, write_entries
from ansible_collections.clientvpn.pki.plugins.module_utils.safe_folder import ParallelWriter, SafeFolder, in_parallel
from ansible_collections.clientvpn.pki.plugins.module_utils.staging import MANIFEST, StagingFolder


class RecordingFolder(SafeFolder):
    """A SafeFolder that records the order of its writes."""

    def __init__(self, root):
        super(RecordingFolder, self).__init__(root)
        self.order, self.lock = [], threading.Lock()

    def write(self, path, data, mode=safe_folder.FILE_MODE):
        super(RecordingFolder, self).write(path, data, mode)
        with self.lock:
            self.order.append(os.path.basename(path))


def test_each_group_is_written_in_its_order_and_every_file_is_there_after_wait(tmp_path):
    folder = RecordingFolder(str(tmp_path))
    writer = ParallelWriter(folder)
    for index in range(50):
        files = [(str(tmp_path / ("%d.%s" % (index, kind))), kind.encode(), mode) for kind, mode in (("key", 0o600), ("req", 0o600), ("crt", 0o644))]
        writer.submit(files, then=lambda index=index: [(str(tmp_path / "inline" / ("%d.inline" % index)), (tmp_path / ("%d.crt" % index)).read_bytes(), 0o600)])
    writer.wait()
    for index in range(50):
        positions = [folder.order.index("%d.%s" % (index, kind)) for kind in ("key", "req", "crt", "inline")]
        assert positions == sorted(positions)
        assert (tmp_path / "inline" / ("%d.inline" % index)).read_bytes() == b"crt"  # made from the certificate on disk
        assert stat.S_IMODE(os.stat(tmp_path / ("%d.key" % index)).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(tmp_path / "inline").st_mode) == 0o700


def test_wait_raises_the_first_error_and_the_files_before_it_are_written(tmp_path):
    (tmp_path / "a-file").write_text("x")
    writer = ParallelWriter(SafeFolder(str(tmp_path)))
    writer.submit([(str(tmp_path / "first.key"), b"k", 0o600), (str(tmp_path / "a-file" / "x.crt"), b"c", 0o600)])
    with pytest.raises((PkiError, OSError)):
        writer.wait()
    assert (tmp_path / "first.key").read_bytes() == b"k" and writer.pool is None


@pytest.mark.parametrize("count", [0, 1, 7, 100])
def test_in_parallel_keeps_the_order_of_the_items(count):
    assert in_parallel(lambda item: item * 2, range(count)) == [item * 2 for item in range(count)]


def test_ensure_dir_takes_a_folder_made_in_between(tmp_path, monkeypatch):
    made = tmp_path / "inline" / "private"
    real_mkdir = os.mkdir

    def racing_mkdir(path, mode=0o777):
        real_mkdir(path, mode)  # another thread was first
        raise FileExistsError(path)

    monkeypatch.setattr(safe_folder.os, "mkdir", racing_mkdir)
    SafeFolder(str(tmp_path)).ensure_dir(str(made))
    assert made.is_dir() and stat.S_IMODE(os.stat(made).st_mode) == 0o700


# -- durable names -----------------------------------------------------------------------------------


class DiskEvents(object):
    """What reached the disk, in order: ("rename", destination) after ("rename-from", source), ("unlink", path),
    ("fsync", what the descriptor is open on); paths resolved, so that a directory's fsync compares with its
    files' parent."""

    def __init__(self):
        self.events, self.lock = [], threading.Lock()

    def add(self, kind, path):
        with self.lock:
            self.events.append((kind, os.path.realpath(path)))

    def index(self, kind, path):
        """Where the last ``kind`` event on ``path`` happened."""
        path = os.path.realpath(path)
        found = [number for number, event in enumerate(self.events) if event == (kind, path)]
        assert found, "no %s of %s in %s" % (kind, path, self.events)
        return found[-1]

    def record_at(self, path):
        """Where the write of the record ``path`` began: its temp file's rename-from, just before its rename."""
        at = self.index("rename", path) - 1
        assert self.events[at][0] == "rename-from"
        return at

    def changed_dirs(self, before=None):
        """{directory: position of its last rename or unlink} (before position ``before``)."""
        last = {}
        for number, (kind, path) in enumerate(self.events[:before]):
            if kind in ("rename-from", "rename", "unlink"):
                last[os.path.dirname(path)] = number
        return last

    def dir_fsyncs(self, directory, start=0, end=None):
        """Positions of the fsyncs of ``directory`` in [start, end)."""
        end = len(self.events) if end is None else end
        return [number for number, event in enumerate(self.events) if event == ("fsync", directory) and start <= number < end]

    def assert_synced(self, directories_changed_at, before):
        """Each directory fsync-ed after its last change and before position ``before``, exactly once."""
        for directory, changed_at in directories_changed_at.items():
            assert len(self.dir_fsyncs(directory, changed_at, before)) == 1, (directory, self.events)
            assert len(self.dir_fsyncs(directory, 0, before)) == 1, "%s fsync-ed more than once per batch" % directory


@pytest.fixture
def disk(monkeypatch):
    events = DiskEvents()
    real_fsync, real_replace, real_unlink = os.fsync, os.replace, os.unlink

    def fsync(fd):
        events.add("fsync", os.readlink("/proc/self/fd/%d" % fd))
        real_fsync(fd)

    def replace(source, destination, **kwargs):
        real_replace(source, destination, **kwargs)
        events.add("rename-from", source)
        events.add("rename", destination)

    def unlink(path, **kwargs):
        real_unlink(path, **kwargs)
        if not os.path.basename(path).startswith(safe_folder.TEMP_PREFIX):
            events.add("unlink", path)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    monkeypatch.setattr(os, "unlink", unlink)
    return events


def test_sync_dirs_fsyncs_each_changed_directory_once(tmp_path, disk):
    folder = SafeFolder(str(tmp_path / "root"))
    for name in ("a/1", "a/2", "a/3", "b/1", "b/2"):
        folder.ensure_dir(os.path.dirname(folder.path(name)))
        folder.write(folder.path(name), b"x")
    folder.unlink(folder.path("b/2"))
    assert disk.dir_fsyncs(folder.path("a")) == []  # a rename alone syncs no directory
    synced = folder.sync_dirs()
    # a/ and b/ for their files, root/ for the new a/ and b/, tmp_path for the new root/
    assert synced == sorted([folder.path("a"), folder.path("b"), folder.root, str(tmp_path)])
    disk.assert_synced(disk.changed_dirs(), len(disk.events))
    assert folder.sync_dirs() == []  # nothing changed since


def test_a_folder_removed_since_its_change_is_skipped(tmp_path, disk):
    folder = SafeFolder(str(tmp_path))
    folder.ensure_dir(folder.path("gone"))
    folder.write(folder.path("gone", "f"), b"x")
    folder.unlink(folder.path("gone", "f"))
    folder.rmdir(folder.path("gone"))
    assert folder.sync_dirs() == [str(tmp_path), folder.path("gone")]
    assert disk.dir_fsyncs(str(tmp_path)) and not disk.dir_fsyncs(folder.path("gone"))


def test_index_txt_is_written_once_the_directories_of_the_files_it_names_are_fsynced(pki, helpers, disk):
    names = ["alice.example.com", "bob.example.com", "carol.example.com"]
    helpers.issue(pki, names)
    index_written = disk.index("rename", pki.index)
    # The record's own batch starts with index.txt.old, a copy of the rows before.
    record_batch = disk.record_at(pki.path("index.txt.old"))  # the rows before, kept: the record's first write
    changed = disk.changed_dirs(before=record_batch)
    for folder in ("private", "reqs", "issued", "certs_by_serial"):
        assert os.path.realpath(pki.path(folder)) in changed, folder
    # Each once: after the last of its files, before the rows that name them (12 files, 4 directories).
    disk.assert_synced(changed, record_batch)
    assert index_written > record_batch
    # index.txt itself (and serial) durable before the run lets go of the PKI.
    disk.assert_synced(disk.changed_dirs(), len(disk.events))
    assert all(pki.read_index()[-3:])


def test_the_files_a_revocation_moves_are_durable_when_it_returns(pki, helpers, disk):
    helpers.issue(pki, ["alice.example.com", "bob.example.com"])
    start = len(disk.events)
    CertificateRevoker(pki, ["alice.example.com"]).run(False)
    changed = dict((directory, at) for directory, at in disk.changed_dirs().items() if at >= start)
    assert os.path.realpath(pki.path("revoked", "private_by_serial")) in changed
    assert os.path.realpath(pki.path("private")) in changed  # the key left it
    for directory, at in changed.items():
        assert disk.dir_fsyncs(directory, at), directory


def test_the_staging_manifest_is_written_once_its_folder_is_fsynced(tmp_path, disk):
    sources = tmp_path / "pki"
    sources.mkdir()
    for name in ("ca.crt", "alice.crt", "alice.key"):
        (sources / name).write_bytes(name.encode())
    dest = str(tmp_path / "custom_folder")
    StagingFolder(dest, [str(sources / "ca.crt"), str(sources / "alice.crt")], [str(sources / "alice.key")]).run(False)
    manifest_written = disk.record_at(os.path.join(dest, MANIFEST))
    changed = disk.changed_dirs(before=manifest_written)
    assert os.path.realpath(dest) in changed
    disk.assert_synced(changed, manifest_written)

    # A removal too: the manifest stops naming alice.key only once its removal is on disk.
    start = len(disk.events)
    StagingFolder(dest, [str(sources / "ca.crt"), str(sources / "alice.crt")], [], remove=["alice.key"]).run(False)
    removed, manifest_written = disk.index("unlink", os.path.join(dest, "alice.key")), disk.record_at(os.path.join(dest, MANIFEST))
    assert start <= removed < manifest_written
    assert len(disk.dir_fsyncs(os.path.realpath(dest), removed, manifest_written)) == 1


def test_the_s3_working_copy_state_is_written_once_the_pulled_files_are_durable(tmp_path, disk):
    folder = SafeFolder(str(tmp_path / "work"), what="pki_dir")
    write_entries(folder, {"issued/": b"", "issued/a.crt": b"a", "private/a.key": b"k", "index.txt": b"rows"}, [])
    save_state(folder, new_state("bucket", "clientvpn/pki"))
    state_written = disk.record_at(folder.path(STATE_FILE))
    changed = disk.changed_dirs(before=state_written)
    assert set(changed) == set(os.path.realpath(folder.path(d)) for d in ("issued", "private", ""))
    disk.assert_synced(changed, state_written)
