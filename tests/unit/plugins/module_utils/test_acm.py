# -*- coding: utf-8 -*-
# Copyright: clientvpn.pki contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""LocalCertificate, check_importable and AcmCertificate against a stubbed ACM client.

``botocore.stub.Stubber`` is used here only for what a local ACM endpoint
(moto) cannot produce: AWS error codes (AccessDenied, LimitExceeded,
ValidationException on tagging, ResourceNotFound for a recorded ARN), real
ACM's behaviours that moto lacks, and exact call-by-call accounting (any call
not queued fails the test). The happy paths run against moto's real HTTP
server in tests/system.

The PKI material is real: a copy of the session's RSA 1024 CA, leaves issued
with CertificateIssuer, and odd certificates signed by hand with cryptography.
"""

from __future__ import annotations

import datetime
import json
import os

import boto3
import pytest
from botocore.stub import ANY, Stubber
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ansible_collections.clientvpn.pki.plugins.module_utils import x509_inspect
from ansible_collections.clientvpn.pki.plugins.module_utils.acm import (
    RECORD_FILE,
    TAG_CA,
    TAG_NAME,
    AcmCertificate,
    AcmCertificateList,
    ArnRecord,
    from_params,
)
from ansible_collections.clientvpn.pki.plugins.module_utils.acm_local import LocalCertificate
from ansible_collections.clientvpn.pki.plugins.module_utils.aws import AwsError
from ansible_collections.clientvpn.pki.plugins.module_utils.cert_plan import LeafSpec
from ansible_collections.clientvpn.pki.plugins.module_utils.clientvpn_rules import ACM_MAX_KEY_BYTES, check_importable
from ansible_collections.clientvpn.pki.plugins.module_utils.errors import PkiError
from ansible_collections.clientvpn.pki.plugins.module_utils.x509_profiles import build_ca, generate_key, key_to_pem, sign_leaf, to_pem

REGION = "eu-west-1"
ARN = "arn:aws:acm:eu-west-1:123456789012:certificate/11111111-2222-3333-4444-555555555555"
OTHER_ARN = "arn:aws:acm:eu-west-1:123456789012:certificate/99999999-8888-7777-6666-555555555555"
NEW_ARN = "arn:aws:acm:eu-west-1:123456789012:certificate/aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
LIST_PARAMS = {"Includes": {"keyTypes": ["RSA_1024", "RSA_2048"]}}
WRITES = ("ImportCertificate", "AddTagsToCertificate", "RemoveTagsFromCertificate", "DeleteCertificate")


# -- fixtures ------------------------------------------------------------------------------------
class Acm(object):
    """A real boto3 ACM client, its Stubber and the operations it was asked for, in order."""

    def __init__(self):
        self.client = boto3.client("acm", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="y")
        self.operations = []
        # Registered before the Stubber's own handler, so even an unexpected call is recorded.
        self.client.meta.events.register("before-parameter-build.acm", self._record)
        self.stubber = Stubber(self.client)

    def _record(self, model, **kwargs):
        self.operations.append(model.name)

    def writes(self):
        return [op for op in self.operations if op in WRITES]

    def ok(self, operation, response, params):
        self.stubber.add_response(operation, response, params)

    def error(self, operation, code, message, params=None, status=400):
        self.stubber.add_client_error(operation, service_error_code=code, service_message=message,
                                      http_status_code=status, expected_params=params)


@pytest.fixture
def acm():
    stub = Acm()
    stub.stubber.activate()
    yield stub
    stub.stubber.deactivate()


@pytest.fixture(scope="module")
def rsa2048_key():
    return generate_key(2048)


@pytest.fixture(scope="module")
def rsa4096_key():
    return generate_key(4096)


@pytest.fixture(scope="module")
def other_ca():
    """Another CA (cert, key), for chains that do not sign the leaf."""
    key = generate_key(1024)
    return build_ca(key, "Another CA", 3650, "sha256"), key


class Material(object):
    """One server certificate issued by the unit-test CA, and the paths the module would get."""

    def __init__(self, store, helpers):
        helpers.issue(store, "server", "server")
        self.store = store
        self.root = store.root
        self.cert = store.cert("server")
        self.key = store.key("server")
        self.chain = store.ca_cert
        self.ca_cert = x509_inspect.load_certificate(store.ca_cert)
        self.ca_key = x509_inspect.load_private_key(store.ca_key)[0]
        self.leaf_pem = helpers.read(self.cert).decode()
        self.ca_pem = helpers.read(self.chain).decode()

    @property
    def record(self):
        """A fresh reader each time: an ArnRecord keeps what it read."""
        return ArnRecord(self.store)

    def local(self, cert_type="server"):
        return LocalCertificate(self.cert, self.key, self.chain, None, cert_type)

    def identity(self):
        return {TAG_NAME: "server", TAG_CA: self.local().ca_fingerprint}

    def record_arn(self, arn=ARN, tags=None):
        self.record.put(REGION, "server", {"arn": arn, "tags": self.identity() if tags is None else tags})

    def recorded(self):
        path = self.store.path(RECORD_FILE)
        if not os.path.exists(path):
            return None
        with open(path) as handle:
            return json.load(handle).get(REGION, {}).get("server")

    def write(self, name, data):
        path = os.path.join(self.root, name)
        with open(path, "wb") as handle:
            handle.write(data)
        return path


@pytest.fixture
def mat(pki, helpers):
    return Material(pki, helpers)


def certificate(acm, mat, **kwargs):
    kwargs.setdefault("local", mat.local())
    return AcmCertificate(acm.client, "server", mat.record, **kwargs)


def import_params(mat, arn=None, tags=None):
    """The exact parameters of an import_certificate call."""
    local = mat.local()
    params = {"Certificate": local.leaf_pem, "PrivateKey": local.key_pem, "CertificateChain": local.chain_pem}
    if arn:
        params["CertificateArn"] = arn
    if tags is not None:
        params["Tags"] = [{"Key": key, "Value": value} for key, value in sorted(tags.items())]
    return params


def tag_list(tags):
    return [{"Key": key, "Value": value} for key, value in sorted(tags.items())]


def hand_made_leaf(ca_cert, ca_key, key, common_name="server", dns=("server",), eku=ExtendedKeyUsageOID.SERVER_AUTH,
                   not_before=None, not_after=None):
    """A leaf signed by the CA with cryptography directly: anything the issuer would refuse to make."""
    now = datetime.datetime.now(datetime.timezone.utc)
    if common_name:
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    else:
        subject = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "No CN Org")])
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before or now - datetime.timedelta(hours=1))
        .not_valid_after(not_after or now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=False)
    )
    if dns:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(name) for name in dns]), critical=False)
    if eku:
        builder = builder.add_extension(x509.ExtendedKeyUsage([eku]), critical=False)
    return builder.sign(ca_key, hashes.SHA256())


def renewed_leaf_pem(mat):
    """What ACM holds after an earlier import: the same key and names, another serial."""
    key = x509_inspect.load_private_key(mat.key)[0]
    spec = LeafSpec("server", "server", ["DNS:server"], "server", 1024, 30, "sha256")
    return to_pem(sign_leaf(mat.ca_cert, mat.ca_key, key.public_key(), spec, x509.random_serial_number())).decode()


# -- AWS errors on writes -------------------------------------------------------------------------
@pytest.mark.parametrize("code,message", [
    ("AccessDeniedException", "User: arn:aws:iam::123456789012:user/ci is not authorized to perform: acm:ImportCertificate"),
    ("LimitExceededException", "the maximum number of certificates has been reached"),
])
def test_import_errors_carry_the_aws_code(acm, mat, code, message):
    acm.ok("list_certificates", {"CertificateSummaryList": []}, LIST_PARAMS)
    acm.error("import_certificate", code, message, import_params(mat, tags=mat.identity()))
    with pytest.raises(AwsError) as caught:
        certificate(acm, mat).run(False)
    text = str(caught.value)
    assert isinstance(caught.value, PkiError)
    assert code in text
    assert "import_certificate" in text
    assert message in text
    acm.stubber.assert_no_pending_responses()
    assert mat.recorded() is None


def test_a_list_failing_half_way_keeps_and_names_what_it_did(acm, mat, helpers):
    """certificates: the first import is recorded before the second fails; the message names the
    certificate that failed and the ones done before it, so the next run just carries on."""
    helpers.issue(mat.store, "client1", "client")
    record = ArnRecord(mat.store)
    items = [
        AcmCertificate(acm.client, name, record,
                       local=LocalCertificate(mat.store.cert(name), mat.store.key(name), mat.chain, None, cert_type))
        for name, cert_type in (("server", "server"), ("client1", "client"))
    ]
    any_import = {"Certificate": ANY, "PrivateKey": ANY, "CertificateChain": ANY, "Tags": ANY}
    acm.ok("list_certificates", {"CertificateSummaryList": []}, LIST_PARAMS)
    acm.ok("import_certificate", {"CertificateArn": ARN}, any_import)
    acm.ok("list_certificates", {"CertificateSummaryList": []}, LIST_PARAMS)
    acm.error("import_certificate", "LimitExceededException", "the maximum number of certificates has been reached", any_import)
    with pytest.raises(PkiError) as caught:
        AcmCertificateList(items, record).run(False)
    text = str(caught.value)
    assert text.startswith("client1: ") and "LimitExceededException" in text
    assert text.endswith("Done before it in this run: server.")
    assert mat.recorded()["arn"] == ARN
    acm.stubber.assert_no_pending_responses()


def test_reimport_sends_no_tags_then_reconciles_them(acm, mat):
    """ACM refuses tags on re-import (ValidationException): the call must not carry them."""
    mat.record_arn()
    acm.ok("get_certificate", {"Certificate": renewed_leaf_pem(mat), "CertificateChain": mat.ca_pem}, {"CertificateArn": ARN})
    # Exactly these four keys: no Tags.
    acm.ok("import_certificate", {"CertificateArn": ARN}, import_params(mat, arn=ARN))
    # moto drops tags on re-import: they are read back and restored in a separate call.
    acm.ok("list_tags_for_certificate", {}, {"CertificateArn": ARN})
    acm.ok("add_tags_to_certificate", {}, {"CertificateArn": ARN, "Tags": tag_list(mat.identity())})
    result = certificate(acm, mat).run(False)
    acm.stubber.assert_no_pending_responses()
    assert set(import_params(mat, arn=ARN)) == {"CertificateArn", "Certificate", "PrivateKey", "CertificateChain"}
    assert result["action"] == "reimported"
    assert result["changed"] is True
    assert result["certificate_arn"] == ARN
    assert result["tags"] == mat.identity()
    assert result["api_calls"] == {"read": 2, "write": 2}
    assert mat.recorded() == {"arn": ARN, "tags": mat.identity()}


def test_reimport_keeps_remote_tags_when_the_endpoint_keeps_them(acm, mat):
    """Real ACM keeps tags across a re-import: nothing to add, one write only."""
    mat.record_arn()
    remote_tags = dict(mat.identity(), Project="vpn")
    acm.ok("get_certificate", {"Certificate": renewed_leaf_pem(mat), "CertificateChain": mat.ca_pem}, {"CertificateArn": ARN})
    acm.ok("import_certificate", {"CertificateArn": ARN}, import_params(mat, arn=ARN))
    acm.ok("list_tags_for_certificate", {"Tags": tag_list(remote_tags)}, {"CertificateArn": ARN})
    result = certificate(acm, mat).run(False)
    acm.stubber.assert_no_pending_responses()
    assert result["action"] == "reimported"
    assert result["tags"] == remote_tags
    assert acm.writes() == ["ImportCertificate"]


def test_tagging_validation_error_is_clear(acm, mat):
    mat.record_arn()
    acm.ok("get_certificate", {"Certificate": renewed_leaf_pem(mat), "CertificateChain": mat.ca_pem}, {"CertificateArn": ARN})
    acm.ok("import_certificate", {"CertificateArn": ARN}, import_params(mat, arn=ARN))
    acm.ok("list_tags_for_certificate", {}, {"CertificateArn": ARN})
    acm.error("add_tags_to_certificate", "ValidationException", "Tag key contains invalid characters",
              {"CertificateArn": ARN, "Tags": tag_list(mat.identity())})
    with pytest.raises(AwsError) as caught:
        certificate(acm, mat).run(False)
    text = str(caught.value)
    assert "ValidationException" in text
    assert "add_tags_to_certificate" in text
    assert "Tag key contains invalid characters" in text
    acm.stubber.assert_no_pending_responses()


def test_user_tags_are_purged_and_added(acm, mat):
    """tags given with purge_tags: foreign tags removed, wanted ones added, identity tags kept."""
    mat.record_arn(tags=dict(mat.identity(), Old="1"))
    remote = dict(mat.identity(), Old="1")
    acm.ok("get_certificate", {"Certificate": mat.leaf_pem, "CertificateChain": mat.ca_pem}, {"CertificateArn": ARN})
    acm.ok("list_tags_for_certificate", {"Tags": tag_list(remote)}, {"CertificateArn": ARN})
    acm.ok("remove_tags_from_certificate", {}, {"CertificateArn": ARN, "Tags": [{"Key": "Old", "Value": "1"}]})
    acm.ok("add_tags_to_certificate", {}, {"CertificateArn": ARN, "Tags": [{"Key": "Project", "Value": "vpn"}]})
    result = certificate(acm, mat, tags={"Project": "vpn"}).run(False)
    acm.stubber.assert_no_pending_responses()
    assert result["action"] == "unchanged"
    assert result["changed"] is True
    assert result["tags"] == dict(mat.identity(), Project="vpn")
    assert mat.recorded()["tags"] == dict(mat.identity(), Project="vpn")


# -- finding ---------------------------------------------------------------------------------------
def test_stale_record_falls_back_to_tags_then_imports(acm, mat):
    mat.record_arn(arn=OTHER_ARN)
    acm.error("get_certificate", "ResourceNotFoundException", "Could not find certificate", {"CertificateArn": OTHER_ARN})
    acm.ok("list_certificates", {"CertificateSummaryList": [
        # another domain: its tags must not be read (an unqueued call fails the test)
        {"CertificateArn": "arn:aws:acm:eu-west-1:123456789012:certificate/00000000-0000-0000-0000-000000000001",
         "DomainName": "www.example.com"},
        # the same domain, but another PKI's CA
        {"CertificateArn": ARN, "DomainName": "server"},
    ]}, LIST_PARAMS)
    acm.ok("list_tags_for_certificate", {"Tags": [{"Key": TAG_NAME, "Value": "server"}, {"Key": TAG_CA, "Value": "0" * 64}]},
           {"CertificateArn": ARN})
    acm.ok("import_certificate", {"CertificateArn": NEW_ARN}, import_params(mat, tags=mat.identity()))
    result = certificate(acm, mat).run(False)
    acm.stubber.assert_no_pending_responses()
    assert acm.operations == ["GetCertificate", "ListCertificates", "ListTagsForCertificate", "ImportCertificate"]
    assert result["action"] == "imported"
    assert result["certificate_arn"] == NEW_ARN
    assert result["api_calls"] == {"read": 3, "write": 1}
    assert mat.recorded() == {"arn": NEW_ARN, "tags": mat.identity()}


def test_stale_record_found_again_by_tags(acm, mat):
    mat.record_arn(arn=OTHER_ARN)
    acm.error("get_certificate", "ResourceNotFoundException", "Could not find certificate", {"CertificateArn": OTHER_ARN})
    acm.ok("list_certificates", {"CertificateSummaryList": [{"CertificateArn": ARN, "DomainName": "server"}]}, LIST_PARAMS)
    acm.ok("list_tags_for_certificate", {"Tags": tag_list(mat.identity())}, {"CertificateArn": ARN})
    acm.ok("get_certificate", {"Certificate": mat.leaf_pem, "CertificateChain": mat.ca_pem}, {"CertificateArn": ARN})
    acm.ok("list_tags_for_certificate", {"Tags": tag_list(mat.identity())}, {"CertificateArn": ARN})
    result = certificate(acm, mat).run(False)
    acm.stubber.assert_no_pending_responses()
    assert result["action"] == "unchanged"
    assert result["changed"] is False
    assert acm.writes() == []
    assert mat.recorded() == {"arn": ARN, "tags": mat.identity()}


def test_explicit_arn_that_does_not_exist(acm, mat):
    acm.error("get_certificate", "ResourceNotFoundException", "Could not find certificate", {"CertificateArn": OTHER_ARN})
    cert = certificate(acm, mat, certificate_arn=OTHER_ARN)
    with pytest.raises(PkiError) as caught:
        cert.run(False)
    assert "certificate_arn %s does not exist in %s" % (OTHER_ARN, REGION) in str(caught.value)
    acm.stubber.assert_no_pending_responses()
    assert acm.operations == ["GetCertificate"]
    assert cert.calls == {"read": 1, "write": 0}
    assert mat.recorded() is None


def test_other_get_certificate_errors_are_not_taken_for_absence(acm, mat):
    mat.record_arn()
    acm.error("get_certificate", "AccessDeniedException", "not authorized to perform: acm:GetCertificate", {"CertificateArn": ARN})
    with pytest.raises(AwsError) as caught:
        certificate(acm, mat).run(False)
    assert "AccessDeniedException" in str(caught.value)
    assert "get_certificate" in str(caught.value)
    assert acm.operations == ["GetCertificate"]


def test_endpoint_appending_its_own_root_is_unchanged(acm, mat, other_ca):
    extra_root = to_pem(other_ca[0]).decode()
    acm.ok("get_certificate", {"Certificate": mat.leaf_pem, "CertificateChain": mat.ca_pem + extra_root}, {"CertificateArn": ARN})
    acm.ok("list_tags_for_certificate", {"Tags": tag_list(mat.identity())}, {"CertificateArn": ARN})
    result = certificate(acm, mat, certificate_arn=ARN).run(False)
    acm.stubber.assert_no_pending_responses()
    assert result["action"] == "unchanged"
    assert result["changed"] is False
    assert acm.writes() == []
    assert result["api_calls"] == {"read": 2, "write": 0}


def test_different_chain_prefix_is_reimported(acm, mat, other_ca):
    other = to_pem(other_ca[0]).decode()
    acm.ok("get_certificate", {"Certificate": mat.leaf_pem, "CertificateChain": other + mat.ca_pem}, {"CertificateArn": ARN})
    acm.ok("import_certificate", {"CertificateArn": ARN}, import_params(mat, arn=ARN))
    acm.ok("list_tags_for_certificate", {"Tags": tag_list(mat.identity())}, {"CertificateArn": ARN})
    result = certificate(acm, mat, certificate_arn=ARN).run(False)
    acm.stubber.assert_no_pending_responses()
    assert result["action"] == "reimported"
    assert acm.writes() == ["ImportCertificate"]


def test_noop_is_one_read(acm, mat, helpers):
    mat.record_arn()
    before = helpers.snapshot(mat.root)
    acm.ok("get_certificate", {"Certificate": mat.leaf_pem, "CertificateChain": mat.ca_pem}, {"CertificateArn": ARN})
    result = certificate(acm, mat).run(False)
    acm.stubber.assert_no_pending_responses()
    assert acm.operations == ["GetCertificate"]
    assert result["api_calls"] == {"read": 1, "write": 0}
    assert result["action"] == "unchanged"
    assert result["changed"] is False
    assert result["certificate_arn"] == ARN
    assert result["tags"] == mat.identity()
    assert helpers.snapshot(mat.root) == before


def test_reimport_cannot_change_key_size(acm, mat, rsa2048_key):
    remote = to_pem(hand_made_leaf(mat.ca_cert, mat.ca_key, rsa2048_key)).decode()
    mat.record_arn()
    acm.ok("get_certificate", {"Certificate": remote, "CertificateChain": mat.ca_pem}, {"CertificateArn": ARN})
    cert = certificate(acm, mat)
    with pytest.raises(PkiError) as caught:
        cert.run(False)
    text = str(caught.value)
    assert "%s holds a RSA 2048 certificate; the new one has a RSA 1024 key" % ARN in text
    assert "cannot change the key type or size" in text
    acm.stubber.assert_no_pending_responses()
    assert acm.writes() == []
    assert cert.calls == {"read": 1, "write": 0}


# -- check mode ----------------------------------------------------------------------------------------
def test_check_mode_would_import(acm, mat, helpers):
    before = helpers.snapshot(mat.root)
    acm.ok("list_certificates", {"CertificateSummaryList": []}, LIST_PARAMS)
    result = certificate(acm, mat).run(True)
    acm.stubber.assert_no_pending_responses()
    assert result["action"] == "imported"
    assert result["changed"] is True
    assert result["certificate_arn"] is None
    assert result["diff"]["after"]["certificate_arn"] == "(new)"
    assert acm.writes() == []
    assert result["api_calls"] == {"read": 1, "write": 0}
    assert helpers.snapshot(mat.root) == before


def test_check_mode_would_reimport(acm, mat, helpers):
    mat.record_arn()
    before = helpers.snapshot(mat.root)
    acm.ok("get_certificate", {"Certificate": renewed_leaf_pem(mat), "CertificateChain": mat.ca_pem}, {"CertificateArn": ARN})
    acm.ok("list_tags_for_certificate", {}, {"CertificateArn": ARN})
    result = certificate(acm, mat).run(True)
    acm.stubber.assert_no_pending_responses()
    assert result["action"] == "reimported"
    assert result["changed"] is True
    assert result["certificate_arn"] == ARN
    assert acm.writes() == []
    assert helpers.snapshot(mat.root) == before


def test_check_mode_would_delete(acm, mat, helpers):
    mat.record_arn()
    before = helpers.snapshot(mat.root)
    acm.ok("get_certificate", {"Certificate": mat.leaf_pem, "CertificateChain": mat.ca_pem}, {"CertificateArn": ARN})
    result = certificate(acm, mat, local=None, state="absent").run(True)
    acm.stubber.assert_no_pending_responses()
    assert result["action"] == "deleted"
    assert result["changed"] is True
    assert acm.writes() == []
    assert helpers.snapshot(mat.root) == before


# -- state absent ----------------------------------------------------------------------------------------
def test_absent_deletes_the_recorded_arn(acm, mat):
    mat.record_arn()
    mat.record.put("us-east-1", "server", {"arn": OTHER_ARN, "tags": {}})
    acm.ok("get_certificate", {"Certificate": mat.leaf_pem, "CertificateChain": mat.ca_pem}, {"CertificateArn": ARN})
    acm.ok("delete_certificate", {}, {"CertificateArn": ARN})
    result = certificate(acm, mat, local=None, state="absent").run(False)
    acm.stubber.assert_no_pending_responses()
    assert result["action"] == "deleted"
    assert result["changed"] is True
    assert result["certificate_arn"] == ARN
    assert result["api_calls"] == {"read": 1, "write": 1}
    assert mat.recorded() is None
    # only this region's entry goes
    assert mat.record.get("us-east-1", "server") == {"arn": OTHER_ARN, "tags": {}}


def test_absent_without_record_or_arn_calls_nothing(acm, mat):
    result = certificate(acm, mat, local=None, state="absent").run(False)
    assert acm.operations == []
    assert result["action"] == "unchanged"
    assert result["changed"] is False
    assert result["api_calls"] == {"read": 0, "write": 0}
    assert len(result["warnings"]) == 1
    assert "no ARN recorded for server in eu-west-1" in result["warnings"][0]
    assert "certificate_arn" in result["warnings"][0]


def test_absent_with_explicit_arn_already_deleted_is_unchanged(acm, mat):
    """state=absent is idempotent: a second run, once the ARN is gone, changes nothing and does not fail.

    AcmCertificate._absent handles "ARN not found" (unchanged, no warning when
    certificate_arn was given), but _find raises 'certificate_arn ... does not
    exist ... leave certificate_arn unset to import a new certificate' first.
    """
    acm.error("get_certificate", "ResourceNotFoundException", "Could not find certificate", {"CertificateArn": OTHER_ARN})
    result = certificate(acm, mat, local=None, state="absent", certificate_arn=OTHER_ARN).run(False)
    assert result["action"] == "unchanged"
    assert result["changed"] is False
    assert result["warnings"] == []
    assert acm.writes() == []


# -- refusals before any API call ----------------------------------------------------------------------------
def refused(acm, mat, certificate_path, key_path, chain_path, expected, passphrase=None, cert_type="server"):
    """Run what the module runs (LocalCertificate, then AcmCertificate); it must fail before any call."""
    with pytest.raises(PkiError) as caught:
        local = LocalCertificate(certificate_path, key_path, chain_path, passphrase, cert_type)
        AcmCertificate(acm.client, "server", mat.record, local=local).run(False)
    for text in expected:
        assert text in str(caught.value), str(caught.value)
    assert acm.operations == []
    assert mat.recorded() is None
    return str(caught.value)


def test_key_not_matching_the_certificate(acm, mat, helpers):
    helpers.issue(mat.store, "other", "server")
    refused(acm, mat, mat.cert, mat.store.key("other"), mat.chain,
            ["private_key does not belong to certificate"])


def test_rsa_4096_certificate(acm, mat, rsa4096_key):
    cert = mat.write("big.crt", to_pem(hand_made_leaf(mat.ca_cert, mat.ca_key, rsa4096_key)))
    key = mat.write("big.key", key_to_pem(rsa4096_key))
    refused(acm, mat, cert, key, mat.chain, ["certificate has a RSA 4096 key", "RSA 1024 or 2048 only"])


def test_certificate_without_cn(acm, mat):
    key = generate_key(1024)
    cert = mat.write("nocn.crt", to_pem(hand_made_leaf(mat.ca_cert, mat.ca_key, key, common_name=None)))
    refused(acm, mat, cert, mat.write("nocn.key", key_to_pem(key)), mat.chain,
            ["certificate has no CN in its subject"])


def test_server_certificate_without_dns_san(acm, mat):
    key = x509_inspect.load_private_key(mat.key)[0]
    spec = LeafSpec("server", "server", ["IP:10.0.0.1"], "server", 1024, 30, "sha256")
    cert = mat.write("nodns.crt", to_pem(sign_leaf(mat.ca_cert, mat.ca_key, key.public_key(), spec, x509.random_serial_number())))
    refused(acm, mat, cert, mat.key, mat.chain, ["has no DNS entry", "reject a server certificate without a domain"])


def test_client_certificate_given_as_server(acm, mat, helpers):
    helpers.issue(mat.store, "client1", "client", subject_alt_names=["DNS:client1"])
    cert, key = mat.store.cert("client1"), mat.store.key("client1")
    refused(acm, mat, cert, key, mat.chain, ["no extendedKeyUsage serverAuth", "type=server"])
    # the same files pass as what they are
    assert LocalCertificate(cert, key, mat.chain, None, "client").domain == "client1"


def test_certificate_not_yet_valid(acm, mat):
    key = x509_inspect.load_private_key(mat.key)[0]
    start = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=2)
    cert = mat.write("future.crt", to_pem(hand_made_leaf(mat.ca_cert, mat.ca_key, key, not_before=start,
                                                         not_after=start + datetime.timedelta(days=30))))
    refused(acm, mat, cert, mat.key, mat.chain, ["certificate is not valid before", "valid now"])


def test_certificate_expired(acm, mat):
    key = x509_inspect.load_private_key(mat.key)[0]
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = mat.write("expired.crt", to_pem(hand_made_leaf(mat.ca_cert, mat.ca_key, key, not_before=now - datetime.timedelta(days=60),
                                                          not_after=now - datetime.timedelta(days=1))))
    refused(acm, mat, cert, mat.key, mat.chain, ["certificate expired on", "renew it"])


def test_chain_of_another_ca(acm, mat, other_ca):
    chain = mat.write("other-ca.crt", to_pem(other_ca[0]))
    refused(acm, mat, mat.cert, mat.key, chain,
            ["certificate_chain does not sign the certificate", "CN=server is not issued by CN=Another CA"])


@pytest.mark.parametrize("content", [b"", b"this is not PEM\n"])
def test_empty_or_garbage_chain(acm, mat, content):
    chain = mat.write("chain.pem", content)
    refused(acm, mat, mat.cert, mat.key, chain, ["certificate_chain %s holds no readable PEM certificate" % chain])


def test_encrypted_key_needs_its_passphrase(acm, mat):
    key = x509_inspect.load_private_key(mat.key)[0]
    encrypted = mat.write("server-enc.key", key_to_pem(key, "s3cret"))
    refused(acm, mat, mat.cert, encrypted, mat.chain, ["is encrypted", "private_key_passphrase"])
    refused(acm, mat, mat.cert, encrypted, mat.chain, ["does not open", "private_key_passphrase"], passphrase="wrong")
    local = LocalCertificate(mat.cert, encrypted, mat.chain, "s3cret", "server")
    assert local.key_pem.startswith(b"-----BEGIN PRIVATE KEY-----")
    assert b"ENCRYPTED" not in local.key_pem
    assert x509_inspect.key_matches(serialization.load_pem_private_key(local.key_pem, None), local.leaf)


def test_clear_key_is_sent_as_it_is_on_disk(mat):
    local = LocalCertificate(mat.cert, mat.key, mat.chain, "ignored", "server")
    with open(mat.key, "rb") as handle:
        assert local.key_pem == handle.read()
    assert local.domain == "server"
    assert local.facts()["domain"] == "server"


def test_key_pem_too_large():
    """check_importable measures the PEM that would be sent: ACM takes at most 5,120 bytes."""
    key = generate_key(1024)
    ca_key = generate_key(1024)
    ca = build_ca(ca_key, "Size CA", 30, "sha256")
    leaf = hand_made_leaf(ca, ca_key, key)
    now = datetime.datetime.now(datetime.timezone.utc)
    pem = key_to_pem(key)
    check_importable(leaf, key, pem + b"\n" * (ACM_MAX_KEY_BYTES - len(pem)), [ca], "server", now)
    padded = pem + b"\n" * (ACM_MAX_KEY_BYTES + 1 - len(pem))
    with pytest.raises(PkiError) as caught:
        check_importable(leaf, key, padded, [ca], "server", now)
    assert "private_key is %d bytes of PEM; ACM accepts at most %d" % (ACM_MAX_KEY_BYTES + 1, ACM_MAX_KEY_BYTES) in str(caught.value)


# -- what is imported: certificates of a PKI by name, or own files (acm_local, from_params) ----------------
def options(**given):
    """vpn_acm_import's options as the module hands them over (unset ones None)."""
    params = dict.fromkeys(("names", "certificates", "name", "certificate", "private_key", "private_key_passphrase", "certificate_arn",
                            "certificate_chain", "pki_dir", "tags"))
    params.update(state="present", type="server", purge_tags=True, region=REGION)
    params.update(given)
    return params


