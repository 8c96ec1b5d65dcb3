"""vpn_acm_import against a real HTTP ACM endpoint on 127.0.0.1 (moto's server):
check mode, real, check mode, real; re-import into the same ARN; delete.
The endpoint's own request log counts the API calls. Both modes: certificates of
a PKI by name (pki_dir, name / names), and a user's own files by path.
Wall time: about 40 s."""

import os

from conftest import failed, ok

WRITES = {"ImportCertificate", "AddTagsToCertificate", "RemoveTagsFromCertificate", "DeleteCertificate"}


def _args(pki, endpoint, **extra):
    """Own files: the paths, with the name and the directory the ARN is recorded under (never guessed from a path)."""
    args = {
        "name": "server",
        "pki_dir": pki,
        "certificate": os.path.join(pki, "issued", "server.crt"),
        "private_key": os.path.join(pki, "private", "server.key"),
        "certificate_chain": os.path.join(pki, "ca.crt"),
        "region": "eu-west-1",
        "endpoint_url": endpoint.url,
        "tags": {"Project": "client-vpn"},
    }
    args.update(extra)
    return args


def test_import_is_idempotent_and_reimports_into_the_same_arn(ca, local_acm):
    ok("vpn_cert", {"pki_dir": ca, "name": ["server"], "type": "server"})
    args = _args(ca, local_acm)

    check1 = ok("vpn_acm_import", args, check_mode=True)
    assert (check1["changed"], check1["action"], check1["certificate_arn"]) == (True, "imported", None)
    assert not WRITES & set(local_acm.requests())

    first = ok("vpn_acm_import", args)
    arn = first["certificate_arn"]
    assert (first["changed"], first["action"]) == (True, "imported") and arn.startswith("arn:aws:acm:eu-west-1:")

    seen = len(local_acm.requests())
    check2 = ok("vpn_acm_import", args, check_mode=True)
    second = ok("vpn_acm_import", args)
    assert (check2["changed"], second["changed"], second["action"]) == (False, False, "unchanged")
    # A no-op run: one ACM read per certificate, no write (counted by the endpoint itself).
    assert local_acm.requests()[seen:] == ["GetCertificate", "GetCertificate"]
    assert second["api_calls"] == {"read": 1, "write": 0}

    # Renew the server certificate (same key): re-import into the same ARN, tags kept.
    renewed = ok("vpn_cert", {"pki_dir": ca, "name": ["server"], "type": "server", "subject_alt_names": ["DNS:server", "DNS:vpn.example.com"]})
    new_serial = renewed["certificates"]["server"]["serial"]
    check3 = ok("vpn_acm_import", args, check_mode=True)
    assert (check3["changed"], check3["action"]) == (True, "reimported")
    third = ok("vpn_acm_import", args)
    assert (third["action"], third["certificate_arn"], third["serial"]) == ("reimported", arn, new_serial)
    assert third["tags"]["Project"] == "client-vpn" and third["tags"]["clientvpn.pki:name"] == "server"

    import boto3  # pylint: disable=import-outside-toplevel
    acm = boto3.client("acm", region_name="eu-west-1", endpoint_url=local_acm.url)
    held = acm.get_certificate(CertificateArn=arn)["Certificate"]
    assert held.strip() == open(os.path.join(ca, "issued", "server.crt")).read().strip()
    tags = dict((t["Key"], t["Value"]) for t in acm.list_tags_for_certificate(CertificateArn=arn)["Tags"])
    assert tags["Project"] == "client-vpn" and tags["clientvpn.pki:name"] == "server"
    assert [s["CertificateArn"] for s in acm.list_certificates()["CertificateSummaryList"]] == [arn]

    fourth = ok("vpn_acm_import", args)
    assert (fourth["changed"], fourth["action"]) == (False, "unchanged")

    # Without the record, the identity tags find the same ARN (no second import).
    os.unlink(os.path.join(ca, "acm-certificates.json"))
    found = ok("vpn_acm_import", args)
    assert (found["changed"], found["certificate_arn"]) == (False, arn)

    # state: absent deletes, then has nothing to delete.
    absent = {"name": "server", "pki_dir": ca, "state": "absent", "region": "eu-west-1", "endpoint_url": local_acm.url}
    check4 = ok("vpn_acm_import", absent, check_mode=True)
    assert (check4["changed"], check4["action"]) == (True, "deleted")
    deleted = ok("vpn_acm_import", absent)
    assert (deleted["changed"], deleted["action"], deleted["certificate_arn"]) == (True, "deleted", arn)
    assert acm.list_certificates()["CertificateSummaryList"] == []
    again = ok("vpn_acm_import", absent)
    assert (again["changed"], again["action"]) == (False, "unchanged")


