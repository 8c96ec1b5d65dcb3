#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: clientvpn.pki contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: vpn_pki_s3
short_description: Keep the PKI in S3 - pull it into a working copy under a lock, push back what changed
version_added: 0.2.0
description:
  - Keeps an easy-rsa PKI in an S3 bucket under a prefix, for runs that start from nothing and may run several at once
    (AWX jobs in throwaway containers). The other modules of the collection keep working on a local folder, which is a
    working copy - V(pull), then the roles, then V(push), with V(release) in an C(always) section.
  - "V(pull): takes the lock C(<prefix>/.lock), lists the prefix, downloads every object into O(pki_dir) (folders 0700,
    files 0600 from their first byte) and decrypts the encrypted keys in memory. The working copy records what it pulled
    (each object's ETag and content hash) in C(<pki_dir>/.clientvpn-s3.json), which is never pushed. O(pki_dir) must be empty
    or missing, or a working copy of the same O(bucket) and O(prefix) without unpushed changes (it is then brought up to date)."
  - "V(push): compare-and-swap - if anything in the prefix differs from what was pulled (an object changed, added or removed),
    nothing is pushed. Otherwise it uploads only the files whose content changed or that are new, and deletes the objects whose
    file was removed, each write conditional on the ETag it replaces (C(If-Match), C(If-None-Match: *) for a new object).
    Folders first, then files, then C(index.txt.attr), C(serial) and C(index.txt) last, then deletions: a push that dies half-way
    leaves files without their rows, which the next run picks up, as on disk. Then it releases the lock (O(release_lock))."
  - "The lock is a lease: a run that died cannot hold it for longer than O(lock_ttl_seconds), judged on S3's clock. A run that
    finds it held waits, polling, up to O(lock_wait_seconds), then fails naming the holder, when it took the lock and when its
    lease ends. An expired lock is taken over (a warning says whose). S3 conditional writes (C(If-None-Match), C(If-Match) on
    PutObject and DeleteObject) make the lock: no DynamoDB table."
  - "Private keys never reach S3 in plaintext: with O(kms_key_id), the CA key C(private/ca.key) always, and every other private key
    (C(private/*), C(revoked/private_by_serial/*), C(inline/private/*), any file holding a PEM private key) when O(encrypt_private_keys),
    are encrypted client-side - KMS GenerateDataKey, AES-256-GCM in memory - and stored as C(<path>.kms). Reading them takes kms:Decrypt
    with the encryption context naming the bucket, the prefix and the scope (C(ca-key) or C(private-keys)). See C(docs/pki-in-s3.md)."
  - Refuses before any write, to S3 or to disk, with a message naming the option and the fix - a missing bucket, a denied S3 or KMS
    permission, a wrong or disabled KMS key, a prefix that holds something that is not a PKI, a folder that is not a working copy.
author:
  - clientvpn.pki contributors (@clientvpn)
requirements:
  - python >= 3.9 (on the host that runs the module)
  - boto3 and botocore of 2024-11-25 or later (S3 conditional writes; checked when the module runs)
  - cryptography >= 42.0
attributes:
  check_mode:
    support: full
    description: Lists the prefix and says what V(pull) would download or V(push) would upload and delete; writes nothing locally or in S3 and takes no lock.
  diff_mode:
    support: none
    description: The result lists the files pulled, uploaded and deleted; there is no diff of their content (keys among them).
  idempotent:
    support: full
    description:
      - A V(push) with nothing changed uploads nothing and reports no change (it still releases the lock when asked); a V(pull) into an
        up-to-date working copy downloads nothing. C(changed) speaks of the PKI; what was done with the lock is in RV(lock).
options:
  pki_dir:
    description:
      - The working copy, a local folder (created 0700 when missing). Point the other modules' O(pki_dir) at it between V(pull) and V(push).
    type: path
    required: true
  bucket:
    description:
      - The S3 bucket that holds the PKI. It must exist; it is never created here (its versioning, encryption and policy are yours).
    type: str
    required: true
  prefix:
    description:
      - The key prefix of the PKI in O(bucket), without slashes at either end (V(clientvpn/pki) keeps C(clientvpn/pki/index.txt)).
        An empty prefix is the whole bucket.
    type: str
    required: true
  state:
    description:
      - V(pull) takes the lock and brings the PKI into O(pki_dir); V(push) sends back what changed and releases the lock;
        V(release) only releases the lock this working copy holds (for an C(always) section).
    type: str
    choices: [pull, push, release]
    required: true
  kms_key_id:
    description:
      - The symmetric KMS key (key ID, ARN, alias name C(alias/...) or alias ARN) that encrypts the keys on V(push).
      - Without it a V(push) refuses to store the CA key (unless O(allow_plaintext_ca_key)) and, with O(encrypt_private_keys), any private key.
      - On V(pull) it is optional (each encrypted object names its key); when set, an object encrypted under another key is refused.
    type: str
  encrypt_private_keys:
    description:
      - Encrypt every private key, not only the CA's, with O(kms_key_id). V(false) keeps the keys of the server and the clients in plaintext
        in S3 (the bucket's policy and server-side encryption then guard them alone).
    type: bool
    default: true
  allow_plaintext_ca_key:
    description:
      - Push the CA key in plaintext when O(kms_key_id) is not set. Not recommended - anyone who may read the object may sign certificates.
    type: bool
    default: false
  lock:
    description:
      - With V(pull), take the lock. V(false) makes a read-only working copy (for reports) - a V(push) of changes from it is refused.
    type: bool
    default: true
  lock_owner:
    description:
      - Who holds the lock, as the messages of other runs will name it. Default - C(awx-job-<id>@<host>) from the environment variable
        C(JOB_ID) or C(AWX_JOB_ID), else C(<host>:<pid>). Ownership itself is proven by the lock object's ETag, kept in the working copy.
    type: str
  lock_ttl_seconds:
    description:
      - How long the lock lasts without a renewal (a push renews it before writing). Give more than a whole play lasts; a run that died
        blocks the others for at most this long.
    type: int
    default: 3600
  lock_wait_seconds:
    description:
      - How long a V(pull) waits for a lock held by another run before it fails.
    type: int
    default: 600
  release_lock:
    description:
      - With V(push), release the lock afterwards. V(false) keeps it, for a later V(push) of the same working copy.
    type: bool
    default: true
extends_documentation_fragment:
  - clientvpn.pki.aws
notes:
  - O(endpoint_url) is used for both S3 and KMS.
  - Modes are not stored in S3 - a pull writes every file 0600 and every folder 0700, as easy-rsa (umask 077) does.
  - "IAM: s3:ListBucket on the bucket (prefix condition), s3:GetObject, s3:PutObject and s3:DeleteObject on the prefix, kms:GenerateDataKey
    (push) and kms:Decrypt (pull) on the key, with the encryption context condition - the policy is in C(docs/pki-in-s3.md)."
seealso:
  - module: clientvpn.pki.vpn_ca
  - module: clientvpn.pki.vpn_cert
  - name: S3 conditional requests
    description: The conditional writes the lock and the push rely on.
    link: https://docs.aws.amazon.com/AmazonS3/latest/userguide/conditional-requests.html
"""

EXAMPLES = r"""
- name: Pull the PKI into a working copy, taking the lock
  clientvpn.pki.vpn_pki_s3:
    pki_dir: /srv/clientvpn/pki-work
    bucket: example-clientvpn-pki
    prefix: clientvpn/pki
    state: pull
    region: eu-west-1

- name: Create the CA (on the first run) in the working copy
  clientvpn.pki.vpn_ca:
    pki_dir: /srv/clientvpn/pki-work

- name: Issue a client certificate in the working copy
  clientvpn.pki.vpn_cert:
    pki_dir: /srv/clientvpn/pki-work
    name: [alice.example.com]
    type: client

- name: Push what changed, private keys encrypted with KMS, and release the lock
  clientvpn.pki.vpn_pki_s3:
    pki_dir: /srv/clientvpn/pki-work
    bucket: example-clientvpn-pki
    prefix: clientvpn/pki
    state: push
    kms_key_id: alias/clientvpn-pki
    region: eu-west-1
  register: pushed

- name: Release the lock in any case (in the always section of a block)
  clientvpn.pki.vpn_pki_s3:
    pki_dir: /srv/clientvpn/pki-work
    bucket: example-clientvpn-pki
    prefix: clientvpn/pki
    state: release
    region: eu-west-1

- name: A read-only copy for a report, without the lock
  clientvpn.pki.vpn_pki_s3:
    pki_dir: /srv/clientvpn/pki-report
    bucket: example-clientvpn-pki
    prefix: clientvpn/pki
    state: pull
    lock: false
    region: eu-west-1
"""

RETURN = r"""
state:
  description: The O(state) run.
  returned: success
  type: str
  sample: push
location:
  description: Where the PKI is kept.
  returned: success
  type: str
  sample: s3://example-clientvpn-pki/clientvpn/pki/
files:
  description: How many files were pulled and removed locally (V(pull)), or uploaded and deleted in S3 (V(push)); in check mode, would be.
  returned: with O(state=pull) or O(state=push)
  type: dict
  sample: {"uploaded": 6, "deleted": 0}
pulled:
  description: The files and folders (C(name/)) downloaded into the working copy, at most 100 (the count is in RV(files)).
  returned: with O(state=pull)
  type: list
  elements: str
  sample: ["ca.crt", "index.txt", "private/", "private/ca.key"]
removed:
  description: The files removed from the working copy because S3 no longer has them, at most 100.
  returned: with O(state=pull)
  type: list
  elements: str
  sample: []
uploaded:
  description: The files and folders uploaded, in upload order, at most 100.
  returned: with O(state=push)
  type: list
  elements: str
  sample: ["issued/alice.example.com.crt", "private/alice.example.com.key", "serial", "index.txt"]
deleted:
  description: The objects deleted from the prefix (their file was removed from the working copy), at most 100.
  returned: with O(state=push)
  type: list
  elements: str
  sample: ["reqs/alice.example.com.req"]
lock:
  description:
    - The lock after the run - C(status) (V(acquired), V(renewed), V(taken over), V(released), V(kept), V(gone) - it had been deleted,
      V(not held), V(not taken)), C(owner), C(acquired_at), C(expires_at) (ISO 8601, UTC), C(ttl); after a V(pull), C(waited_seconds)
      and C(taken_over_from) (whose expired lock was taken, or null).
  returned: success
  type: dict
  sample: {"status": "acquired", "owner": "awx-job-4711@automation-job-4711-abcde", "acquired_at": "2026-11-26T03:00:00+00:00",
           "expires_at": "2026-11-26T04:00:00+00:00", "ttl": 3600, "waited_seconds": 0.0, "taken_over_from": null}
aws_requests:
  description: The HTTP requests this run made, retries included, per service (C(s3), C(kms)) - C(total) and per operation.
  returned: success
  type: dict
  sample: {"s3": {"total": 2, "ListObjectsV2": 1, "DeleteObject": 1}}
"""

from ansible_collections.clientvpn.pki.plugins.module_utils.module_runner import run_module
from ansible_collections.clientvpn.pki.plugins.module_utils.specs.vpn_pki_s3 import SPEC


def main():
    run_module(SPEC)


if __name__ == "__main__":
    main()
