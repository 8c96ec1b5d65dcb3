"""Many clients in one module invocation, as the pki role runs it: every name
issued once, distinct serials, an index.txt that matches the files and that
easy-rsa and openssl read, and a second run that rewrites nothing.
Functional, not timed: speed is measured by benchmarks/run.py."""

import json
import os
import re
import subprocess

from conftest import openssl, playbook, recap, require, snapshot

CLIENTS = ["user%03d.example.com" % index for index in range(1, 121)]


def _index_rows(pki):
    with open(os.path.join(pki, "index.txt")) as handle:
        return [line.rstrip("\n").split("\t") for line in handle]


def test_a_list_of_clients_is_issued_in_one_invocation(tmp_path):
    pki, stage = tmp_path / "pki", tmp_path / "custom_folder"
    args = ["clientvpn.pki.mutual_auth", "-v", "-e", "pki_dir=%s" % pki, "-e", "stage_dir=%s" % stage,
            "-e", json.dumps({"pki_clients": CLIENTS, "clientvpn_acm_import": False})]
    first = playbook(args)

    # One task run, one module invocation for all the clients: no per-item results.
    issue = first.stdout.split("TASK [clientvpn.pki.pki : Issue the client certificates]")
    assert len(issue) == 2
    assert "(item=" not in first.stdout
    result = json.loads(re.search(r"^changed: \[localhost\] => (\{.*\})$", issue[1], re.M).group(1))
    assert sorted(result["certificates"]) == sorted(CLIENTS)
    assert set(entry["action"] for entry in result["certificates"].values()) == {"created"}

    serials = dict((name, entry["serial"]) for name, entry in result["certificates"].items())
    assert len(set(serials.values())) == len(CLIENTS)
    assert all(len(serial) == 32 for serial in serials.values())  # 128-bit, as easy-rsa 3 makes them

    # index.txt: one V row per certificate (CA's server too), with the file's serial, expiry and subject.
    rows = _index_rows(str(pki))
    assert len(rows) == len(CLIENTS) + 1
    by_serial = dict((row[3], row) for row in rows)
    for name in CLIENTS:
        row = by_serial[serials[name]]
        assert row[0] == "V" and row[2] == "" and row[4] == "unknown" and row[5] == "/CN=%s" % name
        cert = str(pki / "issued" / (name + ".crt"))
        assert openssl("x509", "-in", cert, "-noout", "-serial").stdout.strip() == "serial=" + serials[name]
        end = openssl("x509", "-in", cert, "-noout", "-enddate", "-dateopt", "iso_8601").stdout.strip()
        assert end.startswith("notAfter=20" + row[1][:2] + "-" + row[1][2:4] + "-" + row[1][4:6])
        assert os.path.isfile(pki / "certs_by_serial" / (serials[name] + ".pem"))
    # serial: the next one after the last issued, as openssl ca leaves it.
    assert (pki / "serial").read_text().strip() in set("%032X" % (int(s, 16) + 1) for s in serials.values())

    # Every certificate verifies, and every key is its own.
    certs = [str(pki / "issued" / (name + ".crt")) for name in CLIENTS]
    verified = openssl("verify", "-CAfile", str(pki / "ca.crt"), *certs).stdout
    assert verified.count(": OK") == len(CLIENTS)
    moduli = set()
    for name in CLIENTS[:: len(CLIENTS) // 12]:
        cert_modulus = openssl("x509", "-in", str(pki / "issued" / (name + ".crt")), "-noout", "-modulus").stdout
        key_modulus = openssl("rsa", "-in", str(pki / "private" / (name + ".key")), "-noout", "-modulus").stdout
        assert cert_modulus == key_modulus
        moduli.add(key_modulus)
    assert len(moduli) == len(CLIENTS[:: len(CLIENTS) // 12])

    # easy-rsa reads the database we wrote: show-cert by name, and openssl ca accepts it.
    easyrsa = require("easyrsa")
    env = dict(os.environ, EASYRSA_BATCH="1", EASYRSA_PKI=str(pki))
    shown = subprocess.run([easyrsa, "show-cert", CLIENTS[-1]], capture_output=True, text=True, env=env, check=False)
    assert shown.returncode == 0 and CLIENTS[-1] in shown.stdout, shown.stderr
    crl = subprocess.run([easyrsa, "gen-crl"], capture_output=True, text=True, env=env, check=False)
    assert crl.returncode == 0, crl.stderr

    # Nothing to change: nothing rewritten (index.txt, serial, keys, certificates, staged files).
    before = snapshot(str(tmp_path))
    index_mtime = os.stat(pki / "index.txt").st_mtime_ns
    second = playbook(args)
    assert recap(second.stdout)["changed"] == 0
    assert snapshot(str(tmp_path)) == before
    assert os.stat(pki / "index.txt").st_mtime_ns == index_mtime
