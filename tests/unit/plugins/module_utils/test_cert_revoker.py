# -*- coding: utf-8 -*-
# Copyright: clientvpn.pki contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""CertificateRevoker: ``easyrsa revoke`` for many names per run, on a real (RSA 1024) PKI."""

from __future__ import annotations

import datetime
import os

import pytest

from ansible_collections.clientvpn.pki.plugins.module_utils import x509_inspect
from ansible_collections.clientvpn.pki.plugins.module_utils.ca_manager import CertificateAuthority
from ansible_collections.clientvpn.pki.plugins.module_utils.cert_revoker import REASONS, CertificateRevoker
from ansible_collections.clientvpn.pki.plugins.module_utils.easyrsa_index import IndexEntry, format_serial, format_subject, format_time, parse_time
from ansible_collections.clientvpn.pki.plugins.module_utils.errors import PkiError
from ansible_collections.clientvpn.pki.plugins.module_utils.pki_store import PkiStore
from ansible_collections.clientvpn.pki.plugins.module_utils.x509_profiles import build_ca, generate_key, sign_leaf, to_pem

CLIENTS = ["c1", "c2", "c3"]
UTC = datetime.timezone.utc


def revoke(store, names, reason=None, check_mode=False):
    if isinstance(names, str):
        names = [names]
    return CertificateRevoker(store, names, reason).run(check_mode)


def serial_of(path):
    return x509_inspect.serial_hex(x509_inspect.load_certificate(path))


def file_states(root):
    """Every file under root with its mtime and content: what a run touched shows up as a difference."""
    states = {}
    for directory, dirs, files in os.walk(root):
        for name in files:
            path = os.path.join(directory, name)
            with open(path, "rb") as handle:
                states[os.path.relpath(path, root)] = (os.stat(path).st_mtime_ns, handle.read())
    return states


def touched(before, after):
    return set(path for path in set(before) | set(after) if before.get(path) != after.get(path))


def moved_paths(serial, name):
    """The files one revocation removes and creates, relative to pki_dir."""
    return {
        "issued/%s.crt" % name,
        "private/%s.key" % name,
        "reqs/%s.req" % name,
        "certs_by_serial/%s.pem" % serial,
        "revoked/certs_by_serial/%s.crt" % serial,
        "revoked/private_by_serial/%s.key" % serial,
        "revoked/reqs_by_serial/%s.req" % serial,
    }


@pytest.fixture
def issued(pki, helpers):
    """Three clients issued by the unit-test CA; their serials by name."""
    helpers.issue(pki, CLIENTS)
    return dict((name, serial_of(pki.cert(name))) for name in CLIENTS)


@pytest.fixture(scope="module")
def other_ca():
    key = generate_key(1024)
    return build_ca(key, "Other CA", 30, "sha256"), key


# -- revoking ------------------------------------------------------------------------------------
@pytest.mark.parametrize("reason", [None, "keyCompromise"])
def test_revoke_one_of_three(pki, helpers, issued, reason):
    serial = issued["c2"]
    old_index = helpers.read(pki.index)
    old_files = dict((path, helpers.read(path)) for path in (pki.cert("c2"), pki.key("c2"), pki.req("c2")))
    started = datetime.datetime.now(UTC).replace(microsecond=0)

    result = revoke(pki, "c2", reason)

    ended = datetime.datetime.now(UTC)
    entry = result["certificates"]["c2"]
    assert result["changed"] is True
    assert entry["action"] == "revoked"
    assert entry["serial"] == serial
    assert entry["serials"] == [serial]
    assert result["diff"] == {"before": {"c2": "valid"}, "after": {"c2": "revoked"}}

    old_lines = old_index.decode().splitlines()
    new_lines = helpers.read(pki.index).decode().splitlines()
    assert len(new_lines) == len(old_lines) == 3
    position = [line.split("\t")[3] for line in old_lines].index(serial)
    for number, line in enumerate(old_lines):
        if number != position:
            assert new_lines[number] == line
    fields = new_lines[position].split("\t")
    old_fields = old_lines[position].split("\t")
    assert fields[0] == "R"
    assert fields[1] == old_fields[1]
    assert fields[3:] == [serial, "unknown", "/CN=c2"]
    when, sep, written_reason = fields[2].partition(",")
    if reason is None:
        assert sep == "" and fields[2] == when
    else:
        assert (sep, written_reason) == (",", "keyCompromise")
    assert len(when) == 13 and when.endswith("Z")
    assert started <= parse_time(when) <= ended
    assert entry["revocation"] == fields[2]
    assert helpers.read(pki.path("index.txt.old")) == old_index

    assert helpers.read(pki.path("revoked", "certs_by_serial", serial + ".crt")) == old_files[pki.cert("c2")]
    assert helpers.read(pki.path("revoked", "private_by_serial", serial + ".key")) == old_files[pki.key("c2")]
    assert helpers.read(pki.path("revoked", "reqs_by_serial", serial + ".req")) == old_files[pki.req("c2")]
    for gone in (pki.cert("c2"), pki.key("c2"), pki.req("c2"), pki.by_serial(serial)):
        assert not os.path.exists(gone), gone
    for name in ("c1", "c3"):
        assert os.path.isfile(pki.cert(name)) and os.path.isfile(pki.key(name))
        assert os.path.isfile(pki.by_serial(issued[name]))


