# -*- coding: utf-8 -*-
# Copyright: clientvpn.pki contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Client-side envelope encryption of the PKI's private keys before they go to S3.

KMS ``GenerateDataKey`` (AES_256) gives a data key twice, plain and encrypted by the KMS
key; a file is encrypted in memory with AES-256-GCM under the plain data key, and the
object keeps only the encrypted data key. The object alone reveals nothing: reading it
takes ``kms:Decrypt`` with the same encryption context, a permission of its own that
CloudTrail logs with that context.

The encryption context names the bucket, the prefix and the scope (``ca-key``: the CA
key; ``private-keys``: every other private key), so an IAM condition can tell the CA key
from the others. The GCM associated data adds the file's path: an object copied to
another path, prefix or bucket does not decrypt. One data key per scope and push, not
per file: a push of many keys makes one ``GenerateDataKey`` call, and a pull one
``Decrypt`` per data key, not per file.

The object (``<path>.kms``) is JSON::

    {"format": "clientvpn.pki kms-envelope", "version": 1, "scope": "ca-key",
     "kms_key_id": "<key ARN>", "encrypted_data_key": "<base64>",
     "nonce": "<base64, 12 bytes>", "ciphertext": "<base64, AES-GCM with its tag>"}
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import threading

try:
    from botocore.exceptions import BotoCoreError, ClientError
    from botocore.parsers import ResponseParserError
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
except ImportError:  # pragma: no cover - reported by the module (cryptography, boto3)
    pass

from ansible_collections.clientvpn.pki.plugins.module_utils.aws import describe_error
from ansible_collections.clientvpn.pki.plugins.module_utils.errors import PkiError

FORMAT = "clientvpn.pki kms-envelope"
VERSION = 1
SUFFIX = ".kms"
SCOPE_CA_KEY = "ca-key"
SCOPE_PRIVATE_KEYS = "private-keys"
SCOPES = (SCOPE_CA_KEY, SCOPE_PRIVATE_KEYS)
NONCE_BYTES = 12
_FIELDS = ("format", "version", "scope", "kms_key_id", "encrypted_data_key", "nonce", "ciphertext")

# KMS error code -> what it means for kms_key_id, and the fix
_KMS_HINTS = {
    "NotFoundException": "no such key in this account and region. Give the key's ARN, key ID or alias/<name>, in the region of `region`",
    "DisabledException": "the key is disabled. Enable it (aws kms enable-key) or give another kms_key_id",
    "KMSInvalidStateException": "the key is not usable (pending deletion or import). Cancel its deletion or give another kms_key_id",
    "InvalidKeyUsageException": "the key is not a symmetric ENCRYPT_DECRYPT key. Give a symmetric encryption key",
    "IncorrectKeyException": "the object was encrypted under another key than kms_key_id. Give the key it was pushed with, or leave kms_key_id unset to pull",
    "InvalidCiphertextException": "the encrypted data key does not belong to this bucket and prefix (the object was copied or altered)",
    "AccessDeniedException": "the caller may not use this key. Grant kms:GenerateDataKey (push) and kms:Decrypt (pull) on it, with the "
                             "encryption context condition of docs/pki-in-s3.md, in the key policy or an IAM policy",
}


def encryption_context(bucket, prefix, scope):
    return {"clientvpn.pki:bucket": bucket, "clientvpn.pki:prefix": prefix, "clientvpn.pki:scope": scope}


def associated_data(context, path):
    """What GCM authenticates besides the ciphertext: the context and the file's path."""
    return json.dumps(dict(context, **{"clientvpn.pki:path": path}), sort_keys=True, separators=(",", ":")).encode("utf-8")


def _b64(data):
    return base64.b64encode(data).decode("ascii")


def seal(data_key, kms_key_id, encrypted_data_key, context, path, plaintext):
    """The object's bytes: ``plaintext`` encrypted under ``data_key`` (plain, 32 bytes)."""
    nonce = os.urandom(NONCE_BYTES)
    ciphertext = AESGCM(data_key).encrypt(nonce, plaintext, associated_data(context, path))
    envelope = {
        "format": FORMAT, "version": VERSION, "scope": context["clientvpn.pki:scope"], "kms_key_id": kms_key_id,
        "encrypted_data_key": _b64(encrypted_data_key), "nonce": _b64(nonce), "ciphertext": _b64(ciphertext),
    }
    return (json.dumps(envelope, sort_keys=True, indent=1) + "\n").encode("ascii")


