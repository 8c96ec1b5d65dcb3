# Copyright: clientvpn.pki contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Side-by-side benchmark of clientvpn.pki against the ways users build the PKI today.

For each N clients, in one run on one machine, the median of several repetitions of:

* ours       ansible-playbook clientvpn.pki.mutual_auth without the ACM step
             (first run on an empty folder, then a run with nothing to change);
* easyrsa    the seed procedure with Debian's easy-rsa: build-ca nopass,
             build-server-full server nopass, build-client-full per client, cp to
             the staging folder;
* per-item   benchmarks/per_item.yml: one task per step, looping over the
             clients (key, request, certificate, staging copies), openssl calls;
* floor      N x the median RSA-2048 key generation time / cores.

* debug      a one-task `debug` playbook: starting ansible-playbook, the floor of any run.

And at scale (--scale-size, 20,000 clients by default, and 10 for comparison): a PKI built
once by mutual_auth with RSA-1024 keys (the build is measured too, for its peak memory), then
on copies of it: a run with nothing to do, adding one client (one vpn_cert task with the list
and one name more, as the pki role runs it, after a nightly run has filled the verified
cache), and revoking one client and regenerating the CRL (revoke_client); easy-rsa's
build-client-full and revoke + gen-crl on copies of the same PKI.

Peak memory is the largest total PSS (shared pages split between the
processes sharing them) of the measured process tree, sampled every 20 ms. Repetitions of one cell stop early (never below one run) once
the cell has used --cell-budget seconds, so the slow baselines at N=1000 run
once: the "runs" column says how many runs each median is of.

Run it with `make benchmark` (docs/performance.md); --write-doc replaces the
results section of docs/performance.md.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import psutil

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
EASYRSA = os.environ.get("EASYRSA_BIN", "/usr/share/easy-rsa/easyrsa")
DOC_START, DOC_END = "<!-- benchmark:start -->", "<!-- benchmark:end -->"


# -- measuring ---------------------------------------------------------------------------------
class Measured(object):
    def __init__(self, seconds, peak_rss, output):
        self.seconds, self.peak_rss, self.output = seconds, peak_rss, output

    def changed(self):
        """The `changed=` count of an ansible-playbook recap."""
        counts = re.findall(r"changed=(\d+)", self.output)
        if not counts:
            raise RuntimeError("no PLAY RECAP in the output:\n" + self.output[-2000:])
        return int(counts[-1])


def _tree_memory(process):
    """Proportional set size of the process and its descendants: shared pages (Ansible's
    forked workers, the key generation pool) are split between the processes sharing
    them, so the sum is the memory the tree really holds, not RSS counted twice."""
    total = 0
    for member in [process] + process.children(recursive=True):
        try:
            total += member.memory_full_info().pss
        except psutil.Error:
            pass  # ended between listing and reading
    return total


