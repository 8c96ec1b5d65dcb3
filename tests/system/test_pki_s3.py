"""vpn_pki_s3: the PKI kept in S3, worked on in a local working copy, against moto's S3,
KMS and IAM on 127.0.0.1 (one server for the file, one bucket and one KMS key per test).

The PKIs are real (vpn_ca, vpn_cert, RSA 1024 for speed); the runs are real module
processes, two at once for the lock, one of them SIGKILLed. What S3 received is read from
moto's own recording of every request, not only from the module's count of its requests.

Not real AWS: moto checks a conditional write and then writes, without holding a lock in
between (AWS makes the pair atomic), so the lock is proven here against processes that
race at the speed of module runs, not against two requests in the same microsecond. moto
enforces IAM only after /moto-api/reset-auth, used by the KMS permission test.

Wall time: 65 s measured at load average 1.4-1.7 on the 2 shared cores (54 s of user CPU: about
40 module processes, two ansible-playbook runs of the role, moto's server); 71-84 s when the load was 4-7.
"""

import concurrent.futures
import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import time
import urllib.parse
import urllib.request
import uuid

import boto3
import pytest
from cryptography.hazmat.primitives import serialization

from conftest import collections_path, failed, fake_aws_environment, ok, playbook, recap, snapshot

PREFIX = "team/pki"
REGION = "eu-west-1"
STATE_FILE = ".clientvpn-s3.json"
MODULE = "ansible_collections.clientvpn.pki.plugins.modules.vpn_pki_s3"
WRITE_METHODS = ("PUT", "POST", "DELETE")


class Remote(object):
    """One test's bucket and KMS key on the server, seen with boto3 (never through the module)."""

    def __init__(self, server, bucket):
        self.server = server
        self.bucket = bucket
        kwargs = dict(endpoint_url=server.url, region_name=REGION, aws_access_key_id="test", aws_secret_access_key="test")
        self.s3 = boto3.client("s3", **kwargs)
        self.kms = boto3.client("kms", **kwargs)
        self.iam = boto3.client("iam", **kwargs)
        self.s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
        self.key_id = self.kms.create_key(Description=bucket)["KeyMetadata"]["KeyId"]

    def args(self, pki_dir, state, **extra):
        return dict(dict(pki_dir=str(pki_dir), bucket=self.bucket, prefix=PREFIX, state=state, region=REGION,
                         endpoint_url=self.server.url, kms_key_id=self.key_id), **extra)

    def objects(self, prefix=PREFIX):
        """{key: ETag} of everything under the prefix (the lock included)."""
        answer = self.s3.list_objects_v2(Bucket=self.bucket, Prefix=prefix + "/")
        return dict((item["Key"], item["ETag"]) for item in answer.get("Contents", []))

    def body(self, key):
        return self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()

    def mark(self):
        """Where moto's recording stands now."""
        return len(self._recording())

    def writes_since(self, mark):
        """(method, path) of every write request to this bucket received since ``mark``."""
        found = []
        for record in self._recording()[mark:]:
            path = urllib.parse.urlparse(record["url"]).path
            if record["method"] in WRITE_METHODS and path.startswith("/%s/" % self.bucket):
                found.append((record["method"], path[len(self.bucket) + 2:]))
        return found

    def _recording(self):
        with open(self.server.recording) as handle:
            return [json.loads(line) for line in handle]


@pytest.fixture
def remote(moto_server, request, monkeypatch, tmp_path):
    fake_aws_environment(monkeypatch, tmp_path)
    bucket = "pki-%s-%s" % (re.sub(r"[^a-z0-9]+", "-", request.node.name.lower())[5:30].strip("-"), uuid.uuid4().hex[:6])
    return Remote(moto_server, bucket)


@pytest.fixture(scope="module")
def template_pki(tmp_path_factory):
    """A PKI built here once: CA, server, alice (RSA 1024)."""
    pki = str(tmp_path_factory.mktemp("template") / "pki")
    ok("vpn_ca", {"pki_dir": pki, "key_size": 1024})
    ok("vpn_cert", {"pki_dir": pki, "name": ["server"], "type": "server", "key_size": 1024})
    ok("vpn_cert", {"pki_dir": pki, "name": ["alice.example.com"], "type": "client", "key_size": 1024})
    return pki


