# Copyright: clientvpn.pki contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The speed targets of issue 22 on every ansible-core version of the matrix, side by side
with the previous design, in one run on one machine.

Designs, each a copy of the collection on its own ANSIBLE_COLLECTIONS_PATH:

* current    this checkout: the module's backend run in Ansible's worker by its action
             (plugins/plugin_utils/backend_action.py), on public interfaces;
* previous   the last commit with plugins/plugin_utils/forked_module.py (a process forked from
             the worker posing as a module process, on ansible-core internals);
* ansiballz  this checkout without plugins/action: every module as AnsiballZ (what dropping the
             actions would cost).

Per ansible-core version (a venv each, made here as tests/matrix makes them) and design, the
median of --repeat runs of: a one-task `debug` playbook; `mutual_auth` with nothing to do at 10
clients; and on a copy of one PKI of --scale-size clients (built once, by the current design; one
copy per version and design, as after a nightly run): `mutual_auth` with nothing to do (names in
pki_clients_file), adding one client (benchmarks/add_one.yml; each run a new one) and revoking one
+ the CRL (revoke_client; each run another), with the peak memory of the no-op.

    .venv/bin/python benchmarks/versions.py [--versions 2.17.14,2.21.6] [--scale-size 20000]
        [--write-doc docs/performance.md]

