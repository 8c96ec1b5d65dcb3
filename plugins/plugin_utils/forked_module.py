# -*- coding: utf-8 -*-
# Copyright: clientvpn.pki contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The action behind every clientvpn.pki module: where the module would run on this
very machine, as this very user, with this very Python, it runs in a process forked
from Ansible's worker instead of a new interpreter unpacking an AnsiballZ payload.

An AnsiballZ run costs about 0.5 s before the module does anything (building the
payload once per playbook and module, then compiling ansible.module_utils.basic and
every module_utils file from a zip on each run, without a bytecode cache). The forked
process runs the same module ``main()`` with the same arguments (``_ansible_*`` ones
included), the same ``AnsibleModule`` and the same JSON on stdout, in its own
process: the module's exit, its descriptors and its key-generation pool stay its own.

Anything else goes the usual way (``_execute_module``): another connection (a remote
PKI host), become, async, a task ``environment``, another ``ansible_python_interpreter``
(the module must see the packages of the Python the user chose).
"""

from __future__ import annotations

import ctypes
import importlib
import io
import json
import os
import selectors
import signal
import sys
import traceback

from ansible.module_utils import basic
from ansible.plugins.action import ActionBase
from ansible.utils.display import Display
from ansible.utils.vars import merge_hash
from ansible.vars.clean import remove_internal_keys

try:  # ansible-core 2.19+: arguments travel through a serialization profile
    from ansible.module_utils.common.json import Direction, get_module_encoder

    ARGS_ENCODER = get_module_encoder("legacy", Direction.CONTROLLER_TO_MODULE)
    PROFILE = "legacy"
except ImportError:  # ansible-core 2.17, 2.18
    from ansible.module_utils.common.json import AnsibleJSONEncoder as ARGS_ENCODER

    PROFILE = None

LOCAL_CONNECTIONS = ("local", "ansible.builtin.local", "ansible.legacy.local")
PR_SET_NAME = 15
display = Display()


def module_path_of(action_class):
    """``ansible_collections.clientvpn.pki.plugins.modules.<name>``, the module an action class is named after."""
    package, name = action_class.__module__.rsplit(".", 1)
    return package.rsplit(".", 1)[0] + ".modules." + name


class ForkedModuleAction(ActionBase):
    """Runs the module of the same name, forked from the worker when that changes nothing but the time."""

    _supports_check_mode = True
    _supports_async = True

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        # ansible-playbook's main process loads each action class once (the strategy looks at it
        # before it forks a worker): the module, cryptography and the module_utils imported here
        # then come with every worker and every module forked from one, instead of ~0.1 s each.
        try:
            importlib.import_module(module_path_of(cls))
        except ImportError:
            pass  # the forked module reports it, or the AnsiballZ way does

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        del tmp  # tmp no longer has any effect
        task_vars = task_vars or {}
        wrap_async = self._task.async_val and not self._connection.has_native_async
        if self._runs_like_a_fork(task_vars):
            return merge_hash(result, self._run_forked(task_vars))
        result = merge_hash(result, self._execute_module(task_vars=task_vars, wrap_async=wrap_async))
        if not wrap_async:
            self._remove_tmp_path(self._connection._shell.tmpdir)
        return result

    def _runs_like_a_fork(self, task_vars):
        """True when the module would run here anyway: local connection, no become, no async,
        no task environment, and this worker's own Python as the module's interpreter."""
        if self._connection.transport not in LOCAL_CONNECTIONS or self._play_context.become:
            return False
        if self._task.async_val or any(self._task.environment or ()):  # [{}] when the task sets none
            return False
        interpreter = task_vars.get("ansible_python_interpreter")
        if interpreter is None:  # found by an earlier task's interpreter discovery, if any
            interpreter = task_vars.get("ansible_facts", {}).get("discovered_interpreter_python")
        interpreter = self._templar.template(interpreter) if isinstance(interpreter, str) else None
        if not isinstance(interpreter, str) or not os.path.isabs(interpreter):
            return False
        # The same path, not the same file: a venv's python is a symlink to the system's, with other packages.
        return os.path.normpath(interpreter) == os.path.normpath(sys.executable)

    def _run_forked(self, task_vars):
        module_args = dict(self._task.args)
        self._update_module_args(self._task.action, module_args, task_vars)
        payload = json.dumps({"ANSIBLE_MODULE_ARGS": module_args}, cls=ARGS_ENCODER).encode("utf-8")
        display.vvv("Running module %s forked from the worker (this host, user and Python: %s)" % (module_path_of(type(self)), sys.executable))
        rc, stdout, stderr = run_in_child(module_path_of(type(self)), payload)
        response = dict(rc=rc, stdout=stdout, stderr=stderr)
        data = self._parse_returned_data(response, PROFILE) if PROFILE else self._parse_returned_data(response)
        remove_internal_keys(data)
        return data


def run_in_child(module_path, payload):
    """Fork; the child runs ``module_path``'s main() on ``payload`` (what AnsiballZ would
    feed it) with stdout and stderr on pipes. Returns (exit status, stdout, stderr)."""
    out_read, out_write = os.pipe()
    err_read, err_write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through its pipes only
        os.close(out_read)
        os.close(err_read)
        _child(module_path, payload, out_write, err_write)
    os.close(out_write)
    os.close(err_write)
    stdout, stderr = _read_both(out_read, err_read)
    status = os.waitpid(pid, 0)[1]
    rc = os.waitstatus_to_exitcode(status)
    return rc, stdout.decode("utf-8", "replace"), stderr.decode("utf-8", "replace")


def _read_both(out_read, err_read):
    """Both pipes to their end, read as they fill: a large result must not block the child on a full stderr."""
    chunks = {out_read: [], err_read: []}
    with selectors.DefaultSelector() as selector:
        for descriptor in chunks:
            selector.register(descriptor, selectors.EVENT_READ)
        while selector.get_map():
            for key, dummy in selector.select():
                data = os.read(key.fd, 1 << 16)
                if data:
                    chunks[key.fd].append(data)
                else:
                    selector.unregister(key.fd)
                    os.close(key.fd)
    return b"".join(chunks[out_read]), b"".join(chunks[err_read])


def _child(module_path, payload, out_write, err_write):  # pragma: no cover - runs in the forked child
    """The module's process: its stdio, default signals, its name in ps; never returns."""
    code = 1
    try:
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(out_write, 1)
        os.dup2(err_write, 2)
        for descriptor in (null, out_write, err_write):
            os.close(descriptor)
        sys.stdout = io.TextIOWrapper(io.FileIO(1, "w", closefd=False), encoding="utf-8", errors="surrogateescape")
        sys.stderr = io.TextIOWrapper(io.FileIO(2, "w", closefd=False), encoding="utf-8", errors="backslashreplace")
        _name_process(module_path.rsplit(".", 1)[1])
        basic._ANSIBLE_ARGS = payload  # pylint: disable=protected-access
        if PROFILE:
            basic._ANSIBLE_PROFILE = PROFILE  # pylint: disable=protected-access
        _as_a_module()
        importlib.import_module(module_path).main()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:  # pylint: disable=broad-except
        traceback.print_exc()
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        # Never back into the worker's code (its atexit handlers, its queue threads).
        os._exit(code)  # pylint: disable=protected-access


def _as_a_module():
    """Make the child a module process, not a controller one, for ansible.module_utils (2.19+): on the
    controller, module.warn() and deprecate() print through the worker's Display, and a forked child's
    messages to it are lost; in a module they go back with the result, as they do from AnsiballZ."""
    try:
        from ansible.module_utils import _internal  # pylint: disable=import-outside-toplevel
    except ImportError:  # ansible-core 2.17, 2.18: module_utils never asks
        return
    _internal.is_controller = False


def _name_process(name):
    """The module's name as the process name (``ps -o comm``, /proc/PID/comm), as AnsiballZ_<name> shows in cmdline."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)  # this process's own symbols: libc's prctl
        libc.prctl(PR_SET_NAME, name.encode("ascii")[:15], 0, 0, 0)
    except (OSError, AttributeError, UnicodeError):
        pass
