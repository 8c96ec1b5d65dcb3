# -*- coding: utf-8 -*-
# Copyright: clientvpn.pki contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The working copy's decisions, on real folders: which files are keys, what a push
uploads and in which order, what a pull refuses, and the modes of what it writes."""

from __future__ import annotations

import os
import stat

import pytest

from ansible_collections.clientvpn.pki.plugins.module_utils.errors import PkiError
from ansible_collections.clientvpn.pki.plugins.module_utils.s3_objects import ObjectInfo, normalize_prefix, safe_name
from ansible_collections.clientvpn.pki.plugins.module_utils.s3_sync import (
    EMPTY_SHA256,
    STATE_FILE,
    check_remote,
    local_changes,
    plan_pull,
    plan_push,
    remote_changes,
    scan,
    secret_scope,
    sha256,
    write_entries,
)
from ansible_collections.clientvpn.pki.plugins.module_utils.safe_folder import SafeFolder

KEY = b"-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n"


@pytest.mark.parametrize("name, data, scope", [
    ("private/ca.key", KEY, "ca-key"),
    ("private/ca.key.1234.2026-11-26@03:00:00~", KEY, "ca-key"),  # a backup of it
    ("private/alice.key", b"anything", "private-keys"),
    ("revoked/private_by_serial/0A.key", KEY, "private-keys"),
    ("inline/alice.inline", b"<key>\n" + KEY + b"</key>\n", "private-keys"),  # easy-rsa 3.2.0's bundle, found by content
    ("issued/alice.crt", b"-----BEGIN CERTIFICATE-----\n", None),
    ("private/", b"", None),
])
def test_which_files_are_keys(name, data, scope):
    assert secret_scope(name, data) == scope


def _encrypted_keys(name, scope):
    return name + ".kms" if scope else name


def test_a_push_uploads_folders_then_files_then_the_database_serial_before_index_then_deletes():
    local = dict((name, (sha256(name.encode()), secret_scope(name, b""))) for name in (
        "index.txt", "serial", "index.txt.attr", "index.txt.old", "serial.old", "issued/", "issued/bob.crt", "private/", "private/bob.key",
        "ca.crt"))
    base = {"ca.crt": {"etag": '"c"', "sha256": sha256(b"ca.crt")}, "issued/": {"etag": '"d"', "sha256": sha256(b"issued/")},
            "reqs/bob.req": {"etag": '"r"', "sha256": "x"}, "reqs/": {"etag": '"e"', "sha256": EMPTY_SHA256}}
    uploads, deletes = plan_push(local, base, _encrypted_keys)
    assert [name for obj, name, scope in uploads] == [
        "private/", "private/bob.key", "issued/bob.crt", "index.txt.old", "serial.old", "index.txt.attr", "serial", "index.txt"]
    assert ("private/bob.key.kms", "private/bob.key", "private-keys") in uploads
    assert deletes == ["reqs/bob.req", "reqs/"]  # files before their folders, after every upload


def _order(names, base_names=()):
    local = dict((name, (sha256(b"new " + name.encode()), secret_scope(name, b""))) for name in names)
    base = dict((name, {"etag": '"old"', "sha256": sha256(b"old " + name.encode())}) for name in base_names)
    return [name for obj, name, scope in plan_push(local, base, _encrypted_keys)[0]]


def test_new_clients_go_up_as_the_modules_write_them_key_request_certificate_copies_then_serial_and_index():
    """A push killed between a certificate and its key left a certificate whose key never reached S3 (issued/ sorts before
    private/): the next run registered it as valid, then reissued the name, so the client had two valid certificates, one
    with a key lost. In the disk order, a push cut anywhere leaves what a crash leaves on disk."""
    names = ["index.txt", "index.txt.old", "serial", "serial.old"]
    for client in ("bob", "carol"):
        names += ["private/%s.key" % client, "reqs/%s.req" % client, "issued/%s.crt" % client]
    names += ["certs_by_serial/0A.pem", "certs_by_serial/0B.pem", "inline/bob.inline", "inline/private/bob.inline"]
    assert _order(names, ["index.txt", "index.txt.old", "serial", "serial.old"]) == [
        "private/bob.key", "private/carol.key", "reqs/bob.req", "reqs/carol.req", "issued/bob.crt", "issued/carol.crt",
        "certs_by_serial/0A.pem", "certs_by_serial/0B.pem", "inline/bob.inline", "inline/private/bob.inline",
        "index.txt.old", "serial.old", "serial", "index.txt"]


def test_what_a_renewal_or_reissue_keeps_goes_up_before_the_file_it_keeps_is_overwritten():
    backup = "private/bob.key.4711.2026-11-26@03:00:00~"
    names = [backup, "private/bob.key", "reqs/bob.req", "issued/bob.crt", "renewed/issued/bob.crt", "renewed/certs_by_serial/0A.crt",
             "certs_by_serial/0C.pem", "ca.crt", "private/ca.key", "expired-ca.list", "index.txt", "serial"]
    assert _order(names, ["private/bob.key", "reqs/bob.req", "issued/bob.crt", "renewed/issued/bob.crt", "ca.crt", "expired-ca.list"]) == [
        "expired-ca.list", backup, "renewed/certs_by_serial/0A.crt", "renewed/issued/bob.crt",
        "private/bob.key", "private/ca.key", "reqs/bob.req", "ca.crt", "issued/bob.crt", "certs_by_serial/0C.pem", "serial", "index.txt"]


def test_a_key_stored_in_plaintext_before_moves_to_its_encrypted_object():
    local = {"private/a.key": (sha256(KEY), "private-keys")}
    base = {"private/a.key": {"etag": '"p"', "sha256": sha256(KEY)}}
    assert plan_push(local, base, _encrypted_keys) == ([("private/a.key.kms", "private/a.key", "private-keys")], ["private/a.key"])


def test_what_differs_from_the_base():
    base = {"a": {"etag": '"1"', "sha256": sha256(b"a")}, "b.kms": {"etag": '"2"', "sha256": sha256(b"b")}, "c": {"etag": '"3"', "sha256": "z"}}
    remote = {"a": ObjectInfo('"1"', 1), "b.kms": ObjectInfo('"9"', 1), "d": ObjectInfo('"4"', 1)}
    assert remote_changes(base, remote) == ["b.kms (changed)", "d (added)", "c (removed)"]
    assert plan_pull(remote, base) == (["b.kms", "d"], ["c"])
    local = {"a": (sha256(b"a"), None), "b": (sha256(b"B"), "private-keys"), "e": (sha256(b"e"), None)}
    assert local_changes(local, base) == ["b", "c", "e"]


@pytest.mark.parametrize("name", ["../x", "a/../../x", "/etc/passwd", "a//b", "./a", ".tmp-123", "a/.tmp-x", STATE_FILE])
def test_a_listing_with_a_name_no_pki_has_is_refused(name):
    with pytest.raises(PkiError, match="s3://b/p/ holds objects that cannot be a PKI's files"):
        check_remote({"index.txt": ObjectInfo('"1"', 1), name: ObjectInfo('"2"', 1)}, "s3://b/p/")


def test_a_file_kept_twice_plain_and_encrypted_is_refused():
    with pytest.raises(PkiError, match=r"private/a.key and private/a.key.kms \(one file twice\)"):
        check_remote({"private/a.key": ObjectInfo('"1"', 1), "private/a.key.kms": ObjectInfo('"2"', 1)}, "s3://b/p/")


def test_names_and_prefixes():
    assert safe_name("issued/a.crt") and safe_name("issued/") and not safe_name("") and not safe_name("a\\b")
    assert normalize_prefix("/team/pki/") == "team/pki" and normalize_prefix("") == ""
    with pytest.raises(PkiError, match="prefix='team/../pki' has an empty, '.' or '..' part"):
        normalize_prefix("team/../pki")


def test_a_pull_writes_folders_0700_and_files_0600_whatever_the_umask(tmp_path):
    folder = SafeFolder(str(tmp_path / "work"))
    old = os.umask(0)
    try:
        write_entries(folder, {"private/": b"", "private/ca.key": KEY, "revoked/certs_by_serial/": b"", "index.txt": b""}, [])
    finally:
        os.umask(old)
    modes = dict((os.path.relpath(os.path.join(d, n), folder.root), stat.S_IMODE(os.stat(os.path.join(d, n)).st_mode))
                 for d, dirs, files in os.walk(folder.root) for n in dirs + files)
    assert modes == {"private": 0o700, "private/ca.key": 0o600, "revoked": 0o700, "revoked/certs_by_serial": 0o700, "index.txt": 0o600}
    assert stat.S_IMODE(os.stat(folder.root).st_mode) == 0o700
    write_entries(folder, {}, ["revoked/certs_by_serial/", "revoked/", "private/ca.key"])
    assert sorted(os.listdir(folder.root)) == ["index.txt", "private"]


def test_the_scan_skips_the_state_and_temp_files_and_refuses_links_and_kms_names(tmp_path):
    root = tmp_path / "work"
    (root / "private").mkdir(parents=True)
    (root / "private" / "ca.key").write_bytes(KEY)
    (root / STATE_FILE).write_text("{}")
    (root / ".tmp-abc").write_text("half")
    assert scan(str(root)) == {"private/": (EMPTY_SHA256, None), "private/ca.key": (sha256(KEY), "ca-key")}
    (root / "link").symlink_to(root / "private" / "ca.key")
    with pytest.raises(PkiError, match="link is not a plain file or folder"):
        scan(str(root))
    (root / "link").unlink()
    (root / "notes.kms").write_text("x")
    with pytest.raises(PkiError, match="names ending in .kms are kept for encrypted keys"):
        scan(str(root))
