"""The floors in requirements.txt are true: the managed host's Python with
exactly those versions (cryptography, boto3, botocore at their minimum; Python 3.9, the oldest claimed) runs
mutual_auth against a local ACM endpoint, changed then changed=0, client
certificates imported too. The controller is this venv's ansible-playbook;
only the modules run on the floor Python (ansible_python_interpreter)."""

import json
import os
import re
import subprocess

from conftest import find_python, playbook, recap

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def floors():
    """{package: minimum} from requirements.txt; every line must be a floor (>=)."""
    found = {}
    with open(os.path.join(REPO, "requirements.txt"), encoding="ascii") as handle:
        for line in handle:
            line = line.split("#", 1)[0].strip()
            if line:
                match = re.fullmatch(r"([A-Za-z0-9_.-]+)>=([0-9.]+)", line)
                assert match, "requirements.txt line %r is not a floor (package>=version)" % line
                found[match.group(1)] = match.group(2)
    return found


OLDEST_PYTHON = "3.9"


def test_mutual_auth_on_the_floor_versions(tmp_path, local_acm):
    pins = floors()
    assert set(pins) == {"cryptography", "boto3", "botocore"}, pins
    venv = tmp_path / "floor-venv"
    # The oldest managed-host Python the collection claims (README, tests/config.yml), with the oldest libraries.
    subprocess.run([find_python(OLDEST_PYTHON), "-m", "venv", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    install = subprocess.run([python, "-m", "pip", "install", "-q", "--disable-pip-version-check"]
                             + ["%s==%s" % item for item in sorted(pins.items())], capture_output=True, text=True, check=False)
    assert install.returncode == 0, install.stderr[-3000:]
    freeze = subprocess.run([python, "-m", "pip", "freeze"], capture_output=True, text=True, check=True).stdout.lower()
    for package, version in pins.items():
        assert re.search(r"^%s==%s(\.0)*$" % (package, re.escape(version)), freeze, re.M), (package, version, freeze)

    args = ["clientvpn.pki.mutual_auth", "-i", "localhost,", "-c", "local", "-e", "ansible_python_interpreter=%s" % python,
            "-e", "pki_dir=%s" % (tmp_path / "pki"), "-e", "stage_dir=%s" % (tmp_path / "stage"),
            "-e", json.dumps({"pki_clients": ["alice.example.com"], "acm_import_clients": True}),
            "-e", "aws_region=eu-west-1", "-e", "aws_endpoint_url=%s" % local_acm.url]
    first = recap(playbook(args).stdout)
    assert first["changed"] > 0 and first["failed"] == 0
    second = recap(playbook(args).stdout)
    assert second["changed"] == 0 and second["failed"] == 0
    assert local_acm.requests().count("ImportCertificate") == 2  # the server and alice, once each
