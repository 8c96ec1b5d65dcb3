"""The modules' action (plugin_utils/forked_module.py): on the controller itself, with the
worker's own Python, a module runs forked from Ansible's worker; anywhere else, as AnsiballZ.
Both ways must give the same result, the same failure, the same check mode, and a large
result must come through whole. The -vvv output says which way each task ran."""

import json
import os
import re
import sys

from conftest import playbook, recap

FORKED = "Running module ansible_collections.clientvpn.pki.plugins.modules."
# The command that runs a module's AnsiballZ file (the async wrapper passes its path as an argument).
ANSIBALLZ_RUN = r"EXEC /bin/sh -c '.*python\S* \S+/(?:async_wrapper\.py \S+ \S+ \S+/)?AnsiballZ_%s\.py"
# A task environment is one of the things that send a module the AnsiballZ way.
ANSIBALLZ_WAY = {"CLIENTVPN_TEST": "ansiballz"}


def _run(tmp_path, tasks, name="play.json", extra=()):
    path = tmp_path / name
    path.write_text(json.dumps([{"hosts": "localhost", "gather_facts": False, "tasks": tasks,
                                 "vars": {"ansible_python_interpreter": sys.executable}}]))
    return playbook([str(path), "-vvv"] + list(extra))


def _both_ways(task, register):
    """The task twice: forked (no environment) and AnsiballZ (a task environment)."""
    return [dict(task, register=register + "_forked"), dict(task, register=register + "_ansiballz", environment=ANSIBALLZ_WAY)]


def _results(tmp_path, names):
    dump = {"ansible.builtin.copy": {"dest": str(tmp_path / "results.json"), "mode": "0600",
                                     "content": "{{ {%s} | to_json }}" % ", ".join("'%s': %s" % (n, n) for n in names)}}
    return [dump]


def test_forked_and_ansiballz_runs_return_the_same(tmp_path):
    pki = str(tmp_path / "pki")
    create = {"clientvpn.pki.vpn_ca": {"pki_dir": pki}, "register": "created"}
    check = {"clientvpn.pki.vpn_cert": {"pki_dir": pki, "name": ["alice", "bob"], "type": "client"}, "check_mode": True}
    bad = {"clientvpn.pki.vpn_cert": {"pki_dir": pki, "name": ["../evil"], "type": "client"}, "ignore_errors": True}
    tasks = [create] + _both_ways(check, "check") + _both_ways(bad, "bad")
    names = ["check_forked", "check_ansiballz", "bad_forked", "bad_ansiballz"]
    proc = _run(tmp_path, tasks + _results(tmp_path, names))
    results = json.loads((tmp_path / "results.json").read_text())

    # Which way each ran: 3 forked (create, check, bad), 2 AnsiballZ.
    assert proc.stdout.count(FORKED) == 3, proc.stdout[-3000:]
    assert len(re.findall(ANSIBALLZ_RUN % "vpn_cert", proc.stdout)) == 2, proc.stdout[-3000:]

    assert results["check_forked"] == results["check_ansiballz"]
    assert results["check_forked"]["changed"] is True and sorted(results["check_forked"]["certificates"]) == ["alice", "bob"]
    # Check mode wrote nothing, either way.
    assert not os.path.exists(os.path.join(pki, "issued", "alice.crt"))

    assert results["bad_forked"]["failed"] is True and results["bad_ansiballz"]["failed"] is True
    assert results["bad_forked"] == results["bad_ansiballz"]
    assert "../evil" in results["bad_forked"]["msg"]
    assert recap(proc.stdout)["ignored"] == 2


def test_a_large_result_comes_through_whole(tmp_path):
    """Far more than a pipe holds (64 KiB): the worker reads while the module writes."""
    pki = str(tmp_path / "pki")
    names = ["client%04d.example.com" % index for index in range(600)]
    tasks = [{"clientvpn.pki.vpn_ca": {"pki_dir": pki}},
             {"clientvpn.pki.vpn_cert": {"pki_dir": pki, "name": names, "type": "client"}, "check_mode": True, "register": "planned"}]
    _run(tmp_path, tasks + _results(tmp_path, ["planned"]))
    size = (tmp_path / "results.json").stat().st_size
    planned = json.loads((tmp_path / "results.json").read_text())["planned"]
    assert size > 1 << 17, size
    assert sorted(planned["certificates"]) == names


def test_what_is_not_this_python_on_this_host_runs_as_ansiballz(tmp_path):
    """Another interpreter, become and async leave the fork aside (the module must see the
    Python, the user and the process the task asked for); each still does its work."""
    pki = str(tmp_path / "pki")
    # Another path to the same binary is another Python (a venv's python is a symlink to the system's).
    other_python = str(tmp_path / "python3")
    os.symlink(sys.executable, other_python)
    info = {"clientvpn.pki.vpn_pki_info": {"pki_dir": pki}}
    tasks = [
        {"clientvpn.pki.vpn_ca": {"pki_dir": pki}, "vars": {"ansible_python_interpreter": other_python}},
        dict(info, become=True, become_method="su", become_user="root") if os.geteuid() == 0 else dict(info, environment=ANSIBALLZ_WAY),
        dict(info, **{"async": 60, "poll": 1}),
    ]
    proc = _run(tmp_path, tasks)
    assert proc.stdout.count(FORKED) == 0, proc.stdout[-3000:]
    assert len(re.findall(ANSIBALLZ_RUN % "vpn_ca", proc.stdout)) == 1, proc.stdout[-3000:]
    assert len(re.findall(ANSIBALLZ_RUN % "vpn_pki_info", proc.stdout)) == 2, proc.stdout[-3000:]
    assert os.path.exists(os.path.join(pki, "ca.crt"))
    assert recap(proc.stdout)["failed"] == 0


def test_warnings_come_back_either_way(tmp_path):
    # A module's warnings travel in its result; a forked child that printed them through the worker's
    # Display instead lost them (ansible-core 2.19). A garbled staging manifest gives one. One playbook
    # per way: ansible-playbook shows a warning it has shown once never again.
    pki, stage = str(tmp_path / "pki"), tmp_path / "stage"
    stage.mkdir(mode=0o700)
    staged = {"clientvpn.pki.vpn_stage": {"dest": str(stage), "pki_dir": pki, "names": [], "pki_files": ["ca_certificate"]}, "register": "staged"}
    garble = {"ansible.builtin.copy": {"dest": str(stage / ".clientvpn-stage.json"), "content": "garbage", "mode": "0600"}}
    warning = "%s is not a vpn_stage manifest" % (stage / ".clientvpn-stage.json")
    for way, extra in (("forked", {}), ("ansiballz", {"environment": ANSIBALLZ_WAY})):
        proc = _run(tmp_path, [{"clientvpn.pki.vpn_ca": {"pki_dir": pki}}, garble, dict(staged, **extra)] + _results(tmp_path, ["staged"]),
                    name=way + ".json")
        assert ("[WARNING]: " + warning) in proc.stdout + proc.stderr, way + ": " + proc.stdout[-3000:] + proc.stderr[-2000:]
        assert [text for text in json.loads((tmp_path / "results.json").read_text())["staged"]["warnings"] if warning in text], way
        assert (proc.stdout.count(FORKED) == 2) == (way == "forked")
