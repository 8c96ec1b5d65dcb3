"""The clientvpn.pki.mutual_auth playbook end to end, as a user runs it, against
a real HTTP ACM endpoint on 127.0.0.1 (moto's server): check mode, real, check
mode, real; then a renewal re-imported into the same ARN."""

import json
import os
import stat

from conftest import openssl, playbook, recap

CLIENTS = ["client1.domain.tld", "alice.example.com"]
ACM_WRITES = {"ImportCertificate", "AddTagsToCertificate", "RemoveTagsFromCertificate", "DeleteCertificate"}
# vpn_stage's record of what it staged (what stage_prune may remove).
STAGE_MANIFEST = ".clientvpn-stage.json"


def _run(tmp_path, endpoint, check=False, extra=()):
    args = [
        "clientvpn.pki.mutual_auth",
        "-e", "pki_dir=%s" % (tmp_path / "pki"),
        "-e", "stage_dir=%s" % (tmp_path / "custom_folder"),
        "-e", json.dumps({"pki_clients": CLIENTS}),
        "-e", "acm_region=eu-west-1",
        "-e", "acm_endpoint_url=%s" % endpoint.url,
    ] + list(extra)
    return playbook(args, check=check)


def test_mutual_auth_end_to_end(tmp_path, local_acm):
    first_check = recap(_run(tmp_path, local_acm, check=True).stdout)
    assert first_check["changed"] > 0 and first_check["failed"] == 0
    assert not (tmp_path / "pki").exists() and not (tmp_path / "custom_folder").exists()
    assert not ACM_WRITES & set(local_acm.requests())

    first = recap(_run(tmp_path, local_acm).stdout)
    assert first["changed"] > 0
    stage = tmp_path / "custom_folder"
    arns = json.loads((stage / "acm-arns.json").read_text())
    server_arn = arns["server"]["certificate_arn"]
    assert server_arn.startswith("arn:aws:acm:eu-west-1:")
    assert arns["client_root_certificate_chain_arn"] == server_arn and arns["clients"] == {}

    seen = len(local_acm.requests())
    second_check = recap(_run(tmp_path, local_acm, check=True).stdout)
    second = _run(tmp_path, local_acm, extra=["-v"])
    assert second_check["changed"] == 0
    assert recap(second.stdout)["changed"] == 0
    assert "PRIVATE KEY" not in second.stdout
    # Nothing to change: one ACM read per run (the server certificate), no write.
    assert local_acm.requests()[seen:] == ["GetCertificate", "GetCertificate"]

    expected = {"ca.crt", "server.crt", "server.key", "acm-arns.json", STAGE_MANIFEST} | {c + ".crt" for c in CLIENTS} | {c + ".key" for c in CLIENTS}
    assert set(os.listdir(stage)) == expected
    assert stat.S_IMODE(os.stat(stage).st_mode) == 0o700
    for name in expected:
        mode = stat.S_IMODE(os.stat(stage / name).st_mode)
        assert mode == (0o600 if name.endswith(".key") or name == STAGE_MANIFEST else 0o644), (name, oct(mode))
    for name in ["server"] + CLIENTS:
        openssl("verify", "-CAfile", str(stage / "ca.crt"), str(stage / (name + ".crt")))
        cert_key = openssl("x509", "-in", str(stage / (name + ".crt")), "-noout", "-pubkey").stdout
        key_pub = openssl("pkey", "-in", str(stage / (name + ".key")), "-pubout").stdout
        assert cert_key == key_pub

    # A nightly run after the server certificate came within the renewal window:
    # renewed with the same key, re-imported into the same ARN, staged again.
    key_before = (stage / "server.key").read_bytes()
    _run(tmp_path, local_acm, extra=["-e", "pki_renew_before_days=900", "-e", "pki_cert_days=1000"])
    renewed = json.loads((stage / "acm-arns.json").read_text())
    assert renewed["server"]["certificate_arn"] == server_arn
    assert renewed["server"]["serial"] != arns["server"]["serial"]
    assert (stage / "server.key").read_bytes() == key_before
    assert local_acm.requests().count("ImportCertificate") == 2


def test_mutual_auth_without_acm(tmp_path):
    args = ["clientvpn.pki.mutual_auth", "-e", "pki_dir=%s" % (tmp_path / "pki"),
            "-e", "stage_dir=%s" % (tmp_path / "custom_folder"), "-e", "clientvpn_acm_import=false"]
    assert recap(playbook(args).stdout)["changed"] > 0
    assert recap(playbook(args).stdout)["changed"] == 0
    assert "acm-arns.json" not in os.listdir(tmp_path / "custom_folder")


def test_a_misspelled_client_list_issues_no_client_certificate(tmp_path):
    """pki_clients is empty by default: a typo in its name (pki_client) issues nothing with a placeholder name."""
    pki, stage = tmp_path / "pki", tmp_path / "custom_folder"
    playbook(["clientvpn.pki.mutual_auth", "-e", "pki_dir=%s" % pki, "-e", "stage_dir=%s" % stage,
              "-e", "pki_client=typo", "-e", "clientvpn_acm_import=false"])
    assert sorted(os.listdir(pki / "issued")) == ["server.crt"]
    assert sorted(os.listdir(pki / "private")) == ["ca.key", "server.key"]
    assert len((pki / "index.txt").read_text().splitlines()) == 1
    assert sorted(os.listdir(stage)) == sorted([STAGE_MANIFEST, "ca.crt", "server.crt", "server.key"])


