# -*- coding: utf-8 -*-
# Copyright: clientvpn.pki contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The lease lock that lets one run at a time change a PKI kept in S3: ``<prefix>/.lock``.

Taken with a conditional create (PutObject ``If-None-Match: *``): of two runs, S3 lets
exactly one create it. Held for a lease (``ttl`` seconds), so a run that died (a killed
AWX job) cannot hold it forever. The lease is judged on S3's clock: the lock object's
LastModified plus its ttl, against the Date of the answer that read it, so the clocks of
the job containers do not matter. An expired lock is taken over with a conditional
overwrite on the ETag that was read (``If-Match``): of two successors, one wins. It is
released with a conditional delete on our ETag, so a run whose lease was taken over never
deletes its successor's lock.

The ETag a run wrote is its proof of ownership (kept in the working copy's state, since
pull, push and release are separate processes); the owner string is for people: the AWX
job (``JOB_ID`` / ``AWX_JOB_ID``) or host:pid. A lock whose body cannot be read is
treated as expired.
"""

from __future__ import annotations

import datetime
import email.utils
import json
import os
import socket
import time

from ansible_collections.clientvpn.pki.plugins.module_utils.errors import PkiError
from ansible_collections.clientvpn.pki.plugins.module_utils.s3_objects import Conflict

LOCK_NAME = ".lock"
FIRST_POLL_SECONDS = 0.5
MAX_POLL_SECONDS = 5.0
UTC = datetime.timezone.utc


def _iso(moment):
    return moment.astimezone(UTC).replace(microsecond=0).isoformat()


def default_owner(environ=None):
    """Who holds the lock, for people: the AWX job when the run is one, else host:pid."""
    environ = os.environ if environ is None else environ
    job = environ.get("JOB_ID") or environ.get("AWX_JOB_ID")
    host = socket.gethostname()
    return "awx-job-%s@%s" % (job, host) if job else "%s:%d" % (host, os.getpid())


def _server_now(answer):
    """S3's clock: the Date header of its answer (the local clock only when there is none)."""
    header = answer.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get("date")
    if header:
        try:
            server_now = email.utils.parsedate_to_datetime(header)
        except (TypeError, ValueError):
            server_now = None
        if server_now is not None:
            # "-0000" (or a header two proxies joined) parses without a zone: HTTP dates are UTC
            return server_now if server_now.tzinfo else server_now.replace(tzinfo=UTC)
    return datetime.datetime.now(UTC)


class LockRecord(object):
    """The lock object as read: its fields, its ETag, its lease judged on S3's clock."""

    def __init__(self, fields, etag, written_at, server_now):
        fields = fields if isinstance(fields, dict) else {}
        self.owner = str(fields.get("owner", "an unknown owner"))
        self.acquired_at = fields.get("acquired_at")
        try:
            self.ttl = max(int(fields.get("ttl", 0)), 0)
        except (TypeError, ValueError):
            self.ttl = 0
        self.etag = etag
        written_at = written_at or server_now
        self.expires = written_at + datetime.timedelta(seconds=self.ttl)
        self.seconds_left = (self.expires - server_now).total_seconds()

    @property
    def expired(self):
        return self.seconds_left <= 0

    def describe(self):
        return "%s (taken at %s, lease until %s by S3's clock)" % (self.owner, self.acquired_at or "an unknown time", _iso(self.expires))


def lease_decision(record, own_etag=None):
    """What to do about the lock as read: 'create' (there is none), 'renew' (ours),
    'take-over' (another run's, expired) or 'wait' (another run's lease lasts)."""
    if record is None:
        return "create"
    if own_etag and record.etag == own_etag:
        return "renew"
    return "take-over" if record.expired else "wait"


def lock_body(owner, ttl, acquired_at=None, now=None):
    now = now or datetime.datetime.now(UTC)
    return json.dumps({
        "owner": owner, "acquired_at": acquired_at or _iso(now), "renewed_at": _iso(now),
        "expires_at": _iso(now + datetime.timedelta(seconds=ttl)), "ttl": ttl, "host": socket.gethostname(), "pid": os.getpid(),
    }, sort_keys=True).encode("utf-8")


