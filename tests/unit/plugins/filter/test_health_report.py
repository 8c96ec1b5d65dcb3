# -*- coding: utf-8 -*-
# Copyright: clientvpn.pki contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The health_report_html filter: escaping, order, aggregation, the timeline's markers, sparse input."""

from __future__ import annotations

import datetime
import re
import time
from html.parser import HTMLParser

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.clientvpn.pki.plugins.filter.health_report import FilterModule, health_report_html

NOW = datetime.datetime(2026, 11, 26, 1, 0, tzinfo=datetime.timezone.utc)


def iso(days):
    return (NOW + datetime.timedelta(days=days)).isoformat()


def certificate(name, days, kind="client", status="V", serial=None):
    return {"name": name, "common_name": name, "type": kind, "status": status, "serial": serial or "%032X" % (abs(hash(name)) % 16 ** 32),
            "not_after": iso(days), "days_left": days, "revoked_at": iso(-30) if status == "R" else None, "key": "RSA 2048",
            "files_present": True}


def pki_info(certificates=(), problems=(), crl_days=120, ca_days=3000, previous=()):
    """A vpn_pki_info result as the module returns it."""
    return {
        "pki_dir": "/srv/clientvpn/pki", "checked_at": NOW.isoformat(), "easyrsa_version": "3.1",
        "thresholds": {"ca": 180, "server": 30, "crl": 14, "client": 30},
        "ca": {"common_name": "Easy-RSA CA", "serial": "CA01", "not_before": iso(-650), "not_after": iso(ca_days), "days_left": ca_days,
               "key": "RSA 2048", "previous": [{"serial": "CA00", "not_after": iso(days), "days_left": days} for days in previous]},
        "certificates": list(certificates),
        "crl": {"present": crl_days is not None, "entries": sum(1 for cert in certificates if cert["status"] == "R"),
                "this_update": iso(-60) if crl_days is not None else None, "next_update": iso(crl_days) if crl_days is not None else None,
                "days_left": crl_days, "matches_index": True},
        "acm": {},
        "problems": list(problems),
        "summary": {"valid": sum(1 for cert in certificates if cert["status"] == "V" and cert["days_left"] >= 0),
                    "revoked": sum(1 for cert in certificates if cert["status"] == "R"),
                    "expired": sum(1 for cert in certificates if cert["status"] == "E" or cert["days_left"] < 0),
                    "expiring": 0, "problems": len(problems), "critical": sum(1 for problem in problems if problem["severity"] == "critical")},
    }


class Page(HTMLParser):
    """The parts of the page the tests look at: tags seen, inventory rows, SVG texts and data-kind attributes."""

    def __init__(self, text):
        super().__init__(convert_charrefs=True)
        self.tags = set()
        self.rows = []
        self.svg_texts = []
        self.kinds = []
        self.bar_titles = []
        self._inventory = False
        self._body = False
        self._cell = None
        self._svg_text = None
        self._bar = 0
        self._title = None
        self.feed(text)
        self.close()

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.add(tag)
        if tag == "table":
            self._inventory = attrs.get("class") == "inventory"
        elif tag == "tbody":
            self._body = self._inventory
        elif tag == "tr" and self._body:
            self.rows.append({"class": attrs.get("class"), "cells": []})
        elif tag == "td" and self._body:
            self._cell = []
        elif tag == "text":
            self._svg_text = []
        elif tag == "g":
            if attrs.get("data-kind"):
                self.kinds.append((attrs.get("class"), attrs["data-kind"]))
            self._bar = self._bar + 1 if attrs.get("class") == "bar" or self._bar else 0
        elif tag == "title" and self._bar:
            self._title = []

    def handle_endtag(self, tag):
        if tag == "td" and self._cell is not None:
            self.rows[-1]["cells"].append("".join(self._cell))
            self._cell = None
        elif tag == "text" and self._svg_text is not None:
            self.svg_texts.append("".join(self._svg_text))
            self._svg_text = None
        elif tag == "title" and self._title is not None:
            self.bar_titles.append("".join(self._title))
            self._title = None
        elif tag == "g" and self._bar:
            self._bar -= 1
        elif tag == "table":
            self._inventory = self._body = False

    def handle_data(self, data):
        for collector in (self._cell, self._svg_text, self._title):
            if collector is not None:
                collector.append(data)


