# -*- coding: utf-8 -*-
# Copyright: clientvpn.pki contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The CRL of a Client VPN endpoint, and the client configuration it exports.

Importing a CRL into an endpoint resets every client connection, so the
CRL it holds (export call) is compared with the local one first and an
unchanged CRL is never re-imported.
"""

from __future__ import annotations

import datetime

try:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
except ImportError:  # pragma: no cover - reported by the modules
    pass

from ansible_collections.clientvpn.pki.plugins.module_utils.aws import aws_call
from ansible_collections.clientvpn.pki.plugins.module_utils.clientvpn_rules import CLIENT_VPN_MAX_CRL_ENTRIES
from ansible_collections.clientvpn.pki.plugins.module_utils.errors import PkiError


def _der(pem):
    if not pem or not pem.strip():
        return None
    try:
        return x509.load_pem_x509_crl(pem.encode() if isinstance(pem, str) else pem).public_bytes(serialization.Encoding.DER)
    except ValueError:
        return None  # what the endpoint holds is unreadable: replace it


class EndpointCrl(object):
    """``connect`` gives the EC2 client (aws.connector); it is called once the local CRL is found fit."""

    def __init__(self, connect, endpoint_id, crl_path):
        self.connect = connect
        self.endpoint_id = endpoint_id
        self.crl_path = crl_path
        try:
            with open(crl_path, "rb") as handle:
                self.pem = handle.read()
            self.crl = x509.load_pem_x509_crl(self.pem)
        except (OSError, ValueError) as exc:
            raise PkiError("crl %s is not a readable PEM CRL (%s). Build it with clientvpn.pki.vpn_crl." % (crl_path, exc))
        if len(self.crl) > CLIENT_VPN_MAX_CRL_ENTRIES:
            raise PkiError(
                "crl %s lists %d certificates; a Client VPN endpoint accepts at most %d." % (crl_path, len(self.crl), CLIENT_VPN_MAX_CRL_ENTRIES)
            )
        if self.crl.next_update_utc <= datetime.datetime.now(datetime.timezone.utc):
            raise PkiError(
                "crl %s expired on %s: every client would be refused. Renew it with clientvpn.pki.vpn_crl first."
                % (crl_path, self.crl.next_update_utc.isoformat())
            )

    def run(self, check_mode):
        client = self.connect()
        held = aws_call(
            "EC2 export_client_vpn_client_certificate_revocation_list",
            client.export_client_vpn_client_certificate_revocation_list,
            ClientVpnEndpointId=self.endpoint_id,
        )
        same = _der(held.get("CertificateRevocationList")) == self.crl.public_bytes(serialization.Encoding.DER)
        if not same and not check_mode:
            aws_call(
                "EC2 import_client_vpn_client_certificate_revocation_list",
                client.import_client_vpn_client_certificate_revocation_list,
                ClientVpnEndpointId=self.endpoint_id,
                CertificateRevocationList=self.pem.decode("ascii"),
            )
        return {
            "changed": not same,
            "action": "unchanged" if same else "imported",
            "client_vpn_endpoint_id": self.endpoint_id,
            "revoked_count": len(self.crl),
            "next_update": self.crl.next_update_utc.isoformat(),
            "status": (held.get("Status") or {}).get("Code"),
            "warnings": [] if same else ["importing a CRL resets the endpoint's existing client connections"],
            "diff": {"before": {}, "after": {"revoked_count": len(self.crl)}},
        }