def seed(remote, template_pki, work, **push):
    """The template PKI pushed into the test's empty prefix through a working copy: pull, copy, push."""
    ok("vpn_pki_s3", remote.args(work, "pull"))
    shutil.copytree(template_pki, str(work), dirs_exist_ok=True)
    return ok("vpn_pki_s3", remote.args(work, "push", **push))


def without_state(tree):
    return dict((path, value) for path, value in tree.items() if path != STATE_FILE)


def index_rows(remote):
    """The rows of the index.txt in S3."""
    return [line.split("\t") for line in remote.body("%s/index.txt" % PREFIX).decode("ascii").splitlines()]


def row_names(rows):
    return sorted(row[5].rsplit("CN=", 1)[1] for row in rows)


# -- the working copy --------------------------------------------------------------------------
def test_a_pki_pushed_comes_back_byte_for_byte_0600_and_0700_and_no_private_key_is_readable_in_s3(remote, template_pki, tmp_path):
    pushed = seed(remote, template_pki, tmp_path / "work")
    assert pushed["changed"] and pushed["uploaded"][-2:] == ["serial", "index.txt"], pushed["uploaded"]
    assert pushed["lock"]["status"] == "released" and pushed["aws_requests"]["kms"]["GenerateDataKey"] == 2  # one per scope

    fresh = tmp_path / "fresh"
    old_umask = os.umask(0)  # inherited by the module process: the modes must not come from the umask
    try:
        pulled = ok("vpn_pki_s3", remote.args(fresh, "pull", kms_key_id=None))
    finally:
        os.umask(old_umask)
    tree = snapshot(str(fresh))
    assert without_state(tree) == snapshot(template_pki)
    assert stat.S_IMODE(os.stat(str(fresh)).st_mode) == 0o700
    for path, (mode, digest) in tree.items():
        assert int(mode, 8) & 0o7777 == (0o600 if digest else 0o700), (path, mode)
    assert pulled["aws_requests"]["kms"] == {"total": 2, "Decrypt": 2}  # one per data key, not per file

    objects = remote.objects()
    with open(str(fresh / STATE_FILE)) as handle:
        state = json.load(handle)
    assert state["base"]["private/ca.key.kms"]["etag"] == objects["%s/private/ca.key.kms" % PREFIX]
    assert state["lock"]["etag"] == objects["%s/.lock" % PREFIX]
    encrypted = sorted(key for key in objects if key.endswith(".kms"))
    assert [key.rsplit("/", 1)[1] for key in encrypted] == ["alice.example.com.key.kms", "ca.key.kms", "server.key.kms"]
    assert "%s/private/ca.key" % PREFIX not in objects and "private/ca.key" not in state["base"]
    for key in objects:
        assert b"PRIVATE KEY" not in remote.body(key), key
    for key in encrypted:
        body = remote.body(key)
        with pytest.raises(ValueError):
            serialization.load_pem_private_key(body, password=None)
        with pytest.raises(ValueError):
            serialization.load_der_private_key(body, password=None)

    mark = remote.mark()
    pushed = ok("vpn_pki_s3", remote.args(fresh, "push"))
    assert not pushed["changed"] and pushed["files"] == {"uploaded": 0, "deleted": 0}
    assert pushed["lock"]["status"] == "released"
    assert remote.writes_since(mark) == [("DELETE", "%s/.lock" % PREFIX)]
    assert pushed["aws_requests"] == {"s3": {"total": 1, "DeleteObject": 1}}
    del objects["%s/.lock" % PREFIX]
    assert remote.objects() == objects


def test_check_mode_pull_and_push_write_nothing_and_take_no_lock(remote, template_pki, tmp_path):
    work = tmp_path / "work"
    seed(remote, template_pki, work, release_lock=False)
    before, mark = remote.objects(), remote.mark()
    checked = ok("vpn_pki_s3", remote.args(tmp_path / "checked", "pull"), check_mode=True)
    assert checked["changed"] and checked["files"]["pulled"] == len(before) - 1 and "private/ca.key" in checked["pulled"]
    assert checked["lock"] == {"status": "would be acquired"}  # and no wait for the lock that work holds
    assert not os.path.exists(str(tmp_path / "checked"))
    assert remote.objects() == before and remote.writes_since(mark) == []

    ok("vpn_cert", {"pki_dir": str(work), "name": ["bob.example.com"], "type": "client", "key_size": 1024})
    before, local, mark = remote.objects(), snapshot(str(work)), remote.mark()
    checked = ok("vpn_pki_s3", remote.args(work, "push"), check_mode=True)
    assert checked["changed"] and "private/bob.example.com.key" in checked["uploaded"] and checked["uploaded"][-1] == "index.txt"
    assert checked["lock"] == {"status": "would be released"}
    assert remote.objects() == before and remote.writes_since(mark) == [] and snapshot(str(work)) == local


