# -*- coding: utf-8 -*-
# Copyright: clientvpn.pki contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The staging manifest is written by hand for speed: it must stay byte for byte what
json.dumps(indent=2, sort_keys=True) writes, or every folder staged before would be rewritten."""

from __future__ import annotations

import json

import pytest

from ansible_collections.clientvpn.pki.plugins.module_utils.staging import MANIFEST_VERSION, manifest_bytes


@pytest.mark.parametrize("names", [[], ["ca.crt"], ["b.key", "a.crt", "Müller.crt", 'quote"d.crt', "tab\there.crt", "日本.key"]])
def test_the_manifest_is_what_json_dumps_writes(names):
    content = {"comment": "Files ... \"files\": {} ...", "version": MANIFEST_VERSION,
               "files": dict((name, {"sha256": "%064x" % index}) for index, name in enumerate(names))}
    assert manifest_bytes(content) == (json.dumps(content, indent=2, sort_keys=True) + "\n").encode("utf-8")
