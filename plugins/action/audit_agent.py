# Copyright: distsec.framework contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin for distsec.framework.audit_agent: build distsec-audit.pyz on the controller, copy it.

The zipapp holds the collection's host-side code (plugins/module_utils) and runs the host-local
audit with the host's python3, without Ansible. It is built deterministically (the same
collection gives the same bytes), written to a local temporary file and handed to
ansible.builtin.copy, as ansible.builtin.template does with what it renders: check mode, diff
(none for a binary file), become and idempotence are copy's.
"""

from __future__ import annotations

import os
import shutil
import tempfile

from ansible import constants as C
from ansible.plugins.action import ActionBase

from ansible_collections.distsec.framework.plugins.module_utils._version import VERSION
from ansible_collections.distsec.framework.plugins.plugin_utils._agent_build import AGENT_NAME, build_agent, digest

DEFAULT_DEST = f"/usr/local/lib/distsec/{AGENT_NAME}"
DEFAULT_MODE = "0644"
DIR_MODE = "0755"


class ActionModule(ActionBase):
    TRANSFERS_FILES = True
    _VALID_ARGS = frozenset(("dest", "mode", "owner", "group"))

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        del tmp  # tmp no longer has any effect
        args = self._task.args
        dest = args.get("dest") or DEFAULT_DEST
        if not isinstance(dest, str) or not dest.startswith("/") or dest.endswith("/"):
            return {**result, "failed": True, "msg": f"dest must be an absolute file path on the host, not {dest!r}"}
        try:
            data = build_agent()
        except OSError as exc:
            return {
                **result,
                "failed": True,
                "msg": f"cannot build {AGENT_NAME} from the collection's module_utils: {exc}; "
                "reinstall the collection on the controller",
            }
        agent = {"version": VERSION, "sha256": digest(data), "size": len(data)}

        # copy does not create missing parent directories
        directory = self._execute_module(
            module_name="ansible.legacy.file",
            module_args={"path": os.path.dirname(dest), "state": "directory", "mode": DIR_MODE},
            task_vars=task_vars,
        )
        if directory.get("failed") or directory.get("unreachable"):
            return {**result, **directory, "agent": agent}

        new_task = self._task.copy()
        new_task.args.clear()
        new_task.args.update(dest=dest, mode=args.get("mode") or DEFAULT_MODE, force=True)
        for name in ("owner", "group"):
            if args.get(name) is not None:
                new_task.args[name] = args[name]
        local_tempdir = tempfile.mkdtemp(dir=C.DEFAULT_LOCAL_TMP)
        try:
            source = os.path.join(local_tempdir, AGENT_NAME)
            with open(source, "wb") as handle:
                handle.write(data)
            new_task.args["src"] = source
            # as ansible.builtin.template: the ansible.legacy name lets a local override take part
            copy_action = self._shared_loader_obj.action_loader.get(
                "ansible.legacy.copy",
                task=new_task,
                connection=self._connection,
                play_context=self._play_context,
                loader=self._loader,
                templar=self._templar,
                shared_loader_obj=self._shared_loader_obj,
            )
            copied = copy_action.run(task_vars=task_vars)
        finally:
            shutil.rmtree(local_tempdir, ignore_errors=True)
        result.update(copied)
        result["changed"] = bool(copied.get("changed")) or bool(directory.get("changed"))
        result["agent"] = agent
        return result
