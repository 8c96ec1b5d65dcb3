"""Crash safety: every operation that writes a PKI or a staging folder is killed
at many instants, run again to completion, and must then leave a whole PKI.

The PKI is realistic (a CA, a server, 200 clients with 1024-bit keys, some
renewed twice, some revoked, a CRL that lags one revocation behind) and built
once per module. Each crash point copies it, starts the operation - through
ansible-playbook and the roles, or as the module itself - and at the chosen
instant freezes the whole process tree (ansible-playbook, its worker in a
session of its own, the module, the module's key-generation pool) with SIGSTOP,
SIGKILLs it and checks that none of it survived (crashkit). The instants are
fractions of a measured uninterrupted run, and file-system events seen through
inotify, which land deterministically in the windows that matter: in a batch of
moves, between the moves and index.txt, between index.txt and serial, while a
temporary file is half written. The same operation then runs to completion and
assert_pki_whole() checks the invariants, check_report() that the re-run
reported what it completed.
"""

import collections
import datetime
import json
import os
import re
import shlex
import shutil
import stat
import subprocess
import sys
import time

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from conftest import collections_path, openssl
from crashkit import AfterSeconds, OnFile, run_and_kill

KEY_SIZE = 1024
CLIENTS = ["user%03d.example.com" % number for number in range(200)]
RENEWED = CLIENTS[:20]
RENEWED_TWICE = CLIENTS[:5]
REVOKED_IN_CRL = CLIENTS[190:195]
REVOKED_SINCE_CRL = CLIENTS[195:198]
ACTIVE = [name for name in CLIENTS if name not in REVOKED_IN_CRL + REVOKED_SINCE_CRL]
NEW_CLIENTS = ["new%03d.example.com" % number for number in range(20)]
TO_RENEW = CLIENTS[10:70]  # 10 of them move an earlier renewal on to renewed/certs_by_serial/
TO_REVOKE = CLIENTS[:10] + CLIENTS[100:110]  # 10 with earlier renewals (5 with two) revoked along

CERT_FOLDERS = ("issued", "renewed/issued", "renewed/certs_by_serial", "revoked/certs_by_serial")
BY_SERIAL_FOLDERS = ("renewed/certs_by_serial", "revoked/certs_by_serial")
KEY_FOLDERS = ("private", "revoked/private_by_serial")
REVOKED_DIRS = ("pki/revoked/certs_by_serial", "pki/revoked/private_by_serial", "pki/revoked/reqs_by_serial")
TEMP_PREFIX = ".tmp-"
RESULT_LINE = re.compile(r"^(?:ok|changed): \[localhost\] => (\{.*\})$", re.M)
MODULE_PACKAGE = "ansible_collections.clientvpn.pki.plugins.modules."


# -- the operations ------------------------------------------------------------------
def _vpn_cert(case, names, **extra):
    return "vpn_cert", dict({"pki_dir": case.pki, "name": list(names), "type": "client", "key_size": KEY_SIZE}, **extra)


def _stage_sources(pki):
    certificates = [os.path.join(pki, "ca.crt"), os.path.join(pki, "issued", "server.crt")]
    certificates += [os.path.join(pki, "issued", name + ".crt") for name in ACTIVE]
    keys = [os.path.join(pki, "private", name + ".key") for name in ["server"] + ACTIVE]
    return certificates, keys


def _has_certificates(names):
    return lambda result: set(names) <= set(result.get("certificates", {}))


def _is_crl(result):
    return "revoked_count" in result and "crl" in result


def _is_stage(result):
    return "files" in result and "dest" in result


class Operation(object):
    """``steps(case)``: the module runs, in order; ``play(case)``: the same through roles
    or tasks; ``picks``: how to find each step's result in ansible-playbook's -v output."""

    def __init__(self, name, template, steps, play, picks, issued=(), revoked=(), crl=False, stage=False):
        self.name = name
        self.template = template
        self.steps = steps
        self.play = play
        self.picks = picks
        self.issued = issued
        self.revoked = revoked
        self.crl = crl
        self.stage = stage


