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
# A well-formed V or E row in one match: most rows of a large index.txt. Anything else goes
# through _row_problem, which names what is wrong.
_PLAIN_ROW = re.compile(r"[VE]\t(?:\d{12}|\d{14})Z\t\t[0-9A-F]+\t[^\t]*\t/[^\t]*")
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
        problem = None if _PLAIN_ROW.fullmatch(line) else _row_problem(fields)
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
    # by hand: strptime costs ~40 us, most of reading a 20,000-row index.txt
    if len(text) == 13:
        year, rest = 2000 + int(text[:2]), text[2:]  # UTCTime: 50-99 would be 19xx, never written here
        year = year - 100 if year >= 2050 else year
    else:
        year, rest = int(text[:4]), text[4:]
    return datetime.datetime(year, int(rest[0:2]), int(rest[2:4]), int(rest[4:6]), int(rest[6:8]), int(rest[8:10]),
                             tzinfo=datetime.timezone.utc)


# OpenSSL's short names (OBJ_nid2sn) of the attributes a certificate subject
# usually holds; any other attribute is written as its dotted OID.
SHORT_NAMES = {
    "2.5.4.3": "CN", "2.5.4.6": "C", "2.5.4.7": "L", "2.5.4.8": "ST", "2.5.4.9": "street",
    "2.5.4.10": "O", "2.5.4.11": "OU", "2.5.4.5": "serialNumber", "2.5.4.4": "SN", "2.5.4.42": "GN",
    "2.5.4.12": "title", "2.5.4.41": "name", "2.5.4.43": "initials", "2.5.4.44": "generationQualifier",
    "2.5.4.46": "dnQualifier", "2.5.4.65": "pseudonym", "2.5.4.17": "postalCode", "2.5.4.97": "organizationIdentifier",
    "1.2.840.113549.1.9.1": "emailAddress", "0.9.2342.19200300.100.1.25": "DC", "0.9.2342.19200300.100.1.1": "UID",
}
# How an ASN.1 string type's bytes (what OpenSSL escapes) come from the decoded text.
_STRING_CODECS = {"BMPString": "utf-16-be", "UniversalString": "utf-32-be", "UTF8String": "utf-8"}


def _escape_value(raw):
    """X509_NAME_oneline's escaping of one value's bytes (OpenSSL 3): a control byte, DEL and
    every byte above '~' as \\xNN (upper-case hex), '/' and '+' behind a backslash,
    the rest as it is (a backslash too)."""
    out = []
    for byte in bytearray(raw):
        if byte < 0x20 or byte > 0x7E:
            out.append("\\x%02X" % byte)
        elif byte in (0x2F, 0x2B):  # '/' and '+' separate attributes in this form
            out.append("\\" + chr(byte))
        else:
            out.append(chr(byte))
    return "".join(out)


def _value_bytes(attribute):
    string_type = getattr(getattr(attribute, "_type", None), "name", "UTF8String")
    return attribute.value.encode(_STRING_CODECS.get(string_type, "latin-1"))


def oneline_subject(name):
    """A certificate's subject (an ``x509.Name``) in the form ``openssl ca`` writes to
    index.txt (``X509_NAME_oneline``): ``/CN=...``, attributes of one RDN joined by ``+``.
    ``openssl ca -revoke`` (so ``easyrsa revoke``) refuses a row whose subject differs."""
    parts = []
    for rdn in name.rdns:
        for position, attribute in enumerate(rdn):
            key = SHORT_NAMES.get(attribute.oid.dotted_string, attribute.oid.dotted_string)
            parts.append(("+" if position else "/") + key + "=" + _escape_value(_value_bytes(attribute)))
    return "".join(parts)


def format_subject(common_name):
    """The one-line subject of a certificate whose subject is only this CN (a UTF8String,
    as every certificate here is made)."""
    return "/CN=" + _escape_value(common_name.encode("utf-8"))


def entry_for(cert):
    """The ``V`` row ``openssl ca`` writes when it signs ``cert``."""
    return IndexEntry("V", format_time(cert.not_valid_after_utc), "", format_serial(cert.serial_number), "unknown", oneline_subject(cert.subject))