def test_the_filter_is_exposed_under_its_documented_name():
    assert FilterModule().filters() == {"health_report_html": health_report_html}


def test_names_from_users_are_escaped_everywhere():
    hostile = "<script>alert(1)</script>\"'&{{ lookup('pipe', 'id') }}{% raw %}{# x #}"
    certs = [dict(certificate("evil", 40), common_name=hostile, serial=hostile),
             dict(certificate(hostile, 400, kind="server"))]
    info = pki_info(certs, problems=[{"code": "x", "severity": "warning", "object": hostile, "date": iso(3), "days_left": 3,
                                      "message": hostile, "fix": hostile}])
    info["pki_dir"] = "/srv/<b>pki</b>"
    info["ca"]["common_name"] = hostile
    info["acm"] = {hostile: {"certificate_arn": hostile, "same_as_disk": False, "not_after": iso(40)}}
    html_page = health_report_html(info)

    page = Page(html_page)
    assert "script" not in page.tags
    assert "<script" not in html_page and "<b>pki</b>" not in html_page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&quot;&#x27;&amp;" in html_page
    # No Jinja delimiter survives: a later template of the page cannot run a name.
    for delimiter in ("{{", "{%", "{#", "}}", "%}", "#}"):
        assert delimiter not in html_page
    # The browser still shows the name as it is.
    assert hostile in [cells for row in page.rows for cells in row["cells"]]
    assert any(hostile in text for text in page.svg_texts)


def test_the_page_needs_nothing_from_outside():
    html_page = health_report_html(pki_info([certificate("alice", 40)]))
    page = Page(html_page)
    assert not page.tags & {"script", "link", "img", "iframe", "object", "embed"}
    assert "url(" not in html_page and "@import" not in html_page
    assert re.findall(r"https?://[^\s\"'<]+", html_page) == ["http://www.w3.org/2000/svg"]
    assert html_page.startswith("<!DOCTYPE html>") and html_page.rstrip().endswith("</html>")


def test_title_names_the_pki_and_the_check_time():
    html_page = health_report_html(pki_info())
    assert "<title>PKI health: /srv/clientvpn/pki (2026-11-26 01:00 UTC)</title>" in html_page
    assert "<h1>PKI health: <code>/srv/clientvpn/pki</code></h1>" in html_page


def test_inventory_is_sorted_by_expiry_with_ca_and_crl_in_place_and_states_marked():
    certs = [certificate("late", 700), certificate("revoked", 100, status="R"), certificate("expired", -5, status="E"),
             certificate("soon", 10), certificate("vpn-server", 60, kind="server"), dict(certificate("gone", 50), not_after="not a date")]
    page = Page(health_report_html(pki_info(certs, crl_days=20, previous=[-400])))
    names = [row["cells"][1] for row in page.rows]
    assert names == ["expired-ca.list", "expired", "soon", "crl.pem", "vpn-server", "revoked", "late", "ca", "gone"]
    by_name = dict((row["cells"][1], row) for row in page.rows)
    assert by_name["expired"]["class"] == "expired" and by_name["revoked"]["class"] == "revoked"
    assert by_name["soon"]["class"] == "expiring" and by_name["soon"]["cells"][4] == "expiring"
    assert by_name["late"]["class"] is None and by_name["late"]["cells"][4] == "valid"
    assert by_name["crl.pem"]["cells"][0] == "CRL" and by_name["crl.pem"]["cells"][4] == "valid"
    assert by_name["revoked"]["cells"][7] == "2026-10-27 01:00"
    # An unreadable date is shown as it is, last.
    assert by_name["gone"]["cells"][5] == "not a date"