def test_a_client_dropped_from_the_list_leaves_the_staging_folder(tmp_path):
    """stage_prune (default true): the folder handed out holds only the clients listed now;
    what the collection did not put there stays."""
    stage = tmp_path / "custom_folder"

    def run(clients, check=False):
        return playbook(["clientvpn.pki.mutual_auth", "-e", "pki_dir=%s" % (tmp_path / "pki"), "-e", "stage_dir=%s" % stage,
                         "-e", json.dumps({"pki_clients": clients, "clientvpn_acm_import": False})], check=check)

    run(CLIENTS)
    (stage / "README.txt").write_text("for the helpdesk\n")
    assert recap(run(CLIENTS[:1], check=True).stdout)["changed"] == 1
    assert (stage / "alice.example.com.key").exists()
    assert recap(run(CLIENTS[:1]).stdout)["changed"] == 1
    assert sorted(os.listdir(stage)) == sorted([STAGE_MANIFEST, "README.txt", "ca.crt", "server.crt", "server.key",
                                                "client1.domain.tld.crt", "client1.domain.tld.key"])
    # The PKI itself keeps alice's certificate: leaving the list is not a revocation.
    assert (tmp_path / "pki" / "issued" / "alice.example.com.crt").exists()
    assert recap(run(CLIENTS[:1]).stdout)["changed"] == 0


def test_mutual_auth_imports_the_clients_when_asked(tmp_path, local_acm):
    """acm_import_clients: every client certificate in ACM, in one module run, recorded in acm-arns.json."""
    extra = ["-e", "acm_import_clients=true"]
    # Check mode on nothing: every certificate would be imported; no file, no ACM write.
    assert recap(_run(tmp_path, local_acm, check=True, extra=extra).stdout)["changed"] > 0
    assert not (tmp_path / "pki").exists() and not ACM_WRITES & set(local_acm.requests())
    assert recap(_run(tmp_path, local_acm, extra=extra).stdout)["changed"] > 0
    arns = json.loads((tmp_path / "custom_folder" / "acm-arns.json").read_text())
    assert sorted(arns["clients"]) == sorted(CLIENTS)
    assert len(set(arns["clients"].values()) | {arns["server"]["certificate_arn"]}) == len(CLIENTS) + 1
    assert arns["client_root_certificate_chain_arn"] == arns["server"]["certificate_arn"]
    assert local_acm.requests().count("ImportCertificate") == len(CLIENTS) + 1

    seen = len(local_acm.requests())
    assert recap(_run(tmp_path, local_acm, extra=extra).stdout)["changed"] == 0
    assert local_acm.requests()[seen:] == ["GetCertificate"] * (len(CLIENTS) + 1)
    assert json.loads((tmp_path / "custom_folder" / "acm-arns.json").read_text()) == arns


def test_a_server_certificate_imported_by_hand_is_adopted(tmp_path, local_acm):
    """Seed step 7 done by hand before: acm_server_certificate_arn adopts that ARN (no second import),
    later runs find it in the record, and the tags set by hand stay (acm_tags unset)."""
    import boto3  # pylint: disable=import-outside-toplevel

    playbook(["clientvpn.pki.mutual_auth", "-e", "pki_dir=%s" % (tmp_path / "pki"), "-e", "stage_dir=%s" % (tmp_path / "custom_folder"),
              "-e", "clientvpn_acm_import=false"])
    acm = boto3.client("acm", region_name="eu-west-1", endpoint_url=local_acm.url)
    pki = tmp_path / "pki"
    arn = acm.import_certificate(Certificate=(pki / "issued" / "server.crt").read_bytes(),
                                 PrivateKey=(pki / "private" / "server.key").read_bytes(),
                                 CertificateChain=(pki / "ca.crt").read_bytes(),
                                 Tags=[{"Key": "Name", "Value": "client-vpn-server"}])["CertificateArn"]

    adopt = recap(_run(tmp_path, local_acm, extra=["-e", "acm_server_certificate_arn=%s" % arn]).stdout)
    assert adopt["failed"] == 0
    recorded = json.loads((tmp_path / "custom_folder" / "acm-arns.json").read_text())
    assert recorded["server"]["certificate_arn"] == arn
    assert local_acm.requests().count("ImportCertificate") == 1  # the one made by hand
    tags = dict((t["Key"], t["Value"]) for t in acm.list_tags_for_certificate(CertificateArn=arn)["Tags"])
    assert tags["Name"] == "client-vpn-server" and tags["clientvpn.pki:name"] == "server"

    assert recap(_run(tmp_path, local_acm).stdout)["changed"] == 0
    assert [c["CertificateArn"] for c in acm.list_certificates()["CertificateSummaryList"]] == [arn]
