# -*- coding: utf-8 -*-
# Copyright: clientvpn.pki contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""base_configuration and ClientProfiles: one .ovpn per client, the endpoint's configuration with
the client's certificate and key inlined."""

from __future__ import annotations

import os
import stat

import boto3
import pytest
from botocore.stub import Stubber

from ansible_collections.clientvpn.pki.plugins.module_utils import x509_inspect
from ansible_collections.clientvpn.pki.plugins.module_utils.aws import AwsError
from ansible_collections.clientvpn.pki.plugins.module_utils.cert_issuer import CertificateIssuer
from ansible_collections.clientvpn.pki.plugins.module_utils.client_profiles import ClientProfiles, base_configuration, load_configuration
from ansible_collections.clientvpn.pki.plugins.module_utils.errors import PkiError
from ansible_collections.clientvpn.pki.plugins.module_utils.x509_profiles import to_pem

CA_BLOCK = (
    "<ca>\n"
    "-----BEGIN CERTIFICATE-----\n"
    "MIIBszCCARygAwIBAgIUdGVzdC1jYS1ub3QtcmVhbDANBgkqhkiG9w0BAQsFADAQ\n"
    "-----END CERTIFICATE-----\n"
    "\n"
    "</ca>\n"
)
# What `aws ec2 export-client-vpn-client-configuration` returns, trimmed.
ENDPOINT_CONFIG = (
    "client\n"
    "dev tun\n"
    "proto udp\n"
    "remote cvpn-endpoint-0123456789abcdef0.prod.clientvpn.eu-west-1.amazonaws.com 443\n"
    "remote-random-hostname\n"
    "resolv-retry infinite\n"
    "nobind\n"
    "remote-cert-tls server\n"
    "cipher AES-256-GCM\n"
    "verb 3\n" + CA_BLOCK + "\n"
    "\n"
    "reneg-sec 0\n"
    "\n"
    "verify-x509-name server name\n"
)
# The same, with every way of naming a client certificate or key that must go.
WITH_CLIENT_MATERIAL = (
    "client\n"
    "cert client1.crt\n"
    "dev tun\n"
    "  key client1.key\n"
    "proto udp\n"
    "\tpkcs12 client1.p12\n"
    "remote cvpn-endpoint-0123456789abcdef0.prod.clientvpn.eu-west-1.amazonaws.com 443\n"
    "remote-random-hostname\n"
    "<cert>\n"
    "-----BEGIN CERTIFICATE-----\n"
    "MIIBold\n"
    "-----END CERTIFICATE-----\n"
    "</cert>\n"
    "resolv-retry infinite\n"
    "  <key>\n"
    "-----BEGIN PRIVATE KEY-----\n"
    "MIIEold\n"
    "-----END PRIVATE KEY-----\n"
    "  </key>\n"
    "nobind\n"
    "remote-cert-tls server\n"
    "<pkcs12>\n"
    "MIIKold\n"
    "</pkcs12>\n"
    "cipher AES-256-GCM\n"
    "verb 3\n" + CA_BLOCK + "\n"
    "\n"
    "reneg-sec 0\n"
    "key\n"
    "\n"
    "verify-x509-name server name\n"
    "cert client1.crt"
)
TEXT_DUMP = (
    b"Certificate:\n"
    b"    Data:\n"
    b"        Version: 3 (0x2)\n"
    b"        Serial Number:\n"
    b"            7a:1b:00:00\n"
    b"        Signature Algorithm: sha256WithRSAEncryption\n"
    b"        Subject: CN=c1\n"
)


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def profiles(store, names, dest, configuration=ENDPOINT_CONFIG, check_mode=False):
    if isinstance(names, str):
        names = [names]
    return ClientProfiles(store.root, names, dest, configuration).run(check_mode)


def expected_profile(helpers, store, name, configuration=ENDPOINT_CONFIG):
    cert_pem = to_pem(x509_inspect.load_certificate(store.cert(name))).decode()
    key_pem = helpers.read(store.key(name)).decode()
    return "%s<cert>\n%s</cert>\n<key>\n%s</key>\n" % (configuration, cert_pem, key_pem)


