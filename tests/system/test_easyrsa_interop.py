"""Interoperability with Debian's real easy-rsa (3.1): we adopt its PKI
without changing a byte, and its commands work on the PKI we build."""

import os
import re

import pytest

from conftest import easyrsa, failed, ok, openssl, snapshot

SEED_CLIENT = "client1.domain.tld"


@pytest.fixture
def seed_pki(easyrsa_workdir):
    """The seed procedure's exact commands (steps 2-5)."""
    pki = os.path.join(easyrsa_workdir, "pki")
    easyrsa(easyrsa_workdir, pki, "init-pki")
    # EASYRSA_REQ_CN only for build-ca: easy-rsa 3.1.0 refuses it for build-*-full in batch mode.
    easyrsa(easyrsa_workdir, pki, "build-ca", "nopass", extra_env={"EASYRSA_REQ_CN": "Easy-RSA CA"})
    easyrsa(easyrsa_workdir, pki, "--san=DNS:server", "build-server-full", "server", "nopass")
    easyrsa(easyrsa_workdir, pki, "build-client-full", SEED_CLIENT, "nopass")
    return pki


def test_adopts_an_easyrsa_pki_without_changing_a_byte(seed_pki):
    before = snapshot(seed_pki)
    for check_mode in (True, False):
        ca = ok("vpn_ca", {"pki_dir": seed_pki}, check_mode=check_mode)
        server = ok("vpn_cert", {"pki_dir": seed_pki, "name": ["server"], "type": "server"}, check_mode=check_mode)
        client = ok("vpn_cert", {"pki_dir": seed_pki, "name": [SEED_CLIENT], "type": "client"}, check_mode=check_mode)
        assert (ca["changed"], ca["action"]) == (False, "unchanged")
        assert server["changed"] is False and server["certificates"]["server"]["action"] == "unchanged"
        assert client["changed"] is False and client["certificates"][SEED_CLIENT]["action"] == "unchanged"
    assert snapshot(seed_pki) == before


def test_easyrsa_commands_work_on_our_pki(easyrsa_workdir, tmp_path):
    pki = str(tmp_path / "ours")
    ok("vpn_ca", {"pki_dir": pki})
    ok("vpn_cert", {"pki_dir": pki, "name": ["server"], "type": "server"})
    issued = ok("vpn_cert", {"pki_dir": pki, "name": [SEED_CLIENT, "bob"], "type": "client"})
    revoked_serial = issued["certificates"][SEED_CLIENT]["serial"]

    shown = easyrsa(easyrsa_workdir, pki, "show-cert", "server")
    assert re.search(r"Subject:\s+commonName\s+= server\n", shown), shown
    easyrsa(easyrsa_workdir, pki, "revoke", SEED_CLIENT)
    easyrsa(easyrsa_workdir, pki, "gen-crl")

    crl = openssl("crl", "-in", os.path.join(pki, "crl.pem"), "-noout", "-text").stdout
    assert "Serial Number: %s" % revoked_serial in crl
    assert issued["certificates"]["bob"]["serial"] not in crl
    rows = open(os.path.join(pki, "index.txt")).read().splitlines()
    assert [row.split("\t")[0] for row in rows if revoked_serial in row] == ["R"]
    assert os.path.exists(os.path.join(pki, "revoked", "certs_by_serial", revoked_serial + ".crt"))

    # The CRL really refuses the revoked certificate and accepts the other one.
    verdict = openssl("verify", "-crl_check", "-CAfile", os.path.join(pki, "ca.crt"), "-CRLfile", os.path.join(pki, "crl.pem"),
                      os.path.join(pki, "revoked", "certs_by_serial", revoked_serial + ".crt"), check=False)
    assert verdict.returncode != 0 and "revoked" in verdict.stdout + verdict.stderr
    openssl("verify", "-crl_check", "-CAfile", os.path.join(pki, "ca.crt"), "-CRLfile", os.path.join(pki, "crl.pem"),
            os.path.join(pki, "issued", "bob.crt"))

    # After easyrsa revoked it, a run that still lists the client refuses it; asked on purpose,
    # we issue the client again, next to its R row.
    message = failed("vpn_cert", {"pki_dir": pki, "name": [SEED_CLIENT], "type": "client"})
    assert "revoked" in message and "reissue_revoked" in message
    again = ok("vpn_cert", {"pki_dir": pki, "name": [SEED_CLIENT], "type": "client", "reissue_revoked": True})
    assert again["certificates"][SEED_CLIENT]["action"] == "created"
    statuses = [row.split("\t")[0] for row in open(os.path.join(pki, "index.txt")).read().splitlines() if row.endswith("/CN=" + SEED_CLIENT)]
    assert sorted(statuses) == ["R", "V"]


