# -*- coding: utf-8 -*-
# Copyright: clientvpn.pki contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""build_specs and CertificateIssuer: many names per run, each created, kept, renewed or reissued."""

from __future__ import annotations

import datetime
import os
import stat

import pytest

from ansible_collections.clientvpn.pki.plugins.module_utils import x509_inspect
from ansible_collections.clientvpn.pki.plugins.module_utils.cert_issuer import CertificateIssuer
from ansible_collections.clientvpn.pki.plugins.module_utils.cert_plan import build_specs
from ansible_collections.clientvpn.pki.plugins.module_utils.cert_revoker import CertificateRevoker
from ansible_collections.clientvpn.pki.plugins.module_utils.easyrsa_index import format_serial, format_time
from ansible_collections.clientvpn.pki.plugins.module_utils.errors import PkiError
from ansible_collections.clientvpn.pki.plugins.module_utils.pki_store import PkiStore
from ansible_collections.clientvpn.pki.plugins.module_utils.x509_profiles import build_ca, generate_key, key_to_pem, sign_leaf, to_pem

CLIENTS = ["client1.domain.tld", "alice@example.com", "bob", "carol", "dave"]


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


# -- build_specs ----------------------------------------------------------------------------
def test_specs_defaults(helpers):
    server = helpers.specs("server", "server")[0]
    assert server.common_name == "server"
    assert server.subject_alt_names == ["DNS:server"]
    client = helpers.specs("c1")[0]
    assert client.subject_alt_names == []
    assert client.cert_type == "client"


def test_specs_deduplicate_names_and_sans(helpers):
    specs = helpers.specs(["a", "b", "a"], "server", subject_alt_names=["dns:vpn", "DNS:vpn", "DNS:x"])
    assert [spec.name for spec in specs] == ["a", "b"]
    assert specs[0].subject_alt_names == ["DNS:vpn", "DNS:x"]


def test_specs_common_name_with_two_names(helpers):
    with pytest.raises(PkiError) as caught:
        helpers.specs(["a", "b"], common_name="shared")
    assert "common_name='shared'" in str(caught.value)
    assert "2 names" in str(caught.value)


def test_specs_common_name_with_one_name(helpers):
    spec = helpers.specs(["a"], common_name="Alice")[0]
    assert spec.name == "a" and spec.common_name == "Alice"


def test_specs_server_without_dns_san(helpers):
    with pytest.raises(PkiError) as caught:
        helpers.specs("server", "server", subject_alt_names=["IP:1.2.3.4"])
    assert "DNS" in str(caught.value)
    assert "'server'" in str(caught.value)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"names": []}, "name is empty"),
        ({"names": ["ca"]}, "'ca'"),
        ({"names": ["../x"]}, "'../x'"),
        ({"cert_type": "router"}, "type=router"),
        ({"key_size": 4096}, "key_size=4096"),
        ({"days": 0}, "days=0"),
        ({"subject_alt_names": ["garbage"]}, "'garbage'"),
        ({"common_name": ""}, "common_name is empty"),
    ],
)
def test_specs_refuse_bad_options(helpers, kwargs, message):
    args = dict(names=["c1"], cert_type="client")
    args.update(kwargs)
    with pytest.raises(PkiError) as caught:
        helpers.specs(args.pop("names"), args.pop("cert_type"), **args)
    assert message in str(caught.value)


@pytest.mark.parametrize("renew_before_days, days", [(825, 825), (900, 825), (10, 10)])
def test_renew_before_days_not_smaller_than_days(pki, helpers, renew_before_days, days):
    with pytest.raises(PkiError) as caught:
        CertificateIssuer(pki, helpers.specs("c1", days=days), renew_before_days=renew_before_days)
    assert "renew_before_days=%d" % renew_before_days in str(caught.value)
    assert "days=%d" % days in str(caught.value)


def test_negative_renew_before_days(pki, helpers):
    with pytest.raises(PkiError, match="renew_before_days=-1"):
        CertificateIssuer(pki, helpers.specs("c1"), renew_before_days=-1)


