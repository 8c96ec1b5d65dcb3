# -*- coding: utf-8 -*-
# Copyright: clientvpn.pki contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The lease lock's decisions: when to create, renew, take over or wait, judged on S3's clock,
and what each S3 answer leads to.

``botocore.stub.Stubber`` scripts S3 here because the cases are races that a real server
cannot be made to produce on cue: another successor taking over between our read and our
conditional write, a lock that expires while we wait. A fake clock makes the waits instant.
The lock against moto's real server, with real processes, is in tests/system/test_pki_s3.py.
"""

from __future__ import annotations

import datetime
import email.utils
import io
import json

import boto3
import pytest
from botocore.response import StreamingBody
from botocore.stub import ANY, Stubber

from ansible_collections.clientvpn.pki.plugins.module_utils.errors import PkiError
from ansible_collections.clientvpn.pki.plugins.module_utils import s3_lock
from ansible_collections.clientvpn.pki.plugins.module_utils.s3_lock import LeaseLock, LockRecord, default_owner, lease_decision
from ansible_collections.clientvpn.pki.plugins.module_utils.s3_objects import RequestCounter, S3Prefix

T0 = datetime.datetime(2026, 11, 26, 3, 0, 0, tzinfo=datetime.timezone.utc)
LOCK_KEY = "team/pki/.lock"


def _record(ttl, age, etag='"e"', owner="other-run"):
    """The lock as read ``age`` seconds (S3's clock) after it was written with ``ttl``."""
    return LockRecord({"owner": owner, "acquired_at": "2026-11-26T03:00:00+00:00", "ttl": ttl}, etag, T0, T0 + datetime.timedelta(seconds=age))


@pytest.mark.parametrize("record, own_etag, decision", [
    (None, None, "create"),
    (_record(60, 10), None, "wait"),
    (_record(60, 60), None, "take-over"),
    (_record(60, 10, etag='"mine"'), '"mine"', "renew"),
    (_record(60, 600, etag='"mine"'), '"mine"', "renew"),  # ours, expired, nobody took it: still ours
    (_record(60, 10, etag='"theirs"'), '"mine"', "wait"),
])
def test_lease_decision(record, own_etag, decision):
    assert lease_decision(record, own_etag) == decision


def test_the_lease_is_judged_on_s3s_clock_only():
    assert _record(60, 59.5).seconds_left == 0.5 and not _record(60, 59.5).expired
    assert _record(60, 60).expired
    # a body that cannot be read, or a ttl that is no number: treated as expired
    assert LockRecord("garbage", '"e"', T0, T0).expired
    assert LockRecord({"ttl": "soon"}, '"e"', T0, T0).expired
    assert LockRecord({"ttl": -5}, '"e"', T0, T0 + datetime.timedelta(seconds=1)).expired
    assert _record(60, 10).describe() == "other-run (taken at 2026-11-26T03:00:00+00:00, lease until 2026-11-26T03:01:00+00:00 by S3's clock)"


def test_the_owner_names_the_awx_job_else_host_and_pid():
    assert default_owner({"JOB_ID": "4711"}).startswith("awx-job-4711@")
    assert default_owner({"AWX_JOB_ID": "12"}).startswith("awx-job-12@")
    assert default_owner({}).rsplit(":", 1)[1].isdigit()


# -- LeaseLock against a scripted S3 ----------------------------------------------------------------
class Clock(object):
    def __init__(self):
        self.now = 0.0
        self.sleeps = []

    def time(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(round(seconds, 3))
        self.now += seconds


class S3(object):
    def __init__(self):
        self.client = boto3.client("s3", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="y")
        self.stubber = Stubber(self.client)
        self.clock = Clock()

    def lock(self, wait_owner="this-run", ttl=30):
        objects = S3Prefix(lambda: self.client, "pki-bucket", "team/pki", RequestCounter())
        return LeaseLock(objects, wait_owner, ttl, clock=self.clock.time, sleep=self.clock.sleep)

    def put(self, etag=None, **condition):
        params = dict(Bucket="pki-bucket", Key=LOCK_KEY, Body=ANY, **condition)
        if etag:
            self.stubber.add_response("put_object", {"ETag": etag}, params)
        else:
            self.stubber.add_client_error("put_object", service_error_code="PreconditionFailed", http_status_code=412, expected_params=params)

    def get(self, owner, ttl, age, etag):
        body = json.dumps({"owner": owner, "acquired_at": "2026-11-26T03:00:00+00:00", "ttl": ttl}).encode()
        now = email.utils.format_datetime(T0 + datetime.timedelta(seconds=age), usegmt=True)
        self.stubber.add_response("get_object", {"Body": StreamingBody(io.BytesIO(body), len(body)), "ETag": etag, "LastModified": T0,
                                                 "ResponseMetadata": {"HTTPHeaders": {"date": now}}},
                                  {"Bucket": "pki-bucket", "Key": LOCK_KEY})

    def delete(self, code=None):
        params = {"Bucket": "pki-bucket", "Key": LOCK_KEY, "IfMatch": '"mine"'}
        if code:
            self.stubber.add_client_error("delete_object", service_error_code=code, http_status_code=412 if code == "PreconditionFailed" else 404,
                                          expected_params=params)
        else:
            self.stubber.add_response("delete_object", {}, params)


@pytest.fixture
def s3():
    stub = S3()
    stub.stubber.activate()
    yield stub
    stub.stubber.assert_no_pending_responses()
    stub.stubber.deactivate()


def test_a_free_lock_is_taken_with_one_conditional_create(s3):
    s3.put('"mine"', IfNoneMatch="*")
    info, warnings = s3.lock().acquire(600)
    assert (info["status"], info["etag"], info["waited_seconds"], info["taken_over_from"], warnings) == ("acquired", '"mine"', 0, None, [])
    assert info["owner"] == "this-run" and info["ttl"] == 30


def test_a_held_lock_is_waited_for_then_taken_over_once_its_lease_ends(s3):
    s3.put(IfNoneMatch="*")  # held
    s3.get("other-run", ttl=10, age=9, etag='"theirs"')  # 1 s left
    s3.get("other-run", ttl=10, age=10.5, etag='"theirs"')  # ended
    s3.put('"mine"', IfMatch='"theirs"')
    info, warnings = s3.lock().acquire(600)
    assert info["status"] == "taken over" and info["taken_over_from"].startswith("other-run (taken at 2026-11-26T03:00:00+00:00")
    assert s3.clock.sleeps == [0.5]
    assert warnings == ["took over the lock of %s: its lease had ended, so that run died or overran lock_ttl_seconds" % info["taken_over_from"]]


def test_of_two_successors_one_takes_over_and_the_other_waits_then_fails_naming_the_holder(s3):
    s3.put(IfNoneMatch="*")
    s3.get("dead-run", ttl=10, age=3600, etag='"dead"')
    s3.put(IfMatch='"dead"')  # the other successor's conditional write came first
    for read in range(5):  # each read after a wait
        s3.get("winner", ttl=100, age=1 + read, etag='"winner"')
    with pytest.raises(PkiError) as raised:
        s3.lock().acquire(3)
    assert str(raised.value) == (
        "the PKI at s3://pki-bucket/team/pki/ is locked by winner (taken at 2026-11-26T03:00:00+00:00, lease until "
        "2026-11-26T03:01:40+00:00 by S3's clock). Waited 3 s (lock_wait_seconds). Retry when that run has finished, or raise "
        "lock_wait_seconds. A dead run's lease ends by itself; to end it sooner, delete s3://pki-bucket/team/pki/.lock. Nothing was written."
    )
    assert s3.clock.sleeps == [0.5, 0.75, 1.125, 0.625]  # backing off, never past the deadline


def test_a_working_copy_that_holds_the_lock_renews_it(s3):
    s3.get("this-run", ttl=30, age=5, etag='"mine"')
    s3.put('"renewed"', IfMatch='"mine"')
    info, warnings = s3.lock().acquire(600, own_etag='"mine"')
    assert (info["status"], info["etag"], warnings) == ("renewed", '"renewed"', [])


def test_a_renewal_of_a_lock_taken_over_is_refused_naming_the_new_holder(s3):
    s3.put(IfMatch='"mine"')
    s3.get("next-run", ttl=30, age=1, etag='"theirs"')
    with pytest.raises(PkiError, match=r"^the lock s3://pki-bucket/team/pki/.lock is no longer this working copy's: now held by next-run \(taken at"):
        s3.lock().renew('"mine"')


@pytest.mark.parametrize("code, status", [(None, "released"), ("PreconditionFailed", "taken over"), ("NoSuchKey", "gone")])
def test_release_deletes_only_our_own_lock(s3, code, status):
    s3.delete(code)
    assert s3.lock().release('"mine"') == status


def test_a_lease_shorter_than_a_second_is_refused():
    with pytest.raises(PkiError, match="lock_ttl_seconds=0"):
        LeaseLock(None, "x", 0)


@pytest.mark.parametrize("header", ["Thu, 26 Nov 2026 06:30:00 -0000", "Thu, 26 Nov 2026 06:30:00 GMT", "not a date", None])
def test_s3s_clock_is_always_an_aware_time(header):
    # a Date header without a zone (or none) must not make the lease arithmetic fail with a TypeError
    answer = {"ResponseMetadata": {"HTTPHeaders": {"date": header} if header else {}}}
    server_now = s3_lock._server_now(answer)  # pylint: disable=protected-access
    assert server_now.tzinfo is not None and server_now.utcoffset() == datetime.timedelta(0)
    if header and header[0] == "T":
        assert server_now == datetime.datetime(2026, 11, 26, 6, 30, tzinfo=datetime.timezone.utc)
