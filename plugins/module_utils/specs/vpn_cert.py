# -*- coding: utf-8 -*-
# Copyright: clientvpn.pki contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""vpn_cert's options and backend, shared by the module and its action."""

from __future__ import annotations

from ansible_collections.clientvpn.pki.plugins.module_utils.cert_issuer import CertificateIssuer
from ansible_collections.clientvpn.pki.plugins.module_utils.cert_plan import build_specs
from ansible_collections.clientvpn.pki.plugins.module_utils.cert_revoker import REASONS, CertificateRevoker
from ansible_collections.clientvpn.pki.plugins.module_utils.module_runner import ModuleSpec
from ansible_collections.clientvpn.pki.plugins.module_utils.pki_store import PkiStore
from ansible_collections.clientvpn.pki.plugins.module_utils.x509_profiles import DIGESTS

ARGUMENT_SPEC = dict(
    pki_dir=dict(type="path", required=True),
    name=dict(type="list", elements="str", aliases=["names"]),
    names_file=dict(type="path"),
    type=dict(type="str", choices=["server", "client"]),
    common_name=dict(type="str"),
    subject_alt_names=dict(type="list", elements="str"),
    key_size=dict(type="int", default=2048),
    days=dict(type="int", default=825),
    renew_before_days=dict(type="int", default=30),
    digest=dict(type="str", default="sha256", choices=list(DIGESTS)),
    ca_passphrase=dict(type="str", no_log=True),
    renew=dict(type="bool", default=False),
    reissue_revoked=dict(type="bool", default=False),
    state=dict(type="str", default="present", choices=["present", "revoked"]),
    reason=dict(type="str", choices=list(REASONS)),
    cache_dir=dict(type="path"),
    report=dict(type="str", default="all", choices=["all", "changed"]),
)


def backend(params, check_mode):
    """What the options ask for: a CertificateRevoker (state: revoked) or a CertificateIssuer."""
    if params["state"] == "revoked":
        return CertificateRevoker(PkiStore(params["pki_dir"]), params["name"], params["reason"], params["ca_passphrase"], names_file=params["names_file"])
    specs = build_specs(
        params["name"],
        params["type"],
        params["common_name"],
        params["subject_alt_names"],
        params["key_size"],
        params["days"],
        params["digest"],
        names_file=params["names_file"],
    )
    return CertificateIssuer(
        PkiStore(params["pki_dir"]),
        specs,
        renew_before_days=params["renew_before_days"],
        ca_passphrase=params["ca_passphrase"],
        renew=params["renew"],
        reissue_revoked=params["reissue_revoked"],
        cache_dir=params["cache_dir"],
        report=params["report"],
    )


SPEC = ModuleSpec(
    "vpn_cert",
    ARGUMENT_SPEC,
    backend,
    required_if=[("state", "present", ("type",))],
    required_one_of=[("name", "names_file")],
)
