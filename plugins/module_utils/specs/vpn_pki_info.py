# -*- coding: utf-8 -*-
# Copyright: clientvpn.pki contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""vpn_pki_info's options and backend, shared by the module and its action."""

from __future__ import annotations

from ansible_collections.clientvpn.pki.plugins.module_utils.aws import AWS_ARGUMENT_SPEC, connector
from ansible_collections.clientvpn.pki.plugins.module_utils.module_runner import ModuleSpec
from ansible_collections.clientvpn.pki.plugins.module_utils.pki_health import DEFAULT_THRESHOLDS, HealthCheck

ARGUMENT_SPEC = dict(
    pki_dir=dict(type="path", required=True),
    acm=dict(type="bool", default=False),
    profiles_dir=dict(type="path"),
    cache_dir=dict(type="path"),
)
# one option per threshold, defaults from the one home of the thresholds
ARGUMENT_SPEC.update(("%s_expiry_days" % what, dict(type="int", default=days)) for what, days in DEFAULT_THRESHOLDS.items())
ARGUMENT_SPEC.update(AWS_ARGUMENT_SPEC)


def backend(params, check_mode):
    thresholds = dict((what, params["%s_expiry_days" % what]) for what in DEFAULT_THRESHOLDS)
    connect = connector("acm", params) if params["acm"] else None
    return HealthCheck(params["pki_dir"], thresholds, connect, params["profiles_dir"], params["cache_dir"])


SPEC = ModuleSpec("vpn_pki_info", ARGUMENT_SPEC, backend, needs_boto3=lambda params: params["acm"])
