"""Crash-test kit: start an operation, wait for a chosen instant (a file-system
event seen through inotify, or a time), freeze its whole process tree with
SIGSTOP, SIGKILL every member, and prove that none of them survived.

The tree is found by walking the parent pids in /proc/*/stat, because killing a
process group is not enough: ansible's worker calls setsid() before it runs a
module, and the module's key generation forks a multiprocessing pool. Linux
only (/proc, inotify), like the rest of the system tests.
"""

import collections
import ctypes
import ctypes.util
import os
import select
import signal
import struct
import subprocess
import time
import uuid

IN_MOVED_TO = 0x00000080
IN_CREATE = 0x00000100
IN_Q_OVERFLOW = 0x00004000
_EVENT = struct.Struct("iIII")
TOKEN_VARIABLE = "CRASHKIT_TOKEN"
# How often the tree is re-read while waiting: the members known at the trigger are
# frozen first, before the full /proc walk (a few ms) finds any newer one.
TREE_REFRESH_SECONDS = 0.02

Event = collections.namedtuple("Event", "directory mask name")
Killed = collections.namedtuple("Killed", "pid ppid starttime cmdline")


class Inotify(object):
    """The inotify events (create, rename into) of a few directories."""

    def __init__(self):
        self._libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        self.fd = self._libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        if self.fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1 failed")
        self._directories = {}

    def watch(self, directory):
        descriptor = self._libc.inotify_add_watch(self.fd, os.fsencode(directory), IN_CREATE | IN_MOVED_TO)
        if descriptor < 0:
            raise OSError(ctypes.get_errno(), "inotify_add_watch failed", directory)
        self._directories[descriptor] = directory

    def events(self, timeout):
        ready = select.select([self.fd], [], [], max(timeout, 0))[0]
        if not ready:
            return []
        data = os.read(self.fd, 1 << 20)
        events, offset = [], 0
        while offset < len(data):
            descriptor, mask, dummy, length = _EVENT.unpack_from(data, offset)
            name = data[offset + _EVENT.size:offset + _EVENT.size + length].rstrip(b"\0").decode()
            offset += _EVENT.size + length
            if mask & IN_Q_OVERFLOW:
                raise AssertionError("the inotify queue overflowed: the kill point would be wrong")
            events.append(Event(self._directories.get(descriptor), mask, name))
        return events

    def close(self):
        os.close(self.fd)


class AfterSeconds(object):
    """Kill this long after the start."""

    def __init__(self, seconds, label):
        self.seconds = seconds
        self.label = label
        self.directories = ()

    def hit(self, event):  # pylint: disable=unused-argument
        return False


class OnFile(object):
    """Kill at the ``nth`` file that appears in one of ``directories`` (relative to the
    watched root): ``renamed`` counts renames into it (an atomic write or a move
    ending), ``created`` counts new files (a temporary file just opened)."""

    def __init__(self, directories, nth=1, kind="renamed", name=None, prefix=None, suffix=None, label=None):
        self.directories = (directories,) if isinstance(directories, str) else tuple(directories)
        self.nth = nth
        self.mask = IN_MOVED_TO if kind == "renamed" else IN_CREATE
        self.name, self.prefix, self.suffix = name, prefix, suffix
        self.seconds = None
        self.count = 0
        self.label = label or "%s %s%s%s in %s, #%d" % (
            kind, name or "", prefix or "", ("*" + suffix) if suffix else "", "+".join(self.directories), nth)

    def hit(self, event):
        if not event.mask & self.mask:
            return False
        if (self.name and event.name != self.name) or (self.prefix and not event.name.startswith(self.prefix)):
            return False
        if self.suffix and not event.name.endswith(self.suffix):
            return False
        self.count += 1
        return self.count >= self.nth


# -- processes -------------------------------------------------------------------
def proc_stat(pid):
    """(ppid, state, starttime) of a process, or None when it is gone."""
    try:
        with open("/proc/%d/stat" % pid, "rb") as handle:
            data = handle.read()
    except OSError:
        return None
    fields = data[data.rindex(b")") + 2:].split()  # the command name may hold spaces and parentheses
    return int(fields[1]), fields[0].decode(), int(fields[19])


def process_table():
    table = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            info = proc_stat(int(entry))
            if info is not None:
                table[int(entry)] = info
    return table


def descendants(root):
    """Every descendant of ``root``, from the parent pids of /proc/*/stat."""
    children = collections.defaultdict(list)
    for pid, (ppid, dummy, dummy2) in process_table().items():
        children[ppid].append(pid)
    found, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), ()):
            found.append(child)
            todo.append(child)
    return found


def quick_tree(root):
    """``root`` and its descendants from /proc/<pid>/task/*/children: cheap enough to
    re-read every few ms while waiting; the /proc/*/stat walk stays the authority."""
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        try:
            tasks = os.listdir("/proc/%d/task" % pid)
        except OSError:
            continue
        for task in tasks:
            try:
                with open("/proc/%d/task/%s/children" % (pid, task)) as handle:
                    todo.extend(int(child) for child in handle.read().split())
            except OSError:
                pass
    return found


