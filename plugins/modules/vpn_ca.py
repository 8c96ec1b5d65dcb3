#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: clientvpn.pki contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: vpn_ca
short_description: Create or adopt the easy-rsa compatible certificate authority of an AWS Client VPN PKI
version_added: 0.1.0
description:
  - Creates the certificate authority of a PKI directory laid out exactly as easy-rsa 3 lays it out
    (C(ca.crt), C(private/ca.key), C(issued/), C(reqs/), C(index.txt), C(index.txt.attr), C(serial),
    C(certs_by_serial/), C(revoked/...)), as C(easyrsa init-pki) and C(easyrsa build-ca nopass) do in the
    AWS Client VPN mutual authentication procedure.
  - The CA certificate carries easy-rsa's CA extensions - basicConstraints CA:TRUE (critical),
    keyUsage keyCertSign and cRLSign, subject and authority key identifiers.
  - Idempotent by reading what is on disk. An existing CA whose key opens with O(passphrase), belongs
    to C(ca.crt) and has the requested O(common_name) and O(key_size) is left alone, so a PKI that
    C(easyrsa) built is adopted without changing a byte. O(days) and O(digest) only apply to a new CA.
  - An existing CA that differs is never replaced silently. The module fails and says what differs,
    unless O(force=true), which backs up C(ca.crt), C(private/ca.key), C(index.txt) and C(serial)
    first.
  - Directories are mode 0700 and the CA key 0600. Files are written atomically under a lock on the PKI
    directory.
author:
  - clientvpn.pki contributors (@clientvpn)
requirements:
  - python >= 3.9 (on the host that runs the module)
  - cryptography >= 42.0
attributes:
  check_mode:
    support: full
    description: Nothing is written; RV(ignore:changed) says exactly what a real run would do.
  diff_mode:
    support: full
    description: Shows the CA's common name, key, serial and validity before and after. Never key material.
  safe_file_operations:
    support: full
    description: Files are written to a temporary file in the same directory, then moved into place, under a lock on the PKI directory.
  idempotent:
    support: full
    description: What is on disk is read first; a second run with the same options changes nothing.
