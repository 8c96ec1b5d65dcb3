# -*- coding: utf-8 -*-
# Copyright: clientvpn.pki contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a server or client certificate should be, and what will happen to it.

``build_specs`` turns the module's options into one LeafSpec per name. The
NamePlanner reads what is on disk for a name and decides, in this order:

* keep it (``unchanged``): the key is RSA of the requested size and belongs
  to the certificate, the current CA signed it, CN / SANs / EKU are as asked,
  it is not revoked and does not expire within ``renew_before_days``;
* ``renewed``: only the expiry is due (or ``renew`` asks for it), so the
  key is kept (ACM re-import cannot change the key type or size, and a kept
  key leaves nothing to redistribute);
* ``reissued``: anything else differs; the key is kept unless it is missing,
  of the wrong size or belonged to a revoked certificate;
* ``created``: nothing was there;
* ``registered``: a good certificate without its ``index.txt`` row (left by
  an interrupted run).

Each reason is a code with its text for people: the decision reads codes.
"""

from __future__ import annotations

import stat

from ansible_collections.clientvpn.pki.plugins.module_utils import x509_inspect
from ansible_collections.clientvpn.pki.plugins.module_utils.certificate_facts import CertFacts, KeyFacts
from ansible_collections.clientvpn.pki.plugins.module_utils.clientvpn_rules import (
    check_common_name,
    check_days,
    check_key_size,
    check_server_has_domain,
)
from ansible_collections.clientvpn.pki.plugins.module_utils.easyrsa_index import format_subject
from ansible_collections.clientvpn.pki.plugins.module_utils.errors import PkiError
from ansible_collections.clientvpn.pki.plugins.module_utils.names import unique_names
from ansible_collections.clientvpn.pki.plugins.module_utils.pending import pending_reason
from ansible_collections.clientvpn.pki.plugins.module_utils.safe_folder import SECRET_MODE
from ansible_collections.clientvpn.pki.plugins.module_utils.x509_profiles import CERT_TYPES, normalize_san

# Reason codes. Only EXPIRING, RENEW_ASKED and EARLIER_CA keep the certificate's
# key and content (a renewal); any other reason makes it a reissue.
NO_KEY = "no_key"
KEY_SIZE = "key_size"
NO_CERT = "no_certificate"
NO_CA_YET = "no_ca_yet"
OTHER_CA = "other_ca"
REVOKED = "revoked"
KEY_MISMATCH = "key_mismatch"
DIFFERS = "differs"
EXPIRING = "expiring"
RENEW_ASKED = "renew_asked"
# its authorityKeyIdentifier names a CA certificate a renewal replaced (docs/ca-renewal.md)
EARLIER_CA = "earlier_ca_certificate"
RENEWAL = frozenset((EXPIRING, RENEW_ASKED, EARLIER_CA))
_VERB = {"created": "create", "renewed": "renew", "reissued": "reissue"}


class LeafSpec(object):
    """What one name should look like."""

    def __init__(self, name, common_name, subject_alt_names, cert_type, key_size, days, digest, sans_given=True):
        self.name = name
        self.common_name = common_name
        self.subject_alt_names = subject_alt_names
        self.cert_type = cert_type
        self.key_size = key_size
        self.days = days
        self.digest = digest
        # Unset SANs keep what an existing certificate has (as easy-rsa 3.2 renew
        # copies them); the default is only for a certificate made from nothing.
        self.sans_given = sans_given

    def keeping_sans_of(self, cert_facts):
        existing = cert_facts.subject_alt_names
        if self.sans_given or not existing:
            return self
        if self.cert_type == "server" and not any(san.startswith("DNS:") for san in existing):
            return self
        return LeafSpec(self.name, self.common_name, existing, self.cert_type, self.key_size, self.days, self.digest)


class NamePlan(object):
    """What will happen to one name, decided before anything is written."""

    def __init__(self, spec):
        self.spec = spec
        self.action = "unchanged"
        self.reasons = []  # [(code, text)]
        self.changes = []
        # What is on disk, as facts (certificate_facts); the objects themselves are loaded
        # only when the name changes (a renewal signs the kept key, a registration reads the certificate).
        self.key_facts = None
        self.key_stat = None  # the os.stat that found key_facts (its mode is checked)
        self.cert_facts = None
        self._key = self._load_key = None
        self._cert = self._load_cert = None
        self.new_key = False
        self.key_mode_wrong = False  # a key kept as it is, but not 0600
        self.cert_is_ours = False
        self.register = False
        self.backups = []
        self.warnings = []
        self.issued = None  # the facts (x509_inspect.facts) of the certificate this run issued
        # serial of the revoked certificate this name had, if any
        self.revoked = None

    @property
    def key(self):
        """The private key on disk (or the one made for this name), or None."""
        if self._load_key is not None:
            self._key, self._load_key = self._load_key(), None
        return self._key

    @key.setter
    def key(self, key):
        self._key, self._load_key = key, None

    @property
    def has_key(self):
        return self._key is not None or self._load_key is not None

    @property
    def cert(self):
        """The certificate on disk, or None."""
        if self._load_cert is not None:
            self._cert, self._load_cert = self._load_cert(), None
        return self._cert

    def because(self, code, text):
        self.reasons.append((code, text))

    @property
    def reason_texts(self):
        return [text for code, text in self.reasons]

    @property
    def changed(self):
        return bool(self.changes)

    def decide(self):
        codes = set(code for code, text in self.reasons)
        if not codes:
            if self.register:
                self.action = "registered"
                self.changes.append("add %s to index.txt" % self.spec.name)
            return
        if self.cert_facts is None:
            self.action = "created"
        elif codes <= RENEWAL:
            self.action = "renewed"
        else:
            self.action = "reissued"
        self.changes.append("%s %s: %s" % (_VERB[self.action], self.spec.name, "; ".join(self.reason_texts)))

    @property
    def signs_existing_key(self):
        return self.action in ("created", "renewed", "reissued") and not self.new_key and self.has_key


def build_specs(names, cert_type, common_name, subject_alt_names, key_size, days, digest, names_file=None):
    """Validate the module's options and turn them into one LeafSpec per name."""
    if cert_type not in CERT_TYPES:
        raise PkiError("type=%s: use 'server' or 'client'." % cert_type)
    check_key_size("key_size", key_size)
    check_days("days", days)
    unique = unique_names(names, names_file=names_file)
    if common_name is not None and len(unique) > 1:
        raise PkiError(
            "common_name=%r was given with %d names: each certificate needs its own CN. Leave "
            "common_name unset (each CN is then its name) or use one name per task." % (common_name, len(unique))
        )
    explicit_sans = None if subject_alt_names is None else [normalize_san(san) for san in subject_alt_names]
    specs = []
    for name in unique:
        cn = common_name if common_name is not None else name
        check_common_name("common_name", cn, from_name=name if common_name is None else None)
        sans = explicit_sans
        if sans is None:
            # easy-rsa 3.1 gave servers DNS:<CN>; 3.2 dropped it and ACM then refuses them.
            sans = ["DNS:%s" % cn] if cert_type == "server" else []
        if cert_type == "server":
            check_server_has_domain(name, sans)
        specs.append(LeafSpec(name, cn, list(dict.fromkeys(sans)), cert_type, key_size, days, digest, explicit_sans is not None))
    return specs


