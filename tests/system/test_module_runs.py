"""A module runs in Ansible's worker (plugin_utils/backend_action.py) only where that changes
nothing but the time; everywhere else it runs as AnsiballZ. Each case here runs both ways and
must give what a normal module run gives: a remote host over ssh as another user, become,
delegate_to a host with another Python, async, a task environment, check mode, diff, no_log,
an unexpected exception, a warning and a deprecation, and Ctrl-C.

The "other" Python is Debian's /usr/bin/python3 with this venv's packages on PYTHONPATH,
through a wrapper that records who ran what (runs.log); the remote host is an sshd started
here on 127.0.0.1 for a user made here. Both need root (CI runs as root).
"""

import json
import os
import pwd
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import pytest

from conftest import collections_path, playbook, recap, require
from crashkit import descendants, proc_stat

USER = "cvpn-remote"
IN_WORKER = "module's backend in this worker"
ANSIBALLZ = re.compile(r"AnsiballZ_(vpn_\w+)\.py")
# A task environment is one of the things that send a module the AnsiballZ way.
ANSIBALLZ_WAY = {"CLIENTVPN_TEST": "ansiballz"}
BOTH_WAYS = (("worker", {}), ("ansiballz", {"environment": ANSIBALLZ_WAY}))


def _need_root():
    if os.geteuid() != 0:
        message = "needs root: another user, su and sshd (CI runs as root)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture(scope="module")
def lab():
    """A shared folder another user can use, that user, the other Python and an sshd for that user."""
    _need_root()
    sshd = "/usr/sbin/sshd" if os.path.exists("/usr/sbin/sshd") else require("sshd")  # Debian's openssh-server
    system_python = "/usr/bin/python3"
    if not os.access(system_python, os.X_OK):
        pytest.fail("%s is missing (Debian's python3)" % system_python)
    if subprocess.run(["id", USER], capture_output=True, check=False).returncode != 0:
        subprocess.run(["useradd", "--create-home", "--shell", "/bin/sh", USER], check=True)
    # Without a password but not locked ("!" locks the account, and sshd refuses even its key).
    subprocess.run(["usermod", "--password", "*", USER], check=True)
    user = pwd.getpwnam(USER)
    root = tempfile.mkdtemp(prefix="clientvpn-module-runs.", dir="/tmp")
    os.chmod(root, 0o755)
    log = os.path.join(root, "runs.log")
    open(log, "w").close()
    os.chmod(log, 0o666)
    # The modules' packages for that Python, whatever Python runs these tests (wheels for its version).
    site_packages = os.path.join(root, "site-packages")
    version = subprocess.run([system_python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    with open(os.path.join(os.path.dirname(__file__), "..", "..", "requirements-demo.txt")) as handle:
        pins = [line.strip() for line in handle if line.startswith(("cryptography==", "boto3==", "botocore=="))]
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check", "--target", site_packages,
                    "--python-version", version, "--only-binary=:all:"] + pins, check=True)
    python = os.path.join(root, "python")
    with open(python, "w") as handle:
        handle.write('#!/bin/sh\necho "$(id -un) $*" >> %s\nPYTHONPATH=%s exec %s "$@"\n' % (log, site_packages, system_python))
    os.chmod(python, 0o755)

    key = os.path.join(root, "id_ed25519")
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key], check=True)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", os.path.join(root, "host_key")], check=True)
    shutil.copy(key + ".pub", os.path.join(root, "authorized_keys"))
    os.makedirs("/run/sshd", exist_ok=True)
    port = 20000 + os.getpid() % 10000
    config = os.path.join(root, "sshd_config")
    with open(config, "w") as handle:
        handle.write("Port %d\nListenAddress 127.0.0.1\nHostKey %s/host_key\nPidFile %s/sshd.pid\nAuthorizedKeysFile %s/authorized_keys\n"
                     "StrictModes no\nPasswordAuthentication no\nUsePAM no\nSubsystem sftp /usr/lib/openssh/sftp-server\n" % (port, root, root, root))
    server = subprocess.Popen([sshd, "-D", "-e", "-f", config], stderr=open(os.path.join(root, "sshd.log"), "w"))
    inventory = os.path.join(root, "inventory.ini")
    with open(inventory, "w") as handle:
        handle.write(
            "localhost ansible_connection=local ansible_python_interpreter=%s\n"
            "other ansible_connection=local ansible_python_interpreter=%s\n"
            "remote ansible_host=127.0.0.1 ansible_port=%d ansible_user=%s ansible_ssh_private_key_file=%s "
            "ansible_ssh_common_args='-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null' ansible_python_interpreter=%s\n"
            % (_ansible_python(), python, port, USER, key, python)
        )
    lab = dict(root=root, user=user, log=log, python=python, inventory=inventory)
    try:
        yield lab
    finally:
        server.terminate()
        server.wait(timeout=10)
        shutil.rmtree(root, ignore_errors=True)


