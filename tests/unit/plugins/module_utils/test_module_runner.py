# -*- coding: utf-8 -*-
# Copyright: clientvpn.pki contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""run_module: the cryptography version check and a refused file as one message.

Real AnsibleModule instances (their arguments set as AnsiballZ would), real
files; only cryptography's reported version is faked.
"""

from __future__ import annotations

import contextlib
import json
import os

import pytest

from ansible.module_utils import basic
from ansible_collections.clientvpn.pki.plugins.module_utils import module_runner
from ansible_collections.clientvpn.pki.plugins.module_utils.module_runner import (
    MIN_CRYPTOGRAPHY_VERSION,
    cryptography_version_problem,
    ModuleSpec,
    describe_os_error,
    run_module,
)


@pytest.fixture
def module_args(monkeypatch):
    """Set the arguments the next AnsibleModule reads, as AnsiballZ would (ansible-core 2.19 has a helper for it)."""
    with contextlib.ExitStack() as stack:
        def set_args(args):
            try:
                from ansible.module_utils.testing import patch_module_args  # pylint: disable=import-outside-toplevel
            except ImportError:  # ansible-core < 2.19 reads _ANSIBLE_ARGS
                monkeypatch.setattr(basic, "_ANSIBLE_ARGS", json.dumps({"ANSIBLE_MODULE_ARGS": args}).encode())
                return
            stack.enter_context(patch_module_args(args))
        yield set_args


def run_as_module(module_args, capsys, make_backend):
    """run_module of a spec without options, in a real AnsibleModule; returns its JSON result."""
    module_args({})
    with pytest.raises(SystemExit):
        run_module(ModuleSpec("test", {}, lambda params, check_mode: make_backend()))
    return json.loads(capsys.readouterr().out)


class ReadsAFile(object):
    """A backend whose run reads a file, as every backend does."""

    def __init__(self, path):
        self.path = path

    def run(self, check_mode):
        with open(self.path, "rb") as handle:
            return {"changed": False, "size": len(handle.read())}


def test_minimum_is_42():
    assert MIN_CRYPTOGRAPHY_VERSION == "42.0"


@pytest.mark.parametrize("version", ["41.0.7", "41", "38.0.4", "3.4.8"])
def test_older_cryptography_is_refused(monkeypatch, version):
    monkeypatch.setattr(module_runner.cryptography, "__version__", version)
    message = cryptography_version_problem()
    assert message.startswith("cryptography >= 42.0 required, found %s. " % version)
    assert "pip install 'cryptography>=42.0'" in message and "ansible_python_interpreter" in message


@pytest.mark.parametrize("version", ["42.0.0", "42.0", "43.0.3", "50.0.2", "100.0", "", "unknown"])
def test_cryptography_42_or_later_is_accepted(monkeypatch, version):
    # also a version that cannot be read: refusing it could block a working library
    monkeypatch.setattr(module_runner.cryptography, "__version__", version)
    assert cryptography_version_problem() is None


def test_version_is_checked_before_the_backend_is_made(monkeypatch, module_args, capsys):
    monkeypatch.setattr(module_runner.cryptography, "__version__", "41.0.7")
    made = []
    result = run_as_module(module_args, capsys, lambda: made.append("backend") or ReadsAFile(__file__))
    assert result["failed"] and result["msg"].startswith("cryptography >= 42.0 required, found 41.0.7. ")
    assert made == []


def test_missing_file_is_one_message_naming_it(module_args, capsys, tmp_path):
    missing = str(tmp_path / "nowhere" / "ca.crt")
    result = run_as_module(module_args, capsys, lambda: ReadsAFile(missing))
    assert result["failed"]
    assert result["msg"].startswith("%s: No such file or directory. Check that this path exists" % missing)
    assert "uid %d" % os.geteuid() in result["msg"]


def test_directory_where_a_file_is_expected(module_args, capsys, tmp_path):
    result = run_as_module(module_args, capsys, lambda: ReadsAFile(str(tmp_path)))
    assert result["msg"].startswith("%s: Is a directory. " % tmp_path) and "file or directory" in result["msg"]


def test_both_paths_of_a_failed_rename_are_named(tmp_path):
    source, target = str(tmp_path / "gone"), str(tmp_path / "new")
    with pytest.raises(OSError) as caught:
        os.rename(source, target)
    message = describe_os_error(caught.value)
    assert message.startswith("%s -> %s: No such file or directory. Check that each path exists" % (source, target))


def test_backend_that_works_still_exits_normally(module_args, capsys):
    result = run_as_module(module_args, capsys, lambda: ReadsAFile(__file__))
    assert not result.get("failed") and result["size"] == os.path.getsize(__file__)


def test_the_floor_checked_at_start_is_the_one_requirements_txt_declares():
    """requirements.txt (what pip installs on the managed host) and the start-up check say the same."""
    path = os.path.join(os.path.dirname(__file__), "..", "..", "..", "..", "requirements.txt")
    with open(path, encoding="ascii") as handle:
        floors = [line.split("#", 1)[0].strip() for line in handle]
    assert "cryptography>=%s" % MIN_CRYPTOGRAPHY_VERSION in floors
