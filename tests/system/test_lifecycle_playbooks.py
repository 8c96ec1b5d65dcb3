"""The lifecycle playbooks end to end: renew_server (into the same ACM ARN, on
moto's HTTP server), revoke_client (index, CRL, openssl's verdict) and
client_profiles; each role in check mode, real, check mode, real. Then the one AWS
connection every role takes (aws_region, aws_endpoint_url; the role-prefixed
variables override it). Wall time: about 2 min (2 cores shared)."""

import base64
import json
import os
import stat
import sys
import urllib.parse

import boto3
import yaml

from conftest import ENDPOINT_CONFIG, openssl, playbook, recap

CLIENTS = ["client1.domain.tld", "alice.example.com", "bob.example.com"]
# The endpoint's configuration with certificate and key options a profile must not keep.
BASE_CONFIG = ENDPOINT_CONFIG + "cert stale.crt\nkey stale.key\n"


def _common(tmp_path):
    return ["-e", "pki_dir=%s" % (tmp_path / "pki"), "-e", json.dumps({"pki_clients": CLIENTS})]


def _build(tmp_path, endpoint):
    playbook(["clientvpn.pki.mutual_auth", "-e", "stage_dir=%s" % (tmp_path / "stage"),
              "-e", "acm_region=eu-west-1", "-e", "acm_endpoint_url=%s" % endpoint.url] + _common(tmp_path))
    return json.loads((tmp_path / "stage" / "acm-arns.json").read_text())


def test_renew_server_reimports_into_the_same_arn(tmp_path, local_acm):
    arns = _build(tmp_path, local_acm)
    pki = tmp_path / "pki"
    key_before = (pki / "private" / "server.key").read_bytes()
    args = ["clientvpn.pki.renew_server", "-e", "acm_region=eu-west-1", "-e", "acm_endpoint_url=%s" % local_acm.url] + _common(tmp_path)

    checked = playbook(args, check=True)
    assert recap(checked.stdout)["changed"] > 0
    assert local_acm.requests().count("ImportCertificate") == 1
    renewed = playbook(args + ["-v"])
    assert recap(renewed.stdout)["changed"] > 0
    assert "PRIVATE KEY" not in renewed.stdout
    assert local_acm.requests().count("ImportCertificate") == 2
    assert (pki / "private" / "server.key").read_bytes() == key_before
    assert (pki / "renewed" / "issued" / "server.crt").exists()
    serial = openssl("x509", "-in", str(pki / "issued" / "server.crt"), "-noout", "-serial").stdout.strip().split("=")[1]
    assert serial != arns["server"]["serial"]
    record = json.loads((pki / "acm-certificates.json").read_text())
    assert record["eu-west-1"]["server"]["arn"] == arns["server"]["certificate_arn"]

    # Scheduled runs of mutual_auth renew only what is due: nothing now.
    again = playbook(["clientvpn.pki.mutual_auth", "-e", "stage_dir=%s" % (tmp_path / "stage"), "-e", "acm_region=eu-west-1",
                      "-e", "acm_endpoint_url=%s" % local_acm.url] + _common(tmp_path))
    # Two changes: the staging folder takes the renewed server.crt, acm-arns.json its new serial.
    assert recap(again.stdout)["changed"] == 2
    assert local_acm.requests().count("ImportCertificate") == 2


