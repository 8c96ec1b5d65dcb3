# -*- coding: utf-8 -*-
# Copyright: clientvpn.pki contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""One S3 prefix seen as a folder: object keys from relative names, the listing, reads,
and the conditional writes that the lock and the compare-and-swap push rely on.

A failed condition (HTTP 412, 409 for a conflicting conditional write, or a conditional
write on an object that is gone) is ``Conflict``, for the caller to decide about. Every
other botocore error becomes a PkiError that names the option at fault (bucket, prefix)
or the permission missing. Each HTTP request is counted, retries included
(``RequestCounter``): what a run cost is in the module's result.
"""

from __future__ import annotations

import collections
import posixpath
import sys

try:
    import botocore
    from botocore.exceptions import BotoCoreError, ClientError
    from botocore.parsers import ResponseParserError
except ImportError:  # pragma: no cover - reported by the module (boto3)
    pass

from ansible_collections.clientvpn.pki.plugins.module_utils.aws import describe_error
from ansible_collections.clientvpn.pki.plugins.module_utils.errors import PkiError

ObjectInfo = collections.namedtuple("ObjectInfo", "etag size")
CONFLICT_CODES = ("PreconditionFailed", "ConditionalRequestConflict", "412", "409")
MISSING_CODES = ("NoSuchKey", "404", "NotFound")
DENIED_CODES = ("AccessDenied", "AccessDeniedException", "403")
# boto3 method -> (what it does, for messages; the IAM action it needs)
_OPERATIONS = {
    "list_objects_v2": ("list", "s3:ListBucket on arn:aws:s3:::{bucket}"),
    "get_object": ("read", "s3:GetObject on arn:aws:s3:::{bucket}/{prefix}*"),
    "put_object": ("write", "s3:PutObject on arn:aws:s3:::{bucket}/{prefix}*"),
    "delete_object": ("delete", "s3:DeleteObject and s3:GetObject (a conditional delete needs both) on arn:aws:s3:::{bucket}/{prefix}*"),
}


class Conflict(Exception):
    """A conditional request whose condition did not hold: the object changed, exists already, or is gone."""

    def __init__(self, name, code):
        super(Conflict, self).__init__("%s: %s" % (name, code))
        self.name = name
        self.code = code


class RequestCounter(object):
    """HTTP requests per service and operation, counted at botocore's ``before-send`` (every attempt)."""

    def __init__(self):
        self.counts = {}

    def watch(self, client):
        # a unique_id: watching the same client again does not count its requests twice
        client.meta.events.register("before-send", self._count, unique_id="clientvpn.pki.request-counter")
        return client

    def _count(self, event_name=None, **kwargs):
        parts = (event_name or "").split(".")
        if len(parts) >= 3:
            service = self.counts.setdefault(parts[1], {"total": 0})
            service["total"] += 1
            service[parts[2]] = service.get(parts[2], 0) + 1

    def summary(self):
        return dict((service, dict(operations)) for service, operations in self.counts.items())


def missing_conditional_writes(client):
    """The conditional request parameters this botocore's S3 model lacks (an old botocore would refuse them)."""
    model = client.meta.service_model
    wanted = (("PutObject", "IfNoneMatch"), ("PutObject", "IfMatch"), ("DeleteObject", "IfMatch"))
    return ["%s %s" % pair for pair in wanted if pair[1] not in model.operation_model(pair[0]).input_shape.members]


def botocore_version():
    return getattr(botocore, "__version__", "unknown")


def normalize_prefix(prefix):
    """``prefix`` without its slashes at either end; refused when it holds empty, . or .. parts."""
    stripped = (prefix or "").strip("/")
    if stripped and any(part in ("", ".", "..") for part in stripped.split("/")):
        raise PkiError("prefix=%r has an empty, '.' or '..' part. Give a plain key prefix such as 'clientvpn/pki'." % prefix)
    return stripped


def safe_name(name):
    """Whether an object's name (relative to the prefix) is a plain relative path: no '..', no absolute path."""
    if not name or name.startswith("/") or "\\" in name or "\0" in name:
        return False
    body = name[:-1] if name.endswith("/") else name
    return bool(body) and posixpath.normpath(body) == body and not body.startswith("../") and body != ".."


