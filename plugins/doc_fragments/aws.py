# -*- coding: utf-8 -*-
# Copyright: clientvpn.pki contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment(object):
    """The AWS connection options every clientvpn.pki AWS module takes (module_utils/aws.py), and its action group."""

    DOCUMENTATION = r"""
attributes:
  action_group:
    support: full
    description: Set the connection options once with C(module_defaults) for C(group/clientvpn.pki.aws).
    membership:
      - clientvpn.pki.aws
options:
  region:
    description:
      - AWS region (the region of the Client VPN endpoint). Environment C(AWS_REGION) or C(AWS_DEFAULT_REGION), or the profile's.
    type: str
    aliases: [aws_region]
  profile:
    description:
      - Named profile of the AWS configuration files. Environment C(AWS_PROFILE).
    type: str
    aliases: [aws_profile]
  access_key:
    description:
      - AWS access key ID. Unset, the standard boto3 credential chain is used (environment, profile, instance role).
    type: str
    aliases: [aws_access_key_id, aws_access_key]
  secret_key:
    description:
      - AWS secret access key.
    type: str
    aliases: [aws_secret_access_key, aws_secret_key]
  session_token:
    description:
      - AWS session token for temporary credentials.
    type: str
    aliases: [aws_session_token]
  endpoint_url:
    description:
      - URL of the AWS service endpoint the module calls (ACM for M(clientvpn.pki.vpn_acm_import), EC2 for the
        Client VPN modules), for example a local test endpoint. Environment C(AWS_ENDPOINT_URL).
    type: str
    aliases: [aws_endpoint_url]
  validate_certs:
    description:
      - Verify the endpoint's TLS certificate.
    type: bool
    default: true
notes:
  - "Set the connection options once for every AWS module of the collection with
    C(module_defaults: {group/clientvpn.pki.aws: {region: ...}})."
  - Throttling is retried by botocore's C(standard) retry mode.
  - The collection's roles set these options once with C(module_defaults) from the playbook variables C(aws_region),
    C(aws_profile) and C(aws_endpoint_url).
"""
