# -*- coding: utf-8 -*-
# Copyright: clientvpn.pki contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What every clientvpn.pki PKI module does around its backend: check the
library, turn PkiError into fail_json, pass warnings on, drop the diff unless
asked for."""

from __future__ import annotations

from ansible.module_utils.basic import missing_required_lib

from ansible_collections.clientvpn.pki.plugins.module_utils.errors import PkiError
from ansible_collections.clientvpn.pki.plugins.module_utils.x509_profiles import CRYPTOGRAPHY_IMPORT_ERROR, HAS_CRYPTOGRAPHY


def run_backend(module, make_backend, needs_boto3=False):
    """``make_backend()`` validates options and returns an object with ``run(check_mode)``."""
    if not HAS_CRYPTOGRAPHY:
        module.fail_json(msg=missing_required_lib("cryptography"), exception=str(CRYPTOGRAPHY_IMPORT_ERROR))
    if needs_boto3:
        # Imported here: boto3 takes ~0.1 s to import, which the PKI-only modules need not pay.
        from ansible_collections.clientvpn.pki.plugins.module_utils.aws import BOTO3_IMPORT_ERROR, HAS_BOTO3  # pylint: disable=import-outside-toplevel

        if not HAS_BOTO3:
            module.fail_json(msg=missing_required_lib("boto3 and botocore"), exception=str(BOTO3_IMPORT_ERROR))
    try:
        result = make_backend().run(module.check_mode)
    except PkiError as exc:
        module.fail_json(msg=str(exc))
    for warning in result.pop("warnings", []):
        module.warn(warning)
    diff = result.pop("diff", None)
    if module._diff:
        result["diff"] = diff
    module.exit_json(**result)
