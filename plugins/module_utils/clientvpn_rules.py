# -*- coding: utf-8 -*-
# Copyright: clientvpn.pki contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The AWS Client VPN and ACM rules, checked in one place.

Every module checks its input here before it touches a file or an API, so a
certificate that Client VPN or ACM would reject is never produced.
"""

from __future__ import annotations

import re

from ansible_collections.clientvpn.pki.plugins.module_utils import x509_inspect
from ansible_collections.clientvpn.pki.plugins.module_utils.errors import PkiError

# Client VPN accepts RSA 1024 and 2048 only (admin guide, "Mutual authentication").
ALLOWED_KEY_SIZES = (1024, 2048)
_ALLOWED_SIZES_TEXT = " or ".join(str(size) for size in ALLOWED_KEY_SIZES)
# The same keys in ACM's spelling (list_certificates' keyTypes filter).
ACM_KEY_TYPES = tuple("RSA_%d" % size for size in ALLOWED_KEY_SIZES)
# Client VPN quota: entries in the CRL of an endpoint.
CLIENT_VPN_MAX_CRL_ENTRIES = 20000
# X.509 upper bound for a commonName (RFC 5280, ub-common-name).
MAX_COMMON_NAME_LENGTH = 64
# Longest validity accepted (days of vpn_ca, vpn_cert, vpn_crl): 100 years.
MAX_DAYS = 36500


def check_key_size(field, key_size):
    if key_size not in ALLOWED_KEY_SIZES:
        raise PkiError(
            "%s=%s is not allowed: AWS Client VPN accepts RSA keys of %s bits only. "
            "Set %s to 2048 (recommended) or 1024." % (field, key_size, _ALLOWED_SIZES_TEXT, field)
        )


def check_days(field, days):
    """A validity period the certificate (or CRL) dates can hold: cryptography overflows far beyond it."""
    if days < 1:
        raise PkiError("%s=%s is less than 1: a certificate or CRL must be valid for at least one day. Set %s to 1 or more." % (field, days, field))
    if days > MAX_DAYS:
        raise PkiError(
            "%s=%s is more than %d (100 years): no certificate or CRL needs to outlive that. Set %s to at most %d."
            % (field, days, MAX_DAYS, field, MAX_DAYS)
        )


_CONTROL_CHARACTER = re.compile("[\x00-\x1f\x7f]")


def check_common_name(field, common_name, from_name=None):
    """``from_name``: the certificate name the CN was taken from, when common_name is unset."""
    if common_name is None or not str(common_name).strip():
        raise PkiError(
            "%s is empty: AWS Client VPN requires a CN in the certificate subject. "
            "Give %s a non-empty value." % (field, field)
        )
    if _CONTROL_CHARACTER.search(common_name):
        raise PkiError(
            "%s %r contains a control character (tab, newline, ...), which would corrupt index.txt. "
            "Remove it from %s." % (field, common_name, field)
        )
    if len(common_name) > MAX_COMMON_NAME_LENGTH and from_name is not None:
        raise PkiError(
            "name '%s' is %d characters long, too long for the certificate's CN, which is the name when %s is unset "
            "(a CN holds at most %d). Use a shorter name, or set %s to a CN of at most %d characters (with one name per task)."
            % (from_name, len(common_name), field, MAX_COMMON_NAME_LENGTH, field, MAX_COMMON_NAME_LENGTH)
        )
    if len(common_name) > MAX_COMMON_NAME_LENGTH:
        raise PkiError(
            "%s '%s' is %d characters long; a CN holds at most %d. Set %s to a CN of at most %d characters."
            % (field, common_name, len(common_name), MAX_COMMON_NAME_LENGTH, field, MAX_COMMON_NAME_LENGTH)
        )


def check_server_has_domain(name, subject_alt_names):
    if not any(san.startswith("DNS:") for san in subject_alt_names):
        raise PkiError(
            "subject_alt_names for server certificate '%s' has no DNS entry: ACM and AWS Client VPN "
            "reject a server certificate without a domain. Add one, for example 'DNS:%s'." % (name, name)
        )


# ACM: "the private key must be unencrypted PEM, at most 5,120 bytes" (import prerequisites).
ACM_MAX_KEY_BYTES = 5120


def check_importable(leaf, key, key_pem, chain, cert_type, now):
    """Every Client VPN and ACM rule an import must meet, checked before any API call.

    ``leaf`` and ``chain`` are cryptography certificates, ``key`` the loaded
    private key and ``key_pem`` the bytes that would be sent.
    """
    from ansible_collections.clientvpn.pki.plugins.module_utils.x509_profiles import extended_key_usage  # pylint: disable=import-outside-toplevel

    if not x509_inspect.key_matches(key, leaf):
        raise PkiError("private_key does not belong to certificate: give the key the certificate was issued for.")
    if x509_inspect.rsa_key_size(leaf.public_key()) not in ALLOWED_KEY_SIZES:
        raise PkiError(
            "certificate has a %s key: AWS Client VPN accepts RSA %s only. "
            "Reissue it with clientvpn.pki.vpn_cert key_size=2048." % (x509_inspect.key_kind(leaf.public_key()), _ALLOWED_SIZES_TEXT)
        )
    if not (x509_inspect.common_name(leaf) or "").strip():
        raise PkiError("certificate has no CN in its subject: AWS Client VPN requires one. Reissue it with a common_name.")
    if cert_type == "server":
        check_server_has_domain(x509_inspect.common_name(leaf), x509_inspect.subject_alt_names(leaf))
        if extended_key_usage("server") not in x509_inspect.extended_key_usages(leaf):
            raise PkiError(
                "certificate has no extendedKeyUsage serverAuth: the Client VPN profile's "
                "'remote-cert-tls server' would refuse it. Issue it with clientvpn.pki.vpn_cert type=server."
            )
    if leaf.not_valid_before_utc > now:
        raise PkiError("certificate is not valid before %s: ACM imports only certificates valid now." % leaf.not_valid_before_utc.isoformat())
    if x509_inspect.not_after(leaf) <= now:
        raise PkiError("certificate expired on %s: renew it (clientvpn.pki.vpn_cert) before importing." % x509_inspect.not_after(leaf).isoformat())
    if not chain:
        raise PkiError("certificate_chain holds no certificate: give the CA certificate (ca.crt).")
    for child, issuer in zip([leaf] + chain[:-1], chain):
        if not x509_inspect.is_issued_by(child, issuer):
            raise PkiError(
                "certificate_chain does not sign the certificate: %s is not issued by %s. Give the chain of "
                "the CA that issued it, leaf excluded, root last." % (child.subject.rfc4514_string(), issuer.subject.rfc4514_string())
            )
    if len(key_pem) > ACM_MAX_KEY_BYTES:
        raise PkiError("private_key is %d bytes of PEM; ACM accepts at most %d." % (len(key_pem), ACM_MAX_KEY_BYTES))


# -- a renewed CA (docs/ca-renewal.md) ---------------------------------------------------
# The endpoint keeps trusting the CA certificate a renewal replaced until this many days before
# that certificate expires; then the server certificate is re-imported with the renewed one (an
# ACM re-import reaches the endpoint within 24 hours).
ENDPOINT_CA_SWITCH_DAYS = 14


def renewals_of(current, previous, now):
    """The earlier CA certificates (from expired-ca.list) that ``current`` renewed, still valid at
    ``now``: same subject and key, newest first."""
    key = x509_inspect.public_key_der(current.public_key())
    return [
        cert for cert in previous
        if cert.subject == current.subject and x509_inspect.public_key_der(cert.public_key()) == key and x509_inspect.not_after(cert) > now
    ]


def endpoint_ca(current, previous, now):
    """The one CA certificate the endpoint trusts (the chain imported with the server certificate).

    During a renewal's overlap, the earlier certificate: clients issued under it with easy-rsa's
    authorityKeyIdentifier (issuer and serial) chain only to it, and the certificates issued since
    (keyid only) chain to either. One certificate only: an OpenVPN server refuses a CA file with two
    certificates of one subject. The renewed certificate takes over ENDPOINT_CA_SWITCH_DAYS before
    the earlier one expires."""
    # the oldest still-valid one: the certificate clients from before the first renewal name
    for cert in reversed(renewals_of(current, previous, now)):
        if (x509_inspect.not_after(cert) - now).days > ENDPOINT_CA_SWITCH_DAYS:
            return cert
    return current


def profile_cas(current, previous, now):
    """The CA certificates a client profile carries: the current one, and during a renewal's overlap
    the earlier ones still valid (a client checks its anchor's own notAfter)."""
    return [current] + renewals_of(current, previous, now)
