"""The health playbook: passes on a healthy PKI, fails (so AWX notifies) on an expiring CRL, a
server certificate near its end or an ACM copy that differs; writes its report either way, and
changes nothing in the PKI or in ACM."""

import json
import os

from conftest import ok, playbook, recap, snapshot


def build(tmp_path, crl_days=180):
    pki = str(tmp_path / "pki")
    ok("vpn_ca", {"pki_dir": pki})
    ok("vpn_cert", {"pki_dir": pki, "name": ["server"], "type": "server"})
    ok("vpn_cert", {"pki_dir": pki, "name": ["alice", "bob"], "type": "client"})
    ok("vpn_cert", {"pki_dir": pki, "name": ["bob"], "state": "revoked"})
    ok("vpn_crl", {"pki_dir": pki, "days": crl_days, "renew_before_days": min(29, crl_days - 1)})
    return pki


def health(tmp_path, pki, *extra, succeed=True):
    report_dir = tmp_path / "report"
    proc = playbook(["clientvpn.pki.health", "-e", "pki_dir=%s" % pki, "-e", "health_report_dir=%s" % report_dir] + list(extra),
                    succeed=succeed)
    return proc, json.loads((report_dir / "health.json").read_text()), (report_dir / "health.html").read_text()


def test_a_healthy_pki_passes_and_nothing_changes(tmp_path):
    pki = build(tmp_path)
    before = snapshot(pki)
    proc, report, html = health(tmp_path, pki)
    assert snapshot(pki) == before
    assert report["problems"] == [] and report["summary"]["valid"] == 2 and report["summary"]["revoked"] == 1
    assert "invocation" not in report
    assert "<svg" in html and "alice" in html
    assert "0 problem(s), 0 critical" in proc.stdout
    assert oct(os.stat(tmp_path / "report" / "health.html").st_mode & 0o777) == "0o600"
    # in check mode too: the module reads, the report is what a real run would write
    assert recap(playbook(["clientvpn.pki.health", "-e", "pki_dir=%s" % pki, "-e", "health_report_dir=%s" % (tmp_path / "r2")],
                          check=True).stdout)["failed"] == 0
    assert snapshot(pki) == before


def test_an_expiring_crl_fails_the_job_with_the_fix(tmp_path):
    pki = build(tmp_path, crl_days=10)
    before = snapshot(pki)
    proc, report, html = health(tmp_path, pki, succeed=False)
    assert [problem["code"] for problem in report["problems"]] == ["crl_expiring"]
    assert "revoke_client" in proc.stdout and "nextUpdate" in proc.stdout
    assert "crl_expiring" in html or "nextUpdate" in html
    assert snapshot(pki) == before
    # a threshold below the CRL's days left: healthy again; health_fail_on=never reports without failing
    health(tmp_path, pki, "-e", "health_crl_expiry_days=5")
    health(tmp_path, pki, "-e", "health_fail_on=never")


def test_acm_copies_are_compared_and_never_written(tmp_path, local_acm):
    pki = build(tmp_path)
    imported = ok("vpn_acm_import", {"pki_dir": pki, "name": "server", "region": "eu-west-1", "endpoint_url": local_acm.url})
    aws = ["-e", "health_acm=true", "-e", "aws_region=eu-west-1", "-e", "aws_endpoint_url=%s" % local_acm.url]
    proc, report, dummy = health(tmp_path, pki, *aws)
    assert report["acm"]["server"]["same_as_disk"] is True
    assert report["acm"]["server"]["certificate_arn"] == imported["certificate_arn"]

    # The server certificate is renewed on disk but not re-imported: ACM differs, the job fails.
    ok("vpn_cert", {"pki_dir": pki, "name": ["server"], "type": "server", "renew": True})
    writes_before = [op for op in local_acm.requests() if not op.startswith(("Get", "Describe", "List"))]
    proc, report, dummy = health(tmp_path, pki, *aws, succeed=False)
    assert [problem["code"] for problem in report["problems"]] == ["acm_differs"]
    assert [op for op in local_acm.requests() if not op.startswith(("Get", "Describe", "List"))] == writes_before
