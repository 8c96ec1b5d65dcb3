# -*- coding: utf-8 -*-
# Copyright: clientvpn.pki contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""vpn_stage's options and backend, shared by the module and its action."""

from __future__ import annotations

from ansible_collections.clientvpn.pki.plugins.module_utils.module_runner import ModuleSpec
from ansible_collections.clientvpn.pki.plugins.module_utils.staging import PKI_FILES, from_params

ARGUMENT_SPEC = dict(
    dest=dict(type="path", required=True),
    pki_dir=dict(type="path"),
    names=dict(type="list", elements="str"),
    names_file=dict(type="path"),
    pki_files=dict(type="list", elements="str", choices=list(PKI_FILES), default=list(PKI_FILES)),
    certificates=dict(type="list", elements="path", default=[]),
    # paths, not key material
    private_keys=dict(type="list", elements="path", default=[], no_log=False),
    prune=dict(type="bool", default=False),
    remove=dict(type="list", elements="str", default=[]),
    report=dict(type="str", default="all", choices=["all", "changed"]),
    cache_dir=dict(type="path"),
)

SPEC = ModuleSpec(
    "vpn_stage",
    ARGUMENT_SPEC,
    lambda params, check_mode: from_params(params),
    required_by={"names": "pki_dir", "names_file": "pki_dir"},
)