def no_aws():
    """The connect function of a run that must not need AWS (a config_file)."""
    pytest.fail("a config_file run asked for an AWS client")


@pytest.fixture
def dest(tmp_path):
    return str(tmp_path / "profiles")


# -- base_configuration -------------------------------------------------------------------------------
def test_base_configuration_removes_client_material_only():
    assert base_configuration(WITH_CLIENT_MATERIAL) == ENDPOINT_CONFIG


def test_base_configuration_keeps_the_endpoint_configuration():
    base = base_configuration(ENDPOINT_CONFIG)
    assert base == ENDPOINT_CONFIG
    for kept in (CA_BLOCK, "remote cvpn-endpoint-", "remote-cert-tls server\n", "verify-x509-name server name\n", "reneg-sec 0\n"):
        assert kept in base


def test_base_configuration_ends_with_a_newline():
    assert base_configuration("client\nremote vpn.example.com 443") == "client\nremote vpn.example.com 443\n"


@pytest.mark.parametrize("line", ["key-direction 1", "keying-material-exporter EXPORTER-label 32", "keysize 256"])
def test_base_configuration_keeps_directives_that_only_start_like_key_or_cert(line):
    """_FILE_LINE in client_profiles.py matches the words cert/key/pkcs12 without requiring a blank or the
    end of line after them, so 'key-direction 1' loses its first word and becomes '-direction 1'."""
    configuration = "client\nremote vpn.example.com 443\n%s\nverb 3\n" % line
    assert base_configuration(configuration) == configuration


def test_base_configuration_keeps_other_blocks_whole():
    """Base64 lines inside <ca> or <tls-crypt> may start with 'key' or 'cert': they are not options."""
    blocks = (
        "<ca>\n-----BEGIN CERTIFICATE-----\nkeyAbCd0123\ncert 4567\n  key+/==\n-----END CERTIFICATE-----\n</ca>\n"
        "<tls-crypt>\n-----BEGIN OpenVPN Static key V1-----\nkey 0011\n-----END OpenVPN Static key V1-----\n</tls-crypt>\n"
    )
    configuration = "client\nremote vpn.example.com 443\n" + blocks + "verb 3\n"
    assert base_configuration(configuration) == configuration
    assert base_configuration(configuration + "key c.key\n<key>\nkey 1\n</key>\n") == configuration


# -- ClientProfiles ---------------------------------------------------------------------------------------
def test_profiles_inline_the_pem_certificate_and_key(pki, helpers, dest):
    helpers.issue(pki, ["c1", "c2"])
    cert_pem = helpers.read(pki.cert("c1"))
    helpers.write(pki.cert("c1"), TEXT_DUMP + cert_pem)
    old_umask = os.umask(0o022)
    try:
        result = profiles(pki, ["c1", "c2"], dest, WITH_CLIENT_MATERIAL)
    finally:
        os.umask(old_umask)

    assert result["changed"] is True
    assert result["files"] == {"c1": "written", "c2": "written"}
    assert result["changes"] == ["create directory %s" % dest, "written c1.ovpn", "written c2.ovpn"]
    assert result["dest"] == dest
    assert result["profiles"] == {"c1": os.path.join(dest, "c1.ovpn"), "c2": os.path.join(dest, "c2.ovpn")}
    assert mode(dest) == 0o700
    assert sorted(os.listdir(dest)) == ["c1.ovpn", "c2.ovpn"]
    for name in ("c1", "c2"):
        path = os.path.join(dest, name + ".ovpn")
        assert mode(path) == 0o600
        text = helpers.read(path).decode()
        assert text == expected_profile(helpers, pki, name)
        for tag in ("<cert>", "</cert>", "<key>", "</key>", "<ca>", "</ca>"):
            assert text.count(tag) == 1, tag
        assert "pkcs12" not in text and "client1." not in text and "old\n" not in text
        key, dummy = x509_inspect.load_private_key(pki.key(name))
        assert x509_inspect.key_matches(key, x509_inspect.load_certificate(pki.cert(name)))
    c1 = helpers.read(os.path.join(dest, "c1.ovpn")).decode()
    assert "Certificate:" not in c1 and "Serial Number" not in c1
    assert "<cert>\n" + cert_pem.decode() + "</cert>\n" in c1