OPERATIONS = dict((op.name, op) for op in (
    Operation(
        "issue", "ca_and_server",
        steps=lambda case: [_vpn_cert(case, CLIENTS)],
        play=lambda case: {"roles": [{"role": "clientvpn.pki.pki", "vars": {
            "pki_dir": case.pki, "pki_key_size": KEY_SIZE, "pki_clients": CLIENTS}}]},
        picks=[_has_certificates(CLIENTS)], issued=CLIENTS),
    Operation(
        "add", "full",
        steps=lambda case: [_vpn_cert(case, ACTIVE + NEW_CLIENTS)],
        play=lambda case: {"roles": [{"role": "clientvpn.pki.pki", "vars": {
            "pki_dir": case.pki, "pki_key_size": KEY_SIZE, "pki_clients": ACTIVE + NEW_CLIENTS}}]},
        picks=[_has_certificates(ACTIVE + NEW_CLIENTS)], issued=ACTIVE + NEW_CLIENTS),
    Operation(
        "renew", "full",
        steps=lambda case: [_vpn_cert(case, TO_RENEW, renew=True)],
        play=lambda case: {"tasks": [{"name": "Renew the client certificates", "clientvpn.pki.vpn_cert": dict(
            _vpn_cert(case, TO_RENEW, renew=True)[1])}]},
        picks=[_has_certificates(TO_RENEW)], issued=TO_RENEW),
    Operation(
        "revoke", "full",
        steps=lambda case: [("vpn_cert", {"pki_dir": case.pki, "name": TO_REVOKE, "state": "revoked"}), ("vpn_crl", {"pki_dir": case.pki})],
        play=lambda case: {"roles": [{"role": "clientvpn.pki.crl", "vars": {"crl_pki_dir": case.pki, "crl_revoke": TO_REVOKE}}]},
        picks=[_has_certificates(TO_REVOKE), _is_crl], revoked=TO_REVOKE + REVOKED_IN_CRL + REVOKED_SINCE_CRL, crl=True),
    Operation(
        "crl", "full",
        steps=lambda case: [("vpn_crl", {"pki_dir": case.pki})],
        play=lambda case: {"roles": [{"role": "clientvpn.pki.crl", "vars": {"crl_pki_dir": case.pki}}]},
        picks=[_is_crl], revoked=REVOKED_IN_CRL + REVOKED_SINCE_CRL, crl=True),
    Operation(
        "stage", "full",
        steps=lambda case: [("vpn_stage", {"dest": case.stage, "certificates": _stage_sources(case.pki)[0],
                                           "private_keys": _stage_sources(case.pki)[1]})],
        play=lambda case: {"roles": [{"role": "clientvpn.pki.stage", "vars": {
            "stage_dir": case.stage, "stage_certificates": _stage_sources(case.pki)[0], "stage_private_keys": _stage_sources(case.pki)[1]}}]},
        picks=[_is_stage], stage=True),
))


# Where each operation is killed: (operation, how it runs, id, instant). An instant is a
# fraction of the measured uninterrupted run, or crashkit.OnFile arguments (directories
# relative to the case folder); "pool" marks points where the key-generation pool must be
# among the killed processes.
POINTS = [
    ("issue", "direct", "40pct", 0.4),
    ("issue", "direct", "100th-cert", dict(directories="pki/issued", suffix=".crt", nth=100, pool=True)),
    ("issue", "direct", "150th-cert-half-written", dict(directories="pki/issued", kind="created", prefix=TEMP_PREFIX, nth=150, pool=True)),
    ("issue", "direct", "index-not-serial", dict(directories="pki", name="index.txt")),
    ("issue", "playbook", "first-key", dict(directories="pki/private", suffix=".key", pool=True)),
    ("add", "direct", "50pct", 0.5),
    ("add", "direct", "10th-new-cert", dict(directories="pki/issued", suffix=".crt", nth=10, pool=True)),
    ("add", "direct", "index.txt.old-not-index", dict(directories="pki", name="index.txt.old")),
    ("add", "direct", "serial.old-not-serial", dict(directories="pki", name="serial.old")),
    ("renew", "direct", "50pct", 0.5),
    ("renew", "direct", "first-retired", dict(directories="pki/renewed/issued")),
    ("renew", "direct", "5th-moved-on", dict(directories="pki/renewed/certs_by_serial", nth=5)),
    ("renew", "direct", "index-not-serial", dict(directories="pki", name="index.txt")),
    ("revoke", "direct", "40pct", 0.4),
    ("revoke", "direct", "first-move", dict(directories=REVOKED_DIRS)),
    ("revoke", "direct", "30th-move", dict(directories=REVOKED_DIRS, nth=30)),
    ("revoke", "direct", "last-cert-moved", dict(directories="pki/revoked/certs_by_serial", nth=30)),
    ("revoke", "direct", "index.txt.old-not-index", dict(directories="pki", name="index.txt.old")),
    ("revoke", "direct", "index-written", dict(directories="pki", name="index.txt")),
    ("revoke", "direct", "crl.pem-not-der", dict(directories="pki", name="crl.pem")),
    ("revoke", "playbook", "first-move", dict(directories=REVOKED_DIRS)),
    ("crl", "direct", "crl-half-written", dict(directories="pki", kind="created", prefix=TEMP_PREFIX)),
    ("crl", "direct", "crl.pem-not-der", dict(directories="pki", name="crl.pem")),
    ("crl", "playbook", "crl.pem-not-der", dict(directories="pki", name="crl.pem")),
    ("stage", "direct", "50pct", 0.5),
    ("stage", "direct", "first-file", dict(directories="stage")),
    ("stage", "direct", "300th-file-half-written", dict(directories="stage", kind="created", prefix=TEMP_PREFIX, nth=300)),
    ("stage", "playbook", "100th-file", dict(directories="stage", nth=100)),
]


