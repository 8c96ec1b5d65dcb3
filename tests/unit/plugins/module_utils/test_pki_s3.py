# -*- coding: utf-8 -*-
# Copyright: clientvpn.pki contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The push of a working copy against a scripted S3 (botocore's Stubber): the requests it makes
and what it writes into the lock. The push against moto's real server, with real processes
and killed at every instant, is in tests/system/test_pki_s3.py and test_pki_s3_crash.py."""

from __future__ import annotations

import json

import boto3
import pytest
from botocore.stub import ANY, Stubber

from ansible_collections.clientvpn.pki.plugins.module_utils import s3_sync
from ansible_collections.clientvpn.pki.plugins.module_utils.pki_s3 import PkiS3
from ansible_collections.clientvpn.pki.plugins.module_utils.safe_folder import SafeFolder

BUCKET = "pki-bucket"
PREFIX = "team/pki"


def _params(pki_dir, **extra):
    return dict(dict(pki_dir=pki_dir, bucket=BUCKET, prefix=PREFIX, state="push", kms_key_id=None, lock=True, lock_owner=None,
                     lock_ttl_seconds=3600, lock_wait_seconds=600, encrypt_private_keys=True, allow_plaintext_ca_key=False,
                     release_lock=True), **extra)


@pytest.fixture
def working_copy(tmp_path):
    """A working copy pulled by the AWX job 7 (its lock, its owner), with index.txt changed since."""
    root = str(tmp_path / "work")
    folder = SafeFolder(root)
    state = s3_sync.new_state(BUCKET, PREFIX)
    state["base"]["index.txt"] = {"etag": '"index-pulled"', "size": 0, "sha256": s3_sync.EMPTY_SHA256}
    state["lock"] = {"owner": "awx-job-7", "etag": '"lock-pulled"', "acquired_at": "2026-11-26T03:00:00+00:00",
                     "expires_at": "2026-11-26T04:00:00+00:00", "ttl": 3600}
    folder.ensure_dir(root)
    folder.write(folder.path("index.txt"), b"V\t291126030000Z\t\t0A\tunknown\t/CN=bob\n", 0o600)
    s3_sync.save_state(folder, state)
    return root


@pytest.mark.parametrize("lock_owner, written", [(None, "awx-job-7"), ("named-on-push", "named-on-push")])
def test_the_renewal_before_a_push_keeps_the_owner_the_pull_wrote(working_copy, lock_owner, written):
    """The push is another process than the pull: renewing under its own host:pid named a job killed in its push
    by a process of a dead container, not by its AWX job, in the next job's 'took over the lock of ...'."""
    client = boto3.client("s3", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="y")
    bodies = []
    client.meta.events.register("provide-client-params.s3.PutObject", lambda params, **kwargs: bodies.append(params["Body"]))
    stubber = Stubber(client)
    stubber.add_response("put_object", {"ETag": '"lock-renewed"'}, {"Bucket": BUCKET, "Key": PREFIX + "/.lock", "Body": ANY, "IfMatch": '"lock-pulled"'})
    stubber.add_response("list_objects_v2", {"Contents": [{"Key": PREFIX + "/index.txt", "ETag": '"index-pulled"', "Size": 0},
                                                          {"Key": PREFIX + "/.lock", "ETag": '"lock-renewed"', "Size": 9}], "IsTruncated": False},
                         {"Bucket": BUCKET, "Prefix": PREFIX + "/"})
    stubber.add_response("put_object", {"ETag": '"index-pushed"'}, {"Bucket": BUCKET, "Key": PREFIX + "/index.txt", "Body": ANY, "IfMatch": '"index-pulled"'})
    stubber.add_response("delete_object", {}, {"Bucket": BUCKET, "Key": PREFIX + "/.lock", "IfMatch": '"lock-renewed"'})
    with stubber:
        result = PkiS3(_params(working_copy, lock_owner=lock_owner), lambda: client, lambda: None).run(False)
        stubber.assert_no_pending_responses()
    assert result["changed"] and result["uploaded"] == ["index.txt"] and result["lock"]["status"] == "released"
    renewal = json.loads(bodies[0].decode("utf-8"))
    assert renewal["owner"] == written and renewal["acquired_at"] == "2026-11-26T03:00:00+00:00"
