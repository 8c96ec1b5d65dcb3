# -*- coding: utf-8 -*-
# Copyright: clientvpn.pki contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""run_here: what the action returns when it runs a module's backend itself, as AnsibleModule
would return it (refused options, failures, an unexpected exception, warnings, deprecations,
no_log). The real specs of the collection, plus small ones whose backends fail on purpose."""

from __future__ import annotations

import json

from ansible_collections.clientvpn.pki.plugins.module_utils.errors import PkiError
from ansible_collections.clientvpn.pki.plugins.module_utils.module_runner import ModuleSpec
from ansible_collections.clientvpn.pki.plugins.module_utils.specs import vpn_acm_import, vpn_ca, vpn_cert
from ansible_collections.clientvpn.pki.plugins.plugin_utils.backend_action import NO_LOG_OPTION, run_here


class Returns(object):
    def __init__(self, result=None, error=None):
        self.result, self.error = result, error

    def run(self, check_mode):
        if self.error:
            raise self.error
        return dict(self.result, check_mode=check_mode)


def spec_returning(result=None, error=None, **argument_spec):
    options = dict(secret=dict(type="str", no_log=True), name=dict(type="str"))
    options.update(argument_spec)
    return ModuleSpec("probe", options, lambda params, check_mode: Returns(result, error))


def test_an_unknown_option_is_refused_in_ansible_modules_words(tmp_path):
    result = run_here(vpn_cert.SPEC, {"pki_dir": str(tmp_path), "name": ["a"], "type": "client", "bogus": 1}, False, False)
    assert result["failed"] is True
    assert result["msg"].startswith("Unsupported parameters for (vpn_cert) module: bogus. Supported parameters include: ")
    assert not list(tmp_path.iterdir())


def test_the_rules_between_options_are_checked(tmp_path):
    result = run_here(vpn_cert.SPEC, {"pki_dir": str(tmp_path), "name": ["a"]}, False, False)
    assert result == {"failed": True, "msg": "state is present but all of the following are missing: type"}


def test_a_backend_failure_is_the_modules_message():
    result = run_here(spec_returning(error=PkiError("pki_dir: no such folder; create it")), {}, False, False)
    assert result["failed"] is True and result["msg"] == "pki_dir: no such folder; create it"


def test_an_unexpected_exception_gives_its_message_and_traceback():
    result = run_here(spec_returning(error=ValueError("Invalid rfc822name value")), {}, False, False)
    assert result["failed"] is True and result["msg"] == "Module failed: Invalid rfc822name value"
    assert "Traceback" in result["exception"] and "ValueError: Invalid rfc822name value" in result["exception"]


def test_check_mode_and_diff_reach_the_backend():
    spec = spec_returning(result={"changed": True, "diff": {"before": "", "after": "x"}})
    assert run_here(spec, {}, True, True)["check_mode"] is True
    assert run_here(spec, {}, True, True)["diff"] == {"before": "", "after": "x"}
    assert "diff" not in run_here(spec, {}, False, False)


def test_warnings_only_when_there_are_some():
    assert run_here(spec_returning(result={"warnings": ["mind the gap"]}), {}, False, False)["warnings"] == ["mind the gap"]
    assert "warnings" not in run_here(spec_returning(result={"warnings": []}), {}, False, False)


def test_a_deprecated_option_given_is_deprecated_as_ansible_module_says(tmp_path):
    args = {"pki_dir": str(tmp_path / "pki"), "key_size": 1024, "state": "present"}
    result = run_here(vpn_ca.SPEC, args, True, False)
    assert result["deprecations"] == [{"msg": "Param 'state' is deprecated. See the module docs for more information",
                                       "version": "1.0.0", "collection_name": "clientvpn.pki"}]
    assert "deprecations" not in run_here(vpn_ca.SPEC, {"pki_dir": str(tmp_path / "pki"), "key_size": 1024}, True, False)


def test_no_log_values_are_hidden_in_invocation_and_wherever_they_appear():
    spec = spec_returning(result={"changed": False, "msg": "used hunter2 for it", "nested": [{"note": "hunter2!"}]})
    result = run_here(spec, {"secret": "hunter2", "name": "alice"}, False, False)
    assert result["invocation"]["module_args"] == {"secret": NO_LOG_OPTION, "name": "alice"}
    assert "hunter2" not in json.dumps(result)
    assert result["msg"] == "used ******** for it"


def test_no_log_suboptions_are_hidden_too(tmp_path):
    args = {"certificates": [{"name": "server", "private_key_passphrase": "s3cret-pass"}], "region": "eu-west-1", "secret_key": "AKIASECRET"}
    shown = run_here(vpn_acm_import.SPEC, args, True, False)
    text = json.dumps(shown)
    assert "s3cret-pass" not in text and "AKIASECRET" not in text
    assert shown["invocation"]["module_args"]["certificates"][0]["private_key_passphrase"] == NO_LOG_OPTION
    assert shown["invocation"]["module_args"]["secret_key"] == NO_LOG_OPTION
