"""The health report as a person sees it: the health_report_html filter of the
collection copy under test renders a realistic vpn_pki_info result, and a real
headless Chromium opens the page from a file (as from an AWX artifact or an
e-mail attachment): its DOM has the inventory rows and the SVG timeline with
its labelled markers, and its screenshot shows them. The screenshot is kept as
tests/output/health-report.png."""

import collections
import datetime
import json
import os
import shutil
import struct
import subprocess
import sys
import zlib
from html.parser import HTMLParser

from conftest import collections_path, require

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NOW = datetime.datetime(2026, 11, 26, 1, 0, tzinfo=datetime.timezone.utc)
HOSTILE_CN = "<img src=x onerror=alert(1)>{{ lookup('pipe', 'id') }}"
BAR_BLUE = b"\x15\x70\xef"  # a client bar beyond its threshold (#1570ef)
BAND = b"\xff\xee\xce"  # a threshold band (#fdb022 at 22 % on white)
EXPIRED_RED = b"\xd9\x2d\x20"  # the clients that expired this month (#d92d20)


def iso(days):
    return (NOW + datetime.timedelta(days=days)).isoformat()


def pki_info():
    """What vpn_pki_info returns for a PKI a year into service: a renewed CA, a server, a CRL due soon, 50 clients."""
    certificates = [{"name": "server", "common_name": "server", "type": "server", "status": "V", "serial": "7F3A" * 8,
                     "not_after": iso(460), "days_left": 460, "revoked_at": None, "key": "RSA 2048", "files_present": True}]
    for index in range(50):
        name = "user%02d.example.com" % index
        days = 12 + index * 17  # from next fortnight to about two years and a half ahead
        status, revoked_at = "V", None
        if index in (4, 17, 33):
            status, revoked_at = "R", iso(-90 + index)
        elif index in (8, 21):
            status, days = "E", -index
        certificates.append({"name": name, "common_name": HOSTILE_CN if index == 40 else name, "type": "client", "status": status,
                             "serial": "%032X" % (0x5EED0000 + index * 7919), "not_after": iso(days), "days_left": days,
                             "revoked_at": revoked_at, "key": "RSA 2048", "files_present": True})
    certificates.sort(key=lambda cert: cert["not_after"])
    return {
        "pki_dir": "/srv/clientvpn/pki", "checked_at": NOW.isoformat(), "easyrsa_version": "3.1",
        "thresholds": {"ca": 180, "server": 30, "crl": 14, "client": 30},
        "ca": {"common_name": "Easy-RSA CA", "serial": "4D2C" * 8, "not_before": iso(-400), "not_after": iso(3250), "days_left": 3250,
               "key": "RSA 2048", "previous": [{"serial": "19AB" * 8, "not_after": iso(-12), "days_left": -12}]},
        "certificates": certificates,
        "crl": {"present": True, "entries": 3, "this_update": iso(-170), "next_update": iso(10), "days_left": 10, "matches_index": True},
        "acm": {"server": {"certificate_arn": "arn:aws:acm:eu-west-1:123456789012:certificate/0d2d7a6e-1f7c-4b2e-9a51-3c8f0e1d2b4a",
                           "same_as_disk": True, "not_after": iso(460)}},
        "problems": [
            {"code": "crl_expiring", "severity": "critical", "object": "/srv/clientvpn/pki/crl.pem", "date": iso(10), "days_left": 10,
             "message": "the CRL's nextUpdate is 2026-12-06: after it the endpoint refuses every connection",
             "fix": "re-sign it: ansible-playbook clientvpn.pki.revoke_client, and schedule it nightly (docs/awx.md)"},
            {"code": "clients_expiring", "severity": "warning", "object": "2 client certificate(s)", "date": iso(12), "days_left": 12,
             "message": "2 client certificate(s) expire within 30 days, the first user00.example.com on 2026-12-08",
             "fix": "run clientvpn.pki.mutual_auth with them in pki_clients, then hand out the new profiles"},
        ],
        "summary": {"valid": 45, "revoked": 3, "expired": 2, "expiring": 2, "problems": 2, "critical": 1},
    }