def test_a_name_of_the_pki_is_its_certificate_key_and_ca(acm, mat, helpers):
    helpers.issue(mat.store, ["c1", "c2"], "client")
    backend = from_params(options(pki_dir=mat.root, names=["c1", "c2", "c1"], type="client"), False, lambda: acm.client)
    assert isinstance(backend, AcmCertificateList)
    assert [item.name for item in backend.certificates] == ["c1", "c2"]
    for item in backend.certificates:
        assert item.local.leaf_pem == helpers.read(mat.store.cert(item.name))
        assert item.local.key_pem == helpers.read(mat.store.key(item.name))
        assert item.local.chain_pem == helpers.read(mat.store.ca_cert)
        assert item.record is backend.record and item.record.path == os.path.join(mat.root, RECORD_FILE)
    single = from_params(options(pki_dir=mat.root, name="server"), False, lambda: acm.client)
    assert isinstance(single, AcmCertificate) and single.local.leaf_pem == helpers.read(mat.cert)
    assert acm.operations == []


def test_own_files_keep_their_paths_and_name_their_record(acm, mat, tmp_path):
    own = str(tmp_path / "own")
    os.makedirs(own)
    backend = from_params(options(certificate=mat.cert, private_key=mat.key, certificate_chain=mat.chain, name="vpn", pki_dir=own),
                          False, lambda: acm.client)
    assert (backend.name, backend.record.path) == ("vpn", os.path.join(own, RECORD_FILE))
    assert backend.local.leaf_pem == mat.local().leaf_pem


