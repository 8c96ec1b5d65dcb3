"""Real peers on 127.0.0.1 with the PKI the modules build: openssl s_server /
s_client mutual TLS, a real OpenVPN server and client using a profile written
by vpn_client_profiles, revocation through vpn_crl, and a server renewal that
leaves the client profiles untouched.

OpenVPN runs with a tun device when this machine can create one (root with
/dev/net/tun), otherwise point-to-point over `dev null`; the mode is printed.
Every process started here is stopped in a `finally`, every wait is bounded.
"""

import fcntl
import os
import random
import socket
import struct
import subprocess
import time

from conftest import ok, openssl, require

CLIENTS = ["alice.example.com", "bob.example.com", "carol.example.com"]
DEADLINE = 30
HTTP_REQUEST = "GET / HTTP/1.0\r\n\r\n"
HTTP_OK = "HTTP/1.0 200 ok"
TUNSETIFF = 0x400454CA
IFF_TUN, IFF_NO_PI = 0x0001, 0x1000


class Peer(object):
    """A server or client process writing to a log file; stopped on exit."""

    def __init__(self, argv, log_path):
        self.log_path = str(log_path)
        self._log = open(self.log_path, "wb")  # pylint: disable=consider-using-with
        try:
            self.proc = subprocess.Popen(  # pylint: disable=consider-using-with
                argv, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT)
        except OSError:
            self._log.close()
            raise

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    def log(self):
        with open(self.log_path, "rb") as handle:
            return handle.read().decode("utf-8", "replace")

    def wait_for(self, *patterns, timeout=DEADLINE):
        """The first of patterns to show in the log, or None at the deadline or when the process ended."""
        deadline = time.monotonic() + timeout
        while True:
            exited = self.proc.poll() is not None
            text = self.log()
            for pattern in patterns:
                if pattern in text:
                    return pattern
            if exited or time.monotonic() > deadline:
                return None
            time.sleep(0.1)

    def stop(self):
        try:
            if self.proc.poll() is None:
                self.proc.terminate()
                try:
                    self.proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(timeout=5)
        finally:
            self._log.close()


def _free_port(kind=socket.SOCK_STREAM):
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _tun_usable():
    """Whether a tun device can be created here: open /dev/net/tun and ask for a (transient) device."""
    try:
        fd = os.open("/dev/net/tun", os.O_RDWR)
    except OSError:
        return False
    try:
        fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", b"", IFF_TUN | IFF_NO_PI))
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


def _free_subnet():
    """A 10.213.X.0/24 no route of this machine uses, so parallel runs do not collide."""
    used = set()
    try:
        with open("/proc/net/route", encoding="ascii") as handle:
            for line in handle.read().splitlines()[1:]:
                destination = line.split()[1]
                used.add(socket.inet_ntoa(struct.pack("<I", int(destination, 16))))
    except (OSError, IndexError, ValueError):
        pass
    candidates = ["10.213.%d.0" % octet for octet in range(16, 250) if "10.213.%d.0" % octet not in used]
    return random.choice(candidates)


def _build_pki(pki, clients):
    """The server certificate, the clients in one vpn_cert run and a first CRL, on the `ca` fixture's CA."""
    server = ok("vpn_cert", {"pki_dir": pki, "name": ["server"], "type": "server", "key_size": 2048})
    issued = ok("vpn_cert", {"pki_dir": pki, "name": clients, "type": "client", "key_size": 2048})
    assert sorted(issued["certificates"]) == sorted(clients)
    assert all(entry["action"] == "created" for entry in issued["certificates"].values()), issued
    ok("vpn_crl", {"pki_dir": pki})
    return server["certificates"]["server"], issued["certificates"]


# --- openssl s_server / s_client ------------------------------------------------


