# -*- coding: utf-8 -*-
# Copyright: clientvpn.pki contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Files written side by side: ParallelWriter keeps each group's order and reports the first error,
in_parallel keeps the items' order, and ensure_dir takes a folder another thread made in between."""

from __future__ import annotations

import os
import stat
import threading

import pytest

from ansible_collections.clientvpn.pki.plugins.module_utils import safe_folder
from ansible_collections.clientvpn.pki.plugins.module_utils.errors import PkiError
from ansible_collections.clientvpn.pki.plugins.module_utils.safe_folder import ParallelWriter, SafeFolder, in_parallel


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
