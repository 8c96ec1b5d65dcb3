#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: clientvpn.pki contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: vpn_cert
short_description: Issue AWS Client VPN server and client certificates from an easy-rsa compatible CA
version_added: 0.1.0
description:
  - Issues server and client certificates and their keys, signed by the CA that M(clientvpn.pki.vpn_ca)
    keeps in O(pki_dir), the way C(easyrsa build-server-full) and C(easyrsa build-client-full ... nopass) do.
  - Writes C(issued/<name>.crt), C(private/<name>.key) (unencrypted PKCS#8, mode 0600),
    C(reqs/<name>.req) and C(certs_by_serial/<SERIAL>.pem), and records each certificate in C(index.txt)
    and C(serial) exactly as easy-rsa does, with random 128-bit serials. C(easyrsa show-cert),
    C(easyrsa revoke) and C(easyrsa gen-crl) work on the result.
  - Extensions are easy-rsa's. V(server) - basicConstraints CA:FALSE, extendedKeyUsage serverAuth,
    keyUsage digitalSignature and keyEncipherment, key identifiers. V(client) - the same with
    clientAuth and digitalSignature only.
  - O(name) takes a list; every name is handled in one module run, with C(index.txt) read and written
    once, so hundreds of clients cost one task.
  - Idempotent by reading what is on disk. A certificate is kept when its key matches, the current CA
    signed it, CN, SANs, type and key size are as requested, it is not revoked and it does not expire
    within O(renew_before_days). When only the expiry is due the certificate is renewed with the same
    key (ACM re-import cannot change the key type or size, and a kept key leaves nothing to
    redistribute) and the old one is moved where easy-rsa 3.1 renew puts it, C(renewed/issued/<name>.crt)
    (an older one there moves on to C(renewed/certs_by_serial/<SERIAL>.crt)).
    A certificate signed by another CA is reissued and the old file kept as a backup, with a warning.
author:
  - clientvpn.pki contributors (@clientvpn)
requirements:
  - python >= 3.9 (on the host that runs the module)
  - cryptography >= 42.0
attributes:
  check_mode:
    support: full
    description: Nothing is written; the result says per name what a real run would do.
  diff_mode:
    support: full
    description: Shows per name the CN, SANs, key, serial and validity before and after. Never key material.
  safe_file_operations:
    support: full
    description: Files are written to a temporary file in the same directory, then moved into place, under a lock on the PKI directory.
  idempotent:
    support: full
    description: What is on disk is read first; a second run with the same options changes nothing.
options:
  pki_dir:
    description:
      - The easy-rsa PKI directory holding the CA (see M(clientvpn.pki.vpn_ca)).
    type: path
    required: true
  name:
    description:
      - Name of the certificate, or a list of names. Each name becomes C(issued/<name>.crt) and
        C(private/<name>.key).
      - Names are plain file names - letters, digits and C(_ . @ + = -), not starting with C(-) or C(.),
        without C(..), and not C(ca).
      - O(name), O(names_file) or both (their names together) are required.
    type: list
    elements: str
    aliases: [names]
  names_file:
    version_added: 0.2.0
    description:
      - A text file that lists names, one per line (blank lines and lines starting with C(#) are skipped), on the host
        the module runs on, like O(pki_dir), by its absolute path. Its names are added to those of O(name).
      - The way to hand over thousands of names - Ansible templates every element of a list in a task's options
        (about a second per task for 20,000 names in ansible-core 2.19); this module reads the file itself.
      - A file that lists nobody is no error - the task then has no name to issue or revoke.
    type: path
  type:
    description:
      - V(server) for the certificate imported to ACM as the Client VPN server certificate, V(client) for
        the certificates users connect with. Required with O(state=present).
    type: str
    choices: [server, client]
  common_name:
    description:
      - Common name (CN) of the certificate. Defaults to the name. Client VPN requires a CN.
      - Only with a single O(name).
    type: str
  subject_alt_names:
    description:
      - Subject alternative names, in easy-rsa's C(--san) syntax - C(DNS:name), C(IP:address),
        C(email:address), C(URI:uri).
      - Unset, an existing certificate keeps its SANs (as easy-rsa 3.2 renew copies them). For a new V(server)
        certificate the default is C(DNS:<common name>), as easy-rsa 3.1 and the seed procedure's
        C(--san=DNS:server) give; a server certificate without a C(DNS) entry is refused, because ACM and
        Client VPN reject it. For a new V(client) certificate the default is none.
    type: list
    elements: str
  key_size:
    description:
      - Size of new RSA keys. AWS Client VPN accepts 1024 and 2048 only; any other value is an error.
      - An existing key of another size is replaced (and backed up).
    type: int
    default: 2048
  days:
    description:
      - Validity of new certificates, in days (easy-rsa's default).
    type: int
    default: 825
  renew_before_days:
    description:
      - Renew a certificate that expires within this many days. Must be smaller than O(days).
    type: int
    default: 30
  digest:
    description:
      - Signature digest of new certificates.
    type: str
    choices: [sha256, sha384, sha512]
    default: sha256
  ca_passphrase:
    description:
      - Passphrase of the CA key, when the CA key is encrypted (the roles' C(pki_ca_passphrase)).
      - Needed with O(state=revoked) too - the CA key is opened before anything is written, so a revocation
        never stops half-way at the CRL that must follow it.
    type: str
  renew:
    description:
      - Renew every named certificate now, keeping its key, SANs, type and key size, whether or not it is
        due. The old certificate is kept as easy-rsa keeps it (C(renewed/issued/<name>.crt)).
      - Not idempotent by design - each run with V(true) renews. Leave it V(false) in scheduled runs;
        O(renew_before_days) renews what is due.
    type: bool
    default: false
  reissue_revoked:
    version_added: 0.2.0
    description:
      - With O(state=present), a name whose certificate was revoked (its C(index.txt) row is C(R)) is refused by
        default, with an error listing the names - so a name left in a scheduled run's list after the person left
        is never issued a new certificate. V(true) issues it a new certificate with a new key.
    type: bool
    default: false
  state:
    description:
      - V(present) issues the certificates that are missing, differ or are due for renewal.
      - V(revoked) revokes them as C(easyrsa revoke) does - the C(index.txt) row becomes C(R) with the time
        and O(reason), and the files move to C(revoked/{certs,private,reqs}_by_serial/<SERIAL>.*). The
        still-valid certificates earlier renewals of the same name left (same subject and key, under
        C(renewed/)) are revoked too; another name sharing the common name is not touched. A name that is already
        revoked is left alone (V(ok)); a name that was never issued (no C(issued/<name>.crt), no revoked certificate
        with that common name) is an error, so a typo cannot end green. Follow with M(clientvpn.pki.vpn_crl).
      - Crash safe - C(index.txt) is written first, then the files move (the certificate last). A run that finds a
        revocation an earlier run left half-done completes it and says so (action V(completed), and a warning).
    type: str
    choices: [present, revoked]
    default: present
  reason:
    description:
      - Revocation reason written to C(index.txt) and the CRL, with O(state=revoked). Unset, none is recorded (as easy-rsa).
    type: str
    choices: [unspecified, keyCompromise, CACompromise, affiliationChanged, superseded, cessationOfOperation, certificateHold]
  cache_dir:
    version_added: 0.2.0
    description:
      - A folder for a cache of the certificates and keys this module has already parsed and verified, so that a run
        over thousands of unchanged names reads its files without parsing them and verifying their signatures again
        (the roles' C(pki_cache_dir), C(~/.cache/clientvpn.pki) by default). Unset, no cache is used.
      - Safe to lose and never less strict - a record is found by the SHA-256 of the file's bytes, read on every run,
        so a file changed in any way (same size, mtime set back) is parsed and verified again. The cache is kept
        outside the PKI, for the CA certificate it was made with; written only outside check mode, 0600 in a 0700
        folder; one that another user could have written is ignored, with a warning. See C(docs/performance.md).
    type: path
  report:
    version_added: 0.2.0
    description:
      - V(all) returns the detail of every name in RV(certificates). V(changed) returns it only for the names that
        changed, which keeps the result of a task over thousands of names small; RV(summary) counts them all either
        way.
    type: str
    choices: [all, changed]
    default: all
notes:
  - Keys are never printed nor returned; only their paths are.
seealso:
  - module: clientvpn.pki.vpn_ca
"""

EXAMPLES = r"""
- name: Server certificate, as easyrsa --san=DNS:server build-server-full server nopass
  clientvpn.pki.vpn_cert:
    pki_dir: /srv/clientvpn/pki
    name: server
    type: server

- name: Client certificates, all in one task
  clientvpn.pki.vpn_cert:
    pki_dir: /srv/clientvpn/pki
    name:
      - client1.domain.tld
      - alice.example.com
      - bob.example.com
    type: client
  register: clients

- name: Server certificate for a real domain name, from a PKI whose CA key is encrypted
  clientvpn.pki.vpn_cert:
    pki_dir: /srv/example-corp/pki
    name: vpn-server
    common_name: vpn.example.com
    subject_alt_names:
      - DNS:vpn.example.com
    type: server
    ca_passphrase: "{{ vault_clientvpn_ca_passphrase }}"

- name: Renew the server certificate now, keeping its key (then re-import it into the same ACM ARN)
  clientvpn.pki.vpn_cert:
    pki_dir: /srv/clientvpn/pki
    name: server
    type: server
    renew: true

- name: Revoke a user who left (then clientvpn.pki.vpn_crl and clientvpn.pki.vpn_endpoint_crl)
  clientvpn.pki.vpn_cert:
    pki_dir: /srv/clientvpn/pki
    name: bob.example.com
    state: revoked
    reason: affiliationChanged

- name: Show what was created, renewed or left alone
  ansible.builtin.debug:
    msg: "{{ item.key }}: {{ item.value.action }} (serial {{ item.value.serial }}, until {{ item.value.not_after }})"
  loop: "{{ clients.certificates | dict2items }}"
"""

RETURN = r"""
changes:
  description:
    - What the run did (or, in check mode, would do) besides issuing - folders closed to other users (mode 0700),
      temporary files of an interrupted run removed, interrupted revocations completed, names revoked.
  returned: success
  type: list
  elements: str
  sample: ["set mode 0700 on /srv/clientvpn/pki/private (was 0777: other users could enter it)"]
pki_dir:
  description: The PKI directory.
  returned: success
  type: str
  sample: /srv/clientvpn/pki
summary:
  description: How many names had each action (with O(state=present)).
  returned: success
  type: dict
  sample: {"unchanged": 19999, "created": 1}
certificates:
  description: One entry per name, keyed by name; with O(report=changed), only the names that changed.
  returned: success
  type: dict
  contains:
    action:
      description: What happened to this name.
      type: str
      choices: [created, renewed, reissued, registered, revoked, completed, unchanged]
      sample: created
    serials:
      description: With O(state=revoked), the serials revoked for this name (its certificate and those its earlier renewals left).
      type: list
      elements: str
    revocation:
      description: With O(state=revoked), the revocation time and reason as written to C(index.txt).
      type: str
      sample: "261124201245Z,affiliationChanged"
    changed:
      description: Whether anything changed for this name.
      type: bool
    reasons:
      description: Why it was created, renewed or reissued.
      type: list
      elements: str
      sample: ["no private key", "no certificate"]
    type:
      description: V(server) or V(client).
      type: str
    certificate:
      description: Path of the certificate.
      type: str
      sample: /srv/clientvpn/pki/issued/server.crt
    private_key:
      description: Path of the private key. The key itself is never returned.
      type: str
      sample: /srv/clientvpn/pki/private/server.key
    request:
      description: Path of the certificate request.
      type: str
      sample: /srv/clientvpn/pki/reqs/server.req
    backup_files:
      description: Backups made of replaced files (a certificate from another CA, a key of the wrong size).
      type: list
      elements: str
    serial:
      description: Serial number, upper-case hex as in C(index.txt). Absent in check mode for a certificate not yet issued.
      type: str
      sample: F7D1FB8D1FD51DFBFEE8D31C98795DF1
    not_before:
      description: Start of validity (ISO 8601, UTC).
      type: str
    not_after:
      description: End of validity (ISO 8601, UTC).
      type: str
      sample: "2029-02-26T20:06:30+00:00"
    common_name:
      description: Common name of the certificate.
      type: str
      sample: server
    subject_alt_names:
      description: Subject alternative names.
      type: list
      elements: str
      sample: ["DNS:server"]
    key:
      description: Key type and size.
      type: str
      sample: RSA 2048
  sample:
    server:
      action: created
      changed: true
      reasons: ["no private key", "no certificate"]
      type: server
      certificate: /srv/clientvpn/pki/issued/server.crt
      private_key: /srv/clientvpn/pki/private/server.key
      request: /srv/clientvpn/pki/reqs/server.req
      backup_files: []
      serial: F7D1FB8D1FD51DFBFEE8D31C98795DF1
      not_before: "2026-11-24T20:06:30+00:00"
      not_after: "2029-02-26T20:06:30+00:00"
      common_name: server
      subject_alt_names: ["DNS:server"]
      key: RSA 2048
"""

from ansible_collections.clientvpn.pki.plugins.module_utils.module_runner import run_module
from ansible_collections.clientvpn.pki.plugins.module_utils.specs.vpn_cert import SPEC


def main():
    run_module(SPEC)


if __name__ == "__main__":
    main()
