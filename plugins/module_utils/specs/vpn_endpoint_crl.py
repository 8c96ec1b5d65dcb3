# -*- coding: utf-8 -*-
# Copyright: clientvpn.pki contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""vpn_endpoint_crl's options and backend, shared by the module and its action."""

from __future__ import annotations

from ansible_collections.clientvpn.pki.plugins.module_utils.aws import AWS_ARGUMENT_SPEC, connector
from ansible_collections.clientvpn.pki.plugins.module_utils.endpoint_crl import EndpointCrl
from ansible_collections.clientvpn.pki.plugins.module_utils.module_runner import ModuleSpec

ARGUMENT_SPEC = dict(
    client_vpn_endpoint_id=dict(type="str", required=True),
    crl=dict(type="path", required=True),
)
ARGUMENT_SPEC.update(AWS_ARGUMENT_SPEC)

SPEC = ModuleSpec(
    "vpn_endpoint_crl",
    ARGUMENT_SPEC,
    lambda params, check_mode: EndpointCrl(connector("ec2", params), params["client_vpn_endpoint_id"], params["crl"]),
    needs_boto3=True,
)