class NamePlanner(object):
    """Reads one name's key, certificate and index row and makes its NamePlan.

    What the files say comes from ``cache`` (a VerifiedCache: by their bytes' SHA-256,
    or by the stamp recorded with it) or, for bytes not seen before, from parsing them
    and verifying the signature.
    """

    def __init__(self, store, ca_cert, renew_before_days, renew, rows, revoked, cache):
        self.store = store
        self.ca_cert = ca_cert
        self.ca_serial = x509_inspect.serial_hex(ca_cert)
        self.renew_before_days = renew_before_days
        self.renew = renew
        self.rows = rows  # {serial: IndexEntry}
        self.revoked = revoked  # {subject: [serials]} of R rows
        self.cache = cache

    def plan(self, spec):
        plan = NamePlan(spec)
        key_path = self.store.key(spec.name)
        self._read_key(plan, key_path)
        if plan.key_facts is None:
            plan.new_key = True
            plan.because(NO_KEY, "no private key")
        cert_path = self.store.cert(spec.name)
        self._read_certificate(plan, cert_path)
        if plan.cert_facts is None:
            plan.because(NO_CERT, "no certificate")
            earlier = self.revoked.get(format_subject(spec.common_name))
            if earlier:
                plan.new_key, plan.revoked = True, earlier[-1]
                plan.because(REVOKED, "certificate %s of this name was revoked" % earlier[-1])
        plan.decide()
        if not plan.new_key and plan.key_facts is not None and stat.S_IMODE(plan.key_stat.st_mode) != SECRET_MODE:
            plan.key_mode_wrong = True
            plan.changes.append("set mode 0600 on %s" % key_path)
        return plan

    def _read_key(self, plan, key_path):
        def load(data=None):
            return x509_inspect.load_private_key(key_path, None, passphrase_field=None, check_key=False, data=data)[0]

        facts, plan.key_stat = self.cache.key(key_path, lambda data: KeyFacts.of(load(data)))
        plan.key_facts = facts
        if facts is None:
            return
        plan._load_key = load  # pylint: disable=protected-access
        if facts.rsa_size != plan.spec.key_size:
            plan.new_key = True
            plan.because(KEY_SIZE, "key is %s, wanted RSA %d" % (facts.kind, plan.spec.key_size))

    def _read_certificate(self, plan, cert_path):
        def load(data=None):
            return x509_inspect.load_certificate(cert_path, data=data)

        plan.cert_facts = facts = self.cache.certificate(cert_path, lambda data: CertFacts.of(load(data), self.ca_cert))
        if facts is None:
            return
        plan._load_cert = load  # pylint: disable=protected-access
        plan.spec = spec = plan.spec.keeping_sans_of(facts)
        plan.cert_is_ours = facts.issued_by_ca
        row = self.rows.get(facts.serial)
        if not plan.cert_is_ours:
            plan.because(OTHER_CA, "signed by another CA (issuer %s; ca.crt does not verify it)" % facts.issuer)
            plan.warnings.append(
                "%s was signed by another CA (issuer %s; ca.crt does not verify it): it is reissued by this CA "
                "and the old file kept as a backup." % (cert_path, facts.issuer)
            )
        elif row is not None and row.status == "R":
            plan.new_key, plan.revoked = True, row.serial
            plan.because(REVOKED, "certificate %s is revoked in index.txt" % row.serial)
        elif row is None:
            plan.register = True
        if plan.key_facts is not None and not facts.belongs_to(plan.key_facts):
            plan.because(KEY_MISMATCH, "certificate does not belong to private/%s.key" % spec.name)
        for difference in facts.differences(spec):
            plan.because(DIFFERS, difference)
        if facts.expires_within(self.renew_before_days):
            plan.because(EXPIRING, "expires %s, within renew_before_days=%d" % (facts.not_after.isoformat(), self.renew_before_days))
        elif self.renew:
            plan.because(RENEW_ASKED, "renew: true")
        elif plan.cert_is_ours and facts.names_other_ca_serial(self.ca_serial):
            plan.because(EARLIER_CA, "its authorityKeyIdentifier names the CA certificate the CA's renewal replaced (serial %s): "
                         "it would stop working when that certificate expires" % facts.aki_serial)


def plan_without_ca(spec, ca_cert_path):
    """Check mode of a whole play: the CA an earlier task would have made is not there yet."""
    plan = NamePlan(spec)
    plan.because(NO_CA_YET, pending_reason(ca_cert_path))
    plan.decide()
    return plan
