# -*- coding: utf-8 -*-
# Copyright: clientvpn.pki contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The envelope format of an encrypted private key in S3, and Envelopes' use of KMS.

The format is exercised with local data keys (no KMS needed to seal and open).
``botocore.stub.Stubber`` stands in for KMS only where moto cannot serve: exact
call accounting (one GenerateDataKey per scope, one Decrypt per data key) and the
errors moto does not raise (a disabled key, InvalidKeyUsage). The real KMS path
runs against moto's server in tests/system/test_pki_s3.py.
"""

from __future__ import annotations

import base64
import json
import os

import boto3
import pytest
from botocore.stub import Stubber

from ansible_collections.clientvpn.pki.plugins.module_utils.errors import PkiError
from ansible_collections.clientvpn.pki.plugins.module_utils.kms_envelope import (
    FORMAT,
    SCOPE_CA_KEY,
    SCOPE_PRIVATE_KEYS,
    Envelopes,
    encryption_context,
    parse,
    seal,
    unseal,
)

KEY_ARN = "arn:aws:kms:eu-west-1:123456789012:key/11111111-2222-3333-4444-555555555555"
PEM = b"-----BEGIN PRIVATE KEY-----\nMIIB...not a real key...\n-----END PRIVATE KEY-----\n"
CONTEXT = encryption_context("pki-bucket", "team/pki", SCOPE_CA_KEY)


def _sealed(path="private/ca.key", data_key=None):
    data_key = data_key or os.urandom(32)
    return data_key, seal(data_key, KEY_ARN, b"encrypted-data-key", CONTEXT, path, PEM)


def test_an_envelope_is_json_naming_format_scope_and_key_and_holds_no_plaintext():
    data_key, blob = _sealed()
    envelope = json.loads(blob)
    assert sorted(envelope) == ["ciphertext", "encrypted_data_key", "format", "kms_key_id", "nonce", "scope", "version"]
    assert (envelope["format"], envelope["version"], envelope["scope"], envelope["kms_key_id"]) == (FORMAT, 1, SCOPE_CA_KEY, KEY_ARN)
    assert b"PRIVATE KEY" not in blob and data_key not in blob
    assert len(base64.b64decode(envelope["nonce"])) == 12
    assert len(base64.b64decode(envelope["ciphertext"])) == len(PEM) + 16  # GCM tag appended
    assert unseal(parse(blob, "x"), data_key, CONTEXT, "private/ca.key", "x") == PEM


def test_two_seals_of_the_same_key_differ():
    data_key = os.urandom(32)
    assert _sealed(data_key=data_key)[1] != _sealed(data_key=data_key)[1]


@pytest.mark.parametrize("path, context", [
    ("private/server.key", CONTEXT),  # moved to another path
    ("private/ca.key", encryption_context("other-bucket", "team/pki", SCOPE_CA_KEY)),  # copied to another bucket
    ("private/ca.key", encryption_context("pki-bucket", "team/other", SCOPE_CA_KEY)),  # or prefix
    ("private/ca.key", encryption_context("pki-bucket", "team/pki", SCOPE_PRIVATE_KEYS)),  # or scope
])
def test_an_envelope_opens_only_at_its_own_path_bucket_prefix_and_scope(path, context):
    data_key, blob = _sealed()
    with pytest.raises(PkiError, match="does not decrypt for path %s in this bucket and prefix: it was copied" % path):
        unseal(parse(blob, "s3://b/p/x.kms"), data_key, context, path, "s3://b/p/x.kms")


def test_an_altered_ciphertext_does_not_open():
    data_key, blob = _sealed()
    envelope = json.loads(blob)
    ciphertext = bytearray(base64.b64decode(envelope["ciphertext"]))
    ciphertext[0] ^= 1
    envelope["ciphertext"] = base64.b64encode(bytes(ciphertext)).decode()
    with pytest.raises(PkiError, match="altered"):
        unseal(parse(json.dumps(envelope).encode(), "x"), data_key, CONTEXT, "private/ca.key", "x")


@pytest.mark.parametrize("blob", [
    PEM,
    b"{}",
    b"[1, 2]",
    json.dumps({"format": FORMAT, "version": 2, "scope": SCOPE_CA_KEY, "kms_key_id": KEY_ARN, "encrypted_data_key": "",
                "nonce": "", "ciphertext": ""}).encode(),
    json.dumps({"format": FORMAT, "version": 1, "scope": SCOPE_CA_KEY, "kms_key_id": KEY_ARN, "encrypted_data_key": "!!",
                "nonce": "", "ciphertext": ""}).encode(),
    b"\xff\xfe",
])
def test_what_is_not_an_envelope_is_refused_naming_the_object(blob):
    with pytest.raises(PkiError, match=r"^s3://b/p/private/ca.key.kms is not an encrypted key this collection wrote"):
        parse(blob, "s3://b/p/private/ca.key.kms")


# -- Envelopes and KMS ----------------------------------------------------------------------------
class Kms(object):
    """A real boto3 KMS client, its Stubber, and the operations asked for."""

    def __init__(self):
        self.client = boto3.client("kms", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="y")
        self.operations = []
        self.client.meta.events.register("before-parameter-build.kms", lambda model, **kwargs: self.operations.append(model.name))
        self.stubber = Stubber(self.client)


@pytest.fixture
def kms():
    stub = Kms()
    stub.stubber.activate()
    yield stub
    stub.stubber.deactivate()


def _data_key(kms, scope, key_id="alias/clientvpn-pki"):
    plain, encrypted = os.urandom(32), os.urandom(48)
    kms.stubber.add_response("generate_data_key", {"Plaintext": plain, "CiphertextBlob": encrypted, "KeyId": KEY_ARN},
                             {"KeyId": key_id, "KeySpec": "AES_256", "EncryptionContext": encryption_context("pki-bucket", "team/pki", scope)})
    return plain, encrypted


def test_one_data_key_per_scope_one_decrypt_per_data_key(kms):
    envelopes = Envelopes(lambda: kms.client, "alias/clientvpn-pki", "pki-bucket", "team/pki")
    ca_plain, ca_encrypted = _data_key(kms, SCOPE_CA_KEY)
    keys_plain, keys_encrypted = _data_key(kms, SCOPE_PRIVATE_KEYS)
    envelopes.prepare([SCOPE_PRIVATE_KEYS, SCOPE_CA_KEY, SCOPE_PRIVATE_KEYS])
    sealed = dict((path, envelopes.encrypt(scope, path, PEM + path.encode()))
                  for path, scope in (("private/ca.key", SCOPE_CA_KEY), ("private/a.key", SCOPE_PRIVATE_KEYS), ("private/b.key", SCOPE_PRIVATE_KEYS)))
    assert kms.operations == ["GenerateDataKey", "GenerateDataKey"]

    reader = Envelopes(lambda: kms.client, None, "pki-bucket", "team/pki")
    for plain, encrypted, scope in ((ca_plain, ca_encrypted, SCOPE_CA_KEY), (keys_plain, keys_encrypted, SCOPE_PRIVATE_KEYS)):
        kms.stubber.add_response("decrypt", {"Plaintext": plain, "KeyId": KEY_ARN},
                                 {"CiphertextBlob": encrypted, "KeyId": KEY_ARN, "EncryptionContext": encryption_context("pki-bucket", "team/pki", scope)})
    for path in ("private/ca.key", "private/a.key", "private/b.key"):
        assert reader.decrypt(path, sealed[path], "s3://pki-bucket/team/pki/%s.kms" % path) == PEM + path.encode()
    assert kms.operations.count("Decrypt") == 2
    kms.stubber.assert_no_pending_responses()


@pytest.mark.parametrize("code, expected", [
    ("NotFoundException", "no such key in this account and region. Give the key's ARN, key ID or alias/<name>"),
    ("DisabledException", "the key is disabled. Enable it (aws kms enable-key) or give another kms_key_id"),
    ("KMSInvalidStateException", "pending deletion"),
    ("InvalidKeyUsageException", "not a symmetric ENCRYPT_DECRYPT key"),
    ("AccessDeniedException", "Grant kms:GenerateDataKey (push) and kms:Decrypt (pull) on it"),
])
def test_kms_refusals_name_kms_key_id_and_the_fix(kms, code, expected):
    kms.stubber.add_client_error("generate_data_key", service_error_code=code, service_message="refused", http_status_code=400)
    envelopes = Envelopes(lambda: kms.client, "alias/clientvpn-pki", "pki-bucket", "team/pki")
    with pytest.raises(PkiError) as raised:
        envelopes.prepare([SCOPE_CA_KEY])
    message = str(raised.value)
    assert message.startswith("KMS GenerateDataKey failed (%s): kms_key_id='alias/clientvpn-pki': " % code)
    assert expected in message and message.endswith("Nothing was written.")


def test_a_decrypt_refused_names_the_object(kms):
    data_key, blob = _sealed()
    kms.stubber.add_client_error("decrypt", service_error_code="InvalidCiphertextException", service_message="", http_status_code=400)
    envelopes = Envelopes(lambda: kms.client, None, "pki-bucket", "team/pki")
    with pytest.raises(PkiError, match=r"^KMS Decrypt of s3://b/p/private/ca.key.kms failed \(InvalidCiphertextException\): the key of "
                                       r"s3://b/p/private/ca.key.kms: the encrypted data key does not belong to this bucket and prefix"):
        envelopes.decrypt("private/ca.key", blob, "s3://b/p/private/ca.key.kms")
