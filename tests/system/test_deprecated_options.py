"""Deprecated options keep working and say so: a user who passes one gets Ansible's
deprecation warning (with the version that removes it), a user who does not gets none."""

import json

from conftest import ok


def test_vpn_ca_state_present_still_works_and_is_deprecated(tmp_path):
    pki = str(tmp_path / "pki")
    result = ok("vpn_ca", {"pki_dir": pki, "key_size": 1024, "state": "present"})
    assert result["changed"]
    # ansible-core 2.19 nests the message and the collection in the entry: compare its text, not its shape.
    deprecations = [json.dumps(item) for item in result.get("deprecations", [])]
    assert any("Param 'state' is deprecated" in text and '"1.0.0"' in text and '"clientvpn.pki"' in text for text in deprecations), deprecations


def test_vpn_ca_without_state_warns_nothing(tmp_path):
    result = ok("vpn_ca", {"pki_dir": str(tmp_path / "pki"), "key_size": 1024})
    assert not result.get("deprecations"), result.get("deprecations")
