#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: clientvpn.pki contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: vpn_crl
short_description: Keep the CA's certificate revocation list (crl.pem, crl.der) current
version_added: 0.1.0
description:
  - Writes C(crl.pem) and C(crl.der) in O(pki_dir), signed by the CA, listing the revoked (C(R)) rows of
    C(index.txt) with their revocation time and reason, as C(easyrsa gen-crl) does.
  - Idempotent. A new CRL is signed only when the revoked set changed, or when the current CRL is within
    O(renew_before_days) of its nextUpdate. OpenVPN, and so AWS Client VPN, refuses every client once the CRL
    has expired, so run this on a schedule and watch RV(next_update).
  - Warns past 20,000 entries, the Client VPN limit per CRL.
author:
  - clientvpn.pki contributors (@clientvpn)
requirements:
  - python >= 3.9 (on the host that runs the module)
  - cryptography >= 42.0
attributes:
  check_mode:
    support: full
    description: Nothing is written; RV(ignore:changed) says whether a new CRL would be signed.
  diff_mode:
    support: partial
    description: Shows the number of revoked certificates.
  safe_file_operations:
    support: full
    description: Files are written to a temporary file in the PKI directory, then moved into place, under its lock.
  idempotent:
    support: full
    description: The current CRL is read and compared first.
options:
  pki_dir:
    description:
      - The easy-rsa PKI directory.
    type: path
    required: true
  days:
    description:
      - Days until the nextUpdate of a new CRL (easy-rsa's default).
    type: int
    default: 180
  renew_before_days:
    description:
      - Sign a new CRL when the current one's nextUpdate is this close. Must be smaller than O(days).
    type: int
    default: 30
  digest:
    description:
      - Signature digest.
    type: str
    choices: [sha256, sha384, sha512]
    default: sha256
  ca_passphrase:
    description:
      - Passphrase of the CA key, when encrypted.
    type: str
seealso:
  - module: clientvpn.pki.vpn_cert
  - module: clientvpn.pki.vpn_endpoint_crl
"""

EXAMPLES = r"""
- name: Revoke a client, then regenerate the CRL
  clientvpn.pki.vpn_cert:
    pki_dir: /srv/clientvpn/pki
    name: bob.example.com
    state: revoked

- name: Regenerate the CRL (also renews it before it expires)
  clientvpn.pki.vpn_crl:
    pki_dir: /srv/clientvpn/pki
  register: crl

# next_update is timezone-aware, now() is naive: compare epoch seconds (subtracting the datetimes fails on ansible-core 2.19).
- name: Alert when the CRL expires within 7 days
  ansible.builtin.assert:
    that: (crl.next_update | to_datetime('%Y-%m-%dT%H:%M:%S%z')).timestamp() - now().timestamp() > 7 * 86400
    fail_msg: "{{ crl.crl }} expires on {{ crl.next_update }}: past it, the endpoint refuses every client."
    quiet: true
"""

RETURN = r"""
crl:
  description: Path of the PEM CRL.
  returned: success
  type: str
  sample: /srv/clientvpn/pki/crl.pem
crl_der:
  description: Path of the DER CRL.
  returned: success
  type: str
  sample: /srv/clientvpn/pki/crl.der
revoked_count:
  description: Number of revoked certificates in the CRL.
  returned: success
  type: int
  sample: 1
revoked_serials:
  description: Their serial numbers, upper-case hex.
  returned: success
  type: list
  elements: str
  sample: ["B343ED2FA0E9C8936FC40788EC805469"]
this_update:
  description: thisUpdate of the CRL (ISO 8601, UTC). Absent in check mode when a new CRL would be signed.
  returned: when a CRL exists
  type: str
  sample: "2026-11-24T20:12:45+00:00"
next_update:
  description: nextUpdate of the CRL (ISO 8601, UTC); past it, clients are refused. Absent in check mode when a new CRL would be signed.
  returned: when a CRL exists
  type: str
  sample: "2027-05-23T20:12:45+00:00"
reasons:
  description: Why a new CRL was signed.
  returned: success
  type: list
  elements: str
  sample: ["the revoked certificates in index.txt changed"]
"""

from ansible_collections.clientvpn.pki.plugins.module_utils.module_runner import run_module
from ansible_collections.clientvpn.pki.plugins.module_utils.specs.vpn_crl import SPEC


def main():
    run_module(SPEC)


if __name__ == "__main__":
    main()