def parse(blob, where):
    """The envelope's fields (binary ones decoded), or a PkiError naming ``where`` (the object)."""
    try:
        envelope = json.loads(blob.decode("ascii"))
        if not isinstance(envelope, dict) or envelope.get("format") != FORMAT or set(envelope) != set(_FIELDS):
            raise ValueError("not a %s" % FORMAT)
        if envelope["version"] != VERSION or envelope["scope"] not in SCOPES:
            raise ValueError("version %r, scope %r" % (envelope["version"], envelope["scope"]))
        for field in ("encrypted_data_key", "nonce", "ciphertext"):
            envelope[field] = base64.b64decode(envelope[field], validate=True)
    except (ValueError, UnicodeDecodeError, binascii.Error, TypeError) as exc:
        raise PkiError(
            "%s is not an encrypted key this collection wrote (%s). Objects ending in %s hold private keys in the "
            "format of docs/pki-in-s3.md; restore the object from a version of the bucket, or point prefix at the PKI." % (where, exc, SUFFIX)
        )
    return envelope


def unseal(envelope, data_key, context, path, where):
    try:
        return AESGCM(data_key).decrypt(envelope["nonce"], envelope["ciphertext"], associated_data(context, path))
    except (InvalidTag, ValueError):
        raise PkiError(
            "%s does not decrypt for path %s in this bucket and prefix: it was copied from elsewhere or altered. "
            "Restore it from a version of the bucket. Nothing was written." % (where, path)
        )


class Envelopes(object):
    """The KMS side: a data key made once per scope, an encrypted data key decrypted once.

    ``kms_key_id`` encrypts (push); when set, decrypting also requires that key (pull).
    """

    def __init__(self, connect_kms, kms_key_id, bucket, prefix):
        self.connect = connect_kms
        self.kms_key_id = kms_key_id
        self.bucket = bucket
        self.prefix = prefix
        self._data_keys = {}  # scope -> (plain, encrypted, key ARN)
        self._opened = {}  # (scope, encrypted data key) -> plain
        self._opening = threading.Lock()

    def context(self, scope):
        return encryption_context(self.bucket, self.prefix, scope)

    def prepare(self, scopes):
        """Make the data keys ``scopes`` need now, so a KMS refusal comes before any upload."""
        for scope in sorted(set(scopes)):
            if scope not in self._data_keys:
                answer = self._kms("GenerateDataKey", "generate_data_key", KeyId=self.kms_key_id, KeySpec="AES_256",
                                   EncryptionContext=self.context(scope))
                self._data_keys[scope] = (answer["Plaintext"], answer["CiphertextBlob"], answer["KeyId"])

    def encrypt(self, scope, path, plaintext):
        self.prepare([scope])
        data_key, encrypted_data_key, key_arn = self._data_keys[scope]
        return seal(data_key, key_arn, encrypted_data_key, self.context(scope), path, plaintext)

    def decrypt(self, path, blob, where):
        envelope = parse(blob, where)
        scope = envelope["scope"]
        cache_key = (scope, envelope["encrypted_data_key"])
        with self._opening:  # a pull downloads in threads: one Decrypt per data key, not one per thread
            if cache_key not in self._opened:
                answer = self._kms("Decrypt", "decrypt", CiphertextBlob=envelope["encrypted_data_key"], EncryptionContext=self.context(scope),
                                   KeyId=self.kms_key_id or envelope["kms_key_id"], where=where)
                self._opened[cache_key] = answer["Plaintext"]
        return unseal(envelope, self._opened[cache_key], self.context(scope), path, where)

    def _kms(self, operation, method, where=None, **kwargs):
        try:
            return getattr(self.connect(), method)(**kwargs)
        except ClientError as exc:
            raise self._explain(exc, operation, where)
        except (BotoCoreError, ResponseParserError) as exc:
            raise describe_error(exc, "KMS %s" % operation)

    def _explain(self, exc, operation, where):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if code in ("AccessDenied", "403") or status == 403:
            code = "AccessDeniedException"
        hint = _KMS_HINTS.get(code)
        if hint is None:
            return describe_error(exc, "KMS %s with kms_key_id=%r" % (operation, self.kms_key_id))
        subject = "kms_key_id=%r" % self.kms_key_id if self.kms_key_id else "the key of %s" % where
        return PkiError("KMS %s%s failed (%s): %s: %s. Nothing was written." % (
            operation, " of %s" % where if where else "", code, subject, hint))
