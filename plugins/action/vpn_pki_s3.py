# -*- coding: utf-8 -*-
# Copyright: clientvpn.pki contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Runs the vpn_pki_s3 module, forked from Ansible's worker where it would run on this machine anyway (plugin_utils/forked_module.py)."""

from __future__ import annotations

from ansible_collections.clientvpn.pki.plugins.plugin_utils.forked_module import ForkedModuleAction


class ActionModule(ForkedModuleAction):
    """The vpn_pki_s3 module's action."""
