# -*- coding: utf-8 -*-
# Copyright: clientvpn.pki contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the idempotency checks need to know of a leaf certificate and its key,
computed once per file: parsed, its signature verified against the CA, its
extensions read, then kept as plain values (so ``verified_cache`` can store them).

Every decision about an existing certificate (keep, renew, reissue) reads these
facts, never the certificate again; the certificate object is loaded only when a
name is about to change.
"""

from __future__ import annotations

import datetime
import hashlib

from ansible_collections.clientvpn.pki.plugins.module_utils import x509_inspect
from ansible_collections.clientvpn.pki.plugins.module_utils.x509_profiles import extended_key_usage


def sha256_hex(data):
    return hashlib.sha256(data).hexdigest()


class KeyFacts(object):
    """A private key file: its size and which public key it holds."""

    __slots__ = FIELDS = ("rsa_size", "kind", "public_key_sha256")

    def __init__(self, rsa_size, kind, public_key_sha256):
        self.rsa_size = rsa_size
        self.kind = kind
        self.public_key_sha256 = public_key_sha256

    @classmethod
    def of(cls, key):
        public = key.public_key()
        return cls(x509_inspect.rsa_key_size(public), x509_inspect.key_kind(public), sha256_hex(x509_inspect.public_key_der(public)))

    def to_row(self):
        return (self.rsa_size, self.kind, self.public_key_sha256)

    @classmethod
    def from_row(cls, row):
        return cls(*row)


class CertFacts(object):
    """A certificate file: the values the modules compare, report and decide on.

    ``issued_by_ca``: the CA certificate the facts were made against signed it (the
    names match and the signature verifies). A row (``to_row``) is plain text and
    numbers, in the order of FIELDS: lists joined by newlines, dates in ISO 8601.
    """

    __slots__ = FIELDS = ("common_name", "subject_alt_names", "extended_key_usages", "serial", "not_before", "not_after",
                          "aki_serial", "issuer", "key", "public_key_sha256", "issued_by_ca")

    def __init__(self, common_name, subject_alt_names, extended_key_usages, serial, not_before, not_after,  # pylint: disable=too-many-arguments
                 aki_serial, issuer, key, public_key_sha256, issued_by_ca):
        self.common_name = common_name
        self.subject_alt_names = subject_alt_names
        self.extended_key_usages = extended_key_usages
        self.serial = serial
        self.not_before = not_before
        self.not_after = not_after
        self.aki_serial = aki_serial
        self.issuer = issuer
        self.key = key
        self.public_key_sha256 = public_key_sha256
        self.issued_by_ca = issued_by_ca

    @classmethod
    def of(cls, cert, ca_cert):
        return cls(
            common_name=x509_inspect.common_name(cert),
            subject_alt_names=x509_inspect.subject_alt_names(cert),
            extended_key_usages=sorted(oid.dotted_string for oid in x509_inspect.extended_key_usages(cert)),
            serial=x509_inspect.serial_hex(cert),
            not_before=cert.not_valid_before_utc,
            not_after=cert.not_valid_after_utc,
            aki_serial=x509_inspect.aki_serial_hex(cert),
            issuer=cert.issuer.rfc4514_string(),
            key=x509_inspect.key_kind(cert.public_key()),
            public_key_sha256=sha256_hex(x509_inspect.public_key_der(cert.public_key())),
            issued_by_ca=x509_inspect.is_issued_by(cert, ca_cert),
        )

    def to_row(self):
        return (self.common_name, "\n".join(self.subject_alt_names), "\n".join(self.extended_key_usages), self.serial,
                self.not_before.isoformat(), self.not_after.isoformat(), self.aki_serial, self.issuer, self.key,
                self.public_key_sha256, int(self.issued_by_ca))

    @classmethod
    def from_row(cls, row):
        (common_name, sans, usages, serial, not_before, not_after, aki_serial, issuer, key, public_key_sha256, issued_by_ca) = row
        return cls(common_name, sans.split("\n") if sans else [], usages.split("\n") if usages else [], serial,
                   datetime.datetime.fromisoformat(not_before), datetime.datetime.fromisoformat(not_after),
                   aki_serial, issuer, key, public_key_sha256, bool(issued_by_ca))

    def facts(self):
        """What the modules return for a certificate (x509_inspect.facts of the same file)."""
        return {
            "common_name": self.common_name,
            "subject_alt_names": list(self.subject_alt_names),
            "serial": self.serial,
            "not_before": self.not_before.isoformat(),
            "not_after": self.not_after.isoformat(),
            "key": self.key,
        }

    def belongs_to(self, key_facts):
        return key_facts.public_key_sha256 == self.public_key_sha256

    def differences(self, spec):
        """Why this certificate is not what ``spec`` asks for (empty: it is)."""
        reasons = []
        if self.common_name != spec.common_name:
            reasons.append("common name is %r, wanted %r" % (self.common_name, spec.common_name))
        have_sans = sorted(self.subject_alt_names)
        if have_sans != sorted(spec.subject_alt_names):
            reasons.append("subject alt names are %s, wanted %s" % (have_sans or "none", sorted(spec.subject_alt_names) or "none"))
        if self.extended_key_usages != [extended_key_usage(spec.cert_type).dotted_string]:
            reasons.append("extended key usage is not %s-only" % spec.cert_type)
        return reasons

    def expires_within(self, days, now=None):
        now = now or datetime.datetime.now(datetime.timezone.utc)
        return self.not_after - now < datetime.timedelta(days=days)

    def names_other_ca_serial(self, ca_serial):
        """Its authorityKeyIdentifier names a CA certificate other than the one with ``ca_serial``."""
        return self.aki_serial is not None and self.aki_serial != ca_serial
