# -*- coding: utf-8 -*-
# Copyright: clientvpn.pki contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""docs/architecture.md stays true: its rules are checked on the code itself.

One module never imports another; module_utils never import modules; every
module_utils file is listed in the document; module files stay thin and
module_utils files and functions stay short.
"""

from __future__ import annotations

import ast
import glob
import os

import pytest

COLLECTION = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..", ".."))
MODULES = sorted(glob.glob(os.path.join(COLLECTION, "plugins", "modules", "*.py")))
MODULE_UTILS = sorted(path for path in glob.glob(os.path.join(COLLECTION, "plugins", "module_utils", "*.py")) if not path.endswith("__init__.py"))
ARCHITECTURE = os.path.join(COLLECTION, "docs", "architecture.md")
MAX_MODULE_UTILS_CODE_LINES = 300
MAX_FUNCTION_LINES = 50
# docs, argument spec and main(): what a thin module file is allowed beyond its documentation
MAX_MODULE_CODE_LINES = 80


def _tree(path):
    with open(path) as handle:
        return ast.parse(handle.read(), path)


def _imported(path):
    names = set()
    for node in ast.walk(_tree(path)):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update("%s.%s" % (node.module, alias.name) for alias in node.names)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def _code_lines(path):
    """Lines that are neither blank, comments nor part of a string-only statement (docstrings, DOCUMENTATION)."""
    tree = _tree(path)
    text_lines = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Expr, ast.Assign)) and isinstance(getattr(node, "value", None), ast.Constant) and isinstance(node.value.value, str):
            text_lines.update(range(node.lineno, node.end_lineno + 1))
    with open(path) as handle:
        lines = handle.read().splitlines()
    return sum(1 for number, line in enumerate(lines, start=1) if line.strip() and not line.strip().startswith("#") and number not in text_lines)


def test_the_document_exists_and_lists_every_module_utils_file():
    with open(ARCHITECTURE) as handle:
        text = handle.read()
    missing = [os.path.basename(path) for path in MODULE_UTILS if "`%s`" % os.path.basename(path) not in text]
    assert not missing, "docs/architecture.md does not describe %s" % missing


@pytest.mark.parametrize("path", MODULES, ids=os.path.basename)
def test_a_module_never_imports_another_module(path):
    others = [name for name in _imported(path) if ".plugins.modules" in name]
    assert not others, "%s imports %s" % (path, others)


@pytest.mark.parametrize("path", MODULE_UTILS, ids=os.path.basename)
def test_module_utils_never_import_modules(path):
    modules = [name for name in _imported(path) if ".plugins.modules" in name]
    assert not modules, "%s imports %s" % (path, modules)


@pytest.mark.parametrize("path", MODULE_UTILS, ids=os.path.basename)
def test_module_utils_files_stay_short(path):
    assert _code_lines(path) <= MAX_MODULE_UTILS_CODE_LINES, "%s has %d lines of code" % (path, _code_lines(path))


@pytest.mark.parametrize("path", MODULES, ids=os.path.basename)
def test_module_files_are_thin(path):
    assert _code_lines(path) <= MAX_MODULE_CODE_LINES, "%s has %d lines of code besides its documentation" % (path, _code_lines(path))


@pytest.mark.parametrize("path", MODULES + MODULE_UTILS, ids=os.path.basename)
def test_functions_stay_short(path):
    long_ones = [
        "%s (%d lines)" % (node.name, node.end_lineno - node.lineno + 1)
        for node in ast.walk(_tree(path))
        if isinstance(node, ast.FunctionDef) and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES
    ]
    assert not long_ones, "%s: %s" % (path, ", ".join(long_ones))