def measure(command, env=None, cwd=None):
    """Run ``command``; its wall time and the peak memory of its whole process tree."""
    started = time.perf_counter()
    proc = subprocess.Popen(command, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    peak, done = [0], threading.Event()

    def sample():
        watched = psutil.Process(proc.pid)
        while not done.is_set():
            try:
                peak[0] = max(peak[0], _tree_memory(watched))
            except psutil.Error:
                return
            done.wait(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    output = proc.stdout.read().decode("utf-8", "replace")
    proc.wait()
    seconds = time.perf_counter() - started
    done.set()
    sampler.join()
    if proc.returncode != 0:
        raise RuntimeError("%s failed (exit %d):\n%s" % (" ".join(command[:3]), proc.returncode, output[-4000:]))
    return Measured(seconds, peak[0], output)


class Cell(object):
    """Repetitions of one measurement, within a time budget."""

    def __init__(self, scenario, n, phase):
        self.scenario, self.n, self.phase = scenario, n, phase
        self.runs = []

    def add(self, measured):
        self.runs.append(measured)

    def with_run(self, measured):
        self.add(measured)
        return self

    @property
    def median(self):
        return statistics.median(run.seconds for run in self.runs)

    @property
    def peak_rss(self):
        return max(run.peak_rss for run in self.runs)

    def as_dict(self):
        return {
            "scenario": self.scenario,
            "n": self.n,
            "phase": self.phase,
            "runs": len(self.runs),
            "median_s": round(self.median, 3),
            "all_s": [round(run.seconds, 3) for run in self.runs],
            "peak_rss_mb": round(self.peak_rss / 2**20, 1),
        }


# -- scenarios ---------------------------------------------------------------------------------
class Bench(object):
    def __init__(self, args):
        self.args = args
        self.work = tempfile.mkdtemp(prefix="clientvpn-bench-", dir=args.work_dir)
        self.env = dict(os.environ)
        self.env.setdefault("ANSIBLE_COLLECTIONS_PATH", os.path.join(REPO, ".build", "collections"))
        self.env.update(ANSIBLE_NOCOLOR="1", ANSIBLE_LOCALHOST_WARNING="False", ANSIBLE_INVENTORY_UNPARSED_WARNING="False")
        self.cells = []

    def log(self, text):
        print("[%s] %s" % (datetime.datetime.now().strftime("%H:%M:%S"), text), file=sys.stderr, flush=True)

    def folder(self, *parts):
        path = os.path.join(self.work, *parts)
        if os.path.exists(path):
            shutil.rmtree(path)
        os.makedirs(path)
        return path

    def clients(self, n):
        return ["client%d.domain.tld" % index for index in range(1, n + 1)]

    def names_file(self, path, names):
        """The clients as an operator with many of them keeps them: pki_clients_file, one name per line."""
        with open(path, "w") as handle:
            handle.write("\n".join(names) + "\n")
        return path

    def vars_file(self, path, data):
        with open(path, "w") as handle:
            json.dump(data, handle)
        return "@" + path

    def repeat(self, scenario, n, phases, one_run):
        """``one_run()`` yields (phase, Measured) per phase; repeated within the budget."""
        cells = dict((phase, Cell(scenario, n, phase)) for phase in phases)
        spent = 0.0
        for index in range(self.args.repeat):
            if index and spent > self.args.cell_budget:
                break
            for phase, measured in one_run():
                cells[phase].add(measured)
                spent += measured.seconds
                self.log("%-9s N=%-6d %-7s run %d: %.2f s, peak %.0f MB" % (scenario, n, phase, index + 1, measured.seconds, measured.peak_rss / 2**20))
        self.cells.extend(cells.values())
        self.save()

    def save(self, **extra):
        """Results so far, after every cell: an hour-long run that fails late keeps what it measured."""
        if self.args.json:
            with open(self.args.json, "w") as handle:
                json.dump(dict(extra, cells=[cell.as_dict() for cell in self.cells if cell.runs]), handle, indent=2)

    def playbook(self, playbook, *extra):
        return ["ansible-playbook", playbook] + [arg for pair in extra for arg in ("-e", pair)]

    def ours(self, n):
        def one_run():
            base = self.folder("ours")
            extra = self.vars_file(
                os.path.join(base, "vars.json"),
                {"pki_dir": base + "/pki", "stage_dir": base + "/custom_folder", "clientvpn_acm_import": False, "pki_cache_dir": base + "/cache",
                 "pki_clients_file": self.names_file(os.path.join(base, "clients.txt"), self.clients(n))},
            )
            command = self.playbook("clientvpn.pki.mutual_auth", extra)
            first = measure(command, self.env)
            if first.changed() == 0:
                raise RuntimeError("ours: the first run changed nothing")
            yield "first", first
            noop = measure(command, self.env)
            if noop.changed() != 0:
                raise RuntimeError("ours: the second run changed %d task(s)" % noop.changed())
            yield "no-op", noop

        self.repeat("ours", n, ("first", "no-op"), one_run)

    def easyrsa(self, n):
        def one_run():
            base = self.folder("easyrsa")
            with open(os.path.join(base, "clients"), "w") as handle:
                handle.write("\n".join(self.clients(n)) + "\n")
            script = (
                'set -euo pipefail; cd "$1"; export EASYRSA_BATCH=1 EASYRSA_PKI="$1/pki"\n'
                '"$2" init-pki; "$2" build-ca nopass; "$2" --san=DNS:server build-server-full server nopass\n'
                'while read -r c; do "$2" build-client-full "$c" nopass; done < clients\n'
                "mkdir -m 0700 custom_folder; cp pki/ca.crt pki/issued/server.crt pki/private/server.key custom_folder/\n"
                'while read -r c; do cp "pki/issued/$c.crt" "pki/private/$c.key" custom_folder/; done < clients\n'
            )
            yield "first", measure(["bash", "-c", script, "easyrsa", base, EASYRSA], self.env)

        self.repeat("easyrsa", n, ("first",), one_run)

    def per_item(self, n):
        def one_run():
            base = self.folder("per_item")
            extra = self.vars_file(
                os.path.join(base, "vars.json"), {"pki_dir": base + "/pki", "stage_dir": base + "/custom_folder", "clients": self.clients(n)}
            )
            command = self.playbook(os.path.join(HERE, "per_item.yml"), extra)
            yield "first", measure(command, self.env)
            noop = measure(command, self.env)
            if noop.changed() != 0:
                raise RuntimeError("per-item: the second run changed %d task(s)" % noop.changed())
            yield "no-op", noop

        self.repeat("per-item", n, ("first", "no-op"), one_run)

    def keygen_median(self):
        """Median RSA-2048 key generation time, one process, as vpn_cert does it (cryptography)."""
        code = (
            "import json, time\n"
            "from cryptography.hazmat.primitives.asymmetric import rsa\n"
            "times = []\n"
            "for _ in range(%d):\n"
            "    start = time.perf_counter(); rsa.generate_private_key(public_exponent=65537, key_size=2048)\n"
            "    times.append(time.perf_counter() - start)\n"
            "print(json.dumps(times))\n" % self.args.keygen_samples
        )
        times = json.loads(subprocess.run([sys.executable, "-c", code], check=True, stdout=subprocess.PIPE).stdout)
        return statistics.median(times)

    def baseline(self):
        def one_run():
            yield "run", measure(self.playbook(os.path.join(HERE, "debug.yml")), self.env)

        self.repeat("debug", 1, ("run",), one_run)

    # -- a large PKI ---------------------------------------------------------------------------
    def scale(self, size, operations):
        """Build a PKI of ``size`` clients once, then measure ``operations`` on copies of it."""
        root = self.folder("scale-%d" % size)
        work, pristine = os.path.join(root, "work"), os.path.join(root, "pristine")
        names = self.clients(size)
        settings = {"pki_dir": work + "/pki", "stage_dir": work + "/stage", "pki_key_size": 1024, "clientvpn_acm_import": False,
                    "pki_cache_dir": root + "/cache", "pki_clients_file": self.names_file(os.path.join(root, "clients.txt"), names)}
        mutual_auth = self.playbook("clientvpn.pki.mutual_auth", self.vars_file(os.path.join(root, "vars.json"), settings))
        # The same run with the names in the pki_clients list: what Ansible's templating of a list costs.
        settings_list = dict(settings, pki_clients=names)
        del settings_list["pki_clients_file"]
        mutual_auth_list = self.playbook("clientvpn.pki.mutual_auth", self.vars_file(os.path.join(root, "vars-list.json"), settings_list))
        self.log("scale: building a PKI of %d clients with mutual_auth (RSA-1024 keys: the key size does not change what the other runs cost)" % size)
        built = measure(mutual_auth, self.env)
        self.cells.append(Cell("ours", size, "build").with_run(built))
        os.rename(work, pristine)

        def fresh_copy(settle=True):
            if os.path.exists(work):
                shutil.rmtree(work)
            shutil.copytree(pristine, work, symlinks=True)
            if settle:  # as after a nightly run: the files are old enough for the cache to record their stamps
                time.sleep(2.2)
                measure(mutual_auth, self.env)

        add_one = self.playbook(os.path.join(HERE, "add_one.yml"), self.vars_file(os.path.join(root, "add.json"), {
            "pki_dir": work + "/pki", "clients_file": self.names_file(os.path.join(root, "clients-and-newcomer.txt"), names + ["newcomer.domain.tld"]),
            "key_size": 1024, "cache_dir": root + "/cache"}))
        victim = names[len(names) // 2]
        revoke = self.playbook("clientvpn.pki.revoke_client", self.vars_file(os.path.join(root, "revoke.json"), {
            "pki_dir": work + "/pki", "stage_dir": work + "/no-staging-folder", "revoke_client_names": [victim]}))
        easyrsa_env = dict(self.env, EASYRSA_BATCH="1", EASYRSA_PKI=work + "/pki", EASYRSA_KEY_SIZE="1024")
        cases = {
            "no-op": ("ours", lambda: mutual_auth, False),
            "no-op list": ("ours-list", lambda: mutual_auth_list, False),
            "add one": ("ours", lambda: add_one, True),
            "add one easyrsa": ("easyrsa", lambda: [EASYRSA, "build-client-full", "newcomer.domain.tld", "nopass"], True),
            "revoke+crl": ("ours", lambda: revoke, True),
            "revoke+crl easyrsa": ("easyrsa", lambda: ["bash", "-c", '"$1" revoke "$2" && "$1" gen-crl', "easyrsa", EASYRSA, victim], True),
        }
        for operation in operations:
            scenario, command, fresh_each_run = cases[operation]
            phase = operation.replace(" easyrsa", "").replace(" list", "")

            def one_run(scenario=scenario, command=command, fresh_each_run=fresh_each_run, phase=phase):
                if fresh_each_run or not os.path.exists(work):
                    fresh_copy(settle=scenario.startswith("ours"))
                measured = measure(command(), easyrsa_env if scenario == "easyrsa" else self.env)
                if scenario.startswith("ours") and phase == "no-op" and measured.changed() != 0:
                    raise RuntimeError("scale: the run with nothing to do changed %d task(s)" % measured.changed())
                yield phase, measured

            self.repeat(scenario, size, (phase,), one_run)
        shutil.rmtree(root, ignore_errors=True)


# -- report ------------------------------------------------------------------------------------
def find(cells, scenario, n, phase):
    for cell in cells:
        if (cell.scenario, cell.n, cell.phase) == (scenario, n, phase) and cell.runs:
            return cell
    return None


def report(bench, floors, keygen, sizes, scale_sizes):
    cells, lines = bench.cells, []
    cores = os.cpu_count()
    lines.append("Machine: %s, %d cores, %.1f GiB RAM, Python %s, %s." % (
        platform.machine(), cores, psutil.virtual_memory().total / 2**30, platform.python_version(), easyrsa_version()))
    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M")
    lines.append("Run on %s UTC with `%s`." % (when, " ".join(["python benchmarks/run.py"] + bench.args.argv)))
    lines.append("Median RSA-2048 key generation: %.1f ms (%d samples, one core)." % (keygen * 1000, bench.args.keygen_samples))
    debug = find(cells, "debug", 1, "run")
    if debug:
        lines.append("A one-task `debug` playbook (starting ansible-playbook): %.2f s." % debug.median)
    lines.append("")
    lines.append(
        "| N | run | ours (s) | easy-rsa (s) | per-item (s) | floor (s) | ours / easy-rsa | ours / per-item | ours / floor"
        " | ours peak MB | runs (ours, easy-rsa, per-item) |"
    )
    lines.append("|---|---|---|---|---|---|---|---|---|---|---|")

    def cell_text(cell):
        return "%.2f" % cell.median if cell else "-"

    def ratio(a, b):
        return "%.3g" % (a.median / b.median) if a and b else "-"

    for n in sizes:
        for phase in ("first", "no-op"):
            ours, easy, item = find(cells, "ours", n, phase), find(cells, "easyrsa", n, phase), find(cells, "per-item", n, phase)
            floor = floors[n] if phase == "first" else None
            lines.append("| %d | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
                n, phase, cell_text(ours), cell_text(easy), cell_text(item),
                "%.2f" % floor if floor is not None else "-",
                ratio(ours, easy), ratio(ours, item),
                "%.2f" % (ours.median / floor) if ours and floor else "-",
                "%.0f" % (ours.peak_rss / 2**20) if ours else "-",
                ", ".join(str(len(c.runs)) if c else "-" for c in (ours, easy, item)),
            ))
    if scale_sizes:
        lines.append("")
        lines.append("| N | run | ours (s) | easy-rsa (s) | ours / easy-rsa | ours / debug playbook | ours peak MB | runs (ours, easy-rsa) |")
        lines.append("|---|---|---|---|---|---|---|---|")
        for n in scale_sizes:
            for phase in ("build", "add one") if n == 10 and n != max(scale_sizes) else ("build", "no-op", "no-op list", "add one", "revoke+crl"):
                scenario = "ours-list" if phase == "no-op list" else "ours"
                ours, easy = find(cells, scenario, n, phase.replace(" list", "")), find(cells, "easyrsa", n, phase)
                if not ours:
                    continue
                lines.append("| %d | %s | %s | %s | %s | %s | %.0f | %s |" % (
                    n, SCALE_LABELS[phase], cell_text(ours), cell_text(easy), ratio(ours, easy), ratio(ours, debug),
                    ours.peak_rss / 2**20, ", ".join(str(len(c.runs)) if c else "-" for c in (ours, easy))))
    lines.append("")
    lines.extend(targets(cells, floors, scale_sizes))
    return "\n".join(lines) + "\n"


SCALE_LABELS = {"build": "build (mutual_auth, RSA-1024)", "no-op": "no-op (mutual_auth)",
                "no-op list": "no-op (mutual_auth, names in the pki_clients list instead of the file)",
                "add one": "add one client (vpn_cert)", "revoke+crl": "revoke one + CRL (revoke_client)"}


def targets(cells, floors, scale_sizes):
    """The targets of issues 6 and 15 for a 2-core machine, each met or missed by how much."""
    checks = []
    big = max(scale_sizes) if scale_sizes else None
    first, noop = find(cells, "ours", 1000, "first"), find(cells, "ours", 1000, "no-op")
    easy, item = find(cells, "easyrsa", 1000, "first"), find(cells, "per-item", 1000, "no-op")
    debug = find(cells, "debug", 1, "run")
    if first:
        checks.append(("N=1000 first run <= 1.5 x floor + 5 s", first.median, 1.5 * floors[1000] + 5, "s"))
    if noop:
        checks.append(("N=1000 no-op run <= 2 s", noop.median, 2, "s"))
    if first and easy:
        checks.append(("N=1000 first run >= 5x faster than easy-rsa", first.median, easy.median / 5, "s"))
    if noop and item:
        checks.append(("N=1000 no-op >= 100x faster than per-item", noop.median, item.median / 100, "s"))
    first10, easy10, noop10 = find(cells, "ours", 10, "first"), find(cells, "easyrsa", 10, "first"), find(cells, "ours", 10, "no-op")
    if first10 and easy10:
        checks.append(("N=10 first run <= 0.5 x easy-rsa", first10.median, 0.5 * easy10.median, "s"))
    if noop10 and debug:
        checks.append(("N=10 no-op <= 2 x a one-task debug playbook", noop10.median, 2 * debug.median, "s"))
    if big:
        add_big, add_small = find(cells, "ours", big, "add one"), find(cells, "ours", 10, "add one")
        for label, cell, limit in (("N=%d add one client <= 3 s" % big, add_big, 3),
                                   ("N=%d no-op <= 5 s" % big, find(cells, "ours", big, "no-op"), 5),
                                   ("N=%d revoke one + CRL <= 1.5 s" % big, find(cells, "ours", big, "revoke+crl"), 1.5)):
            if cell:
                checks.append((label, cell.median, limit, "s"))
        if add_big and add_small:
            checks.append(("N=%d add one <= 1.5 x N=10 add one" % big, add_big.median, 1.5 * add_small.median, "s"))
        peak = max([cell.peak_rss for cell in cells if cell.scenario == "ours" and cell.n == big and cell.runs] or [0])
        checks.append(("N=%d peak memory of the process tree <= 200 MB" % big, peak / 2**20, 200, "MB"))
    lines = ["| target | measured | limit | verdict |", "|---|---|---|---|"]
    for label, value, limit, unit in checks:
        verdict = "met" if value <= limit else "missed by %.2f %s (%.0f%%)" % (value - limit, unit, 100.0 * (value - limit) / limit)
        lines.append("| %s | %.2f %s | %.2f %s | %s |" % (label, value, unit, limit, unit, verdict))
    return lines


def easyrsa_version():
    try:
        out = subprocess.run([EASYRSA, "--version"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False).stdout.decode()
        return "easy-rsa " + re.search(r"Version:\s*(\S+)", out).group(1)
    except (OSError, AttributeError):
        return "easy-rsa unknown"


def write_doc(path, text, doc_start=DOC_START, doc_end=DOC_END):
    """Replace what lies between the two markers in ``path`` with ``text``."""
    with open(path) as handle:
        doc = handle.read()
    start, end = doc.index(doc_start) + len(doc_start), doc.index(doc_end)
    with open(path, "w") as handle:
        handle.write(doc[:start] + "\n" + text + doc[end:])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--sizes", default="10,100,1000", help="client counts, comma separated (default: %(default)s)")
    parser.add_argument("--scale-size", "--revoke-size", dest="scale_size", type=int, default=20000,
                        help="clients of the large PKI (no-op, add one, revoke one); 0 skips it (default: %(default)s)")
    parser.add_argument("--repeat", type=int, default=3, help="repetitions per cell (default: %(default)s)")
    parser.add_argument("--cell-budget", type=float, default=700, help="no further repetition of a cell once it used this many seconds (default: %(default)s)")
    parser.add_argument("--scenarios", default="ours,easyrsa,per-item", help="which of ours,easyrsa,per-item (default: all)")
    parser.add_argument("--keygen-samples", type=int, default=40)
    parser.add_argument("--quick", action="store_true",
                        help="the small cases only, in a few minutes: --sizes 10 --scale-size 1000 --scenarios ours,easyrsa")
    parser.add_argument("--work-dir", default=None, help="where the PKIs are built (default: the system temp dir)")
    parser.add_argument("--json", help="also write the raw results here")
    parser.add_argument("--write-doc", help="replace the results section of this markdown file (docs/performance.md)")
    args = parser.parse_args(argv)
    args.argv = list(argv if argv is not None else sys.argv[1:])
    if args.quick:
        args.sizes, args.scale_size, args.scenarios = "10", 1000, "ours,easyrsa"
    sizes = [int(size) for size in args.sizes.split(",") if size]
    scenarios = set(args.scenarios.split(","))
    if "easyrsa" in scenarios or args.scale_size:
        if not os.access(EASYRSA, os.X_OK):
            sys.exit("%s not found: install Debian's easy-rsa (apt-get install easy-rsa) or set EASYRSA_BIN." % EASYRSA)

    bench = Bench(args)
    scale_sizes = sorted(set([10, args.scale_size])) if args.scale_size else []
    try:
        keygen = bench.keygen_median()
        floors = dict((n, n * keygen / os.cpu_count()) for n in sizes)
        bench.log("floor: RSA-2048 key generation median %.1f ms" % (keygen * 1000))
        bench.baseline()
        for n in sizes:
            if "ours" in scenarios:
                bench.ours(n)
            if "easyrsa" in scenarios:
                bench.easyrsa(n)
            if "per-item" in scenarios:
                bench.per_item(n)
        for n in scale_sizes:
            small = n == 10 and n != args.scale_size
            everything = ("no-op", "no-op list", "add one", "add one easyrsa", "revoke+crl", "revoke+crl easyrsa")
            bench.scale(n, ("add one", "add one easyrsa") if small else everything)
    finally:
        shutil.rmtree(bench.work, ignore_errors=True)
    text = report(bench, floors, keygen, sizes, scale_sizes)
    print(text)
    bench.save(keygen_s=keygen, floors=floors)
    if args.write_doc:
        write_doc(args.write_doc, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