options:
  pki_dir:
    description:
      - The easy-rsa PKI directory (easy-rsa's C(pki/)). Created with mode 0700 when missing.
    type: path
    required: true
  common_name:
    description:
      - Common name (CN) of the CA certificate. The default is easy-rsa's batch-mode default.
    type: str
    default: Easy-RSA CA
  key_size:
    description:
      - Size of the CA's RSA key. AWS Client VPN accepts RSA 1024 and 2048 only; any other value is an error.
    type: int
    default: 2048
  days:
    description:
      - Validity of a new CA certificate, in days (easy-rsa's default).
    type: int
    default: 3650
  digest:
    description:
      - Signature digest of a new CA certificate.
    type: str
    choices: [sha256, sha384, sha512]
    default: sha256
  passphrase:
    description:
      - Encrypts the CA key. Without it the key is not encrypted, like C(easyrsa build-ca nopass).
      - Given for an existing unencrypted key, the key is encrypted in place (the CA stays the same).
      - Needed to open an existing encrypted key.
    type: str
  force:
    description:
      - Replace an existing CA that differs from the request (other CN or key size, key that does not
        open or does not belong to C(ca.crt)). The old files are backed up next to themselves first.
      - Every certificate the old CA issued must then be issued again, and re-imported to ACM.
    type: bool
    default: false
  renew:
    description:
      - Renew the CA certificate now, keeping its key and subject (and key identifier), as easy-rsa 3.2.2+
        C(renew-ca) does but without its trap (docs/ca-renewal.md). The new certificate gets a new serial and
        O(days) of validity; the old one is kept first in C(expired-ca.list), and stays trusted by the client
        profiles, and by the endpoint through the ACM chain, until shortly before it expires.
      - Every certificate and CRL the CA signed stays valid. Certificates issued before whose authorityKeyIdentifier
        names the old certificate's serial (easy-rsa's) are renewed by M(clientvpn.pki.vpn_cert) on its next run.
    type: bool
    default: false
    version_added: 0.2.0
  renew_before_days:
    description:
      - Renew the CA certificate when it expires within this many days. V(0) (the default) renews only with
        O(renew=true); the C(pki) role sets 365 (C(pki_ca_renew_before_days)), leaving a year to hand out new profiles.
    type: int
    default: 0
    version_added: 0.2.0
  easyrsa_version:
    description:
      - Which easy-rsa a new PKI is laid out for, so that this version's C(easyrsa) commands keep working on it.
      - V(3.1) (the default for a new PKI) copies C(openssl-easyrsa.cnf) from an installed easy-rsa into the PKI,
        as easy-rsa 3.1's C(init-pki) does; V(3.2) makes C(inline/private/) and writes each certificate's inline file
        there, as easy-rsa 3.2 does.
      - An existing PKI keeps the layout of the easy-rsa that built it, found from what C(init-pki) left there
        (RV(easyrsa_version) returns it); a value that differs from it is an error.
    type: str
    choices: ['3.1', '3.2']
    version_added: 0.2.0
  state:
    description:
      - V(present) is the only state; a CA is never removed by this module.
      - Deprecated, and removed in clientvpn.pki 1.0.0. It has no effect; drop it from your tasks.
    type: str
    choices: [present]
    default: present
notes:
  - Follow with M(clientvpn.pki.vpn_cert) to issue the server and client certificates.
seealso:
  - module: clientvpn.pki.vpn_cert
  - name: AWS Client VPN mutual authentication
    description: The manual procedure this module automates.
    link: https://docs.aws.amazon.com/vpn/latest/clientvpn-admin/mutual.html
"""

EXAMPLES = r"""
- name: Build the CA, as easyrsa init-pki && easyrsa build-ca nopass
  clientvpn.pki.vpn_ca:
    pki_dir: /srv/clientvpn/pki

- name: Build a CA with an encrypted key and a name of our own, in another PKI
  clientvpn.pki.vpn_ca:
    pki_dir: /srv/example-corp/pki
    common_name: Example Corp Client VPN CA
    passphrase: "{{ vault_clientvpn_ca_passphrase }}"

- name: Adopt a PKI that easy-rsa built (nothing changes when it matches)
  clientvpn.pki.vpn_ca:
    pki_dir: /home/admin/easy-rsa/easyrsa3/pki
  register: adopted

- name: A new PKI laid out as easy-rsa 3.2 lays it out (inline files included)
  clientvpn.pki.vpn_ca:
    pki_dir: /srv/clientvpn-32/pki
    easyrsa_version: "3.2"
- name: Renew the CA certificate a year before it expires, keeping its key (the pki role does this)
  clientvpn.pki.vpn_ca:
    pki_dir: /srv/clientvpn/pki
    renew_before_days: 365
- name: Replace a CA on purpose (backs up the old one)
  clientvpn.pki.vpn_ca:
    pki_dir: /srv/clientvpn/pki
    common_name: New CA
    force: true
"""

RETURN = r"""
action:
  description: What happened to the CA.
  returned: success
  type: str
  choices: [created, unchanged, encrypted, renewed, replaced]
  sample: created
changes:
  description: One sentence per change made (or, in check mode, to be made).
  returned: success
  type: list
  elements: str
  sample: ["create directory /srv/clientvpn/pki", "create the CA 'Easy-RSA CA' (RSA 2048)"]
easyrsa_version:
  description: The easy-rsa version whose layout the PKI follows (see O(easyrsa_version)).
  returned: success
  type: str
  sample: "3.2"
pki_dir:
  description: The PKI directory.
  returned: success
  type: str
  sample: /srv/clientvpn/pki
ca_certificate:
  description: Path of the CA certificate.
  returned: success
  type: str
  sample: /srv/clientvpn/pki/ca.crt
ca_private_key:
  description: Path of the CA key. The key itself is never returned.
  returned: success
  type: str
  sample: /srv/clientvpn/pki/private/ca.key
common_name:
  description: Common name of the CA.
  returned: success
  type: str
  sample: Easy-RSA CA
key:
  description: Key type and size of the CA.
  returned: success
  type: str
  sample: RSA 2048
serial:
  description: Serial number of the CA certificate, upper-case hex. Absent in check mode for a CA not yet created.
  returned: when the CA certificate exists
  type: str
  sample: 7216B85FDAFF85F445CE92A79E0276F15BF18D5B
not_before:
  description: Start of validity (ISO 8601, UTC).
  returned: when the CA certificate exists
  type: str
  sample: "2026-11-24T20:06:30+00:00"
not_after:
  description: End of validity (ISO 8601, UTC).
  returned: when the CA certificate exists
  type: str
  sample: "2036-11-22T20:06:30+00:00"
subject_alt_names:
  description: Subject alternative names of the CA certificate (normally none).
  returned: success
  type: list
  elements: str
  sample: []
backup_files:
  description: Backups made before replacing the CA (O(force=true)).
  returned: success
  type: list
  elements: str
  sample: ["/srv/clientvpn/pki/ca.crt.12345.2026-11-24@20:06:30~"]
"""

from ansible_collections.clientvpn.pki.plugins.module_utils.module_runner import run_module
from ansible_collections.clientvpn.pki.plugins.module_utils.specs.vpn_ca import SPEC


def main():
    run_module(SPEC)


if __name__ == "__main__":
    main()
