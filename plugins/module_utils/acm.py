# -*- coding: utf-8 -*-
# Copyright: clientvpn.pki contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""One certificate in AWS Certificate Manager: find it, compare it, import it.

Finding never scans the whole account when it can help it: an explicit ARN,
else the ARN recorded in the PKI directory after the first import (one
``get_certificate``, which also gives what to compare), else the identity
tags set at first import, looked up only on certificates whose domain
matches. A run with nothing to change makes one ACM read and no write.

A renewed certificate is re-imported into the same ARN (the Client VPN
endpoint follows the ARN), without tags in that call (ACM forbids them on
re-import); tags are then reconciled separately, which also restores them
where an endpoint drops them on re-import (moto does, real ACM keeps them).
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import json
import os

try:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
except ImportError:  # pragma: no cover - reported by the modules
    pass

from ansible_collections.clientvpn.pki.plugins.module_utils import x509_inspect
from ansible_collections.clientvpn.pki.plugins.module_utils.aws import aws_call, describe_error, is_not_found
from ansible_collections.clientvpn.pki.plugins.module_utils.clientvpn_rules import check_importable
from ansible_collections.clientvpn.pki.plugins.module_utils.errors import PkiError
from ansible_collections.clientvpn.pki.plugins.module_utils.pki_store import PkiStore

try:
    from botocore.exceptions import BotoCoreError, ClientError
except ImportError:  # pragma: no cover - reported by the modules
    BotoCoreError = ClientError = Exception

RECORD_FILE = "acm-certificates.json"
TAG_CA = "clientvpn.pki:ca-sha256"
TAG_NAME = "clientvpn.pki:name"


class LocalCertificate(object):
    """The certificate, key and chain on this host, validated against every rule."""

    def __init__(self, certificate, private_key, certificate_chain, passphrase=None, cert_type="server", now=None):
        self.leaf = x509_inspect.load_certificate(certificate)
        self.chain = _load_chain(certificate_chain)
        # No RSA consistency check (~35 ms a key, most of a no-op run over many clients):
        # the key is only compared with the certificate here, and ACM validates what it imports.
        key, encrypted = x509_inspect.load_private_key(private_key, passphrase, "private_key_passphrase", check_key=False)
        if encrypted:
            # ACM takes only an unencrypted key: decrypt in memory, never on disk.
            key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        else:
            with open(private_key, "rb") as handle:
                key_pem = handle.read()
        check_importable(self.leaf, key, key_pem, self.chain, cert_type, now or datetime.datetime.now(datetime.timezone.utc))
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
        if _der_list(leaf_pem) != _der_list(self.leaf_pem):
            return False
        ours, theirs = _der_list(self.chain_pem), _der_list(chain_pem)
        return theirs[: len(ours)] == ours


def check_readable(option, path):
    """Refuse a missing or unreadable input file by its option's name, before any API call."""
    try:
        with open(path, "rb"):
            pass
    except OSError as exc:
        raise PkiError(
            "%s %s cannot be read: %s. Give the path of an existing, readable PEM file on the managed host."
            % (option, path, exc.strerror or exc)
        )


def _load_chain(path):
    with open(path, "rb") as handle:
        data = handle.read()
    try:
        chain = x509.load_pem_x509_certificates(data)
    except ValueError as exc:
        raise PkiError("certificate_chain %s holds no readable PEM certificate (%s)." % (path, exc))
    return chain


def _der_list(pem):
    if not pem:
        return []
    data = pem.encode() if isinstance(pem, str) else pem
    return [cert.public_bytes(serialization.Encoding.DER) for cert in x509.load_pem_x509_certificates(data)]


class ArnRecord(object):
    """``acm-certificates.json`` in the PKI directory: region -> name -> ARN and the tags last set."""

    def __init__(self, store):
        self.store = store
        self.path = store.path(RECORD_FILE)
        self._data = None

    def load(self):
        """Read once (under the PKI lock), then kept: a list of names reads it once."""
        if self._data is None:
            self._data = {}
            if os.path.exists(self.path):
                try:
                    self._data = json.loads(self.store.read(self.path).decode("utf-8"))
                except ValueError as exc:
                    raise PkiError("%s is not valid JSON (%s): remove it; the certificates are then found by their tags." % (self.path, exc))
        return self._data

    def get(self, region, name):
        return self.load().get(region, {}).get(name)

    def put(self, region, name, entry):
        data = self.load()
        if entry is None:
            if name not in data.get(region, {}):
                return
            data[region].pop(name)
        else:
            data.setdefault(region, {})[name] = entry
        self.store.write(self.path, (json.dumps(data, indent=2, sort_keys=True) + "\n").encode())


