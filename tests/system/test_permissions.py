"""Keys stay private whatever the umask and whatever is already on disk (issue 10).

Every run, under umask 000 as under 022, leaves directories 0700, keys 0600
(moved by revoke, kept by renew, backed up when replaced, staged), nothing
group/world writable and no temporary file. While a bulk run writes keys, an
inotify watcher and a reader running as nobody see no moment in which a key is
readable by others. Loose folders are fixed (and reported, also in check mode),
a key planted by another user is never certified silently, and the temporary
files a killed run left are removed.
"""

import ctypes
import ctypes.util
import json
import os
import pwd
import re
import select
import shutil
import stat
import struct
import subprocess
import sys
import tempfile
import threading

import pytest

from conftest import collections_path, openssl, snapshot

CLIENTS = ["c1.example.com", "c2.example.com", "c3.example.com"]
BULK_CLIENTS = ["bulk%03d.example.com" % number for number in range(150)]
NOBODY = "nobody"


def _module(module, args, umask=0o022, check_mode=False):
    """Run a module as AnsiballZ does, under ``umask``: returns (rc, result)."""
    proc = subprocess.run(
        [sys.executable, "-m", "ansible_collections.clientvpn.pki.plugins.modules." + module],
        input=json.dumps({"ANSIBLE_MODULE_ARGS": dict(args, _ansible_check_mode=check_mode)}),
        capture_output=True,
        text=True,
        env=dict(os.environ, PYTHONPATH=collections_path()),
        umask=umask,
        timeout=300,
        check=False,
    )
    try:
        return proc.returncode, json.loads(proc.stdout)
    except ValueError:
        raise AssertionError("module %s printed no JSON: rc=%s\n%s\n%s" % (module, proc.returncode, proc.stdout, proc.stderr)) from None


def _ok(module, args, umask=0o022, check_mode=False):
    rc, result = _module(module, args, umask, check_mode)
    assert rc == 0 and not result.get("failed"), result.get("msg", result)
    return result


def _playbook(args, umask):
    command = ["ansible-playbook"] + args
    env = dict(os.environ, ANSIBLE_LOCALHOST_WARNING="false", ANSIBLE_NOCOLOR="1")
    proc = subprocess.run(command, capture_output=True, text=True, env=env, umask=umask, timeout=900, check=False)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]


def _mode(path):
    return stat.S_IMODE(os.lstat(str(path)).st_mode)


def _is_private_key(root, path):
    """Keys, wherever they are: private/ (with key backups), revoked/private_by_serial/, staged *.key."""
    name = os.path.basename(path)
    parent = os.path.relpath(os.path.dirname(path), root)
    return parent in ("private", os.path.join("revoked", "private_by_serial")) or name.endswith(".key") or ".key." in name


def _loose(*roots):
    """Everything under ``roots`` that breaks the rules, and the private keys seen (so an empty list means something)."""
    problems, keys = [], []
    for root in roots:
        for directory, dummy, files in os.walk(str(root)):
            if _mode(directory) != 0o700:
                problems.append("directory %s is %s, not 0700" % (directory, oct(_mode(directory))))
            for name in files:
                path = os.path.join(directory, name)
                mode = _mode(path)
                if name.startswith(".tmp-"):
                    problems.append("temporary file %s left behind" % path)
                if mode & 0o022:
                    problems.append("%s is group/world writable (%s)" % (path, oct(mode)))
                if _is_private_key(str(root), path):
                    keys.append(os.path.relpath(path, str(root)))
                    if mode != 0o600:
                        problems.append("private key %s is %s, not 0600" % (path, oct(mode)))
    return problems, keys


def _client(pki, name, key_size=1024, **extra):
    return dict({"pki_dir": str(pki), "name": [name] if isinstance(name, str) else name, "type": "client", "key_size": key_size}, **extra)