class S3Prefix(object):
    """The objects under ``s3://bucket/prefix/``, named by their path relative to the prefix."""

    def __init__(self, connect_s3, bucket, prefix, counter):
        if not bucket:
            raise PkiError("bucket is empty. Give the name of the S3 bucket that holds the PKI.")
        self._connect = connect_s3
        self._client = None
        self.bucket = bucket
        self.prefix = normalize_prefix(prefix)
        self.counter = counter

    @property
    def url(self):
        return "s3://%s/%s" % (self.bucket, self.prefix + "/" if self.prefix else "")

    def key(self, name):
        return "%s/%s" % (self.prefix, name) if self.prefix else name

    def client(self):
        if self._client is None:
            client = self._connect()
            missing = missing_conditional_writes(client)
            if missing:
                raise PkiError(
                    "this botocore (%s) does not know the S3 conditional writes the lock and the push rely on (%s). Upgrade boto3 and "
                    "botocore on the managed host: %s -m pip install -U boto3 botocore (they came with the AWS SDK release of 2024-11-25)."
                    % (botocore_version(), ", ".join(missing), sys.executable)
                )
            self._client = self.counter.watch(client)
        return self._client

    def list(self, max_keys=None):
        """{name: ObjectInfo} of every object under the prefix (or of the first page, with ``max_keys``)."""
        found, token = {}, None
        base = self.key("")
        while True:
            kwargs = dict(Bucket=self.bucket, Prefix=base)
            if token:
                kwargs["ContinuationToken"] = token
            if max_keys:
                kwargs["MaxKeys"] = max_keys
            answer = self._call("list_objects_v2", "", **kwargs)
            for item in answer.get("Contents", []):
                found[item["Key"][len(base):]] = ObjectInfo(item["ETag"], item["Size"])
            token = answer.get("NextContinuationToken")
            if max_keys or not answer.get("IsTruncated") or not token:
                return found

    def get(self, name):
        """(bytes, ETag, the answer's metadata) of one object, or None when it does not exist."""
        try:
            answer = self._call("get_object", name, Bucket=self.bucket, Key=self.key(name))
            return self._read(answer, name), answer["ETag"], answer
        except Conflict as exc:
            if exc.code in MISSING_CODES:
                return None
            raise

    def put(self, name, data, if_match=None, create_only=False):
        """Write one object; with ``if_match`` only over that ETag, with ``create_only`` only when absent. Its new ETag."""
        kwargs = dict(Bucket=self.bucket, Key=self.key(name), Body=data)
        if if_match:
            kwargs["IfMatch"] = if_match
        if create_only:
            kwargs["IfNoneMatch"] = "*"
        return self._call("put_object", name, conditional=bool(if_match or create_only), **kwargs)["ETag"]

    def delete(self, name, if_match=None):
        kwargs = dict(Bucket=self.bucket, Key=self.key(name))
        if if_match:
            kwargs["IfMatch"] = if_match
        self._call("delete_object", name, conditional=bool(if_match), **kwargs)

    def _read(self, answer, name):
        try:
            return answer["Body"].read()
        except (BotoCoreError, OSError) as exc:
            raise describe_error(exc, "reading %s%s" % (self.url, name))

    def _call(self, method, name, conditional=False, **kwargs):
        try:
            return getattr(self.client(), method)(**kwargs)
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in CONFLICT_CODES or (code in MISSING_CODES and (conditional or method == "get_object")):
                raise Conflict(name, code)
            raise self.explain(exc, method, name)
        except (BotoCoreError, ResponseParserError) as exc:
            raise describe_error(exc, "S3 %s of %s%s" % (_OPERATIONS[method][0], self.url, name))

    def explain(self, exc, method, name):
        """The PkiError for a ClientError: the option or permission at fault, and the fix."""
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        verb, permission = _OPERATIONS[method]
        where = self.url + name
        if code == "NoSuchBucket":
            return PkiError(
                "bucket=%r does not exist (S3 answered NoSuchBucket to a %s of %s). Create the bucket first - its versioning, "
                "encryption and policy are yours to choose (docs/pki-in-s3.md) - or correct bucket." % (self.bucket, verb, where)
            )
        if code in DENIED_CODES or status == 403:
            return PkiError(
                "S3 denied the %s of %s (%s). The caller needs %s (docs/pki-in-s3.md has the minimal policy); "
                "or bucket=%r / prefix=%r is not the one meant." % (verb, where, code, permission.format(bucket=self.bucket, prefix=self.key("")),
                                                                    self.bucket, self.prefix)
            )
        if code in ("PermanentRedirect", "AuthorizationHeaderMalformed", "IllegalLocationConstraintException"):
            region = error.get("Region") or exc.response.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get("x-amz-bucket-region")
            return PkiError("bucket=%r is in region %s, not in the one this task uses (S3 answered %s). Set region to the bucket's "
                            "(the KMS key must be in that region too)." % (self.bucket, region or "another", code))
        return describe_error(exc, "S3 %s of %s" % (verb, where))