def test_a_certificate_whose_file_is_gone_is_listed_and_flagged():
    page = Page(health_report_html(pki_info([dict(certificate("x", 90), name=None, type="unknown", files_present=False, key=None)])))
    (row,) = [row for row in page.rows if row["cells"][0] == "unknown"]
    assert row["cells"][1] == "(file gone)" and row["cells"][9] == "missing"


def crl_state(html_page):
    return [row["cells"][4] for row in Page(html_page).rows if row["cells"][0] == "CRL"][0]


def test_thresholds_come_from_the_result_and_can_be_overridden():
    info = pki_info(crl_days=10)
    assert crl_state(health_report_html(info)) == "expiring"
    assert crl_state(health_report_html(info, thresholds={"crl": 5})) == "valid"
    with pytest.raises(AnsibleFilterError, match="not a number of days"):
        health_report_html(info, thresholds={"crl": "soon"})
    # A threshold beyond any date still draws (its band to the end of the axis).
    assert crl_state(health_report_html(info, thresholds={"crl": 10 ** 9})) == "expiring"


def test_timeline_has_a_labelled_marker_for_each_kind_and_today():
    certs = [certificate("server", 400, kind="server"), certificate("alice", 40), certificate("bob", 200)]
    page = Page(health_report_html(pki_info(certs, crl_days=100, previous=[-10])))
    markers = [kind for css, kind in page.kinds if css == "marker"]
    assert sorted(markers) == ["ca", "ca", "crl", "server", "today"]
    labels = " | ".join(page.svg_texts)
    for label in ("CA " + iso(3000)[:10], "previous CA " + iso(-10)[:10], "server " + iso(400)[:10], "CRL nextUpdate " + iso(100)[:10],
                  "clients: 2 certificates by month of expiry", "today 2026-11-26"):
        assert label in labels
    assert sorted(page.bar_titles) == ["2027-01: 1 clients expire", "2027-06: 1 clients expire"]


def test_clients_are_counted_per_week_when_they_expire_close_together():
    page = Page(health_report_html(pki_info([certificate("c%d" % day, day) for day in range(1, 50)])))
    assert "clients: 49 certificates by week of expiry" in page.svg_texts
    counts = [int(re.search(r": (\d+) clients", title).group(1)) for title in page.bar_titles]
    assert sum(counts) == 49 and max(counts) <= 7 and len(counts) >= 7


def test_twenty_thousand_clients_are_aggregated_into_bars():
    certs = [certificate("client-%05d.example.com" % index, -60 + index % 900, status="R" if index % 50 == 0 else "V", serial="%032X" % index)
             for index in range(20000)]
    info = pki_info([certificate("server", 800, kind="server")] + certs, previous=[-20])
    started = time.perf_counter()
    html_page = health_report_html(info)
    seconds = time.perf_counter() - started
    print("health_report_html: 20,000 clients rendered in %.2f s, %d bytes" % (seconds, len(html_page.encode("utf-8"))))
    page = Page(html_page)
    assert len(page.rows) == 20000 + 4  # the clients, the server, the CA, the previous CA, the CRL
    bars = [(css, kind) for css, kind in page.kinds if css == "bar"]
    assert 25 <= len(bars) <= 40  # one per month from a month ago to 30 months ahead, and one for the expired before the axis
    drawn = sum(int(re.search(r"(\d[\d,]*) clients", title).group(1).replace(",", "")) for title in page.bar_titles)
    assert drawn == 20000 - 400  # the revoked ones are not drawn
    svg = html_page[html_page.index("<svg"):html_page.index("</svg>")]
    assert len(svg) < 60000
    assert len(html_page.encode("utf-8")) < 10 * 1024 * 1024
    assert seconds < 10, "rendering 20,000 certificates took %.1f s" % seconds


def test_a_pki_with_only_its_ca_renders():
    info = pki_info(crl_days=None)
    info["crl"]["matches_index"] = True
    html_page = health_report_html(info)
    page = Page(html_page)
    assert [row["cells"][0] for row in page.rows] == ["CA", "CRL"]
    assert [row["cells"][4] for row in page.rows] == ["valid", "absent, nothing revoked"]
    assert "Healthy: no problems found" in html_page and '<p id="problems" class="none">No problems.</p>' in html_page
    assert "no server certificate" in page.svg_texts and "no crl.pem" in page.svg_texts and "clients: none" in page.svg_texts