# -- creating ---------------------------------------------------------------------------------
def test_five_clients_in_one_run(pki, helpers):
    result = helpers.issue(pki, CLIENTS)
    assert result["changed"] is True
    assert [result["certificates"][name]["action"] for name in CLIENTS] == ["created"] * 5
    certs = [x509_inspect.load_certificate(pki.cert(name)) for name in CLIENTS]
    serials = [x509_inspect.serial_hex(cert) for cert in certs]
    assert len(set(serials)) == 5
    assert all(len(serial) == 32 for serial in serials)
    for name, cert in zip(CLIENTS, certs):
        key, encrypted = x509_inspect.load_private_key(pki.key(name))
        assert not encrypted
        assert x509_inspect.key_matches(key, cert)
        assert x509_inspect.common_name(cert) == name
        assert result["certificates"][name]["serial"] == x509_inspect.serial_hex(cert)
        assert mode(pki.key(name)) == 0o600
        assert mode(pki.cert(name)) == 0o600
        assert os.path.isfile(pki.req(name))
        assert helpers.read(pki.by_serial(x509_inspect.serial_hex(cert))) == helpers.read(pki.cert(name))

    rows = pki.read_index()
    assert [row.status for row in rows] == ["V"] * 5
    assert [row.serial for row in rows] == serials
    assert [row.subject for row in rows] == ["/CN=" + name for name in CLIENTS]
    assert [row.expires for row in rows] == [format_time(cert.not_valid_after_utc) for cert in certs]
    assert all(row.revoked == "" and row.filename == "unknown" for row in rows)
    assert helpers.read(pki.serial) == (format_serial(certs[-1].serial_number + 1) + "\n").encode()
    assert helpers.read(pki.path("serial.old")) == b"01\n"
    assert helpers.read(pki.path("index.txt.old")) == b""


def test_second_run_is_unchanged(pki, helpers):
    first = helpers.issue(pki, CLIENTS)
    before = helpers.snapshot(pki.root)
    for check_mode in (True, False):
        result = helpers.issue(pki, CLIENTS, check_mode=check_mode)
        assert result["changed"] is False
        assert [result["certificates"][name]["action"] for name in CLIENTS] == ["unchanged"] * 5
        assert [result["certificates"][name]["serial"] for name in CLIENTS] == [
            first["certificates"][name]["serial"] for name in CLIENTS
        ]
        assert result["diff"] == {"before": {}, "after": {}}
        assert helpers.snapshot(pki.root) == before


def test_check_mode_predicts_and_writes_nothing(pki, helpers):
    before = helpers.snapshot(pki.root)
    result = helpers.issue(pki, ["server"], "server", check_mode=True)
    entry = result["certificates"]["server"]
    assert result["changed"] is True
    assert entry["action"] == "created"
    assert "serial" not in entry
    assert result["diff"]["after"]["server"]["subject_alt_names"] == ["DNS:server"]
    assert helpers.snapshot(pki.root) == before


def test_adding_names_keeps_the_others(pki, helpers):
    helpers.issue(pki, ["c1", "c2"])
    c1 = helpers.read(pki.cert("c1"))
    result = helpers.issue(pki, ["c1", "c2", "c3"])
    assert [result["certificates"][n]["action"] for n in ("c1", "c2", "c3")] == ["unchanged", "unchanged", "created"]
    assert helpers.read(pki.cert("c1")) == c1
    assert [row.subject for row in pki.read_index()] == ["/CN=c1", "/CN=c2", "/CN=c3"]


# -- renewing and reissuing --------------------------------------------------------------------
def test_expiring_certificate_is_renewed_with_the_same_key(pki, helpers):
    helpers.issue(pki, "server", "server", days=10, renew_before_days=5)
    old_pem = helpers.read(pki.cert("server"))
    old_key = helpers.read(pki.key("server"))
    old_serial = x509_inspect.serial_hex(x509_inspect.load_certificate(pki.cert("server")))

    result = helpers.issue(pki, "server", "server", days=825, renew_before_days=30)
    entry = result["certificates"]["server"]
    assert entry["action"] == "renewed"
    assert len(entry["reasons"]) == 1 and "renew_before_days=30" in entry["reasons"][0]
    assert helpers.read(pki.key("server")) == old_key
    assert entry["backup_files"] == []
    assert helpers.read(pki.renewed_cert("server")) == old_pem
    assert not os.path.exists(pki.by_serial(old_serial))
    new = x509_inspect.load_certificate(pki.cert("server"))
    assert x509_inspect.serial_hex(new) != old_serial
    assert new.not_valid_after_utc - new.not_valid_before_utc == datetime.timedelta(days=825)
    assert x509_inspect.subject_alt_names(new) == ["DNS:server"]
    assert os.path.isfile(pki.by_serial(x509_inspect.serial_hex(new)))
    assert [row.serial for row in pki.read_index()] == [old_serial, x509_inspect.serial_hex(new)]
    assert helpers.read(pki.serial) == (format_serial(new.serial_number + 1) + "\n").encode()
    assert helpers.issue(pki, "server", "server")["changed"] is False


