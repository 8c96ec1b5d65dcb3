# -*- coding: utf-8 -*-
# Copyright: clientvpn.pki contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Certificate names: which ones are allowed, and a list of them made unique.

A name is the identity of a certificate in a PKI (``issued/<name>.crt``,
``private/<name>.key``), so every module that takes names checks them here.
"""

from __future__ import annotations

import os
import re

from ansible_collections.clientvpn.pki.plugins.module_utils.errors import PkiError

# File names easy-rsa would accept; anything else could escape pki_dir or
# confuse openssl's configuration parsing.
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.@+=-]*$")
MAX_NAME_LENGTH = 200


def check_name(name):
    """Refuse a certificate name that is not a plain file name inside pki_dir."""
    reason = None
    if not name:
        reason = "it is empty"
    elif "\0" in name:
        reason = "it contains a NUL byte"
    elif "/" in name or "\\" in name:
        reason = "it contains a path separator"
    elif ".." in name:
        reason = "it contains '..'"
    elif name.startswith("-"):
        reason = "it starts with '-'"
    elif name.startswith("."):
        reason = "it starts with '.' (a hidden file)"
    elif name.lower() == "ca":
        reason = "'ca' is the certificate authority's own file name (private/ca.key)"
    elif len(name) > MAX_NAME_LENGTH:
        reason = "it is longer than %d characters" % MAX_NAME_LENGTH
    elif not _NAME.fullmatch(name):
        reason = "it has characters other than letters, digits and _ . @ + = -"
    if reason:
        raise PkiError(
            "name %r cannot be used: %s. A name becomes issued/<name>.crt and private/<name>.key, "
            "so use a plain file name such as 'client1.domain.tld'." % (name, reason)
        )


def read_names_file(path, option="names_file"):
    """The names a text file lists: one per line, surrounding spaces ignored, blank lines and lines
    starting with ``#`` skipped. A name that cannot be used is refused with its line number."""
    if not os.path.isabs(path):
        raise PkiError(
            "%s=%r is not an absolute path: a module runs in a directory of Ansible's choosing, so a relative path "
            "has no fixed meaning. Give an absolute path, for example '{{ playbook_dir }}/clients.txt'. Nothing was changed."
            % (option, path)
        )
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except (FileNotFoundError, NotADirectoryError):
        raise PkiError(
            "%s=%s does not exist. Give the path of a text file on the host the module runs on (where the PKI is), "
            "one name per line. Nothing was changed." % (option, path)
        )
    except IsADirectoryError:
        raise PkiError("%s=%s is a directory: give the path of a text file, one name per line. Nothing was changed." % (option, path))
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise PkiError(
            "%s=%s line %d is not UTF-8 text: save the file as UTF-8 (names are plain ASCII file names). Nothing was changed."
            % (option, path, data.count(b"\n", 0, exc.start) + 1)
        )
    names = []
    for number, line in enumerate(text.splitlines(), 1):
        name = line.strip()
        if not name or name.startswith("#"):
            continue
        try:
            check_name(name)
        except PkiError as exc:
            raise PkiError("%s=%s line %d: %s Nothing was changed." % (option, path, number, exc))
        names.append(name)
    return names


def unique_names(names, option="name", wanted="one certificate name or a list of names", names_file=None):
    """``names`` and the names ``names_file`` lists, without repeats, in their order, each checked.

    An empty result is refused, unless a ``names_file`` was given: a file may list nobody (every
    user left). ``option`` is the module option the names came from and ``wanted`` what the
    message asks for instead, so the error reads in the module's own terms.
    """
    # Plain str: ansible-core 2.19 hands module options over as tagged str subclasses, whose every
    # concatenation (name + ".crt", 100,000 times in a large PKI) copies the tags.
    unique = list(dict.fromkeys(str(name) for name in names or []))
    for name in unique:
        check_name(name)
    if names_file:
        unique = list(dict.fromkeys(unique + read_names_file(names_file)))
    elif not unique:
        raise PkiError("%s is empty: give %s." % (option, wanted))
    return unique
