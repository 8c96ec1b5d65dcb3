"""Every EXAMPLES block of plugins/modules/*.py runs in a test, so the module
documentation cannot rot.

One ansible-playbook run per module: the example's tasks as written, in one
play on localhost, against a scratch PKI prepared as the example takes for
granted (PREPARE: the CAs and certificates its tasks name) and, when the
example calls AWS, moto's ACM server on 127.0.0.1 (the ``local_acm`` fixture;
its URL given as endpoint_url by play-level module_defaults, so no task is
edited). The only changes made to an example's text are SUBSTITUTIONS
(paths, one ARN) and the variables of EXTRA_VARS (given with -e); the
``vpn-admin`` profile of the vpn_acm_import example exists in a scratch AWS
config with fake keys.

Tasks that cannot run for real (EC2_TASKS, also reported as a warning in the
test output): the EC2 Client VPN API has no local server. moto 5 implements
none of ExportClientVpnClientConfiguration,
ExportClientVpnClientCertificateRevocationList,
ImportClientVpnClientCertificateRevocationList or DescribeClientVpnEndpoints
(its server answers HTTP 500, NotImplementedError). These tasks:

    vpn_client_profiles  "Profiles from the endpoint's configuration"
    vpn_endpoint_crl     "Publish the CRL"

still run as written, against the same local endpoint, inside a block whose
rescue accepts only the server's 500 answer. The test asserts each was
rescued, that moto received the EC2 operation with the example's endpoint ID
and logged it as not implemented: so the module accepted the arguments and
did its local work (reading the CRL, the PKI) before the call. Not proven
here: what the modules do with a real EC2 answer (CRL comparison and import,
the exported configuration turned into profiles).

Wall time: 81-99 s measured with the 2 cores shared at load average 3.4-4.3;
45 s of user CPU (seven ansible-playbook runs, about 25 module tasks, three
moto servers) plus about 5 s of botocore's standard-mode retries of each 500
answer, so roughly 55 s on an idle machine.
"""

import ast
import base64
import glob
import json
import os
import shutil
import subprocess
import sys
import urllib.parse
import warnings

import pytest
import yaml

from conftest import ENDPOINT_CONFIG, collections_path, ok, playbook, recap, require

MODULES_DIR = os.path.join(os.path.dirname(__file__), "..", "..", "plugins", "modules")
MODULES = sorted(os.path.basename(path)[:-3] for path in glob.glob(os.path.join(MODULES_DIR, "vpn_*.py")))
with open(os.path.join(os.path.dirname(__file__), "..", "..", "meta", "runtime.yml")) as _runtime:
    AWS_MODULES = set("clientvpn.pki." + name for name in yaml.safe_load(_runtime)["action_groups"]["aws"])

# example text -> what the test puts there ({scratch} is the test's tmp_path)
SUBSTITUTIONS = {
    "/srv/": "{scratch}/srv/",
    "/home/admin/": "{scratch}/home/admin/",
    "~/": "{scratch}/home/admin/",
    # An ARN of the reader's account; here, the one the example's first task got from the local ACM.
    "arn:aws:acm:eu-west-1:123456789012:certificate/12345678-1234-1234-1234-123456789012": "'{{{{ server_acm.certificate_arn }}}}'",
}
EXTRA_VARS = {"vault_clientvpn_ca_passphrase": "example CA passphrase"}
# module -> {example task name: the EC2 operation it fails at, for want of a local EC2 Client VPN API}
EC2_TASKS = {
    "vpn_client_profiles": {"Profiles from the endpoint's configuration": "ExportClientVpnClientConfiguration"},
    "vpn_endpoint_crl": {"Publish the CRL": "ExportClientVpnClientCertificateRevocationList"},
}
EXAMPLE_ENDPOINT_ID = "cvpn-endpoint-0123456789abcdef0"
CLIENTS = ["client1.domain.tld", "alice.example.com", "bob.example.com"]


def _examples(module):
    """The module's EXAMPLES string, read from the collection Ansible runs (ast: nothing imported)."""
    path = os.path.join(collections_path(), "ansible_collections", "clientvpn", "pki", "plugins", "modules", module + ".py")
    with open(path) as handle:
        tree = ast.parse(handle.read())
    for node in tree.body:
        if isinstance(node, ast.Assign) and [getattr(target, "id", None) for target in node.targets] == ["EXAMPLES"]:
            return ast.literal_eval(node.value)
    raise AssertionError("%s has no EXAMPLES" % path)


def _pki(scratch, clients=(), server=False, crl=False):
    """The PKI at the examples' /srv/clientvpn/pki: a CA (no passphrase), the certificates named."""
    pki = os.path.join(scratch, "srv", "clientvpn", "pki")
    ok("vpn_ca", {"pki_dir": pki})
    if server:
        ok("vpn_cert", {"pki_dir": pki, "name": ["server"], "type": "server"})
    if clients:
        ok("vpn_cert", {"pki_dir": pki, "name": list(clients), "type": "client"})
    if crl:
        ok("vpn_crl", {"pki_dir": pki})
    return pki


