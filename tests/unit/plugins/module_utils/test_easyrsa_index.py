# -*- coding: utf-8 -*-
# Copyright: clientvpn.pki contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""index.txt and serial, as easy-rsa / openssl ca write them."""

from __future__ import annotations

import datetime

import pytest
from cryptography import x509

from ansible_collections.clientvpn.pki.plugins.module_utils import easyrsa_index
from ansible_collections.clientvpn.pki.plugins.module_utils.easyrsa_index import (
    format_index,
    format_serial,
    format_subject,
    format_time,
    parse_index,
    parse_time,
    random_serial,
)
from ansible_collections.clientvpn.pki.plugins.module_utils.errors import PkiError

# Rows as easy-rsa 3 (openssl ca) writes them.
EASYRSA_INDEX = (
    "V\t290226200630Z\t\tF7D1FB8D1FD51DFBFEE8D31C98795DF1\tunknown\t/CN=server\n"
    "R\t290226200630Z\t261124201245Z\tB343ED2FA0E9C8936FC40788EC805469\tunknown\t/CN=c2\n"
    "R\t290226200630Z\t261124201245Z,keyCompromise\t0A1B2C3D4E5F60718293A4B5C6D7E8F9\tunknown\t/CN=c3\n"
)

GOOD_ROW = "V\t290226200630Z\t\tF7D1FB8D1FD51DFBFEE8D31C98795DF1\tunknown\t/CN=server"


def test_parse_reads_every_field():
    entries = parse_index(EASYRSA_INDEX)
    assert [e.status for e in entries] == ["V", "R", "R"]
    assert entries[0].expires == "290226200630Z"
    assert entries[0].revoked == ""
    assert entries[0].serial == "F7D1FB8D1FD51DFBFEE8D31C98795DF1"
    assert entries[0].filename == "unknown"
    assert entries[0].subject == "/CN=server"
    assert entries[1].revoked == "261124201245Z"
    assert entries[1].subject == "/CN=c2"
    assert entries[2].revoked == "261124201245Z,keyCompromise"


def test_parse_then_format_is_byte_identical():
    assert format_index(parse_index(EASYRSA_INDEX)).encode() == EASYRSA_INDEX.encode()


def test_empty_index_and_blank_lines():
    assert parse_index("") == []
    assert format_index([]) == ""
    assert len(parse_index("\n" + GOOD_ROW + "\n\n")) == 1


@pytest.mark.parametrize(
    "row, problem",
    [
        ("V\t290226200630Z\tF7D1FB8D1FD51DFBFEE8D31C98795DF1\tunknown\t/CN=server", "6 tab-separated fields, found 5"),
        (GOOD_ROW + "\textra", "found 7"),
        ("V 290226200630Z  F7D1FB8D1FD51DFBFEE8D31C98795DF1 unknown /CN=server", "found 1"),
        ("X\t290226200630Z\t\tF7D1FB8D1FD51DFBFEE8D31C98795DF1\tunknown\t/CN=server", "status"),
        ("v\t290226200630Z\t\tF7D1FB8D1FD51DFBFEE8D31C98795DF1\tunknown\t/CN=server", "status"),
        ("V\t2902262006Z\t\tF7D1FB8D1FD51DFBFEE8D31C98795DF1\tunknown\t/CN=server", "expiry time"),
        ("V\t290226200630\t\tF7D1FB8D1FD51DFBFEE8D31C98795DF1\tunknown\t/CN=server", "expiry time"),
        ("V\t290226200630Z\t\tf7d1fb8d1fd51dfbfee8d31c98795df1\tunknown\t/CN=server", "serial"),
        ("V\t290226200630Z\t\t\tunknown\t/CN=server", "serial"),
        ("R\t290226200630Z\t\tB343ED2FA0E9C8936FC40788EC805469\tunknown\t/CN=c2", "needs a revocation time"),
        ("R\t290226200630Z\tyesterday\tB343ED2FA0E9C8936FC40788EC805469\tunknown\t/CN=c2", "needs a revocation time"),
        ("R\t290226200630Z\t261124201245Z,removeFromCRL\tB343ED2FA0E9C8936FC40788EC805469\tunknown\t/CN=c2", "unknown revocation reason"),
        ("V\t290226200630Z\t261124201245Z\tF7D1FB8D1FD51DFBFEE8D31C98795DF1\tunknown\t/CN=server", "only a revoked row"),
        ("E\t290226200630Z\t261124201245Z\tF7D1FB8D1FD51DFBFEE8D31C98795DF1\tunknown\t/CN=server", "only a revoked row"),
        ("V\t290226200630Z\t\tF7D1FB8D1FD51DFBFEE8D31C98795DF1\tunknown\tCN=server", "subject"),
    ],
)
def test_malformed_row_names_its_line(row, problem):
    text = GOOD_ROW + "\n" + GOOD_ROW + "\n" + row + "\n" + GOOD_ROW + "\n"
    with pytest.raises(PkiError) as caught:
        parse_index(text, "/pki/index.txt")
    message = str(caught.value)
    assert "/pki/index.txt line 3 " in message
    assert problem in message
    assert repr(row) in message


def test_malformed_row_line_number_counts_blank_lines():
    with pytest.raises(PkiError, match=r"index.txt line 3 "):
        parse_index(GOOD_ROW + "\n\nbroken\n")


@pytest.mark.parametrize(
    "serial, text",
    [(1, "01"), (0xF, "0F"), (0x10, "10"), (0xABC, "0ABC"), (0xF7D1FB8D1FD51DFBFEE8D31C98795DF1, "F7D1FB8D1FD51DFBFEE8D31C98795DF1")],
)
def test_format_serial_is_upper_hex_of_even_length(serial, text):
    assert format_serial(serial) == text
    assert int(format_serial(serial), 16) == serial