def _ansible_python():
    """The Python that runs ansible-playbook (its script's shebang): the one a module may run in the worker with."""
    with open(shutil.which("ansible-playbook")) as handle:
        return handle.readline()[2:].strip()


def _folder(lab, name, owner=None):
    path = os.path.join(lab["root"], name)
    os.mkdir(path, 0o700)
    if owner:
        os.chown(path, owner.pw_uid, owner.pw_gid)
    return path


def _play(path, hosts, tasks, inventory, extra=()):
    with open(path, "w") as handle:
        json.dump([{"hosts": hosts, "gather_facts": False, "tasks": tasks}], handle)
    return playbook(["-i", inventory, path, "-vvv"] + list(extra))


def _dump(path, names):
    """A task that writes the registered results ``names`` to ``path`` as JSON."""
    return {"ansible.builtin.copy": {"dest": path, "mode": "0600", "content": "{{ {%s} | to_json }}" % ", ".join("'%s': %s" % (n, n) for n in names)},
            "delegate_to": "localhost"}


def _cert_tasks(pki, label, extra):
    """The same small job on ``pki``: a CA, then two clients in check mode, for real, and again."""
    cert = {"clientvpn.pki.vpn_cert": {"pki_dir": pki, "name": ["alice", "bob"], "type": "client", "key_size": 1024}}
    return [
        dict({"clientvpn.pki.vpn_ca": {"pki_dir": pki, "key_size": 1024}}, **extra),
        dict(cert, check_mode=True, register=label + "_check", **extra),
        dict(cert, register=label + "_real", **extra),
        dict(cert, register=label + "_again", **extra),
    ]


def _essence(result):
    """What must not depend on the way the module ran (serials and dates do)."""
    return {
        "changed": result["changed"],
        "failed": result.get("failed", False),
        "summary": result.get("summary"),
        "actions": dict((name, item["action"]) for name, item in result.get("certificates", {}).items()),
    }


