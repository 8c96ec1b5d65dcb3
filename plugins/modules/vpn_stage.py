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
  - The folder is what is handed to others, so it should hold only what is current. The module records each
    file it staged, with the sha256 of what it wrote, in a manifest in the folder (C(.clientvpn-stage.json),
    mode 0600). O(prune) and O(remove) delete only files recorded there whose content is still what was staged;
    files it never staged (C(acm-arns.json), files put there by hand) and staged files edited since are left
    alone and reported in RV(left_alone).
  - Files staged by a version of this module that kept no manifest are recorded when they are staged
    again; one no longer in the list by then is never removed - delete it by hand.
author:
  - clientvpn.pki contributors (@clientvpn)
attributes:
  check_mode:
    support: full
    description:
      - Nothing is written nor removed; the result (RV(changes), RV(removed), RV(left_alone)) is what a real run would report.
      - A source that does not exist yet counts as a copy, because an earlier task of the same check run would have created it.
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
  prune:
    description:
      - Remove the files recorded in the manifest that are not among this run's O(certificates) and
        O(private_keys) (for example the key and certificate of a client dropped from the list).
      - Only files this module staged, still holding what it wrote, are removed.
    type: bool
    default: false
  remove:
    description:
      - File names in O(dest) to remove, for example V(bob.example.com.crt) and V(bob.example.com.key)
        after that client was revoked.
      - Removed only when the manifest records it and its content is still what was staged. A name it
        never staged (or already gone) is left alone and reported in RV(left_alone).
      - A name cannot be both staged by this run and removed.
    type: list
    elements: str
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
    # A client dropped from the lists above: its staged key and certificate go.
    prune: true

- name: A client was revoked - take its key and certificate out of the folder
  clientvpn.pki.vpn_stage:
    dest: ~/custom_folder
    remove:
      - bob.example.com.crt
      - bob.example.com.key
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
  sample: ["create directory /root/custom_folder", "copied ca.crt", "removed bob.example.com.key",
           "record 5 staged file(s) in .clientvpn-stage.json"]
removed:
  description: Names of the files removed from the folder (by O(prune) or O(remove)); in check mode, those a real run would remove.
  returned: success
  type: list
  elements: str
  sample: ["bob.example.com.crt", "bob.example.com.key"]
left_alone:
  description:
    - Per file name asked for in O(remove), or due to O(prune), that is not removed - why.
    - "The reasons: V(not staged by vpn_stage: left alone) (not in the manifest), V(not in the folder),
      V(changed since it was staged: left alone and no longer tracked) (also a warning),
      V(no longer a regular file: left alone and no longer tracked) (also a warning)."
  returned: success
  type: dict
  sample: {"notes.txt": "not staged by vpn_stage: left alone"}
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
            prune=dict(type="bool", default=False),
            remove=dict(type="list", elements="str", default=[]),
        ),
        supports_check_mode=True,
    )
    params = module.params
    run_backend(
        module,
        lambda: StagingFolder(module, params["dest"], params["certificates"], params["private_keys"], prune=params["prune"], remove=params["remove"]),
    )


if __name__ == "__main__":
    main()
