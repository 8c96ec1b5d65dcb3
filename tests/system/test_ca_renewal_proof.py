"""A CA renewal that no connected user notices, proven with real peers across time
(docs/ca-renewal.md): libfaketime moves the clock of the modules, OpenVPN and openssl.

A CA valid 60 days; on day 20 it is within renew_before_days (45) and is renewed. The
OpenVPN server plays the endpoint: its `ca` is the chain vpn_acm_import gave ACM (moto's
server), and the profiles are what vpn_client_profiles writes from the configuration the
endpoint exports. Clients: bob (issued here, keyid-only AKI), dave (an easy-rsa style
certificate whose AKI names the CA certificate's serial) and carol (revoked).
"""

import json
import os
import shutil
import subprocess
import urllib.request

import pytest

from conftest import ok, openssl, require
from test_handshakes import OpenVpn

CA_DAYS, RENEW_BEFORE = 60, 45
LIBFAKETIME = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"


class Clock(object):
    """Runs modules, openssl and OpenVPN on day ``day`` (libfaketime, offset from now)."""

    def __init__(self):
        self.day = 0
        require("faketime")
        if not os.path.exists(LIBFAKETIME):
            pytest.fail("%s is missing (Debian's faketime package)" % LIBFAKETIME)

    def env(self):
        return {"LD_PRELOAD": LIBFAKETIME, "FAKETIME": "+%dd" % self.day, "FAKETIME_DONT_FAKE_MONOTONIC": "1"}

    def ok(self, module, args):
        return ok(module, args, extra_env=self.env())

    def argv(self, argv):
        # env execs the command (faketime would fork it): stopping the process stops the command
        return ["env"] + ["%s=%s" % item for item in sorted(self.env().items())] + argv


class Endpoint(OpenVpn):
    """The OpenVPN server as the endpoint: trusts the chain ACM holds for the server certificate."""

    def __init__(self, tmp_path, capsys, clock):
        super(Endpoint, self).__init__(tmp_path, capsys)
        self.clock = clock
        self.trusted = str(tmp_path / "endpoint-ca.pem")

    def trusted_ca(self, pki):
        return self.trusted

    def command(self, argv):
        return self.clock.argv(argv)

    def assert_fails(self, pki, profile, name, *errors):
        """The handshake fails with one of ``errors`` (an OpenVPN client sends its CA certificates along,
        so a server that cannot find the issuer may say "self-signed certificate in certificate chain")."""
        with self.server(pki) as server, self.client(profile, name) as client:
            found = client.wait_for(self.success, "VERIFY ERROR", timeout=20) or server.wait_for("VERIFY ERROR", timeout=5)
            errors_seen = [line for line in (client.log() + server.log()).splitlines() if "VERIFY ERROR" in line]
            assert found != self.success and any(error in line for line in errors_seen for error in errors), (
                "%s on day %d: expected %s, saw %s\nclient:\n%s\nserver:\n%s"
                % (name, self.clock.day, errors, errors_seen, client.log()[-2000:], server.log()[-2000:]))


def acm_chain(local_acm, arn):
    """The chain ACM holds for the server certificate (moto adds a root of its own after ours: dropped)."""
    request = urllib.request.Request(local_acm.url + "/", data=json.dumps({"CertificateArn": arn}).encode(), headers={
        "X-Amz-Target": "CertificateManager.GetCertificate", "Content-Type": "application/x-amz-json-1.1",
        "Authorization": "AWS4-HMAC-SHA256 Credential=test/20260101/eu-west-1/acm/aws4_request, SignedHeaders=host, Signature=x"})
    chain = json.loads(urllib.request.urlopen(request, timeout=30).read())["CertificateChain"]
    return chain[:chain.index("-----END CERTIFICATE-----") + len("-----END CERTIFICATE-----")] + "\n"


def easyrsa_style_client(pki, name, tmp_path):
    """A client certificate as easy-rsa makes it (authorityKeyIdentifier keyid,issuer:always), signed by the CA."""
    key, request, ext = (str(tmp_path / (name + suffix)) for suffix in (".key", ".req", ".ext"))
    with open(ext, "w") as handle:
        handle.write("basicConstraints=CA:FALSE\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid,issuer:always\n"
                     "extendedKeyUsage=clientAuth\nkeyUsage=digitalSignature\n")
    openssl("req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", request, "-subj", "/CN=" + name)
    openssl("x509", "-req", "-in", request, "-CA", os.path.join(pki, "ca.crt"), "-CAkey", os.path.join(pki, "private", "ca.key"),
            "-set_serial", "0x" + os.urandom(16).hex(), "-days", "825", "-extfile", ext, "-out", os.path.join(pki, "issued", name + ".crt"))
    shutil.copy(key, os.path.join(pki, "private", name + ".key"))
    os.chmod(os.path.join(pki, "private", name + ".key"), 0o600)


def run(clock, pki, local_acm, base, dest):
    """What a scheduled mutual_auth does, then the profiles: the CA renewal when due included
    (a renewed CA certificate lasts a year)."""
    ca = clock.ok("vpn_ca", {"pki_dir": pki, "days": 365, "renew_before_days": RENEW_BEFORE})
    clock.ok("vpn_cert", {"pki_dir": pki, "name": ["server"], "type": "server"})
    clock.ok("vpn_cert", {"pki_dir": pki, "name": ["bob", "dave"], "type": "client"})
    clock.ok("vpn_crl", {"pki_dir": pki})
    imported = clock.ok("vpn_acm_import", {"pki_dir": pki, "name": "server", "region": "eu-west-1", "endpoint_url": local_acm.url})
    clock.ok("vpn_client_profiles", {"pki_dir": pki, "names": ["bob", "dave"], "dest": dest, "config_file": base})
    return ca, imported


