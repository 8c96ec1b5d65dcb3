# -*- coding: utf-8 -*-
# Copyright: clientvpn.pki contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""EndpointCrl: the CRL of a Client VPN endpoint is imported only when it differs from the local one.

moto implements no EC2 Client VPN call at all (HTTP 500 / NotImplemented), so ``botocore.stub.Stubber``
on a real boto3 EC2 client stands in for the endpoint here: it answers the export call, checks the
import call's parameters exactly, and fails on any call that was not queued. An event handler
registered before the Stubber's records every operation asked for, so "no call at all" is checked
too. The CRLs are real, signed with cryptography by an RSA 1024 CA.
"""

from __future__ import annotations

import datetime

import boto3
import pytest
from botocore.stub import Stubber
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from ansible_collections.clientvpn.pki.plugins.module_utils.aws import AwsError
from ansible_collections.clientvpn.pki.plugins.module_utils.endpoint_crl import EndpointCrl
from ansible_collections.clientvpn.pki.plugins.module_utils.errors import PkiError
from ansible_collections.clientvpn.pki.plugins.module_utils.x509_profiles import build_ca, generate_key

UTC = datetime.timezone.utc
ENDPOINT = "cvpn-endpoint-0123456789abcdef0"
EXPORT = "export_client_vpn_client_certificate_revocation_list"
IMPORT = "import_client_vpn_client_certificate_revocation_list"


class Ec2(object):
    """A real boto3 EC2 client, its Stubber and the operations it was asked for, in order."""

    def __init__(self):
        self.client = boto3.client("ec2", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="y")
        self.operations = []
        self.client.meta.events.register("before-parameter-build.ec2", self._record)
        self.stubber = Stubber(self.client)

    def _record(self, model, **kwargs):
        self.operations.append(model.name)

    def export(self, crl_text=None, status="active"):
        response = {}
        if crl_text is not None:
            response["CertificateRevocationList"] = crl_text
        if status is not None:
            response["Status"] = {"Code": status}
        self.stubber.add_response(EXPORT, response, {"ClientVpnEndpointId": ENDPOINT})

    def expect_import(self, crl_text):
        self.stubber.add_response(IMPORT, {"Return": True}, {"ClientVpnEndpointId": ENDPOINT, "CertificateRevocationList": crl_text})


@pytest.fixture
def ec2():
    stub = Ec2()
    stub.stubber.activate()
    yield stub
    stub.stubber.deactivate()


@pytest.fixture(scope="module")
def signer():
    key = generate_key(1024)
    return build_ca(key, "Endpoint CRL CA", 3650, "sha256"), key


def make_crl(signer, serials=(), next_update_days=180, last_update_days=-1):
    """A PEM CRL listing ``serials``, valid from ``last_update_days`` to ``next_update_days`` from now."""
    ca_cert, ca_key = signer
    now = datetime.datetime.now(UTC).replace(microsecond=0)
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca_cert.subject)
        .last_update(now + datetime.timedelta(days=last_update_days))
        .next_update(now + datetime.timedelta(days=next_update_days))
    )
    revoked_at = now - datetime.timedelta(days=2)
    for serial in serials:
        builder = builder.add_revoked_certificate(x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(revoked_at).build())
    return builder.sign(ca_key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


@pytest.fixture(scope="module")
def huge_crl(signer):
    return make_crl(signer, range(1, 20002))


@pytest.fixture
def local(tmp_path, signer):
    """The local crl.pem (two revoked serials): its path and PEM text."""
    path = tmp_path / "crl.pem"
    pem = make_crl(signer, [0x1001, 0x1002])
    path.write_bytes(pem)
    return str(path), pem.decode("ascii")


# -- comparing -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "transform",
    [
        lambda text: text,
        lambda text: text.replace("\n", "\r\n"),
        lambda text: "\n  " + text.rstrip("\n") + "\n\n\t ",
    ],
    ids=["identical", "crlf", "whitespace"],
)
@pytest.mark.parametrize("check_mode", [False, True])
def test_same_crl_is_not_imported(ec2, local, transform, check_mode):
    path, pem = local
    ec2.export(transform(pem))
    result = EndpointCrl(lambda: ec2.client, ENDPOINT, path).run(check_mode)
    ec2.stubber.assert_no_pending_responses()
    assert ec2.operations == ["ExportClientVpnClientCertificateRevocationList"]
    assert result["changed"] is False
    assert result["action"] == "unchanged"
    assert result["warnings"] == []
    assert result["client_vpn_endpoint_id"] == ENDPOINT
    assert result["revoked_count"] == 2
    assert result["status"] == "active"
    assert result["next_update"] == x509.load_pem_x509_crl(pem.encode()).next_update_utc.isoformat()


@pytest.mark.parametrize("held", ["other", None, "", "garbage"])
def test_other_or_no_crl_is_imported(ec2, local, signer, held):
    path, pem = local
    if held == "other":
        held = make_crl(signer, [0x1001]).decode("ascii")
    ec2.export(held, status="pending" if held is None else "active")
    ec2.expect_import(pem)
    result = EndpointCrl(lambda: ec2.client, ENDPOINT, path).run(False)
    ec2.stubber.assert_no_pending_responses()
    assert ec2.operations == ["ExportClientVpnClientCertificateRevocationList", "ImportClientVpnClientCertificateRevocationList"]
    assert result["changed"] is True
    assert result["action"] == "imported"
    assert len(result["warnings"]) == 1 and "resets" in result["warnings"][0]
    assert result["diff"]["after"] == {"revoked_count": 2}


def test_endpoint_without_crl_or_status(ec2, local):
    path, pem = local
    ec2.export(None, status=None)
    ec2.expect_import(pem)
    result = EndpointCrl(lambda: ec2.client, ENDPOINT, path).run(False)
    ec2.stubber.assert_no_pending_responses()
    assert result["action"] == "imported"
    assert result["status"] is None


def test_check_mode_exports_only(ec2, local, signer):
    path, dummy = local
    ec2.export(make_crl(signer, [0x1001]).decode("ascii"))
    result = EndpointCrl(lambda: ec2.client, ENDPOINT, path).run(True)
    ec2.stubber.assert_no_pending_responses()
    assert ec2.operations == ["ExportClientVpnClientCertificateRevocationList"]
    assert result["changed"] is True
    assert result["action"] == "imported"


def test_unknown_endpoint(ec2, local):
    path, dummy = local
    ec2.stubber.add_client_error(
        EXPORT,
        service_error_code="InvalidClientVpnEndpointId.NotFound",
        service_message="The Client VPN endpoint ID '%s' does not exist" % ENDPOINT,
        http_status_code=400,
        expected_params={"ClientVpnEndpointId": ENDPOINT},
    )
    with pytest.raises(AwsError) as caught:
        EndpointCrl(lambda: ec2.client, ENDPOINT, path).run(False)
    assert isinstance(caught.value, PkiError)
    message = str(caught.value)
    assert "InvalidClientVpnEndpointId.NotFound" in message
    assert EXPORT in message
    assert ENDPOINT in message
    ec2.stubber.assert_no_pending_responses()
    assert ec2.operations == ["ExportClientVpnClientCertificateRevocationList"]


def test_import_error_is_reported(ec2, local, signer):
    path, pem = local
    ec2.export(make_crl(signer, [0x1001]).decode("ascii"))
    ec2.stubber.add_client_error(
        IMPORT,
        service_error_code="InvalidParameterValue",
        service_message="bad CRL",
        http_status_code=400,
        expected_params={"ClientVpnEndpointId": ENDPOINT, "CertificateRevocationList": pem},
    )
    with pytest.raises(AwsError) as caught:
        EndpointCrl(lambda: ec2.client, ENDPOINT, path).run(False)
    assert "InvalidParameterValue" in str(caught.value) and IMPORT in str(caught.value)
    ec2.stubber.assert_no_pending_responses()


# -- refusing before any call ------------------------------------------------------------------------------
def test_expired_crl_is_refused(ec2, tmp_path, signer):
    path = tmp_path / "crl.pem"
    path.write_bytes(make_crl(signer, [0x1001], next_update_days=-1, last_update_days=-30))
    with pytest.raises(PkiError) as caught:
        EndpointCrl(lambda: ec2.client, ENDPOINT, str(path)).run(False)
    assert "expired" in str(caught.value) and str(path) in str(caught.value)
    assert "vpn_crl" in str(caught.value)
    assert ec2.operations == []


def test_crl_over_client_vpn_limit_is_refused(ec2, tmp_path, huge_crl):
    path = tmp_path / "crl.pem"
    path.write_bytes(huge_crl)
    with pytest.raises(PkiError) as caught:
        EndpointCrl(lambda: ec2.client, ENDPOINT, str(path)).run(False)
    assert "20001" in str(caught.value) and "20000" in str(caught.value)
    assert ec2.operations == []


@pytest.mark.parametrize("content", [None, b"", b"garbage\n", b"-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n"])
def test_unreadable_crl_file_is_refused(ec2, tmp_path, content):
    path = tmp_path / "crl.pem"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(PkiError) as caught:
        EndpointCrl(lambda: ec2.client, ENDPOINT, str(path)).run(False)
    assert str(path) in str(caught.value)
    assert "vpn_crl" in str(caught.value)
    assert ec2.operations == []