# -- running ---------------------------------------------------------------------------
class Case(object):
    """One copy of a template PKI (and a staging folder next to it, as a user made it)."""

    def __init__(self, directory, template):
        self.dir = str(directory)
        self.pki = os.path.join(self.dir, "pki")
        self.stage = os.path.join(self.dir, "stage")
        os.makedirs(self.dir, exist_ok=True)
        shutil.copytree(template, self.pki, symlinks=True)
        os.mkdir(self.stage)
        os.chmod(self.stage, 0o755)  # `mkdir ~/custom_folder` of the seed procedure: vpn_stage closes it


def _command(case, op, mode, run_dir):
    """The command and environment running ``op`` once, in ``mode`` (direct or playbook)."""
    os.makedirs(run_dir)
    root = collections_path()
    if mode == "playbook":
        play = dict({"name": "crash test: %s" % op.name, "hosts": "localhost", "connection": "local", "gather_facts": False,
                     "vars": {"ansible_python_interpreter": sys.executable}}, **op.play(case))
        path = os.path.join(run_dir, "playbook.yml")
        with open(path, "w") as handle:
            json.dump([play], handle)  # JSON is YAML
        env = dict(os.environ, ANSIBLE_LOCALHOST_WARNING="false", ANSIBLE_NOCOLOR="1", ANSIBLE_CALLBACK_RESULT_FORMAT="json",
                   ANSIBLE_CALLBACK_FORMAT_PRETTY="false", ANSIBLE_REMOTE_TMP=os.path.join(run_dir, "remote-tmp"),
                   ANSIBLE_LOCAL_TEMP=os.path.join(run_dir, "local-tmp"))
        return ["ansible-playbook", "-v", path], env
    parts = []
    for number, (module, args) in enumerate(op.steps(case)):
        args_path, out_path = (os.path.join(run_dir, "%s%d.json" % (kind, number)) for kind in ("args", "out"))
        with open(args_path, "w") as handle:
            json.dump({"ANSIBLE_MODULE_ARGS": dict(args, _ansible_check_mode=False, _ansible_diff=False)}, handle)
        parts.append("%s -m %s < %s > %s" % (shlex.quote(sys.executable), MODULE_PACKAGE + module, shlex.quote(args_path), shlex.quote(out_path)))
    return ["/bin/sh", "-c", " && ".join(parts)], dict(os.environ, PYTHONPATH=root)


def run_to_completion(case, op, mode, run_dir):
    """Run ``op`` uninterrupted; returns (seconds, one result per step)."""
    command, env = _command(case, op, mode, run_dir)
    started = time.monotonic()
    proc = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600, check=False)
    seconds = time.monotonic() - started
    if mode == "playbook":
        assert proc.returncode == 0, "%s failed:\n%s\n%s" % (op.name, proc.stdout[-3000:], proc.stderr[-2000:])
        results = [json.loads(match.group(1)) for match in RESULT_LINE.finditer(proc.stdout)]
        picked = []
        for pick in op.picks:
            matching = [result for result in results if pick(result)]
            assert matching, "no task result of step %d in the output of %s:\n%s" % (len(picked) + 1, op.name, proc.stdout[-3000:])
            picked.append(matching[-1])
        return seconds, picked
    results = []
    for number in range(len(op.steps(case))):
        with open(os.path.join(run_dir, "out%d.json" % number)) as handle:
            text = handle.read()
        try:
            results.append(json.loads(text))
        except ValueError:
            raise AssertionError("step %d of %s printed no JSON (rc=%s): %s\n%s" % (number + 1, op.name, proc.returncode, text, proc.stderr[-2000:])) from None
        assert not results[-1].get("failed"), "step %d of %s failed: %s" % (number + 1, op.name, results[-1].get("msg"))
    assert proc.returncode == 0, proc.stderr[-2000:]
    return seconds, results


