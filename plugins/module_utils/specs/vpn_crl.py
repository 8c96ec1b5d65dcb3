# -*- coding: utf-8 -*-
# Copyright: clientvpn.pki contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""vpn_crl's options and backend, shared by the module and its action."""

from __future__ import annotations

from ansible_collections.clientvpn.pki.plugins.module_utils.crl_manager import CrlPublisher
from ansible_collections.clientvpn.pki.plugins.module_utils.module_runner import ModuleSpec
from ansible_collections.clientvpn.pki.plugins.module_utils.pki_store import PkiStore
from ansible_collections.clientvpn.pki.plugins.module_utils.x509_profiles import DIGESTS

ARGUMENT_SPEC = dict(
    pki_dir=dict(type="path", required=True),
    days=dict(type="int", default=180),
    renew_before_days=dict(type="int", default=30),
    digest=dict(type="str", default="sha256", choices=list(DIGESTS)),
    ca_passphrase=dict(type="str", no_log=True),
)


def backend(params, check_mode):
    return CrlPublisher(
        PkiStore(params["pki_dir"]),
        days=params["days"],
        renew_before_days=params["renew_before_days"],
        digest=params["digest"],
        ca_passphrase=params["ca_passphrase"],
    )


SPEC = ModuleSpec("vpn_crl", ARGUMENT_SPEC, backend)
