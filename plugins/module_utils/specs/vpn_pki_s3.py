# -*- coding: utf-8 -*-
# Copyright: clientvpn.pki contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""vpn_pki_s3's options and backend, shared by the module and its action."""

from __future__ import annotations

from ansible_collections.clientvpn.pki.plugins.module_utils.aws import AWS_ARGUMENT_SPEC, connector
from ansible_collections.clientvpn.pki.plugins.module_utils.module_runner import ModuleSpec
from ansible_collections.clientvpn.pki.plugins.module_utils.pki_s3 import from_params

ARGUMENT_SPEC = dict(
    pki_dir=dict(type="path", required=True),
    bucket=dict(type="str", required=True),
    prefix=dict(type="str", required=True),
    state=dict(type="str", required=True, choices=["pull", "push", "release"]),
    kms_key_id=dict(type="str", no_log=False),
    encrypt_private_keys=dict(type="bool", default=True),
    allow_plaintext_ca_key=dict(type="bool", default=False),
    lock=dict(type="bool", default=True),
    lock_owner=dict(type="str"),
    lock_ttl_seconds=dict(type="int", default=3600),
    lock_wait_seconds=dict(type="int", default=600),
    release_lock=dict(type="bool", default=True),
)
ARGUMENT_SPEC.update(AWS_ARGUMENT_SPEC)

SPEC = ModuleSpec(
    "vpn_pki_s3",
    ARGUMENT_SPEC,
    lambda params, check_mode: from_params(params, connector("s3", params), connector("kms", params)),
    needs_boto3=True,
)