class AcmCertificate(object):
    """Brings one ACM certificate to the wanted state: present (same files) or absent."""

    def __init__(self, client, name, pki_dir, module, local=None, certificate_arn=None, tags=None, purge_tags=True, state="present", record=None):
        self.client = client
        self.region = client.meta.region_name
        self.name = name
        self.local = local
        self.certificate_arn = certificate_arn
        self.tags = tags
        self.purge_tags = purge_tags
        self.state = state
        self.record = record or ArnRecord(PkiStore(module, pki_dir))
        self.store = self.record.store
        self.calls = {"read": 0, "write": 0}

    # -- API wrappers that count -------------------------------------------------
    def _read(self, operation, **kwargs):
        self.calls["read"] += 1
        return aws_call("ACM %s" % operation, getattr(self.client, operation), **kwargs)

    def _write(self, operation, **kwargs):
        self.calls["write"] += 1
        return aws_call("ACM %s" % operation, getattr(self.client, operation), **kwargs)

    def _fetch(self, arn):
        """(leaf PEM, chain PEM) held by ACM, or None when the ARN no longer exists."""
        self.calls["read"] += 1
        try:
            response = self.client.get_certificate(CertificateArn=arn)
        except (BotoCoreError, ClientError) as exc:
            if is_not_found(exc):
                return None
            raise describe_error(exc, "ACM get_certificate %s" % arn)
        return response.get("Certificate"), response.get("CertificateChain")

    # -- finding -------------------------------------------------------------------
    def _identity_tags(self):
        return {TAG_NAME: self.name, TAG_CA: self.local.ca_fingerprint}

    def _find(self):
        """(arn, remote material), or (None, None): explicit ARN, then the record, then the tags."""
        if self.certificate_arn:
            remote = self._fetch(self.certificate_arn)
            if remote is None and self.state == "absent":
                return None, None
            if remote is None:
                raise PkiError(
                    "certificate_arn %s does not exist in %s. Give an existing ARN, or leave certificate_arn "
                    "unset to import a new certificate." % (self.certificate_arn, self.region)
                )
            return self.certificate_arn, remote
        recorded = self.record.get(self.region, self.name)
        if recorded:
            remote = self._fetch(recorded["arn"])
            if remote is not None:
                return recorded["arn"], remote
        # The tags identify this PKI's CA, so they are only searched with the local material.
        arn = self._find_by_tags() if self.local is not None else None
        if arn:
            return arn, self._fetch(arn)
        return None, None

    def _find_by_tags(self):
        wanted = self._identity_tags()
        domains = (self.local.domain, x509_inspect.common_name(self.local.leaf))
        paginator = self.client.get_paginator("list_certificates")
        try:
            pages = list(paginator.paginate(Includes={"keyTypes": ["RSA_1024", "RSA_2048"]}))
        except (BotoCoreError, ClientError) as exc:
            raise describe_error(exc, "ACM list_certificates")
        self.calls["read"] += len(pages)
        for page in pages:
            for summary in page.get("CertificateSummaryList", []):
                if summary.get("DomainName") not in domains:
                    continue
                tags = self._remote_tags(summary["CertificateArn"])
                if all(tags.get(key) == value for key, value in wanted.items()):
                    return summary["CertificateArn"]
        return None

    def _remote_tags(self, arn):
        response = self._read("list_tags_for_certificate", CertificateArn=arn)
        return dict((tag["Key"], tag.get("Value", "")) for tag in response.get("Tags", []))

    # -- deciding and doing ------------------------------------------------------------
    def run(self, check_mode):
        with self.store.locked(exclusive=not check_mode):
            return self.apply(check_mode)

    def apply(self, check_mode):
        """``run`` without taking the PKI lock (the caller holds it)."""
        if self.state == "absent":
            return self._absent(check_mode)
        return self._present(check_mode)

    def _desired_tags(self, current):
        desired = dict(current) if (self.tags is None or not self.purge_tags) else {}
        desired.update(self.tags or {})
        desired.update(self._identity_tags())
        return desired

    def _present(self, check_mode):
        arn, remote = self._find()
        if arn is None:
            action = "imported"
        elif self.local.matches(remote):
            action = "unchanged"
        else:
            self._check_same_key_kind(arn, remote)
            action = "reimported"
        if not check_mode:
            if action == "imported":
                tags = self._desired_tags({})
                arn = self._write(
                    "import_certificate",
                    Certificate=self.local.leaf_pem,
                    PrivateKey=self.local.key_pem,
                    CertificateChain=self.local.chain_pem,
                    Tags=[{"Key": key, "Value": value} for key, value in sorted(tags.items())],
                )["CertificateArn"]
            elif action == "reimported":
                # Same ARN, and no Tags: ACM refuses tags on re-import.
                self._write(
                    "import_certificate",
                    CertificateArn=arn,
                    Certificate=self.local.leaf_pem,
                    PrivateKey=self.local.key_pem,
                    CertificateChain=self.local.chain_pem,
                )
        tags, tags_changed = self._reconcile_tags(arn, action, check_mode)
        changed = action != "unchanged" or tags_changed
        entry = {"arn": arn, "tags": tags}
        if not check_mode and self.record.get(self.region, self.name) != entry:
            self.record.put(self.region, self.name, entry)
        return self._result(arn, action, changed, tags)

    def _check_same_key_kind(self, arn, remote):
        theirs = x509.load_pem_x509_certificate(remote[0].encode() if isinstance(remote[0], str) else remote[0])
        if x509_inspect.key_kind(theirs.public_key()) != x509_inspect.key_kind(self.local.leaf.public_key()):
            raise PkiError(
                "%s holds a %s certificate; the new one has a %s key. ACM re-import cannot change the key type or "
                "size: keep the key size (vpn_cert renews with the same key), or import into a new ARN."
                % (arn, x509_inspect.key_kind(theirs.public_key()), x509_inspect.key_kind(self.local.leaf.public_key()))
            )

    def _reconcile_tags(self, arn, action, check_mode):
        """Bring tags to the wanted set; read them only when the record cannot vouch for them."""
        recorded = (self.record.get(self.region, self.name) or {}) if arn else {}
        if action == "imported":
            return self._desired_tags({}), False
        wanted_if_recorded = self._desired_tags(recorded.get("tags", {}))
        if action == "unchanged" and recorded.get("arn") == arn and recorded.get("tags") == wanted_if_recorded:
            return wanted_if_recorded, False
        current = self._remote_tags(arn)
        desired = self._desired_tags(current)
        to_add = dict((key, value) for key, value in desired.items() if current.get(key) != value)
        to_remove = [key for key in current if key not in desired]
        if not check_mode:
            if to_remove:
                self._write("remove_tags_from_certificate", CertificateArn=arn,
                            Tags=[{"Key": key, "Value": current[key]} for key in sorted(to_remove)])
            if to_add:
                self._write("add_tags_to_certificate", CertificateArn=arn,
                            Tags=[{"Key": key, "Value": value} for key, value in sorted(to_add.items())])
        return desired, bool(to_add or to_remove)

    def _absent(self, check_mode):
        arn, dummy = self._find()
        if arn is None:
            result = self._result(None, "unchanged", False, {})
            recorded = self.record.get(self.region, self.name)
            if recorded and not check_mode:
                # deleted outside Ansible: forget the stale ARN
                self.record.put(self.region, self.name, None)
            if not self.certificate_arn and not recorded:
                result["warnings"].append(
                    "no ARN recorded for %s in %s (%s): nothing deleted. Give certificate_arn to delete a "
                    "certificate this PKI did not record." % (self.name, self.region, self.record.path)
                )
            return result
        if not check_mode:
            self._write("delete_certificate", CertificateArn=arn)
            self.record.put(self.region, self.name, None)
        return self._result(arn, "deleted", True, {})

    def _result(self, arn, action, changed, tags):
        result = {
            "changed": changed,
            "action": action,
            "certificate_arn": arn,
            "region": self.region,
            "name": self.name,
            "tags": tags,
            "api_calls": dict(self.calls),
            "warnings": [],
            "diff": {"before": {}, "after": {}},
        }
        if self.local is not None:
            result.update(self.local.facts())
            result["diff"]["after"] = dict(self.local.facts(), certificate_arn=arn or "(new)")
        return result