def test_renew_server_keeps_the_pki_roles_cn_key_and_validity(tmp_path, local_acm):
    """A customised PKI: renew_server takes CN, SANs, key size, days and digest from the pki role's variables,
    so the renewal keeps the key and the CN, and lands in the same ARN."""
    custom = ["-e", "pki_dir=%s" % (tmp_path / "pki"), "-e", "pki_server_common_name=vpn.example.com",
              "-e", "pki_key_size=1024", "-e", "pki_cert_days=365", "-e", "acm_region=eu-west-1", "-e", "acm_endpoint_url=%s" % local_acm.url]
    playbook(["clientvpn.pki.mutual_auth", "-e", "stage_dir=%s" % (tmp_path / "stage")] + custom)
    pki = tmp_path / "pki"
    arn = json.loads((pki / "acm-certificates.json").read_text())["eu-west-1"]["server"]["arn"]
    key_before = (pki / "private" / "server.key").read_bytes()
    serial_before = openssl("x509", "-in", str(pki / "issued" / "server.crt"), "-noout", "-serial").stdout

    playbook(["clientvpn.pki.renew_server"] + custom)
    cert = str(pki / "issued" / "server.crt")
    assert openssl("x509", "-in", cert, "-noout", "-serial").stdout != serial_before
    assert (pki / "private" / "server.key").read_bytes() == key_before
    assert openssl("x509", "-in", cert, "-noout", "-subject", "-nameopt", "RFC2253").stdout.strip() == "subject=CN=vpn.example.com"
    assert "DNS:vpn.example.com" in openssl("x509", "-in", cert, "-noout", "-ext", "subjectAltName").stdout
    text = openssl("x509", "-in", cert, "-noout", "-text").stdout
    assert "Public-Key: (1024 bit)" in text and "sha256WithRSAEncryption" in text
    # Valid about 365 days from now: beyond 364, not beyond 366.
    assert openssl("x509", "-in", cert, "-noout", "-checkend", str(364 * 86400), check=False).returncode == 0
    assert openssl("x509", "-in", cert, "-noout", "-checkend", str(366 * 86400), check=False).returncode != 0
    assert local_acm.requests().count("ImportCertificate") == 2
    assert json.loads((pki / "acm-certificates.json").read_text())["eu-west-1"]["server"]["arn"] == arn


def test_revoke_client_revokes_and_regenerates_the_crl(tmp_path):
    stage = tmp_path / "stage"
    playbook(["clientvpn.pki.mutual_auth", "-e", "stage_dir=%s" % stage, "-e", "clientvpn_acm_import=false"] + _common(tmp_path))
    pki = tmp_path / "pki"
    bob_serial = openssl("x509", "-in", str(pki / "issued" / "bob.example.com.crt"), "-noout", "-serial").stdout.strip().split("=")[1]
    args = ["clientvpn.pki.revoke_client", "-e", "pki_dir=%s" % pki, "-e", json.dumps({"revoke_client_names": ["bob.example.com"]}),
            "-e", "crl_reason=affiliationChanged"]

    assert recap(playbook(args + ["-e", "stage_dir=%s" % stage], check=True).stdout)["changed"] > 0
    assert (pki / "issued" / "bob.example.com.crt").exists() and not (pki / "crl.pem").exists()
    assert (stage / "bob.example.com.key").exists()
    # No staging folder there: skipped, not created. Like a run that stopped before the clean-up.
    assert recap(playbook(args + ["-e", "stage_dir=%s" % (tmp_path / "elsewhere")]).stdout)["changed"] > 0
    assert not (tmp_path / "elsewhere").exists() and (stage / "bob.example.com.key").exists()
    # bob is revoked already; the names asked for still leave the folder that is handed out, the others stay.
    args += ["-e", "stage_dir=%s" % stage]
    assert recap(playbook(args).stdout)["changed"] == 1
    assert sorted(name for name in os.listdir(stage) if name.startswith(("bob.", "alice."))) == ["alice.example.com.crt", "alice.example.com.key"]
    assert recap(playbook(args, check=True).stdout)["changed"] == 0
    assert recap(playbook(args).stdout)["changed"] == 0

    rows = [row.split("\t") for row in (pki / "index.txt").read_text().splitlines()]
    assert [row[0] for row in rows if row[3] == bob_serial] == ["R"]
    assert [row for row in rows if row[3] == bob_serial][0][2].endswith(",affiliationChanged")
    revoked_cert = pki / "revoked" / "certs_by_serial" / (bob_serial + ".crt")
    assert revoked_cert.exists() and not (pki / "issued" / "bob.example.com.crt").exists()
    crl = openssl("crl", "-in", str(pki / "crl.pem"), "-noout", "-text").stdout
    assert "Serial Number: %s" % bob_serial in crl and "Affiliation Changed" in crl
    verdict = openssl("verify", "-crl_check", "-CAfile", str(pki / "ca.crt"), "-CRLfile", str(pki / "crl.pem"), str(revoked_cert), check=False)
    assert verdict.returncode != 0 and "revoked" in verdict.stdout + verdict.stderr
    openssl("verify", "-crl_check", "-CAfile", str(pki / "ca.crt"), "-CRLfile", str(pki / "crl.pem"), str(pki / "issued" / "alice.example.com.crt"))


