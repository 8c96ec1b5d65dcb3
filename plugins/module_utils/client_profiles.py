# -*- coding: utf-8 -*-
# Copyright: clientvpn.pki contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""One ``.ovpn`` profile per client: the endpoint's configuration with the
client's certificate and key inlined.

This is the step users still do by hand after
``aws ec2 export-client-vpn-client-configuration``: add ``<cert>`` and
``<key>`` to the file. Any ``cert`` / ``key`` / ``pkcs12`` line or block
already there is removed first, so the profile works on its own. During a CA
renewal's overlap, ``<ca>`` carries the renewed and the earlier CA certificate.
"""

from __future__ import annotations

import datetime
import os
import re

try:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
except ImportError:  # pragma: no cover - reported by the modules
    pass

from ansible_collections.clientvpn.pki.plugins.module_utils import x509_inspect
from ansible_collections.clientvpn.pki.plugins.module_utils.aws import aws_call
from ansible_collections.clientvpn.pki.plugins.module_utils.clientvpn_rules import profile_cas
from ansible_collections.clientvpn.pki.plugins.module_utils.errors import PkiError
from ansible_collections.clientvpn.pki.plugins.module_utils.names import unique_names
from ansible_collections.clientvpn.pki.plugins.module_utils.pending import made_by_an_earlier_task
from ansible_collections.clientvpn.pki.plugins.module_utils.pki_store import PkiStore
from ansible_collections.clientvpn.pki.plugins.module_utils.safe_folder import SECRET_MODE, SafeFolder

_BLOCK = re.compile(r"^[ \t]*<([a-z0-9-]+)>.*?^[ \t]*</\1>[ \t]*(?:\r?\n|\Z)", re.MULTILINE | re.DOTALL)
# The whole option only: `key-direction 1` is another option and stays.
_FILE_LINE = re.compile(r"^[ \t]*(?:cert|key|pkcs12)(?:[ \t][^\r\n]*)?(?:\r?\n|\Z)", re.MULTILINE)
_CLIENT_BLOCKS = ("cert", "key", "pkcs12")
_CA_BLOCK = re.compile(r"^[ \t]*<ca>.*?^[ \t]*</ca>[ \t]*(?:\r?\n|\Z)", re.MULTILINE | re.DOTALL)
_PEM = re.compile(rb"-----BEGIN ([A-Z ]+)-----.*?-----END \1-----\r?\n?", re.DOTALL)


def base_configuration(text):
    """The endpoint configuration without any client certificate or key.

    Inline blocks are kept whole (a <ca> line could start with "key"), except
    the client's own <cert>, <key> and <pkcs12>; option lines are removed
    only outside blocks.
    """
    kept, position = [], 0
    for block in _BLOCK.finditer(text):
        kept.append(_FILE_LINE.sub("", text[position:block.start()]))
        if block.group(1) not in _CLIENT_BLOCKS:
            kept.append(block.group(0))
        position = block.end()
    kept.append(_FILE_LINE.sub("", text[position:]))
    text = "".join(kept)
    return text if text.endswith("\n") else text + "\n"


def _pem_only(data, what, path):
    blocks = [match.group(0) for match in _PEM.finditer(data)]
    if not blocks:
        raise PkiError("%s %s holds no PEM block." % (what, path))
    return b"".join(block if block.endswith(b"\n") else block + b"\n" for block in blocks).decode("ascii")


def with_pki_cas(base, pki):
    """The configuration with its <ca> (the chain the endpoint was given) replaced, when it holds this
    PKI's CA, by the CA certificates a client needs through a CA renewal: the current one, and the
    one it replaced while that is valid (clientvpn_rules.profile_cas)."""
    match = _CA_BLOCK.search(base)
    if match is None or not os.path.exists(pki.ca_cert):
        return base
    try:
        listed = x509.load_pem_x509_certificates(match.group(0).encode("ascii", "replace"))
    except ValueError:
        return base
    current = x509_inspect.load_certificate(pki.ca_cert)
    key = x509_inspect.public_key_der(current.public_key())
    if not any(x509_inspect.public_key_der(cert.public_key()) == key for cert in listed):
        return base  # another CA's chain: the endpoint's own business
    cas = profile_cas(current, pki.previous_ca_certs(), datetime.datetime.now(datetime.timezone.utc))
    block = "<ca>\n%s</ca>\n" % "".join(cert.public_bytes(serialization.Encoding.PEM).decode("ascii") for cert in cas)
    return base[:match.start()] + block + base[match.end():]


def render(base, cert_pem, key_pem):
    return "%s<cert>\n%s</cert>\n<key>\n%s</key>\n" % (base, cert_pem, key_pem)


def load_configuration(params, check_mode, connect):
    """The client configuration: ``config_file``, or exported from ``client_vpn_endpoint_id``
    with the EC2 client ``connect()`` gives (aws.connector; not called for a file).

    None in check mode when ``config_file`` does not exist yet: an earlier task
    of the same check run (downloading it, say) would have written it.
    """
    path = params["config_file"]
    if path:
        if made_by_an_earlier_task(path, check_mode):
            return None
        try:
            with open(path) as handle:
                return handle.read()
        except (OSError, UnicodeDecodeError) as exc:
            raise PkiError("config_file %s cannot be read: %s" % (path, exc))
    exported = aws_call(
        "EC2 export_client_vpn_client_configuration",
        connect().export_client_vpn_client_configuration,
        ClientVpnEndpointId=params["client_vpn_endpoint_id"],
    )
    return exported.get("ClientConfiguration", "")


class ClientProfiles(object):
    def __init__(self, pki_dir, names, dest, configuration, names_file=None):
        self.pki = PkiStore(pki_dir)
        self.folder = SafeFolder(dest)
        self.names = unique_names(names, option="names", wanted="the clients whose profiles to write", names_file=names_file)
        self.base = None  # check mode, configuration still to come: every profile would be written
        if configuration is not None:
            if "remote " not in configuration and "\nremote\t" not in configuration:
                raise PkiError("the client configuration has no 'remote' line: give the endpoint's exported configuration.")
            self.base = base_configuration(configuration)

    def run(self, check_mode):
        if self.base is not None:
            self.base = with_pki_cas(self.base, self.pki)
        # Every profile is rendered before anything is written: a missing certificate
        # fails the run with dest untouched, not with half the profiles written.
        contents = dict((name, self._render(name, check_mode)) for name in self.names)
        folder, files = self.folder, {}
        changes = folder.prepare_root(check_mode)
        for name in self.names:
            if contents[name] is None:
                files[name] = "written"  # check mode: an earlier task of this run would have issued it
            else:
                files[name] = folder.put(folder.path(name + ".ovpn"), contents[name], SECRET_MODE, check_mode)
            if files[name] != "unchanged":
                changes.append("%s %s.ovpn" % (files[name], name))
        return {
            "changed": bool(changes),
            "changes": changes,
            "dest": folder.root,
            "profiles": dict((name, folder.path(name + ".ovpn")) for name in self.names),
            "files": files,
            "warnings": [],
            "diff": {"before": {}, "after": {}},
        }

    def _render(self, name, check_mode):
        cert_path, key_path = self.pki.cert(name), self.pki.key(name)
        # base is None only in check mode (the configuration is still to come)
        if self.base is None or made_by_an_earlier_task(cert_path, check_mode) or made_by_an_earlier_task(key_path, check_mode):
            return None
        if not (os.path.exists(cert_path) and os.path.exists(key_path)):
            raise PkiError("%s or %s is missing: issue %s first (clientvpn.pki.vpn_cert)." % (cert_path, key_path, name))
        return render(
            self.base,
            _pem_only(self.pki.read(cert_path), "certificate", cert_path),
            _pem_only(self.pki.read(key_path), "private key", key_path),
        ).encode("ascii")