class Lab(object):
    """The template PKIs, built once, and each operation's uninterrupted run (its duration
    places the time-fraction kill points)."""

    def __init__(self, root):
        self.root = str(root)
        self.templates = {}
        self.origins = {}
        self.measured = {}

    def template(self, name):
        if not self.templates:
            self._build()
        return self.templates[name]

    def origin(self, name):
        """The template's state, read once."""
        if name not in self.origins:
            self.origins[name] = PkiState(self.template(name))
        return self.origins[name]

    def _direct(self, case, steps, label):
        op = Operation(label, None, steps, None, None)
        return run_to_completion(case, op, "direct", os.path.join(self.root, "build-" + label))

    def _build(self):
        case = Case(os.path.join(self.root, "ca_and_server"), _empty_dir(os.path.join(self.root, "empty")))
        self._direct(case, lambda c: [("vpn_ca", {"pki_dir": c.pki, "key_size": KEY_SIZE}),
                                      ("vpn_cert", {"pki_dir": c.pki, "name": ["server"], "type": "server", "key_size": KEY_SIZE})], "ca")
        self.templates["ca_and_server"] = case.pki
        # The issue operation's uninterrupted run is the first step of the full PKI.
        measured = Case(os.path.join(self.root, "uninterrupted-issue"), case.pki)
        self.measured["issue"] = self._measure(measured, "issue")
        full = Case(os.path.join(self.root, "full"), measured.pki)
        self._direct(full, lambda c: [_vpn_cert(c, RENEWED, renew=True), _vpn_cert(c, RENEWED_TWICE, renew=True),
                                      ("vpn_cert", {"pki_dir": c.pki, "name": REVOKED_IN_CRL, "state": "revoked"}),
                                      ("vpn_crl", {"pki_dir": c.pki}),
                                      ("vpn_cert", {"pki_dir": c.pki, "name": REVOKED_SINCE_CRL, "state": "revoked"})], "full")
        self.templates["full"] = full.pki

    def _measure(self, case, name):
        stage_before = StageState(case.stage)
        seconds, results = run_to_completion(case, OPERATIONS[name], "direct", os.path.join(self.root, "run-" + name))
        return case, seconds, results, stage_before

    def uninterrupted(self, name):
        """(case, seconds, results, staging folder before) of ``name`` run once without a crash."""
        template = self.template(OPERATIONS[name].template)  # first: building the templates measures "issue"
        if name not in self.measured:
            case = Case(os.path.join(self.root, "uninterrupted-" + name), template)
            self.measured[name] = self._measure(case, name)
        return self.measured[name]


def _empty_dir(path):
    os.makedirs(path, exist_ok=True)
    return path


@pytest.fixture(scope="module", name="lab")
def lab_fixture(tmp_path_factory):
    return Lab(tmp_path_factory.mktemp("crash-lab"))


# -- reading a PKI -----------------------------------------------------------------------
Row = collections.namedtuple("Row", "line status expires revoked serial filename subject")


def _index_problem(fields):
    if len(fields) != 6:
        return "expected 6 tab-separated fields, found %d" % len(fields)
    status, expires, revoked, serial, dummy, subject = fields
    if status not in ("V", "R", "E"):
        return "status %r is not V, R or E" % status
    if not re.fullmatch(r"(\d{12}|\d{14})Z", expires):
        return "expiry %r is not an ASN.1 time" % expires
    if status == "R" and not re.fullmatch(r"(\d{12}|\d{14})Z(,[A-Za-z]+)?", revoked):
        return "revoked row without a revocation time: %r" % revoked
    if status != "R" and revoked:
        return "revocation time on a %s row" % status
    if not re.fullmatch(r"[0-9A-F]+", serial):
        return "serial %r is not upper-case hex" % serial
    if not subject.startswith("/"):
        return "subject %r does not start with /" % subject
    return None


def _parse_time(text):
    return datetime.datetime.strptime(text, "%y%m%d%H%M%SZ" if len(text) == 13 else "%Y%m%d%H%M%SZ").replace(tzinfo=datetime.timezone.utc)


def _files(directory):
    try:
        return sorted(name for name in os.listdir(directory) if not name.startswith(TEMP_PREFIX)
                      and os.path.isfile(os.path.join(directory, name)))
    except FileNotFoundError:
        return []


def _read(path):
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except FileNotFoundError:
        return None


def _mode(path):
    return stat.S_IMODE(os.lstat(path).st_mode)


def _temp_files(root):
    return sorted(os.path.relpath(os.path.join(directory, name), root)
                  for directory, dummy, names in os.walk(root) for name in names if name.startswith(TEMP_PREFIX))


