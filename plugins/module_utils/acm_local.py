# -*- coding: utf-8 -*-
# Copyright: clientvpn.pki contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What vpn_acm_import would import, on this host: for each name the certificate, key
and chain, read and checked against every rule before any API call.

Two modes, never mixed in one task:

- From a PKI: ``pki_dir`` with ``name``, ``names`` or ``certificates`` items holding
  only a name. The files are those the easy-rsa layout gives the name (PkiStore:
  ``issued/<name>.crt``, ``private/<name>.key``) and the chain is its ``ca.crt``
  (or ``certificate_chain``).
- A user's own files: ``certificate``, ``private_key`` and ``certificate_chain`` as
  paths, with ``name`` and ``pki_dir`` saying under which name and where the ARN
  is recorded. No name is ever guessed from a path.

In check mode a certificate file that does not exist yet is one an earlier task of
the same run would have made (pending.py): it is reported as to be imported.
"""

from __future__ import annotations

import collections
import datetime
import hashlib

try:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
except ImportError:  # pragma: no cover - reported by the modules
    pass

from ansible_collections.clientvpn.pki.plugins.module_utils import x509_inspect
from ansible_collections.clientvpn.pki.plugins.module_utils.clientvpn_rules import check_importable, endpoint_ca
from ansible_collections.clientvpn.pki.plugins.module_utils.errors import PkiError
from ansible_collections.clientvpn.pki.plugins.module_utils.names import check_name, unique_names
from ansible_collections.clientvpn.pki.plugins.module_utils.pending import made_by_an_earlier_task
from ansible_collections.clientvpn.pki.plugins.module_utils.pki_store import PkiStore

# The options of one certificate: top-level, or in each item of ``certificates``.
ITEM_OPTIONS = ("name", "certificate", "private_key", "private_key_passphrase", "certificate_arn")
OWN_FILES_HINT = "Give the path of an existing, readable PEM file on the managed host."
PKI_HINT = "Issue it first (clientvpn.pki.vpn_cert), or check pki_dir and the name."

# One certificate asked for. local: its LocalCertificate; None with state=absent, and in
# check mode while an earlier task is still to make it (a real run would import it).
Requested = collections.namedtuple("Requested", "name certificate_arn local")


class LocalCertificate(object):
    """The certificate, key and chain on this host, validated against every rule."""

    def __init__(self, certificate, private_key, certificate_chain, passphrase=None, cert_type="server"):
        self.leaf = x509_inspect.load_certificate(certificate)
        # a file, or the certificates themselves (a PKI's: endpoint_chain)
        self.chain = certificate_chain if isinstance(certificate_chain, list) else _load_chain(certificate_chain)
        # No RSA consistency check (~35 ms a key, most of a no-op run over many clients):
        # the key is only compared with the certificate here, and ACM validates what it imports.
        key, encrypted = x509_inspect.load_private_key(private_key, passphrase, "private_key_passphrase", check_key=False)
        if encrypted:
            # ACM takes only an unencrypted key: decrypt in memory, never on disk.
            key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        else:
            with open(private_key, "rb") as handle:
                key_pem = handle.read()
        check_importable(self.leaf, key, key_pem, self.chain, cert_type, datetime.datetime.now(datetime.timezone.utc))
        self.key_pem = key_pem
        self.leaf_pem = self.leaf.public_bytes(serialization.Encoding.PEM)
        self.chain_pem = b"".join(cert.public_bytes(serialization.Encoding.PEM) for cert in self.chain)

    @property
    def ca_fingerprint(self):
        return hashlib.sha256(self.chain[0].public_bytes(serialization.Encoding.DER)).hexdigest()

    @property
    def domain(self):
        dns = [san[4:] for san in x509_inspect.subject_alt_names(self.leaf) if san.startswith("DNS:")]
        return dns[0] if dns else x509_inspect.common_name(self.leaf)

    def facts(self):
        return {"serial": x509_inspect.serial_hex(self.leaf), "not_after": x509_inspect.not_after(self.leaf).isoformat(), "domain": self.domain}

    def matches(self, remote):
        """Same leaf, and ACM's chain starts with ours (an endpoint may append its own roots)."""
        leaf_pem, chain_pem = remote
        if der_list(leaf_pem) != der_list(self.leaf_pem):
            return False
        ours, theirs = der_list(self.chain_pem), der_list(chain_pem)
        return theirs[: len(ours)] == ours


def check_readable(option, path, hint=OWN_FILES_HINT):
    """Refuse a missing or unreadable input file by its option's name, before any API call."""
    try:
        with open(path, "rb"):
            pass
    except OSError as exc:
        raise PkiError("%s %s cannot be read: %s. %s" % (option, path, exc.strerror or exc, hint))


def _load_chain(path):
    with open(path, "rb") as handle:
        data = handle.read()
    try:
        chain = x509.load_pem_x509_certificates(data)
    except ValueError as exc:
        raise PkiError("certificate_chain %s holds no readable PEM certificate (%s)." % (path, exc))
    return chain


def der_list(pem):
    if not pem:
        return []
    data = pem.encode() if isinstance(pem, str) else pem
    return [cert.public_bytes(serialization.Encoding.DER) for cert in x509.load_pem_x509_certificates(data)]


