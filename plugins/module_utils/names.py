# -*- coding: utf-8 -*-
# Copyright: clientvpn.pki contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Certificate names: which ones are allowed, and a list of them made unique.

A name is the identity of a certificate in a PKI (``issued/<name>.crt``,
``private/<name>.key``), so every module that takes names checks them here.
"""

from __future__ import annotations

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


def unique_names(names, option="name", wanted="one certificate name or a list of names"):
    """``names`` without repeats, in their order, each checked; an empty list is refused.

    ``option`` is the module option the names came from and ``wanted`` what the
    message asks for instead, so the error reads in the module's own terms.
    """
    # Plain str: ansible-core 2.19 hands module options over as tagged str subclasses, whose every
    # concatenation (name + ".crt", 100,000 times in a large PKI) copies the tags.
    unique = list(dict.fromkeys(str(name) for name in names or []))
    if not unique:
        raise PkiError("%s is empty: give %s." % (option, wanted))
    for name in unique:
        check_name(name)
    return unique
