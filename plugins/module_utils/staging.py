# -*- coding: utf-8 -*-
# Copyright: clientvpn.pki contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The staging folder: step 6 of the seed procedure (mkdir custom_folder; cp ...).

All files are compared and copied in one run, so staging hundreds of client
certificates costs one task, not one module start per file.
"""

from __future__ import annotations

import os

from ansible_collections.clientvpn.pki.plugins.module_utils.errors import PkiError
from ansible_collections.clientvpn.pki.plugins.module_utils.pki_store import SECRET_MODE, PkiStore

CERTIFICATE_MODE = 0o644


class StagingFolder(object):
    def __init__(self, module, dest, certificates, private_keys):
        self.files = {}
        for sources, mode in ((certificates, CERTIFICATE_MODE), (private_keys, SECRET_MODE)):
            for source in sources:
                name = os.path.basename(source)
                if name in self.files and self.files[name][0] != source:
                    raise PkiError(
                        "%s and %s would both be staged as %s: give files distinct names." % (self.files[name][0], source, name)
                    )
                self.files[name] = (source, mode)
        # Same directory handling and atomic writes as the PKI itself.
        self.folder = PkiStore(module, dest, what="dest")

    def run(self, check_mode):
        folder = self.folder
        changes, actions = folder.prepare_root(check_mode), {}
        for name, (source, mode) in sorted(self.files.items()):
            actions[name] = self._stage(name, source, mode, check_mode)
            if actions[name] != "unchanged":
                changes.append("%s %s" % (actions[name], name))
        return {
            "changed": bool(changes),
            "changes": changes,
            "dest": folder.root,
            "files": actions,
            "diff": {"before": {}, "after": {}},
        }

    def _stage(self, name, source, mode, check_mode):
        folder = self.folder
        target = folder.path(name)
        if not os.path.isfile(source):
            if check_mode:
                return "copied"  # an earlier task of this check run would have made it
            raise PkiError("%s does not exist: nothing to stage as %s. Build it first (clientvpn.pki.pki)." % (source, target))
        action = folder.put(target, folder.read(source), mode, check_mode)
        return "copied" if action == "written" else action
