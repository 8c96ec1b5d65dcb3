"""index.txt subjects byte for byte as `openssl ca` writes them, for names that need escaping,
so that `easyrsa revoke` (openssl ca -revoke compares the row's subject) works on every name
and common name we accept."""

import json
import os
import subprocess
import sys

import pytest

from conftest import collections_path, easyrsa, ok, openssl, require

# (certificate name, common name): None takes the name as CN.
TRICKY = [
    ("plus", "a+b"), ("slash", "Sales/EMEA"), ("backslash", "back\\slash"), ("both", "\u00e9+/\\"),
    ("umlaut", "M\u00fcller"), ("kanji", "\u65e5\u672c"), ("emoji", "rocket \U0001F680"), ("yuml", "\u00ff"),
    ("quote", "O'Brien"), ("dquote", 'say "hi"'), ("equals", "x=y"), ("lead", " leading space"),
    ("trail", "trailing space "), ("hash", "#1"), ("comma", "Doe, Jane"), ("semicolon", "a;b"),
    ("angle", "<admin>"), ("tilde", "~tilde"), ("spaces", "a  b"), ("hexlike", "\\x41"),
    ("escaped-slash", "a\\/b"), ("multi", "a=b+c=d"),
    ("a+b", None), ("x=y", None), ("first.last@example.com", None), ("under_score-dash", None),
]
OPENSSL_CA_CONFIG = """[ ca ]
default_ca = scratch
[ scratch ]
dir = {dir}
database = $dir/index.txt
new_certs_dir = $dir
serial = $dir/serial
certificate = $dir/ca.crt
private_key = $dir/ca.key
default_md = sha256
default_days = 30
policy = anything
unique_subject = no
[ anything ]
countryName = optional
organizationName = optional
organizationalUnitName = optional
commonName = supplied
emailAddress = optional
"""


@pytest.fixture
def scratch_ca(tmp_path):
    """A plain `openssl ca` with its own CA: it signs our requests and writes its index.txt rows."""
    folder = tmp_path / "openssl-ca"
    folder.mkdir()
    (folder / "index.txt").write_text("")
    (folder / "serial").write_text("01\n")
    (folder / "ca.cnf").write_text(OPENSSL_CA_CONFIG.format(dir=folder))
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(folder / "ca.key"), "-out", str(folder / "ca.crt"),
            "-subj", "/CN=scratch", "-days", "30")
    return folder


def openssl_ca_subject(scratch_ca, request):
    """Sign ``request`` with openssl ca; the subject field of the row it writes."""
    openssl("ca", "-batch", "-config", str(scratch_ca / "ca.cnf"), "-in", request, "-notext", "-out", str(scratch_ca / "out.pem"))
    return (scratch_ca / "index.txt").read_bytes().decode("utf-8").splitlines()[-1].split("\t")[5]


def our_rows(pki):
    with open(os.path.join(pki, "index.txt"), encoding="utf-8") as handle:
        return dict((row.split("\t")[3], row.split("\t")) for row in handle.read().splitlines())


def test_rows_are_the_ones_openssl_ca_writes_and_easyrsa_revokes_them(tmp_path, scratch_ca, easyrsa_workdir):
    pki = str(tmp_path / "pki")
    ok("vpn_ca", {"pki_dir": pki})
    serials = {}
    for name, common_name in TRICKY:
        args = {"pki_dir": pki, "name": [name], "type": "client"}
        if common_name is not None:
            args["common_name"] = common_name
        serials[name] = ok("vpn_cert", args)["certificates"][name]["serial"]
    rows = our_rows(pki)
    assert len(TRICKY) >= 20
    for name, common_name in TRICKY:
        expected = openssl_ca_subject(scratch_ca, os.path.join(pki, "reqs", name + ".req"))
        assert rows[serials[name]][5] == expected, (name, common_name)

    # openssl ca -revoke refuses a row whose subject differs ("name does not match"): easyrsa revoke works on each.
    for name, dummy in TRICKY:
        easyrsa(easyrsa_workdir, pki, "revoke", name)
    easyrsa(easyrsa_workdir, pki, "gen-crl")
    rows = our_rows(pki)
    assert [name for name, dummy in TRICKY if rows[serials[name]][0] != "R"] == []
    crl = openssl("crl", "-in", os.path.join(pki, "crl.pem"), "-noout", "-text").stdout
    assert all("Serial Number: %s" % serial in crl for serial in serials.values())
    # and our own runs read what easyrsa wrote: a name that is its own CN is found revoked (once the files
    # moved, a name with another CN cannot be told from its row: docs/easyrsa.md)
    result = ok("vpn_cert", {"pki_dir": pki, "name": [name for name, common_name in TRICKY if common_name is None], "state": "revoked"})
    assert result["changed"] is False


@pytest.mark.parametrize("subject", [
    "/C=DE/O=Acme/OU=Ops/CN=a\\+b",
    "/O=Acme+OU=Ops/CN=multi-valued",
    "/CN=x/emailAddress=x@example.com",
    "/O=M\u00fcller & S\u00f6hne/CN=client",
])
def test_any_subject_is_written_as_openssl_ca_writes_it(tmp_path, scratch_ca, subject):
    """A certificate from elsewhere (adopted, registered) may carry more than a CN."""
    key, request = str(tmp_path / "k.pem"), str(tmp_path / "r.pem")
    openssl("req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", request, "-subj", subject, "-utf8",
            "-multivalue-rdn", "-config", str(scratch_ca / "ca.cnf"))
    expected = openssl_ca_subject(scratch_ca, request)
    code = (
        "import json, sys\n"
        "from cryptography import x509\n"
        "from ansible_collections.clientvpn.pki.plugins.module_utils.easyrsa_index import oneline_subject\n"
        "print(json.dumps(oneline_subject(x509.load_pem_x509_certificate(open(sys.argv[1], 'rb').read()).subject)))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code, str(scratch_ca / "out.pem")], capture_output=True, text=True, check=True,
                          env=dict(os.environ, PYTHONPATH=collections_path()))
    assert json.loads(proc.stdout) == expected
    require("openssl")
