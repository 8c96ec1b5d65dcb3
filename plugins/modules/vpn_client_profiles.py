#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: clientvpn.pki contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: vpn_client_profiles
short_description: Write one ready-to-use .ovpn profile per Client VPN user
version_added: 0.1.0
description:
  - Takes the endpoint's client configuration - exported from the endpoint
    (C(aws ec2 export-client-vpn-client-configuration)) with O(client_vpn_endpoint_id), or a file given
    with O(config_file) - and writes C(<dest>/<name>.ovpn) for every name with the client's certificate and
    key inlined as C(<cert>) and C(<key>) blocks. Any C(cert), C(key) or C(pkcs12) line or block already in
    the configuration is removed first.
  - Every profile in one module run. The folder is 0700 and each profile 0600 (it holds a private key).
  - Idempotent - a profile whose content and mode already match is left alone.
author:
  - clientvpn.pki contributors (@clientvpn)
requirements:
  - python >= 3.9 (on the host that runs the module)
  - cryptography >= 42.0
  - boto3 >= 1.12.0 and botocore >= 1.15.0, with O(client_vpn_endpoint_id)
attributes:
  check_mode:
    support: full
    description: Nothing is written (the export call still runs with O(client_vpn_endpoint_id)).
  diff_mode:
    support: none
    description: Profiles hold private keys; they are never diffed.
  safe_file_operations:
    support: full
    description: Written to a temporary file in O(dest), then moved into place.
  idempotent:
    support: full
    description: Content and mode are compared first.
options:
  pki_dir:
    description:
      - The easy-rsa PKI directory with C(issued/<name>.crt) and C(private/<name>.key).
    type: path
    required: true
  names:
    description:
      - The clients whose profiles to write.
      - O(names), O(names_file) or both (their names together) are required.
    type: list
    elements: str
    aliases: [name]
  names_file:
    version_added: 0.2.0
    description:
      - A text file that lists more clients, one per line (blank lines and lines starting with C(#) are skipped), on
        the host the module runs on, by its absolute path. With thousands of clients it spares Ansible a list to template.
    type: path
  dest:
    description:
      - Folder for the profiles. Created 0700 when missing.
    type: path
    required: true
  config_file:
    description:
      - A client configuration file (for example one exported earlier). Exclusive with O(client_vpn_endpoint_id).
      - In check mode a file that does not exist yet (an earlier task of the run would write it) is no error -
        every profile is reported as to be written.
    type: path
  client_vpn_endpoint_id:
    description:
      - Export the configuration from this endpoint. Exclusive with O(config_file).
    type: str
extends_documentation_fragment:
  - clientvpn.pki.aws
seealso:
  - module: clientvpn.pki.vpn_cert
"""

EXAMPLES = r"""
- name: Profiles from the endpoint's configuration
  clientvpn.pki.vpn_client_profiles:
    pki_dir: /srv/clientvpn/pki
    names: [client1.domain.tld, alice.example.com]
    dest: /srv/clientvpn/profiles
    client_vpn_endpoint_id: cvpn-endpoint-0123456789abcdef0
    region: eu-west-1

- name: Profiles from a configuration file
  clientvpn.pki.vpn_client_profiles:
    pki_dir: /srv/clientvpn/pki
    names: [client1.domain.tld]
    dest: /srv/clientvpn/profiles
    config_file: /srv/clientvpn/downloaded-client-config.ovpn
"""

RETURN = r"""
dest:
  description: The profiles folder.
  returned: success
  type: str
  sample: /srv/clientvpn/profiles
profiles:
  description: Path of each profile, by name.
  returned: success
  type: dict
  sample: {"client1.domain.tld": "/srv/clientvpn/profiles/client1.domain.tld.ovpn"}
files:
  description: What was done per name - V(written), V(chmod) or V(unchanged).
  returned: success
  type: dict
  sample: {"client1.domain.tld": "written"}
changes:
  description: One sentence per change.
  returned: success
  type: list
  elements: str
"""

from ansible_collections.clientvpn.pki.plugins.module_utils.module_runner import run_module
from ansible_collections.clientvpn.pki.plugins.module_utils.specs.vpn_client_profiles import SPEC


def main():
    run_module(SPEC)


if __name__ == "__main__":
    main()