# -- the lock ----------------------------------------------------------------------------------
def _issue_in_turn(remote, work, name):
    pulled = ok("vpn_pki_s3", remote.args(work, "pull", lock_owner="run-" + name, lock_wait_seconds=120))
    ok("vpn_cert", {"pki_dir": str(work), "name": [name], "type": "client", "key_size": 1024})
    return pulled, ok("vpn_pki_s3", remote.args(work, "push"))


def test_two_runs_at_once_take_turns_and_lose_no_certificate(remote, template_pki, tmp_path):
    seed(remote, template_pki, tmp_path / "work")
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        runs = [pool.submit(_issue_in_turn, remote, tmp_path / name, name) for name in ("bob.example.com", "carol.example.com")]
        results = [run.result(timeout=240) for run in runs]
    assert all(pushed["changed"] and pushed["lock"]["status"] == "released" for pulled, pushed in results)
    assert max(pulled["lock"]["waited_seconds"] for pulled, pushed in results) > 0  # one waited for the other

    rows = index_rows(remote)
    assert row_names(rows) == ["alice.example.com", "bob.example.com", "carol.example.com", "server"]
    serials = [row[3] for row in rows]
    assert len(set(serials)) == len(serials) == 4
    assert "%s/.lock" % PREFIX not in remote.objects()


def test_a_killed_holder_blocks_the_next_run_only_until_its_lease_ends(remote, template_pki, tmp_path):
    seed(remote, template_pki, tmp_path / "work")
    args_file = tmp_path / "holder.json"
    args_file.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": remote.args(tmp_path / "holder", "pull", lock_owner="doomed-run", lock_ttl_seconds=3)}))
    # a run that takes the lock and then hangs: a shell, the module, then sleep - killed as a whole process tree
    holder = subprocess.Popen(["sh", "-c", '"$0" -m %s < "$1" > "$1.out" && exec sleep 300' % MODULE, sys.executable, str(args_file)],
                              start_new_session=True, env=dict(os.environ, PYTHONPATH=collections_path()))
    deadline = time.monotonic() + 60
    while "%s/.lock" % PREFIX not in remote.objects():
        assert holder.poll() is None and time.monotonic() < deadline, "the holder never took the lock"
        time.sleep(0.1)
    os.killpg(holder.pid, signal.SIGKILL)
    holder.wait(timeout=30)
    doomed = json.loads(remote.body("%s/.lock" % PREFIX))

    work = tmp_path / "next"
    pulled, pushed = _issue_in_turn(remote, work, "carol.example.com")
    lock = pulled["lock"]
    assert lock["status"] == "taken over" and lock["taken_over_from"].startswith("doomed-run (taken at %s" % doomed["acquired_at"])
    assert (_seconds(lock["acquired_at"]) - _seconds(doomed["acquired_at"])) >= 3 - 1  # not before its lease ended (1 s resolution)
    assert pushed["changed"] and pushed["lock"]["status"] == "released"

    rows, objects = index_rows(remote), remote.objects()
    assert row_names(rows) == ["alice.example.com", "carol.example.com", "server"]
    for name in row_names(rows):  # every row with its certificate and its (encrypted) key: S3 is consistent
        assert "%s/issued/%s.crt" % (PREFIX, name) in objects and "%s/private/%s.key.kms" % (PREFIX, name) in objects
    assert "%s/.lock" % PREFIX not in objects


def _seconds(iso):
    return time.mktime(time.strptime(iso[:19], "%Y-%m-%dT%H:%M:%S"))


