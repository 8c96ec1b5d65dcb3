"""Shared helpers of the system tests: real files, real openssl / easyrsa /
ansible-playbook processes, the collection as Ansible sees it.

A tool these tests need (openssl, easyrsa) that is missing makes them fail
when CI=true, and skip with the reason otherwise; `make test` installs them
when it runs as root.
"""

import glob
import hashlib
import json
import os
import shutil
import subprocess
import sys

import pytest

EASYRSA_DIR = "/usr/share/easy-rsa"
# What a Client VPN endpoint's "Download client configuration" gives (%s: its CA certificates).
ENDPOINT_CONFIG = """client
dev tun
proto udp
remote cvpn-endpoint-0123456789abcdef0.prod.clientvpn.eu-west-1.amazonaws.com 443
remote-random-hostname
resolv-retry infinite
nobind
remote-cert-tls server
verify-x509-name server name
cipher AES-256-GCM
verb 3
<ca>
%s</ca>
"""


def collections_path():
    path = os.environ.get("ANSIBLE_COLLECTIONS_PATH", "").split(os.pathsep)[0]
    if not path or not os.path.isdir(os.path.join(path, "ansible_collections", "clientvpn", "pki")):
        pytest.fail("ANSIBLE_COLLECTIONS_PATH must hold ansible_collections/clientvpn/pki: run these tests through `make system`")
    return path


def require(tool):
    """Return the tool's path; fail in CI, skip elsewhere, when it is missing."""
    path = shutil.which(tool) or (os.path.join(EASYRSA_DIR, tool) if os.path.exists(os.path.join(EASYRSA_DIR, tool)) else None)
    if path:
        return path
    message = "%s is not installed (make test installs it when run as root: see the Makefile's SYSTEM_PACKAGES)" % tool
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)


def find_python(version):
    """A Python ``version`` (``"3.9"``) interpreter: pyenv's, else one on PATH (not a pyenv shim,
    which fails for a version pyenv has not selected); fails in CI, skips elsewhere, when there is none."""
    found = sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/%s.*/bin/python%s" % (version, version))))
    on_path = shutil.which("python" + version)
    if found:
        return found[-1]
    if on_path and "/shims/" not in on_path:
        return on_path
    return require("python" + version)


def run_module(module, args, check_mode=False, diff=False, extra_env=None):
    """Run a module the way AnsiballZ does (args file, JSON out); returns (rc, result)."""
    root = collections_path()
    args = dict(args, _ansible_check_mode=check_mode, _ansible_diff=diff)
    proc = subprocess.run(
        [sys.executable, "-m", "ansible_collections.clientvpn.pki.plugins.modules." + module],
        input=json.dumps({"ANSIBLE_MODULE_ARGS": args}),
        capture_output=True,
        text=True,
        env=dict(os.environ, PYTHONPATH=root, **(extra_env or {})),
        timeout=300,
        check=False,
    )
    try:
        result = json.loads(proc.stdout)
    except ValueError:
        raise AssertionError("module %s printed no JSON: rc=%s\n%s\n%s" % (module, proc.returncode, proc.stdout, proc.stderr))
    return proc.returncode, result


def ok(module, args, **kwargs):
    rc, result = run_module(module, args, **kwargs)
    assert rc == 0 and not result.get("failed"), result.get("msg", result)
    return result


def failed(module, args, **kwargs):
    rc, result = run_module(module, args, **kwargs)
    assert rc != 0 and result.get("failed"), "expected a failure, got %s" % result
    return result["msg"]


def snapshot(root):
    """Every path under root with its mode and content hash: 'nothing changed' made checkable."""
    state = {}
    for directory, dirs, files in os.walk(root):
        for name in dirs + files:
            path = os.path.join(directory, name)
            st = os.lstat(path)
            digest = None
            if os.path.isfile(path):
                with open(path, "rb") as handle:
                    digest = hashlib.sha256(handle.read()).hexdigest()
            state[os.path.relpath(path, root)] = (oct(st.st_mode), digest)
    return state


