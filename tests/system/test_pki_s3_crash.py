"""Crash safety of the push to S3: a mutual_auth job (the PKI in S3, as an AWX job runs it) adding
three clients is SIGKILLed - its whole process tree, with crashkit - at an exact instant of the push
of clientvpn.pki.vpn_pki_s3, then the same job in a new container (an empty working folder) must
succeed and leave a consistent PKI in S3, and a third one must change nothing.

The instant is exact because the job talks to moto's server through a forwarding proxy in this test
(a thread on 127.0.0.1) that counts the requests: at the k-th PutObject of a PKI object (the lock's
are not counted) it kills the job before forwarding that request, so exactly k-1 objects of the push
landed; or it kills at the DeleteObject of the lock, when everything landed but the lock is held.
The killed job's lease (pki_s3_lock_ttl_seconds, short here) is then taken over by the next job.

The "middle" point found that a push uploaded issued/ before private/ (alphabetical order): a certificate
whose key never reached S3 was registered as valid by the next job, which then issued the name a second
one. A push now uploads in the order the modules write on disk (s3_sync.FILE_PHASES).

Wall time: 102 s measured at load average 1.0-1.9 on the 2 shared cores (80 s of user CPU: 16
ansible-playbook runs, 15 module runs seeding and checking S3, moto's server).
"""

import http.client
import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import urllib.parse
import uuid

import boto3
import pytest

from conftest import collections_path, fake_aws_environment, ok, openssl, playbook, recap
from crashkit import TOKEN_VARIABLE, assert_all_dead, freeze_and_kill

REGION = "eu-west-1"
PREFIX = "clientvpn/pki"
KEY_SIZE = 1024
LOCK_TTL_SECONDS = 3
CLIENTS = ["alice.example.com"]
NEW_CLIENTS = ["bob.example.com", "carol.example.com", "dave.example.com"]
LOCK = PREFIX + "/.lock"
RESULT_LINE = re.compile(r"^(?:ok|changed): \[localhost\] => (\{.*\})$", re.M)
HOP_HEADERS = ("connection", "keep-alive", "proxy-connection", "transfer-encoding", "expect", "te", "upgrade")


# -- the proxy that kills at an exact request ---------------------------------------------------
class ObjectPut(object):
    """Kill at the ``nth`` PutObject of a PKI object, or at the PutObject of ``name`` (relative to the prefix)."""

    def __init__(self, nth=None, name=None):
        self.nth, self.name = nth, name

    def hit(self, method, key, count):
        if method != "PUT" or key == LOCK or not key.startswith(PREFIX + "/"):
            return False
        return count == self.nth if self.nth else key == "%s/%s" % (PREFIX, self.name)


class LockRelease(object):
    """Kill at the DeleteObject of the lock: every object landed, the lock still held."""

    @staticmethod
    def hit(method, key, count):  # pylint: disable=unused-argument
        return method == "DELETE" and key == LOCK


