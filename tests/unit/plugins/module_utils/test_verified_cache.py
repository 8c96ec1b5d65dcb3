# -*- coding: utf-8 -*-
# Copyright: clientvpn.pki contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""certificate_facts and verified_cache: facts equal to what parsing says, found again by
the file's bytes only, and a cache that is ignored rather than trusted when in doubt."""

from __future__ import annotations

import json
import os
import stat
import time

import pytest

from ansible_collections.clientvpn.pki.plugins.module_utils import x509_inspect
from ansible_collections.clientvpn.pki.plugins.module_utils.certificate_facts import CertFacts, KeyFacts
from ansible_collections.clientvpn.pki.plugins.module_utils.errors import PkiError
from ansible_collections.clientvpn.pki.plugins.module_utils import verified_cache
from ansible_collections.clientvpn.pki.plugins.module_utils.verified_cache import PREFETCH_FROM, STAMP_SETTLE_SECONDS, VerifiedCache


@pytest.fixture
def issued(pki, helpers):
    helpers.issue(pki, ["alice", "bob"])
    return pki


def _facts_of(store, name):
    ca_cert = x509_inspect.load_certificate(store.ca_cert)
    return CertFacts.of(x509_inspect.load_certificate(store.cert(name)), ca_cert)


class Counting(object):
    """A parse function that counts its calls."""

    def __init__(self, parse):
        self.parse, self.calls = parse, 0

    def __call__(self, data):
        self.calls += 1
        return self.parse(data)


def _cert_parser(store):
    ca_cert = x509_inspect.load_certificate(store.ca_cert)
    return Counting(lambda data: CertFacts.of(x509_inspect.load_certificate("cert", data=data), ca_cert))


@pytest.fixture
def settled(monkeypatch):
    """time.time() a few seconds ahead: files written by the test count as settled."""
    real = time.time
    monkeypatch.setattr(verified_cache.time, "time", lambda: real() + STAMP_SETTLE_SECONDS + 1)


def test_facts_are_what_parsing_says_and_survive_a_record(issued):
    cert = x509_inspect.load_certificate(issued.cert("alice"))
    facts = _facts_of(issued, "alice")
    assert facts.facts() == x509_inspect.facts(cert)
    assert facts.issued_by_ca and facts.extended_key_usages == ["1.3.6.1.5.5.7.3.2"]
    again = CertFacts.from_row(json.loads(json.dumps(facts.to_row())))
    assert again.to_row() == facts.to_row() and again.not_after == facts.not_after and again.facts() == facts.facts()
    key = KeyFacts.of(x509_inspect.load_private_key(issued.key("alice"))[0])
    assert facts.belongs_to(key) and not _facts_of(issued, "bob").belongs_to(key)
    assert KeyFacts.from_row(key.to_row()).to_row() == key.to_row()


@pytest.mark.parametrize("files", [1, PREFETCH_FROM], ids=["one-query-a-file", "prefetched"])
def test_a_record_is_found_by_the_bytes_and_a_settled_stamp(issued, tmp_path, settled, files):
    cache_dir = str(tmp_path / "cache")
    ca_bytes = issued.read(issued.ca_cert)
    parse = _cert_parser(issued)
    path = issued.cert("alice")
    first = VerifiedCache(cache_dir, ca_bytes, files=files)
    assert first.certificate(path, parse).serial == _facts_of(issued, "alice").serial
    assert first.certificate(path, parse) is not None and parse.calls == 1  # learnt within the run
    assert first.certificate(issued.cert("nobody"), parse) is None
    first.save()
    assert stat.S_IMODE(os.stat(cache_dir).st_mode) == 0o700 and stat.S_IMODE(os.stat(first.path).st_mode) == 0o600

    second = VerifiedCache(cache_dir, ca_bytes, files=files)
    assert second.certificate(path, parse).serial == _facts_of(issued, "alice").serial and parse.calls == 1

    # One byte different, same size, mtime set back: another ctime, so the file is read; other bytes, so parsed.
    before, pem = os.stat(path), issued.read(path)
    changed = pem.replace(b"-----END CERTIFICATE-----", b"-----END CERTIFICATe-----")
    assert len(changed) == len(pem)
    issued.write(path, changed)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    with pytest.raises(PkiError):
        VerifiedCache(cache_dir, ca_bytes, files=files).certificate(path, parse)
    assert parse.calls == 2
    # The same bytes back (a restored backup): another stamp, known bytes: read, not parsed.
    issued.write(path, pem)
    assert VerifiedCache(cache_dir, ca_bytes, files=files).certificate(path, parse) is not None and parse.calls == 2
    # Another CA certificate: another cache.
    VerifiedCache(cache_dir, ca_bytes + b"\n", files=files).certificate(path, parse)
    assert parse.calls == 3


