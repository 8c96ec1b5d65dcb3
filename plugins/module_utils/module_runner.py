# -*- coding: utf-8 -*-
# Copyright: clientvpn.pki contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What every clientvpn.pki module is, whichever way it runs: its options
(``ModuleSpec``) and what it does around its backend (``run``): check the
libraries, turn PkiError (and a file the system refuses) into one failure
message, pass warnings and deprecations on, drop the diff unless asked for.

Two callers use the same spec and the same ``run``: the module file, through
``AnsibleModule`` (``run_module``), and its action on the controller
(plugin_utils/backend_action.py), through ``ArgumentSpecValidator``."""

from __future__ import annotations

import gc
import os
import re
import sys

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.clientvpn.pki.plugins.module_utils.errors import PkiError
from ansible_collections.clientvpn.pki.plugins.module_utils.x509_profiles import CRYPTOGRAPHY_IMPORT_ERROR, HAS_CRYPTOGRAPHY

try:
    import cryptography
except ImportError:  # pragma: no cover - reported through HAS_CRYPTOGRAPHY
    cryptography = None

# The oldest cryptography with every API the collection uses: the timezone-aware
# not_valid_before_utc / not_valid_after_utc, next_update_utc / last_update_utc and
# revocation_date_utc all came in 42.0.
MIN_CRYPTOGRAPHY_VERSION = "42.0"


def _major_minor(version):
    """(major, minor) of a version string, or None when it does not start with a number."""
    match = re.match(r"(\d+)(?:\.(\d+))?", str(version))
    return (int(match.group(1)), int(match.group(2) or 0)) if match else None


def cryptography_version_problem():
    """The message for a cryptography older than MIN_CRYPTOGRAPHY_VERSION, or None (also when its version cannot be read)."""
    found = getattr(cryptography, "__version__", "")
    have = _major_minor(found)
    if have is None or have >= _major_minor(MIN_CRYPTOGRAPHY_VERSION):
        return None
    return (
        "cryptography >= %s required, found %s. On the managed host, pip install 'cryptography>=%s' for the Python "
        "running this module (%s -m pip install 'cryptography>=%s'), or point ansible_python_interpreter at a Python that has it."
        % (MIN_CRYPTOGRAPHY_VERSION, found, MIN_CRYPTOGRAPHY_VERSION, sys.executable, MIN_CRYPTOGRAPHY_VERSION)
    )


def describe_os_error(exc):
    """One line for a file the system refused: the path(s), the reason, what to check."""
    paths = [str(path) for path in (exc.filename, exc.filename2) if path is not None]
    reason = exc.strerror or str(exc)
    if not paths:
        return "%s (errno %s). Check the paths given to this task: that they exist and the module's user may use them." % (reason, exc.errno)
    return (
        "%s: %s. Check that %s exists as the kind of file expected (file or directory) and that the user "
        "the module runs as (uid %d) may read it and write in its directory."
        % (" -> ".join(paths), reason, "each path" if len(paths) > 1 else "this path", os.geteuid())
    )


class ModuleFailure(Exception):
    """The module fails with this result (``msg`` and, for a missing library, ``exception``)."""

    def __init__(self, msg, **result):
        super(ModuleFailure, self).__init__(msg)
        self.result = dict(result, msg=msg)


class ModuleSpec(object):
    """A module's options and the backend they make.

    ``make_backend(params, check_mode)`` returns an object whose ``run(check_mode)``
    returns the result, with ``warnings`` and ``diff`` among its keys when it has any.
    ``needs_boto3`` is a bool or a function of the params. ``rules`` are the
    constraints between options (mutually_exclusive, required_if, ...), as both
    ``AnsibleModule`` and ``ArgumentSpecValidator`` take them.
    """

    def __init__(self, name, argument_spec, make_backend, needs_boto3=False, **rules):
        self.name = name
        self.argument_spec = argument_spec
        self.make_backend = make_backend
        self.needs_boto3 = needs_boto3
        self.rules = rules

    def boto3_needed(self, params):
        return self.needs_boto3(params) if callable(self.needs_boto3) else self.needs_boto3


def check_libraries(spec, params):
    """Raise ModuleFailure when a library the run needs is missing or too old."""
    if not HAS_CRYPTOGRAPHY:
        raise ModuleFailure(missing_required_lib("cryptography"), exception=str(CRYPTOGRAPHY_IMPORT_ERROR))
    version_problem = cryptography_version_problem()
    if version_problem:
        raise ModuleFailure(version_problem)
    if spec.boto3_needed(params):
        # Imported here: boto3 takes ~0.1 s to import, which the PKI-only modules need not pay.
        from ansible_collections.clientvpn.pki.plugins.module_utils.aws import BOTO3_IMPORT_ERROR, HAS_BOTO3  # pylint: disable=import-outside-toplevel

        if not HAS_BOTO3:
            raise ModuleFailure(missing_required_lib("boto3 and botocore"), exception=str(BOTO3_IMPORT_ERROR))


def run(spec, params, check_mode, diff):
    """The backend's result for these (validated) params, or ModuleFailure.
    Its ``warnings`` stay in the result for the caller to hand on; ``diff`` only when asked for."""
    check_libraries(spec, params)
    # A module run is short-lived (a process of its own, or Ansible's worker for one task), and
    # everything it allocates goes at its end: the cycle collector's passes over the objects of
    # 20,000 names took 0.35 s of a 1.3 s run (docs/performance.md).
    gc.disable()
    try:
        result = spec.make_backend(params, check_mode).run(check_mode)
    except PkiError as exc:
        raise ModuleFailure(str(exc))
    except OSError as exc:
        raise ModuleFailure(describe_os_error(exc))
    finally:
        gc.enable()
    result.setdefault("warnings", [])
    answer = result.pop("diff", None)
    if diff and answer is not None:
        result["diff"] = answer
    return result


def run_module(spec):
    """The module file's ``main()``: AnsibleModule reads and checks the options, ``run`` does the rest."""
    module = AnsibleModule(argument_spec=spec.argument_spec, supports_check_mode=True, **spec.rules)
    try:
        result = run(spec, module.params, module.check_mode, module._diff)
    except ModuleFailure as failure:
        module.fail_json(**failure.result)
    for warning in result.pop("warnings"):
        module.warn(warning)
    module.exit_json(**result)
