# -*- coding: utf-8 -*-
# Copyright: clientvpn.pki contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""PkiHealth: the report vpn_pki_info returns, its problems at their thresholds, and no write."""

from __future__ import annotations

import datetime
import os

import pytest

from ansible_collections.clientvpn.pki.plugins.module_utils.cert_revoker import CertificateRevoker
from ansible_collections.clientvpn.pki.plugins.module_utils.crl_manager import CrlPublisher
from ansible_collections.clientvpn.pki.plugins.module_utils.errors import PkiError
from ansible_collections.clientvpn.pki.plugins.module_utils.pki_health import PkiHealth
from ansible_collections.clientvpn.pki.plugins.module_utils.pki_store import PkiStore

NOW = datetime.datetime.now(datetime.timezone.utc)


@pytest.fixture
def running(pki, helpers):
    """A server, three clients (one revoked), a current CRL."""
    helpers.issue(pki, "server", cert_type="server")
    helpers.issue(pki, ["alice", "bob", "carol"])
    CertificateRevoker(pki, ["carol"]).run(False)
    CrlPublisher(pki).run(False)
    return pki


def report(store, **thresholds):
    return PkiHealth(PkiStore(store.root), thresholds).report()


def codes(result):
    return sorted((problem["code"], problem["severity"]) for problem in result["problems"])


def test_a_healthy_pki_and_nothing_written(running, helpers):
    before = helpers.snapshot(running.root)
    result = report(running)
    assert helpers.snapshot(running.root) == before
    assert result["problems"] == []
    assert result["summary"] == {"valid": 3, "revoked": 1, "expired": 0, "expiring": 0, "problems": 0, "critical": 0}
    by_name = dict((cert["name"], cert) for cert in result["certificates"] if cert["name"])
    assert sorted(by_name) == ["alice", "bob", "server"]
    assert by_name["server"]["type"] == "server" and by_name["alice"]["type"] == "client"
    assert by_name["alice"]["files_present"] is True and by_name["alice"]["key"] == "RSA 1024"
    revoked = [cert for cert in result["certificates"] if cert["status"] == "R"]
    assert len(revoked) == 1 and revoked[0]["common_name"] == "carol" and revoked[0]["folder"] == "revoked/certs_by_serial"
    assert result["crl"]["present"] and result["crl"]["entries"] == 1 and result["crl"]["matches_index"] is True
    assert 170 <= result["crl"]["days_left"] <= 180
    assert result["ca"]["common_name"] == helpers.CA_NAME and result["ca"]["previous"] == []
    assert [cert["not_after"] for cert in result["certificates"]] == sorted(cert["not_after"] for cert in result["certificates"])


@pytest.mark.parametrize("thresholds,expected", [
    ({"crl": 200}, [("crl_expiring", "critical")]),
    ({"server": 900}, [("server_expiring", "critical")]),
    ({"ca": 4000}, [("ca_expiring", "critical")]),
    ({"client": 900}, [("clients_expiring", "warning")]),
])
def test_each_date_is_a_problem_within_its_threshold(running, thresholds, expected):
    result = report(running, **thresholds)
    assert codes(result) == expected
    problem = result["problems"][0]
    assert problem["date"] and problem["days_left"] is not None and problem["fix"] and problem["object"]
    assert result["summary"]["critical"] == (1 if expected[0][1] == "critical" else 0)


def test_a_revocation_not_yet_in_the_crl(running):
    CertificateRevoker(running, ["bob"]).run(False)
    result = report(running)
    assert codes(result) == [("crl_out_of_date", "critical")]
    assert result["crl"]["matches_index"] is False


def test_revoked_rows_without_a_crl(running):
    os.unlink(running.path("crl.pem"))
    assert codes(report(running)) == [("crl_missing", "critical")]


def test_a_valid_row_whose_certificate_is_nowhere(running):
    serial = [cert for cert in report(running)["certificates"] if cert["name"] == "bob"][0]["serial"]
    os.unlink(running.cert("bob"))
    os.unlink(running.by_serial(serial))
    result = report(running)
    assert codes(result) == [("certificate_file_missing", "warning")]
    assert serial in result["problems"][0]["message"]


def test_an_expired_server_certificate(pki, helpers):
    helpers.issue(pki, "server", cert_type="server", days=1, renew_before_days=0)
    result = PkiHealth(PkiStore(pki.root), now=NOW + datetime.timedelta(days=3)).report()
    assert ("server_expiring", "critical") in codes(result)
    server = [cert for cert in result["certificates"] if cert["name"] == "server"][0]
    assert server["days_left"] < 0
    assert result["summary"]["expired"] == 1


def test_no_ca_and_bad_thresholds(tmp_path, running):
    with pytest.raises(PkiError, match="no certificate authority"):
        PkiHealth(PkiStore(str(tmp_path / "empty"))).report()
    with pytest.raises(PkiError, match="crl_expiry_days=-1"):
        PkiHealth(PkiStore(running.root), {"crl": -1})


def test_broken_files_are_problems_in_the_report_not_a_failure(running, helpers):
    """The report is most needed when something is broken: a garbled CRL or certificate is a critical problem."""
    helpers.write(running.path("crl.pem"), b"-----BEGIN X509 CRL-----\ngarbage\n-----END X509 CRL-----\n")
    helpers.write(running.cert("alice"), b"not a certificate\n")
    result = report(running)
    assert codes(result) == [("certificate_unreadable", "critical"), ("crl_unreadable", "critical")]
    assert "issued/alice.crt" in [p for p in result["problems"] if p["code"] == "certificate_unreadable"][0]["message"]
    assert result["crl"]["matches_index"] is False and result["summary"]["critical"] == 2
