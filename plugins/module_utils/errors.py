# -*- coding: utf-8 -*-
# Copyright: clientvpn.pki contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one exception type the clientvpn.pki backends raise.

Its message is written for the person running the playbook: it names the
option or file at fault and says how to fix it. Modules turn it into
``fail_json(msg=...)``.
"""

from __future__ import annotations


class PkiError(Exception):
    """A problem the user can fix; nothing on disk has been changed."""