def test_a_push_is_refused_when_s3_changed_since_the_pull(remote, template_pki, tmp_path):
    seed(remote, template_pki, tmp_path / "work")
    work = tmp_path / "pulled"
    ok("vpn_pki_s3", remote.args(work, "pull"))
    # another writer that ignores the lock (aws s3 cp, say) changes index.txt
    index_key = "%s/index.txt" % PREFIX
    remote.s3.put_object(Bucket=remote.bucket, Key=index_key, Body=remote.body(index_key) + b"\n")
    ok("vpn_cert", {"pki_dir": str(work), "name": ["bob.example.com"], "type": "client", "key_size": 1024})
    before = remote.objects()
    message = failed("vpn_pki_s3", remote.args(work, "push"))
    assert "changed since this working copy was pulled (index.txt (changed))" in message and "Nothing was pushed" in message
    after = remote.objects()
    lock = "%s/.lock" % PREFIX
    assert after.pop(lock) and before.pop(lock)  # the lease was renewed before the comparison, nothing else written
    assert after == before


def test_a_push_after_another_run_took_over_the_expired_lock_is_refused(remote, template_pki, tmp_path):
    slow = tmp_path / "slow"
    ok("vpn_pki_s3", remote.args(slow, "pull", lock_owner="slow-run", lock_ttl_seconds=1))
    time.sleep(1.5)
    taken = ok("vpn_pki_s3", remote.args(tmp_path / "next", "pull", lock_owner="next-run"))
    assert taken["lock"]["status"] == "taken over" and taken["lock"]["taken_over_from"].startswith("slow-run")
    shutil.copytree(template_pki, str(slow), dirs_exist_ok=True)
    before = remote.objects()
    message = failed("vpn_pki_s3", remote.args(slow, "push"))
    assert "is no longer this working copy's: now held by next-run" in message and "Nothing was pushed" in message
    assert remote.objects() == before == {"%s/.lock" % PREFIX: before["%s/.lock" % PREFIX]}


# -- the role ----------------------------------------------------------------------------------
def test_the_role_pulls_pushes_and_releases_around_the_pki_modules_and_a_second_run_changes_nothing(remote, tmp_path):
    work = str(tmp_path / "work")
    role = {"name": "clientvpn.pki.pki_s3"}
    play = [{
        "hosts": "localhost", "gather_facts": False, "connection": "local",
        "vars": {"ansible_python_interpreter": sys.executable, "aws_region": REGION, "aws_endpoint_url": remote.server.url,
                 "pki_s3_bucket": remote.bucket, "pki_s3_prefix": PREFIX, "pki_s3_kms_key_id": remote.key_id, "pki_s3_work_dir": work},
        "tasks": [{"name": "The PKI in S3, changed through a working copy", "block": [
            {"name": "Pull", "ansible.builtin.include_role": dict(role, tasks_from="pull")},
            {"name": "CA", "clientvpn.pki.vpn_ca": {"pki_dir": "{{ pki_s3_work_dir }}", "key_size": 1024}},
            {"name": "Push", "ansible.builtin.include_role": dict(role, tasks_from="push")},
        ], "always": [{"name": "Release", "ansible.builtin.include_role": dict(role, tasks_from="release")}]}],
    }]
    path = tmp_path / "play.yml"
    path.write_text(json.dumps(play))
    first = recap(playbook([str(path)]).stdout)
    assert first["changed"] == 2 and first["failed"] == 0  # the CA, the push (a working copy filled is no change)
    objects = remote.objects()
    assert "%s/private/ca.key.kms" % PREFIX in objects and "%s/index.txt" % PREFIX in objects and "%s/.lock" % PREFIX not in objects
    second = recap(playbook([str(path)]).stdout)
    assert second["changed"] == 0 and second["failed"] == 0
    assert remote.objects() == objects