def requested_certificates(params, check_mode):
    """(the PkiStore of pki_dir or None, [Requested], whether a list was asked for) for
    vpn_acm_import's options; every local file is read and checked here."""
    items, where = _items(params)
    own_files = any(item["certificate"] or item["private_key"] for item in items)
    present = params["state"] == "present"
    if present and own_files:
        _check_own_files(params, items, where, check_mode)
    seen = set()
    for index, item in enumerate(items):
        _check_identity(params, item, where(index), own_files)
        if item["name"] and item["name"] in seen:
            raise PkiError("certificates names %s twice: give each certificate its own name." % item["name"])
        seen.add(item["name"])
    store = PkiStore(params["pki_dir"]) if params["pki_dir"] else None
    pki_chain = []  # the PKI's endpoint chain, read once for all the names (and not before a name needs it)

    def chain_of_pki():
        if not pki_chain:
            pki_chain.extend(endpoint_chain(store))
        return pki_chain

    requested = [
        Requested(item["name"] or "unnamed", item["certificate_arn"],
                  _local(params, item, store, own_files, check_mode, chain_of_pki) if present else None)
        for item in items
    ]
    return store, requested, params["names"] is not None or params["certificates"] is not None


def _items(params):
    """The certificates asked for (dicts of ITEM_OPTIONS), and where(index) naming each in messages."""
    if params["names"] is not None:
        names = unique_names(params["names"], option="names", wanted="the names of the certificates of pki_dir to import")
        return [dict(dict.fromkeys(ITEM_OPTIONS), name=name) for name in names], lambda index: "names[%d]" % index
    if params["certificates"] is not None:
        if not params["certificates"]:
            raise PkiError("certificates is empty: give at least one certificate, or use names / name.")
        return params["certificates"], lambda index: "certificates[%d]" % index
    return [dict((key, params[key]) for key in ITEM_OPTIONS)], lambda index: "vpn_acm_import"


def _check_own_files(params, items, where, check_mode):
    """A user's own files: each item's certificate and key, and the chain, given and readable."""
    if not params["certificate_chain"]:
        raise PkiError("certificate_chain is required with certificate and private_key (your own files): give the CA chain, ca.crt.")
    for index, item in enumerate(items):
        if not (item["certificate"] and item["private_key"]):
            raise PkiError("%s needs certificate and private_key with state=present (and certificate_chain)." % where(index))
        if made_by_an_earlier_task(item["certificate"], check_mode):
            continue
        prefix = where(index) + "." if params["certificates"] is not None else ""
        for option, path in ((prefix + "certificate", item["certificate"]), (prefix + "private_key", item["private_key"]),
                             ("certificate_chain", params["certificate_chain"])):
            check_readable(option, path)


def _check_identity(params, item, where, own_files):
    """Each certificate needs the name and pki_dir its ARN is recorded under (or, to delete, its ARN)."""
    if item["name"] and params["pki_dir"]:
        if not own_files:
            check_name(item["name"])  # it becomes issued/<name>.crt
        return
    if params["state"] == "absent":
        if not item["certificate_arn"]:
            raise PkiError("state=absent needs certificate_arn, or name and pki_dir to find the recorded ARN.")
    elif own_files:
        raise PkiError(
            "%s: certificate and private_key (your own files) need name and pki_dir too - the name the ARN is recorded and "
            "tagged under, and the directory of that record (acm-certificates.json). They are no longer guessed from the "
            "certificate's path: for /srv/clientvpn/pki/issued/server.crt that was name=server, pki_dir=/srv/clientvpn/pki. "
            "For a certificate of a PKI, give pki_dir and name alone." % where
        )
    else:
        raise PkiError(
            "%s needs pki_dir and name: the certificate issued/<name>.crt of that easy-rsa PKI is imported with its key and "
            "ca.crt. For files of your own, give certificate, private_key and certificate_chain, with name and pki_dir." % where
        )


def endpoint_chain(store):
    """The chain a certificate of this PKI is imported with: the one CA certificate the endpoint must
    trust now, which a CA renewal decides (clientvpn_rules.endpoint_ca)."""
    current = x509_inspect.load_certificate(store.ca_cert)
    return [endpoint_ca(current, store.previous_ca_certs(), datetime.datetime.now(datetime.timezone.utc))]


def _local(params, item, store, own_files, check_mode, chain_of_pki):
    """The item's validated LocalCertificate, or None in check mode while its certificate is still to be made."""
    if own_files:
        paths = (item["certificate"], item["private_key"], params["certificate_chain"])
    else:
        name = item["name"]
        paths = (store.cert(name), store.key(name), params["certificate_chain"] or store.ca_cert)
    if made_by_an_earlier_task(paths[0], check_mode):
        return None
    chain = paths[2]
    if not own_files:
        for what, path in zip(("certificate", "private key", "CA certificate"), paths):
            check_readable("the %s of %s," % (what, item["name"]), path, PKI_HINT)
        if not params["certificate_chain"]:
            chain = chain_of_pki()
    return LocalCertificate(paths[0], paths[1], chain, item["private_key_passphrase"], params["type"])