class AcmCertificateList(object):
    """Many certificates (``certificates``) in one module run: one lock, one read of the
    ARN record, and per certificate only its own API calls. ACM has no batch import, and
    throttles ImportCertificate, so the imports stay one after another (botocore retries
    throttling). Every certificate is validated before the first API call; each import is
    recorded as soon as it is done, so a failure half-way loses nothing."""

    def __init__(self, certificates, record):
        self.certificates = certificates
        self.record = record  # None when check mode found nothing built yet

    def run(self, check_mode):
        results = {}
        lock = self.record.store.locked(exclusive=not check_mode) if self.record else contextlib.nullcontext()
        with lock:
            for item in self.certificates:
                try:
                    results[item.name] = item.apply(check_mode)
                except PkiError as exc:
                    done = sorted(name for name, result in results.items() if result["changed"])
                    raise PkiError("%s: %s%s" % (item.name, exc, " Done before it in this run: %s." % ", ".join(done) if done and not check_mode else ""))
        calls = {"read": 0, "write": 0}
        warnings = []
        for result in results.values():
            made = result.pop("api_calls")
            for kind in calls:
                calls[kind] += made[kind]
            warnings.extend(result.pop("warnings"))
            result.pop("diff")
        return {
            "changed": any(result["changed"] for result in results.values()),
            "region": next(iter(results.values()))["region"],
            "certificates": results,
            "api_calls": calls,
            "warnings": warnings,
            "diff": {"before": {}, "after": dict((name, result.get("serial")) for name, result in results.items())},
        }


