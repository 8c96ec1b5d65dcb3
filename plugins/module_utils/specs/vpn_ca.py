# -*- coding: utf-8 -*-
# Copyright: clientvpn.pki contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""vpn_ca's options and backend, shared by the module and its action."""

from __future__ import annotations

from ansible_collections.clientvpn.pki.plugins.module_utils.ca_manager import CertificateAuthority
from ansible_collections.clientvpn.pki.plugins.module_utils.module_runner import ModuleSpec
from ansible_collections.clientvpn.pki.plugins.module_utils.pki_store import PkiStore
from ansible_collections.clientvpn.pki.plugins.module_utils.x509_profiles import DIGESTS

ARGUMENT_SPEC = dict(
    pki_dir=dict(type="path", required=True),
    common_name=dict(type="str", default="Easy-RSA CA"),
    key_size=dict(type="int", default=2048),
    days=dict(type="int", default=3650),
    digest=dict(type="str", default="sha256", choices=list(DIGESTS)),
    passphrase=dict(type="str", no_log=True),
    force=dict(type="bool", default=False),
    easyrsa_version=dict(type="str", choices=["3.1", "3.2"]),
    renew=dict(type="bool", default=False),
    renew_before_days=dict(type="int", default=0),
    # Deprecated: a single choice decides nothing. Users who pass it get a warning until 1.0.0.
    state=dict(type="str", default="present", choices=["present"], removed_in_version="1.0.0", removed_from_collection="clientvpn.pki"),
)


def backend(params, check_mode):
    return CertificateAuthority(
        PkiStore(params["pki_dir"], easyrsa_version=params["easyrsa_version"]),
        common_name=params["common_name"],
        key_size=params["key_size"],
        days=params["days"],
        digest=params["digest"],
        passphrase=params["passphrase"],
        force=params["force"],
        renew=params["renew"],
        renew_before_days=params["renew_before_days"],
    )


SPEC = ModuleSpec("vpn_ca", ARGUMENT_SPEC, backend)