def test_forced_renewals_keep_every_old_certificate(pki, helpers):
    """renew: true twice: the latest old certificate sits in easy-rsa's renewed/issued/ slot,
    the one before it moves to renewed/certs_by_serial/<SERIAL>.crt."""
    helpers.issue(pki, "server", "server")
    first = x509_inspect.serial_hex(x509_inspect.load_certificate(pki.cert("server")))
    specs = build_specs(["server"], "server", None, None, 1024, 825, "sha256")
    entry = CertificateIssuer(pki, specs, renew=True).run(check_mode=False)["certificates"]["server"]
    assert entry["action"] == "renewed" and entry["reasons"] == ["renew: true"]
    second = entry["serial"]
    entry = CertificateIssuer(pki, specs, renew=True).run(check_mode=False)["certificates"]["server"]
    assert x509_inspect.serial_hex(x509_inspect.load_certificate(pki.renewed_cert("server"))) == second
    assert os.path.isfile(pki.renewed_by_serial(first))
    assert [row.status for row in pki.read_index()] == ["V", "V", "V"]


def test_renewal_directories_are_private(pki, helpers):
    """renewed/ is created by the renewal: like every PKI directory it must be 0700."""
    helpers.issue(pki, "c1", days=10, renew_before_days=5)
    old_umask = os.umask(0o022)
    try:
        helpers.issue(pki, "c1")
    finally:
        os.umask(old_umask)
    for directory, dirs, files in os.walk(pki.root):
        assert mode(directory) == 0o700, directory


def test_san_change_reissues_keeping_the_key(pki, helpers):
    helpers.issue(pki, "server", "server")
    old_key = helpers.read(pki.key("server"))
    old_serial = x509_inspect.serial_hex(x509_inspect.load_certificate(pki.cert("server")))
    sans = ["DNS:server", "DNS:vpn.example.com"]
    result = helpers.issue(pki, "server", "server", subject_alt_names=sans)
    entry = result["certificates"]["server"]
    assert entry["action"] == "reissued"
    assert any("subject alt names" in reason for reason in entry["reasons"])
    assert helpers.read(pki.key("server")) == old_key
    assert sorted(x509_inspect.subject_alt_names(x509_inspect.load_certificate(pki.cert("server")))) == sans
    assert x509_inspect.serial_hex(x509_inspect.load_certificate(pki.renewed_cert("server"))) == old_serial
    assert result["diff"]["before"]["server"]["subject_alt_names"] == ["DNS:server"]
    assert helpers.issue(pki, "server", "server", subject_alt_names=sans)["changed"] is False


def test_key_size_change_makes_a_new_key_and_backs_up_the_old(pki, helpers):
    helpers.issue(pki, "c1")
    old_key = helpers.read(pki.key("c1"))
    result = helpers.issue(pki, "c1", key_size=2048)
    entry = result["certificates"]["c1"]
    assert entry["action"] == "reissued"
    assert any("wanted RSA 2048" in reason for reason in entry["reasons"])
    assert len(entry["backup_files"]) == 1
    assert helpers.read(entry["backup_files"][0]) == old_key
    key, dummy = x509_inspect.load_private_key(pki.key("c1"))
    assert key.key_size == 2048
    cert = x509_inspect.load_certificate(pki.cert("c1"))
    assert x509_inspect.key_matches(key, cert)
    assert mode(pki.key("c1")) == 0o600


def test_certificate_from_another_ca_is_reissued_with_backup_and_warning(pki, helpers):
    helpers.issue(pki, "c1")
    other_key = generate_key(1024)
    other_ca = build_ca(other_key, "Other CA", 30, "sha256")
    own_key, dummy = x509_inspect.load_private_key(pki.key("c1"))
    foreign = to_pem(sign_leaf(other_ca, other_key, own_key.public_key(), helpers.specs("c1")[0], 0x1234))
    helpers.write(pki.cert("c1"), foreign)
    old_key = helpers.read(pki.key("c1"))

    result = helpers.issue(pki, "c1")
    entry = result["certificates"]["c1"]
    assert entry["action"] == "reissued"
    assert any("another CA" in reason for reason in entry["reasons"])
    assert len(entry["backup_files"]) == 1
    assert helpers.read(entry["backup_files"][0]) == foreign
    assert len(result["warnings"]) == 1
    assert "Other CA" in result["warnings"][0] and pki.cert("c1") in result["warnings"][0]
    assert helpers.read(pki.key("c1")) == old_key
    new = x509_inspect.load_certificate(pki.cert("c1"))
    assert x509_inspect.is_issued_by(new, x509_inspect.load_certificate(pki.ca_cert))
    assert not os.path.exists(pki.renewed_cert("c1"))