class PkiState(object):
    """Everything the checks read, loaded at once: the state a crash left is gone once the re-run starts."""

    def __init__(self, pki):
        self.root = pki
        text = (_read(os.path.join(pki, "index.txt")) or b"").decode("utf-8", "replace")
        self.index_problems, self.rows = [], []
        for number, line in enumerate(text.splitlines(), start=1):
            problem = _index_problem(line.split("\t")) if line else None
            if problem:
                self.index_problems.append("line %d %r: %s" % (number, line, problem))
            elif line:
                self.rows.append(Row(number, *line.split("\t")))
        self.certs = {}
        for folder in CERT_FOLDERS:
            for name in _files(os.path.join(pki, folder)):
                data = _read(os.path.join(pki, folder, name))
                try:
                    self.certs[folder + "/" + name] = x509.load_pem_x509_certificate(data)
                except ValueError as exc:
                    self.certs[folder + "/" + name] = "not a PEM certificate (%s)" % exc
        self.copies = dict(("certs_by_serial/" + name, _read(os.path.join(pki, "certs_by_serial", name)))
                           for name in _files(os.path.join(pki, "certs_by_serial")))
        self.keys = {}
        for folder in KEY_FOLDERS:
            for name in _files(os.path.join(pki, folder)):
                path = os.path.join(pki, folder, name)
                self.keys[folder + "/" + name] = (_read(path), _mode(path))
        self.reqs = set(_files(os.path.join(pki, "reqs")))
        self.dirs = dict((os.path.relpath(directory, pki), _mode(directory)) for directory, dummy, dummy2 in os.walk(pki))
        self.temp_files = _temp_files(pki)
        self.serial = _read(os.path.join(pki, "serial"))
        self.crl_pem, self.crl_der = _read(os.path.join(pki, "crl.pem")), _read(os.path.join(pki, "crl.der"))
        self.ca = x509.load_pem_x509_certificate(_read(os.path.join(pki, "ca.crt")))
        self._private_keys = {}

    def private_key(self, relpath):
        if relpath not in self._private_keys:
            # Parsed without RSA's slow self-check: matching the certificate's public key is the proof that counts.
            self._private_keys[relpath] = serialization.load_pem_private_key(self.keys[relpath][0], password=None, unsafe_skip_rsa_key_validation=True)
        return self._private_keys[relpath]

    def row(self, serial_number):
        return next((row for row in self.rows if int(row.serial, 16) == serial_number), None)

    def rows_of(self, name):
        return [row for row in self.rows if row.subject == "/CN=" + name]

    def issued(self, name):
        cert = self.certs.get("issued/%s.crt" % name)
        return cert if isinstance(cert, x509.Certificate) else None

    def key_matches(self, key_relpath, cert):
        if key_relpath not in self.keys:
            return False
        return _public_der(self.private_key(key_relpath).public_key()) == _public_der(cert.public_key())

    def issue_complete(self, name):
        """issued/<name>.crt with a V row, and its own key, 0600."""
        cert, key = self.issued(name), "private/%s.key" % name
        row = self.row(cert.serial_number) if cert is not None else None
        return row is not None and row.status == "V" and self.key_matches(key, cert) and self.keys[key][1] == 0o600

    def revocation_done(self, name):
        """Every row of the name R, and none of its files left outside revoked/."""
        rows = self.rows_of(name)
        return bool(rows) and all(row.status == "R" for row in rows) and not any((
            "issued/%s.crt" % name in self.certs, "renewed/issued/%s.crt" % name in self.certs,
            "private/%s.key" % name in self.keys, name + ".req" in self.reqs))

    def describe(self, name):
        """What is on disk for one name, for assertion messages."""
        parts = []
        for row in self.rows_of(name):
            files = [path for path, cert in self.certs.items() if isinstance(cert, x509.Certificate) and cert.serial_number == int(row.serial, 16)]
            parts.append("row %s %s -> %s" % (row.serial, row.status, ", ".join(files) or "no certificate file"))
        cert = self.issued(name)
        if cert is not None and self.row(cert.serial_number) is None:
            parts.append("issued/%s.crt serial %X has no row" % (name, cert.serial_number))
        parts.append("private/%s.key %s" % (name, "present" if "private/%s.key" % name in self.keys else "absent"))
        parts.append("reqs/%s.req %s" % (name, "present" if name + ".req" in self.reqs else "absent"))
        return "; ".join(parts)

    def revoked_set(self):
        """{serial: (revocation time, reason)} of the R rows, as a CRL must list them."""
        found = {}
        for row in self.rows:
            if row.status == "R":
                when, dummy, reason = row.revoked.partition(",")
                found[int(row.serial, 16)] = (_parse_time(when), reason.lower() or None)
        return found

    def crl_current(self, revoked):
        """crl.pem is signed by this CA and lists exactly ``revoked``; crl.der is its DER form."""
        try:
            crl = x509.load_pem_x509_crl(self.crl_pem or b"")
        except ValueError:
            return False
        listed = {}
        for item in crl:
            try:
                reason = item.extensions.get_extension_for_class(x509.CRLReason).value.reason.value.lower()
            except x509.ExtensionNotFound:
                reason = None
            listed[item.serial_number] = (item.revocation_date_utc, reason)
        return (crl.issuer == self.ca.subject and crl.is_signature_valid(self.ca.public_key()) and listed == revoked
                and self.crl_der == crl.public_bytes(serialization.Encoding.DER))

    def summary(self):
        v_rows = sum(row.status == "V" for row in self.rows)
        return "%d rows (%d V, %d R), %d certificate files, %d keys, temporary files: %s" % (
            len(self.rows), v_rows, len(self.rows) - v_rows, len(self.certs), len(self.keys), self.temp_files or "none")


def _public_der(public_key):
    return public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


class StageState(object):
    def __init__(self, dest):
        self.dest = dest
        self.files = dict((name, (_read(os.path.join(dest, name)), _mode(os.path.join(dest, name)))) for name in _files(dest))
        self.temp_files = _temp_files(dest)
        self.mode = _mode(dest) if os.path.isdir(dest) else None


def _stage_plan(pki):
    """{staged name: (source, mode)}"""
    certificates, keys = _stage_sources(pki)
    return dict([(os.path.basename(path), (path, 0o644)) for path in certificates] + [(os.path.basename(path), (path, 0o600)) for path in keys])


