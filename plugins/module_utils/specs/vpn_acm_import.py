# -*- coding: utf-8 -*-
# Copyright: clientvpn.pki contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""vpn_acm_import's options and backend, shared by the module and its action."""

from __future__ import annotations

from ansible_collections.clientvpn.pki.plugins.module_utils.acm import from_params
from ansible_collections.clientvpn.pki.plugins.module_utils.aws import AWS_ARGUMENT_SPEC, connector
from ansible_collections.clientvpn.pki.plugins.module_utils.module_runner import ModuleSpec

ARGUMENT_SPEC = dict(
    certificate=dict(type="path"),
    private_key=dict(type="path", no_log=False),
    private_key_passphrase=dict(type="str", no_log=True),
    certificate_chain=dict(type="path"),
    certificate_arn=dict(type="str"),
    name=dict(type="str"),
    names=dict(type="list", elements="str"),
    certificates=dict(
        type="list",
        elements="dict",
        options=dict(
            name=dict(type="str"),
            certificate=dict(type="path"),
            private_key=dict(type="path", no_log=False),
            private_key_passphrase=dict(type="str", no_log=True),
            certificate_arn=dict(type="str"),
        ),
    ),
    pki_dir=dict(type="path"),
    type=dict(type="str", default="server", choices=["server", "client"]),
    tags=dict(type="dict"),
    purge_tags=dict(type="bool", default=True),
    state=dict(type="str", default="present", choices=["present", "absent"]),
)
ARGUMENT_SPEC.update(AWS_ARGUMENT_SPEC)
ONE_CERTIFICATE = ("certificate", "private_key", "private_key_passphrase", "certificate_arn", "name")

SPEC = ModuleSpec(
    "vpn_acm_import",
    ARGUMENT_SPEC,
    lambda params, check_mode: from_params(params, check_mode, connector("acm", params)),
    needs_boto3=True,
    mutually_exclusive=[(many, key) for many in ("certificates", "names") for key in ONE_CERTIFICATE] + [("certificates", "names")],
)
