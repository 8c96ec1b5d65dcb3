# -*- coding: utf-8 -*-
# Copyright: clientvpn.pki contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The version modules report (AWS user agent) is the one galaxy.yml releases."""

from __future__ import annotations

import os

import yaml

from ansible_collections.clientvpn.pki.plugins.module_utils import version
from ansible_collections.clientvpn.pki.plugins.module_utils.aws import USER_AGENT

COLLECTION_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..", ".."))


def galaxy():
    with open(os.path.join(COLLECTION_ROOT, "galaxy.yml"), encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def test_collection_version_is_galaxy_yml_version():
    assert version.COLLECTION_VERSION == str(galaxy()["version"])


def test_collection_name_is_galaxy_yml_name():
    metadata = galaxy()
    assert version.COLLECTION_NAME == "%s.%s" % (metadata["namespace"], metadata["name"])


def test_user_agent_carries_the_collection_version():
    assert USER_AGENT == "%s/%s" % (version.COLLECTION_NAME, version.COLLECTION_VERSION)