def _mark_revoked_in_index_only(pki):
    """What a revocation killed after its index write leaves: an R row, the files still in place."""
    rows = pki.read_index()
    rows[0].status, rows[0].revoked = "R", "250101000000Z,keyCompromise"
    pki.write_index(rows)


def test_revoked_name_is_refused_before_anything_is_written(pki, helpers):
    helpers.issue(pki, ["c1", "c2"])
    _mark_revoked_in_index_only(pki)
    before = helpers.snapshot(pki.root)
    for check_mode in (True, False):
        with pytest.raises(PkiError) as caught:
            helpers.issue(pki, ["c1", "c2", "c3"], check_mode=check_mode)
        message = str(caught.value)
        assert "c1" in message and "revoked" in message and "reissue_revoked: true" in message and "pki_clients" in message
        assert "c2" not in message.split("(serial", maxsplit=1)[0]
        assert helpers.snapshot(pki.root) == before
    assert not os.path.exists(pki.cert("c3"))


def test_revoked_and_moved_name_is_refused_too(pki, helpers):
    """After a completed revocation issued/<name>.crt is gone: the R row of its CN still refuses it."""
    helpers.issue(pki, ["c1"])
    CertificateRevoker(pki, ["c1"]).run(False)
    before = helpers.snapshot(pki.root)
    with pytest.raises(PkiError, match="refusing to issue a new certificate to c1"):
        helpers.issue(pki, "c1")
    assert helpers.snapshot(pki.root) == before


def test_reissue_revoked_gives_a_new_key_and_completes_the_revocation(pki, helpers):
    helpers.issue(pki, "c1")
    old_key = helpers.read(pki.key("c1"))
    old_serial = x509_inspect.serial_hex(x509_inspect.load_certificate(pki.cert("c1")))
    _mark_revoked_in_index_only(pki)

    result = helpers.issue(pki, "c1", reissue_revoked=True)
    entry = result["certificates"]["c1"]
    assert entry["action"] == "reissued"
    assert any("revoked" in reason for reason in entry["reasons"])
    assert helpers.read(pki.key("c1")) != old_key
    # the revoked certificate's files went where easyrsa revoke puts them, not into renewed/
    assert helpers.read(pki.path("revoked", "private_by_serial", old_serial + ".key")) == old_key
    assert os.path.exists(pki.path("revoked", "certs_by_serial", old_serial + ".crt"))
    assert not os.path.exists(pki.renewed_cert("c1"))
    assert not os.path.exists(pki.by_serial(old_serial))
    new = x509_inspect.load_certificate(pki.cert("c1"))
    assert x509_inspect.serial_hex(new) != old_serial
    key, dummy = x509_inspect.load_private_key(pki.key("c1"))
    assert x509_inspect.key_matches(key, new)
    rows = pki.read_index()
    assert [(row.status, row.serial) for row in rows] == [("R", old_serial), ("V", x509_inspect.serial_hex(new))]
    assert rows[0].revoked == "250101000000Z,keyCompromise"
    assert helpers.issue(pki, "c1")["changed"] is False


def test_interrupted_revocation_of_an_older_release_is_completed(pki, helpers):
    """Older releases moved files first: a kill before index.txt left a V row whose
    certificate sits in revoked/. Any run marks it R and says so."""
    helpers.issue(pki, ["c1", "c2"])
    serial = x509_inspect.serial_hex(x509_inspect.load_certificate(pki.cert("c1")))
    os.rename(pki.cert("c1"), pki.path("revoked", "certs_by_serial", serial + ".crt"))
    os.rename(pki.key("c1"), pki.path("revoked", "private_by_serial", serial + ".key"))
    result = helpers.issue(pki, ["c2"])
    assert result["changed"] is True
    assert any("completed an interrupted revocation" in change and serial in change for change in result["changes"])
    assert [(row.serial, row.status) for row in pki.read_index()][0] == (serial, "R")
    assert result["certificates"]["c2"]["action"] == "unchanged"