def test_a_missing_crl_with_revoked_certificates_is_marked():
    problem = {"code": "crl_missing", "severity": "critical", "object": "/srv/clientvpn/pki/crl.pem", "date": None, "days_left": None,
               "message": "1 certificate(s) are revoked in index.txt but there is no crl.pem", "fix": "publish the CRL"}
    info = pki_info([certificate("mallory", 300, status="R")], problems=[problem], crl_days=None)
    info["crl"]["matches_index"] = False
    html_page = health_report_html(info)
    page = Page(html_page)
    (crl,) = [row for row in page.rows if row["cells"][0] == "CRL"]
    assert crl["class"] == "missing" and crl["cells"][9] == "missing"
    assert "no crl.pem" in page.svg_texts and ("marker", "crl") not in page.kinds
    assert "Critical: 1 problem(s), 1 critical" in html_page and '<td class="sev critical">critical</td>' in html_page


def test_problems_are_listed_critical_first():
    problems = [{"code": "clients_expiring", "severity": "warning", "object": "3 client certificate(s)", "date": iso(5), "days_left": 5,
                 "message": "3 client certificate(s) expire within 30 days", "fix": "renew them"},
                {"code": "crl_expiring", "severity": "critical", "object": "crl.pem", "date": iso(9), "days_left": 9,
                 "message": "the CRL's nextUpdate is near", "fix": "re-sign it"}]
    html_page = health_report_html(pki_info(problems=problems))
    table = html_page[html_page.index('<table id="problems">'):]
    assert table.index("re-sign it") < table.index("renew them")
    assert "<td>2026-12-05 01:00</td><td class=\"num\">9</td>" in table


def test_acm_copies_are_listed_with_what_differs():
    info = pki_info()
    assert '<table id="acm">' not in health_report_html(info)
    info["acm"] = {
        "server": {"certificate_arn": "arn:aws:acm:eu-west-1:123456789012:certificate/s", "found": True, "same_as_disk": False,
                   "serial": "AB12", "not_after": iso(300)},
        "alice": {"certificate_arn": "arn:aws:acm:eu-west-1:123456789012:certificate/a", "found": False, "same_as_disk": None,
                  "serial": None, "not_after": None},
    }
    table = health_report_html(info).split('<table id="acm">')[1].split("</table>")[0]
    rows = table.split("<tr")[2:]
    assert [row.split("<td>")[1].split("</td>")[0] for row in rows] == ["alice", "server"]
    assert rows[0].startswith(' class="expired"') and "<b>not found</b>" in rows[0]
    assert rows[1].startswith(' class="expired"') and "<td>yes</td><td><b>no</b></td>" in rows[1] and "2027-09-22 01:00" in rows[1]


def test_only_checked_at_is_required():
    html_page = health_report_html({"checked_at": "2026-11-26T01:00:00Z"})
    assert "Healthy: no problems found" in html_page and "No certificate, CA or CRL found." in html_page


def test_past_days_sets_where_the_timeline_starts():
    assert "<title>What expires when, from 2026-10-29 to " in health_report_html(pki_info())
    assert "<title>What expires when, from 2026-08-28 to " in health_report_html(pki_info(), past_days=90)
    for wrong in (-1, 10 ** 6, "a while"):
        with pytest.raises(AnsibleFilterError, match="past_days"):
            health_report_html(pki_info(), past_days=wrong)


@pytest.mark.parametrize("info, message", [
    ("not a dict", "expects the result of clientvpn.pki.vpn_pki_info"),
    ({"pki_dir": "/x"}, "checked_at=None is not an ISO 8601 date"),
    ({"checked_at": iso(0), "certificates": "abc"}, "certificates must be a list"),
])
def test_input_that_is_not_a_vpn_pki_info_result_is_refused(info, message):
    with pytest.raises(AnsibleFilterError, match=message):
        health_report_html(info)