def _s_server(pki, port, log_path, crl=False):
    argv = [require("openssl"), "s_server", "-accept", "127.0.0.1:%d" % port, "-www", "-Verify", "1", "-verify_return_error",
            "-CAfile", os.path.join(pki, "ca.crt"), "-cert", os.path.join(pki, "issued", "server.crt"),
            "-key", os.path.join(pki, "private", "server.key")]
    if crl:
        argv += ["-crl_check", "-CRL", os.path.join(pki, "crl.pem")]
    server = Peer(argv, log_path)
    if server.wait_for("ACCEPT") is None:
        server.stop()
        raise AssertionError("s_server did not start:\n" + server.log()[-2000:])
    return server


def _s_client(pki, port, cert, key):
    return subprocess.run(
        [require("openssl"), "s_client", "-connect", "127.0.0.1:%d" % port, "-cert", cert, "-key", key,
         "-CAfile", os.path.join(pki, "ca.crt"), "-verify_hostname", "server", "-verify_return_error", "-ign_eof"],
        input=HTTP_REQUEST, capture_output=True, text=True, timeout=DEADLINE, check=False)


def _client_files(pki, name):
    return os.path.join(pki, "issued", name + ".crt"), os.path.join(pki, "private", name + ".key")


def _assert_accepted(proc, who):
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, "%s: s_client rc=%s\n%s" % (who, proc.returncode, output[-3000:])
    assert "Verify return code: 0 (ok)" in proc.stdout, "%s:\n%s" % (who, output[-3000:])
    assert HTTP_OK in proc.stdout, "%s: no HTTP response from s_server -www\n%s" % (who, output[-3000:])


def _assert_refused(proc, server, server_error, who):
    """Refused: s_client fails, no HTTP answer, and the server logged why."""
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, "%s was accepted: rc=0\n%s" % (who, output[-3000:])
    assert HTTP_OK not in proc.stdout, "%s got an HTTP answer:\n%s" % (who, output[-3000:])
    assert server.wait_for(server_error, timeout=5), "%s: no '%s' in the server log:\n%s" % (who, server_error, server.log()[-3000:])


def _server_pem(s_client_stdout):
    start = s_client_stdout.index("-----BEGIN CERTIFICATE-----")
    end = s_client_stdout.index("-----END CERTIFICATE-----", start) + len("-----END CERTIFICATE-----")
    return s_client_stdout[start:end]


def test_openssl_mutual_tls_other_ca_and_revocation(ca, tmp_path):
    pki = ca
    require("openssl")
    _build_pki(pki, CLIENTS)
    other = str(tmp_path / "other-pki")
    ok("vpn_ca", {"pki_dir": other})  # same default CA name, another key
    ok("vpn_cert", {"pki_dir": other, "name": [CLIENTS[0]], "type": "client", "key_size": 2048})

    port = _free_port()
    with _s_server(pki, port, tmp_path / "s_server.log") as server:
        for name in CLIENTS:
            _assert_accepted(_s_client(pki, port, *_client_files(pki, name)), name)
        intruder = _s_client(pki, port, *_client_files(other, CLIENTS[0]))
        _assert_refused(intruder, server, "unable to get local issuer certificate", "%s of another CA" % CLIENTS[0])
        assert "alert unknown ca" in intruder.stderr, intruder.stderr[-2000:]

    revoked = ok("vpn_cert", {"pki_dir": pki, "name": [CLIENTS[1]], "state": "revoked"})["certificates"][CLIENTS[1]]
    assert revoked["action"] == "revoked", revoked
    serial = revoked["serial"]
    crl = ok("vpn_crl", {"pki_dir": pki})
    assert crl["changed"] and crl["revoked_serials"] == [serial], crl
    revoked_cert = os.path.join(pki, "revoked", "certs_by_serial", serial + ".crt")
    revoked_key = os.path.join(pki, "revoked", "private_by_serial", serial + ".key")
    assert not os.path.exists(_client_files(pki, CLIENTS[1])[0])
    listed = openssl("crl", "-in", os.path.join(pki, "crl.pem"), "-noout", "-text").stdout
    assert "Serial Number: " + serial in listed, listed

    with _s_server(pki, port, tmp_path / "s_server-crl.log", crl=True) as server:
        _assert_refused(_s_client(pki, port, revoked_cert, revoked_key), server, "certificate revoked", "revoked %s" % CLIENTS[1])
        for name in (CLIENTS[0], CLIENTS[2]):
            _assert_accepted(_s_client(pki, port, *_client_files(pki, name)), name + " after the revocation of " + CLIENTS[1])


