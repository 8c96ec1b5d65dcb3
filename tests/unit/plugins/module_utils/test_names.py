# -*- coding: utf-8 -*-
# Copyright: clientvpn.pki contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Certificate names: check_name and unique_names."""

from __future__ import annotations

import pytest

from ansible_collections.clientvpn.pki.plugins.module_utils.errors import PkiError
from ansible_collections.clientvpn.pki.plugins.module_utils.names import check_name, unique_names


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