# -- the invariants ----------------------------------------------------------------------
def assert_pki_whole(pki, issued=(), revoked=(), crl=False, stage=None):
    """The invariants every run leaves, crashed or not, once the same run has completed.

    ``issued``: names asked for in an issue run; ``revoked``: names asked to be revoked;
    ``crl``: the run ended with vpn_crl; ``stage``: the staging folder of a vpn_stage run.
    """
    state = PkiState(pki)
    # index.txt: parses, one row per serial.
    assert not state.index_problems, "index.txt does not parse: %s" % state.index_problems
    serials = collections.Counter(int(row.serial, 16) for row in state.rows)
    duplicates = ["%X" % serial for serial, count in serials.items() if count > 1]
    assert not duplicates, "index.txt has more than one row for serial(s) %s" % duplicates

    # One certificate file per row, one row per certificate file.
    files_of = collections.defaultdict(list)
    for path, cert in sorted(state.certs.items()):
        assert isinstance(cert, x509.Certificate), "%s is %s" % (path, cert)
        files_of[cert.serial_number].append(path)
        folder, name = path.rsplit("/", 1)
        if folder in BY_SERIAL_FOLDERS:
            assert name == "%X.crt" % cert.serial_number, "%s holds serial %X: it is filed under the wrong serial" % (path, cert.serial_number)
        row = state.row(cert.serial_number)
        assert row is not None, "%s (serial %X) has no row in index.txt: a certificate the database does not know" % (path, cert.serial_number)
        if folder == "issued":
            assert row.status == "V", "%s is the current certificate but its row (serial %s) is %s, not V" % (path, row.serial, row.status)
        if folder == "revoked/certs_by_serial":
            assert row.status == "R", (
                "%s is filed as revoked but its index.txt row is %s: a revocation was left half done "
                "(files moved, index.txt not written) and the re-run did not complete it; no CRL will list it" % (path, row.status))
    for row in state.rows:
        found = files_of.get(int(row.serial, 16), [])
        assert len(found) == 1, "index.txt row %s (%s %s) has %d certificate files, expected exactly one: %s" % (
            row.serial, row.status, row.subject, len(found), found)
    for path, data in sorted(state.copies.items()):
        serial = int(os.path.basename(path)[:-4], 16)
        assert serial in files_of, "%s has no row in index.txt" % path
        assert data == _read(os.path.join(pki, files_of[serial][0])), "%s differs from %s" % (path, files_of[serial][0])

    # Keys: each parses and is 0600; each current certificate has its own key; a revoked key
    # is filed under its certificate's serial.
    for path, (dummy, mode) in sorted(state.keys.items()):
        try:
            state.private_key(path)
        except (ValueError, TypeError) as exc:
            raise AssertionError("%s is not an unencrypted PEM private key: %s" % (path, exc)) from None
        assert mode == 0o600, "%s is mode %04o, not 0600" % (path, mode)
        if path.startswith("revoked/"):
            serial = int(os.path.basename(path).split(".")[0], 16)
            assert serial in files_of and state.key_matches(path, state.certs[files_of[serial][0]]), (
                "%s does not belong to the certificate of serial %X" % (path, serial))
    for path in sorted(state.certs):
        if path.startswith("issued/"):
            key = "private/%s.key" % path[len("issued/"):-len(".crt")]
            assert state.key_matches(key, state.certs[path]), "%s has no matching %s" % (path, key)
    loose = dict((path, "%04o" % mode) for path, mode in state.dirs.items() if mode != 0o700)
    assert not loose, "directories under %s not 0700: %s" % (pki, loose)

    # Every certificate verifies against ca.crt.
    paths = [os.path.join(pki, path) for path in sorted(state.certs)]
    verified = openssl("verify", "-CAfile", os.path.join(pki, "ca.crt"), *paths, check=False)
    failing = [path for path in paths if "%s: OK" % path not in verified.stdout.splitlines()]
    assert not failing, "openssl verify -CAfile ca.crt refuses %s: %s" % (failing, verified.stderr[-1500:])

    now = datetime.datetime.now(datetime.timezone.utc)
    for name in issued:
        cert = state.issued(name)
        assert cert is not None, "%s was asked for but has no issued/%s.crt (%s)" % (name, name, state.describe(name))
        assert cert.not_valid_after_utc > now, "issued/%s.crt has expired" % name

    # Revoked names: every row R, in the CRL, and refused by openssl with it.
    crl_serials = set()
    if crl:
        text = openssl("crl", "-in", os.path.join(pki, "crl.pem"), "-noout", "-text").stdout
        crl_serials = set(int(serial, 16) for serial in re.findall(r"Serial Number: ([0-9A-Fa-f]+)", text))
        checked = openssl("crl", "-in", os.path.join(pki, "crl.pem"), "-noout", "-CAfile", os.path.join(pki, "ca.crt"), check=False)
        assert "verify OK" in checked.stdout + checked.stderr, "crl.pem is not signed by ca.crt: %s" % checked.stderr
        assert state.crl_current(state.revoked_set()), (
            "crl.pem does not list exactly the revoked rows of index.txt (with their times and reasons), or crl.der is not "
            "crl.pem in DER form: CRL has %d serials, index.txt %d R rows" % (len(crl_serials), len(state.revoked_set())))
    revoked_files = []
    for name in revoked:
        rows = state.rows_of(name)
        assert rows, "%s was asked to be revoked but index.txt has no row for /CN=%s" % (name, name)
        valid = [row.serial for row in rows if row.status != "R"]
        assert not valid, "%s was asked to be revoked but index.txt still has row(s) %s valid (%s)" % (name, valid, state.describe(name))
        assert state.issued(name) is None and "private/%s.key" % name not in state.keys, (
            "%s is revoked but its files are still in issued/ or private/ (%s)" % (name, state.describe(name)))
        if crl:
            missing = [row.serial for row in rows if int(row.serial, 16) not in crl_serials]
            assert not missing, "%s is revoked but crl.pem does not list serial(s) %s" % (name, missing)
            revoked_files.extend((name, os.path.join(pki, files_of[int(row.serial, 16)][0])) for row in rows)
    if revoked_files:
        refused = openssl("verify", "-crl_check", "-CRLfile", os.path.join(pki, "crl.pem"), "-CAfile", os.path.join(pki, "ca.crt"),
                          *[path for dummy, path in revoked_files], check=False)
        # openssl prints, for each certificate it refuses, why and then "error <file>: verification failed".
        why, lines = {}, []
        for line in refused.stderr.splitlines():
            failed = re.fullmatch(r"error (.*): verification failed", line)
            if failed:
                why[failed.group(1)], lines = "\n".join(lines), []
            else:
                lines.append(line)
        for name, path in revoked_files:
            assert "certificate revoked" in why.get(path, ""), (
                "openssl verify -crl_check -CRLfile crl.pem does not refuse %s, a certificate of revoked %s: %s" % (path, name, why.get(path, "accepted")))

    assert re.fullmatch(rb"[0-9A-Fa-f]+\n?", state.serial or b""), "serial is not hex: %r" % state.serial
    assert not state.temp_files, "temporary files left in %s: %s" % (pki, state.temp_files)

    if stage is not None:
        staged = StageState(stage)
        assert not staged.temp_files, "temporary files left in the staging folder %s: %s" % (stage, staged.temp_files)
        assert staged.mode == 0o700, "the staging folder %s is mode %s, not 0700" % (stage, staged.mode and "%04o" % staged.mode)
        for name, (source, mode) in sorted(_stage_plan(pki).items()):
            assert name in staged.files, "%s was not staged" % name
            assert staged.files[name][0] == _read(source), "staged %s differs from %s" % (name, source)
            assert staged.files[name][1] == mode, "staged %s is mode %04o, not %04o" % (name, staged.files[name][1], mode)