def test_key_owned_by_another_user_is_never_certified(pki, helpers):
    if os.geteuid() != 0:
        pytest.skip("chown to another user needs root")
    helpers.issue(pki, ["c1"])
    planted = helpers.read(pki.key("c1"))
    os.unlink(pki.cert("c1"))
    pki.write_index([])
    os.chown(pki.key("c1"), 65534, 65534)
    before = helpers.snapshot(pki.root)
    with pytest.raises(PkiError) as caught:
        helpers.issue(pki, "c1")
    assert pki.key("c1") in str(caught.value) and "another user" in str(caught.value)
    assert helpers.snapshot(pki.root) == before
    assert helpers.read(pki.key("c1")) == planted


def test_key_in_a_private_folder_others_could_write_is_not_certified(pki, helpers):
    helpers.issue(pki, ["c1"])
    os.unlink(pki.cert("c1"))
    pki.write_index([])
    os.chmod(pki.path("private"), 0o777)
    with pytest.raises(PkiError, match="private/ is writable by other users"):
        helpers.issue(pki, "c1")
    assert stat.S_IMODE(os.stat(pki.path("private")).st_mode) == 0o777  # nothing written, not even the chmod


def test_loose_folders_are_closed_and_reported(pki, helpers):
    helpers.issue(pki, ["c1"])
    os.chmod(pki.root, 0o755)
    os.chmod(pki.path("private"), 0o750)
    check = helpers.issue(pki, ["c1"], check_mode=True)
    assert check["changed"] is True and len(check["changes"]) == 2
    assert stat.S_IMODE(os.stat(pki.root).st_mode) == 0o755
    result = helpers.issue(pki, ["c1"])
    assert result["changes"] == check["changes"]
    assert "was 0750" in result["changes"][1]
    assert stat.S_IMODE(os.stat(pki.root).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(pki.path("private")).st_mode) == 0o700
    assert helpers.issue(pki, ["c1"])["changed"] is False


def test_stray_temp_files_are_removed(pki, helpers):
    helpers.issue(pki, ["c1"])
    for folder in ("private", "issued", ""):
        helpers.write(os.path.join(pki.root, folder, ".tmp-killed"), b"half a key")
    result = helpers.issue(pki, ["c1"])
    assert result["changed"] is True and len(result["changes"]) == 3
    assert not pki.stray_temp_files()


def test_unique_subject_yes_refuses_a_second_valid_certificate(pki, helpers):
    helpers.issue(pki, ["c1"])
    helpers.write(pki.path("index.txt.attr"), b"unique_subject = yes\n")
    before = helpers.snapshot(pki.root)
    with pytest.raises(PkiError, match="unique_subject = yes"):
        helpers.issue(pki, ["c1"], renew=True)
    assert helpers.snapshot(pki.root) == before
    assert helpers.issue(pki, ["c2"])["changed"] is True  # a new subject is fine


def test_certificate_missing_from_index_is_registered(pki, helpers):
    helpers.issue(pki, "c1")
    cert_pem = helpers.read(pki.cert("c1"))
    cert = x509_inspect.load_certificate(pki.cert("c1"))
    serial_file = helpers.read(pki.serial)
    helpers.write(pki.index, b"")

    result = helpers.issue(pki, "c1")
    entry = result["certificates"]["c1"]
    assert result["changed"] is True
    assert entry["action"] == "registered"
    assert entry["serial"] == x509_inspect.serial_hex(cert)
    rows = pki.read_index()
    assert len(rows) == 1
    assert (rows[0].status, rows[0].serial, rows[0].subject) == ("V", x509_inspect.serial_hex(cert), "/CN=c1")
    assert rows[0].expires == format_time(cert.not_valid_after_utc)
    assert helpers.read(pki.cert("c1")) == cert_pem
    assert helpers.read(pki.serial) == serial_file
    assert helpers.issue(pki, "c1")["changed"] is False


def test_registered_certificate_key_mode_is_fixed(pki, helpers):
    """When a run reports 'set mode 0600' for a key, the key is 0600 afterwards, whatever the action."""
    helpers.issue(pki, "c1")
    helpers.write(pki.index, b"")
    os.chmod(pki.key("c1"), 0o644)
    result = helpers.issue(pki, "c1")
    assert result["certificates"]["c1"]["action"] == "registered"
    assert mode(pki.key("c1")) == 0o600