def test_check_mode_predicts_and_writes_nothing(pki, helpers, issued):
    before = helpers.snapshot(pki.root)
    result = revoke(pki, ["c1", "c3"], "superseded", check_mode=True)
    assert result["changed"] is True
    assert [result["certificates"][name]["action"] for name in ("c1", "c3")] == ["revoked", "revoked"]
    assert result["certificates"]["c1"]["serials"] == [issued["c1"]]
    assert result["certificates"]["c1"]["revocation"].endswith(",superseded")
    assert helpers.snapshot(pki.root) == before


def test_second_run_is_unchanged(pki, helpers, issued):
    revoke(pki, ["c1", "c2"])
    before = helpers.snapshot(pki.root)
    for check_mode in (True, False):
        result = revoke(pki, ["c1", "c2"], check_mode=check_mode)
        assert result["changed"] is False
        assert [result["certificates"][name]["action"] for name in ("c1", "c2")] == ["unchanged", "unchanged"]
        assert result["certificates"]["c1"]["reason"] == "already revoked (serial %s)" % issued["c1"]
        assert result["diff"] == {"before": {}, "after": {}}
        assert helpers.snapshot(pki.root) == before
    assert [row.status for row in pki.read_index()] == ["R", "R", "V"]


def test_name_never_issued_fails_and_changes_nothing(pki, helpers, issued):
    before = helpers.snapshot(pki.root)
    for names in (["carol.exmaple.com"], ["c3", "carol.exmaple.com"]):
        with pytest.raises(PkiError) as caught:
            revoke(pki, names)
        assert "'carol.exmaple.com'" in str(caught.value) and "spelling" in str(caught.value)
        assert "c3" not in str(caught.value)
        assert helpers.snapshot(pki.root) == before


def test_wrong_or_missing_ca_passphrase_fails_before_anything_is_written(tmp_path, helpers):
    store = PkiStore(str(tmp_path / "pki"))
    CertificateAuthority(store, "Locked CA", 1024, 3650, "sha256", passphrase="right").run(False)
    helpers.issue(store, ["c1"], ca_passphrase="right")
    before = helpers.snapshot(store.root)
    for passphrase, message in ((None, "set the CA passphrase"), ("wrong", "does not open")):
        with pytest.raises(PkiError, match=message):
            CertificateRevoker(store, ["c1"], ca_passphrase=passphrase).run(False)
        assert helpers.snapshot(store.root) == before
    assert CertificateRevoker(store, ["c1"], ca_passphrase="right").run(False)["certificates"]["c1"]["action"] == "revoked"


def test_index_is_written_before_any_file_moves(pki, helpers, issued, monkeypatch):
    """Kill the run at its first file move: index.txt must already say R, and the next
    run must complete the moves and say so."""
    def killed(*args):
        raise KeyboardInterrupt("killed")

    monkeypatch.setattr(pki, "move", killed)
    monkeypatch.setattr(os, "unlink", killed)
    with pytest.raises(KeyboardInterrupt):
        revoke(pki, ["c2"])
    monkeypatch.undo()
    assert [row.status for row in pki.read_index()] == ["V", "R", "V"]
    assert os.path.exists(pki.cert("c2"))

    result = revoke(pki, ["c2"])
    assert result["changed"] is True
    assert result["certificates"]["c2"]["action"] == "completed"
    assert any("interrupted" in warning for warning in result["warnings"])
    assert not os.path.exists(pki.cert("c2")) and not os.path.exists(pki.key("c2"))
    assert os.path.exists(pki.path("revoked", "certs_by_serial", issued["c2"] + ".crt"))
    assert os.stat(pki.path("revoked", "private_by_serial", issued["c2"] + ".key")).st_mode & 0o777 == 0o600
    assert revoke(pki, ["c2"])["changed"] is False


