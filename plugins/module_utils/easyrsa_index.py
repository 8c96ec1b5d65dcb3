# -*- coding: utf-8 -*-
# Copyright: clientvpn.pki contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The easy-rsa / ``openssl ca`` database formats: ``index.txt`` and ``serial``.

An ``index.txt`` row has six tab-separated fields::

    V   290226200630Z       F7D1FB8D1FD51DFBFEE8D31C98795DF1    unknown /CN=server

status (V valid, R revoked, E expired), expiry time, revocation time
``[,reason]`` (empty unless revoked), serial in upper-case hex, file name
(always ``unknown``) and the subject in OpenSSL's one-line form. Rows written
here are byte-identical to the ones ``openssl ca`` writes, so a row read and
written back is unchanged.
"""

from __future__ import annotations

import datetime
import re
import secrets

from ansible_collections.clientvpn.pki.plugins.module_utils.errors import PkiError

STATUSES = ("V", "R", "E")
_TIME = re.compile(r"^(\d{12}|\d{14})Z$")
_SERIAL = re.compile(r"^[0-9A-F]+$")
# 128 random bits like easy-rsa's `openssl rand -hex 16`; the top bit is set so
# every serial prints as 32 hex digits, as OpenSSL writes them.
SERIAL_BITS = 128
# The RFC 5280 revocation reasons: how `openssl ca -crl_reason` spells each one in
# a revoked row's ``time,reason`` field, and the name of the matching member of
# cryptography's ``x509.ReasonFlags`` (the CRL entry's reasonCode).
REVOCATION_REASONS = {
    "unspecified": "unspecified",
    "keyCompromise": "key_compromise",
    "CACompromise": "ca_compromise",
    "affiliationChanged": "affiliation_changed",
    "superseded": "superseded",
    "cessationOfOperation": "cessation_of_operation",
    "certificateHold": "certificate_hold",
}


class IndexEntry(object):
    __slots__ = ("status", "expires", "revoked", "serial", "filename", "subject")

    def __init__(self, status, expires, revoked, serial, filename, subject):
        self.status = status
        self.expires = expires
        self.revoked = revoked
        self.serial = serial
        self.filename = filename
        self.subject = subject

    def to_line(self):
        return "\t".join((self.status, self.expires, self.revoked, self.serial, self.filename, self.subject))


def parse_index(text, path="index.txt"):
    """Parse index.txt; a malformed row is an error naming its line."""
    entries = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line:
            continue
        fields = line.split("\t")
        problem = _row_problem(fields)
        if problem:
            raise PkiError(
                "%s line %d is malformed (%s): %r. Fix or remove that row (a copy of the previous "
                "database is in index.txt.old); nothing was changed." % (path, number, problem, line)
            )
        entries.append(IndexEntry(*fields))
    return entries


def _row_problem(fields):
    if len(fields) != 6:
        return "expected 6 tab-separated fields, found %d" % len(fields)
    status, expires, revoked, serial = fields[:4]
    if status not in STATUSES:
        return "status must be V, R or E"
    if not _TIME.match(expires):
        return "expiry time is not YYMMDDHHMMSSZ"
    if status == "R" and not _TIME.match(revoked.split(",")[0]):
        return "a revoked row needs a revocation time"
    if status == "R" and "," in revoked and revoked.split(",", 1)[1] not in REVOCATION_REASONS:
        return "unknown revocation reason (use one of %s)" % ", ".join(REVOCATION_REASONS)
    if status != "R" and revoked:
        return "only a revoked row has a revocation time"
    if not _SERIAL.match(serial):
        return "serial is not upper-case hex"
    if not fields[5].startswith("/"):
        return "subject must start with /"
    return None


def format_index(entries):
    return "".join(entry.to_line() + "\n" for entry in entries)


def format_serial(serial):
    """A serial as OpenSSL writes it: upper-case hex, an even number of digits."""
    text = "%X" % serial
    return "0" + text if len(text) % 2 else text


def random_serial(taken):
    while True:
        serial = secrets.randbits(SERIAL_BITS) | (1 << (SERIAL_BITS - 1))
        if format_serial(serial) not in taken:
            return serial


def format_time(moment):
    """ASN.1 time as OpenSSL stores it: UTCTime before 2050, GeneralizedTime after."""
    moment = moment.astimezone(datetime.timezone.utc)
    if moment.year < 2050:
        return moment.strftime("%y%m%d%H%M%SZ")
    return moment.strftime("%Y%m%d%H%M%SZ")


def parse_time(text):
    """The inverse of format_time: an aware UTC datetime from YYMMDDHHMMSSZ or YYYYMMDDHHMMSSZ."""
    fmt = "%y%m%d%H%M%SZ" if len(text) == 13 else "%Y%m%d%H%M%SZ"
    return datetime.datetime.strptime(text, fmt).replace(tzinfo=datetime.timezone.utc)


def format_subject(common_name):
    """The subject in OpenSSL's one-line form for the CN-only names easy-rsa uses."""
    return "/CN=" + common_name


def valid_entry(serial, not_after, common_name):
    return IndexEntry("V", format_time(not_after), "", format_serial(serial), "unknown", format_subject(common_name))
