# -*- coding: utf-8 -*-
# Copyright: clientvpn.pki contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The collection uses nothing of ansible-core that ansible-core's own plugins do not use.

Controller code (plugins/action, plugins/plugin_utils, plugins/filter) may use what the
bundled action and filter plugins (``ansible/plugins/{action,filter}/*.py``, not ActionBase
itself) use;
module code (plugins/modules, plugins/module_utils) what the bundled modules
(``ansible/modules/*.py``) use. "Use" is every ``ansible.*`` name imported and every
``_``-prefixed attribute read, except the collection's own. The allow-lists are read
from the ansible-core this runs under, so they move with each version of the matrix
(tests/matrix runs this file directly: ``python test_public_interfaces.py COLLECTION``).
"""

from __future__ import annotations

import ast
import glob
import os
import sys

import ansible

ANSIBLE_DIR = os.path.dirname(ansible.__file__)
BUNDLED_ACTIONS = [path for path in glob.glob(os.path.join(ANSIBLE_DIR, "plugins", "action", "*.py")) if not path.endswith("__init__.py")]
BUNDLED_FILTERS = [path for path in glob.glob(os.path.join(ANSIBLE_DIR, "plugins", "filter", "*.py")) if not path.endswith("__init__.py")]
BUNDLED_MODULES = glob.glob(os.path.join(ANSIBLE_DIR, "modules", "*.py"))
CONTROLLER_DIRS = ("action", "plugin_utils", "filter")
MODULE_DIRS = ("modules", "module_utils")


def _trees(paths):
    for path in paths:
        with open(path, encoding="utf-8") as handle:
            yield path, ast.parse(handle.read(), path)


def uses(paths):
    """{used name: first file using it}: ``ansible.*`` names imported, ``_`` attributes read."""
    found = {}
    for path, tree in _trees(paths):
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module and (node.module + ".").startswith("ansible."):
                names = ["%s.%s" % (node.module, alias.name) for alias in node.names]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names if (alias.name + ".").startswith("ansible.")]
            elif isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
                names = ["." + node.attr]
            for name in names:
                found.setdefault(name, path)
    return found


def defined_here(paths):
    """The ``_`` names the collection defines itself (functions, classes, names and ``self``
    attributes it assigns; not an attribute it sets on someone else's object)."""
    names = set()
    for dummy, tree in _trees(paths):
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add("." + node.name)
            elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store) and isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"):
                names.add("." + node.attr)
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                names.add("." + node.id)
    return names


def collection_files(collection, dirs):
    return sorted(path for folder in dirs for path in glob.glob(os.path.join(collection, "plugins", folder, "**", "*.py"), recursive=True))


def unsupported_uses(collection):
    """[(name, file)] that no bundled plugin of the same side uses."""
    own = defined_here(collection_files(collection, CONTROLLER_DIRS + MODULE_DIRS))
    problems = []
    for dirs, bundled in ((CONTROLLER_DIRS, BUNDLED_ACTIONS + BUNDLED_FILTERS), (MODULE_DIRS, BUNDLED_MODULES)):
        allowed = set(uses(bundled))
        for name, path in sorted(uses(collection_files(collection, dirs)).items()):
            if name not in allowed and name not in own:
                problems.append((name, os.path.relpath(path, collection)))
    return problems


def _collection_root():
    return os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))


def test_the_allow_lists_are_read_from_ansible_core():
    # A broken path would make every check vacuous: the lists must hold what ansible-core's plugins really use.
    assert len(BUNDLED_ACTIONS) > 20 and len(BUNDLED_MODULES) > 50
    assert "ansible.plugins.action.ActionBase" in uses(BUNDLED_ACTIONS)
    assert "ansible.module_utils.basic.AnsibleModule" in uses(BUNDLED_MODULES)
    assert ".ANSIBLE_ARGS" not in uses(BUNDLED_MODULES) and "._ANSIBLE_ARGS" not in uses(BUNDLED_MODULES)


def test_the_check_finds_a_private_interface(tmp_path):
    # What the forked action of 0.2.0's development used: each is refused.
    action = tmp_path / "plugins" / "action"
    action.mkdir(parents=True)
    (action / "forked.py").write_text(
        "from ansible.vars.clean import remove_internal_keys\n"
        "from ansible.module_utils import basic\n"
        "basic._ANSIBLE_ARGS = b''\n"
        "def run(self, response):\n"
        "    return self._parse_returned_data(response)\n"
    )
    names = [name for name, dummy in unsupported_uses(str(tmp_path))]
    assert names == ["._ANSIBLE_ARGS", "._parse_returned_data", "ansible.module_utils.basic", "ansible.vars.clean.remove_internal_keys"], names


def test_plugins_use_only_what_ansible_cores_own_plugins_use():
    problems = unsupported_uses(_collection_root())
    assert not problems, "\n".join("%s uses %s, which no plugin bundled with ansible-core %s uses" % (path, name, _version()) for name, path in problems)


def _version():
    from ansible.release import __version__  # pylint: disable=import-outside-toplevel

    return __version__


if __name__ == "__main__":
    found = unsupported_uses(os.path.abspath(sys.argv[1]) if len(sys.argv) > 1 else _collection_root())
    for used, where in found:
        print("%s uses %s, which no plugin bundled with ansible-core %s uses" % (where, used, _version()))
    print("public interfaces: %s against ansible-core %s" % ("FAILED" if found else "ok", _version()))
    sys.exit(1 if found else 0)
