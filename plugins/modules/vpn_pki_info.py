#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: clientvpn.pki contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: vpn_pki_info
short_description: Report what in a Client VPN PKI expires when, and what to do about it
version_added: 0.2.0
description:
  - Reads an easy-rsa PKI and writes nothing. Returns the CA, every certificate of C(index.txt), the CRL and,
    with O(acm=true), the ACM copies this PKI recorded, each with its dates and days left.
  - Returns RV(problems), each with a code, the object, the date, the days left and the fix, for what crosses a
    threshold - the CRL's nextUpdate (after it, Client VPN refuses every connection), the server certificate,
    the CA, client certificates, a CRL that does not list exactly the revoked rows, a CRL near Client VPN's
    20,000 entries, valid rows without their certificate file, certificates and client profiles that still depend on
    a CA certificate a renewal replaced, ACM copies that differ from disk or are gone.
  - A problem is V(critical) when it stops connections once its date comes (the CRL, the server, the CA, ACM);
    V(warning) when it is work to plan (clients, files, a CRL near its size limit). The C(clientvpn.pki.health)
    playbook fails on critical problems so that a scheduled job notifies.
author:
  - clientvpn.pki contributors (@clientvpn)
requirements:
  - python >= 3.9 (on the host that runs the module)
  - cryptography >= 42.0
  - boto3 >= 1.12.0 and botocore >= 1.15.0, with O(acm=true)
extends_documentation_fragment:
  - clientvpn.pki.aws
attributes:
  check_mode:
    support: full
    description: The module never writes; check mode returns the same report.
  diff_mode:
    support: none
    description: Nothing changes, so there is no diff.
  idempotent:
    support: full
    description: Read-only.