def _pki_and_encrypted_ca(scratch):
    """/srv/clientvpn/pki, and the example's second PKI, whose CA key is encrypted with the example's passphrase."""
    _pki(scratch)
    ok("vpn_ca", {"pki_dir": os.path.join(scratch, "srv", "example-corp", "pki"), "common_name": "Example Corp Client VPN CA",
                  "passphrase": EXTRA_VARS["vault_clientvpn_ca_passphrase"]})


def _easyrsa_pki(scratch):
    """What the vpn_ca example adopts: easyrsa init-pki && easyrsa build-ca nopass, run in the AWS guide's easyrsa3 folder."""
    workdir = os.path.join(scratch, "home", "admin", "easy-rsa", "easyrsa3")
    os.makedirs(workdir)
    env = dict(os.environ, EASYRSA_BATCH="1", EASYRSA_PKI=os.path.join(workdir, "pki"), EASYRSA_REQ_CN="Easy-RSA CA")
    for args in (["init-pki"], ["build-ca", "nopass"]):
        proc = subprocess.run([require("easyrsa")] + args, cwd=workdir, env=env, capture_output=True, text=True, check=False)
        assert proc.returncode == 0, proc.stdout + proc.stderr


def _pki_and_own_files(scratch):
    """/srv/clientvpn/pki with the server and the clients, and the example's own files in /srv/vpn-certs (a copy of the server's)."""
    pki = _pki(scratch, clients=CLIENTS, server=True)
    own = os.path.join(scratch, "srv", "vpn-certs")
    os.makedirs(own)
    for source, target in (("issued/server.crt", "vpn.example.com.crt"), ("private/server.key", "vpn.example.com.key"), ("ca.crt", "chain.pem")):
        shutil.copyfile(os.path.join(pki, source), os.path.join(own, target))


def _profiles_config(scratch):
    pki = _pki(scratch, clients=CLIENTS[:2])
    with open(os.path.join(pki, "ca.crt")) as handle:
        ca_pem = handle.read()
    with open(os.path.join(scratch, "srv", "clientvpn", "downloaded-client-config.ovpn"), "w") as handle:
        handle.write(ENDPOINT_CONFIG % ca_pem)


# module -> what its example takes for granted, made in the scratch folder
PREPARE = {
    "vpn_acm_import": _pki_and_own_files,
    "vpn_ca": _easyrsa_pki,
    "vpn_cert": _pki_and_encrypted_ca,
    "vpn_client_profiles": _profiles_config,
    "vpn_crl": lambda scratch: _pki(scratch, clients=CLIENTS),
    "vpn_endpoint_crl": lambda scratch: _pki(scratch, crl=True),
    "vpn_pki_info": lambda scratch: _pki(scratch, clients=CLIENTS[:1], server=True, crl=True),
    "vpn_stage": lambda scratch: _pki(scratch, clients=CLIENTS[:1], server=True),
    "vpn_pki_s3": lambda scratch: None,  # an empty working copy: the example pulls an empty prefix and builds the PKI there
}