def test_validation_happens_before_any_api_call(ca, local_acm):
    ok("vpn_cert", {"pki_dir": ca, "name": ["server"], "type": "server"})
    ok("vpn_cert", {"pki_dir": ca, "name": ["client1"], "type": "client"})
    wrong_key = _args(ca, local_acm, private_key=os.path.join(ca, "private", "client1.key"))
    assert "does not belong to certificate" in failed("vpn_acm_import", wrong_key)
    client_as_server = _args(ca, local_acm, certificate=os.path.join(ca, "issued", "client1.crt"),
                             private_key=os.path.join(ca, "private", "client1.key"))
    assert "no DNS entry" in failed("vpn_acm_import", client_as_server)
    assert local_acm.requests() == []


def test_aws_errors_are_one_clear_message(ca, local_acm):
    ok("vpn_cert", {"pki_dir": ca, "name": ["server"], "type": "server"})
    unreachable = _args(ca, local_acm, endpoint_url="http://127.0.0.1:9")
    assert "EndpointConnectionError" in failed("vpn_acm_import", unreachable)
    missing = _args(ca, local_acm, certificate_arn="arn:aws:acm:eu-west-1:123456789012:certificate/00000000-0000-0000-0000-000000000000")
    assert "does not exist" in failed("vpn_acm_import", missing)


def test_no_credentials_and_no_region_are_named(ca, local_acm, monkeypatch):
    ok("vpn_cert", {"pki_dir": ca, "name": ["server"], "type": "server"})
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    # No credentials file, no config file, no instance metadata: the boto3 chain finds nothing.
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    assert "NoCredentials" in failed("vpn_acm_import", _args(ca, local_acm))
    assert "NoRegion" in failed("vpn_acm_import", _args(ca, local_acm, region=None))
    assert not {"ImportCertificate"} & set(local_acm.requests())


def _client_list(pki, endpoint, names, **extra):
    args = {
        "certificates": [
            {"name": name, "certificate": os.path.join(pki, "issued", name + ".crt"), "private_key": os.path.join(pki, "private", name + ".key")}
            for name in names
        ],
        "certificate_chain": os.path.join(pki, "ca.crt"),
        "pki_dir": pki,
        "type": "client",
        "region": "eu-west-1",
        "endpoint_url": endpoint.url,
    }
    args.update(extra)
    return args


def test_a_list_of_client_certificates_in_one_run(ca, local_acm):
    names = ["client%d" % index for index in range(1, 6)]
    ok("vpn_cert", {"pki_dir": ca, "name": names, "type": "client"})
    args = _client_list(ca, local_acm, names)

    check1 = ok("vpn_acm_import", args, check_mode=True)
    assert check1["changed"] is True
    assert set(result["action"] for result in check1["certificates"].values()) == {"imported"}
    assert not WRITES & set(local_acm.requests())

    first = ok("vpn_acm_import", args)
    assert sorted(first["certificates"]) == names
    arns = dict((name, result["certificate_arn"]) for name, result in first["certificates"].items())
    assert len(set(arns.values())) == len(names)
    assert local_acm.requests().count("ImportCertificate") == len(names)
    assert first["api_calls"]["write"] == len(names)

    seen = len(local_acm.requests())
    check2 = ok("vpn_acm_import", args, check_mode=True)
    second = ok("vpn_acm_import", args)
    assert (check2["changed"], second["changed"]) == (False, False)
    assert dict((name, result["certificate_arn"]) for name, result in second["certificates"].items()) == arns
    # Nothing to change: one ACM read per certificate and run, no write.
    assert local_acm.requests()[seen:] == ["GetCertificate"] * (2 * len(names))

    # Renew one client: only it is re-imported, into its own ARN.
    ok("vpn_cert", {"pki_dir": ca, "name": ["client3"], "type": "client", "renew": True})
    third = ok("vpn_acm_import", args)
    actions = dict((name, result["action"]) for name, result in third["certificates"].items())
    assert actions == dict((name, "reimported" if name == "client3" else "unchanged") for name in names)
    assert third["certificates"]["client3"]["certificate_arn"] == arns["client3"]

    # Every certificate is validated before the first API call.
    ok("vpn_cert", {"pki_dir": ca, "name": ["client6"], "type": "client"})
    seen = len(local_acm.requests())
    bad = _client_list(ca, local_acm, ["client6"] + names)
    bad["certificates"][-1]["private_key"] = os.path.join(ca, "private", "client6.key")
    assert "does not belong to certificate" in failed("vpn_acm_import", bad)
    assert local_acm.requests()[seen:] == []
    twice = _client_list(ca, local_acm, ["client1", "client1"])
    assert "names client1 twice" in failed("vpn_acm_import", twice)

    absent = {"certificates": [{"name": name} for name in names], "pki_dir": ca, "state": "absent",
              "region": "eu-west-1", "endpoint_url": local_acm.url}
    deleted = ok("vpn_acm_import", absent)
    assert set(result["action"] for result in deleted["certificates"].values()) == {"deleted"}
    assert ok("vpn_acm_import", absent)["changed"] is False


