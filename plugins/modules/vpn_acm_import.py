#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: clientvpn.pki contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: vpn_acm_import
short_description: Import a Client VPN certificate into AWS Certificate Manager, and keep it there
version_added: 0.1.0
description:
  - Imports a certificate, its private key and its CA chain into ACM, as step 7 of the AWS Client VPN mutual
    authentication procedure does with C(aws acm import-certificate). Files are read on the host where the
    module runs, so keys never pass through the controller.
  - "Two modes, one per task. From a PKI: O(pki_dir) with O(name) (one certificate) or O(names) (many) - the
    certificate C(issued/<name>.crt), its key C(private/<name>.key) and the chain C(ca.crt) come from the easy-rsa
    layout of O(pki_dir). Own files: O(certificate), O(private_key) and O(certificate_chain) are the paths of a
    certificate that is in no PKI, and O(name) and O(pki_dir) say under which name and in which directory its ARN
    is recorded. Either way the name is given, never guessed from a file's path."
  - "Finds the certificate it manages without scanning the account: O(certificate_arn) when given, else the ARN
    it recorded in O(pki_dir) (C(acm-certificates.json), per region and O(name)) after the first import, verified
    to still exist, else the tags it set at first import (C(clientvpn.pki:name) and C(clientvpn.pki:ca-sha256),
    the CA's fingerprint), looked up only among certificates whose domain matches."
  - Idempotent by comparing what ACM holds with the local files. Same certificate and chain - nothing is
    written, and a run with nothing to change makes one ACM read. Another certificate (renewed) - it is
    re-imported into the same ARN, which the Client VPN endpoint follows, without tags in that call (ACM
    forbids them); tags are then reconciled in separate calls. Extra certificates an endpoint returns after the
    chain are ignored.
  - Validates before any API call - the key belongs to the certificate, RSA 1024 or 2048 (Client VPN), a CN,
    for a server certificate a DNS SAN and extendedKeyUsage serverAuth, valid now, the chain signs the
    certificate, the key is unencrypted PEM under 5,120 bytes (an encrypted key is decrypted in memory with
    O(private_key_passphrase)).
  - AWS errors come back as one message with the AWS error code. Throttling is retried by botocore's
    C(standard) retry mode.
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
    description: No API write; RV(action) says whether a real run would import, re-import, delete or leave it.
  diff_mode:
    support: partial
    description: Shows the serial, expiry and domain that ACM would hold. Never key material.
  idempotent:
    support: full
    description: What ACM holds is compared with the local files first; a second run writes nothing.
options:
  pki_dir:
    description:
      - The easy-rsa PKI directory. Without O(certificate), the certificate, key and chain of each name are read from
        its layout (C(issued/<name>.crt), C(private/<name>.key), C(ca.crt)).
      - In both modes, the directory in which the ARN is recorded (C(acm-certificates.json)), per region and name.
      - Required, except with O(state=absent) and O(certificate_arn).
      - Before 0.2.0 it defaulted to the easy-rsa PKI of O(certificate); it is no longer guessed from a path.
    type: path
  name:
    description:
      - Name of the certificate - in a PKI, the V(server) of C(issued/server.crt) - under which its ARN is recorded
        and which the C(clientvpn.pki:name) tag holds.
      - Required, except with O(state=absent) and O(certificate_arn).
      - Before 0.2.0 it defaulted to the file name of O(certificate); it is no longer guessed from a path.
    type: str
  names:
    description:
      - Many certificates of O(pki_dir) by name (client certificates, typically) in one module run - as O(certificates)
        with only names. The result is in RV(certificates).
    type: list
    elements: str
    version_added: 0.2.0
  certificate:
    description:
      - Own files - path of the PEM certificate to import when it is in no PKI. Requires O(private_key),
        O(certificate_chain), O(name) and O(pki_dir).
      - Leave it unset to import the certificate O(name) of O(pki_dir).
    type: path
  private_key:
    description:
      - Own files - path of the private key of O(certificate).
    type: path
  private_key_passphrase:
    description:
      - Passphrase of an encrypted O(private_key). The key is decrypted in memory only.
    type: str
  certificate_chain:
    description:
      - Path of the PEM chain - the CA certificate (C(ca.crt)), intermediates first, root last, leaf excluded.
      - Required with O(certificate). From a PKI it defaults to the PKI's C(ca.crt).
    type: path
  certificate_arn:
    description:
      - Import into (or delete) this ARN. Without it the module finds the ARN itself (see the description).
    type: str
  certificates:
    description:
      - Many certificates in one module run (client certificates, typically), instead of O(certificate),
        O(private_key), O(private_key_passphrase), O(certificate_arn) and O(name). The other options apply to all.
      - Items with a name only are certificates of O(pki_dir); items with O(certificates[].certificate) and
        O(certificates[].private_key) are own files. One task holds one kind.
      - All are validated before the first API call, the ARN record is read once, and each certificate then costs
        only its own API calls (ACM has no batch import, and throttles ImportCertificate, so they are made one after
        another). Each import is recorded as soon as it is done.
      - Their ARNs are recorded in O(pki_dir).
    type: list
    elements: dict
    suboptions:
      name:
        description: As O(name); names must differ.
        type: str
      certificate:
        description: As O(certificate) (own files).
        type: path
      private_key:
        description: As O(private_key) (own files).
        type: path
      private_key_passphrase:
        description: As O(private_key_passphrase).
        type: str
      certificate_arn:
        description: As O(certificate_arn).
        type: str
  type:
    description:
      - V(server) checks the server rules (DNS SAN, serverAuth); V(client) only the common ones.
    type: str
    choices: [server, client]
    default: server
  tags:
    description:
      - Tags to set. The C(clientvpn.pki:) identity tags are always added.
      - Unset, existing tags are left as they are.
    type: dict
  purge_tags:
    description:
      - Remove tags not in O(tags) (never the identity tags). Only when O(tags) is given.
    type: bool
    default: true
  state:
    description:
      - V(present) imports or re-imports; V(absent) deletes the certificate from ACM.
    type: str
    choices: [present, absent]
    default: present
extends_documentation_fragment:
  - clientvpn.pki.aws
notes:
  - Real ACM keeps tags on re-import; some test endpoints drop them. The tags are checked and restored after a re-import either way.
seealso:
  - module: clientvpn.pki.vpn_cert
  - name: ImportCertificate
    description: The ACM API this module calls.
    link: https://docs.aws.amazon.com/acm/latest/APIReference/API_ImportCertificate.html
"""

EXAMPLES = r"""
- name: Import the server certificate of the PKI with its CA, as aws acm import-certificate does
  clientvpn.pki.vpn_acm_import:
    pki_dir: /srv/clientvpn/pki
    name: server
    region: eu-west-1
    tags:
      Project: client-vpn
  register: server_acm

- name: Re-import a renewed certificate into the ARN the endpoint uses
  clientvpn.pki.vpn_acm_import:
    pki_dir: /srv/clientvpn/pki
    name: server
    certificate_arn: arn:aws:acm:eu-west-1:123456789012:certificate/12345678-1234-1234-1234-123456789012
    region: eu-west-1

- name: Connection options once for the whole block
  module_defaults:
    group/clientvpn.pki.aws:
      region: eu-west-1
      profile: vpn-admin
  block:
    - name: Import a client certificate (only needed when its CA differs from the server's)
      clientvpn.pki.vpn_acm_import:
        pki_dir: /srv/clientvpn/pki
        name: client1.domain.tld
        type: client

- name: Import every client certificate in one module run
  clientvpn.pki.vpn_acm_import:
    pki_dir: /srv/clientvpn/pki
    names: [alice.example.com, bob.example.com]
    type: client
    region: eu-west-1
  register: clients_acm

- name: Import a certificate of your own, in no PKI - its files, and the name and directory its ARN is recorded under
  clientvpn.pki.vpn_acm_import:
    certificate: /srv/vpn-certs/vpn.example.com.crt
    private_key: /srv/vpn-certs/vpn.example.com.key
    certificate_chain: /srv/vpn-certs/chain.pem
    name: vpn.example.com
    pki_dir: /srv/vpn-certs
    region: eu-west-1

- name: Delete the server certificate from ACM
  clientvpn.pki.vpn_acm_import:
    name: server
    pki_dir: /srv/clientvpn/pki
    state: absent
    region: eu-west-1
"""

RETURN = r"""
certificate_arn:
  description: ARN of the certificate in ACM. Null in check mode before a first import, and when nothing was found to delete.
  returned: success, without O(certificates) or O(names)
  type: str
  sample: arn:aws:acm:eu-west-1:123456789012:certificate/12345678-1234-1234-1234-123456789012
action:
  description: What was done (or, in check mode, would be).
  returned: success, without O(certificates) or O(names)
  type: str
  choices: [imported, reimported, unchanged, deleted]
  sample: imported
certificates:
  description:
    - With O(certificates) or O(names), the result of each certificate by name - C(certificate_arn), C(action), C(changed),
      C(serial), C(not_after), C(domain), C(tags), as returned for one certificate.
  returned: with O(certificates) or O(names)
  type: dict
  sample:
    alice.example.com:
      certificate_arn: arn:aws:acm:eu-west-1:123456789012:certificate/12345678-1234-1234-1234-123456789012
      action: imported
      changed: true
      serial: 5E0F1C46A8F1B0E2D6C0B9A1E8D7C6B5
region:
  description: The region used.
  returned: success
  type: str
  sample: eu-west-1
name:
  description: The name under which the ARN is recorded and tagged.
  returned: success, without O(certificates) or O(names)
  type: str
  sample: server
serial:
  description: Serial number of the local certificate, upper-case hex.
  returned: when O(state=present), without O(certificates) or O(names)
  type: str
  sample: F7D1FB8D1FD51DFBFEE8D31C98795DF1
not_after:
  description: End of validity of the local certificate (ISO 8601, UTC).
  returned: when O(state=present), without O(certificates) or O(names)
  type: str
  sample: "2029-02-26T20:06:30+00:00"
domain:
  description: The certificate's domain (first DNS SAN, else the CN).
  returned: when O(state=present), without O(certificates) or O(names)
  type: str
  sample: server
tags:
  description: The tags the certificate carries after the run.
  returned: when O(state=present), without O(certificates) or O(names)
  type: dict
  sample: {"clientvpn.pki:name": "server", "clientvpn.pki:ca-sha256": "9f86d0...", "Project": "client-vpn"}
api_calls:
  description: How many ACM read and write calls this run made (all certificates together).
  returned: success
  type: dict
  sample: {"read": 1, "write": 0}
"""

from ansible_collections.clientvpn.pki.plugins.module_utils.module_runner import run_module
from ansible_collections.clientvpn.pki.plugins.module_utils.specs.vpn_acm_import import SPEC


def main():
    run_module(SPEC)


if __name__ == "__main__":
    main()