class Dom(HTMLParser):
    """What the browser built: element names, inventory rows (class, cells), SVG texts, data-kind groups."""

    def __init__(self, text):
        super().__init__(convert_charrefs=True)
        self.tags = collections.Counter()
        self.rows = []
        self.svg_texts = []
        self.groups = []
        self._table = None
        self._in_body = False
        self._text = None
        self.feed(text)
        self.close()

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags[tag] += 1
        if tag == "table":
            self._table = attrs.get("class")
        elif tag == "tbody":
            self._in_body = self._table == "inventory"
        elif tag == "tr" and self._in_body:
            self.rows.append((attrs.get("class"), []))
        elif tag in ("td", "text") and (tag == "text" or self._in_body):
            self._text = []
        elif tag == "g" and "data-kind" in attrs:
            self.groups.append((attrs.get("class"), attrs["data-kind"]))

    def handle_endtag(self, tag):
        if tag == "td" and self._text is not None and self._in_body:
            self.rows[-1][1].append("".join(self._text))
            self._text = None
        elif tag == "text" and self._text is not None:
            self.svg_texts.append("".join(self._text))
            self._text = None
        elif tag == "tbody":
            self._in_body = False

    def handle_data(self, data):
        if self._text is not None:
            self._text.append(data)


def render(info, path):
    """The page, made by the filter of the collection copy the tests run against, in its own process."""
    code = ("import json, sys\n"
            "from ansible_collections.clientvpn.pki.plugins.filter import health_report\n"
            "sys.stderr.write(health_report.__file__)\n"
            "sys.stdout.write(health_report.health_report_html(json.load(sys.stdin)))\n")
    proc = subprocess.run([sys.executable, "-c", code], input=json.dumps(info), capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=collections_path()), timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.startswith(collections_path()), proc.stderr
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(proc.stdout)