def test_easyrsa_builds_and_renews_on_our_pki_and_we_adopt_the_result(easyrsa_workdir, tmp_path):
    pki = str(tmp_path / "ours")
    # With the verified cache: easyrsa's work between our runs must be noticed all the same.
    cache = str(tmp_path / "cache")
    ok("vpn_ca", {"pki_dir": pki})
    ok("vpn_cert", {"pki_dir": pki, "name": ["server"], "type": "server", "cache_dir": cache})
    first = ok("vpn_cert", {"pki_dir": pki, "name": ["bob"], "type": "client", "cache_dir": cache})["certificates"]["bob"]["serial"]
    assert os.listdir(cache)

    easyrsa(easyrsa_workdir, pki, "build-client-full", "carol", "nopass")
    # 3.1 renews only within EASYRSA_CERT_RENEW days of expiry; 3.1.0 makes a new key
    easyrsa(easyrsa_workdir, pki, "renew", "bob", "nopass", extra_env={"EASYRSA_CERT_RENEW": "3650"})
    before = snapshot(pki)
    adopted = ok("vpn_cert", {"pki_dir": pki, "name": ["bob", "carol"], "type": "client", "cache_dir": cache})
    assert adopted["changed"] is False, adopted["certificates"]
    assert snapshot(pki) == before

    # Revoking bob revokes the certificate easyrsa renewed and the one it left in renewed/issued/.
    renewed = adopted["certificates"]["bob"]["serial"]
    assert renewed != first
    ok("vpn_cert", {"pki_dir": pki, "name": ["bob"], "state": "revoked"})
    statuses = dict((row.split("\t")[3], row.split("\t")[0]) for row in open(os.path.join(pki, "index.txt")).read().splitlines())
    assert (statuses[first], statuses[renewed]) == ("R", "R")
    easyrsa(easyrsa_workdir, pki, "gen-crl")
    crl = openssl("crl", "-in", os.path.join(pki, "crl.pem"), "-noout", "-text").stdout
    assert "Serial Number: %s" % first in crl and "Serial Number: %s" % renewed in crl
    assert ok("vpn_crl", {"pki_dir": pki})["changed"] is False  # easyrsa's CRL is current and complete


def _extension_names(path):
    text = openssl("x509", "-in", path, "-noout", "-text").stdout
    return [line.strip() for line in text.splitlines() if line.strip().startswith("X509v3 ")]


def _usage_lines(path):
    text = openssl("x509", "-in", path, "-noout", "-ext", "basicConstraints,keyUsage,extendedKeyUsage,subjectAltName").stdout
    return [line.strip() for line in text.splitlines()]


@pytest.mark.parametrize("name,cert_type", [("server", "server"), (SEED_CLIENT, "client")])
def test_our_certificates_have_easyrsa_extensions(seed_pki, tmp_path, name, cert_type):
    pki = str(tmp_path / "ours")
    ok("vpn_ca", {"pki_dir": pki})
    ok("vpn_cert", {"pki_dir": pki, "name": [name], "type": cert_type})
    theirs, ours = os.path.join(seed_pki, "issued", name + ".crt"), os.path.join(pki, "issued", name + ".crt")
    assert _extension_names(ours) == _extension_names(theirs)
    assert _usage_lines(ours) == _usage_lines(theirs)