def test_second_run_is_unchanged(pki, helpers, dest):
    helpers.issue(pki, ["c1", "c2"])
    profiles(pki, ["c1", "c2"], dest)
    before = helpers.snapshot(dest)
    for check_mode in (True, False):
        result = profiles(pki, ["c1", "c2"], dest, check_mode=check_mode)
        assert result["changed"] is False
        assert result["changes"] == []
        assert result["files"] == {"c1": "unchanged", "c2": "unchanged"}
        assert helpers.snapshot(dest) == before


def test_reissued_certificate_rewrites_only_its_profile(pki, helpers, dest):
    helpers.issue(pki, ["c1", "c2"])
    profiles(pki, ["c1", "c2"], dest)
    c2_path = os.path.join(dest, "c2.ovpn")
    c2_before = (os.stat(c2_path).st_mtime_ns, helpers.read(c2_path))
    c1_before = helpers.read(os.path.join(dest, "c1.ovpn"))
    renewed = CertificateIssuer(pki, helpers.specs("c1"), renew=True).run(False)
    assert renewed["certificates"]["c1"]["action"] == "renewed"

    result = profiles(pki, ["c1", "c2"], dest)
    assert result["files"] == {"c1": "written", "c2": "unchanged"}
    assert result["changes"] == ["written c1.ovpn"]
    c1_after = helpers.read(os.path.join(dest, "c1.ovpn"))
    assert c1_after != c1_before
    assert c1_after.decode() == expected_profile(helpers, pki, "c1")
    assert (os.stat(c2_path).st_mtime_ns, helpers.read(c2_path)) == c2_before


def test_loose_modes_are_fixed(pki, helpers, dest):
    helpers.issue(pki, "c1")
    profiles(pki, "c1", dest)
    path = os.path.join(dest, "c1.ovpn")
    content = helpers.read(path)
    os.chmod(path, 0o644)
    os.chmod(dest, 0o755)

    check = profiles(pki, "c1", dest, check_mode=True)
    assert check["changed"] is True
    assert check["files"] == {"c1": "chmod"}
    assert mode(path) == 0o644 and mode(dest) == 0o755

    result = profiles(pki, "c1", dest)
    assert result["files"] == {"c1": "chmod"}
    assert result["changes"] == ["set mode 0700 on %s" % dest, "chmod c1.ovpn"]
    assert mode(path) == 0o600 and mode(dest) == 0o700
    assert helpers.read(path) == content
    assert profiles(pki, "c1", dest)["changed"] is False


def test_check_mode_without_the_configuration_yet(pki, helpers, dest, tmp_path):
    """A config_file an earlier task of the check run would download: every profile would be written."""
    helpers.issue(pki, "c1")
    params = {"config_file": str(tmp_path / "not-downloaded-yet.ovpn"), "client_vpn_endpoint_id": None}
    assert load_configuration(params, True, no_aws) is None
    result = profiles(pki, ["c1"], dest, configuration=None, check_mode=True)
    assert (result["changed"], result["files"]) == (True, {"c1": "written"})
    assert not os.path.exists(dest)
    with pytest.raises(PkiError, match="not-downloaded-yet.ovpn cannot be read"):
        load_configuration(params, False, no_aws)