def test_every_way_to_run_a_module_gives_the_same_job(lab):
    """In the worker (localhost with Ansible's Python), and as AnsiballZ over ssh as another user,
    with become (su to that user), delegated to a host whose Python is another one, async, and
    with a task environment: the same changes, the same idempotency, each on its own Python."""
    user = lab["user"]
    pkis = dict(worker=_folder(lab, "pki-worker"), remote=_folder(lab, "pki-remote", user), become=_folder(lab, "pki-become", user),
                delegated=_folder(lab, "pki-delegated"), asynchronous=_folder(lab, "pki-async"))
    home = _folder(lab, "home")
    ways = dict(
        worker={}, remote={"delegate_to": "remote"},
        # The user cannot run Ansible's own Python (under /root): the other one, which it can.
        become={"become": True, "become_method": "su", "become_user": USER, "vars": {"ansible_python_interpreter": lab["python"]}},
        delegated={"delegate_to": "other"}, asynchronous={"async": 120, "poll": 1},
    )
    tasks = []
    for way, extra in ways.items():
        tasks += _cert_tasks(pkis[way], way, extra)
    # The task environment reaches the module: ~ in pki_dir is the HOME the task sets.
    tasks += _cert_tasks("~/pki", "environment", {"environment": {"HOME": home}})
    results_file = os.path.join(lab["root"], "results.json")
    labels = ["%s_%s" % (way, run) for way in list(ways) + ["environment"] for run in ("check", "real", "again")]
    proc = _play(os.path.join(lab["root"], "ways.json"), "localhost", tasks + [_dump(results_file, labels)], lab["inventory"])
    with open(results_file) as handle:
        results = json.load(handle)

    expected = [{"changed": True, "failed": False, "summary": {"created": 2}, "actions": {"alice": "created", "bob": "created"}},
                {"changed": True, "failed": False, "summary": {"created": 2}, "actions": {"alice": "created", "bob": "created"}},
                {"changed": False, "failed": False, "summary": {"unchanged": 2}, "actions": {"alice": "unchanged", "bob": "unchanged"}}]
    for way in list(ways) + ["environment"]:
        assert [_essence(results["%s_%s" % (way, run)]) for run in ("check", "real", "again")] == expected, way
    for way, pki in list(pkis.items()) + [("environment", os.path.join(home, "pki"))]:
        issued = sorted(os.listdir(os.path.join(pki, "issued")))
        assert issued == ["alice.crt", "bob.crt"], (way, issued)
    # Who ran what: only the worker way ran in the worker (its 4 tasks); each of the others ran
    # AnsiballZ (4 modules each) on the Python and as the user its host or become says.
    output = proc.stdout
    assert output.count(IN_WORKER) == 4, output[-3000:]
    with open(lab["log"]) as handle:
        runs = [line.split() for line in handle if ANSIBALLZ.search(line)]
    by_user = dict((name, sum(1 for line in runs if line[0] == name)) for name in ("root", USER))
    assert by_user == {"root": 4, USER: 8}, runs  # delegated as root; remote and become as the user
    assert os.stat(os.path.join(pkis["remote"], "issued", "alice.crt")).st_uid == user.pw_uid
    assert os.stat(os.path.join(pkis["become"], "private", "alice.key")).st_uid == user.pw_uid
    assert len(ANSIBALLZ.findall(output)) >= 12  # async and environment: Ansible's own Python, as AnsiballZ


def _run_both_ways(lab, name, make_tasks, extra=()):
    """The tasks once in the worker and once as AnsiballZ, each in a playbook of its own (a warning
    shown once is never shown again by the same ansible-playbook). Returns {way: (proc, results)}."""
    outcome = {}
    for way, extra_task in BOTH_WAYS:
        folder = _folder(lab, "%s-%s" % (name, way))
        tasks, labels = make_tasks(folder, extra_task)
        results_file = os.path.join(folder, "results.json")
        proc = _play(os.path.join(folder, "play.json"), "localhost", tasks + [_dump(results_file, labels)], lab["inventory"], extra)
        with open(results_file) as handle:
            outcome[way] = (proc, json.load(handle))
        assert (IN_WORKER in proc.stdout) == (way == "worker"), way
    return outcome


def test_check_mode_diff_and_no_log_either_way(lab):
    passphrase = "pass-%d-phrase" % os.getpid()

    def tasks(folder, extra):
        pki, stage = os.path.join(folder, "pki"), os.path.join(folder, "stage")
        cert = {"clientvpn.pki.vpn_cert": {"pki_dir": pki, "name": ["alice"], "type": "client", "key_size": 1024, "ca_passphrase": passphrase}}
        stage_task = {"clientvpn.pki.vpn_stage": {"dest": stage, "pki_dir": pki, "names": ["alice"]}}
        return [
            dict({"clientvpn.pki.vpn_ca": {"pki_dir": pki, "key_size": 1024, "passphrase": passphrase}}, **extra),
            dict(cert, check_mode=True, register="check", **extra),
            dict(cert, register="real", **extra),
            dict(stage_task, check_mode=True, diff=True, register="stage_check_diff", **extra),
            dict(stage_task, register="stage_no_diff", **extra),
        ], ["check", "real", "stage_check_diff", "stage_no_diff"]

    outcome = _run_both_ways(lab, "modes", tasks, extra=["-e", "ansible_inject_invocation=true"])
    for way, (proc, results) in outcome.items():
        output = proc.stdout + proc.stderr
        assert passphrase not in output, way  # no_log, even at -vvv
        # -vvv shows each task's invocation (ansible-core 2.21: when INJECT_INVOCATION is on): the option is there, its value is not.
        assert re.search(r'"ca_passphrase": "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"', output), way
        assert results["check"]["changed"] and results["real"]["changed"], way
        assert results["stage_check_diff"]["changed"] and results["stage_check_diff"]["diff"], way
        assert "diff" not in results["stage_no_diff"], way
    worker, ansiballz = outcome["worker"][1], outcome["ansiballz"][1]
    assert _essence(worker["check"]) == _essence(ansiballz["check"]) and _essence(worker["real"]) == _essence(ansiballz["real"])
    assert _without_folders(worker["stage_check_diff"]["diff"]) == _without_folders(ansiballz["stage_check_diff"]["diff"])
    # Check mode wrote nothing before the real run: the real run created alice either way.
    assert worker["real"]["summary"] == ansiballz["real"]["summary"] == {"created": 1}