def test_client_profiles_inline_certificate_and_key(tmp_path):
    playbook(["clientvpn.pki.mutual_auth", "-e", "stage_dir=%s" % (tmp_path / "stage"), "-e", "clientvpn_acm_import=false"] + _common(tmp_path))
    pki = tmp_path / "pki"
    config = tmp_path / "downloaded-client-config.ovpn"
    config.write_text(BASE_CONFIG % (pki / "ca.crt").read_text())
    dest = tmp_path / "profiles"
    args = ["clientvpn.pki.client_profiles", "-e", "profiles_config_file=%s" % config, "-e", "profiles_dest=%s" % dest] + _common(tmp_path)

    assert recap(playbook(args, check=True).stdout)["changed"] > 0
    assert not dest.exists()
    first = playbook(args + ["-v"])
    assert recap(first.stdout)["changed"] > 0 and "PRIVATE KEY" not in first.stdout
    assert recap(playbook(args, check=True).stdout)["changed"] == 0
    assert recap(playbook(args).stdout)["changed"] == 0

    assert stat.S_IMODE(os.stat(dest).st_mode) == 0o700
    for name in CLIENTS:
        profile = (dest / (name + ".ovpn")).read_text()
        assert stat.S_IMODE(os.stat(dest / (name + ".ovpn")).st_mode) == 0o600
        assert "cert stale.crt" not in profile and "key stale.key" not in profile
        assert profile.count("<cert>") == 1 and profile.count("<key>") == 1 and profile.count("<ca>") == 1
        assert "remote-cert-tls server" in profile and "verify-x509-name server name" in profile
        cert = profile.split("<cert>\n")[1].split("</cert>")[0]
        assert cert.strip() == (pki / "issued" / (name + ".crt")).read_text().strip()
        key = profile.split("<key>\n")[1].split("</key>")[0]
        assert key.strip() == (pki / "private" / (name + ".key")).read_text().strip()


ENDPOINT_ID = "cvpn-endpoint-0123456789abcdef0"


def _recorded_requests(endpoint):
    """(ACM operation or EC2 action, region of the request's signature, ClientVpnEndpointId) of each AWS
    request moto received (its recording: one JSON line per request; moto-api calls carry no signature)."""
    requests = []
    with open(endpoint.recording) as handle:
        for line in handle:
            record = json.loads(line)
            headers = record.get("headers", {})
            if "Credential=" not in headers.get("Authorization", ""):
                continue
            region = headers["Authorization"].split("Credential=", 1)[1].split("/")[2]
            body = record.get("body") or ""
            if record.get("body_encoded"):
                body = base64.b64decode(body).decode("ascii", "replace")
            fields = urllib.parse.parse_qs(body) if "X-Amz-Target" not in headers else {}
            action = headers.get("X-Amz-Target", "").split(".")[-1] or fields.get("Action", [""])[0]
            requests.append((action, region, fields.get("ClientVpnEndpointId", [None])[0]))
    return requests