def _s3_bucket_and_kms_key(endpoint_url):
    """The vpn_pki_s3 example's bucket and KMS key alias, in the local server's eu-west-1."""
    import boto3  # pylint: disable=import-outside-toplevel

    s3 = boto3.client("s3", region_name="eu-west-1", endpoint_url=endpoint_url)
    s3.create_bucket(Bucket="example-clientvpn-pki", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    kms = boto3.client("kms", region_name="eu-west-1", endpoint_url=endpoint_url)
    kms.create_alias(AliasName="alias/clientvpn-pki", TargetKeyId=kms.create_key()["KeyMetadata"]["KeyId"])

    def check():
        """What the example left in S3: the PKI, the CA key only encrypted."""
        keys = set(item["Key"] for item in s3.list_objects_v2(Bucket="example-clientvpn-pki", Prefix="clientvpn/pki/").get("Contents", []))
        assert {"clientvpn/pki/index.txt", "clientvpn/pki/private/ca.key.kms"} <= keys and "clientvpn/pki/private/ca.key" not in keys, keys

    return check


# module -> what its example takes for granted in the local AWS server; returns a check of what the example did there
AWS_PREPARE = {"vpn_pki_s3": _s3_bucket_and_kms_key}


def _aws_profile(scratch):
    """A scratch AWS config holding the example's profile vpn-admin, with fake keys."""
    config = os.path.join(scratch, "aws-config")
    with open(config, "w") as handle:
        handle.write("[profile vpn-admin]\naws_access_key_id = test\naws_secret_access_key = test\n")
    return {"AWS_CONFIG_FILE": config, "AWS_SHARED_CREDENTIALS_FILE": os.path.join(scratch, "no-aws-credentials")}


def _snake(operation):
    return "".join("_" + c.lower() if c.isupper() else c for c in operation).lstrip("_")


def _ec2_block(task, operation):
    """The task as written, and a rescue that accepts only the server's answer to its EC2 call."""
    return {
        "name": "No local EC2 Client VPN API: " + task["name"],
        "block": [task],
        "rescue": [{
            "name": "The failure is moto's answer to %s (not implemented), not the arguments or the PKI" % operation,
            # An argument or PKI error fails before any request; this one is the server's HTTP 500.
            "ansible.builtin.assert": {"that": ["ansible_failed_result.msg is search('500 Internal Server Error')"]},
        }],
    }


def _play(module, scratch, endpoint_url):
    text = _examples(module)
    for example, replacement in SUBSTITUTIONS.items():
        text = text.replace(example, replacement.format(scratch=scratch))
    tasks = yaml.safe_load(text)
    ec2 = EC2_TASKS.get(module, {})
    assert set(ec2) <= set(task["name"] for task in tasks), "EC2_TASKS names a task the %s example no longer has" % module
    tasks = [_ec2_block(task, ec2[task["name"]]) if task["name"] in ec2 else task for task in tasks]
    return [{
        "name": "EXAMPLES of " + module,
        "hosts": "localhost",
        "gather_facts": False,
        "connection": "local",
        "vars": {"ansible_python_interpreter": sys.executable},
        "module_defaults": dict((name, {"endpoint_url": endpoint_url}) for name in sorted(AWS_MODULES)),
        "tasks": tasks,
    }]


def _task_names(tasks):
    for task in tasks:
        if "block" in task:
            yield from _task_names(task["block"])
        else:
            yield task["name"]


def _ec2_requests(endpoint):
    """(Action, ClientVpnEndpointId) of each EC2 request moto's server received (its recording: one JSON line per request)."""
    requests = []
    with open(endpoint.recording) as handle:
        for line in handle:
            record = json.loads(line)
            body = record.get("body") or ""
            if record.get("body_encoded"):
                body = base64.b64decode(body).decode("ascii", "replace")
            fields = urllib.parse.parse_qs(body)
            if "ClientVpnEndpointId" in fields:
                requests.append((fields["Action"][0], fields["ClientVpnEndpointId"][0]))
    return requests


def _uses_aws(tasks):
    """Whether a task (or a block's task) calls one of the collection's AWS modules."""
    return any(_uses_aws(task.get("block", [])) or AWS_MODULES & set(task) for task in tasks)


@pytest.mark.parametrize("module", MODULES)
def test_module_examples_run(module, tmp_path, request):
    scratch = str(tmp_path / "examples")
    os.makedirs(scratch)
    assert module in PREPARE, "add to PREPARE what the %s example needs before it runs" % module
    PREPARE[module](scratch)
    example_tasks = yaml.safe_load(_examples(module))
    names = list(_task_names(example_tasks))
    # moto's server only for the examples that call AWS (it takes seconds to start); the others get a port nothing listens on.
    endpoint = request.getfixturevalue("local_acm") if _uses_aws(example_tasks) else None
    check_aws = AWS_PREPARE[module](endpoint.url) if module in AWS_PREPARE else None
    play = _play(module, scratch, endpoint.url if endpoint else "http://127.0.0.1:9")
    path = tmp_path / ("examples-%s.yml" % module)
    path.write_text(yaml.safe_dump(play, sort_keys=False))

    proc = playbook([str(path), "-e", json.dumps(EXTRA_VARS)], extra_env=_aws_profile(scratch))
    counts = recap(proc.stdout)
    ec2 = EC2_TASKS.get(module, {})
    # Every task of the example ran (none skipped); the EC2 ones failed at their EC2 call, and only there.
    for name in names:
        assert "TASK [%s]" % name in proc.stdout, "task %r of the %s example did not run:\n%s" % (name, module, proc.stdout[-3000:])
    assert (counts["failed"], counts["skipped"], counts["rescued"]) == (0, 0, len(ec2)), proc.stdout[-3000:]
    assert counts["ok"] >= len(names) - len(ec2)
    if check_aws:
        check_aws()
    elif endpoint:
        assert endpoint.requests() or ec2, "the %s example called no ACM operation" % module
    if not ec2:
        return
    # The EC2 calls reached the server with the example's endpoint ID, and the server does not implement them.
    assert sorted(set(_ec2_requests(endpoint))) == sorted((operation, EXAMPLE_ENDPOINT_ID) for operation in ec2.values())
    with open(os.path.join(endpoint.state_dir, "acm-endpoint.log")) as handle:
        server_log = handle.read()
    for operation in ec2.values():
        assert "The %s action has not been implemented" % _snake(operation) in server_log
    warnings.warn("%s example: not run for real, for want of a local EC2 Client VPN API (arguments accepted, failed at the EC2 call): %s"
                  % (module, "; ".join("%r (%s)" % item for item in sorted(ec2.items()))))