def test_configuration_from_a_file_or_exported_from_the_endpoint(tmp_path):
    """A file needs no AWS client; an endpoint id asks connect() (aws.connector) once and makes the export call.
    The EC2 Client VPN API has no local server: botocore's Stubber answers, and refuses any call not queued."""
    path = tmp_path / "config.ovpn"
    path.write_text(ENDPOINT_CONFIG)
    assert load_configuration({"config_file": str(path), "client_vpn_endpoint_id": None}, False, no_aws) == ENDPOINT_CONFIG
    ec2 = boto3.client("ec2", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="y")
    connected = []

    def connect():
        connected.append(ec2)
        return ec2

    endpoint_id = "cvpn-endpoint-0123456789abcdef0"
    with Stubber(ec2) as stubber:
        stubber.add_response("export_client_vpn_client_configuration", {"ClientConfiguration": ENDPOINT_CONFIG}, {"ClientVpnEndpointId": endpoint_id})
        stubber.add_client_error("export_client_vpn_client_configuration", "InvalidClientVpnEndpointId.NotFound", "no such endpoint",
                                 expected_params={"ClientVpnEndpointId": endpoint_id})
        assert load_configuration({"config_file": None, "client_vpn_endpoint_id": endpoint_id}, True, connect) == ENDPOINT_CONFIG
        with pytest.raises(AwsError, match="InvalidClientVpnEndpointId.NotFound"):
            load_configuration({"config_file": None, "client_vpn_endpoint_id": endpoint_id}, False, connect)
        stubber.assert_no_pending_responses()
    assert connected == [ec2, ec2]


def test_check_mode_writes_nothing(pki, helpers, dest):
    helpers.issue(pki, "c1")
    before = helpers.snapshot(pki.root)
    result = profiles(pki, ["c1", "not-issued-yet"], dest, check_mode=True)
    assert result["changed"] is True
    assert result["files"] == {"c1": "written", "not-issued-yet": "written"}
    assert result["changes"][0] == "create directory %s" % dest
    assert not os.path.exists(dest)
    assert helpers.snapshot(pki.root) == before


def test_missing_certificate_is_refused(pki, helpers, dest):
    helpers.issue(pki, "c1")
    os.unlink(pki.cert("c1"))
    with pytest.raises(PkiError) as caught:
        profiles(pki, "c1", dest)
    assert pki.cert("c1") in str(caught.value)
    assert "vpn_cert" in str(caught.value)
    assert not os.path.exists(os.path.join(dest, "c1.ovpn"))


def test_missing_certificate_writes_no_profile_at_all(pki, helpers, dest):
    """PkiError promises 'nothing on disk has been changed' (errors.py), and the module then fails
    without changed=true: a missing certificate for the second name must not leave dest created and
    the first name's profile written."""
    helpers.issue(pki, "c1")
    with pytest.raises(PkiError):
        profiles(pki, ["c1", "c2"], dest)
    assert not os.path.exists(dest)


def test_certificate_without_pem_is_refused(pki, helpers, dest):
    helpers.issue(pki, "c1")
    helpers.write(pki.cert("c1"), TEXT_DUMP)
    with pytest.raises(PkiError) as caught:
        profiles(pki, "c1", dest)
    assert pki.cert("c1") in str(caught.value) and "no PEM block" in str(caught.value)


@pytest.mark.parametrize(
    "configuration",
    [
        "",
        "client\ndev tun\nremote-cert-tls server\nremote-random-hostname\n" + CA_BLOCK,
        "client\nremotevpn.example.com 443\n",
    ],
    ids=["empty", "remote-prefixed-only", "no-blank"],
)
def test_configuration_without_remote_is_refused(pki, helpers, dest, configuration):
    helpers.issue(pki, "c1")
    with pytest.raises(PkiError) as caught:
        profiles(pki, "c1", dest, configuration)
    assert "'remote'" in str(caught.value)
    assert not os.path.exists(dest)


@pytest.mark.parametrize("names, message", [([], "names is empty"), (["../c1"], "'../c1'"), (["c1", "ca"], "'ca'"), ([".hidden"], "'.hidden'")])
def test_bad_names_are_refused(pki, dest, names, message):
    with pytest.raises(PkiError) as caught:
        profiles(pki, names, dest)
    assert message in str(caught.value)
    assert not os.path.exists(dest)


def test_dest_that_is_a_file_is_refused(pki, helpers, tmp_path):
    path = str(tmp_path / "profiles")
    helpers.write(path, b"a file")
    with pytest.raises(PkiError, match="dest"):
        profiles(pki, "c1", path)