def _without_folders(diff):
    return json.loads(json.dumps(diff).replace("modes-worker", "X").replace("modes-ansiballz", "X"))


def test_a_warning_and_a_deprecation_either_way(lab):
    def tasks(folder, extra):
        pki, stage = os.path.join(folder, "pki"), os.path.join(folder, "stage")
        os.mkdir(stage, 0o700)
        with open(os.path.join(stage, ".clientvpn-stage.json"), "w") as handle:
            handle.write("garbage")
        return [
            dict({"clientvpn.pki.vpn_ca": {"pki_dir": pki, "key_size": 1024, "state": "present"}}, register="deprecated", **extra),
            dict({"clientvpn.pki.vpn_stage": {"dest": stage, "pki_dir": pki, "names": [], "pki_files": ["ca_certificate"]}}, register="warned", **extra),
        ], ["deprecated", "warned"]

    for way, (proc, results) in _run_both_ways(lab, "messages", tasks).items():
        output = proc.stdout + proc.stderr
        assert "[WARNING]: " in output and "is not a vpn_stage manifest" in output, way
        assert [text for text in results["warned"]["warnings"] if "is not a vpn_stage manifest" in json.dumps(text)], way
        assert re.search(r"DEPRECATION WARNING\]: Param 'state' is deprecated", output), way
        deprecations = [json.dumps(item) for item in results["deprecated"]["deprecations"]]
        assert [text for text in deprecations if "Param 'state' is deprecated" in text and "1.0.0" in text], way


FAULTY_SPEC = '''
from __future__ import annotations
from ansible_collections.clientvpn.pki.plugins.module_utils.module_runner import ModuleSpec


class Explodes(object):
    def run(self, check_mode):
        raise RuntimeError("unexpected-%s")


SPEC = ModuleSpec("explode", dict(pki_dir=dict(type="path")), lambda params, check_mode: Explodes())
'''


@pytest.fixture
def faulty_collection(tmp_path):
    """A collection whose one module (clientvpn.pki's module and action pattern) raises an exception nobody expects."""
    marker = "boom%d" % os.getpid()
    root = tmp_path / "collections" / "ansible_collections" / "cvpntest" / "faulty"
    for folder, text in (("module_utils", FAULTY_SPEC % marker),
                         ("modules", "from ansible_collections.clientvpn.pki.plugins.module_utils.module_runner import run_module\n"
                                     "from ansible_collections.cvpntest.faulty.plugins.module_utils.explode import SPEC\n"
                                     "def main():\n    run_module(SPEC)\nif __name__ == '__main__':\n    main()\n"),
                         ("action", "from ansible_collections.clientvpn.pki.plugins.plugin_utils.backend_action import BackendAction\n"
                                    "from ansible_collections.cvpntest.faulty.plugins.module_utils.explode import SPEC\n"
                                    "class ActionModule(BackendAction):\n    spec = SPEC\n")):
        (root / "plugins" / folder).mkdir(parents=True)
        (root / "plugins" / folder / "explode.py").write_text(text)
    (root / "galaxy.yml").write_text("namespace: cvpntest\nname: faulty\nversion: 1.0.0\nreadme: README.md\nauthors: [test]\n")
    return str(tmp_path / "collections"), marker