@pytest.mark.parametrize("given, expected", [
    (dict(certificate="issued/server.crt", private_key="private/server.key", certificate_chain="ca.crt", pki_dir="."), "need name and pki_dir"),
    (dict(certificate="issued/server.crt", private_key="private/server.key", certificate_chain="ca.crt", name="server"), "need name and pki_dir"),
    (dict(certificate="issued/server.crt", private_key="private/server.key"), "certificate_chain is required"),
    (dict(certificate="issued/server.crt", certificate_chain="ca.crt"), "needs certificate and private_key"),
    (dict(name="server"), "needs pki_dir and name"),
    (dict(pki_dir="."), "needs pki_dir and name"),
    (dict(pki_dir=".", name="../server"), "'../server'"),
    (dict(pki_dir=".", names=[]), "names is empty"),
    (dict(pki_dir=".", certificates=[]), "certificates is empty"),
    (dict(pki_dir=".", certificates=[{"name": "a", "certificate_arn": None, "certificate": None, "private_key": None,
                                      "private_key_passphrase": None}] * 2), "names a twice"),
    (dict(state="absent", name="server"), "state=absent needs certificate_arn, or name and pki_dir"),
])
def test_each_mode_names_what_it_lacks(acm, mat, given, expected):
    """No name is guessed from a path: a request without its name or pki_dir fails before any API call."""
    for option in ("certificate", "private_key", "certificate_chain", "pki_dir"):
        if given.get(option):
            given[option] = os.path.normpath(os.path.join(mat.root, given[option]))
    with pytest.raises(PkiError) as caught:
        from_params(options(**given), False, lambda: pytest.fail("an AWS client before the request was checked"))
    assert expected in str(caught.value)
    assert acm.operations == []


def test_check_mode_before_the_certificate_is_made(acm, mat, tmp_path):
    """pending.py's rule: in check mode a certificate file not there yet is one an earlier task would make;
    it is reported as imported, with no file read and no API call. A real run refuses it, naming the file."""
    empty = str(tmp_path / "not-built-yet")
    backend = from_params(options(pki_dir=empty, names=["c1", "c2"], type="client"), True, lambda: acm.client)
    result = backend.run(True)
    assert result["changed"] is True
    assert dict((name, item["action"]) for name, item in result["certificates"].items()) == {"c1": "imported", "c2": "imported"}
    assert result["certificates"]["c1"]["serial"] is None and result["api_calls"] == {"read": 0, "write": 0}
    assert acm.operations == [] and not os.path.exists(empty)
    single = from_params(options(pki_dir=mat.root, name="not-issued"), True, lambda: acm.client).run(True)
    assert (single["action"], single["certificate_arn"], single["domain"]) == ("imported", None, None)
    with pytest.raises(PkiError) as caught:
        from_params(options(pki_dir=mat.root, name="not-issued"), False, lambda: acm.client)
    assert mat.store.cert("not-issued") in str(caught.value) and "vpn_cert" in str(caught.value)
    assert acm.operations == []
