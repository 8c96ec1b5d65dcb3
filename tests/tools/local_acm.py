# Copyright: clientvpn.pki contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A real HTTP ACM endpoint on 127.0.0.1: moto's server, for the tests and `make demo`.

moto keeps its state in memory. To let a second `make demo` find what the
first imported, every request is recorded (moto's own recorder) in the state
directory and replayed at the next start, after seeding moto's random
generator with the same value, so the replayed imports get the same ARNs.
The recording is also how the tests count ACM calls: one line per request.

    local_acm.py start --state-dir DIR   # prints the endpoint URL; server keeps running
    local_acm.py stop --state-dir DIR
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

SEED = 20261124
RECORDING = "acm-recording.jsonl"
PIDFILE = "acm-endpoint.json"


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _post(url):
    urllib.request.urlopen(urllib.request.Request(url, data=b"", method="POST"), timeout=60).read()


class LocalAcm(object):
    def __init__(self, state_dir):
        self.state_dir = os.path.abspath(state_dir)
        self.recording = os.path.join(self.state_dir, RECORDING)
        self.process = None
        self.url = None

    def start(self, detach=False):
        os.makedirs(self.state_dir, exist_ok=True)
        port = _free_port()
        self.url = "http://127.0.0.1:%d" % port
        env = dict(os.environ, MOTO_ENABLE_RECORDING="True", MOTO_RECORDER_FILEPATH=self.recording)
        log = open(os.path.join(self.state_dir, "acm-endpoint.log"), "ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            env=env, stdout=log, stderr=log, start_new_session=detach,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(self.url + "/moto-api/", timeout=2).read()
                break
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("moto server did not start; see %s/acm-endpoint.log" % self.state_dir)
                time.sleep(0.1)
        _post(self.url + "/moto-api/seed?a=%d" % SEED)
        if os.path.exists(self.recording) and os.path.getsize(self.recording):
            _post(self.url + "/moto-api/recorder/replay-recording")
        with open(os.path.join(self.state_dir, PIDFILE), "w") as handle:
            json.dump({"pid": self.process.pid, "url": self.url}, handle)
        return self.url

    def stop(self):
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=30)
        pidfile = os.path.join(self.state_dir, PIDFILE)
        if os.path.exists(pidfile):
            os.unlink(pidfile)

    def requests(self):
        """The ACM operations received so far, in order (from the recording)."""
        if not os.path.exists(self.recording):
            return []
        operations = []
        with open(self.recording) as handle:
            for line in handle:
                target = json.loads(line).get("headers", {}).get("X-Amz-Target", "")
                if target.startswith("CertificateManager."):
                    operations.append(target.split(".", 1)[1])
        return operations


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["start", "stop"])
    parser.add_argument("--state-dir", required=True)
    args = parser.parse_args()
    if args.command == "start":
        print(LocalAcm(args.state_dir).start(detach=True))
        return 0
    pidfile = os.path.join(args.state_dir, PIDFILE)
    if os.path.exists(pidfile):
        with open(pidfile) as handle:
            pid = json.load(handle)["pid"]
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        os.unlink(pidfile)
    return 0


if __name__ == "__main__":
    sys.exit(main())
