# -*- coding: utf-8 -*-
# Copyright: clientvpn.pki contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Certificate names: check_name, unique_names and read_names_file."""

from __future__ import annotations

import pytest

from ansible_collections.clientvpn.pki.plugins.module_utils.errors import PkiError
from ansible_collections.clientvpn.pki.plugins.module_utils.names import check_name, read_names_file, unique_names


# -- check_name -------------------------------------------------------------------
@pytest.mark.parametrize("name", ["client1.domain.tld", "alice@example.com", "a_b-c+d=e", "server", "C1", "x" * 200, "_x"])
def test_check_name_accepts(name):
    assert check_name(name) is None


@pytest.mark.parametrize(
    "name, why",
    [
        ("", "empty"),
        ("/x", "path separator"),
        ("a/b", "path separator"),
        ("a\\b", "path separator"),
        ("..", "'..'"),
        ("a..b", "'..'"),
        ("-x", "starts with '-'"),
        ("ca", "certificate authority"),
        ("CA", "certificate authority"),
        ("a\x00b", "NUL"),
        ("a b", "characters other than"),
        ("a\tb", "characters other than"),
        ("x" * 201, "longer than 200"),
    ],
)
def test_check_name_refuses_with_reason(name, why):
    with pytest.raises(PkiError) as caught:
        check_name(name)
    message = str(caught.value)
    assert repr(name) in message
    assert why in message


def test_check_name_refuses_leading_dot_and_says_so():
    """'.hidden' is refused; the reason must be the leading dot, not characters it does not have."""
    with pytest.raises(PkiError) as caught:
        check_name(".hidden")
    message = str(caught.value)
    assert "'.hidden'" in message
    assert "start" in message.split(". A name becomes", maxsplit=1)[0]


@pytest.mark.parametrize("name", ["client1\n", "client1\r", "\nclient1"])
def test_check_name_refuses_line_breaks(name):
    # A newline in a name ends up in a file name and in index.txt's subject column.
    with pytest.raises(PkiError) as caught:
        check_name(name)
    assert repr(name) in str(caught.value)


# -- unique_names -------------------------------------------------------------------
def test_unique_names_keeps_first_order_and_drops_repeats():
    assert unique_names(["c2", "c1", "c2", "server", "c1"]) == ["c2", "c1", "server"]


@pytest.mark.parametrize("names", [[], None])
def test_unique_names_refuses_nothing_in_the_options_terms(names):
    with pytest.raises(PkiError) as caught:
        unique_names(names, option="names", wanted="the clients whose profiles to write")
    assert str(caught.value) == "names is empty: give the clients whose profiles to write."


def test_unique_names_default_message_names_the_name_option():
    with pytest.raises(PkiError) as caught:
        unique_names([])
    assert str(caught.value) == "name is empty: give one certificate name or a list of names."


def test_unique_names_checks_every_name():
    with pytest.raises(PkiError) as caught:
        unique_names(["c1", "../c2"])
    assert "'../c2'" in str(caught.value) and "path separator" in str(caught.value)


# -- names_file -------------------------------------------------------------------
def _names_file(tmp_path, data):
    path = tmp_path / "clients.txt"
    path.write_bytes(data)
    return str(path)


def test_read_names_file_skips_blanks_and_comments_and_strips_spaces(tmp_path):
    path = _names_file(tmp_path, b"\xef\xbb\xbf# onboarded 2026-11\r\nalice.example.com\r\n\r\n  bob.example.com  \n\t\n#carol.example.com\ndave")
    assert read_names_file(path) == ["alice.example.com", "bob.example.com", "dave"]


def test_unique_names_adds_the_files_names_after_the_lists_without_repeats(tmp_path):
    path = _names_file(tmp_path, b"c3\nc1\nc3\n")
    assert unique_names(["c1", "c2"], names_file=path) == ["c1", "c2", "c3"]


def test_a_names_file_that_lists_nobody_is_no_error(tmp_path):
    # every user left: the roles then issue, stage and write nothing for clients, as with an empty list
    assert unique_names([], names_file=_names_file(tmp_path, b"# nobody yet\n\n")) == []


@pytest.mark.parametrize(
    "data, line, why",
    [
        (b"alice\nbob smith\n", 2, "characters other than"),
        (b"alice\n\n../etc/passwd\n", 3, "path separator"),
        (b"ca\n", 1, "certificate authority"),
        (b"alice # the new one\n", 1, "characters other than"),
    ],
)
def test_read_names_file_refuses_a_bad_name_with_its_line(tmp_path, data, line, why):
    path = _names_file(tmp_path, data)
    with pytest.raises(PkiError) as caught:
        read_names_file(path, option="pki_clients_file")
    message = str(caught.value)
    assert message.startswith("pki_clients_file=%s line %d: name " % (path, line)) and why in message
    assert message.endswith("Nothing was changed.")


def test_read_names_file_refuses_text_that_is_not_utf8_with_its_line(tmp_path):
    path = _names_file(tmp_path, b"alice\nbob\nj\xe9r\xf4me\n")
    with pytest.raises(PkiError) as caught:
        read_names_file(path)
    assert str(caught.value).startswith("names_file=%s line 3 is not UTF-8 text" % path)


def test_read_names_file_refuses_a_relative_path_before_reading_anything(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "clients.txt").write_text("alice\n")  # there from this directory, but a module's directory is Ansible's choice
    with pytest.raises(PkiError) as caught:
        read_names_file("clients.txt", option="pki_clients_file")
    assert str(caught.value).startswith("pki_clients_file='clients.txt' is not an absolute path") and "{{ playbook_dir }}" in str(caught.value)


@pytest.mark.parametrize("make", ["missing", "directory", "under_a_file"])
def test_read_names_file_says_which_option_and_what_to_give(tmp_path, make):
    path = {"missing": tmp_path / "nope.txt", "directory": tmp_path, "under_a_file": tmp_path / "f" / "x"}[make]
    (tmp_path / "f").write_text("x")
    with pytest.raises(PkiError) as caught:
        read_names_file(str(path))
    message = str(caught.value)
    assert message.startswith("names_file=%s " % path) and "one name per line" in message and "Nothing was changed." in message
