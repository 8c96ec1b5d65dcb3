"""Two runs at once on one PKI: the directory lock keeps serials unique and
index.txt whole (without it, each run would write back its own view)."""

import json
import os
import subprocess
import sys

from conftest import collections_path, openssl

NAMES_PER_RUN = 12


def _start(pki, prefix):
    args = {"pki_dir": pki, "name": ["%s%02d" % (prefix, n) for n in range(NAMES_PER_RUN)], "type": "client", "key_size": 1024}
    return subprocess.Popen(
        [sys.executable, "-m", "ansible_collections.clientvpn.pki.plugins.modules.vpn_cert"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=dict(os.environ, PYTHONPATH=collections_path()),
    ), json.dumps({"ANSIBLE_MODULE_ARGS": args})


def test_parallel_runs_keep_index_consistent(ca):
    runs = [_start(ca, prefix) for prefix in ("alpha", "beta")]
    for proc, payload in runs:
        proc.stdin.write(payload)
        proc.stdin.close()
    results = []
    for proc, payload in runs:
        assert proc.wait(timeout=300) == 0, proc.stderr.read()
        results.append(json.loads(proc.stdout.read()))

    serials = [entry["serial"] for result in results for entry in result["certificates"].values()]
    assert len(serials) == len(set(serials)) == 2 * NAMES_PER_RUN
    rows = open(os.path.join(ca, "index.txt")).read().splitlines()
    assert sorted(row.split("\t")[3] for row in rows) == sorted(serials)
    for result in results:
        for name, entry in result["certificates"].items():
            assert openssl("x509", "-in", entry["certificate"], "-noout", "-serial").stdout.strip() == "serial=" + entry["serial"]