@pytest.mark.parametrize("umask", [0o000, 0o022], ids=["umask000", "umask022"])
def test_every_step_leaves_keys_private(tmp_path, umask):
    pki, stage = tmp_path / "pki", tmp_path / "stage"
    _playbook(["clientvpn.pki.mutual_auth", "-e", "pki_dir=%s" % pki, "-e", "stage_dir=%s" % stage, "-e", "clientvpn_acm_import=false",
               "-e", "pki_key_size=1024", "-e", json.dumps({"pki_clients": CLIENTS})], umask)
    problems, keys = _loose(pki, stage)
    assert not problems, "after the mutual_auth playbook: %s" % problems
    assert {"private/ca.key", "private/server.key", "server.key"} <= set(keys) and len(keys) == 2 * (len(CLIENTS) + 1) + 1

    result = _ok("vpn_cert", _client(pki, CLIENTS[0], renew=True), umask)
    assert result["certificates"][CLIENTS[0]]["action"] == "renewed"
    assert (pki / "renewed" / "issued" / (CLIENTS[0] + ".crt")).is_file()
    problems, keys = _loose(pki, stage)
    assert not problems, "after renewing %s: %s" % (CLIENTS[0], problems)

    result = _ok("vpn_cert", {"pki_dir": str(pki), "name": [CLIENTS[1]], "state": "revoked"}, umask)
    _ok("vpn_crl", {"pki_dir": str(pki)}, umask)
    revoked_key = os.path.join("revoked", "private_by_serial", result["certificates"][CLIENTS[1]]["serial"] + ".key")
    problems, keys = _loose(pki, stage)
    assert revoked_key in keys
    assert not problems, "after revoking %s: %s" % (CLIENTS[1], problems)

    # A 1024-bit key where 2048 is asked for is replaced, and the old one backed up.
    result = _ok("vpn_cert", _client(pki, CLIENTS[2], key_size=2048), umask)
    backups = result["certificates"][CLIENTS[2]]["backup_files"]
    assert len(backups) == 1 and os.path.isfile(backups[0]), result["certificates"][CLIENTS[2]]
    problems, keys = _loose(pki, stage)
    assert os.path.relpath(backups[0], str(pki)) in keys
    assert not problems, "after replacing the key of %s: %s" % (CLIENTS[2], problems)


# -- no window: inotify on private/ and a reader running as nobody --------------------
IN_ATTRIB, IN_CLOSE_WRITE, IN_MOVED_TO, IN_CREATE = 0x4, 0x8, 0x80, 0x100
IN_NONBLOCK, IN_CLOEXEC = os.O_NONBLOCK, os.O_CLOEXEC
EVENT_HEADER = struct.Struct("iIII")  # struct inotify_event: wd, mask, cookie, len; then the name


class LooseModeWatcher(object):
    """Stats every file of ``directory`` the moment inotify reports it created, moved in, chmod'ed or written."""

    def __init__(self, directory):
        self.directory = directory
        self.loose, self.names, self.events = [], set(), 0
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        self.fd = libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
        if self.fd < 0 or libc.inotify_add_watch(self.fd, os.fsencode(directory), IN_CREATE | IN_MOVED_TO | IN_ATTRIB | IN_CLOSE_WRITE) < 0:
            errno = ctypes.get_errno()
            raise OSError(errno, "inotify on %s: %s" % (directory, os.strerror(errno)))
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._watch, daemon=True)
        self.thread.start()

    def _watch(self):
        while True:
            stopping = self.stopping.is_set()  # read before the last select: events already queued are still drained
            if select.select([self.fd], [], [], 0.05)[0]:
                self._drain()
            elif stopping:
                return

    def _drain(self):
        try:
            data = os.read(self.fd, 1 << 16)
        except BlockingIOError:
            return
        offset = 0
        while offset < len(data):
            dummy, mask, dummy, length = EVENT_HEADER.unpack_from(data, offset)
            name = data[offset + EVENT_HEADER.size:offset + EVENT_HEADER.size + length].rstrip(b"\0").decode()
            offset += EVENT_HEADER.size + length
            if not name:
                continue
            try:
                mode = stat.S_IMODE(os.lstat(os.path.join(self.directory, name)).st_mode)
            except FileNotFoundError:
                mode = 0  # already renamed or removed: no window to record
            self.events += 1
            self.names.add(name)
            if mode & 0o077:
                self.loose.append((name, oct(mode), hex(mask)))

    def stop(self):
        self.stopping.set()
        self.thread.join(30)
        os.close(self.fd)


