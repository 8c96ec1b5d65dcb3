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

What is imported (the certificate, key and chain of each name, and their checks)
is acm_local's; the AWS client comes from aws.connector, built once the local
material is validated.
"""

from __future__ import annotations

import json
import os

try:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
except ImportError:  # pragma: no cover - reported by the modules
    pass

from ansible_collections.clientvpn.pki.plugins.module_utils import x509_inspect
from ansible_collections.clientvpn.pki.plugins.module_utils.acm_local import der_list, endpoint_chain, requested_certificates
from ansible_collections.clientvpn.pki.plugins.module_utils.aws import aws_call, describe_error, is_not_found
from ansible_collections.clientvpn.pki.plugins.module_utils.clientvpn_rules import ACM_KEY_TYPES
from ansible_collections.clientvpn.pki.plugins.module_utils.errors import PkiError
from ansible_collections.clientvpn.pki.plugins.module_utils.pki_store import PkiStore

try:
    from botocore.exceptions import BotoCoreError, ClientError
except ImportError:  # pragma: no cover - reported by the modules
    BotoCoreError = ClientError = Exception

RECORD_FILE = "acm-certificates.json"
TAG_CA = "clientvpn.pki:ca-sha256"
TAG_NAME = "clientvpn.pki:name"


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


def fetch(client, arn):
    """(leaf PEM, chain PEM) held by ACM, or None when the ARN no longer exists."""
    try:
        response = client.get_certificate(CertificateArn=arn)
    except (BotoCoreError, ClientError) as exc:
        if is_not_found(exc):
            return None
        raise describe_error(exc, "ACM get_certificate %s" % arn)
    return response.get("Certificate"), response.get("CertificateChain")


def recorded_copies(client, store):
    """The certificates this PKI recorded in ACM (in the client's region) against the files on
    disk, one ACM read each: {name: {certificate_arn, found, same_as_disk, serial, not_after}}."""
    copies = {}
    chain = endpoint_chain(store)
    for name, entry in sorted(ArnRecord(store).load().get(client.meta.region_name, {}).items()):
        remote = fetch(client, entry["arn"])
        copy = {"certificate_arn": entry["arn"], "found": remote is not None, "same_as_disk": False, "serial": None, "not_after": None}
        if remote is not None:
            leaf = x509.load_pem_x509_certificate(remote[0].encode() if isinstance(remote[0], str) else remote[0])
            copy.update(serial=x509_inspect.serial_hex(leaf), not_after=x509_inspect.not_after(leaf).isoformat())
            if os.path.exists(store.cert(name)):
                ours = (der_list(store.read(store.cert(name))), [cert.public_bytes(serialization.Encoding.DER) for cert in chain])
                theirs = (der_list(remote[0]), der_list(remote[1]))
                copy["same_as_disk"] = theirs[0] == ours[0] and theirs[1][: len(ours[1])] == ours[1]
        copies[name] = copy
    return copies


class AcmCertificate(object):
    """Brings one ACM certificate to the wanted state: present (same files) or absent.

    ``record`` is the ArnRecord of the PKI the ARN is recorded in. ``local`` is the
    LocalCertificate to import; with state=present, None means check mode before an
    earlier task has made it: a real run would import it (no file to read, no API call).
    """

    def __init__(self, client, name, record, local=None, certificate_arn=None, tags=None, purge_tags=True, state="present"):
        self.client = client
        self.region = client.meta.region_name
        self.name = name
        self.local = local
        self.certificate_arn = certificate_arn
        self.tags = tags
        self.purge_tags = purge_tags
        self.state = state
        self.record = record
        self.store = record.store
        self.calls = {"read": 0, "write": 0}

    # -- API wrappers that count -------------------------------------------------
    def _read(self, operation, **kwargs):
        self.calls["read"] += 1
        return aws_call("ACM %s" % operation, getattr(self.client, operation), **kwargs)

    def _write(self, operation, **kwargs):
        self.calls["write"] += 1
        return aws_call("ACM %s" % operation, getattr(self.client, operation), **kwargs)

    def _fetch(self, arn):
        self.calls["read"] += 1
        return fetch(self.client, arn)

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
            pages = list(paginator.paginate(Includes={"keyTypes": list(ACM_KEY_TYPES)}))
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
        if self.local is None:
            return self._result(None, "imported", True, {})
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
        elif self.state == "present":
            result.update(serial=None, not_after=None, domain=None)  # still to be made
        return result


class AcmCertificateList(object):
    """Many certificates (``names``, ``certificates``) in one module run: one lock, one read of the
    ARN record, and per certificate only its own API calls. ACM has no batch import, and
    throttles ImportCertificate, so the imports stay one after another (botocore retries
    throttling). Every certificate is validated before the first API call; each import is
    recorded as soon as it is done, so a failure half-way loses nothing."""

    def __init__(self, certificates, record):
        self.certificates = certificates
        self.record = record

    def run(self, check_mode):
        results = {}
        with self.record.store.locked(exclusive=not check_mode):
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


def from_params(params, check_mode, connect):
    """The backend for vpn_acm_import's options: one certificate (``name``), or a list
    (``names``, ``certificates``; one run, one lock, one read of the ARN record).

    Every local certificate is read and validated (acm_local) before ``connect()``
    gives the ACM client (aws.connector), so a bad file costs no API call.
    """
    store, requested, listed = requested_certificates(params, check_mode)
    # Without pki_dir (state=absent with certificate_arn) there is no record to keep: nothing is written.
    record = ArnRecord(store or PkiStore(os.getcwd()))
    client = connect()
    certificates = [
        AcmCertificate(client, item.name, record, local=item.local, certificate_arn=item.certificate_arn,
                       tags=params["tags"], purge_tags=params["purge_tags"], state=params["state"])
        for item in requested
    ]
    return AcmCertificateList(certificates, record) if listed else certificates[0]