class KillingProxy(object):
    """HTTP on 127.0.0.1 forwarded to moto's server. Armed with a job's pid and a trigger, it kills
    the job's whole process tree when the trigger's request arrives, and never forwards that request."""

    def __init__(self, upstream):
        self.upstream = urllib.parse.urlparse(upstream)
        self.lock = threading.Lock()
        self.pid, self.trigger, self.fired, self.killed, self.object_puts, self.seen = None, None, None, [], 0, []
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_any(self):
                proxy.handle(self)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = do_any

            def log_message(self, *args):  # pylint: disable=arguments-differ
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = "http://127.0.0.1:%d" % self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def arm(self, pid, trigger):
        with self.lock:
            self.pid, self.trigger, self.fired, self.killed, self.object_puts, self.seen = pid, trigger, None, [], 0, []

    def disarm(self):
        self.arm(None, None)

    def handle(self, request):
        key = urllib.parse.unquote(urllib.parse.urlparse(request.path).path).lstrip("/").split("/", 1)[-1]
        with self.lock:
            if self.fired:  # nothing of a killed job gets through (there should be nothing)
                request.close_connection = True
                return
            if request.command == "PUT" and key != LOCK and key.startswith(PREFIX + "/"):
                self.object_puts += 1
            if self.trigger is not None and self.trigger.hit(request.command, key, self.object_puts):
                # Killed while this request waits: it never reaches S3.
                self.fired = (request.command, key, self.object_puts)
                self.killed = freeze_and_kill(self.pid)
                request.close_connection = True
                return
            self.seen.append((request.command, key))
        # botocore sends every body here with its Content-Length (no chunked transfer encoding)
        body = request.rfile.read(int(request.headers.get("Content-Length") or 0))
        headers = dict((name, value) for name, value in request.headers.items() if name.lower() not in HOP_HEADERS)
        headers["Content-Length"] = str(len(body))
        connection = http.client.HTTPConnection(self.upstream.hostname, self.upstream.port, timeout=120)
        try:
            connection.request(request.command, request.path, body=body, headers=headers)
            answer = connection.getresponse()
            data = answer.read()
        finally:
            connection.close()
        request.send_response_only(answer.status, answer.reason)  # moto's Date and Server, not a second pair of ours
        for name, value in answer.getheaders():
            if name.lower() not in HOP_HEADERS and name.lower() != "content-length":
                request.send_header(name, value)
        request.send_header("Content-Length", str(len(data)))
        request.end_headers()
        if request.command != "HEAD":
            request.wfile.write(data)

    def close(self):
        self.server.shutdown()
        self.server.server_close()


# -- fixtures -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def proxy(moto_server):
    killing = KillingProxy(moto_server.url)
    try:
        yield killing
    finally:
        killing.close()


@pytest.fixture(scope="module")
def template_pki(tmp_path_factory):
    """The PKI the first job starts from (CA, server, alice; RSA 1024), made by the playbook itself on a local
    folder, so that the jobs find nothing to change in it."""
    root = tmp_path_factory.mktemp("template")
    settings = {"pki_dir": str(root / "pki"), "stage_dir": str(root / "stage"), "pki_cache_dir": str(root / "cache"),
                "pki_key_size": KEY_SIZE, "pki_clients": CLIENTS, "clientvpn_acm_import": False,
                "ansible_python_interpreter": sys.executable}
    playbook(["clientvpn.pki.mutual_auth", "-e", json.dumps(settings)])
    return str(root / "pki")


class Remote(object):
    """One test's bucket and KMS key, the PKI seeded there, and the jobs run against it through the proxy."""

    def __init__(self, server, proxy, bucket, root):
        self.server, self.proxy, self.bucket, self.root = server, proxy, bucket, root
        kwargs = dict(endpoint_url=server.url, region_name=REGION)
        self.s3 = boto3.client("s3", **kwargs)
        self.s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
        self.key_id = boto3.client("kms", **kwargs).create_key(Description=bucket)["KeyMetadata"]["KeyId"]

    def module_args(self, pki_dir, state, **extra):
        return dict(dict(pki_dir=str(pki_dir), bucket=self.bucket, prefix=PREFIX, state=state, region=REGION,
                         endpoint_url=self.server.url, kms_key_id=self.key_id), **extra)

    def seed(self, template):
        work = os.path.join(self.root, "seed")
        ok("vpn_pki_s3", self.module_args(work, "pull"))
        shutil.copytree(template, work, dirs_exist_ok=True)
        ok("vpn_pki_s3", self.module_args(work, "push"))

    def objects(self):
        """{name relative to the prefix: ETag}, the lock included."""
        listing = self.s3.list_objects_v2(Bucket=self.bucket, Prefix=PREFIX + "/").get("Contents", [])
        return dict((item["Key"][len(PREFIX) + 1:], item["ETag"]) for item in listing)

    def read(self, name):
        return self.s3.get_object(Bucket=self.bucket, Key=PREFIX + "/" + name)["Body"].read()

    def job(self, name):
        """ansible-playbook clientvpn.pki.mutual_auth adding the new clients, as a new AWX container runs it
        (its own empty working folder; the staging folder kept on a volume)."""
        settings = {"pki_dir": os.path.join(self.root, name, "pki"), "stage_dir": os.path.join(self.root, "stage"),
                    "pki_cache_dir": os.path.join(self.root, name, "cache"), "pki_key_size": KEY_SIZE,
                    "pki_clients": CLIENTS + NEW_CLIENTS, "clientvpn_acm_import": False,
                    "pki_s3_bucket": self.bucket, "pki_s3_prefix": PREFIX, "pki_s3_kms_key_id": self.key_id,
                    "pki_s3_lock_ttl_seconds": LOCK_TTL_SECONDS, "pki_s3_lock_owner": name,
                    "aws_region": REGION, "aws_endpoint_url": self.proxy.url, "ansible_python_interpreter": sys.executable}
        return ["clientvpn.pki.mutual_auth", "-e", json.dumps(settings)]