# --- OpenVPN ------------------------------------------------------------------


class OpenVpn(object):
    """The OpenVPN mode this machine allows, and the configuration that goes with it."""

    def __init__(self, tmp_path, capsys):
        self.tun = _tun_usable()
        self.mode = "tun" if self.tun else "null (point-to-point tls-server/tls-client, no tun device)"
        self.dev = "tun" if self.tun else "null"
        self.tmp_path = tmp_path
        self.port = _free_port(socket.SOCK_DGRAM)
        self.subnet = _free_subnet() if self.tun else None
        # Shown in `make system` output too, where pytest captures stdout.
        with capsys.disabled():
            print("\nopenvpn device: %s%s" % (self.mode, " (subnet %s/24)" % self.subnet if self.tun else ""))
        self.runs = 0

    def write_base_profile(self, pki, path):
        """A client configuration like the one AWS exports, with a stray cert line and key block to be stripped."""
        with open(os.path.join(pki, "ca.crt"), encoding="ascii") as handle:
            ca_pem = handle.read()
        text = (
            "client\n"
            "dev %s\n"
            "proto udp4\n"
            "remote 127.0.0.1 %d\n"
            "remote-random-hostname\n"
            "resolv-retry infinite\n"
            "nobind\n"
            "remote-cert-tls server\n"
            "cipher AES-256-GCM\n"
            "verb 4\n"
            "cert old.crt\n"
            "<key>\n"
            "garbage\n"
            "</key>\n"
            "<ca>\n%s</ca>\n"
            "\n"
            "reneg-sec 0\n"
            "\n"
            "verify-x509-name server name\n"
        ) % (self.dev, self.port, ca_pem)
        with open(path, "w", encoding="ascii") as handle:
            handle.write(text)
        return ca_pem

    def server_config(self, pki):
        lines = [
            "dev %s" % self.dev,
            "proto udp4",
            "local 127.0.0.1",
            "port %d" % self.port,
            "dh none",
            "ca %s" % self.trusted_ca(pki),
            "cert %s" % os.path.join(pki, "issued", "server.crt"),
            "key %s" % os.path.join(pki, "private", "server.key"),
            "crl-verify %s" % os.path.join(pki, "crl.pem"),
            "verb 4",
        ]
        if self.tun:
            lines += ["topology subnet", "server %s 255.255.255.0" % self.subnet]
        else:
            lines += ["tls-server"]
        self.runs += 1
        path = self.tmp_path / ("openvpn-server-%d.conf" % self.runs)
        path.write_text("\n".join(lines) + "\n")
        return str(path)

    def trusted_ca(self, pki):
        """The server's `ca`: the PKI's CA certificate."""
        return os.path.join(pki, "ca.crt")

    def command(self, argv):
        """How a peer is started (test_ca_renewal_proof runs it at another time)."""
        return argv

    def server(self, pki):
        config = self.server_config(pki)
        server = Peer(self.command([require("openvpn"), "--config", config]), self.tmp_path / ("openvpn-server-%d.log" % self.runs))
        if server.wait_for("link local (bound)", "Exiting due to fatal error") != "link local (bound)":
            server.stop()
            raise AssertionError("[openvpn %s] server did not start:\n%s" % (self.mode, server.log()[-3000:]))
        return server

    def client(self, profile, name):
        argv = [require("openvpn"), "--config", profile]
        if self.tun:
            argv += ["--route-nopull", "--pull-filter", "ignore", "redirect-gateway"]
        return Peer(self.command(argv), self.tmp_path / ("openvpn-client-%s-%d.log" % (name, self.runs)))

    @property
    def success(self):
        return "Initialization Sequence Completed" if self.tun else "Peer Connection Initiated"

    def assert_connects(self, pki, profile, name):
        with self.server(pki) as server, self.client(profile, name) as client:
            found = client.wait_for(self.success, "Exiting due to fatal error", "AUTH_FAILED")
            assert found == self.success, "[openvpn %s] %s did not connect (%s):\nclient:\n%s\nserver:\n%s" % (
                self.mode, name, found, client.log()[-3000:], server.log()[-3000:])
            assert server.wait_for("[%s] Peer Connection Initiated" % name, timeout=5), "[openvpn %s] %s:\n%s" % (
                self.mode, name, server.log()[-3000:])
            return client.log()

    def assert_refused(self, pki, profile, name):
        with self.server(pki) as server, self.client(profile, name) as client:
            found = server.wait_for("certificate revoked", "VERIFY ERROR", "[%s] Peer Connection Initiated" % name)
            log = server.log()
            assert found in ("certificate revoked", "VERIFY ERROR"), "[openvpn %s] revoked %s not refused (%s):\n%s" % (
                self.mode, name, found, log[-3000:])
            assert "certificate revoked" in log and "CN=%s" % name in log, "[openvpn %s]:\n%s" % (self.mode, log[-3000:])
            time.sleep(1)  # what the client does right after the refusal
            assert self.success not in client.log() and "Initialization Sequence Completed" not in client.log(), (
                "[openvpn %s] revoked %s connected:\n%s" % (self.mode, name, client.log()[-3000:]))
            assert "Peer Connection Initiated" not in log, "[openvpn %s]:\n%s" % (self.mode, log[-3000:])