def _by_name(pki, endpoint, **extra):
    """From the PKI: pki_dir and name(s); the certificate, key and ca.crt come from its layout."""
    return dict({"pki_dir": pki, "region": "eu-west-1", "endpoint_url": endpoint.url}, **extra)


def test_certificates_of_the_pki_by_name(ca, local_acm, tmp_path):
    clients = ["alice.example.com", "bob.example.com"]
    # Check mode of a whole play from an empty folder: nothing issued yet, every certificate would be imported.
    empty = str(tmp_path / "not-built-yet")
    planned = ok("vpn_acm_import", _by_name(empty, local_acm, names=clients, type="client"), check_mode=True)
    assert planned["changed"] is True and not os.path.exists(empty)
    assert dict((name, result["action"]) for name, result in planned["certificates"].items()) == dict.fromkeys(clients, "imported")
    assert ok("vpn_acm_import", _by_name(empty, local_acm, name="server"), check_mode=True)["action"] == "imported"
    assert not WRITES & set(local_acm.requests())

    ok("vpn_cert", {"pki_dir": ca, "name": ["server"], "type": "server"})
    ok("vpn_cert", {"pki_dir": ca, "name": clients, "type": "client"})
    # A name not issued fails a real run before any API call, naming the file and how to make it.
    missing = failed("vpn_acm_import", _by_name(ca, local_acm, names=clients + ["carol.example.com"], type="client"))
    assert os.path.join(ca, "issued", "carol.example.com.crt") in missing and "vpn_cert" in missing
    assert local_acm.requests() == []

    server = ok("vpn_acm_import", _by_name(ca, local_acm, name="server", tags={"Project": "client-vpn"}))
    assert (server["action"], server["name"], server["domain"]) == ("imported", "server", "server")
    acm_held = local_acm.requests().count("ImportCertificate")
    # The same certificate as own files, under the same name and pki_dir: the recorded ARN, nothing imported.
    own = ok("vpn_acm_import", _args(ca, local_acm))
    assert (own["action"], own["certificate_arn"], own["api_calls"]) == ("unchanged", server["certificate_arn"], {"read": 1, "write": 0})
    again = ok("vpn_acm_import", _by_name(ca, local_acm, name="server", tags={"Project": "client-vpn"}))
    assert (again["changed"], again["certificate_arn"], again["api_calls"]) == (False, server["certificate_arn"], {"read": 1, "write": 0})

    first = ok("vpn_acm_import", _by_name(ca, local_acm, names=clients, type="client"))
    assert sorted(first["certificates"]) == clients
    assert set(result["action"] for result in first["certificates"].values()) == {"imported"}
    assert local_acm.requests().count("ImportCertificate") == acm_held + len(clients)
    seen = len(local_acm.requests())
    second = ok("vpn_acm_import", _by_name(ca, local_acm, names=clients, type="client"))
    assert second["changed"] is False and second["api_calls"] == {"read": len(clients), "write": 0}
    assert local_acm.requests()[seen:] == ["GetCertificate"] * len(clients)
    # The chain sent is the PKI's ca.crt.
    import boto3  # pylint: disable=import-outside-toplevel
    acm = boto3.client("acm", region_name="eu-west-1", endpoint_url=local_acm.url)
    chain = acm.get_certificate(CertificateArn=first["certificates"]["bob.example.com"]["certificate_arn"])["CertificateChain"]
    with open(os.path.join(ca, "ca.crt")) as handle:
        assert chain.strip().startswith(handle.read().strip())


def test_own_files_name_their_record_and_the_modes_do_not_mix(ca, local_acm):
    ok("vpn_cert", {"pki_dir": ca, "name": ["server"], "type": "server"})
    # Earlier versions guessed name and pki_dir from the path; now the error says what to give.
    for unnamed in (dict(name=None), dict(pki_dir=None)):
        args = dict((key, value) for key, value in _args(ca, local_acm, **unnamed).items() if value is not None)
        message = failed("vpn_acm_import", args)
        assert "need name and pki_dir" in message and "name=server" in message, message
    message = failed("vpn_acm_import", _by_name(ca, local_acm))
    assert "needs pki_dir and name" in message and "certificate_chain" in message
    assert "mutually exclusive" in failed("vpn_acm_import", _by_name(ca, local_acm, names=["server"], certificate=os.path.join(ca, "x.crt")))
    no_chain = dict((key, value) for key, value in _args(ca, local_acm).items() if key != "certificate_chain")
    assert "certificate_chain is required" in failed("vpn_acm_import", no_chain)
    assert "'../server'" in failed("vpn_acm_import", _by_name(ca, local_acm, name="../server"))
    assert local_acm.requests() == []