# -- bad input ---------------------------------------------------------------------------------
def test_bad_input_is_refused_with_the_option_and_nothing_is_written(remote, template_pki, tmp_path):
    target = tmp_path / "never"
    message = failed("vpn_pki_s3", dict(remote.args(target, "pull"), bucket="no-such-bucket-" + remote.bucket[-6:]))
    assert "bucket='no-such-bucket-" in message and "does not exist" in message and "Create the bucket" in message

    remote.s3.put_object(Bucket=remote.bucket, Key="reports/2026/usage.csv", Body=b"month,users\n")
    message = failed("vpn_pki_s3", remote.args(target, "pull", prefix="reports"))
    assert "s3://%s/reports/ holds objects (2026/usage.csv, ...) but no PKI" % remote.bucket in message and "Point prefix" in message
    assert list(remote.objects("reports")) == ["reports/2026/usage.csv"]  # no lock was taken there

    target.mkdir()
    (target / "unrelated.txt").write_text("not a working copy\n")
    message = failed("vpn_pki_s3", remote.args(target, "pull"))
    assert "pki_dir %s holds files but is no working copy" % target in message
    assert os.listdir(str(target)) == ["unrelated.txt"]

    work = tmp_path / "work"
    ok("vpn_pki_s3", remote.args(work, "pull"))
    shutil.copytree(template_pki, str(work), dirs_exist_ok=True)
    before, mark = remote.objects(), remote.mark()
    message = failed("vpn_pki_s3", remote.args(work, "push", kms_key_id=None))
    assert "kms_key_id is not set, so the CA key private/ca.key would be stored in S3 in plaintext" in message
    message = failed("vpn_pki_s3", remote.args(work, "push", kms_key_id="alias/no-such-key"))
    assert "kms_key_id='alias/no-such-key'" in message and "NotFoundException" in message and "Nothing was written" in message
    assert [method for method, path in remote.writes_since(mark) if not path.endswith("/.lock")] == []
    after = remote.objects()
    assert after.pop("%s/.lock" % PREFIX) and before.pop("%s/.lock" % PREFIX) and after == before == {}


def _user(remote, name, kms_actions):
    """An IAM user who may use the test's bucket and prefix, and only ``kms_actions`` of KMS: its credentials."""
    statements = [{"Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
                   "Resource": "arn:aws:s3:::%s/%s/*" % (remote.bucket, PREFIX)},
                  {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::%s" % remote.bucket}]
    if kms_actions:
        statements.append({"Effect": "Allow", "Action": kms_actions, "Resource": "*"})
    remote.iam.create_user(UserName=name)
    remote.iam.put_user_policy(UserName=name, PolicyName="pki", PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": statements}))
    key = remote.iam.create_access_key(UserName=name)["AccessKey"]
    return {"AWS_ACCESS_KEY_ID": key["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"]}


def _enforce_iam(remote, enforce):
    """moto checks IAM policies only from /moto-api/reset-auth on (for every client of the server)."""
    request = urllib.request.Request(remote.server.url + "/moto-api/reset-auth", data=b"0" if enforce else b"inf", method="POST",
                                     headers={"Content-Type": "text/plain"})
    urllib.request.urlopen(request, timeout=30).read()


def test_without_kms_permission_pull_and_push_fail_naming_the_key_and_write_nothing(remote, template_pki, tmp_path):
    seed(remote, template_pki, tmp_path / "seed")
    no_kms = _user(remote, "no-kms-" + remote.bucket[-6:], None)
    no_decrypt = _user(remote, "no-decrypt-" + remote.bucket[-6:], ["kms:GenerateDataKey"])
    before = remote.objects()
    _enforce_iam(remote, True)
    try:
        pull_message = failed("vpn_pki_s3", remote.args(tmp_path / "denied", "pull"), extra_env=no_decrypt)
    finally:
        _enforce_iam(remote, False)
    assert "KMS Decrypt of s3://%s/%s/private/" % (remote.bucket, PREFIX) in pull_message and "AccessDeniedException" in pull_message
    assert not os.path.exists(str(tmp_path / "denied"))
    assert remote.objects() == before  # the lock it took was released

    work = tmp_path / "work"
    ok("vpn_pki_s3", remote.args(work, "pull"))
    shutil.copyfile(str(work / "private" / "alice.example.com.key"), str(work / "private" / "alice.example.com.key.old"))
    _enforce_iam(remote, True)
    try:
        push_message = failed("vpn_pki_s3", remote.args(work, "push"), extra_env=no_kms)
    finally:
        _enforce_iam(remote, False)
    assert "KMS GenerateDataKey failed (AccessDeniedException): kms_key_id=%r" % remote.key_id in push_message
    assert "Grant kms:GenerateDataKey (push) and kms:Decrypt (pull)" in push_message and "Nothing was written" in push_message
    after = remote.objects()
    assert after.pop("%s/.lock" % PREFIX)  # the push renewed its lease before it asked KMS, and wrote nothing else
    assert after == before
