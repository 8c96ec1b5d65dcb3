#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: clientvpn.pki contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: vpn_stage
short_description: Copy Client VPN certificates and keys into a staging folder, all in one task
version_added: 0.1.0
description:
  - Step 6 of the AWS Client VPN mutual authentication procedure - create the custom folder and copy
    C(ca.crt), the server certificate and key, and the client certificates and keys into it.
  - The folder is mode 0700, keys 0600, certificates 0644. Files are written atomically.
  - Every file is compared and copied in one module run, so hundreds of clients cost one task.
  - Files on the managed host are copied there; nothing passes through the controller.
author:
  - clientvpn.pki contributors (@clientvpn)
attributes:
  check_mode:
    support: full
    description: Nothing is written. A source that does not exist yet counts as a copy, because an earlier task of the same check run would have created it.
  diff_mode:
    support: none
    description: Key material is never diffed.
  safe_file_operations:
    support: full
    description: Files are written to a temporary file in the folder, then moved into place.
  idempotent:
    support: full
    description: A file whose content and mode already match is left alone.
options:
  dest:
    description:
      - The staging folder. Created with mode 0700 when missing.
    type: path
    required: true
  certificates:
    description:
      - Certificate files to copy (mode 0644).
    type: list
    elements: path
    default: []
  private_keys:
    description:
      - Private key files to copy (mode 0600). Their content is never logged nor returned.
    type: list
    elements: path
    default: []
seealso:
  - module: clientvpn.pki.vpn_cert
"""

EXAMPLES = r"""
- name: Stage what the seed procedure copies by hand
  clientvpn.pki.vpn_stage:
    dest: ~/custom_folder
    certificates:
      - /srv/clientvpn/pki/ca.crt
      - /srv/clientvpn/pki/issued/server.crt
      - /srv/clientvpn/pki/issued/client1.domain.tld.crt
    private_keys:
      - /srv/clientvpn/pki/private/server.key
      - /srv/clientvpn/pki/private/client1.domain.tld.key
"""

RETURN = r"""
dest:
  description: The staging folder.
  returned: success
  type: str
  sample: /root/custom_folder
files:
  description: Per file name in the folder, what was done - V(copied), V(chmod) or V(unchanged).
  returned: success
  type: dict
  sample: {"ca.crt": "copied", "server.key": "unchanged"}
changes:
  description: One sentence per change.
  returned: success
  type: list
  elements: str
  sample: ["create directory /root/custom_folder", "copied ca.crt"]
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.clientvpn.pki.plugins.module_utils.module_runner import run_backend
from ansible_collections.clientvpn.pki.plugins.module_utils.staging import StagingFolder


def main():
    module = AnsibleModule(
        argument_spec=dict(
            dest=dict(type="path", required=True),
            certificates=dict(type="list", elements="path", default=[]),
            # paths, not key material
            private_keys=dict(type="list", elements="path", default=[], no_log=False),
        ),
        supports_check_mode=True,
    )
    params = module.params
    run_backend(module, lambda: StagingFolder(module, params["dest"], params["certificates"], params["private_keys"]))


if __name__ == "__main__":
    main()