def test_files_moved_without_index_row_are_completed(pki, helpers, issued):
    """The state an older release left when killed between its moves and its index write."""
    serial = issued["c1"]
    os.rename(pki.cert("c1"), pki.path("revoked", "certs_by_serial", serial + ".crt"))
    os.rename(pki.key("c1"), pki.path("revoked", "private_by_serial", serial + ".key"))
    result = revoke(pki, ["c1"])
    assert result["changed"] is True
    assert result["certificates"]["c1"]["action"] == "completed"
    assert [row.status for row in pki.read_index()] == ["R", "V", "V"]
    assert revoke(pki, ["c1"])["certificates"]["c1"]["action"] == "unchanged"


def test_moved_keys_stay_0600_whatever_their_mode_was(pki, helpers, issued):
    os.chmod(pki.key("c1"), 0o644)
    revoke(pki, ["c1"])
    assert os.stat(pki.path("revoked", "private_by_serial", issued["c1"] + ".key")).st_mode & 0o777 == 0o600


def test_renewed_certificate_of_the_same_subject_is_revoked_too(pki, helpers):
    helpers.issue(pki, ["c1", "c2"], days=10, renew_before_days=5)
    old_serial = serial_of(pki.cert("c1"))
    old_pem = helpers.read(pki.cert("c1"))
    assert helpers.issue(pki, "c1")["certificates"]["c1"]["action"] == "renewed"
    new_serial = serial_of(pki.cert("c1"))
    assert helpers.read(pki.renewed_cert("c1")) == old_pem
    new_pem = helpers.read(pki.cert("c1"))

    result = revoke(pki, "c1", "keyCompromise")

    assert sorted(result["certificates"]["c1"]["serials"]) == sorted([old_serial, new_serial])
    rows = dict((row.serial, row) for row in pki.read_index())
    assert rows[old_serial].status == "R" and rows[new_serial].status == "R"
    assert rows[old_serial].revoked == rows[new_serial].revoked
    assert rows[new_serial].revoked.endswith(",keyCompromise")
    assert rows[serial_of(pki.cert("c2"))].status == "V"
    assert not os.path.exists(pki.renewed_cert("c1"))
    assert helpers.read(pki.path("revoked", "certs_by_serial", old_serial + ".crt")) == old_pem
    assert helpers.read(pki.path("revoked", "certs_by_serial", new_serial + ".crt")) == new_pem
    assert os.path.isfile(pki.path("revoked", "private_by_serial", new_serial + ".key"))
    assert not os.path.exists(pki.by_serial(new_serial))


def test_every_earlier_renewal_of_the_name_is_revoked(pki, helpers):
    """Renewed twice: the first certificate has moved on to renewed/certs_by_serial/ and is still V;
    revoking the name revokes all three of its certificates, and nothing of the other name."""
    helpers.issue(pki, ["c1", "c2"], days=10, renew_before_days=5)
    serials = [serial_of(pki.cert("c1"))]
    for renewal in range(2):
        assert helpers.issue(pki, "c1", renew=True)["certificates"]["c1"]["action"] == "renewed"
        serials.append(serial_of(pki.cert("c1")))
    assert os.path.isfile(pki.renewed_by_serial(serials[0]))

    result = revoke(pki, "c1")

    assert sorted(result["certificates"]["c1"]["serials"]) == sorted(serials)
    rows = dict((row.serial, row.status) for row in pki.read_index())
    assert [rows[serial] for serial in serials] == ["R", "R", "R"]
    assert rows[serial_of(pki.cert("c2"))] == "V"