def cmdline(pid):
    """The command line, then the process name in brackets: a module forked from ansible's
    worker (plugin_utils/forked_module.py) has the worker's command line and its own name."""
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as handle:
            command = handle.read().replace(b"\0", b" ").decode(errors="replace").strip()
        with open("/proc/%d/comm" % pid, "rb") as handle:
            return "%s [%s]" % (command, handle.read().decode(errors="replace").strip())
    except OSError:
        return ""


def freeze_and_kill(root, known=()):
    """SIGSTOP ``root`` and all its descendants (those in ``known`` first, at once), until
    every member is seen stopped and a last walk finds no new one; then SIGKILL them all.
    Nothing forks or finishes in between. Returns the members, as Killed records."""
    stopped = {}

    def stop(pid):
        if pid in stopped:
            return
        try:
            os.kill(pid, signal.SIGSTOP)
        except ProcessLookupError:
            return
        stopped[pid] = None

    for pid in [root] + list(known):
        stop(pid)
    while True:
        for pid in [root] + descendants(root):
            stop(pid)
        # SIGSTOP is asynchronous: wait until each member is really stopped (or dead), then
        # walk again for children forked just before it stopped.
        deadline = time.monotonic() + 10
        for pid in list(stopped):
            info = proc_stat(pid)
            while info is not None and info[1] not in ("T", "t", "Z", "X"):
                if time.monotonic() > deadline:
                    raise AssertionError("process %d (%s) did not stop within 10 s of SIGSTOP" % (pid, cmdline(pid)))
                time.sleep(0.0005)
                info = proc_stat(pid)
            if stopped[pid] is None and info is not None:
                stopped[pid] = Killed(pid, info[0], info[2], cmdline(pid))
        if all(pid in stopped for pid in [root] + descendants(root)):
            break
    for pid in stopped:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return [record for record in stopped.values() if record is not None]


def _alive(record):
    info = proc_stat(record.pid)
    return info is not None and info[2] == record.starttime and info[1] not in ("Z", "X")


def token_holders(token):
    """Live processes started with TOKEN_VARIABLE=token: whatever escaped the tree walk."""
    marker = ("%s=%s" % (TOKEN_VARIABLE, token)).encode()
    holders = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/environ" % entry, "rb") as handle:
                environ = handle.read().split(b"\0")
        except OSError:
            continue
        info = proc_stat(int(entry))
        if marker in environ and info is not None and info[1] not in ("Z", "X"):
            holders.append("%s (%s)" % (entry, cmdline(int(entry))))
    return holders


def assert_all_dead(killed, token, timeout=10):
    deadline = time.monotonic() + timeout
    while True:
        alive = ["%d (%s)" % (record.pid, record.cmdline) for record in killed if _alive(record)]
        escaped = token_holders(token)
        if not alive and not escaped:
            return
        if time.monotonic() > deadline:
            raise AssertionError("still alive %d s after SIGKILL: %s; started by the run but never seen in its tree: %s"
                                 % (timeout, alive or "none", escaped or "none"))
        time.sleep(0.01)


# -- a run killed at one instant --------------------------------------------------
class KilledRun(object):
    """What happened: ``fired`` (the trigger came before the run ended), ``seconds`` from
    the start to the freeze, ``killed`` (Killed records), ``returncode`` when it ended by itself."""

    def __init__(self, fired, seconds, killed, returncode):
        self.fired = fired
        self.seconds = seconds
        self.killed = killed
        self.returncode = returncode

    def describe(self):
        if not self.fired:
            return "not killed: the run ended first (rc=%s) after %.2f s" % (self.returncode, self.seconds)
        return "killed after %.2f s, %d processes: %s" % (
            self.seconds, len(self.killed), "; ".join("%d<-%d %s" % (r.pid, r.ppid, r.cmdline[:90]) for r in self.killed))


def run_and_kill(command, env, watched_root, trigger, stdout_path, stderr_path, timeout=300):
    """Run ``command``; at ``trigger`` freeze and kill its whole tree; assert nothing survived."""
    token = uuid.uuid4().hex
    env = dict(env, **{TOKEN_VARIABLE: token})
    notify = Inotify()
    proc = None
    try:
        for directory in trigger.directories:
            notify.watch(os.path.join(watched_root, directory))
        with open(stdout_path, "wb") as out, open(stderr_path, "wb") as err:
            proc = subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=err)
        started = time.monotonic()
        known, refresh_at, fired = [], started, False
        while not fired:
            now = time.monotonic()
            if trigger.seconds is not None and now - started >= trigger.seconds:
                break
            if proc.poll() is not None:
                return KilledRun(False, now - started, [], proc.returncode)
            if now - started > timeout:
                raise AssertionError("%s still running after %d s" % (command, timeout))
            if now >= refresh_at:
                known = quick_tree(proc.pid)
                refresh_at = now + TREE_REFRESH_SECONDS
            wake_at = refresh_at if trigger.seconds is None else min(refresh_at, started + trigger.seconds)
            fired = any(trigger.hit(event) for event in notify.events(wake_at - now))
        seconds = time.monotonic() - started
        killed = freeze_and_kill(proc.pid, known)
        proc.wait()
        assert_all_dead(killed, token)
        return KilledRun(True, seconds, killed, None)
    finally:
        notify.close()
        if proc is not None and proc.poll() is None:
            freeze_and_kill(proc.pid)  # only after an error above: leave nothing behind
            proc.wait()
