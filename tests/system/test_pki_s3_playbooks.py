"""The playbooks with the PKI in S3 (pki_s3_bucket), as an AWX job in a throwaway container
runs them: each run starts from an empty working folder, pulls under the lock, works, pushes
what changed, and releases the lock and removes the working copy whatever happens.
Against moto's S3 and KMS on 127.0.0.1 (the local_acm fixture's server)."""

import json
import os

import boto3
import pytest
from cryptography.hazmat.primitives import serialization

from conftest import playbook, recap, snapshot

REGION = "eu-west-1"
BUCKET = "team-clientvpn-pki"
PREFIX = "clientvpn/pki"


@pytest.fixture
def remote(local_acm):
    kwargs = dict(endpoint_url=local_acm.url, region_name=REGION)
    s3, kms = boto3.client("s3", **kwargs), boto3.client("kms", **kwargs)
    s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]

    class Remote(object):
        url = local_acm.url

        def objects(self):
            """{key: ETag} of everything under the prefix."""
            listing = s3.list_objects_v2(Bucket=BUCKET, Prefix=PREFIX + "/").get("Contents", [])
            return dict((item["Key"][len(PREFIX) + 1:], item["ETag"]) for item in listing)

        def read(self, name):
            return s3.get_object(Bucket=BUCKET, Key=PREFIX + "/" + name)["Body"].read()

        def job(self, tmp_path, job, playbook_name, **extra):
            """ansible-playbook for one job, in its own empty working folder."""
            # The staging folder is outside the PKI and not kept in S3: one for all jobs here, as on a volume.
            settings = dict({"pki_dir": str(tmp_path / job / "pki"), "stage_dir": str(tmp_path / "stage"),
                             "pki_cache_dir": str(tmp_path / job / "cache"), "clientvpn_acm_import": False,
                             "pki_s3_bucket": BUCKET, "pki_s3_prefix": PREFIX, "pki_s3_kms_key_id": key_id,
                             "aws_region": REGION, "aws_endpoint_url": local_acm.url}, **extra)
            return ["clientvpn.pki." + playbook_name, "-e", json.dumps(settings)]

    return Remote()


def test_mutual_auth_and_revoke_client_with_the_pki_in_s3(remote, tmp_path):
    clients = {"pki_clients": ["alice.example.com", "bob.example.com"]}
    first = playbook(remote.job(tmp_path, "job1", "mutual_auth", **clients))
    assert recap(first.stdout)["changed"] > 0
    assert not os.path.exists(tmp_path / "job1" / "pki")  # the working copy, with its plaintext keys, is gone
    stored = remote.objects()
    assert {"index.txt", "serial", "ca.crt", "issued/alice.example.com.crt", "private/ca.key.kms", "private/alice.example.com.key.kms"} <= set(stored)
    assert not any(name.endswith(".key") for name in stored), sorted(stored)
    ca_key = remote.read("private/ca.key.kms")
    assert b"PRIVATE KEY" not in ca_key
    with pytest.raises((ValueError, TypeError)):
        serialization.load_pem_private_key(ca_key, password=None)
    assert ".lock" not in stored  # released
    # The staging folder (outside the PKI) has what the procedure hands out.
    assert os.path.exists(tmp_path / "stage" / "alice.example.com.key")

    # A new container: nothing to change, nothing written to S3.
    second = playbook(remote.job(tmp_path, "job2", "mutual_auth", **clients))
    assert recap(second.stdout)["changed"] == 0, second.stdout[-3000:]
    assert remote.objects() == stored

    # A check run of one more client: says so, writes nothing to S3, leaves no lock.
    check = playbook(remote.job(tmp_path, "job3", "mutual_auth", pki_clients=clients["pki_clients"] + ["carol.example.com"]), check=True)
    assert recap(check.stdout)["changed"] > 0  # carol, and the staging of her files
    assert remote.objects() == stored

    revoked = playbook(remote.job(tmp_path, "job4", "revoke_client", revoke_client_names=["bob.example.com"]))
    assert recap(revoked.stdout)["changed"] > 0
    index = remote.read("index.txt").decode()
    assert [row.split("\t")[0] for row in index.splitlines() if row.endswith("/CN=bob.example.com")] == ["R"]
    assert b"BEGIN X509 CRL" in remote.read("crl.pem")
    assert not os.path.exists(tmp_path / "job4" / "pki") and ".lock" not in remote.objects()


def test_a_pki_dir_that_is_not_a_working_copy_is_refused_and_kept(remote, tmp_path, ca):
    """pki_s3_bucket set by mistake on a run whose pki_dir is a PKI of its own: the pull refuses it,
    and the always section (release, remove the working copy) must not delete it."""
    before = snapshot(ca)
    args = remote.job(tmp_path, "job", "mutual_auth")
    settings = json.loads(args[-1])
    settings["pki_dir"] = ca
    failed = playbook(args[:-1] + [json.dumps(settings)], succeed=False)
    assert "pki_dir" in failed.stdout
    assert snapshot(ca) == before
    assert remote.objects() == {}
