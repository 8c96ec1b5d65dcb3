# Copyright: clientvpn.pki contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""How long mutual_auth takes with the PKI in S3 (pki_s3_bucket), and how many S3 and KMS
requests it makes, when there is nothing to change: each run starts from an empty working
folder, as an AWX job in a new container does. Side by side in one run: the same playbook
on a PKI kept in a local folder.

Against moto's server on 127.0.0.1 (tests/tools/local_acm.py): the requests are real HTTP
requests, counted from moto's recording, but with no network latency; on AWS add about one
round trip (10-30 ms in-region) per request, most of them sequential.

    .venv/bin/python benchmarks/s3.py --clients 100,1000        # after `make collection`
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "tests", "tools"))

from local_acm import LocalAcm  # noqa: E402 pylint: disable=wrong-import-position

REGION, BUCKET, PREFIX = "eu-west-1", "bench-clientvpn-pki", "clientvpn/pki"


def _requests(recording, since):
    """{service operation: count} of the requests recorded after line ``since``; and the line count."""
    counts = collections.Counter()
    with open(recording) as handle:
        lines = handle.readlines()
    for line in lines[since:]:
        record = json.loads(line)
        target = record.get("headers", {}).get("X-Amz-Target", "")
        if target:
            counts["KMS " + target.split(".", 1)[1] if target.startswith("TrentService") else target] += 1
        else:
            counts["S3 %s" % record.get("method")] += 1
    return counts, len(lines)


def _run(settings, env, work):
    if os.path.exists(work):
        shutil.rmtree(work)
    args = ["ansible-playbook", "clientvpn.pki.mutual_auth", "-e", json.dumps(settings)]
    started = time.perf_counter()
    proc = subprocess.run(args, env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(proc.stdout[-3000:] + proc.stderr[-2000:])
    return seconds, proc.stdout


def measure(clients, repeat, root, server, env):
    import boto3  # pylint: disable=import-outside-toplevel

    kwargs = dict(endpoint_url=server.url, region_name=REGION)
    bucket = "%s-%d" % (BUCKET, clients)
    boto3.client("s3", **kwargs).create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
    key_id = boto3.client("kms", **kwargs).create_key()["KeyMetadata"]["KeyId"]
    names = ["client%d.domain.tld" % index for index in range(1, clients + 1)]
    work = os.path.join(root, "job")
    # The staging folder is not in S3: kept outside the job folder, as on a volume (docs/awx.md).
    s3 = {"pki_dir": work + "/pki", "stage_dir": root + "/stage-%d" % clients, "pki_clients": names, "pki_key_size": 1024, "clientvpn_acm_import": False,
          "pki_cache_dir": root + "/cache-%d" % clients, "pki_s3_bucket": bucket, "pki_s3_prefix": PREFIX, "pki_s3_kms_key_id": key_id,
          "aws_region": REGION, "aws_endpoint_url": server.url}
    local = dict(s3, pki_dir=root + "/local-%d/pki" % clients, stage_dir=root + "/local-%d/stage" % clients)
    for name in [n for n in local if n.startswith("pki_s3_")]:
        del local[name]
    print("building %d clients (RSA-1024), in S3 and locally" % clients, file=sys.stderr, flush=True)
    _run(s3, env, work)
    _run(local, env, work)
    rows = {"s3": [], "local": []}
    line = _requests(server.recording, 0)[1]
    for index in range(repeat):
        seconds, out = _run(s3, env, work)
        counts, line = _requests(server.recording, line)
        assert "changed=0" in out, out[-2000:]
        rows["s3"].append((seconds, counts))
        rows["local"].append((_run(local, env, root + "/unused")[0], None))
        print("N=%d run %d: S3 %.2f s (%s), local %.2f s" % (clients, index + 1, seconds, dict(counts), rows["local"][-1][0]), file=sys.stderr, flush=True)
    s3_median = statistics.median(seconds for seconds, counts in rows["s3"])
    local_median = statistics.median(seconds for seconds, counts in rows["local"])
    return "| %d | %.2f | %.2f | %.2f | %s |" % (clients, s3_median, local_median, s3_median - local_median,
                                                 ", ".join("%s %d" % item for item in sorted(rows["s3"][-1][1].items())))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--clients", default="100,1000")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    root = tempfile.mkdtemp(prefix="clientvpn-s3-bench-")
    server = LocalAcm(os.path.join(root, "moto"))
    env = dict(os.environ, AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test", ANSIBLE_NOCOLOR="1", ANSIBLE_LOCALHOST_WARNING="False",
               AWS_CONFIG_FILE=os.path.join(root, "none"), AWS_SHARED_CREDENTIALS_FILE=os.path.join(root, "none"), NO_PROXY="127.0.0.1")
    env.setdefault("ANSIBLE_COLLECTIONS_PATH", os.path.join(REPO, ".build", "collections"))
    os.environ.update((name, env[name]) for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "NO_PROXY"))
    server.start()
    try:
        lines = ["| clients | no-op with the PKI in S3 (s) | no-op, PKI in a local folder (s) | S3 cost (s) | requests of one S3 run |",
                 "|---|---|---|---|---|"]
        lines.extend(measure(int(n), args.repeat, root, server, env) for n in args.clients.split(","))
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