def test_certificate_of_another_ca_changes_nothing(pki, helpers, issued, other_ca):
    ca_cert, ca_key = other_ca
    own_key, dummy = x509_inspect.load_private_key(pki.key("c2"))
    helpers.write(pki.cert("c2"), to_pem(sign_leaf(ca_cert, ca_key, own_key.public_key(), helpers.specs("c2")[0], 0x4242)))
    before = helpers.snapshot(pki.root)
    for check_mode in (True, False):
        with pytest.raises(PkiError) as caught:
            revoke(pki, ["c1", "c2"], check_mode=check_mode)
        message = str(caught.value)
        assert pki.cert("c2") in message
        assert "Other CA" in message
        assert "Nothing was changed" in message
        assert helpers.snapshot(pki.root) == before


@pytest.mark.parametrize(
    "names, reason, message",
    [
        (["c1"], "stolen", "reason=stolen"),
        (["c1"], "keycompromise", "reason=keycompromise"),
        ([], None, "name is empty"),
        (["../c1"], None, "'../c1'"),
        (["c1", "ca"], None, "'ca'"),
        (["issued/c1"], None, "path separator"),
        (["-c1"], None, "'-c1'"),
    ],
)
def test_bad_options_are_refused(pki, helpers, issued, names, reason, message):
    before = helpers.snapshot(pki.root)
    with pytest.raises(PkiError) as caught:
        CertificateRevoker(pki, names, reason)
    assert message in str(caught.value)
    assert helpers.snapshot(pki.root) == before


def test_every_documented_reason_is_accepted(pki):
    assert "keyCompromise" in REASONS and "cessationOfOperation" in REASONS
    for reason in REASONS:
        assert CertificateRevoker(pki, ["c1"], reason).reason == reason


def test_no_ca(tmp_path):
    store = PkiStore(str(tmp_path / "pki"))
    with pytest.raises(PkiError) as caught:
        revoke(store, "c1")
    assert store.root in str(caught.value)
    assert not os.path.exists(store.root)


def test_large_index_rewrites_only_the_index_and_the_moved_files(pki, helpers):
    not_after = datetime.datetime.now(UTC) + datetime.timedelta(days=400)
    rows = [IndexEntry("V", format_time(not_after), "", format_serial((1 << 127) | number), "unknown", format_subject("user%05d" % number))
            for number in range(20000)]
    pki.write_index(rows)
    helpers.issue(pki, "c1")
    serial = serial_of(pki.cert("c1"))
    old_index = helpers.read(pki.index)
    assert old_index.count(b"\n") == 20001
    before = file_states(pki.root)

    result = revoke(pki, "c1")

    after = file_states(pki.root)
    assert result["certificates"]["c1"]["serials"] == [serial]
    assert touched(before, after) == {"index.txt", "index.txt.old"} | moved_paths(serial, "c1")
    assert after["index.txt.old"][1] == old_index
    old_lines = old_index.decode().splitlines(True)
    new_lines = after["index.txt"][1].decode().splitlines(True)
    assert new_lines[:20000] == old_lines[:20000]
    assert new_lines[20000] == "R\t%s\t%s\t%s\tunknown\t/CN=c1\n" % (
        format_time(x509_inspect.load_certificate(pki.path("revoked", "certs_by_serial", serial + ".crt")).not_valid_after_utc),
        result["certificates"]["c1"]["revocation"],
        serial,
    )
    assert len(new_lines) == 20001


def test_another_name_with_the_same_common_name_stays_valid(pki, helpers):
    """alice-laptop and alice-phone share the CN 'alice' (common_name is per name): revoking the
    laptop must not mark the phone's current certificate R in index.txt, while issued/alice-phone.crt
    stays in issued/ and the result does not even mention it."""
    helpers.issue(pki, "alice-laptop", common_name="alice")
    helpers.issue(pki, "alice-phone", common_name="alice")
    laptop = serial_of(pki.cert("alice-laptop"))
    phone = serial_of(pki.cert("alice-phone"))

    result = revoke(pki, "alice-laptop")

    assert list(result["certificates"]) == ["alice-laptop"]
    assert os.path.isfile(pki.cert("alice-phone"))
    rows = dict((row.serial, row.status) for row in pki.read_index())
    assert rows[laptop] == "R"
    assert rows[phone] == "V"
    assert result["certificates"]["alice-laptop"]["serials"] == [laptop]
