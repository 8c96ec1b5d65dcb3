"""The collection as users get it: the tarball `ansible-galaxy collection build`
makes (nothing of the tests or the build tooling in it), installed into a fresh
collections path and run from there against the local ACM endpoint; and the
execution environment an AWX user builds from it (`ansible-builder create` and
`introspect`: building the image itself needs a container engine)."""

import glob
import json
import os
import re
import shutil
import subprocess
import tarfile

import pytest
import yaml

from conftest import collections_path, recap

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CLUTTER = ("tests/", "benchmarks/", "extensions/", "Makefile", ".ci/", "requirements-dev.txt", "requirements-demo.txt", "demo/", ".venv/", ".build/",
           "changelogs/fragments/", ".git/", "__pycache__", ".pyc", ".ansible-lint")


def run(command, **kwargs):
    proc = subprocess.run(command, capture_output=True, text=True, check=False, timeout=600, **kwargs)
    assert proc.returncode == 0, "%s failed:\n%s\n%s" % (" ".join(command), proc.stdout[-3000:], proc.stderr[-3000:])
    return proc


@pytest.fixture(scope="module")
def tarball(tmp_path_factory):
    out = tmp_path_factory.mktemp("dist")
    source = os.path.join(collections_path(), "ansible_collections", "clientvpn", "pki")
    run(["ansible-galaxy", "collection", "build", source, "--output-path", str(out)])
    (path,) = glob.glob(str(out / "clientvpn-pki-*.tar.gz"))
    return path


def test_the_tarball_holds_the_collection_and_no_clutter(tarball):
    with tarfile.open(tarball) as archive:
        names = archive.getnames()
    for wanted in ("MANIFEST.json", "FILES.json", "README.md", "meta/runtime.yml", "meta/execution-environment.yml",
                   "requirements.txt", "bindep.txt", "plugins/modules/vpn_cert.py", "plugins/module_utils/cert_issuer.py",
                   "roles/pki/meta/argument_specs.yml", "playbooks/mutual_auth.yml", "docs/modules/vpn_cert.md",
                   "CHANGELOG.md", "changelogs/changelog.yaml"):
        assert wanted in names, wanted
    clutter = [name for name in names if any(part in name + ("/" if not name.endswith("/") else "") for part in CLUTTER)]
    assert clutter == []


def test_mutual_auth_runs_from_the_installed_tarball(tarball, tmp_path, local_acm):
    installed = tmp_path / "collections"
    run(["ansible-galaxy", "collection", "install", "--offline", "--force", "-p", str(installed), tarball])
    root = installed / "ansible_collections" / "clientvpn" / "pki"
    assert (root / "playbooks" / "mutual_auth.yml").is_file() and not (root / "tests").exists()

    # Only the installed copy is visible: no source tree on the path, run from elsewhere.
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(installed), ANSIBLE_COLLECTIONS_SCAN_SYS_PATH="false",
               ANSIBLE_NOCOLOR="1", ANSIBLE_LOCALHOST_WARNING="false")
    listed = run(["ansible-galaxy", "collection", "list", "clientvpn.pki", "--format", "json"], env=env).stdout
    assert list(json.loads(listed)) == [str(installed / "ansible_collections")]
    args = ["ansible-playbook", "clientvpn.pki.mutual_auth", "-e", "pki_dir=%s" % (tmp_path / "pki"),
            "-e", "stage_dir=%s" % (tmp_path / "custom_folder"), "-e", "acm_region=eu-west-1",
            "-e", "acm_endpoint_url=%s" % local_acm.url]
    first = run(args, env=env, cwd=str(tmp_path))
    assert recap(first.stdout)["changed"] > 0
    arns = json.loads((tmp_path / "custom_folder" / "acm-arns.json").read_text())
    assert arns["server"]["certificate_arn"].startswith("arn:aws:acm:eu-west-1:")
    assert recap(run(args, env=env, cwd=str(tmp_path)).stdout)["changed"] == 0