def test_key_mode_is_reported_and_fixed(pki, helpers):
    helpers.issue(pki, "c1")
    os.chmod(pki.key("c1"), 0o644)
    check = helpers.issue(pki, "c1", check_mode=True)
    assert check["changed"] is True
    assert check["certificates"]["c1"]["action"] == "unchanged"
    assert mode(pki.key("c1")) == 0o644
    result = helpers.issue(pki, "c1")
    assert result["changed"] is True
    assert mode(pki.key("c1")) == 0o600
    assert helpers.issue(pki, "c1")["changed"] is False


def test_missing_key_reissues_with_a_new_key(pki, helpers):
    helpers.issue(pki, "c1")
    os.unlink(pki.key("c1"))
    result = helpers.issue(pki, "c1")
    assert result["certificates"]["c1"]["action"] == "reissued"
    assert "no private key" in result["certificates"]["c1"]["reasons"]
    key, dummy = x509_inspect.load_private_key(pki.key("c1"))
    assert x509_inspect.key_matches(key, x509_inspect.load_certificate(pki.cert("c1")))


# -- refusing ----------------------------------------------------------------------------------
def test_garbage_certificate_changes_nothing(pki, helpers):
    helpers.issue(pki, ["c1", "c2"])
    helpers.write(pki.cert("c2"), b"garbage, not a certificate\n")
    before = helpers.snapshot(pki.root)
    with pytest.raises(PkiError) as caught:
        helpers.issue(pki, ["c1", "c2", "c3"])
    assert pki.cert("c2") in str(caught.value)
    assert helpers.snapshot(pki.root) == before


def test_encrypted_leaf_key_is_refused(pki, helpers):
    helpers.issue(pki, "c1")
    key, dummy = x509_inspect.load_private_key(pki.key("c1"))
    helpers.write(pki.key("c1"), key_to_pem(key, "pw"))
    before = helpers.snapshot(pki.root)
    with pytest.raises(PkiError) as caught:
        helpers.issue(pki, "c1")
    assert pki.key("c1") in str(caught.value)
    assert "openssl pkey" in str(caught.value) and "set a passphrase" not in str(caught.value)
    assert helpers.snapshot(pki.root) == before


def test_malformed_index_changes_nothing(pki, helpers):
    helpers.issue(pki, "c1")
    with open(pki.index, "ab") as handle:
        handle.write(b"V\tnot-a-time\t\tAB\tunknown\t/CN=x\n")
    before = helpers.snapshot(pki.root)
    with pytest.raises(PkiError) as caught:
        helpers.issue(pki, ["c1", "c2"])
    message = str(caught.value)
    assert pki.index + " line 2 " in message
    assert "index.txt.old" in message
    assert helpers.snapshot(pki.root) == before


def test_no_ca(tmp_path, helpers):
    store = PkiStore(str(tmp_path / "pki"))
    with pytest.raises(PkiError) as caught:
        helpers.issue(store, "c1")
    assert "vpn_ca" in str(caught.value)
    assert store.root in str(caught.value)
    assert not os.path.exists(store.root)


def test_ca_without_serial_is_refused_and_nothing_written(pki, helpers):
    os.unlink(pki.serial)
    before = helpers.snapshot(pki.root)
    with pytest.raises(PkiError, match="has a CA .ca.crt. but no serial"):
        helpers.issue(pki, "c1")
    assert helpers.snapshot(pki.root) == before


def test_ca_key_not_matching_ca_cert(pki, helpers):
    helpers.write(pki.ca_key, key_to_pem(generate_key(1024)))
    before = helpers.snapshot(pki.root)
    with pytest.raises(PkiError) as caught:
        helpers.issue(pki, "c1")
    assert pki.ca_key in str(caught.value) and pki.ca_cert in str(caught.value)
    assert helpers.snapshot(pki.root) == before


def test_encrypted_ca_key_needs_ca_passphrase(pki, helpers):
    key, dummy = x509_inspect.load_private_key(pki.ca_key)
    helpers.write(pki.ca_key, key_to_pem(key, "ca-pw"))
    with pytest.raises(PkiError, match="ca_passphrase"):
        helpers.issue(pki, "c1")
    assert not os.path.exists(pki.cert("c1"))
    result = helpers.issue(pki, "c1", ca_passphrase="ca-pw")
    assert result["certificates"]["c1"]["action"] == "created"


def test_common_name_with_a_tab_leaves_index_readable(pki, helpers):
    """A CN is free text, but index.txt is tab separated: a tab must never break the database."""
    try:
        helpers.issue(pki, "c1", common_name="Alice\tSmith")
    except PkiError:
        return  # refusing such a CN up front is fine
    pki.read_index()  # the next run must still be able to read index.txt
