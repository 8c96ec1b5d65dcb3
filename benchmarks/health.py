# Copyright: clientvpn.pki contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""How long the health report takes on a large PKI: vpn_pki_info (the module, as Ansible runs
it) and the health_report_html filter, medians of --repeat runs.

The PKI is built directly with the collection's module_utils: a CA, --clients client
certificates (one shared 1024-bit key: the reader never opens keys, so their number changes
nothing), --revoked of them revoked, and the CRL. Run from the repository root:

    .venv/bin/python benchmarks/health.py --clients 20000

The collection is imported from .build/collections (make collection).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".build", "collections")


def build(pki_dir, clients, revoked):
    from ansible_collections.clientvpn.pki.plugins.module_utils.ca_manager import CertificateAuthority, open_ca
    from ansible_collections.clientvpn.pki.plugins.module_utils.cert_plan import build_specs
    from ansible_collections.clientvpn.pki.plugins.module_utils.crl_manager import CrlPublisher
    from ansible_collections.clientvpn.pki.plugins.module_utils.easyrsa_index import entry_for, random_serial
    from ansible_collections.clientvpn.pki.plugins.module_utils.pki_store import PkiStore
    from ansible_collections.clientvpn.pki.plugins.module_utils.x509_profiles import generate_key, key_to_pem, sign_leaf, to_pem

    store = PkiStore(pki_dir)
    CertificateAuthority(store, "Benchmark CA", 1024, 3650, "sha256").run(False)
    ca_cert, ca_key = open_ca(store, None)
    key = generate_key(1024)
    key_pem, entries, taken = key_to_pem(key), [], set()
    for spec in build_specs(["user%05d" % number for number in range(clients)], "client", None, None, 1024, 825, "sha256"):
        cert = sign_leaf(ca_cert, ca_key, key.public_key(), spec, random_serial(taken))
        entry = entry_for(cert)
        for path, data in ((store.cert(spec.name), to_pem(cert)), (store.key(spec.name), key_pem), (store.by_serial(entry.serial), to_pem(cert))):
            store.write(path, data)
        entries.append(entry)
        taken.add(entry.serial)
    for entry in entries[:revoked]:
        entry.status, entry.revoked = "R", "261126000000Z"
    store.write_index(entries)
    CrlPublisher(store).run(False)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--clients", type=int, default=20000)
    parser.add_argument("--revoked", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    sys.path.insert(0, ROOT)
    from ansible_collections.clientvpn.pki.plugins.filter.health_report import FilterModule

    work = tempfile.mkdtemp(prefix="clientvpn-health-bench-")
    try:
        pki_dir = os.path.join(work, "pki")
        started = time.monotonic()
        build(pki_dir, args.clients, args.revoked)
        print("built a PKI of %d clients in %.1f s" % (args.clients, time.monotonic() - started))
        module, report = [], None
        for dummy in range(args.repeat):
            started = time.monotonic()
            proc = subprocess.run([sys.executable, "-m", "ansible_collections.clientvpn.pki.plugins.modules.vpn_pki_info"],
                                  input=json.dumps({"ANSIBLE_MODULE_ARGS": {"pki_dir": pki_dir}}), capture_output=True, text=True,
                                  env=dict(os.environ, PYTHONPATH=ROOT), check=True)
            module.append(time.monotonic() - started)
            report = json.loads(proc.stdout)
        render = FilterModule().filters()["health_report_html"]
        rendering, page = [], ""
        for dummy in range(args.repeat):
            started = time.monotonic()
            page = render(report)
            rendering.append(time.monotonic() - started)
        print("vpn_pki_info: median %.2f s of %d (%s); %d rows, result %.1f MB" % (
            statistics.median(module), len(module), ", ".join("%.2f" % value for value in module), len(report["certificates"]),
            len(proc.stdout) / 1e6))
        print("health_report_html: median %.2f s of %d; page %.1f MB" % (statistics.median(rendering), len(rendering), len(page) / 1e6))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