# Runs as nobody: tries, until the stop file appears, to list pki_dir and private/ and to read every key.
READER = r"""
import json, os, sys
pki, stop, canary = sys.argv[1:4]
names = set(sys.argv[4:])
private = os.path.join(pki, "private")
report = {"loops": 0, "canary": False, "listed_pki": False, "listed_private": False, "read": []}
while not os.path.exists(stop):
    report["loops"] += 1
    try:
        os.listdir(pki)
        report["listed_pki"] = True
    except OSError:
        pass
    try:
        found = set(os.listdir(private))
        report["listed_private"] = True
    except OSError:
        found = set()
    for name in names | found:
        try:
            with open(os.path.join(private, name), "rb") as handle:
                if handle.read(1):
                    report["read"].append(name)
        except OSError:
            pass
    try:
        with open(canary, "rb") as handle:
            report["canary"] = report["canary"] or handle.read() == b"readable\n"
    except OSError:
        pass
print(json.dumps(report))
"""


def _python_for_nobody():
    """A Python that nobody may execute (the venv's may live under /root)."""
    nobody = pwd.getpwnam(NOBODY)
    for candidate in (os.path.realpath(sys.executable), "/usr/bin/python3", "/usr/local/bin/python3"):
        try:
            proc = subprocess.run([candidate, "-I", "-c", "pass"], user=nobody.pw_uid, group=nobody.pw_gid, extra_groups=[],
                                  capture_output=True, timeout=30, check=False)
        except OSError:
            continue
        if proc.returncode == 0:
            return candidate
    pytest.fail("no Python interpreter that user nobody may run (tried the venv's, /usr/bin/python3, /usr/local/bin/python3)")


def _require_root():
    if os.geteuid() == 0:
        return
    message = "needs root: it runs a reader as user nobody and chowns files to nobody"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture
def open_parent():
    """A 0755 directory whose every ancestor nobody may traverse (pytest's tmp_path sits in a 0700 one)."""
    _require_root()
    parent = tempfile.mkdtemp(prefix="clientvpn-perms-")
    os.chmod(parent, 0o755)
    directory = parent
    while directory != os.path.dirname(directory):
        directory = os.path.dirname(directory)
        if not _mode(directory) & 0o001:
            shutil.rmtree(parent)
            pytest.fail("%s is not traversable by others: set TMPDIR to a directory that is" % directory)
    try:
        yield parent
    finally:
        shutil.rmtree(parent)