options:
  pki_dir:
    description:
      - The easy-rsa PKI directory.
    type: path
    required: true
  acm:
    description:
      - Also compare the certificates this PKI recorded in ACM (C(acm-certificates.json), in the region of the AWS
        options) with the files on disk, with one C(GetCertificate) per certificate.
    type: bool
    default: false
  profiles_dir:
    description:
      - A folder of client profiles (C(.ovpn), as C(vpn_client_profiles) writes them) to check. A profile whose C(<ca>)
        does not carry the current CA certificate (written before a CA renewal) stops connecting when the CA certificate
        it trusts expires; RV(profiles) lists them and they are a problem (C(profiles_outdated)), critical once that
        date is within O(ca_expiry_days).
    type: path
  cache_dir:
    description:
      - The folder of the cache of certificates already parsed and verified, shared with the C(cache_dir) of
        M(clientvpn.pki.vpn_cert) (the health playbook's C(health_cache_dir), C(~/.cache/clientvpn.pki) by default).
        Records are found by the SHA-256 of each file's bytes, so a changed file is always read again. Unset, no cache.
        Written only outside check mode, and only outside the PKI.
    type: path
  ca_expiry_days:
    description:
      - A CA certificate expiring within this many days is a critical problem (C(ca_expiring)).
    type: int
    default: 180
  server_expiry_days:
    description:
      - A server certificate expiring within this many days is a critical problem (C(server_expiring)).
    type: int
    default: 30
  crl_expiry_days:
    description:
      - A CRL whose nextUpdate is within this many days is a critical problem (C(crl_expiring)). Keep it below
        the C(revoke_client) playbook's C(crl_renew_before_days) (30), so that it fires only when that job stops running.
    type: int
    default: 14
  client_expiry_days:
    description:
      - Client certificates expiring within this many days are one warning (C(clients_expiring)).
    type: int
    default: 30
notes:
  - The CA key is never opened, so no passphrase is needed. The PKI directory is locked (shared) while it is read,
    so a report never sees half of a run.
seealso:
  - module: clientvpn.pki.vpn_crl
  - module: clientvpn.pki.vpn_acm_import
"""

EXAMPLES = r"""
- name: Read the PKI's health
  clientvpn.pki.vpn_pki_info:
    pki_dir: /srv/clientvpn/pki
  register: health

- name: Stop when something will cut users off
  ansible.builtin.assert:
    that: health.summary.critical == 0
    fail_msg: "{{ health.problems | selectattr('severity', 'equalto', 'critical') | map(attribute='message') | list }}"

- name: The server certificate in ACM (as the mutual_auth playbook imports it)
  clientvpn.pki.vpn_acm_import:
    pki_dir: /srv/clientvpn/pki
    name: server
    region: eu-west-1

- name: Also check the copies in ACM (the same certificate and chain as on disk?), with tighter thresholds
  clientvpn.pki.vpn_pki_info:
    pki_dir: /srv/clientvpn/pki
    acm: true
    region: eu-west-1
    crl_expiry_days: 21
    server_expiry_days: 45
  register: health
  failed_when: health.acm.server.same_as_disk is not true
"""

RETURN = r"""
pki_dir:
  description: The PKI directory.
  returned: success
  type: str
checked_at:
  description: When the PKI was read (ISO 8601, UTC); days left count from it.
  returned: success
  type: str
  sample: "2026-11-26T01:00:00+00:00"
easyrsa_version:
  description: The easy-rsa version whose layout the PKI follows.
  returned: success
  type: str
  sample: "3.1"
thresholds:
  description: The thresholds used, in days.
  returned: success
  type: dict
  sample: {"ca": 180, "server": 30, "crl": 14, "client": 30}
ca:
  description: The CA certificate, and the earlier CA certificates a renewal kept (C(expired-ca.list)).
  returned: success
  type: dict
  contains:
    common_name:
      description: The CA's CN.
      type: str
      sample: Easy-RSA CA
    serial:
      description: Serial number, upper-case hex.
      type: str
    not_after:
      description: End of validity (ISO 8601, UTC).
      type: str
      sample: "2036-11-22T20:06:30+00:00"
    days_left:
      description: Days from RV(checked_at) to RV(ca.not_after); negative once expired.
      type: int
      sample: 3649
    key:
      description: Key type and size.
      type: str
      sample: RSA 2048
    previous:
      description: The CA certificates a renewal replaced, newest first, each with the same facts.
      type: list
      elements: dict
      sample: []
certificates:
  description: Every row of C(index.txt), soonest expiry first.
  returned: success
  type: list
  elements: dict
  contains:
    name:
      description:
        - The certificate's name (its file in C(issued/), or the name C(renew) and C(expire) kept it under), or null when
          it is only found by serial (a revoked one) or nowhere.
      type: str
      sample: server
    common_name:
      description: Its CN (the C(index.txt) subject when no file was found).
      type: str
    type:
      description: C(server), C(client) or C(unknown) (from the EKU).
      type: str
    status:
      description: C(V), C(R) or C(E), as C(index.txt) says.
      type: str
    serial:
      description: Serial number, upper-case hex.
      type: str
    not_after:
      description: End of validity (ISO 8601, UTC).
      type: str
    days_left:
      description: Days left; negative once expired.
      type: int
    revoked_at:
      description: Revocation time of an C(R) row, else null.
      type: str
    key:
      description: Key type and size, when the certificate file was found.
      type: str
    folder:
      description: Where its file is (C(issued), C(renewed/issued), C(expired), C(certs_by_serial), C(renewed/certs_by_serial),
        C(revoked/certs_by_serial)), or null.
      type: str
    current:
      description: Whether it is the name's certificate in C(issued/).
      type: bool
    files_present:
      description: Whether its certificate and key are in C(issued/) and C(private/).
      type: bool
  sample: [{"name": "server", "common_name": "server", "type": "server", "status": "V", "serial": "F7D1...",
            "not_after": "2029-02-26T20:06:30+00:00", "days_left": 822, "revoked_at": null, "key": "RSA 2048",
            "folder": "issued", "current": true, "files_present": true}]
crl:
  description: The CRL (C(crl.pem)).
  returned: success
  type: dict
  contains:
    present:
      description: Whether C(crl.pem) exists.
      type: bool
    entries:
      description: Revoked certificates it lists.
      type: int
    this_update:
      description: thisUpdate (ISO 8601, UTC).
      type: str
    next_update:
      description: nextUpdate (ISO 8601, UTC); after it Client VPN refuses every connection.
      type: str
    days_left:
      description: Days to nextUpdate.
      type: int
    matches_index:
      description: Whether it lists exactly the revoked rows of C(index.txt) and this CA signed it.
      type: bool
  sample: {"present": true, "entries": 1, "this_update": "2026-11-26T00:00:00+00:00", "next_update": "2027-05-25T00:00:00+00:00",
           "days_left": 179, "matches_index": true}
acm:
  description: With O(acm=true), each certificate recorded in ACM for this PKI, by name.
  returned: success
  type: dict
  sample: {"server": {"certificate_arn": "arn:aws:acm:eu-west-1:123456789012:certificate/...", "found": true, "same_as_disk": true,
           "serial": "F7D1...", "not_after": "2029-02-26T20:06:30+00:00"}}
profiles:
  description: With O(profiles_dir), each profile by client name, whether its C(<ca>) holds the current CA certificate
    and when the newest CA certificate it holds expires.
  returned: success
  type: dict
  sample: {"alice.example.com": {"has_current_ca": false, "ca_not_after": "2027-11-26T00:00:00+00:00"}}
problems:
  description: What crosses a threshold, each with V(critical) or V(warning), the object, the date, days left and the fix.
  returned: success
  type: list
  elements: dict
  sample: [{"code": "crl_expiring", "severity": "critical", "object": "/srv/clientvpn/pki/crl.pem", "date": "2026-12-01T00:00:00+00:00",
            "days_left": 5, "message": "the CRL's nextUpdate is 2026-12-01: after it the endpoint refuses every connection",
            "fix": "re-sign it: ansible-playbook clientvpn.pki.revoke_client ..."}]
summary:
  description: Counts of valid, revoked, expired and expiring certificates, and of problems.
  returned: success
  type: dict
  sample: {"valid": 2, "revoked": 1, "expired": 0, "expiring": 0, "problems": 0, "critical": 0}
"""

from ansible_collections.clientvpn.pki.plugins.module_utils.module_runner import run_module
from ansible_collections.clientvpn.pki.plugins.module_utils.specs.vpn_pki_info import SPEC


def main():
    run_module(SPEC)


if __name__ == "__main__":
    main()
