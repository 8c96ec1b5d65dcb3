# -*- coding: utf-8 -*-
# Copyright: clientvpn.pki contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Check mode of a whole play, from an empty folder: the one rule every module follows.

In ``--check`` nothing is written, so a task finds missing what an earlier task
of the same run would have made (the CA, a certificate, a staged file). Such
an input is not an error in check mode: the task reports what it would do
once the input exists, with ``PENDING_REASON``. In a real run a missing input
stays an error.
"""

from __future__ import annotations

import os

PENDING_REASON = "%s does not exist yet: an earlier task of this check run would have made it"


def made_by_an_earlier_task(path, check_mode):
    """True when ``path`` is missing in check mode (so assumed made by an earlier task)."""
    return check_mode and not os.path.exists(path)


def pending_reason(path):
    return PENDING_REASON % path
