#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: clientvpn.pki contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: vpn_endpoint_crl
short_description: Publish the CRL to an AWS Client VPN endpoint, only when it changed
version_added: 0.1.0
description:
  - Imports a CRL into a Client VPN endpoint, as C(aws ec2 import-client-vpn-client-certificate-revocation-list)
    does, so revoked clients can no longer connect.
  - An import resets every client connection of the endpoint. The module first exports what the endpoint holds
    (C(export-client-vpn-client-certificate-revocation-list)) and imports only when it differs.
  - Refuses a CRL that has expired (every client would be refused) or lists more than 20,000 certificates (the
    Client VPN limit).
author:
  - clientvpn.pki contributors (@clientvpn)
requirements:
  - python >= 3.9 (on the host that runs the module)
  - boto3 >= 1.12.0
  - botocore >= 1.15.0
  - cryptography >= 42.0
attributes:
  check_mode:
    support: full
    description: The export call runs; the import does not. RV(action) says whether a real run would import.
  diff_mode:
    support: partial
    description: Shows the number of revoked certificates.
  idempotent:
    support: full
    description: The endpoint's CRL is compared with the local one; an equal CRL is not imported.
options:
  client_vpn_endpoint_id:
    description:
      - The Client VPN endpoint, C(cvpn-endpoint-...).
    type: str
    required: true
  crl:
    description:
      - Path of the PEM CRL, for example C(<pki_dir>/crl.pem) written by M(clientvpn.pki.vpn_crl).
    type: path
    required: true
extends_documentation_fragment:
  - clientvpn.pki.aws
seealso:
  - module: clientvpn.pki.vpn_crl
"""

EXAMPLES = r"""
- name: Publish the CRL
  clientvpn.pki.vpn_endpoint_crl:
    client_vpn_endpoint_id: cvpn-endpoint-0123456789abcdef0
    crl: /srv/clientvpn/pki/crl.pem
    region: eu-west-1
"""

RETURN = r"""
action:
  description: V(imported) or V(unchanged).
  returned: success
  type: str
  sample: imported
client_vpn_endpoint_id:
  description: The endpoint.
  returned: success
  type: str
  sample: cvpn-endpoint-0123456789abcdef0
revoked_count:
  description: Number of revoked certificates in the CRL.
  returned: success
  type: int
  sample: 3
next_update:
  description: nextUpdate of the CRL (ISO 8601, UTC).
  returned: success
  type: str
  sample: "2027-05-23T20:12:45+00:00"
status:
  description: Status code of the endpoint's CRL before the run (C(pending), C(active)).
  returned: success
  type: str
  sample: active
"""

from ansible_collections.clientvpn.pki.plugins.module_utils.module_runner import run_module
from ansible_collections.clientvpn.pki.plugins.module_utils.specs.vpn_endpoint_crl import SPEC


def main():
    run_module(SPEC)


if __name__ == "__main__":
    main()