@pytest.fixture
def remote(moto_server, proxy, request, monkeypatch, tmp_path):
    fake_aws_environment(monkeypatch, tmp_path)
    point = request.node.name.rsplit("[", 1)[-1]
    bucket = "crash-%s-%s" % (re.sub(r"[^a-z0-9]+", "-", point.lower()).strip("-")[:30], uuid.uuid4().hex[:6])
    yield Remote(moto_server, proxy, bucket, str(tmp_path))
    proxy.disarm()


def run_killed(remote, trigger):
    """The first job, killed by the proxy at ``trigger``: (what fired, the requests forwarded before)."""
    collections_path()
    token = uuid.uuid4().hex
    env = dict(os.environ, ANSIBLE_LOCALHOST_WARNING="false", ANSIBLE_NOCOLOR="1", **{TOKEN_VARIABLE: token})
    log = os.path.join(remote.root, "killed-job.log")
    with open(log, "wb") as out:
        job = subprocess.Popen(["ansible-playbook"] + remote.job("killed-job"), env=env, stdin=subprocess.DEVNULL, stdout=out,
                               stderr=subprocess.STDOUT)
    remote.proxy.arm(job.pid, trigger)
    try:
        job.wait(timeout=300)
    finally:
        if job.poll() is None:
            freeze_and_kill(job.pid)
            job.wait()
    fired, killed, seen = remote.proxy.fired, remote.proxy.killed, list(remote.proxy.seen)
    remote.proxy.disarm()
    with open(log) as handle:
        output = handle.read()
    assert fired, "the job ended (rc=%s) before the kill point:\n%s" % (job.returncode, output[-3000:])
    assert_all_dead(killed, token)
    return fired, seen


# -- the invariants --------------------------------------------------------------------------------
def assert_consistent(remote, folder):
    """S3's PKI, pulled without the lock into ``folder``: whole and openssl-valid."""
    objects = remote.objects()
    assert ".lock" not in objects, "a lock was left: %s" % remote.read(".lock")
    assert b"PRIVATE KEY" not in remote.read("private/ca.key.kms") and "private/ca.key" not in objects  # still sealed
    assert not [name for name in objects if name.startswith("private/") and name.endswith(".key")], sorted(objects)
    ok("vpn_pki_s3", remote.module_args(folder, "pull", lock=False))

    rows = [line.split("\t") for line in _text(os.path.join(folder, "index.txt")).splitlines()]
    serials = [row[3] for row in rows]
    assert len(serials) == len(set(serials)), "a serial twice in index.txt: %s" % serials
    valid = dict((row[3], row[5].rsplit("CN=", 1)[1]) for row in rows if row[0] == "V")
    issued = sorted(name[:-4] for name in os.listdir(os.path.join(folder, "issued")))
    for name in issued:
        serial = openssl("x509", "-in", os.path.join(folder, "issued", name + ".crt"), "-noout", "-serial").stdout.strip().split("=")[1]
        assert valid.get(serial.upper()) == name, "issued/%s.crt (serial %s) has no V row in index.txt" % (name, serial)
    # Serials are random (easy-rsa 3's default), so "serial" is not above every issued serial: it must follow the
    # last one issued and be free, or openssl ca (easyrsa with EASYRSA_RAND_SN=no) would issue a serial twice.
    next_serial = _text(os.path.join(folder, "serial")).strip()
    assert next_serial not in serials, "serial %s is already in index.txt: openssl ca would issue it twice" % next_serial
    assert "%X" % (int(next_serial, 16) - 1) in serials, "serial %s does not follow an issued serial" % next_serial

    clients = sorted(valid.values())
    assert clients == sorted(CLIENTS + NEW_CLIENTS + ["server"]), "the valid certificates are %s" % clients
    assert issued == clients
    copies = sorted(name[:-4] for name in os.listdir(os.path.join(folder, "certs_by_serial")))
    assert copies == sorted(valid), "certs_by_serial/ holds %s, the V rows are %s" % (copies, sorted(valid))
    keys = sorted(name[:-4] for name in os.listdir(os.path.join(folder, "private")) if name != "ca.key")
    assert keys == issued, "private/ holds keys of %s" % keys
    certificates = [os.path.join(folder, "issued", name + ".crt") for name in issued]
    openssl("verify", "-CAfile", os.path.join(folder, "ca.crt"), *certificates)
    for name in issued:  # each certificate with its private key
        key = openssl("pkey", "-in", os.path.join(folder, "private", name + ".key"), "-pubout").stdout
        assert openssl("x509", "-in", os.path.join(folder, "issued", name + ".crt"), "-noout", "-pubkey").stdout == key, name
    return objects