def _profiles(pki, names, dest, base):
    return ok("vpn_client_profiles", {"pki_dir": pki, "names": names, "dest": dest, "config_file": base})


def _read(path):
    with open(path, "rb") as handle:
        return handle.read()


def test_openvpn_server_and_client_with_generated_profiles(ca, tmp_path, capsys):
    pki = ca
    require("openvpn")
    _build_pki(pki, CLIENTS[:2])
    vpn = OpenVpn(tmp_path, capsys)
    base = str(tmp_path / "downloaded-client-config.ovpn")
    ca_pem = vpn.write_base_profile(pki, base)
    dest = str(tmp_path / "profiles")
    written = _profiles(pki, CLIENTS[:2], dest, base)
    assert written["files"] == dict((name, "written") for name in CLIENTS[:2]), written

    for name in CLIENTS[:2]:
        text = _read(written["profiles"][name]).decode("ascii")
        assert "old.crt" not in text and "garbage" not in text, text
        assert text.count("<cert>") == 1 and text.count("<key>") == 1 and ca_pem in text, text
        assert "remote 127.0.0.1 %d\n" % vpn.port in text and "verify-x509-name server name\n" in text, text

    client_log = vpn.assert_connects(pki, written["profiles"][CLIENTS[0]], CLIENTS[0])
    assert "VERIFY OK: depth=0, CN=server" in client_log, "[openvpn %s]\n%s" % (vpn.mode, client_log[-3000:])

    # Revoked after its profile was written: the profile still holds a valid-looking certificate and key.
    revoked = ok("vpn_cert", {"pki_dir": pki, "name": [CLIENTS[1]], "state": "revoked"})["certificates"][CLIENTS[1]]
    assert revoked["action"] == "revoked", revoked
    assert ok("vpn_crl", {"pki_dir": pki})["revoked_serials"] == [revoked["serial"]]
    vpn.assert_refused(pki, written["profiles"][CLIENTS[1]], CLIENTS[1])
    vpn.assert_connects(pki, written["profiles"][CLIENTS[0]], CLIENTS[0])


