"""easy-rsa 3.1 and 3.2 PKIs, as the real tools built them: adopted without a write, and
operated on the way their own easy-rsa version would.

The 3.2 PKIs are committed fixtures (tests/fixtures/easyrsa/<release>/, made by
make-fixtures.sh from the real easyrsa script of each release); the 3.1 one is built
by Debian's easy-rsa with the same script during the test.
"""

import os
import shutil
import subprocess

import pytest

from conftest import failed, ok, openssl, require, snapshot

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "easyrsa")
RELEASES_32 = ("3.2.0", "3.2.2", "3.2.6")
PASSPHRASE = "fixture-ca-pass"  # make-fixtures.sh's passphrase PKI
CLIENTS = ["client1.domain.tld", "reissued.domain.tld"]


@pytest.fixture(scope="session")
def debian_fixture(tmp_path_factory):
    """The same PKIs, built now by Debian's easy-rsa 3.1 with make-fixtures.sh."""
    require("easyrsa")
    out = str(tmp_path_factory.mktemp("debian-easyrsa"))
    subprocess.run(["sh", os.path.join(FIXTURES, "make-fixtures.sh"), require("easyrsa"), out], check=True, capture_output=True)
    return out


def restore(source_dir, pki, tmp_path):
    """A copy of a fixture PKI with the modes the tool gave it, and its empty folders: git keeps neither
    (a path of MODES missing from the clone was an empty folder)."""
    target = str(tmp_path / pki)
    shutil.copytree(os.path.join(source_dir, pki), target)
    with open(os.path.join(source_dir, "MODES")) as handle:
        for line in handle:
            mode, path = line.rstrip("\n").split(" ", 1)
            if path == pki or path.startswith(pki + "/"):
                full = os.path.join(str(tmp_path), path)
                if not os.path.exists(full):
                    os.makedirs(full)
                os.chmod(full, int(mode, 8))
    return target


@pytest.fixture(params=("debian",) + RELEASES_32)
def release(request):
    """(easy-rsa version the PKI follows, folder of its fixture PKIs)."""
    if request.param == "debian":
        return "3.1", request.getfixturevalue("debian_fixture")
    return "3.2", os.path.join(FIXTURES, request.param)


def adopt_seed(pki, stage, check_mode, cache_dir=None):
    """Every module, on the names the PKI has: each must report no change."""
    cache = {"cache_dir": cache_dir} if cache_dir else {}
    results = [
        ok("vpn_ca", {"pki_dir": pki}, check_mode=check_mode),
        ok("vpn_cert", dict(cache, pki_dir=pki, name=["server"], type="server"), check_mode=check_mode),
        ok("vpn_cert", dict(cache, pki_dir=pki, name=CLIENTS, type="client"), check_mode=check_mode),
        ok("vpn_cert", {"pki_dir": pki, "name": ["revoked.domain.tld"], "state": "revoked"}, check_mode=check_mode),
        ok("vpn_crl", {"pki_dir": pki}, check_mode=check_mode),
        ok("vpn_stage", {"pki_dir": pki, "dest": stage, "names": ["server"] + CLIENTS}, check_mode=check_mode),
    ]
    return [(result.get("changes"), result.get("certificates")) for result in results if result["changed"]]


def test_adopts_every_easyrsa_pki_without_a_write(release, tmp_path):
    version, folder = release
    pki, stage = restore(folder, "seed", tmp_path), str(tmp_path / "stage")
    before = snapshot(pki)
    ok("vpn_stage", {"pki_dir": pki, "dest": stage, "names": ["server"] + CLIENTS})  # the staging folder is made once
    # The verified cache is written outside the PKI, by the real run only.
    cache = str(tmp_path / "cache")
    for check_mode in (True, False):
        assert adopt_seed(pki, stage, check_mode, cache) == []
        assert os.path.exists(cache) is not check_mode
    assert snapshot(pki) == before
    assert ok("vpn_ca", {"pki_dir": pki})["easyrsa_version"] == version


def test_adopts_a_ca_with_a_passphrase_without_a_write(release, tmp_path):
    pki = restore(release[1], "passphrase", tmp_path)
    before = snapshot(pki)
    for check_mode in (True, False):
        ca = ok("vpn_ca", {"pki_dir": pki, "common_name": "Passphrase CA", "passphrase": PASSPHRASE}, check_mode=check_mode)
        client = ok("vpn_cert", {"pki_dir": pki, "name": ["client1.domain.tld"], "type": "client", "ca_passphrase": PASSPHRASE},
                    check_mode=check_mode)
        assert (ca["changed"], client["changed"]) == (False, False)
    message = failed("vpn_cert", {"pki_dir": pki, "name": ["client2"], "type": "client"})
    assert "passphrase" in message
    assert snapshot(pki) == before


def inline_path(pki, release, name):
    if release == "3.2.0":  # 3.2.0 and 3.2.1 keep it in inline/, key included; 3.2.2+ in inline/private/
        return os.path.join(pki, "inline", name + ".inline")
    return os.path.join(pki, "inline", "private", name + ".inline")


def rows(pki, subject):
    with open(os.path.join(pki, "index.txt")) as handle:
        return [line.split("\t") for line in handle.read().splitlines() if line.endswith("\t" + subject)]