def test_a_young_file_is_read_every_time(issued, tmp_path):
    """A file changed less than STAMP_SETTLE_SECONDS ago gets no stamp: a change within the same
    clock tick would keep its ctime."""
    cache_dir = str(tmp_path / "cache")
    ca_bytes = issued.read(issued.ca_cert)
    cache = VerifiedCache(cache_dir, ca_bytes)
    cache.certificate(issued.cert("alice"), _cert_parser(issued))
    assert cache.learnt["files"] == {} and len(cache.learnt["facts"]) == 1


def test_check_mode_and_nothing_learnt_write_nothing(issued, tmp_path):
    cache_dir = str(tmp_path / "cache")
    VerifiedCache(cache_dir, issued.read(issued.ca_cert)).save()
    assert not os.path.exists(cache_dir)
    cache = VerifiedCache(cache_dir, issued.read(issued.ca_cert), check_mode=True)
    cache.certificate(issued.cert("alice"), _cert_parser(issued))
    cache.save()
    assert not os.path.exists(cache_dir)
    assert VerifiedCache(None, b"ca").path is None


@pytest.mark.parametrize("loosen", ["file", "folder"])
def test_a_cache_others_could_write_is_not_used(issued, tmp_path, settled, loosen):
    cache_dir = str(tmp_path / "cache")
    ca_bytes, path = issued.read(issued.ca_cert), issued.cert("alice")
    cache = VerifiedCache(cache_dir, ca_bytes)
    cache.certificate(path, _cert_parser(issued))
    cache.save()
    os.chmod(cache.path if loosen == "file" else cache_dir, 0o666 if loosen == "file" else 0o777)
    parse = _cert_parser(issued)
    again = VerifiedCache(cache_dir, ca_bytes)
    again.certificate(path, parse)
    assert parse.calls == 1
    assert len(again.warnings) == 1 and "writable by other users" in again.warnings[0]
    again.save()
    if loosen == "file":  # not written either: someone else may have written it
        assert len(again.warnings) == 2 and "could not write the cache" in again.warnings[1]
    else:  # our own folder is closed (0700) and our own 0600 file written: only we could have written it
        assert len(again.warnings) == 1 and stat.S_IMODE(os.stat(cache_dir).st_mode) == 0o700


def test_a_garbled_cache_is_rebuilt_and_an_unwritable_one_only_warns(issued, tmp_path, settled):
    cache_dir = tmp_path / "cache"
    cache_dir.mkdir(mode=0o700)
    ca_bytes, path = issued.read(issued.ca_cert), issued.cert("alice")
    cache = VerifiedCache(str(cache_dir), ca_bytes)
    with open(cache.path, "w") as handle:
        handle.write("not a database")
    os.chmod(cache.path, 0o600)
    parse = _cert_parser(issued)
    garbled = VerifiedCache(str(cache_dir), ca_bytes)
    garbled.certificate(path, parse)
    assert parse.calls == 1 and garbled.warnings == []
    garbled.save()
    assert len(garbled.warnings) == 1  # a file that is not a database is not overwritten blindly
    os.unlink(cache.path)
    garbled.save()
    assert VerifiedCache(str(cache_dir), ca_bytes).certificate(path, parse) is not None and parse.calls == 1

    blocked = tmp_path / "file-not-folder"
    blocked.write_text("x")
    with pytest.raises(PkiError, match="cache_dir"):
        VerifiedCache(str(blocked), ca_bytes)
    with pytest.raises(PkiError, match="cache_dir"):
        VerifiedCache("relative/cache", ca_bytes)
    unwritable = VerifiedCache(str(blocked / "sub") if os.geteuid() else "/proc/clientvpn-cache", ca_bytes)
    unwritable.certificate(path, _cert_parser(issued))
    unwritable.save()
    assert len(unwritable.warnings) == 1 and "could not write the cache" in unwritable.warnings[0]
