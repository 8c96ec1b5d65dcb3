# -*- coding: utf-8 -*-
# Copyright: clientvpn.pki contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The action behind every clientvpn.pki module.

Where the module would run on this very machine, as this very user, with this very
Python, the action runs the module's backend itself, in Ansible's worker process (one
process per task and host, as a module's own would be), instead of a new interpreter
unpacking an AnsiballZ payload (about 0.5 s before the module does anything). It checks
the arguments with the same ModuleSpec the module file uses, through ansible-core's
public ArgumentSpecValidator, and returns what the module would: the result, its
warnings and deprecations, ``invocation`` with the no_log values hidden, a failure
message, or an unexpected exception with its traceback.

Anything else goes the way ansible-core's own ``normal`` action goes (``_execute_module``):
another connection (a remote PKI host), become, async, delegate_to, a task
``environment``, another Python (the module must see the packages of the Python the user
chose). This file uses only what ansible-core's bundled action plugins use
(tests/unit/plugins/test_public_interfaces.py keeps it so); docs/architecture.md says why.
"""

from __future__ import annotations

import os
import sys
import traceback

from ansible import constants as C
from ansible.errors import AnsibleError
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.plugins.action import ActionBase
from ansible.utils.display import Display
from ansible.utils.vars import merge_hash

from ansible_collections.clientvpn.pki.plugins.module_utils.module_runner import ModuleFailure, run
from ansible_collections.clientvpn.pki.plugins.module_utils.version import COLLECTION_NAME

LOCAL_TRANSPORT = "local"
# What AnsibleModule shows in place of a no_log option's value, and of that value inside a message.
NO_LOG_OPTION = "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"
NO_LOG_TEXT = "********"
display = Display()


class BackendAction(ActionBase):
    """Runs ``spec``'s backend in the worker where that changes nothing but the time, else the module."""

    _supports_check_mode = True
    _supports_async = True
    spec = None  # the module's ModuleSpec (module_utils/specs/<module>.py)

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        del tmp  # tmp no longer has any effect
        task_vars = task_vars or {}
        if self._runs_here(task_vars):
            display.vvv("Running the %s module's backend in this worker (this host, user and Python: %s)" % (self.spec.name, sys.executable))
            answer = run_here(self.spec, self._task.args, self._task.check_mode, self._task.diff)
            if not self._injects_invocation(task_vars):
                answer.pop("invocation", None)  # none when the options were refused
            return merge_hash(result, answer)
        wrap_async = self._task.async_val
        result = merge_hash(result, self._execute_module(task_vars=task_vars, wrap_async=wrap_async))
        if not wrap_async:
            self._remove_tmp_path(self._connection._shell.tmpdir)
        return result

    def _injects_invocation(self, task_vars):
        """Whether a module's result carries ``invocation``: always before ansible-core 2.21, then
        as its INJECT_INVOCATION setting says (read as the bundled copy action reads it)."""
        try:
            return C.config.get_config_value("INJECT_INVOCATION", variables=task_vars)
        except AnsibleError:  # a setting this ansible-core does not have
            return True

    def _runs_here(self, task_vars):
        """True when the module would run in a process like this one anyway: local connection, no become,
        no async, no delegate_to, no task environment, and this worker's own Python as the module's."""
        if self._connection.transport != LOCAL_TRANSPORT or self._connection.become:
            return False
        if self._task.async_val or self._task.delegate_to or any(self._task.environment or ()):  # [{}] when the task sets none
            return False
        interpreter = task_vars.get("ansible_python_interpreter")
        if interpreter is None:  # found by an earlier task's interpreter discovery, if any
            interpreter = task_vars.get("ansible_facts", {}).get("discovered_interpreter_python")
        interpreter = self._templar.template(interpreter) if isinstance(interpreter, str) else None
        if not isinstance(interpreter, str) or not os.path.isabs(interpreter):
            return False
        # The same path, not the same file: a venv's python is a symlink to the system's, with other packages.
        return os.path.normpath(interpreter) == os.path.normpath(sys.executable)


def run_here(spec, args, check_mode, diff):
    """What the module would return for ``args``, computed in this process."""
    validation = ArgumentSpecValidator(spec.argument_spec, **spec.rules).validate(dict(args))
    if validation.error_messages:
        message = validation.error_messages[0]
        if validation.unsupported_parameters:  # AnsibleModule's words for an option it does not know
            message = "Unsupported parameters for (%s) module: %s" % (spec.name, message)
        return {"failed": True, "msg": message}
    params = validation.validated_parameters
    try:
        result = run(spec, params, check_mode, diff)
    except ModuleFailure as failure:
        result = dict(failure.result, failed=True)
    except Exception as exc:  # pylint: disable=broad-except
        # What AnsiballZ reports for an exception the module did not expect: its message and traceback.
        result = {"failed": True, "msg": "Module failed: %s" % exc, "exception": traceback.format_exc()}
    if not result.get("warnings"):
        result.pop("warnings", None)
    deprecations = deprecated_options(spec.argument_spec, args)
    if deprecations:
        result["deprecations"] = deprecations
    result["invocation"] = {"module_args": shown_arguments(spec.argument_spec, params)}
    return hide_values(result, secret_values(spec.argument_spec, params))


def deprecated_options(argument_spec, args):
    """AnsibleModule's deprecation for each option given that the spec says is going away."""
    return [
        {
            "msg": "Param '%s' is deprecated. See the module docs for more information" % name,
            "version": option["removed_in_version"],
            "collection_name": option.get("removed_from_collection", COLLECTION_NAME),
        }
        for name, option in argument_spec.items()
        if option.get("removed_in_version") and name in args
    ]


def _suboption_items(option, value):
    """The dicts a dict or list-of-dicts option holds, for its ``options``."""
    if not option.get("options") or value is None:
        return []
    return [item for item in (value if isinstance(value, list) else [value]) if isinstance(item, dict)]


def secret_values(argument_spec, params):
    """The values of the no_log options (suboptions included) given in ``params``, as text."""
    found = set()
    for name, option in argument_spec.items():
        value = params.get(name)
        if option.get("no_log") and value not in (None, ""):
            found.add(str(value))
        for item in _suboption_items(option, value):
            found |= secret_values(option["options"], item)
    return found


def shown_arguments(argument_spec, params):
    """``params`` as ``invocation`` shows them: each no_log option's value replaced."""
    shown = {}
    for name, value in params.items():
        option = argument_spec.get(name, {})
        if option.get("no_log") and value is not None:
            shown[name] = NO_LOG_OPTION
        elif _suboption_items(option, value):
            items = [shown_arguments(option["options"], item) for item in _suboption_items(option, value)]
            shown[name] = items if isinstance(value, list) else items[0]
        else:
            shown[name] = value
    return shown


def hide_values(value, secrets):
    """``value`` with every secret hidden wherever it appears in a string, as AnsibleModule does."""
    if not secrets:
        return value
    if isinstance(value, dict):
        return dict((key, hide_values(item, secrets)) for key, item in value.items())
    if isinstance(value, (list, tuple)):
        return [hide_values(item, secrets) for item in value]
    if isinstance(value, str):
        for secret in secrets:
            value = value.replace(secret, NO_LOG_TEXT)
    return value