def galaxy_metadata():
    with open(os.path.join(REPO, "galaxy.yml"), encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def test_the_tarball_is_named_from_galaxy_yml_as_the_readme_says(tarball):
    metadata = galaxy_metadata()
    name = "%s-%s-%s.tar.gz" % (metadata["namespace"], metadata["name"], metadata["version"])
    assert os.path.basename(tarball) == name
    with open(os.path.join(REPO, "README.md"), encoding="utf-8") as handle:
        assert "collection install -p ./collections %s" % name in handle.read()


def ee_prepare_step(containerfile_text):
    """The galaxy stage's RUN that picks the one clientvpn-pki-<version>.tar.gz (prepend_galaxy)."""
    (step,) = [line for line in containerfile_text.splitlines() if line.startswith("RUN cd /build/collections ")]
    return step[len("RUN "):]


def test_execution_environment_build_context(tarball, tmp_path):
    # What ansible-builder reads from the installed collection: its Python and system requirements.
    installed = tmp_path / "collections"
    run(["ansible-galaxy", "collection", "install", "--offline", "--force", "-p", str(installed), tarball])
    introspected = run(["ansible-builder", "introspect", "--sanitize", str(installed)]).stdout
    for requirement in ("cryptography", "boto3", "botocore", "openssl"):
        assert requirement in introspected, introspected
    assert "easy-rsa" not in introspected

    # docs/awx/execution-environment.yml with the tarball next to it, as docs/awx.md says.
    work = tmp_path / "ee"
    work.mkdir()
    shutil.copy(os.path.join(REPO, "docs", "awx", "execution-environment.yml"), str(work))
    shutil.copy(tarball, str(work))
    context = tmp_path / "context"
    run(["ansible-builder", "create", "-f", "execution-environment.yml", "--context", str(context)], cwd=str(work))
    # Named Containerfile, or Dockerfile when no podman is installed (as here).
    (containerfile,) = [context / name for name in ("Containerfile", "Dockerfile") if (context / name).is_file()]
    text = containerfile.read_text()
    assert "ansible-galaxy collection install" in text and "introspect" in text and "install-from-bindep" in text
    assert (context / "_build" / "collections" / os.path.basename(tarball)).is_file()

    # The base image is pinned: an exact tag or a digest, never latest.
    (base,) = re.findall(r'^ARG EE_BASE_IMAGE="([^"]+)"$', text, re.MULTILINE)
    assert re.search(r"(:[\w][\w.-]*|@sha256:[0-9a-f]{64})$", base.rsplit("/", 1)[-1]), base
    assert not base.endswith(":latest"), base

    # The definition names no version: the galaxy stage's step picks the tarball built from galaxy.yml, and
    # requirements.yml installs it. Both run here as the image build would run them (in /build), with the
    # ansible-galaxy of this venv: the collection installed is galaxy.yml's version.
    with open(os.path.join(REPO, "docs", "awx", "execution-environment.yml"), encoding="utf-8") as handle:
        assert galaxy_metadata()["version"] not in handle.read()
    build = context / "_build"
    step = ee_prepare_step(text).replace("/build/collections", str(build / "collections"))
    run(["sh", "-c", step])
    images = tmp_path / "image-collections"
    run(["ansible-galaxy", "collection", "install", "--offline", "--force", "-r", "requirements.yml", "--collections-path", str(images)],
        cwd=str(build))
    with open(images / "ansible_collections" / "clientvpn" / "pki" / "MANIFEST.json", encoding="utf-8") as handle:
        assert json.load(handle)["collection_info"]["version"] == galaxy_metadata()["version"]

    # An earlier version's tarball left next to it: the build stops and says why, rather than pick one.
    older = build / "collections" / "clientvpn-pki-0.0.1.tar.gz"
    shutil.copy(tarball, str(older))
    proc = subprocess.run(["sh", "-c", step], capture_output=True, text=True, check=False)
    assert proc.returncode != 0 and "exactly one clientvpn-pki-<version>.tar.gz" in proc.stderr, proc.stderr
