# -*- coding: utf-8 -*-
# Copyright: clientvpn.pki contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The AWS Client VPN and ACM rules, checked in one place.

Every module checks its input here before it touches a file or an API, so a
certificate that Client VPN or ACM would reject is never produced.
"""

from __future__ import annotations

from ansible_collections.clientvpn.pki.plugins.module_utils.errors import PkiError

# Client VPN accepts RSA 1024 and 2048 only (admin guide, "Mutual authentication").
ALLOWED_KEY_SIZES = (1024, 2048)
# X.509 upper bound for a commonName (RFC 5280, ub-common-name).
MAX_COMMON_NAME_LENGTH = 64


def check_key_size(field, key_size):
    if key_size not in ALLOWED_KEY_SIZES:
        raise PkiError(
            "%s=%s is not allowed: AWS Client VPN accepts RSA keys of 1024 or 2048 bits only. "
            "Set %s to 2048 (recommended) or 1024." % (field, key_size, field)
        )


def check_common_name(field, common_name):
    if common_name is None or not str(common_name).strip():
        raise PkiError(
            "%s is empty: AWS Client VPN requires a CN in the certificate subject. "
            "Give %s a non-empty value." % (field, field)
        )
    if any(ord(char) < 32 or ord(char) == 127 for char in common_name):
        raise PkiError(
            "%s %r contains a control character (tab, newline, ...), which would corrupt index.txt. "
            "Remove it from %s." % (field, common_name, field)
        )
    if len(common_name) > MAX_COMMON_NAME_LENGTH:
        raise PkiError(
            "%s '%s' is %d characters long; a CN holds at most %d. Use a shorter %s."
            % (field, common_name, len(common_name), MAX_COMMON_NAME_LENGTH, field)
        )


def check_server_has_domain(name, subject_alt_names):
    if not any(san.startswith("DNS:") for san in subject_alt_names):
        raise PkiError(
            "subject_alt_names for server certificate '%s' has no DNS entry: ACM and AWS Client VPN "
            "reject a server certificate without a domain. Add one, for example 'DNS:%s'." % (name, name)
        )
