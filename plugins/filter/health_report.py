# -*- coding: utf-8 -*-
# Copyright: clientvpn.pki contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""health_report_html: the result of clientvpn.pki.vpn_pki_info as one self-contained HTML page.

The page has to open from an AWX artifact or an e-mail attachment: no external
asset, no JavaScript, the timeline is inline SVG. Every string of the data is
escaped (names come from users), and so are ``{`` and ``}``, so that the page
never holds a Jinja delimiter that a later template could run. The documentation
is in health_report_html.yml beside this file.
"""

from __future__ import annotations

import datetime
import html
from collections.abc import Mapping

from ansible.errors import AnsibleFilterError

# Same defaults as vpn_pki_info: days before a date that make it a problem.
DEFAULT_THRESHOLDS = {"ca": 180, "server": 30, "crl": 14, "client": 30}
DEFAULT_PAST_DAYS = 28
MAX_DAYS = 36500  # beyond any certificate, and far from datetime's limits
UTC = datetime.timezone.utc
FAR_FUTURE = datetime.datetime(9999, 12, 31, tzinfo=UTC)

# The timeline: the first year from now gets most of the width (the CRL, the server
# and the next clients live there); the years after it, up to the CA, the rest.
SVG_WIDTH = 1200
PLOT_LEFT = 130
PLOT_RIGHT = SVG_WIDTH - 20
NEAR_DAYS = 365
NEAR_SHARE = 0.62
CHAR_WIDTH = 6.3  # average width of an 11px sans-serif character, to keep labels apart
LABEL_ROW = 13
MAX_LABEL_ROWS = 4
BAR_HEIGHT = 64
# The inventory is cut into tables of this many rows, each laid out only when scrolled into view.
CHUNK_ROWS = 500
ROW_HEIGHT = 26
ROW_CLASSES = ("expired", "revoked", "expiring", "missing")
INVENTORY_HEAD = ('<thead><tr><th>Kind</th><th>Name</th><th>Common name</th><th>Serial</th><th>Status</th><th>Expires (UTC)</th>'
                  '<th>Days left</th><th>Revoked (UTC)</th><th>Key</th><th>Files</th></tr></thead>')
KIND_ORDER = {"CA": 0, "previous CA": 1, "CRL": 2, "server": 3, "client": 4, "unknown": 5}

STYLE = """
body { font: 14px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, "Liberation Sans", Arial, sans-serif; color: #1d2939; margin: 24px; }
h1 { font-size: 22px; margin: 0 0 4px 0; }
h2 { font-size: 17px; margin: 28px 0 8px 0; }
code { font-family: ui-monospace, "DejaVu Sans Mono", "Liberation Mono", monospace; }
.meta { color: #475467; margin: 0; }
.verdict { font-size: 16px; font-weight: 600; padding: 8px 12px; border-radius: 6px; display: inline-block; margin: 4px 0 12px 0; }
.verdict.critical { background: #fee4e2; color: #912018; }
.verdict.warning { background: #fef0c7; color: #93370d; }
.verdict.healthy { background: #dcfae6; color: #085d3a; }
ul.counts { list-style: none; padding: 0; margin: 0 0 12px 0; display: flex; flex-wrap: wrap; gap: 8px; }
ul.counts li { border: 1px solid #d0d5dd; border-radius: 6px; padding: 6px 12px; min-width: 80px; }
ul.counts b { display: block; font-size: 20px; }
ul.counts li.alert { border-color: #d92d20; color: #912018; }
table { border-collapse: collapse; font-size: 13px; }
th, td { border-bottom: 1px solid #eaecf0; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #f2f4f7; position: sticky; top: 0; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.chunk { content-visibility: auto; }
table.inventory { table-layout: fixed; width: 100%; min-width: 1250px; }
table.inventory td { overflow-wrap: anywhere; }
table.inventory th:nth-child(1) { width: 6.5%; }
table.inventory th:nth-child(2), table.inventory th:nth-child(3) { width: 14.5%; }
table.inventory th:nth-child(4) { width: 20%; }
table.inventory th:nth-child(5) { width: 7.5%; }
table.inventory th:nth-child(6), table.inventory th:nth-child(8) { width: 10.5%; }
table.inventory th:nth-child(7) { width: 5%; }
table.inventory th:nth-child(9) { width: 6%; }
table.inventory th:nth-child(10) { width: 5%; }
#problems td:nth-child(3) { white-space: nowrap; }
td.serial { font-family: ui-monospace, "DejaVu Sans Mono", "Liberation Mono", monospace; font-size: 11px; }
.sev { font-weight: 600; text-transform: uppercase; font-size: 12px; }
.sev.critical { color: #b42318; }
.sev.warning { color: #b54708; }
tr.expired td { background: #fef3f2; color: #912018; }
tr.revoked td { color: #667085; text-decoration: line-through; }
tr.revoked td:nth-child(5) { text-decoration: none; }
tr.expiring td { background: #fffaeb; }
tr.missing td { background: #fef3f2; }
.timeline { max-width: 100%; height: auto; border: 1px solid #eaecf0; border-radius: 6px; }
.legend { color: #475467; font-size: 12px; }
footer { margin-top: 32px; color: #667085; font-size: 12px; }
"""

SVG_STYLE = """
text { font-family: system-ui, "Liberation Sans", Arial, sans-serif; font-size: 11px; fill: #1d2939; }
.lane-title { font-size: 13px; font-weight: 600; }
.lane-note { fill: #667085; }
.tick { fill: #475467; font-size: 10px; }
.count { font-size: 10px; fill: #344054; }
.today { fill: #b42318; font-weight: 600; }
"""

STATE_COLOURS = {"expired": "#d92d20", "expiring": "#dc6803", "valid": "#1570ef", "past": "#98a2b3"}


def _esc(value):
    """Text or attribute value: HTML-escaped, and without a Jinja delimiter."""
    if value is None:
        return ""
    return html.escape(str(value), quote=True).replace("{", "&#123;").replace("}", "&#125;")


def _parse(value):
    """An ISO 8601 date as an aware UTC datetime; None when absent or unreadable."""
    if isinstance(value, datetime.datetime):
        moment = value
    elif isinstance(value, str) and value:
        text = value[:-1] + "+00:00" if value.endswith("Z") else value
        try:
            moment = datetime.datetime.fromisoformat(text)
        except ValueError:
            return None
    else:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _day(moment):
    return moment.strftime("%Y-%m-%d")


def _when(raw, moment):
    """A date cell: the UTC time when readable, else the raw text."""
    if moment is not None:
        return moment.strftime("%Y-%m-%d %H:%M")
    return _esc(raw)


def _int(value):
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _state(days_left, threshold):
    """valid / expiring / expired from the days left and the kind's threshold."""
    if days_left is None:
        return "valid"
    if days_left < 0:
        return "expired"
    if days_left <= threshold:
        return "expiring"
    return "valid"


def _thresholds(info, overrides):
    thresholds = dict(DEFAULT_THRESHOLDS)
    for source in (info.get("thresholds"), overrides):
        if source is None:
            continue
        if not isinstance(source, Mapping):
            raise AnsibleFilterError("health_report_html: thresholds must be a dict of days (ca, server, crl, client), got %r" % (source,))
        for kind, days in source.items():
            if _int(days) is None or _int(days) < 0:
                raise AnsibleFilterError("health_report_html: threshold %s=%r is not a number of days, 0 or more" % (kind, days))
            thresholds[str(kind)] = _int(days)
    return thresholds


def _yes_no(value, no):
    """yes, the given no, or nothing when the result does not say."""
    if value is None:
        return ""
    return "yes" if value else no


def _number(count):
    return "{:,}".format(count)


class Axis(object):
    """Dates to x: linear over [now - past_days, now + 1 year], then a coarser linear part up to the last date."""

    def __init__(self, now, last, past_days):
        self.now = now
        self.start = now - datetime.timedelta(days=past_days)
        self.end = max(last, now + datetime.timedelta(days=60))
        near_end = now + datetime.timedelta(days=NEAR_DAYS)
        if self.end <= near_end + datetime.timedelta(days=90):
            self.segments = [(self.start, self.end, PLOT_LEFT, PLOT_RIGHT)]
        else:
            split = PLOT_LEFT + (PLOT_RIGHT - PLOT_LEFT) * NEAR_SHARE
            self.segments = [(self.start, near_end, PLOT_LEFT, split), (near_end, self.end, split, PLOT_RIGHT)]

    @property
    def split(self):
        """The x and date where the scale changes, or None."""
        if len(self.segments) == 1:
            return None
        return self.segments[1][2], self.segments[1][0]

    def x(self, moment):
        moment = min(max(moment, self.start), self.end)
        for first, last, left, right in self.segments:
            if moment <= last:
                span = (last - first).total_seconds() or 1.0
                return left + (right - left) * (moment - first).total_seconds() / span
        return PLOT_RIGHT

    def ticks(self):
        """(date, label) pairs: months (or weeks) on the near part, years on the far one."""
        ticks = []
        first, last, left, right = self.segments[0]
        if (last - first).days < 100:
            day = datetime.datetime(first.year, first.month, first.day, tzinfo=UTC)
            day += datetime.timedelta(days=(7 - day.weekday()) % 7)
            while day <= last:
                ticks.append((day, day.strftime("%b %d")))
                day += datetime.timedelta(days=7)
        else:
            month = _month_start(first)
            if month < first:
                month = _next_month(month)
            months = []
            while month <= last:
                months.append(month)
                month = _next_month(month)
            step = max(1, int(len(months) * 45 / max(right - left, 1)) + 1)
            for index, month in enumerate(months[::step]):
                ticks.append((month, month.strftime("%b %Y") if index == 0 or month.month == 1 else month.strftime("%b")))
        if len(self.segments) > 1:
            first, last, left, right = self.segments[1]
            years = list(range(first.year + 1, last.year + 1))
            step = max(1, int(len(years) * 45 / max(right - left, 1)) + 1)
            for year in years[::step]:
                ticks.append((datetime.datetime(year, 1, 1, tzinfo=UTC), str(year)))
        return ticks


def _month_start(moment):
    return datetime.datetime(moment.year, moment.month, 1, tzinfo=UTC)


def _next_month(moment):
    return datetime.datetime(moment.year + moment.month // 12, moment.month % 12 + 1, 1, tzinfo=UTC)


class HealthReport(object):
    """One vpn_pki_info result made into rows, a timeline and the page."""

    def __init__(self, info, thresholds=None, past_days=DEFAULT_PAST_DAYS):
        if not isinstance(info, Mapping):
            raise AnsibleFilterError("health_report_html expects the result of clientvpn.pki.vpn_pki_info (a dict), got %s" % type(info).__name__)
        self.info = info
        self.now = _parse(info.get("checked_at"))
        if self.now is None:
            raise AnsibleFilterError("health_report_html: checked_at=%r is not an ISO 8601 date: is this a vpn_pki_info result?" % (info.get("checked_at"),))
        if _int(past_days) is None or not 0 <= _int(past_days) <= MAX_DAYS:
            raise AnsibleFilterError("health_report_html: past_days=%r is not a number of days from 0 to %d" % (past_days, MAX_DAYS))
        self.past_days = _int(past_days)
        self.thresholds = _thresholds(info, thresholds)
        self.ca = info.get("ca") or {}
        self.crl = info.get("crl") or {}
        certificates = info.get("certificates") or []
        if not isinstance(certificates, list):
            raise AnsibleFilterError("health_report_html: certificates must be a list, got %s" % type(certificates).__name__)
        self.certificates = [cert for cert in certificates if isinstance(cert, Mapping)]
        self.problems = [problem for problem in info.get("problems") or [] if isinstance(problem, Mapping)]

    def days_left(self, item, moment):
        days = _int(item.get("days_left"))
        if days is None and moment is not None:
            days = (moment - self.now).days
        return days

    # -- the inventory: every certificate, the CA (and the ones it replaced), the CRL ---
    def rows(self):
        """Dicts of the inventory table, soonest expiry first (no date last)."""
        rows = []
        if self.ca:
            moment = _parse(self.ca.get("not_after"))
            days = self.days_left(self.ca, moment)
            rows.append(dict(kind="CA", name="ca", cn=self.ca.get("common_name"), serial=self.ca.get("serial"), raw=self.ca.get("not_after"),
                             moment=moment, days=days, state=_state(days, self.thresholds["ca"]), revoked=None, key=self.ca.get("key"), files=True))
            for previous in self.ca.get("previous") or []:
                moment = _parse(previous.get("not_after"))
                days = self.days_left(previous, moment)
                rows.append(dict(kind="previous CA", name="expired-ca.list", cn=previous.get("common_name"), serial=previous.get("serial"),
                                 raw=previous.get("not_after"), moment=moment, days=days, state="expired" if days is not None and days < 0 else "replaced",
                                 revoked=None, key=previous.get("key"), files=True))
        if self.crl:
            rows.append(self._crl_row())
        for cert in self.certificates:
            moment = _parse(cert.get("not_after"))
            days = self.days_left(cert, moment)
            kind = cert.get("type") if cert.get("type") in ("server", "client") else "unknown"
            status = cert.get("status")
            if status == "R":
                state = "revoked"
            elif status == "E":
                state = "expired"
            else:
                state = _state(days, self.thresholds["server" if kind == "server" else "client"])
            rows.append(dict(kind=kind, name=cert.get("name"), cn=cert.get("common_name"), serial=cert.get("serial"), raw=cert.get("not_after"),
                             moment=moment, days=days, state=state, revoked=cert.get("revoked_at"), key=cert.get("key"),
                             files=bool(cert.get("files_present"))))
        rows.sort(key=lambda row: (row["moment"] is None, row["moment"] or FAR_FUTURE, KIND_ORDER.get(row["kind"], 9), str(row["name"] or "")))
        return rows

    def _crl_row(self):
        present = bool(self.crl.get("present"))
        moment = _parse(self.crl.get("next_update"))
        days = self.days_left(self.crl, moment)
        if not present:
            # No crl.pem is fine while nothing is revoked (a new PKI); vpn_pki_info says which.
            state = "absent, nothing revoked" if self.crl.get("matches_index") else "missing"
        elif moment is None:
            state = "no nextUpdate"
        else:
            state = _state(days, self.thresholds["crl"])
        if present and not self.crl.get("matches_index", True):
            state += ", out of step with index.txt"
        entries = _int(self.crl.get("entries")) or 0
        return dict(kind="CRL", name="crl.pem", cn="%s revoked listed" % _number(entries) if present else "", serial="", raw=self.crl.get("next_update"),
                    moment=moment, days=days, state=state, revoked=None, key=None, files=present)

    def inventory_table(self, rows):
        """Tables of CHUNK_ROWS rows: a browser lays out only the ones in view (content-visibility), 20,000 rows open in seconds."""
        parts = ['<div id="certificates">']
        append = parts.append
        for first in range(0, max(len(rows), 1), CHUNK_ROWS):
            chunk = rows[first:first + CHUNK_ROWS]
            append('<div class="chunk" style="contain-intrinsic-size: auto %dpx"><table class="inventory">%s<tbody>\n' % (
                ROW_HEIGHT * (len(chunk) + 1), INVENTORY_HEAD))
            for row in chunk:
                state = row["state"]
                first_state = state.split(",")[0]
                append('<tr%s><td>%s</td><td>%s</td><td>%s</td><td class="serial">%s</td><td>%s</td><td>%s</td><td class="num">%s</td>'
                       '<td>%s</td><td>%s</td><td>%s</td></tr>\n' % (
                           ' class="%s"' % first_state if first_state in ROW_CLASSES else "", _esc(row["kind"]),
                           _esc(row["name"]) if row["name"] is not None else ("" if state == "revoked" else "<i>(file gone)</i>"),
                           _esc(row["cn"]), _esc(row["serial"]),
                           _esc(state), _when(row["raw"], row["moment"]), "" if row["days"] is None else row["days"],
                           _when(row["revoked"], _parse(row["revoked"])) if row["revoked"] else "", _esc(row["key"]),
                           "yes" if row["files"] else ("" if state == "revoked" else "<b>missing</b>")))
            if not chunk:
                append('<tr><td colspan="10">No certificate, CA or CRL found.</td></tr>')
            append("</tbody></table></div>\n")
        append("</div>")
        return "".join(parts)

    # -- the summary and the problems ----------------------------------------------------------
    def summary(self):
        summary = self.info.get("summary") or {}
        problems = _int(summary.get("problems"))
        problems = len(self.problems) if problems is None else problems
        critical = _int(summary.get("critical"))
        critical = sum(1 for problem in self.problems if problem.get("severity") == "critical") if critical is None else critical
        if critical:
            verdict = '<p class="verdict critical">Critical: %d problem(s), %d critical</p>' % (problems, critical)
        elif problems:
            verdict = '<p class="verdict warning">Warning: %d problem(s) to plan</p>' % problems
        else:
            verdict = '<p class="verdict healthy">Healthy: no problems found</p>'
        counts = []
        for key, label in (("valid", "valid"), ("expiring", "expiring"), ("expired", "expired"), ("revoked", "revoked")):
            value = _int(summary.get(key))
            alert = ' class="alert"' if value and key in ("expiring", "expired") else ""
            counts.append('<li%s><b>%s</b>%s</li>' % (alert, _number(value) if value is not None else "?", label))
        counts.append('<li%s><b>%d</b>problems</li>' % (' class="alert"' if problems else "", problems))
        counts.append('<li%s><b>%d</b>critical</li>' % (' class="alert"' if critical else "", critical))
        return verdict + '<ul class="counts">' + "".join(counts) + "</ul>" + self.problems_table()

    def problems_table(self):
        if not self.problems:
            return '<p id="problems" class="none">No problems.</p>'
        order = {"critical": 0, "warning": 1}
        problems = sorted(self.problems, key=lambda problem: (order.get(problem.get("severity"), 2), _parse(problem.get("date")) or FAR_FUTURE))
        parts = ['<table id="problems"><thead><tr><th>Severity</th><th>Object</th><th>Date (UTC)</th><th>Days left</th><th>Problem</th><th>Fix</th>'
                 '</tr></thead><tbody>']
        for problem in problems:
            severity = str(problem.get("severity") or "")
            days = _int(problem.get("days_left"))
            parts.append('<tr><td class="sev %s">%s</td><td>%s</td><td>%s</td><td class="num">%s</td><td>%s</td><td>%s</td></tr>' % (
                severity if severity in order else "", _esc(severity), _esc(problem.get("object")),
                _when(problem.get("date"), _parse(problem.get("date"))) if problem.get("date") else "", "" if days is None else days,
                _esc(problem.get("message")), _esc(problem.get("fix"))))
        parts.append("</tbody></table>")
        return "".join(parts)

    def acm_table(self):
        acm = self.info.get("acm") or {}
        if not isinstance(acm, Mapping) or not acm:
            return ""
        parts = ['<h2>ACM</h2><table id="acm"><thead><tr><th>Certificate</th><th>ARN</th><th>In ACM</th><th>Same as on disk</th><th>Serial</th>'
                 '<th>Expires (UTC)</th></tr></thead><tbody>']
        for key in sorted(acm, key=str):
            entry = acm[key] if isinstance(acm[key], Mapping) else {}
            found, same = entry.get("found"), entry.get("same_as_disk")
            parts.append('<tr%s><td>%s</td><td><code>%s</code></td><td>%s</td><td>%s</td><td class="serial">%s</td><td>%s</td></tr>' % (
                ' class="expired"' if found is False or same is False else "", _esc(key), _esc(entry.get("certificate_arn")),
                _yes_no(found, "<b>not found</b>"), _yes_no(same, "<b>no</b>"), _esc(entry.get("serial")),
                _when(entry.get("not_after"), _parse(entry.get("not_after")))))
        parts.append("</tbody></table>")
        return "".join(parts)

    # -- the timeline ---------------------------------------------------------------------------
    def timeline(self):
        """Inline SVG: one lane each for the CA, the server(s), the CRL and the clients (bars per month or week)."""
        lanes = [("CA", "ca", self._ca_markers()), ("server", "server", self._server_markers()), ("CRL", "crl", self._crl_markers())]
        groups = self._groups()
        dates = [marker[0] for _title, _kind, (markers, _note) in lanes for marker in markers]
        dates += [moment for certs in groups.values() for moment, _state in certs]
        axis = Axis(self.now, max(dates) + datetime.timedelta(days=20) if dates else self.now + datetime.timedelta(days=365), self.past_days)
        body = []
        top = 28
        lane_tops = []
        for title, kind, (markers, note) in lanes:
            height, svg = self._point_lane(axis, top, title, kind, markers, note)
            lane_tops.append((kind, top, height))
            body.append(svg)
            top += height
        for kind, title in (("client", "clients"), ("unknown", "other")):
            if kind == "client" or groups.get(kind):
                height, svg = self._bar_lane(axis, top, title, kind, groups.get(kind, []), self._revoked_count(kind))
                lane_tops.append((kind, top, height))
                body.append(svg)
                top += height
        bottom = top
        height = bottom + 34
        background = ['<rect x="%.1f" y="22" width="%.1f" height="%d" fill="#f2f4f7"/>' % (PLOT_LEFT, axis.x(self.now) - PLOT_LEFT, bottom - 22)]
        for kind, lane_top, lane_height in lane_tops:
            days = self.thresholds["client" if kind in ("client", "unknown") else kind]
            left = axis.x(self.now)
            right = axis.x(self.now + datetime.timedelta(days=min(days, MAX_DAYS)))
            background.append('<rect class="band" data-kind="%s" x="%.1f" y="%d" width="%.1f" height="%d" fill="#fdb022" fill-opacity="0.22">'
                              '<title>%s threshold: %d days</title></rect>' % (kind, left, lane_top + 1, max(right - left, 1), lane_height - 2, kind, days))
        for _kind, lane_top, _lane_height in lane_tops[1:]:
            background.append('<line x1="8" x2="%d" y1="%d" y2="%d" stroke="#eaecf0"/>' % (PLOT_RIGHT, lane_top, lane_top))
        foreground = [self._axis_svg(axis, bottom)]
        today = axis.x(self.now)
        foreground.append('<g class="marker" data-kind="today"><line x1="%.1f" x2="%.1f" y1="18" y2="%d" stroke="#b42318" stroke-width="2"/>'
                          '<text class="today" x="%.1f" y="13" text-anchor="middle">today %s</text></g>' % (today, today, bottom, today, _day(self.now)))
        split = axis.split
        if split:
            foreground.append('<line x1="%.1f" x2="%.1f" y1="22" y2="%d" stroke="#98a2b3" stroke-dasharray="4 3"/>'
                              '<text class="tick" x="%.1f" y="13" text-anchor="middle">scale changes: months | years</text>'
                              % (split[0], split[0], bottom, split[0]))
        return ('<svg class="timeline" xmlns="http://www.w3.org/2000/svg" role="img" width="%d" height="%d" viewBox="0 0 %d %d">'
                '<title>What expires when, from %s to %s</title><style>%s</style>%s%s%s</svg>' % (
                    SVG_WIDTH, height, SVG_WIDTH, height, _day(axis.start), _day(axis.end), SVG_STYLE,
                    "".join(background), "".join(body), "".join(foreground)))

    def _ca_markers(self):
        markers = []
        if not self.ca:
            return markers, "no CA"
        moment = _parse(self.ca.get("not_after"))
        if moment is not None:
            days = self.days_left(self.ca, moment)
            markers.append((moment, "CA %s" % _day(moment), _state(days, self.thresholds["ca"]),
                            "CA %s expires %s (%s days)" % (self.ca.get("common_name") or "", _day(moment), days)))
        for previous in self.ca.get("previous") or []:
            moment = _parse(previous.get("not_after"))
            if moment is not None:
                days = self.days_left(previous, moment)
                markers.append((moment, "previous CA %s" % _day(moment), "expired" if days is not None and days < 0 else "past",
                                "previous CA certificate, serial %s, expires %s (%s days)" % (previous.get("serial") or "?", _day(moment), days)))
        return markers, None

    def _server_markers(self):
        markers = []
        revoked = 0
        for cert in self.certificates:
            if cert.get("type") != "server":
                continue
            if cert.get("status") == "R":
                revoked += 1
                continue
            moment = _parse(cert.get("not_after"))
            if moment is None:
                continue
            days = self.days_left(cert, moment)
            name = cert.get("name") or cert.get("common_name") or "?"
            state = "expired" if cert.get("status") == "E" else _state(days, self.thresholds["server"])
            label = "server %s" % _day(moment) if name == "server" else "server %s %s" % (name, _day(moment))
            markers.append((moment, label, state, "server certificate %s expires %s (%s days)" % (name, _day(moment), days)))
        if markers:
            return markers, None
        return markers, "no valid server certificate (%d revoked)" % revoked if revoked else "no server certificate"

    def _crl_markers(self):
        if not self.crl or not self.crl.get("present"):
            return [], "no crl.pem"
        moment = _parse(self.crl.get("next_update"))
        if moment is None:
            return [], "CRL without nextUpdate"
        days = self.days_left(self.crl, moment)
        return [(moment, "CRL nextUpdate %s" % _day(moment), _state(days, self.thresholds["crl"]),
                 "the CRL's nextUpdate is %s (%s days): after it the endpoint refuses every connection" % (_day(moment), days))], None

    def _groups(self):
        """{type: [(not_after, state)]} of the client and unknown certificates that are not revoked."""
        groups = {"client": [], "unknown": []}
        for cert in self.certificates:
            kind = cert.get("type")
            if kind == "server" or cert.get("status") == "R":
                continue
            moment = _parse(cert.get("not_after"))
            if moment is not None:
                groups["client" if kind == "client" else "unknown"].append((moment, cert.get("status")))
        return groups

    def _revoked_count(self, kind):
        return sum(1 for cert in self.certificates
                   if cert.get("status") == "R" and (cert.get("type") == kind or (kind == "unknown" and cert.get("type") not in ("server", "client"))))

    def _point_lane(self, axis, top, title, kind, markers, note):
        """Markers with their labels packed into rows so that they do not overlap."""
        placed = []
        row_ends = []
        for moment, label, state, tooltip in sorted(markers, key=lambda marker: marker[0]):
            x = axis.x(moment)
            width = len(label) * CHAR_WIDTH
            anchor_end = x + 8 + width > SVG_WIDTH - 4
            left = x - 8 - width if anchor_end else x + 8
            row = next((index for index, end in enumerate(row_ends) if left > end + 6), None)
            if row is None and len(row_ends) < MAX_LABEL_ROWS:
                row_ends.append(0)
                row = len(row_ends) - 1
            elif row is None:
                row = row_ends.index(min(row_ends))
            row_ends[row] = left + width
            placed.append((x, row, anchor_end, moment, label, state, tooltip))
        rows = max(1, len(row_ends))
        height = 22 + LABEL_ROW * rows
        line = top + height - 12
        parts = ['<g class="lane" data-kind="%s"><text class="lane-title" x="10" y="%d">%s</text>' % (kind, line + 4, _esc(title))]
        if note:
            parts.append('<text class="lane-note" x="%d" y="%d">%s</text>' % (PLOT_LEFT + 6, line + 4, _esc(note)))
        for x, row, anchor_end, moment, label, state, tooltip in placed:
            colour = STATE_COLOURS.get(state, STATE_COLOURS["valid"])
            baseline = line + 4 - row * LABEL_ROW
            if moment < axis.start:
                label = "\u25c2 " + label
            parts.append('<g class="marker" data-kind="%s"><title>%s</title>%s%s<text x="%.1f" y="%d"%s>%s</text></g>' % (
                kind, _esc(tooltip), '<line x1="%.1f" x2="%.1f" y1="%d" y2="%d" stroke="%s"/>' % (x, x, baseline - 4, line, colour) if row else "",
                _shape(kind, x, line, colour), x - 8 if anchor_end else x + 8, baseline, ' text-anchor="end"' if anchor_end else "", _esc(label)))
        parts.append("</g>")
        return height, "".join(parts)

    def _bar_lane(self, axis, top, title, kind, certs, revoked):
        """The certificates of one type counted per month (per week when they all expire within 4 months, in the first year)."""
        height = BAR_HEIGHT + 40
        base = top + height - 6
        parts = ['<g class="lane" data-kind="%s"><text class="lane-title" x="10" y="%d">%s</text>' % (kind, top + 18, _esc(title)),
                 '<text class="lane-note" x="10" y="%d">%s shown</text>' % (top + 32, _number(len(certs)))]
        if revoked:
            parts.append('<text class="lane-note" x="10" y="%d">%s revoked</text>' % (top + 45, _number(revoked)))
        if not certs:
            parts.append('<text x="%d" y="%d">%s: none</text></g>' % (PLOT_LEFT + 6, base - 4, _esc(title)))
            return height, "".join(parts)
        visible = [moment for moment, _status in certs if moment >= axis.start]
        # Weeks only where they are wide enough to see: all within four months, in the first year.
        weekly = bool(visible) and (max(visible) - min(visible)).days <= 120 and max(visible) <= self.now + datetime.timedelta(days=NEAR_DAYS)
        buckets = {}  # {start of the month or week: [expired, not yet expired]}
        earlier = 0
        for moment, _status in certs:
            if moment < axis.start:
                earlier += 1
                continue
            bucket = buckets.setdefault(_week_start(moment) if weekly else _month_start(moment), [0, 0])
            bucket[0 if moment < self.now else 1] += 1
        tallest = max([sum(bucket) for bucket in buckets.values()] + [earlier])
        per = "week" if weekly else "month"
        parts.append('<text class="marker-label" x="%d" y="%d">%s: %s certificate%s by %s of expiry</text>' % (
            PLOT_LEFT + 6, top + 13, _esc(title), _number(len(certs)), "" if len(certs) == 1 else "s", per))
        if earlier:
            bar_height = max(2.0, BAR_HEIGHT * earlier / tallest)
            parts.append('<g class="bar" data-kind="%s"><title>before %s: %s %s expired</title>'
                         '<rect x="%d" y="%.1f" width="5" height="%.1f" fill="%s"/></g>' % (
                             kind, _day(axis.start), _number(earlier), _esc(title), PLOT_LEFT, base - bar_height, bar_height, STATE_COLOURS["expired"]))
        threshold = self.now + datetime.timedelta(days=min(self.thresholds["client"], MAX_DAYS))
        for start in sorted(buckets):
            expired, live = buckets[start]
            count = expired + live
            left = axis.x(max(start, axis.start))
            width = max(2.5, axis.x(start + datetime.timedelta(days=7) if weekly else _next_month(start)) - left - 1)
            bar_height = max(2.0, BAR_HEIGHT * count / tallest)
            red = bar_height * expired / count
            label = start.strftime("week of %Y-%m-%d") if weekly else start.strftime("%Y-%m")
            parts.append('<g class="bar" data-kind="%s"><title>%s: %s %s expire%s</title>' % (
                kind, label, _number(count), _esc(title), " (%s already expired)" % _number(expired) if expired else ""))
            if expired:
                parts.append('<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"/>' % (left, base - red, width, red, STATE_COLOURS["expired"]))
            if live:
                parts.append('<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"/>' % (
                    left, base - bar_height, width, bar_height - red, STATE_COLOURS["expiring" if start < threshold else "valid"]))
            if width >= CHAR_WIDTH * len(_number(count)):
                parts.append('<text class="count" x="%.1f" y="%.1f" text-anchor="middle">%s</text>' % (left + width / 2, base - bar_height - 3, _number(count)))
            parts.append("</g>")
        parts.append("</g>")
        return height, "".join(parts)

    def _axis_svg(self, axis, bottom):
        parts = ['<g class="axis"><line x1="%d" x2="%d" y1="%d" y2="%d" stroke="#475467"/>' % (PLOT_LEFT, PLOT_RIGHT, bottom, bottom)]
        for moment, label in axis.ticks():
            x = axis.x(moment)
            parts.append('<line x1="%.1f" x2="%.1f" y1="%d" y2="%d" stroke="#475467"/><text class="tick" x="%.1f" y="%d" text-anchor="middle">%s</text>' % (
                x, x, bottom, bottom + 5, x, bottom + 17, _esc(label)))
        parts.append("</g>")
        return "".join(parts)

    # -- the page ----------------------------------------------------------------------------
    def page(self):
        rows = self.rows()
        pki_dir = self.info.get("pki_dir") or "?"
        checked = self.now.strftime("%Y-%m-%d %H:%M UTC")
        meta = ["Checked %s" % checked]
        if self.info.get("easyrsa_version"):
            meta.append("easy-rsa %s" % _esc(self.info.get("easyrsa_version")))
        if self.ca.get("common_name"):
            meta.append("CA &ldquo;%s&rdquo;" % _esc(self.ca.get("common_name")))
        thresholds = ", ".join("%s %d days" % (label, self.thresholds[kind]) for kind, label in
                               (("ca", "CA"), ("server", "server"), ("crl", "CRL"), ("client", "clients")))
        return "".join((
            '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">',
            "<title>PKI health: %s (%s)</title><style>%s</style></head><body>\n" % (_esc(pki_dir), checked, STYLE),
            '<header><h1>PKI health: <code>%s</code></h1><p class="meta">%s</p></header>\n' % (_esc(pki_dir), " &middot; ".join(meta)),
            '<section id="summary"><h2>Summary</h2>%s</section>\n' % self.summary(),
            '<section id="timeline"><h2>What expires when</h2>%s' % self.timeline(),
            '<p class="legend">Grey: the past %d days. Shaded: within the warning threshold (%s). Red: expired; orange: within the threshold; '
            'blue: valid. Revoked certificates are not drawn. Hover a marker or bar for details.</p></section>\n' % (self.past_days, thresholds),
            self.acm_table(),
            '<section id="inventory"><h2>Certificates, CA and CRL (%s), soonest expiry first</h2>%s</section>\n' % (
                _number(len(rows)), self.inventory_table(rows)),
            "<footer>Made by the clientvpn.pki.health_report_html filter from clientvpn.pki.vpn_pki_info's result.</footer>\n</body></html>\n",
        ))


def _week_start(moment):
    day = datetime.datetime(moment.year, moment.month, moment.day, tzinfo=UTC)
    return day - datetime.timedelta(days=day.weekday())


def _shape(kind, x, y, colour):
    """CA: diamond, server: square, CRL: triangle."""
    if kind == "ca":
        return '<path d="M%.1f %dl6 6l-6 6l-6-6z" fill="%s"/>' % (x, y - 6, colour)
    if kind == "server":
        return '<rect x="%.1f" y="%d" width="10" height="10" fill="%s"/>' % (x - 5, y - 5, colour)
    return '<path d="M%.1f %dl6 11h-12z" fill="%s"/>' % (x, y - 6, colour)


def health_report_html(info, thresholds=None, past_days=DEFAULT_PAST_DAYS):
    """The vpn_pki_info result as a self-contained HTML page (a string)."""
    return HealthReport(info, thresholds=thresholds, past_days=past_days).page()


class FilterModule(object):
    """clientvpn.pki's filters."""

    def filters(self):
        return {"health_report_html": health_report_html}
