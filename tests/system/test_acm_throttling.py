"""Throttling over real HTTP: botocore's standard retry mode (set in aws.py), not
a loop of ours, gets vpn_acm_import through an ACM that says "Rate exceeded".

A small threaded HTTP proxy on 127.0.0.1 sits in front of moto's server. It
answers POSTs with HTTP 400 ThrottlingException as told, and forwards every
other request to moto unchanged (method, path, headers, body), returning
moto's status, headers and body.
"""

import http.client
import http.server
import json
import os
import subprocess
import sys
import threading
import time

import pytest

from conftest import collections_path, ok, run_module


REGION = "eu-west-1"
THROTTLED_BODY = json.dumps({"__type": "ThrottlingException", "message": "Rate exceeded"}).encode()
# aws.py: Config(retries={"mode": "standard", "total_max_attempts": MAX_ATTEMPTS}), MAX_ATTEMPTS = 5
MAX_ATTEMPTS = 5
HOP_BY_HOP = ("connection", "keep-alive", "transfer-encoding", "content-length")


class ThrottlingProxy(object):
    """Throttles the first ``throttle`` POSTs (all of them when None), forwards the rest to ``upstream``."""

    def __init__(self, upstream, throttle):
        self.upstream = upstream.split("//", 1)[1]
        self.throttle = throttle
        self.lock = threading.Lock()
        self.posts = 0
        self.log = []  # (X-Amz-Target, "throttled" or moto's status)
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self.url = "http://127.0.0.1:%d" % self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)

    @property
    def throttled(self):
        return [target for target, outcome in self.log if outcome == "throttled"]

    @property
    def forwarded(self):
        return [(target, outcome) for target, outcome in self.log if outcome != "throttled"]

    def _throttle_now(self, method):
        if method != "POST":
            return False
        with self.lock:
            self.posts += 1
            return self.throttle is None or self.posts <= self.throttle

    def _handler_class(self):
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _handle(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                target = self.headers.get("X-Amz-Target", "")
                if proxy._throttle_now(self.command):
                    with proxy.lock:
                        proxy.log.append((target, "throttled"))
                    self._reply(400, [("Content-Type", "application/x-amz-json-1.1")], THROTTLED_BODY)
                    return
                upstream = http.client.HTTPConnection(proxy.upstream, timeout=60)
                try:
                    upstream.request(self.command, self.path, body=body or None, headers=dict(self.headers.items()))
                    response = upstream.getresponse()
                    data = response.read()
                    headers = [(key, value) for key, value in response.getheaders() if key.lower() not in HOP_BY_HOP]
                    status = response.status
                finally:
                    upstream.close()
                with proxy.lock:
                    proxy.log.append((target, status))
                self._reply(status, headers, data)

            def _reply(self, status, headers, data):
                self.send_response_only(status)
                for key, value in headers:
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(data)
                self.close_connection = True

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _handle

            def log_message(self, *args):  # pylint: disable=arguments-differ
                pass

        return Handler


def proxy_fixture(throttle):
    @pytest.fixture
    def fixture(local_acm):  # pylint: disable=redefined-outer-name
        proxy = ThrottlingProxy(local_acm.url, throttle).start()
        try:
            yield proxy
        finally:
            proxy.stop()
    return fixture


throttle_twice = proxy_fixture(2)
throttle_always = proxy_fixture(None)


def import_args(pki, endpoint_url):
    """The server certificate of the PKI, by name."""
    return {
        "pki_dir": pki,
        "name": "server",
        "region": REGION,
        "endpoint_url": endpoint_url,
    }


def run_module_within(module, args, timeout):
    """run_module with a caller-chosen timeout: (rc, result, seconds)."""
    root = collections_path()
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "ansible_collections.clientvpn.pki.plugins.modules." + module],
        input=json.dumps({"ANSIBLE_MODULE_ARGS": dict(args, _ansible_check_mode=False, _ansible_diff=False)}),
        capture_output=True,
        text=True,
        env=dict(os.environ, PYTHONPATH=root),
        timeout=timeout,
        check=False,
    )
    elapsed = time.monotonic() - started
    try:
        result = json.loads(proc.stdout)
    except ValueError:
        raise AssertionError("module %s printed no JSON: rc=%s\n%s\n%s" % (module, proc.returncode, proc.stdout, proc.stderr))
    return proc.returncode, result, elapsed


def test_throttled_twice_then_imported(ca, local_acm, throttle_twice):  # pylint: disable=redefined-outer-name
    ok("vpn_cert", {"pki_dir": ca, "name": ["server"], "type": "server"})
    rc, result = run_module("vpn_acm_import", import_args(ca, throttle_twice.url))
    assert rc == 0 and not result.get("failed"), result
    assert result["action"] == "imported"
    assert result["changed"] is True
    assert result["certificate_arn"].startswith("arn:aws:acm:%s:" % REGION)
    # botocore retried the same request; the module saw one read and one write.
    assert result["api_calls"] == {"read": 1, "write": 1}
    assert throttle_twice.throttled == ["CertificateManager.ListCertificates"] * 2
    assert throttle_twice.forwarded == [("CertificateManager.ListCertificates", 200), ("CertificateManager.ImportCertificate", 200)]
    # moto never saw the throttled attempts
    assert local_acm.requests() == ["ListCertificates", "ImportCertificate"]

    # Once the throttling is over, a second run through the same proxy is one read.
    again = ok("vpn_acm_import", import_args(ca, throttle_twice.url))
    assert again["action"] == "unchanged"
    assert again["changed"] is False
    assert again["certificate_arn"] == result["certificate_arn"]
    assert again["api_calls"] == {"read": 1, "write": 0}
    assert len(throttle_twice.throttled) == 2
    assert throttle_twice.forwarded[2:] == [("CertificateManager.GetCertificate", 200)]


def test_always_throttled_fails_clearly_in_bounded_time(ca, local_acm, throttle_always):  # pylint: disable=redefined-outer-name
    ok("vpn_cert", {"pki_dir": ca, "name": ["server"], "type": "server"})
    rc, result, elapsed = run_module_within("vpn_acm_import", import_args(ca, throttle_always.url), timeout=180)
    assert rc != 0 and result.get("failed"), result
    assert "ThrottlingException" in result["msg"], result["msg"]
    assert "list_certificates" in result["msg"], result["msg"]
    assert "Rate exceeded" in result["msg"], result["msg"]
    assert throttle_always.forwarded == []
    assert elapsed < 180
    assert local_acm.requests() == []
    assert not os.path.exists(os.path.join(ca, "acm-certificates.json"))
    # botocore gave up on the one call, after a bounded number of attempts ...
    attempts = throttle_always.throttled
    assert set(attempts) == {"CertificateManager.ListCertificates"}
    assert len(attempts) == MAX_ATTEMPTS
    # ... and the message tells how many.
    assert "still throttled after %d attempts" % MAX_ATTEMPTS in result["msg"], result["msg"]
