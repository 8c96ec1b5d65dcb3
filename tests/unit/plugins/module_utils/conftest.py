# -*- coding: utf-8 -*-
# Copyright: clientvpn.pki contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Shared fixtures of the module_utils unit tests.

No network, no easyrsa / openssl binaries: everything is made with the
``cryptography`` library, in pytest's tmp_path. One RSA 1024 CA is built per
session and copied into each test that needs it, so the suite stays fast.
"""

from __future__ import annotations

import os
import shutil
import stat

import pytest

from ansible_collections.clientvpn.pki.plugins.module_utils.ca_manager import CertificateAuthority
from ansible_collections.clientvpn.pki.plugins.module_utils.cert_issuer import CertificateIssuer
from ansible_collections.clientvpn.pki.plugins.module_utils.cert_plan import build_specs
from ansible_collections.clientvpn.pki.plugins.module_utils.pki_store import PkiStore

CA_NAME = "Unit Test CA"


class Helpers(object):
    """Small helpers the tests share (a fixture, since conftest is not importable)."""

    CA_NAME = CA_NAME

    @staticmethod
    def snapshot(root):
        """Every directory and file under root, with mode and content: equal snapshots = nothing changed."""
        result = {}
        if not os.path.exists(root):
            return result
        for directory, dirs, files in os.walk(root):
            rel = os.path.relpath(directory, root)
            result[rel + "/"] = stat.S_IMODE(os.stat(directory).st_mode)
            for name in files:
                path = os.path.join(directory, name)
                with open(path, "rb") as handle:
                    result[os.path.join(rel, name)] = (stat.S_IMODE(os.stat(path).st_mode), handle.read())
        return result

    @staticmethod
    def read(path):
        with open(path, "rb") as handle:
            return handle.read()

    @staticmethod
    def write(path, data):
        with open(path, "wb") as handle:
            handle.write(data)

    @staticmethod
    def specs(names, cert_type="client", common_name=None, subject_alt_names=None, key_size=1024, days=825, digest="sha256"):
        if isinstance(names, str):
            names = [names]
        return build_specs(names, cert_type, common_name, subject_alt_names, key_size, days, digest)

    @classmethod
    def issue(cls, store, names, cert_type="client", check_mode=False, renew_before_days=30, ca_passphrase=None, renew=False,
              reissue_revoked=False, **spec_args):
        specs = cls.specs(names, cert_type, **spec_args)
        issuer = CertificateIssuer(store, specs, renew_before_days=renew_before_days, ca_passphrase=ca_passphrase, renew=renew,
                                   reissue_revoked=reissue_revoked)
        return issuer.run(check_mode)


@pytest.fixture
def helpers():
    return Helpers


@pytest.fixture(scope="session")
def ca_template(tmp_path_factory):
    """A PKI holding only an RSA 1024 CA (no passphrase), built once."""
    root = str(tmp_path_factory.mktemp("ca-template") / "pki")
    CertificateAuthority(PkiStore(root), CA_NAME, 1024, 3650, "sha256").run(False)
    return root


@pytest.fixture
def pki(tmp_path, ca_template):
    """A fresh copy of the template CA's PKI, as a PkiStore."""
    root = str(tmp_path / "pki")
    shutil.copytree(ca_template, root, symlinks=True)
    return PkiStore(root)