def test_one_aws_connection_for_every_role(tmp_path, local_acm):
    """aws_region and aws_endpoint_url, set once, reach every role that talks to AWS (module_defaults of
    group/clientvpn.pki.aws); acm_region / crl_region still override them for their role."""
    connection = ["-e", "aws_region=eu-west-1", "-e", "aws_endpoint_url=%s" % local_acm.url]
    playbook(["clientvpn.pki.mutual_auth", "-e", "stage_dir=%s" % (tmp_path / "stage"), "-e", "acm_import_clients=true"]
             + connection + _common(tmp_path))
    arns = json.loads((tmp_path / "stage" / "acm-arns.json").read_text())
    assert arns["region"] == "eu-west-1" and sorted(arns["clients"]) == sorted(CLIENTS)
    assert arns["server"]["certificate_arn"].startswith("arn:aws:acm:eu-west-1:")

    # renew_server: aws_region says us-east-1, acm_region overrides it: the same ARN in eu-west-1.
    playbook(["clientvpn.pki.renew_server", "-e", "aws_region=us-east-1", "-e", "acm_region=eu-west-1",
              "-e", "aws_endpoint_url=%s" % local_acm.url] + _common(tmp_path))
    record = json.loads((tmp_path / "pki" / "acm-certificates.json").read_text())
    assert sorted(record) == ["eu-west-1"] and record["eu-west-1"]["server"]["arn"] == arns["server"]["certificate_arn"]
    assert local_acm.requests().count("ImportCertificate") == len(CLIENTS) + 2
    assert set(region for action, region, dummy in _recorded_requests(local_acm)) == {"eu-west-1"}

    # The crl and profiles roles call EC2 Client VPN, which moto does not implement (HTTP 500): each call is
    # rescued, and the request moto received shows the endpoint and region the role used.
    pki = str(tmp_path / "pki")
    rescue = [{"ansible.builtin.assert": {"that": ["ansible_failed_result.msg is search('500 Internal Server Error')"]}}]
    play = [{
        "name": "The AWS roles with one connection", "hosts": "localhost", "gather_facts": False, "connection": "local",
        "vars": {"ansible_python_interpreter": sys.executable},
        "tasks": [
            {"name": "Publish the CRL", "rescue": rescue, "block": [{"ansible.builtin.include_role": {"name": "clientvpn.pki.crl"},
             "vars": {"crl_pki_dir": pki, "crl_client_vpn_endpoint_id": ENDPOINT_ID, "crl_region": "eu-central-1"}}]},
            {"name": "Write the profiles", "rescue": rescue, "block": [{"ansible.builtin.include_role": {"name": "clientvpn.pki.profiles"},
             "vars": {"profiles_pki_dir": pki, "profiles_names": CLIENTS[:1], "profiles_dest": str(tmp_path / "profiles"),
                      "profiles_client_vpn_endpoint_id": ENDPOINT_ID}}]},
        ],
    }]
    path = tmp_path / "aws-roles.yml"
    path.write_text(yaml.safe_dump(play, sort_keys=False))
    seen = len(_recorded_requests(local_acm))
    ran = playbook([str(path), "-e", "aws_region=us-east-2", "-e", "aws_endpoint_url=%s" % local_acm.url])
    assert recap(ran.stdout)["rescued"] == 2
    ec2 = set(_recorded_requests(local_acm)[seen:])
    assert ec2 == {("ExportClientVpnClientCertificateRevocationList", "eu-central-1", ENDPOINT_ID),
                   ("ExportClientVpnClientConfiguration", "us-east-2", ENDPOINT_ID)}


def test_renew_ca_then_again_after_a_failure(tmp_path, local_acm):
    """renew_ca: the CA renewed with its key, the server's ACM chain still the old CA certificate (the
    overlap), the CRL and profiles written. Run again, as after a failure at any step: the CA is renewed
    once more, which moves nothing for the endpoint (it keeps the oldest certificate still valid)."""
    pki = tmp_path / "pki"
    common = ["-e", "stage_dir=%s" % (tmp_path / "stage"), "-e", "acm_region=eu-west-1", "-e", "acm_endpoint_url=%s" % local_acm.url,
              "-e", "profiles_config_file=%s" % (tmp_path / "endpoint.ovpn"), "-e", "profiles_dest=%s" % (tmp_path / "profiles")] + _common(tmp_path)
    playbook(["clientvpn.pki.mutual_auth"] + common)
    original = (pki / "ca.crt").read_text()
    (tmp_path / "endpoint.ovpn").write_text(ENDPOINT_CONFIG % original)
    key = (pki / "private" / "ca.key").read_bytes()
    arn = json.loads((pki / "acm-certificates.json").read_text())["eu-west-1"]["server"]["arn"]

    for run in (1, 2):
        playbook(["clientvpn.pki.renew_ca"] + common)
        assert (pki / "private" / "ca.key").read_bytes() == key
        kept = (pki / "expired-ca.list").read_text()
        assert kept.count("BEGIN CERTIFICATE") == run and original in kept
        assert json.loads((pki / "acm-certificates.json").read_text())["eu-west-1"]["server"]["arn"] == arn
        acm = boto3.client("acm", region_name="eu-west-1", endpoint_url=local_acm.url)
        assert acm.get_certificate(CertificateArn=arn)["CertificateChain"].startswith(original)  # the overlap
        profile = (tmp_path / "profiles" / (CLIENTS[0] + ".ovpn")).read_text()
        assert profile.count("BEGIN CERTIFICATE") == 2 + run  # the client's, the current CA and every earlier one
        assert (pki / "ca.crt").read_text() in profile and original in profile
        for name in ["server"] + CLIENTS:
            openssl("verify", "-CAfile", str(pki / "ca.crt"), str(pki / "issued" / (name + ".crt")))
    # the server certificate (keyid-only AKI) and its chain never changed: one import in all; and the
    # next scheduled run has nothing left to do
    assert local_acm.requests().count("ImportCertificate") == 1
    assert recap(playbook(["clientvpn.pki.mutual_auth"] + common).stdout)["changed"] == 0
