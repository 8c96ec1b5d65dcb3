# Copyright: (c) clientvpn.pki developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Offline stand-in for the get-pip.py script that ansible-test downloads.

ansible-test bootstraps pip into each of its empty virtual environments by running
``~/.ansible/test/cache/get_pip_<pip version>.py`` and downloads that file from
its own download host when it is missing. That host is not reachable here, so
``make ansible-test-bootstrap`` copies this script to that path instead.

What it does, with the interpreter that runs it (the new virtual environment's):

1. ``python -m ensurepip --upgrade --default-pip`` in a *subprocess*: run in-process,
   ensurepip sets ``PIP_CONFIG_FILE=/dev/null``, which would hide the machine's pip
   configuration (the local package mirrors) from the install below. ansible-test also
   strips ``PIP_*`` variables, so the configuration files are all that is left.
2. ``python -m pip install`` with the arguments it was given (for example
   ``--disable-pip-version-check pip==24.2``), minus ``--no-setuptools`` / ``--no-wheel``,
   which only get-pip.py understands.
"""

from __future__ import annotations

import subprocess
import sys

GET_PIP_ONLY_OPTIONS = frozenset(('--no-setuptools', '--no-wheel'))


def main() -> int:
    """Install pip into the running interpreter, then the requested packages."""
    args = [arg for arg in sys.argv[1:] if arg not in GET_PIP_ONLY_OPTIONS]

    result = subprocess.run([sys.executable, '-m', 'ensurepip', '--upgrade', '--default-pip'], check=False)

    if result.returncode == 0 and any(not arg.startswith('-') for arg in args):
        result = subprocess.run([sys.executable, '-m', 'pip', 'install'] + args, check=False)

    return result.returncode


if __name__ == '__main__':
    sys.exit(main())
