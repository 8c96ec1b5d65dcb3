"""Nothing secret in the output of any playbook, even at -vvv (as an AWX job
log shows it): no private key, no CA passphrase, no piece of a key's body.
Every playbook runs non-interactively with a passphrase-protected CA, client
import into ACM (moto's HTTP server), revocation and client profiles."""

import json
import os
import re

from conftest import playbook, recap
from test_lifecycle_playbooks import BASE_CONFIG

PASSPHRASE = "correct-horse-battery-9f3a1c"
CLIENTS = ["client1.domain.tld", "alice.example.com"]


def _key_fragments(pki):
    """40-character runs of every private key's base64 body: any of them in a log is a leak."""
    fragments = set()
    for directory in (pki / "private", pki / "revoked" / "private_by_serial"):
        for name in os.listdir(directory) if directory.is_dir() else []:
            body = "".join(line for line in (directory / name).read_text().splitlines() if "-----" not in line)
            fragments.update(body[start:start + 40] for start in range(0, len(body) - 40, 200))
    return fragments


def test_no_secret_in_any_playbook_output_at_vvv(tmp_path, local_acm):
    pki = tmp_path / "pki"
    common = ["-vvv", "-e", "pki_dir=%s" % pki, "-e", json.dumps({"pki_clients": CLIENTS, "pki_ca_passphrase": PASSPHRASE})]
    acm = ["-e", "acm_region=eu-west-1", "-e", "acm_endpoint_url=%s" % local_acm.url]
    config = tmp_path / "downloaded-client-config.ovpn"
    runs = [
        ["clientvpn.pki.mutual_auth", "-e", "stage_dir=%s" % (tmp_path / "stage"), "-e", "acm_import_clients=true"] + acm,
        ["clientvpn.pki.renew_server"] + acm,
        ["clientvpn.pki.revoke_client", "-e", json.dumps({"revoke_client_names": ["alice.example.com"]})],
        ["clientvpn.pki.client_profiles", "-e", "profiles_config_file=%s" % config, "-e", "profiles_dest=%s" % (tmp_path / "profiles"),
         "-e", json.dumps({"pki_clients": ["client1.domain.tld"]})],
    ]
    outputs = []
    for args in runs:
        if args[0] == "clientvpn.pki.client_profiles":
            config.write_text(BASE_CONFIG % (pki / "ca.crt").read_text())
        proc = playbook(args[:1] + common + args[1:])  # later -e wins: the run's own after the common ones
        assert recap(proc.stdout)["changed"] > 0 and recap(proc.stdout)["failed"] == 0
        outputs.append((args[0], proc.stdout + proc.stderr))

    # The runs did handle secrets: an encrypted CA key, client keys imported into ACM, keys in profiles.
    assert "ENCRYPTED PRIVATE KEY" in (pki / "private" / "ca.key").read_text()
    assert local_acm.requests().count("ImportCertificate") == len(CLIENTS) + 2  # server, clients, renewed server
    assert "<key>" in (tmp_path / "profiles" / "client1.domain.tld.ovpn").read_text()
    fragments = _key_fragments(pki)
    assert len(fragments) > 10
    for name, output in outputs:
        assert re.search(r"PRIVATE KEY", output) is None, name
        assert PASSPHRASE not in output, name
        leaked = [fragment for fragment in fragments if fragment in output]
        assert leaked == [], (name, leaked[:3])
        # -vvv really was on: the module runs are shown (in the worker: plugin_utils/backend_action.py).
        assert "module's backend in this worker" in output, name