# -- what the re-run must report -----------------------------------------------------------
def check_report(op, origin, before, results, pki, stage_before=None):
    """The re-run reports what it did to the state the crash left (``before``);
    ``origin`` is the template the crashed run started from."""
    after = PkiState(pki)
    if op.name in ("issue", "add", "renew"):
        certificates = results[0]["certificates"]
        for name in op.issued:
            entry = certificates.get(name)
            assert entry is not None, "the re-run did not report %s" % name
            cert = after.issued(name)
            assert int(entry.get("serial", "0"), 16) == cert.serial_number, (
                "the re-run reported serial %s for %s, issued/%s.crt is %X" % (entry.get("serial"), name, name, cert.serial_number))
            if op.name == "renew":
                key = "private/%s.key" % name
                assert after.keys[key][0] == origin.keys[key][0], "renewing %s replaced its key" % name
                old = before.issued(name)
                expected = ("renewed",) if old is not None else ("created",)
                assert entry["action"] in expected and (old is None or old.serial_number != cert.serial_number), (
                    "%s had %s before the re-run (%s); the re-run reported %r" % (
                        name, "a certificate" if old is not None else "no certificate", before.describe(name), entry["action"]))
            elif before.issue_complete(name):
                assert entry["action"] == "unchanged" and not entry["changed"], (
                    "%s was complete before the re-run (%s) but the re-run reported %r" % (name, before.describe(name), entry["action"]))
            else:
                assert entry["action"] in ("created", "registered") and entry["changed"], (
                    "%s was left incomplete by the crash (%s) but the re-run reported %r" % (name, before.describe(name), entry["action"]))
        assert results[0]["changed"] or not any(entry["changed"] for entry in certificates.values()), "the re-run changed names but reported changed=false"
    if op.name == "revoke":
        certificates = results[0]["certificates"]
        for name in TO_REVOKE:
            entry = certificates.get(name, {})
            if before.revocation_done(name):
                assert entry.get("action") == "unchanged", (
                    "%s was revoked before the re-run (%s) but the re-run reported %r" % (name, before.describe(name), entry.get("action")))
            else:
                assert entry.get("action") in ("revoked", "completed"), (
                    "the crash left the revocation of %s not done (%s) but the re-run reported %r (%s), not revoked or completed"
                    % (name, before.describe(name), entry.get("action"), entry.get("reason", "")))
    if op.crl:
        crl_result = results[-1]
        revoked = after.revoked_set()
        assert crl_result["revoked_serials"] == sorted("%X" % serial for serial in revoked), "vpn_crl reported other revoked serials than index.txt's"
        current = before.crl_current(revoked)
        # A current CRL may still come with a change: the temporary files a crash left are removed.
        assert crl_result["changed"] if not current else (crl_result["changed"] is False or before.temp_files), (
            "before the re-run crl.pem %s current; vpn_crl reported changed=%s (%s)"
            % ("was" if current else "was not", crl_result["changed"], crl_result.get("reasons")))
    if op.stage:
        expected = {}
        for name, (source, mode) in _stage_plan(pki).items():
            data, have_mode = stage_before.files.get(name, (None, None))
            expected[name] = "copied" if data != _read(source) else ("chmod" if have_mode != mode else "unchanged")
        wrong = dict((name, (action, results[0]["files"].get(name))) for name, action in expected.items() if results[0]["files"].get(name) != action)
        assert not wrong, "the re-run reported other actions than the folder called for {name: (expected, reported)}: %s" % wrong