def ca_block(profile, path):
    """The CA certificates of a profile's <ca>, as a file."""
    with open(profile) as handle:
        text = handle.read()
    with open(path, "w") as handle:
        handle.write(text[text.index("<ca>\n") + 5:text.index("</ca>")])
    return path


def verify_all(clock, pki, bundle):
    """openssl verify, on the clock's day, of every certificate in issued/ against ``bundle``."""
    for name in sorted(os.listdir(os.path.join(pki, "issued"))):
        proc = subprocess.run(clock.argv([require("openssl"), "verify", "-CAfile", bundle, os.path.join(pki, "issued", name)]),
                              capture_output=True, text=True, check=False)
        assert proc.returncode == 0, "day %d: %s\n%s" % (clock.day, name, proc.stdout + proc.stderr)


def serial(path):
    return openssl("x509", "-in", path, "-noout", "-serial").stdout.strip().split("=")[1]


def test_clients_keep_connecting_through_a_ca_renewal(tmp_path, capsys, local_acm):
    require("openvpn")
    clock = Clock()
    vpn = Endpoint(tmp_path, capsys, clock)
    pki, dest, base = str(tmp_path / "pki"), str(tmp_path / "profiles"), str(tmp_path / "exported.ovpn")
    clock.ok("vpn_ca", {"pki_dir": pki, "days": CA_DAYS})
    vpn.write_base_profile(pki, base)  # the endpoint's exported configuration: <ca> is the chain in ACM
    clock.ok("vpn_cert", {"pki_dir": pki, "name": ["carol"], "type": "client"})
    carol = clock.ok("vpn_client_profiles", {"pki_dir": pki, "names": ["carol"], "dest": str(tmp_path / "carol"),
                                             "config_file": base})["profiles"]["carol"]
    clock.ok("vpn_cert", {"pki_dir": pki, "name": ["carol"], "state": "revoked"})
    easyrsa_style_client(pki, "dave", tmp_path)
    arn = run(clock, pki, local_acm, base, dest)[1]["certificate_arn"]
    old = dict((name, shutil.copy(os.path.join(dest, name + ".ovpn"), str(tmp_path / (name + "-day0.ovpn")))) for name in ("bob", "dave"))
    new = dict((name, os.path.join(dest, name + ".ovpn")) for name in ("bob", "dave"))
    never_renewed = str(tmp_path / "never-renewed")
    shutil.copytree(pki, never_renewed)

    def endpoint_trusts_acm_chain():
        with open(vpn.trusted, "w") as handle:
            handle.write(acm_chain(local_acm, arn))
        return serial(vpn.trusted)

    def connect(*names):
        for name, profile in names:
            vpn.assert_connects(pki, profile, name)
        # carol, revoked on day 0, with the CA certificates of today's profiles: refused by the CRL
        with open(carol) as handle:
            text = handle.read()
        with open(new["bob"]) as handle:
            today = handle.read()
        carol_today = str(tmp_path / ("carol-day%d.ovpn" % clock.day))
        with open(carol_today, "w") as handle:
            handle.write(text[:text.index("<ca>")] + today[today.index("<ca>"):today.index("</ca>")] + text[text.index("</ca>"):])
        vpn.assert_refused(pki, carol_today, "carol")

    # Day 20: the CA is within renew_before_days: renewed. dave (easy-rsa's AKI) gets a certificate
    # with the same key; the endpoint keeps trusting the old CA certificate; profiles carry both.
    clock.day = 20
    ca, imported = run(clock, pki, local_acm, base, dest)
    assert ca["action"] == "renewed" and imported["certificate_arn"] == arn
    assert endpoint_trusts_acm_chain() == serial(os.path.join(pki, "expired-ca.list"))
    assert [serial(path) for path in (ca_block(new["bob"], str(tmp_path / "bundle.pem")),)] == [serial(os.path.join(pki, "ca.crt"))]
    with open(new["bob"]) as handle:
        assert handle.read().count("BEGIN CERTIFICATE") == 3  # bob's, the renewed CA and the old CA
    clock.day = 21
    verify_all(clock, pki, str(tmp_path / "bundle.pem"))
    connect(("bob", old["bob"]), ("dave", old["dave"]), ("bob", new["bob"]), ("dave", new["dave"]))

    # Day 50: the old CA certificate ends in 10 days: the server certificate is re-imported into the
    # same ARN with the renewed one.
    clock.day = 50
    run(clock, pki, local_acm, base, dest)
    assert endpoint_trusts_acm_chain() == serial(os.path.join(pki, "ca.crt"))
    verify_all(clock, pki, os.path.join(pki, "ca.crt"))
    connect(("bob", old["bob"]), ("bob", new["bob"]), ("dave", new["dave"]))
    # dave's pre-renewal certificate names the old CA certificate's serial: refused from the switch on
    vpn.assert_fails(pki, old["dave"], "dave", "unable to get local issuer certificate", "self-signed certificate in certificate chain")

    # Day 70: the old CA certificate has expired. Re-issued profiles connect; profiles from before the
    # renewal cannot (their only trust anchor expired): why they are handed out during the overlap.
    clock.day = 70
    assert run(clock, pki, local_acm, base, dest)[0]["changed"] is False
    verify_all(clock, pki, os.path.join(pki, "ca.crt"))
    connect(("bob", new["bob"]), ("dave", new["dave"]))
    vpn.assert_fails(pki, old["bob"], "bob", "certificate has expired")

    # A PKI that was never renewed is dead once its CA expired.
    shutil.copy(os.path.join(never_renewed, "ca.crt"), vpn.trusted)
    vpn.assert_fails(never_renewed, old["bob"], "bob", "certificate has expired")