def test_an_unexpected_exception_is_shown_either_way(lab, faulty_collection, monkeypatch):
    path, marker = faulty_collection
    monkeypatch.setenv("ANSIBLE_COLLECTIONS_PATH", os.pathsep.join([collections_path(), path]))

    def tasks(folder, extra):
        return [dict({"cvpntest.faulty.explode": {"pki_dir": folder}}, register="exploded", ignore_errors=True, **extra)], ["exploded"]

    outcome = _run_both_ways(lab, "exception", tasks)
    for way, (proc, results) in outcome.items():
        result = results["exploded"]
        # The exception's text (ansible-core 2.19+: in the message; 2.17, 2.18: AnsiballZ says MODULE FAILURE
        # and the traceback is in module_stderr) and its traceback (2.19+ keeps the text only when asked
        # to: DISPLAY_TRACEBACK).
        assert result["failed"] is True and ("unexpected-" + marker) in json.dumps(result), (way, result)
        assert "exception" in result or "Traceback" in result.get("module_stderr", ""), (way, result)
        assert recap(proc.stdout)["ignored"] == 1
    assert ("Module failed: unexpected-" + marker) in outcome["worker"][1]["exploded"]["msg"]


def _running(pid):
    info = proc_stat(pid)
    return info is not None and info[1] not in ("Z", "X")


@pytest.mark.parametrize("way,extra", BOTH_WAYS, ids=[way for way, dummy in BOTH_WAYS])
def test_ctrl_c_stops_the_run_and_the_next_run_completes(lab, way, extra):
    """SIGINT to ansible-playbook's process group, as a terminal's Ctrl-C sends it, while vpn_cert
    makes keys: the run stops (nothing of it left running), and the next run completes the PKI."""
    folder = _folder(lab, "sigint-" + way)
    pki = os.path.join(folder, "pki")
    names = ["user%03d" % index for index in range(400)]  # some seconds of key generation: time to interrupt it
    tasks = [{"clientvpn.pki.vpn_ca": {"pki_dir": pki, "key_size": 1024}},
             dict({"clientvpn.pki.vpn_cert": {"pki_dir": pki, "name": names, "type": "client", "key_size": 2048}}, **extra)]
    play = os.path.join(folder, "play.json")
    with open(play, "w") as handle:
        json.dump([{"hosts": "localhost", "gather_facts": False, "tasks": tasks}], handle)
    collections_path()
    env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_LOCALHOST_WARNING="false")
    proc = subprocess.Popen(["ansible-playbook", "-i", lab["inventory"], play], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env=env, start_new_session=True)
    deadline = time.monotonic() + 120
    private = os.path.join(pki, "private")
    while not (os.path.isdir(private) and len(os.listdir(private)) > 1):  # the CA key and the first client key
        assert proc.poll() is None and time.monotonic() < deadline, "vpn_cert never started making keys"
        time.sleep(0.05)
    tree = descendants(proc.pid)
    os.killpg(proc.pid, signal.SIGINT)
    output, dummy = proc.communicate(timeout=60)
    assert proc.returncode != 0, output[-3000:]
    # Nothing of the run goes on behind the operator's back (a module's own session included).
    deadline = time.monotonic() + 30
    while any(_running(pid) for pid in tree) and time.monotonic() < deadline:
        time.sleep(0.1)
    alive = [pid for pid in tree if _running(pid)]
    assert not alive, "still running after Ctrl-C: %s" % alive
    issued_before = len(os.listdir(os.path.join(pki, "issued"))) if os.path.isdir(os.path.join(pki, "issued")) else 0
    assert issued_before < len(names), "the run finished before Ctrl-C: kill earlier"

    again = playbook(["-i", lab["inventory"], play])
    assert recap(again.stdout)["changed"] >= 1
    assert sorted(os.listdir(os.path.join(pki, "issued"))) == sorted(name + ".crt" for name in names)
    assert recap(playbook(["-i", lab["inventory"], play]).stdout)["changed"] == 0