def chromium(profile, *args):
    command = [require("chromium"), "--headless", "--disable-gpu", "--no-first-run", "--hide-scrollbars", "--user-data-dir=%s" % profile]
    if os.geteuid() == 0:
        command.append("--no-sandbox")  # Chromium refuses to run as root with its sandbox
    # A page that ran script (an alert) would hang headless Chromium: a minute is far more than the page needs.
    proc = subprocess.run(command + list(args), capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def png_rows(path):
    """(width, height, rows of RGB bytes) of an 8-bit RGB or RGBA PNG, decoded with zlib and struct alone."""
    with open(path, "rb") as handle:
        data = handle.read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    position, compressed = 8, []
    while position < len(data):
        length, kind = struct.unpack(">I4s", data[position:position + 8])
        chunk = data[position + 8:position + 8 + length]
        position += 12 + length
        if kind == b"IHDR":
            width, height, depth, colour_type, _compression, _filter, interlace = struct.unpack(">IIBBBBB", chunk)
        elif kind == b"IDAT":
            compressed.append(chunk)
    assert depth == 8 and colour_type in (2, 6) and interlace == 0, (depth, colour_type, interlace)
    pixel = 3 if colour_type == 2 else 4
    raw = zlib.decompress(b"".join(compressed))
    stride = width * pixel
    rows, previous = [], bytes(stride)
    for index in range(height):
        start = index * (stride + 1)
        row = _unfilter(raw[start], raw[start + 1:start + 1 + stride], previous, pixel)
        rows.append(row if pixel == 3 else b"".join(row[offset:offset + 3] for offset in range(0, stride, 4)))
        previous = row
    return width, height, rows


def _unfilter(kind, line, previous, pixel):
    """Undo one PNG row filter (None, Sub, Up, Average, Paeth)."""
    if kind == 0:
        return line
    if kind == 2:
        # Byte-wise addition without carries, on Python's big integers: far faster than a loop.
        size = len(line)
        low, high = int.from_bytes(b"\x7f" * size, "big"), int.from_bytes(b"\x80" * size, "big")
        ours, above = int.from_bytes(line, "big"), int.from_bytes(previous, "big")
        return (((ours & low) + (above & low)) ^ ((ours ^ above) & high)).to_bytes(size, "big")
    row = bytearray(line)
    for offset, value in enumerate(row):
        left = row[offset - pixel] if offset >= pixel else 0
        up = previous[offset]
        if kind == 1:
            predicted = left
        elif kind == 3:
            predicted = (left + up) >> 1
        else:
            up_left = previous[offset - pixel] if offset >= pixel else 0
            estimate = left + up - up_left
            distances = (abs(estimate - left), abs(estimate - up), abs(estimate - up_left))
            predicted = left if distances[0] <= distances[1] and distances[0] <= distances[2] else (up if distances[1] <= distances[2] else up_left)
        row[offset] = (value + predicted) & 0xFF
    return bytes(row)


def test_the_report_opens_in_a_browser_with_its_table_and_timeline(tmp_path):
    require("chromium")
    info = pki_info()
    page = tmp_path / "health-report.html"
    render(info, str(page))
    url = "file://%s" % page

    dom = Dom(chromium(tmp_path / "profile", "--dump-dom", url))

    # Every certificate, the CA, the earlier CA certificate and the CRL, soonest expiry first.
    assert len(dom.rows) == len(info["certificates"]) + 3
    names = [cells[1] for _css, cells in dom.rows]
    assert names[:4] == ["user21.example.com", "expired-ca.list", "user08.example.com", "crl.pem"]
    assert names[-1] == "ca"
    classes = collections.Counter(css for css, _cells in dom.rows)
    # expired: two clients and the earlier CA; expiring: two clients and the CRL (10 days, its threshold is 14)
    assert classes["revoked"] == 3 and classes["expired"] == 3 and classes["expiring"] == 3
    # A user's name is shown as text, never run: the browser made no <img> and no <script> of it.
    assert dom.tags["img"] == 0 and dom.tags["script"] == 0
    assert any(HOSTILE_CN in cells for _css, cells in dom.rows)

    # The timeline: one SVG, a labelled marker for the CA, the earlier CA, the server, the CRL, today; the clients as bars.
    assert dom.tags["svg"] == 1
    assert sorted(kind for css, kind in dom.groups if css == "marker") == ["ca", "ca", "crl", "server", "today"]
    texts = " | ".join(dom.svg_texts)
    for label in ("CA 2035-10-20", "previous CA 2026-11-14", "server 2028-02-29", "CRL nextUpdate 2026-12-06",
                  "clients: 47 certificates by month of expiry", "today 2026-11-26"):
        assert label in texts, label
    assert 20 <= sum(1 for css, kind in dom.groups if css == "bar" and kind == "client") <= 32
    for lane in ("CA", "server", "CRL", "clients"):
        assert lane in dom.svg_texts, lane

    screenshot = tmp_path / "health-report.png"
    chromium(tmp_path / "profile", "--screenshot=%s" % screenshot, "--window-size=1400,1000", url)
    width, height, rows = png_rows(str(screenshot))
    assert (width, height) == (1400, 1000)
    colours = collections.Counter(row[offset:offset + 3] for row in rows[::4] for offset in range(0, len(row), 12))
    background, most = colours.most_common(1)[0]
    assert most < 0.95 * sum(colours.values()), "the screenshot is nearly all %r" % background
    assert len(colours) > 50
    # The timeline is in view and drawn: client bars (valid and expired) and threshold bands.
    assert colours[BAR_BLUE] > 100 and colours[EXPIRED_RED] > 20 and colours[BAND] > 100, colours.most_common(12)

    output = os.path.join(REPO, "tests", "output")
    os.makedirs(output, exist_ok=True)
    kept = os.path.join(output, "health-report.png")
    shutil.copyfile(str(screenshot), kept)
    print("\nhealth report screenshot: %s" % kept)
