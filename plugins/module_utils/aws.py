# -*- coding: utf-8 -*-
# Copyright: clientvpn.pki contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""One boto3 client builder and one AWS error translator for every AWS module.

Connection options carry the names and environment variables amazon.aws users
know, so ``module_defaults: group/clientvpn.pki.aws`` feels familiar.
Throttling is retried by botocore's own ``standard`` retry mode, not by loops
here. Every botocore error becomes one AwsError message with the AWS code.
"""

from __future__ import annotations

import os

try:
    import boto3
    from botocore.config import Config
    from botocore.exceptions import (
        BotoCoreError,
        ClientError,
        EndpointConnectionError,
        NoCredentialsError,
        NoRegionError,
        ProfileNotFound,
    )
    # not a BotoCoreError: an HTML 5xx page from an endpoint or proxy raises it
    from botocore.parsers import ResponseParserError

    HAS_BOTO3 = True
    BOTO3_IMPORT_ERROR = None
except ImportError as exc:  # pragma: no cover - reported by the modules
    HAS_BOTO3 = False
    BOTO3_IMPORT_ERROR = exc

from ansible_collections.clientvpn.pki.plugins.module_utils.errors import PkiError
from ansible_collections.clientvpn.pki.plugins.module_utils.version import COLLECTION_NAME, COLLECTION_VERSION

USER_AGENT = "%s/%s" % (COLLECTION_NAME, COLLECTION_VERSION)
# Attempts in all (the first call included), with botocore's standard backoff.
MAX_ATTEMPTS = 5

AWS_ARGUMENT_SPEC = dict(
    region=dict(type="str", aliases=["aws_region"]),
    profile=dict(type="str", aliases=["aws_profile"]),
    access_key=dict(type="str", aliases=["aws_access_key_id", "aws_access_key"], no_log=False),
    secret_key=dict(type="str", aliases=["aws_secret_access_key", "aws_secret_key"], no_log=True),
    session_token=dict(type="str", aliases=["aws_session_token"], no_log=True),
    endpoint_url=dict(type="str", aliases=["aws_endpoint_url"]),
    validate_certs=dict(type="bool", default=True),
)
# The environment variables an option left unset falls back to, first set first (amazon.aws's names).
ENVIRONMENT_FALLBACKS = dict(
    region=("AWS_REGION", "AWS_DEFAULT_REGION"),
    profile=("AWS_PROFILE", "AWS_DEFAULT_PROFILE"),
    endpoint_url=("AWS_ENDPOINT_URL", "AWS_URL"),
)


def connection_option(params, name):
    """The option's value, else that of the first of its environment variables that is set."""
    if params.get(name):
        return params[name]
    return next((os.environ[variable] for variable in ENVIRONMENT_FALLBACKS.get(name, ()) if os.environ.get(variable)), None)


class AwsError(PkiError):
    """An AWS call failed; the message carries the AWS error code."""


def build_client(service, params):
    """A boto3 client from the module's connection options, or the standard credential chain."""
    try:
        session = boto3.session.Session(
            profile_name=connection_option(params, "profile"),
            aws_access_key_id=params.get("access_key"),
            aws_secret_access_key=params.get("secret_key"),
            aws_session_token=params.get("session_token"),
            region_name=connection_option(params, "region"),
        )
        return session.client(
            service,
            endpoint_url=connection_option(params, "endpoint_url"),
            verify=params.get("validate_certs", True),
            config=Config(retries={"mode": "standard", "total_max_attempts": MAX_ATTEMPTS}, user_agent_extra=USER_AGENT),
        )
    except (BotoCoreError, ClientError) as exc:
        raise describe_error(exc, "connecting to %s" % service)


def connector(service, params):
    """The one way an AWS module hands its backend the AWS client: a function that builds it
    (build_client) at its first call and returns that same client afterwards.

    A backend calls it only once its local input is validated and only when it needs AWS,
    so a run that needs none (profiles from a configuration file) neither needs nor checks
    the connection options. Tests hand a backend ``lambda: stubbed_client``.
    """
    built = []

    def connect():
        if not built:
            built.append(build_client(service, params))
        return built[0]

    return connect


def describe_error(exc, action):
    """One clear AwsError for any botocore failure."""
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = error.get("Code", "Unknown")
        hint = _HINTS.get(code, "")
        return AwsError("%s failed: %s: %s%s" % (action, code, error.get("Message", str(exc)), hint))
    if isinstance(exc, NoRegionError):
        return AwsError("%s failed: NoRegion: no AWS region. Set region (or AWS_REGION / AWS_DEFAULT_REGION)." % action)
    if isinstance(exc, NoCredentialsError):
        return AwsError(
            "%s failed: NoCredentials: no AWS credentials found. Set access_key and secret_key, profile, "
            "or the AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY environment variables (AWX: an Amazon Web Services credential)." % action
        )
    if isinstance(exc, ProfileNotFound):
        return AwsError("%s failed: ProfileNotFound: %s. Check profile / AWS_PROFILE." % (action, exc))
    if isinstance(exc, EndpointConnectionError):
        return AwsError(
            "%s failed: EndpointConnectionError: cannot reach %s. Check endpoint_url, region and the network."
            % (action, exc.kwargs.get("endpoint_url"))
        )
    return AwsError("%s failed: %s: %s" % (action, type(exc).__name__, exc))


_HINTS = {
    "AccessDeniedException": " (the caller lacks an IAM permission for this ACM action)",
    "AccessDenied": " (the caller lacks an IAM permission for this action)",
    "LimitExceededException": " (ACM quota reached: imports per year or imported certificates; nothing was re-imported needlessly)",
    "ThrottlingException": " (still throttled after %d attempts; retry later)" % MAX_ATTEMPTS,
}


def aws_call(action, function, **kwargs):
    """Call one API operation, translating its errors."""
    try:
        return function(**kwargs)
    except (BotoCoreError, ClientError, ResponseParserError) as exc:
        raise describe_error(exc, action)


def is_not_found(exc):
    return isinstance(exc, ClientError) and exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException"
