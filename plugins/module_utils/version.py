# -*- coding: utf-8 -*-
# Copyright: clientvpn.pki contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The collection's name and version, for the code that runs on the managed host.

A module runs there from an AnsiballZ zip that carries its module_utils but
not galaxy.yml nor MANIFEST.json, and ansible-core passes it no collection
version, so the version is written here too (as amazon.aws does).
"""

from __future__ import annotations

COLLECTION_NAME = "clientvpn.pki"
# galaxy.yml's version is the source: raise it there and here in the same change.
# tests/unit/plugins/module_utils/test_version.py fails while the two differ.
COLLECTION_VERSION = "0.2.0"