# -- the tests ---------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(OPERATIONS))
def test_an_uninterrupted_run_keeps_the_invariants(lab, name):
    """The checks themselves hold without a crash, so a failure below is the crash's doing."""
    op = OPERATIONS[name]
    case, dummy, results, stage_before = lab.uninterrupted(name)
    assert_pki_whole(case.pki, op.issued, op.revoked, op.crl, case.stage if op.stage else None)
    check_report(op, lab.origin(op.template), lab.origin(op.template), results, case.pki, stage_before)


def _trigger(lab, op_name, instant):
    if isinstance(instant, float):
        seconds = lab.uninterrupted(op_name)[1]
        return AfterSeconds(instant * seconds, "%d%% of %.2f s" % (instant * 100, seconds))
    return OnFile(**dict((key, value) for key, value in instant.items() if key != "pool"))


@pytest.mark.parametrize("op_name,mode,point,instant", POINTS, ids=["%s-%s-%s" % point[:3] for point in POINTS])
def test_a_run_killed_and_run_again_leaves_a_whole_pki(lab, tmp_path, op_name, mode, point, instant):
    op = OPERATIONS[op_name]
    trigger = _trigger(lab, op_name, instant)
    for attempt in range(3):
        case = Case(tmp_path / ("case%d" % attempt), lab.template(op.template))
        command, env = _command(case, op, mode, os.path.join(case.dir, "killed-run"))
        killed = run_and_kill(command, env, case.dir, trigger, os.path.join(case.dir, "killed.out"), os.path.join(case.dir, "killed.err"))
        if killed.fired or not isinstance(trigger, AfterSeconds):
            break
        # This run was faster than the measured one: kill earlier.
        trigger = AfterSeconds(trigger.seconds / 2, trigger.label + " / %d" % (2 ** (attempt + 1)))
    assert killed.fired, "kill point %s never came: %s" % (trigger.label, killed.describe())
    pids = set(record.pid for record in killed.killed)
    roots = set(record.pid for record in killed.killed if record.ppid not in pids)
    if mode == "playbook":
        # The module's process: Ansible's worker running the module's backend (plugin_utils/backend_action.py:
        # a child of ansible-playbook, with its command line), or an AnsiballZ process.
        modules = [record for record in killed.killed if record.ppid in roots or "AnsiballZ_" in record.cmdline]
        assert modules, "the module was not among the killed: " + killed.describe()
    else:
        modules = [record for record in killed.killed if record.pid in roots]  # python running the module itself
    if isinstance(instant, dict) and instant.get("pool") and (os.cpu_count() or 1) > 1:
        # The key-generation workers: forked from the module's process.
        workers = [record for record in killed.killed if record.ppid in set(module.pid for module in modules)]
        assert workers, "no key-generation worker among the killed: " + killed.describe()

    before = PkiState(case.pki)
    stage_before = StageState(case.stage)
    context = "kill point %s %s (%s); %s; the crash left: %s" % (op_name, point, trigger.label, killed.describe(), before.summary())
    dummy, results = run_to_completion(case, op, mode, os.path.join(case.dir, "re-run"))
    try:
        assert_pki_whole(case.pki, op.issued, op.revoked, op.crl, case.stage if op.stage else None)
        check_report(op, lab.origin(op.template), before, results, case.pki, stage_before)
    except AssertionError as exc:
        raise AssertionError("%s\n  after %s" % (exc, context)) from None
