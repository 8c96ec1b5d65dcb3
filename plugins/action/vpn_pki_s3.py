# -*- coding: utf-8 -*-
# Copyright: clientvpn.pki contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Runs the vpn_pki_s3 module's backend in Ansible's worker where the module would run on this machine anyway (plugin_utils/backend_action.py)."""

from __future__ import annotations

from ansible_collections.clientvpn.pki.plugins.module_utils.specs.vpn_pki_s3 import SPEC
from ansible_collections.clientvpn.pki.plugins.plugin_utils.backend_action import BackendAction


class ActionModule(BackendAction):
    """The vpn_pki_s3 module's action."""

    spec = SPEC