@pytest.mark.parametrize("release", RELEASES_32)
def test_operations_on_a_32_pki_follow_easyrsa_32(release, tmp_path):
    pki = restore(os.path.join(FIXTURES, release), "seed", tmp_path)

    def read(*parts):
        with open(os.path.join(pki, *parts)) as handle:
            return handle.read()

    # A new client: its files, its row, and its inline file where this release writes it.
    before = snapshot(pki)
    assert ok("vpn_cert", {"pki_dir": pki, "name": ["new.domain.tld"], "type": "client"}, check_mode=True)["changed"] is True
    assert snapshot(pki) == before
    ok("vpn_cert", {"pki_dir": pki, "name": ["new.domain.tld"], "type": "client"})
    inline = inline_path(pki, release, "new.domain.tld")
    assert os.stat(inline).st_mode & 0o777 == 0o600
    text = open(inline).read()
    assert "<cert>\n%s</cert>" % read("issued", "new.domain.tld.crt") in text
    assert "<key>\n%s</key>" % read("private", "new.domain.tld.key") in text
    assert "<ca>\n%s</ca>" % read("ca.crt") in text
    assert not os.path.exists(os.path.join(pki, "openssl-easyrsa.cnf"))
    assert ok("vpn_cert", {"pki_dir": pki, "name": ["new.domain.tld"], "type": "client"})["changed"] is False

    # A renewal: the old certificate where renew leaves it, its certs_by_serial copy kept (3.2), a new inline file.
    old_server = ok("vpn_cert", {"pki_dir": pki, "name": ["server"], "type": "server"})["certificates"]["server"]["serial"]
    renewed = ok("vpn_cert", {"pki_dir": pki, "name": ["server"], "type": "server", "renew": True})["certificates"]["server"]
    assert renewed["action"] == "renewed"
    assert openssl("x509", "-in", os.path.join(pki, "renewed", "issued", "server.crt"), "-noout", "-serial").stdout.strip() == "serial=" + old_server
    assert os.path.exists(os.path.join(pki, "certs_by_serial", old_server + ".pem"))
    assert read("issued", "server.crt") in open(inline_path(pki, release, "server")).read()

    # Revoking the expired-then-reissued client revokes both its certificates (issued/ and expired/),
    # moves its files as easyrsa revoke does, keeps certs_by_serial and removes its inline file.
    valid = [row[3] for row in rows(pki, "/CN=reissued.domain.tld") if row[0] == "V"]
    assert len(valid) == 2
    ok("vpn_cert", {"pki_dir": pki, "name": ["reissued.domain.tld"], "state": "revoked"})
    assert sorted(row[3] for row in rows(pki, "/CN=reissued.domain.tld") if row[0] == "R") == sorted(valid)
    for serial in valid:
        assert os.path.exists(os.path.join(pki, "revoked", "certs_by_serial", serial + ".crt"))
        assert os.path.exists(os.path.join(pki, "certs_by_serial", serial + ".pem"))
    for gone in ("issued/reissued.domain.tld.crt", "expired/reissued.domain.tld.crt", "private/reissued.domain.tld.key",
                 "reqs/reissued.domain.tld.req"):
        assert not os.path.exists(os.path.join(pki, gone)), gone
    assert not os.path.exists(inline_path(pki, release, "reissued.domain.tld"))

    crl = ok("vpn_crl", {"pki_dir": pki})
    assert crl["changed"] is True and os.path.exists(os.path.join(pki, "crl.der"))
    assert set(valid) <= set(crl["revoked_serials"])
    before = snapshot(pki)
    again = [ok("vpn_cert", {"pki_dir": pki, "name": ["new.domain.tld", "client1.domain.tld"], "type": "client"}),
             ok("vpn_cert", {"pki_dir": pki, "name": ["server"], "type": "server"}),
             ok("vpn_cert", {"pki_dir": pki, "name": ["reissued.domain.tld"], "state": "revoked"}),
             ok("vpn_crl", {"pki_dir": pki})]
    assert [result["changed"] for result in again] == [False] * 4
    assert snapshot(pki) == before


def test_a_pki_built_here_for_easyrsa_32(tmp_path):
    pki = str(tmp_path / "pki")
    created = ok("vpn_ca", {"pki_dir": pki, "easyrsa_version": "3.2"})
    assert created["easyrsa_version"] == "3.2"
    assert os.path.isdir(os.path.join(pki, "inline", "private"))
    assert not os.path.exists(os.path.join(pki, "openssl-easyrsa.cnf"))
    ok("vpn_cert", {"pki_dir": pki, "name": ["server"], "type": "server"})
    assert os.path.exists(os.path.join(pki, "inline", "private", "server.inline"))
    # From then on the PKI says which easy-rsa it follows; asking for the other one is refused.
    assert ok("vpn_ca", {"pki_dir": pki})["easyrsa_version"] == "3.2"
    before = snapshot(pki)
    message = failed("vpn_ca", {"pki_dir": pki, "easyrsa_version": "3.1"})
    assert "easy-rsa 3.2" in message and "pki_easyrsa_version" in message
    assert snapshot(pki) == before