def test_random_serial_is_32_hex_digits():
    for dummy in range(50):
        text = format_serial(random_serial(set()))
        assert len(text) == 32
        assert text == text.upper()
        int(text, 16)


def test_random_serial_avoids_taken_serials(monkeypatch):
    taken_value = (1 << 127) | 5
    free_value = (1 << 127) | 6
    values = iter([taken_value, taken_value, free_value])
    monkeypatch.setattr(easyrsa_index.secrets, "randbits", lambda bits: next(values))
    assert random_serial({format_serial(taken_value)}) == free_value


def test_random_serial_sets_the_top_bit(monkeypatch):
    monkeypatch.setattr(easyrsa_index.secrets, "randbits", lambda bits: 1)
    assert format_serial(random_serial(set())) == "80000000000000000000000000000001"


def test_format_time_utctime_before_2050():
    moment = datetime.datetime(2049, 12, 31, 23, 59, 59, tzinfo=datetime.timezone.utc)
    assert format_time(moment) == "491231235959Z"
    assert format_time(datetime.datetime(2029, 2, 26, 20, 6, 30, tzinfo=datetime.timezone.utc)) == "290226200630Z"


def test_format_time_generalizedtime_from_2050():
    moment = datetime.datetime(2050, 1, 1, 0, 0, 0, tzinfo=datetime.timezone.utc)
    assert format_time(moment) == "20500101000000Z"


def test_format_time_converts_to_utc():
    moment = datetime.datetime(2030, 1, 1, 1, 30, 0, tzinfo=datetime.timezone(datetime.timedelta(hours=2)))
    assert format_time(moment) == "291231233000Z"


@pytest.mark.parametrize("text", ["290226200630Z", "491231235959Z", "20500101000000Z", "21061231235959Z"])
def test_parse_time_reads_back_what_format_time_writes(text):
    moment = parse_time(text)
    assert moment.tzinfo == datetime.timezone.utc
    assert format_time(moment) == text


def test_parse_time_of_utctime_is_in_this_century():
    assert parse_time("491231235959Z") == datetime.datetime(2049, 12, 31, 23, 59, 59, tzinfo=datetime.timezone.utc)


def test_every_revocation_reason_is_a_crl_reason_code():
    """One table serves both ways: index.txt spelling -> CRL reasonCode -> index.txt spelling."""
    assert len(set(easyrsa_index.REVOCATION_REASONS.values())) == len(easyrsa_index.REVOCATION_REASONS)
    for flag in easyrsa_index.REVOCATION_REASONS.values():
        assert isinstance(getattr(x509.ReasonFlags, flag), x509.ReasonFlags)
    # RFC 5280 numbers 0-6 as OpenSSL names them; removeFromCRL (8) is a delta-CRL code, not a revocation.
    assert list(easyrsa_index.REVOCATION_REASONS) == [
        "unspecified", "keyCompromise", "CACompromise", "affiliationChanged", "superseded", "cessationOfOperation", "certificateHold",
    ]


def test_the_row_of_a_certificate_parses_back():
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(65537, 1024)
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "server")])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(0xF7D1FB8D1FD51DFBFEE8D31C98795DF1)
            .not_valid_before(datetime.datetime(2026, 11, 24, tzinfo=datetime.timezone.utc))
            .not_valid_after(datetime.datetime(2029, 2, 26, 20, 6, 30, tzinfo=datetime.timezone.utc)).sign(key, hashes.SHA256()))
    entry = easyrsa_index.entry_for(cert)
    assert entry.to_line() == GOOD_ROW
    assert format_subject("c1") == "/CN=c1"
    assert parse_index(format_index([entry]))[0].to_line() == GOOD_ROW


# -- the subject in X509_NAME_oneline's form (tests/system/test_index_subjects.py compares with openssl ca) --
@pytest.mark.parametrize("common_name,oneline", [
    ("client1.domain.tld", "/CN=client1.domain.tld"),
    ("a+b", "/CN=a\\+b"),
    ("Sales/EMEA", "/CN=Sales\\/EMEA"),
    ("back\\slash", "/CN=back\\slash"),  # openssl does not escape a backslash
    ("M\u00fcller", "/CN=M\\xC3\\xBCller"),
    ("x=y, O'Brien", "/CN=x=y, O'Brien"),
])
def test_format_subject_escapes_as_x509_name_oneline(common_name, oneline):
    assert format_subject(common_name) == oneline
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, common_name)])
    assert easyrsa_index.oneline_subject(name) == oneline


def test_oneline_subject_of_several_attributes_and_string_types():
    from cryptography.x509.name import _ASN1Type

    name = x509.Name([
        x509.RelativeDistinguishedName([x509.NameAttribute(x509.NameOID.COUNTRY_NAME, "DE", _ASN1Type.PrintableString)]),
        x509.RelativeDistinguishedName([x509.NameAttribute(x509.NameOID.ORGANIZATION_NAME, "Acme")]),
        x509.RelativeDistinguishedName([x509.NameAttribute(x509.NameOID.COMMON_NAME, "\u00e9", _ASN1Type.BMPString)]),
        x509.RelativeDistinguishedName([x509.NameAttribute(x509.NameOID.EMAIL_ADDRESS, "a@b.c", _ASN1Type.IA5String)]),
        x509.RelativeDistinguishedName([x509.NameAttribute(x509.ObjectIdentifier("1.3.6.1.4.1.99999.1"), "x")]),
    ])
    # a BMPString's two bytes per character are escaped one by one, as openssl does
    assert easyrsa_index.oneline_subject(name) == "/C=DE/O=Acme/CN=\\x00\\xE9/emailAddress=a@b.c/1.3.6.1.4.1.99999.1=x"
