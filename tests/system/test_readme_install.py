"""The README's Install section, followed as written by a new user.

Every ```sh block of the section runs, in order, in one bash script, in a
scratch HOME outside the repository, with a plain virtual environment (no
.venv, no ANSIBLE_COLLECTIONS_PATH). The only substitution: the public Git URL
becomes a local clone of this repository (git+file://, no network needed).
The local ACM endpoint is moto's server (the local_acm fixture), given as
ACM_ENDPOINT as the section says. The playbook must change things on its
first run and nothing on its second.
"""

import os
import re
import subprocess
import sys

from conftest import recap

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PUBLIC_URL = "git+https://github.com/clientvpn/pki.git"


def install_blocks():
    with open(os.path.join(REPO, "README.md"), encoding="utf-8") as handle:
        text = handle.read()
    section = re.search(r"^## Install\n(.*?)(?=^## )", text, re.S | re.M)
    assert section, "README.md has no '## Install' section"
    blocks = re.findall(r"^```sh\n(.*?)^```", section.group(1), re.S | re.M)
    assert len(blocks) >= 4, "the Install section lost its commands: %d sh blocks" % len(blocks)
    return blocks


def test_install_section_works_as_written(tmp_path, local_acm):
    script = "\n".join(install_blocks())
    assert PUBLIC_URL in script, "the Install section no longer installs from the Git URL"
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", REPO, str(clone)], check=True)
    script = script.replace(PUBLIC_URL, "git+file://%s" % clone)

    home = tmp_path / "home"
    home.mkdir()
    # A new user's shell: the machine's python3 first, none of this repository's tooling.
    base_python = os.path.dirname(os.path.realpath(getattr(sys, "_base_executable", sys.executable)))
    path = ":".join([base_python] + [entry for entry in os.environ["PATH"].split(":") if ".venv" not in entry])
    env = dict(
        (key, value) for key, value in os.environ.items()
        if not key.startswith(("ANSIBLE_", "VIRTUAL_ENV", "PYTHON"))
    )
    env.update(HOME=str(home), PATH=path, ACM_ENDPOINT=local_acm.url, ANSIBLE_NOCOLOR="1", ANSIBLE_LOCALHOST_WARNING="false")
    proc = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=str(home), env=env,
                          capture_output=True, text=True, timeout=900, check=False)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-6000:]

    recaps = [line for line in proc.stdout.splitlines() if line.startswith("localhost") and "ok=" in line]
    assert len(recaps) == 2, output[-4000:]
    first, second = (recap(line + "\n") for line in recaps)
    assert first["changed"] > 0 and first["failed"] == 0
    assert second["changed"] == 0 and second["failed"] == 0, proc.stdout[-4000:]

    project = home / "my-vpn"
    installed = project / "collections" / "ansible_collections" / "clientvpn" / "pki"
    assert (installed / "MANIFEST.json").is_file(), "the collection was not installed where the README says"
    assert (project / "pki" / "issued" / "alice.example.com.crt").is_file()
    assert (project / "custom_folder" / "server.key").stat().st_mode & 0o777 == 0o600
    assert local_acm.requests().count("ImportCertificate") == 1
