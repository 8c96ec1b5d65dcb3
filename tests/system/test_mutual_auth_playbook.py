"""The clientvpn.pki.mutual_auth playbook end to end, as a user runs it:
check mode, real, check mode, real; then what it left on disk."""

import os
import stat

from conftest import openssl, playbook, recap

CLIENTS = ["client1.domain.tld", "alice.example.com"]


def _run(tmp_path, check=False, extra=()):
    args = [
        "clientvpn.pki.mutual_auth",
        "-e", "pki_dir=%s" % (tmp_path / "pki"),
        "-e", "stage_dir=%s" % (tmp_path / "custom_folder"),
        "-e", '{"pki_clients": %s}' % ("[%s]" % ", ".join('"%s"' % c for c in CLIENTS)),
    ] + list(extra)
    return playbook(args, check=check)


def test_mutual_auth_is_idempotent_and_stages_the_material(tmp_path):
    first_check = recap(_run(tmp_path, check=True).stdout)
    assert first_check["changed"] > 0 and first_check["failed"] == 0
    assert not (tmp_path / "pki").exists() and not (tmp_path / "custom_folder").exists()

    first = recap(_run(tmp_path).stdout)
    assert first["changed"] > 0

    second_check = recap(_run(tmp_path, check=True).stdout)
    second = _run(tmp_path, extra=["-v"])
    assert second_check["changed"] == 0
    assert recap(second.stdout)["changed"] == 0
    assert "PRIVATE KEY" not in second.stdout

    stage = tmp_path / "custom_folder"
    expected = {"ca.crt", "server.crt", "server.key"} | {c + ".crt" for c in CLIENTS} | {c + ".key" for c in CLIENTS}
    assert set(os.listdir(stage)) == expected
    assert stat.S_IMODE(os.stat(stage).st_mode) == 0o700
    for name in expected:
        mode = stat.S_IMODE(os.stat(stage / name).st_mode)
        assert mode == (0o600 if name.endswith(".key") else 0o644), (name, oct(mode))
    for name in ["server"] + CLIENTS:
        openssl("verify", "-CAfile", str(stage / "ca.crt"), str(stage / (name + ".crt")))
        # the staged key is the one of the staged certificate
        cert_key = openssl("x509", "-in", str(stage / (name + ".crt")), "-noout", "-pubkey").stdout
        key_pub = openssl("pkey", "-in", str(stage / (name + ".key")), "-pubout").stdout
        assert cert_key == key_pub
    san = openssl("x509", "-in", str(stage / "server.crt"), "-noout", "-ext", "subjectAltName").stdout
    assert "DNS:server" in san