def playbook(args, check=False, extra_env=None, succeed=True):
    """Run ansible-playbook; returns the CompletedProcess (output in .stdout). It must succeed,
    or with ``succeed=False`` fail."""
    collections_path()
    command = ["ansible-playbook"] + args + (["--check"] if check else [])
    env = dict(os.environ, ANSIBLE_LOCALHOST_WARNING="false", ANSIBLE_NOCOLOR="1", **(extra_env or {}))
    proc = subprocess.run(command, capture_output=True, text=True, env=env, timeout=900, check=False)
    assert (proc.returncode == 0) == succeed, proc.stdout[-4000:] + proc.stderr[-2000:]
    return proc


def recap(output):
    """The counters of the PLAY RECAP line for localhost."""
    for line in output.splitlines():
        if line.startswith("localhost") and "ok=" in line:
            return dict((key, int(value)) for key, value in (field.split("=") for field in line.split()[2:]))
    raise AssertionError("no PLAY RECAP in:\n" + output[-2000:])


def openssl(*args, check=True):
    proc = subprocess.run([require("openssl")] + list(args), capture_output=True, text=True, check=False)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def easyrsa(workdir, pki, *args, extra_env=None):
    """Run easyrsa from a make-cadir working copy, in batch mode, like the seed procedure."""
    env = dict(os.environ, EASYRSA_BATCH="1", EASYRSA_PKI=pki, **(extra_env or {}))
    proc = subprocess.run([os.path.join(workdir, "easyrsa")] + list(args), cwd=workdir, env=env, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, "easyrsa %s failed:\n%s\n%s" % (" ".join(args), proc.stdout, proc.stderr)
    return proc.stdout + proc.stderr


@pytest.fixture
def easyrsa_workdir(tmp_path):
    require("easyrsa")
    workdir = str(tmp_path / "easy-rsa")
    subprocess.run([require("make-cadir"), workdir], check=True)
    # make-cadir's vars only repeats the defaults, and easy-rsa 3.1 refuses to run
    # when it also finds one in the PKI (init-pki puts one there).
    os.unlink(os.path.join(workdir, "vars"))
    return workdir


@pytest.fixture
def ca(tmp_path):
    """A PKI directory with a fresh CA (RSA 2048, no passphrase)."""
    pki = str(tmp_path / "pki")
    ok("vpn_ca", {"pki_dir": pki})
    return pki


def start_moto_server(state_dir):
    """moto's server (tests/tools/local_acm.py) started on a free 127.0.0.1 port, recording every request;
    the caller stops it. Fails in CI, skips elsewhere, when moto is not installed."""
    try:
        import moto.server  # noqa: F401 pylint: disable=unused-import
    except ImportError:
        message = "moto[server] is not installed (make test installs it in .venv)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tools"))
    from local_acm import LocalAcm  # pylint: disable=import-outside-toplevel

    server = LocalAcm(state_dir)
    server.start()
    return server


def fake_aws_environment(monkeypatch, tmp_path):
    """Fake credentials and nothing else from the environment: no AWS account, profile, endpoint, region
    or AWX job of the machine running the tests is ever used."""
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_URL", "AWS_REGION",
                 "AWS_DEFAULT_REGION", "AWS_MAX_ATTEMPTS", "AWS_RETRY_MODE", "JOB_ID", "AWX_JOB_ID"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


@pytest.fixture(scope="module")
def moto_server(tmp_path_factory):
    """moto's server (S3, KMS, IAM) on a free 127.0.0.1 port, recording every request; one per test file."""
    server = start_moto_server(str(tmp_path_factory.mktemp("moto")))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def local_acm(tmp_path, monkeypatch):
    """moto's server on a free 127.0.0.1 port: a real HTTP ACM endpoint, stopped afterwards.

    ``local_acm.requests()`` lists the ACM operations it received (moto's recorder).
    """
    endpoint = start_moto_server(str(tmp_path / "local-acm"))
    fake_aws_environment(monkeypatch, tmp_path)
    try:
        yield endpoint
    finally:
        endpoint.stop()