A design that fails on a version (the previous one on 2.21) is reported as failing, with its
error's first line; the run goes on.
"""

from __future__ import annotations

import argparse
import datetime
import glob
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from run import REPO, measure, write_doc  # noqa: E402  pylint: disable=wrong-import-position

HERE = os.path.dirname(os.path.abspath(__file__))
DOC_START, DOC_END = "<!-- versions:start -->", "<!-- versions:end -->"
VERSIONS = ("2.17.14", "2.18.19", "2.19.15", "2.20.10", "2.21.6")
# The oldest Python each ansible-core runs on here (2.20 and 2.21 need 3.12).
PYTHONS = {"2.17": "3.10", "2.18": "3.11", "2.19": "3.11", "2.20": "3.12", "2.21": "3.12"}
DESIGNS = ("current", "previous", "ansiballz")
TARGETS = (  # (case, limit, what the limit is)
    ("no-op 10", 2.0, "x the debug playbook"),
    ("no-op", 5.0, "s"),
    ("add one", 3.0, "s"),
    ("revoke+crl", 1.5, "s"),
    ("no-op peak MB", 200.0, "MB"),
)


def log(text):
    print("[%s] %s" % (datetime.datetime.now().strftime("%H:%M:%S"), text), file=sys.stderr, flush=True)


def python_for(version):
    """The pyenv (or PATH) Python this ansible-core runs on (not a pyenv shim: it fails for a version pyenv has not selected)."""
    minor = PYTHONS[version.rsplit(".", 1)[0]]
    found = next(iter(sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/%s.*/bin/python%s" % (minor, minor))))), None)
    on_path = shutil.which("python" + minor)
    if not found and on_path and "/shims/" not in on_path:
        found = on_path
    if not found:
        raise SystemExit("python%s is needed for ansible-core %s (pyenv install %s)" % (minor, version, minor))
    return found


def venv_for(version, root):
    """A venv with this ansible-core and the modules' pinned requirements (reused when it has them)."""
    venv = os.path.join(root, "venv-" + version)
    stamp = os.path.join(venv, ".stamp")
    pins = [line.strip() for line in open(os.path.join(REPO, "requirements-demo.txt")) if line.startswith(("cryptography==", "boto3==", "botocore=="))]
    wanted = " ".join(["ansible-core==" + version] + pins)
    if not (os.path.exists(stamp) and open(stamp).read() == wanted):
        log("venv for ansible-core %s" % version)
        subprocess.run([python_for(version), "-m", "venv", "--clear", venv], check=True)
        subprocess.run([os.path.join(venv, "bin", "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check"] + wanted.split(), check=True)
        with open(stamp, "w") as handle:
            handle.write(wanted)
    return venv


def collections(root):
    """{design: ANSIBLE_COLLECTIONS_PATH}."""
    current = os.path.join(REPO, ".build", "collections")
    paths = {"current": current}
    deleted_in = subprocess.run(["git", "-C", REPO, "log", "-1", "--format=%H", "--", "plugins/plugin_utils/forked_module.py"],
                                check=True, capture_output=True, text=True).stdout.strip()
    for design in ("previous", "ansiballz"):
        path = os.path.join(root, design)
        target = os.path.join(path, "ansible_collections", "clientvpn", "pki")
        shutil.rmtree(path, ignore_errors=True)
        os.makedirs(target)
        if design == "previous":
            archive = subprocess.run(["git", "-C", REPO, "archive", deleted_in + "^"], check=True, capture_output=True).stdout
            subprocess.run(["tar", "-x", "-C", target], input=archive, check=True)
        else:
            shutil.copytree(os.path.join(current, "ansible_collections", "clientvpn", "pki"), target, dirs_exist_ok=True)
            shutil.rmtree(os.path.join(target, "plugins", "action"))
        paths[design] = path
    return paths


class Versions(object):
    def __init__(self, args):
        self.args = args
        self.work = tempfile.mkdtemp(prefix="clientvpn-versions-", dir=args.work_dir)
        self.results = {}  # (version, design, case) -> (median seconds or MB, runs) or error text

    def env(self, venv, collections_path):
        return dict(os.environ, PATH=os.path.join(venv, "bin") + os.pathsep + os.environ["PATH"], ANSIBLE_COLLECTIONS_PATH=collections_path,
                    ANSIBLE_COLLECTIONS_SCAN_SYS_PATH="false", ANSIBLE_NOCOLOR="1", ANSIBLE_LOCALHOST_WARNING="False")

    def vars_file(self, name, data):
        path = os.path.join(self.work, name)
        with open(path, "w") as handle:
            json.dump(data, handle)
        return ["-e", "@" + path]

    def names_file(self, name, names):
        path = os.path.join(self.work, name)
        with open(path, "w") as handle:
            handle.write("\n".join(names) + "\n")
        return path

    def record(self, key, runs, value):
        self.results[key] = (value, len(runs))
        log("%-8s %-9s %-14s %8.2f (%d runs)" % (key + (value, len(runs))))

    def cell(self, key, run_once, repeat, memory=False):
        """The median of ``repeat`` runs of ``run_once()`` (a Measured), or the first line of its error."""
        try:
            runs = [run_once() for dummy in range(repeat)]
        except RuntimeError as exc:
            lines = [line for line in str(exc).splitlines() if "ERROR" in line or "Error" in line] or str(exc).splitlines()[:1]
            self.results[key] = lines[0][:160]
            log("%s: failed: %s" % (" ".join(key), self.results[key]))
            return
        self.record(key, runs, statistics.median(run.seconds for run in runs))
        if memory:
            self.record(key[:2] + (key[2] + " peak MB",), runs, max(run.peak_rss for run in runs) / 2**20)

    def run(self):
        designs = collections(os.path.join(self.work, "collections"))
        big = self.args.scale_size
        names = ["client%d.domain.tld" % index for index in range(1, big + 1)]
        scale = os.path.join(self.work, "scale")
        pristine = os.path.join(scale, "pristine")
        settings = {"pki_dir": pristine + "/pki", "stage_dir": pristine + "/stage", "pki_key_size": 1024, "clientvpn_acm_import": False,
                    "pki_cache_dir": scale + "/cache-build", "pki_clients_file": self.names_file("clients.txt", names)}
        log("building a PKI of %d clients (current design, this venv's ansible-core)" % big)
        measure(["ansible-playbook", "clientvpn.pki.mutual_auth"] + self.vars_file("build.json", settings),
                self.env(os.path.dirname(os.path.dirname(sys.executable)), designs["current"]))
        for version in self.args.versions:
            venv = venv_for(version, self.args.venv_root)
            for design in DESIGNS:
                self.one(version, design, self.env(venv, designs[design]), names, scale, pristine)
        return self.report()

    def one(self, version, design, env, names, scale, pristine):
        repeat = self.args.repeat
        small = os.path.join(self.work, "small", version, design)
        shutil.rmtree(small, ignore_errors=True)
        small_vars = self.vars_file("small.json", {"pki_dir": small + "/pki", "stage_dir": small + "/stage", "clientvpn_acm_import": False,
                                                   "pki_cache_dir": small + "/cache", "pki_clients_file": self.names_file("ten.txt", names[:10])})
        mutual_auth_10 = ["ansible-playbook", "clientvpn.pki.mutual_auth"] + small_vars
        self.cell((version, design, "debug"), lambda: measure(["ansible-playbook", os.path.join(HERE, "debug.yml")], env), repeat)
        try:
            measure(mutual_auth_10, env)
        except RuntimeError:
            pass  # reported by the no-op cell
        self.cell((version, design, "no-op 10"), lambda: self.unchanged(measure(mutual_auth_10, env)), repeat)
        if design == "ansiballz" or isinstance(self.results.get((version, design, "no-op 10")), str):
            return  # at scale: the designs that run modules in the controller's processes, as long as they run at all
        work = os.path.join(scale, "work")
        cache = os.path.join(scale, "cache-%s-%s" % (version, design))
        scale_settings = {"pki_dir": work + "/pki", "stage_dir": work + "/stage", "pki_key_size": 1024, "clientvpn_acm_import": False,
                          "pki_cache_dir": cache, "pki_clients_file": os.path.join(self.work, "clients.txt")}
        mutual_auth = ["ansible-playbook", "clientvpn.pki.mutual_auth"] + self.vars_file("scale.json", scale_settings)
        newcomers = iter(range(1, repeat + 1))
        victims = iter(names[len(names) // 2:])

        def add_one():
            """One client more than the names file has ever had (each run its own newcomer)."""
            clients = self.names_file("plus-one.txt", names + ["newcomer%d.domain.tld" % next(newcomers)])
            return measure(["ansible-playbook", os.path.join(HERE, "add_one.yml")] + self.vars_file("add.json", {
                "pki_dir": work + "/pki", "clients_file": clients, "key_size": 1024, "cache_dir": cache}), env)

        def revoke():
            """Revoking one more client (each run its own) and the CRL."""
            return measure(["ansible-playbook", "clientvpn.pki.revoke_client"] + self.vars_file("revoke.json", {
                "pki_dir": work + "/pki", "stage_dir": work + "/no-staging-folder", "revoke_client_names": [next(victims)]}), env)

        # One copy of the PKI as after a nightly run (old enough files, the cache filled), then each
        # operation on it in turn: copying 20,000 clients' files for every run would take most of the run.
        shutil.rmtree(work, ignore_errors=True)
        shutil.copytree(pristine, work, symlinks=True)
        time.sleep(2.2)
        measure(mutual_auth, env)
        self.cell((version, design, "no-op"), lambda: self.unchanged(measure(mutual_auth, env)), repeat, memory=True)
        self.cell((version, design, "add one"), add_one, repeat)
        self.cell((version, design, "revoke+crl"), revoke, repeat)

    @staticmethod
    def unchanged(measured):
        if measured.changed() != 0:
            raise RuntimeError("a run with nothing to do changed %d task(s)" % measured.changed())
        return measured

    def report(self):
        lines = ["Run on %s with `%s`, %d cores; the PKI at scale has %d clients (RSA-1024 keys)." % (
            datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d"), " ".join(["python"] + sys.argv), os.cpu_count(), self.args.scale_size), ""]
        lines.append("| ansible-core | design | debug (s) | no-op 10 (s) | no-op 10 / debug | no-op %d (s) | add one (s) | revoke + CRL (s) | no-op peak MB |"
                     % self.args.scale_size)
        lines.append("|---|---|---|---|---|---|---|---|---|")
        for version in self.args.versions:
            for design in DESIGNS:
                cells = [self.text(version, design, case) for case in ("debug", "no-op 10")]
                debug, small = self.results.get((version, design, "debug")), self.results.get((version, design, "no-op 10"))
                ratio = "%.2f" % (small[0] / debug[0]) if isinstance(debug, tuple) and isinstance(small, tuple) else "-"
                cells += [ratio] + [self.text(version, design, case) for case in ("no-op", "add one", "revoke+crl", "no-op peak MB")]
                lines.append("| %s | %s | %s |" % (version, design, " | ".join(cells)))
        lines += ["", "| ansible-core | target (current design) | measured | limit | verdict |", "|---|---|---|---|---|"]
        for version in self.args.versions:
            for case, limit, unit in TARGETS:
                value = self.results.get((version, "current", case))
                if case == "no-op 10" and isinstance(value, tuple):
                    debug = self.results[(version, "current", "debug")]
                    value = (value[0] / debug[0], value[1])
                if not isinstance(value, tuple):
                    lines.append("| %s | %s | %s | %s %s | not measured |" % (version, case, value or "-", limit, unit))
                    continue
                verdict = "met" if value[0] <= limit else "missed by %.2f (%d%%)" % (value[0] - limit, round(100 * (value[0] - limit) / limit))
                lines.append("| %s | %s | %.2f | %s %s | %s |" % (version, case, value[0], limit, unit, verdict))
        return "\n".join(lines)

    def text(self, version, design, case):
        value = self.results.get((version, design, case))
        if value is None:
            return "-"
        if isinstance(value, str):
            return "fails: " + value.replace("|", "/")
        return "%.2f" % value[0]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--versions", default=",".join(VERSIONS), help="ansible-core versions, comma separated (default: %(default)s)")
    parser.add_argument("--scale-size", type=int, default=20000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--venv-root", default=os.path.join(REPO, ".build", "bench-venvs"), help="where the per-version venvs live")
    parser.add_argument("--work-dir", default=None)
    parser.add_argument("--write-doc", help="replace the versions section of this markdown file (docs/performance.md)")
    args = parser.parse_args()
    args.versions = [version.strip() for version in args.versions.split(",") if version.strip()]
    os.makedirs(args.venv_root, exist_ok=True)
    bench = Versions(args)
    try:
        text = bench.run()
    finally:
        shutil.rmtree(bench.work, ignore_errors=True)
    print(text)
    if args.write_doc:
        write_doc(args.write_doc, text, DOC_START, DOC_END)


if __name__ == "__main__":
    main()
