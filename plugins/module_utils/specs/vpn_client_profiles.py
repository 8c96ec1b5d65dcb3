# -*- coding: utf-8 -*-
# Copyright: clientvpn.pki contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""vpn_client_profiles's options and backend, shared by the module and its action."""

from __future__ import annotations

from ansible_collections.clientvpn.pki.plugins.module_utils.aws import AWS_ARGUMENT_SPEC, connector
from ansible_collections.clientvpn.pki.plugins.module_utils.client_profiles import ClientProfiles, load_configuration
from ansible_collections.clientvpn.pki.plugins.module_utils.module_runner import ModuleSpec

ARGUMENT_SPEC = dict(
    pki_dir=dict(type="path", required=True),
    names=dict(type="list", elements="str", aliases=["name"]),
    names_file=dict(type="path"),
    dest=dict(type="path", required=True),
    config_file=dict(type="path"),
    client_vpn_endpoint_id=dict(type="str"),
)
ARGUMENT_SPEC.update(AWS_ARGUMENT_SPEC)


def backend(params, check_mode):
    configuration = load_configuration(params, check_mode, connector("ec2", params))
    return ClientProfiles(params["pki_dir"], params["names"], params["dest"], configuration, names_file=params["names_file"])


SPEC = ModuleSpec(
    "vpn_client_profiles",
    ARGUMENT_SPEC,
    backend,
    needs_boto3=lambda params: bool(params["client_vpn_endpoint_id"]),
    mutually_exclusive=[("config_file", "client_vpn_endpoint_id")],
    required_one_of=[("config_file", "client_vpn_endpoint_id"), ("names", "names_file")],
)
