# -*- coding: utf-8 -*-
# Copyright: clientvpn.pki contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What every clientvpn.pki PKI module does around its backend: check the
library, turn PkiError (and a file the system refuses) into fail_json, pass
warnings on, drop the diff unless asked for."""

from __future__ import annotations

import gc
import os
import re
import sys

from ansible.module_utils.basic import missing_required_lib

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


def run_backend(module, make_backend, needs_boto3=False):
    """``make_backend()`` validates options and returns an object with ``run(check_mode)``."""
    if not HAS_CRYPTOGRAPHY:
        module.fail_json(msg=missing_required_lib("cryptography"), exception=str(CRYPTOGRAPHY_IMPORT_ERROR))
    version_problem = cryptography_version_problem()
    if version_problem:
        module.fail_json(msg=version_problem)
    if needs_boto3:
        # Imported here: boto3 takes ~0.1 s to import, which the PKI-only modules need not pay.
        from ansible_collections.clientvpn.pki.plugins.module_utils.aws import BOTO3_IMPORT_ERROR, HAS_BOTO3  # pylint: disable=import-outside-toplevel

        if not HAS_BOTO3:
            module.fail_json(msg=missing_required_lib("boto3 and botocore"), exception=str(BOTO3_IMPORT_ERROR))
    # A module is a short-lived process, and everything it allocates goes at its exit: the cycle
    # collector's passes over the objects of 20,000 names took 0.35 s of a 1.3 s run (docs/performance.md).
    gc.disable()
    try:
        result = make_backend().run(module.check_mode)
    except PkiError as exc:
        module.fail_json(msg=str(exc))
    except OSError as exc:
        module.fail_json(msg=describe_os_error(exc))
    for warning in result.pop("warnings", []):
        module.warn(warning)
    diff = result.pop("diff", None)
    if module._diff:
        result["diff"] = diff
    module.exit_json(**result)