def test_server_renewal_keeps_client_profiles_working(ca, tmp_path, capsys):
    pki = ca
    require("openssl")
    require("openvpn")
    server_before = _build_pki(pki, [CLIENTS[0]])[0]
    vpn = OpenVpn(tmp_path, capsys)
    base = str(tmp_path / "downloaded-client-config.ovpn")
    vpn.write_base_profile(pki, base)
    dest = str(tmp_path / "profiles")
    profile = _profiles(pki, [CLIENTS[0]], dest, base)["profiles"][CLIENTS[0]]
    profile_bytes = _read(profile)
    key_path = os.path.join(pki, "private", "server.key")
    key_bytes = _read(key_path)
    cert_before = _read(os.path.join(pki, "issued", "server.crt")).decode("ascii")

    port = _free_port()
    with _s_server(pki, port, tmp_path / "s_server-before.log"):
        _assert_accepted(_s_client(pki, port, *_client_files(pki, CLIENTS[0])), CLIENTS[0] + " before the renewal")
    vpn.assert_connects(pki, profile, CLIENTS[0])

    renewed = ok("vpn_cert", {"pki_dir": pki, "name": ["server"], "type": "server", "renew": True, "key_size": 2048})
    entry = renewed["certificates"]["server"]
    assert entry["action"] == "renewed" and renewed["changed"], entry
    assert entry["serial"] != server_before["serial"], entry
    assert entry["subject_alt_names"] == ["DNS:server"], entry
    assert _read(key_path) == key_bytes, "renew changed the server key"
    cert_after = _read(os.path.join(pki, "issued", "server.crt")).decode("ascii")
    assert cert_after != cert_before
    assert _read(os.path.join(pki, "renewed", "issued", "server.crt")).decode("ascii") == cert_before
    serial = openssl("x509", "-in", os.path.join(pki, "issued", "server.crt"), "-noout", "-serial").stdout
    assert serial.strip() == "serial=" + entry["serial"], serial

    with _s_server(pki, port, tmp_path / "s_server-after.log"):
        after = _s_client(pki, port, *_client_files(pki, CLIENTS[0]))
        _assert_accepted(after, CLIENTS[0] + " after the renewal")
        assert _server_pem(after.stdout) in cert_after, "s_server did not present the renewed certificate"
    vpn.assert_connects(pki, profile, CLIENTS[0])

    again = _profiles(pki, [CLIENTS[0]], dest, base)
    assert not again["changed"] and again["files"] == {CLIENTS[0]: "unchanged"}, again
    assert _read(profile) == profile_bytes, "the client profile changed with the server renewal"


def test_profile_keeps_options_that_only_start_with_key_or_cert(ca, tmp_path, capsys):
    """Only `cert` / `key` / `pkcs12` options are the client's: `key-direction` (used with tls-auth) must
    survive, or OpenVPN refuses the profile ("Unrecognized option ... -direction")."""
    pki = ca
    require("openvpn")
    _build_pki(pki, [CLIENTS[0]])
    vpn = OpenVpn(tmp_path, capsys)
    base = str(tmp_path / "downloaded-client-config.ovpn")
    vpn.write_base_profile(pki, base)
    with open(base, "a", encoding="ascii") as handle:
        handle.write("key-direction 1\n")
    profile = _profiles(pki, [CLIENTS[0]], str(tmp_path / "profiles"), base)["profiles"][CLIENTS[0]]
    lines = _read(profile).decode("ascii").splitlines()
    assert "key-direction 1" in lines and "-direction 1" not in lines, "vpn_client_profiles mangled 'key-direction 1': %s" % [
        line for line in lines if line.endswith("direction 1")]
    vpn.assert_connects(pki, profile, CLIENTS[0])