class LeaseLock(object):
    """The lock of one S3Prefix. ``clock`` and ``sleep`` are time's, replaceable in tests."""

    def __init__(self, objects, owner, ttl_seconds, clock=time.monotonic, sleep=time.sleep):
        if ttl_seconds < 1:
            raise PkiError("lock_ttl_seconds=%r: the lease must last at least 1 second (longer than a whole play)." % ttl_seconds)
        self.objects = objects
        self.owner = owner
        self.ttl = ttl_seconds
        self.clock = clock
        self.sleep = sleep

    @property
    def url(self):
        return self.objects.url + LOCK_NAME

    def read(self):
        got = self.objects.get(LOCK_NAME)
        if got is None:
            return None
        data, etag, answer = got
        try:
            fields = json.loads(data.decode("utf-8"))
        except ValueError:
            fields = {}
        return LockRecord(fields, etag, answer.get("LastModified"), _server_now(answer))

    def acquire(self, wait_seconds, own_etag=None):
        """Hold the lock; returns (what the result shows of it, warnings). Waits, polling, while another
        run's lease lasts, at most ``wait_seconds``; ``own_etag``: the lock this working copy holds already."""
        started = self.clock()
        record = self.read() if own_etag else None
        decision = lease_decision(record, own_etag) if own_etag else "create"
        delay = FIRST_POLL_SECONDS
        while True:
            if decision != "wait":
                held = self._take(decision, record, started)
                if held:
                    return held
            else:
                remaining = started + wait_seconds - self.clock()
                if remaining <= 0:
                    raise PkiError(self._busy(record, wait_seconds))
                self.sleep(max(min(delay, remaining, record.seconds_left + 0.2), 0.05))
                delay = min(delay * 1.5, MAX_POLL_SECONDS)
            record = self.read()
            decision = lease_decision(record, own_etag)

    def _take(self, decision, record, started):
        """One conditional write of the lock; None when another run was quicker."""
        body = lock_body(self.owner, self.ttl, acquired_at=record.acquired_at if decision == "renew" else None)
        try:
            if decision == "create":
                etag = self.objects.put(LOCK_NAME, body, create_only=True)
            else:
                etag = self.objects.put(LOCK_NAME, body, if_match=record.etag)
        except Conflict:
            return None
        fields = json.loads(body.decode("utf-8"))
        waited = round(self.clock() - started, 1)
        status = {"create": "acquired", "renew": "renewed", "take-over": "taken over"}[decision]
        info = dict(owner=self.owner, etag=etag, acquired_at=fields["acquired_at"], expires_at=fields["expires_at"], ttl=self.ttl,
                    status=status, waited_seconds=waited, taken_over_from=record.describe() if decision == "take-over" else None)
        warnings = []
        if waited >= 1:
            warnings.append("waited %s s for the lock %s" % (waited, self.url))
        if decision == "take-over":
            warnings.append("took over the lock of %s: its lease had ended, so that run died or overran lock_ttl_seconds" % record.describe())
        return info, warnings

    def _busy(self, record, wait_seconds):
        return (
            "the PKI at %s is locked by %s. Waited %s s (lock_wait_seconds). Retry when that run has finished, or raise "
            "lock_wait_seconds. A dead run's lease ends by itself; to end it sooner, delete %s. Nothing was written."
            % (self.objects.url, record.describe(), wait_seconds, self.url)
        )

    def renew(self, etag, acquired_at=None):
        """Extend our lease before writing, proving it is still ours: (the new ETag, the new end of the lease). PkiError when it is not."""
        body = lock_body(self.owner, self.ttl, acquired_at=acquired_at)
        try:
            return self.objects.put(LOCK_NAME, body, if_match=etag), json.loads(body.decode("utf-8"))["expires_at"]
        except Conflict:
            holder = self.read()
            raise PkiError(
                "the lock %s is no longer this working copy's: %s. Its lease (lock_ttl_seconds) ended and another run took it, "
                "or it was deleted. Nothing was pushed: pull again into an empty folder and redo the change, and give "
                "lock_ttl_seconds more than a whole play lasts." % (self.url, "now held by " + holder.describe() if holder else "it is gone")
            )

    def release(self, etag):
        """Delete the lock if it is still ours: 'released', 'taken over' (another run's now: left alone) or 'gone'."""
        try:
            self.objects.delete(LOCK_NAME, if_match=etag)
        except Conflict as exc:
            return "gone" if exc.code in ("NoSuchKey", "404", "NotFound") else "taken over"
        return "released"
