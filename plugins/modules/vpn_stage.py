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
  - The files come by name from an easy-rsa PKI - O(pki_dir) and O(names), the PKI's layout gives
    C(ca.crt), C(issued/<name>.crt) and C(private/<name>.key) - or as paths (O(certificates), O(private_keys)),
    or both.
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
requirements:
  - python >= 3.9 (on the host that runs the module)
  - cryptography >= 42.0
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
  pki_dir:
    description:
      - An easy-rsa PKI directory to stage files of, picked by O(pki_files) - its C(ca.crt), and the certificate
        and key of each of O(names).
    type: path
    version_added: 0.2.0
  names:
    description:
      - Names of certificates in O(pki_dir) (the server's and the clients') whose C(issued/<name>.crt)
        and C(private/<name>.key) to stage. Requires O(pki_dir).
    type: list
    elements: str
    version_added: 0.2.0
  names_file:
    version_added: 0.2.0
    description:
      - A text file that lists more names to stage from O(pki_dir), one per line (blank lines and lines starting with
        C(#) are skipped), on the host the module runs on, by its absolute path. Requires O(pki_dir). With thousands of clients it spares
        Ansible a list to template (see M(clientvpn.pki.vpn_cert)'s O(clientvpn.pki.vpn_cert#module:names_file)).
      - A file that lists nobody stages only what the other options name.
    type: path
  pki_files:
    description:
      - Which files of O(pki_dir) to stage - V(ca_certificate) (C(ca.crt)), V(certificate) (C(issued/<name>.crt) of
        each of O(names), mode 0644) and V(private_key) (C(private/<name>.key) of each, mode 0600).
    type: list
    elements: str
    choices: [ca_certificate, certificate, private_key]
    default: [ca_certificate, certificate, private_key]
    version_added: 0.2.0
  certificates:
    description:
      - Certificate files to copy (mode 0644), by path; staged with the files of O(pki_dir), if any.
    type: list
    elements: path
    default: []
  private_keys:
    description:
      - Private key files to copy (mode 0600), by path. Their content is never logged nor returned.
    type: list
    elements: path
    default: []
  prune:
    version_added: 0.2.0
    description:
      - Remove the files recorded in the manifest that are not among this run's O(certificates) and
        O(private_keys), nor among the files of O(pki_dir) and O(names) (for example the key and certificate of a
        client dropped from the list).
      - Only files this module staged, still holding what it wrote, are removed.
    type: bool
    default: false
  remove:
    version_added: 0.2.0
    description:
      - File names in O(dest) to remove, for example V(bob.example.com.crt) and V(bob.example.com.key)
        after that client was revoked.
      - Removed only when the manifest records it and its content is still what was staged. A name it
        never staged (or already gone) is left alone and reported in RV(left_alone).
      - A name cannot be both staged by this run and removed.
      - With nothing to stage and no O(dest) folder, nothing is done (the folder is not created to remove nothing).
    type: list
    elements: str
    default: []
  report:
    version_added: 0.2.0
    description:
      - V(all) lists every file in RV(files). V(changed) lists only the files copied or whose mode was set, which keeps
        the result small when thousands of files are staged (the role's C(stage_report); the mutual_auth playbook sets it).
    type: str
    choices: [all, changed]
    default: all
  cache_dir:
    version_added: 0.2.0
    description:
      - A folder for a cache of the SHA-256 of the files this module has read - the sources and their staged copies - so
        that a run over thousands of unchanged files does not read them again (the stage role's C(stage_cache_dir),
        C(~/.cache/clientvpn.pki) by default). Unset, no cache is used and every file is read and compared.
      - Safe to lose and never less strict - a file is skipped only when its device, inode, size, mtime and ctime are
        those recorded with its SHA-256, and a source and its staged copy are left unread only when both are so known,
        hold the same SHA-256, and the copy is a regular file with the mode wanted. Only the kernel sets a ctime, on
        every change of content or metadata, so a file changed in any way (same size, mtime set back with C(touch -d))
        is read, compared and copied again. A stamp is recorded only for a file changed more than 2 seconds before,
        so files staged by this run are read once more by the next ones until they are older.
      - Still done on every run - the C(stat) of every source and staged file, its type and mode, the manifest, and
        every decision made from them. The cache is written only outside check mode, 0600 in a 0700 folder
        (one file per staging folder, C(staged-<hash of its path>.sqlite)); one that another user could have written
        is ignored, with a warning. See C(docs/performance.md).
    type: path
seealso:
  - module: clientvpn.pki.vpn_cert
"""

EXAMPLES = r"""
- name: Stage what the seed procedure copies by hand - ca.crt, and each name's certificate and key
  clientvpn.pki.vpn_stage:
    dest: ~/custom_folder
    pki_dir: /srv/clientvpn/pki
    names: [server, client1.domain.tld]
    # A client dropped from the names above: its staged key and certificate go.
    prune: true

- name: The same, by path
  clientvpn.pki.vpn_stage:
    dest: ~/custom_folder
    certificates:
      - /srv/clientvpn/pki/ca.crt
      - /srv/clientvpn/pki/issued/server.crt
      - /srv/clientvpn/pki/issued/client1.domain.tld.crt
    private_keys:
      - /srv/clientvpn/pki/private/server.key
      - /srv/clientvpn/pki/private/client1.domain.tld.key
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
  description: Per file name in the folder, what was done - V(copied), V(chmod) or V(unchanged); with O(report=changed), the files copied or chmod-ed only.
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

from ansible_collections.clientvpn.pki.plugins.module_utils.module_runner import run_module
from ansible_collections.clientvpn.pki.plugins.module_utils.specs.vpn_stage import SPEC


def main():
    run_module(SPEC)


if __name__ == "__main__":
    main()