class PendingImport(object):
    """Check mode of a whole play: an earlier task would have created the certificate,
    so a real run would import it. No file to read, no API call."""

    def __init__(self, name, region):
        self.name = name
        self.region = region

    def run(self, check_mode):
        return self.apply(check_mode)

    def apply(self, check_mode):
        return {
            "changed": True,
            "action": "imported",
            "certificate_arn": None,
            "region": self.region,
            "name": self.name,
            "serial": None,
            "not_after": None,
            "domain": None,
            "tags": {},
            "api_calls": {"read": 0, "write": 0},
            "warnings": [],
            "diff": {"before": {}, "after": {}},
        }


def default_pki_dir(certificate):
    """The easy-rsa PKI of ``issued/<name>.crt``, else the certificate's own directory."""
    directory = os.path.dirname(os.path.abspath(certificate))
    return os.path.dirname(directory) if os.path.basename(directory) == "issued" else directory


def from_params(module, client_factory):
    """The backend for vpn_acm_import's options: one certificate, or ``certificates``.

    Every local certificate is read and validated here, before any API call.
    """
    params = module.params
    listed = params["certificates"] is not None
    items = params["certificates"] if listed else [
        dict((key, params[key]) for key in ("name", "certificate", "private_key", "private_key_passphrase", "certificate_arn"))
    ]
    if not items:
        raise PkiError("certificates is empty: give at least one certificate, or use certificate / private_key.")
    built, names, record, client = [], set(), None, None
    for index, item in enumerate(items):
        certificate = item["certificate"]
        name = item["name"] or (os.path.splitext(os.path.basename(certificate))[0] if certificate else None)
        pki_dir = params["pki_dir"] or (default_pki_dir(certificate) if certificate else None)
        if params["state"] == "present" and not (certificate and item["private_key"]):
            where = "certificates[%d]" % index if listed else "vpn_acm_import"
            raise PkiError("%s needs certificate and private_key with state=present (and certificate_chain)." % where)
        if not (name and pki_dir) and not item["certificate_arn"]:
            raise PkiError("state=absent needs certificate_arn, or name and pki_dir (or certificate) to find the recorded ARN.")
        if name in names:
            raise PkiError("certificates names %s twice: give each certificate its own name." % name)
        names.add(name)
        if params["state"] == "present" and module.check_mode and not os.path.exists(certificate):
            built.append(PendingImport(name, params["region"]))
            continue
        pki_dir = os.path.abspath(pki_dir or os.getcwd())
        if record is None:
            record = ArnRecord(PkiStore(module, pki_dir))
        elif record.store.root != pki_dir:
            raise PkiError("certificates come from %s and %s: set pki_dir, or use one task per PKI." % (record.store.root, pki_dir))
        local = None
        if params["state"] == "present":
            prefix = "certificates[%d]." % index if listed else ""
            for option, path in ((prefix + "certificate", certificate), (prefix + "private_key", item["private_key"]),
                                 ("certificate_chain", params["certificate_chain"])):
                check_readable(option, path)
            local = LocalCertificate(certificate, item["private_key"], params["certificate_chain"], item["private_key_passphrase"], params["type"])
        client = client or client_factory()
        built.append(AcmCertificate(
            client, name=name or "unnamed", pki_dir=pki_dir, module=module, local=local, certificate_arn=item["certificate_arn"],
            tags=params["tags"], purge_tags=params["purge_tags"], state=params["state"], record=record,
        ))
    return AcmCertificateList(built, record) if listed else built[0]