def test_no_moment_in_which_a_new_key_is_readable_by_others(open_parent):
    pki = os.path.join(open_parent, "pki")
    stop, canary = os.path.join(open_parent, "stop"), os.path.join(open_parent, "canary")
    with open(canary, "w", encoding="utf-8") as handle:
        handle.write("readable\n")
    os.chmod(canary, 0o644)
    _ok("vpn_ca", {"pki_dir": pki, "key_size": 1024}, umask=0o000)
    nobody = pwd.getpwnam(NOBODY)
    reader = subprocess.Popen(  # pylint: disable=consider-using-with
        [_python_for_nobody(), "-I", "-c", READER, pki, stop, canary, "ca.key"] + [name + ".key" for name in BULK_CLIENTS],
        user=nobody.pw_uid, group=nobody.pw_gid, extra_groups=[], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    watcher = LooseModeWatcher(os.path.join(pki, "private"))
    try:
        result = _ok("vpn_cert", _client(pki, BULK_CLIENTS), umask=0o000)
    finally:
        watcher.stop()
        with open(stop, "w", encoding="utf-8"):
            pass
        out, err = reader.communicate(timeout=60)
    assert reader.returncode == 0, err
    report = json.loads(out)

    assert [entry["action"] for entry in result["certificates"].values()] == ["created"] * len(BULK_CLIENTS)
    # The watcher did see every key arrive, and the reader did run as nobody (it could read the canary only).
    assert {name + ".key" for name in BULK_CLIENTS} <= watcher.names, "inotify missed keys: %d events" % watcher.events
    assert report["canary"] and report["loops"] > 0, report
    assert not watcher.loose, "files in private/ readable by others during the run (name, mode, event): %s" % watcher.loose[:10]
    assert not report["read"], "nobody read key bytes from %s" % sorted(set(report["read"]))[:10]
    assert not report["listed_pki"], "nobody could list %s" % pki
    assert _mode(pki) == 0o700 and _mode(os.path.join(pki, "private")) == 0o700
    assert all(_mode(os.path.join(pki, "private", name + ".key")) == 0o600 for name in BULK_CLIENTS)


# -- what is already on disk ------------------------------------------------------------
def _strings(value):
    if isinstance(value, dict):
        return [text for item in value.values() for text in _strings(item)]
    if isinstance(value, list):
        return [text for item in value for text in _strings(item)]
    return [value] if isinstance(value, str) else []


def _mentions_0700(result, directory):
    """Some change or warning of the result names ``directory`` itself (not a file in it) and 0700."""
    pattern = re.compile(re.escape(str(directory)) + r"(?![\w/.-])")
    return any("0700" in text and pattern.search(text) for text in _strings(result))


def test_loose_folders_are_fixed_and_reported(ca, tmp_path):
    pki = tmp_path / "pki"
    private = pki / "private"
    _ok("vpn_cert", _client(pki, CLIENTS[0]))
    os.chmod(pki, 0o755)
    os.chmod(private, 0o777)
    before = snapshot(str(pki))

    checked = _ok("vpn_cert", _client(pki, CLIENTS[0]), check_mode=True)
    assert snapshot(str(pki)) == before, "check mode changed files"
    assert checked["changed"], "check mode did not report the loose folders: %s" % checked
    assert _mentions_0700(checked, pki) and _mentions_0700(checked, private), checked

    result = _ok("vpn_cert", _client(pki, CLIENTS[0]))
    assert (oct(_mode(pki)), oct(_mode(private))) == ("0o700", "0o700")
    assert result["changed"], result
    assert _mentions_0700(result, pki) and _mentions_0700(result, private), result
    assert not _ok("vpn_cert", _client(pki, CLIENTS[0]))["changed"]


def test_loose_folder_of_another_user_is_refused(ca, tmp_path):
    _require_root()
    private = tmp_path / "pki" / "private"
    os.chown(private, pwd.getpwnam(NOBODY).pw_uid, -1)
    os.chmod(private, 0o777)
    rc, result = _module("vpn_cert", _client(tmp_path / "pki", CLIENTS[0]))
    assert rc != 0 and result.get("failed"), "a 0777 private/ owned by nobody was used: %s" % result
    assert str(private) in result["msg"], result["msg"]
    assert not (tmp_path / "pki" / "issued" / (CLIENTS[0] + ".crt")).exists()


def test_key_planted_by_another_user_is_not_certified(ca, tmp_path):
    _require_root()
    planted = tmp_path / "pki" / "private" / "planted.example.com.key"
    openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:1024", "-out", str(planted))
    os.chown(planted, pwd.getpwnam(NOBODY).pw_uid, -1)
    os.chmod(planted, 0o600)
    planted_public = openssl("pkey", "-in", str(planted), "-pubout").stdout

    rc, result = _module("vpn_cert", _client(tmp_path / "pki", "planted.example.com"))
    cert = tmp_path / "pki" / "issued" / "planted.example.com.crt"
    if rc != 0:
        assert str(planted) in result.get("msg", ""), result
        assert not cert.exists()
        return
    certified = openssl("x509", "-in", str(cert), "-noout", "-pubkey").stdout
    assert certified != planted_public, "the key nobody planted was certified silently: %s" % result["certificates"]
    assert certified == openssl("pkey", "-in", str(planted), "-pubout").stdout  # replaced by a key of ours, which the cert holds


def test_temporary_files_of_a_killed_run_are_removed(ca, tmp_path):
    pki = tmp_path / "pki"
    _ok("vpn_cert", _client(pki, CLIENTS[0]))
    strays = [pki / "private" / ".tmp-abc123", pki / "issued" / ".tmp-xyz"]
    for stray in strays:
        stray.write_bytes(b"half a file")
        os.chmod(stray, 0o600)
    _ok("vpn_cert", _client(pki, CLIENTS[0]))
    left = [str(stray) for stray in strays if os.path.exists(stray)]
    assert not left, "temporary files of a killed run still there: %s" % left