def _text(path):
    with open(path) as handle:
        return handle.read()


def task_results(output):
    """The results of the tasks, from ansible-playbook -v with the JSON result format."""
    return [json.loads(match.group(1)) for match in RESULT_LINE.finditer(output)]


# -- the kill points -------------------------------------------------------------------------------
# The push of the three clients: their keys, requests, certificates, copies by serial (12 objects), then
# index.txt.old, serial.old, serial, index.txt (16), then the release of the lock.
KILL_POINTS = {
    "first-object": ObjectPut(nth=1),  # nothing landed but the renewal of the lock
    "middle": ObjectPut(nth=8),  # the keys, the requests and bob's certificate landed
    "before-serial": ObjectPut(name="serial"),  # every file, no serial, no row
    "before-index": ObjectPut(name="index.txt"),  # the serial moved on, no row
    "before-lock-release": LockRelease(),  # everything landed, the lock still held
}


@pytest.mark.parametrize("point", list(KILL_POINTS))
def test_a_push_killed_at_any_instant_is_completed_by_the_next_job(remote, template_pki, point):
    remote.seed(template_pki)
    before = remote.objects()
    fired, seen = run_killed(remote, KILL_POINTS[point])
    landed = [key[len(PREFIX) + 1:] for method, key in seen if method == "PUT" and key.startswith(PREFIX + "/") and key != LOCK]
    print("\n%s: killed at %s %s (object PUT #%d); landed: %s" % (point, fired[0], fired[1], fired[2], " ".join(landed)))
    after_kill = remote.objects()
    assert after_kill.pop(".lock") and before.pop(".lock", None) is None  # held by the dead job
    # exactly the objects before the kill point landed, and nothing else changed
    assert len(landed) == fired[2] - (1 if fired[0] == "PUT" else 0)
    assert sorted(name for name in after_kill if before.get(name) != after_kill[name]) == sorted(landed)
    assert set(after_kill) == set(before) | set(landed)

    second = playbook(remote.job("next-job") + ["-v"], extra_env={"ANSIBLE_CALLBACK_RESULT_FORMAT": "json"})
    pulled = [result for result in task_results(second.stdout) if result.get("state") == "pull"]
    assert len(pulled) == 1 and pulled[0]["lock"]["status"] == "taken over", pulled
    # named as the pull named it (pki_s3_lock_owner), not as the push process that renewed the lease
    assert pulled[0]["lock"]["taken_over_from"].startswith("killed-job (taken at "), pulled[0]["lock"]
    issued = [result["summary"] for result in task_results(second.stdout) if sum(result.get("summary", {}).values()) == len(CLIENTS + NEW_CLIENTS)]
    print("%s: the next job's clients: %s" % (point, issued))
    objects = assert_consistent(remote, os.path.join(remote.root, "check"))

    third = playbook(remote.job("third-job"))
    assert recap(third.stdout)["changed"] == 0, third.stdout[-3000:]
    assert remote.objects() == objects
