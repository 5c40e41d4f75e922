# Copyright: distsec.framework contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin for distsec.framework.psl: all work happens on the controller."""

from __future__ import annotations

import os
import tempfile

from ansible.module_utils.parsing.convert_bool import boolean
from ansible.plugins.action import ActionBase

from ansible_collections.distsec.framework.plugins.plugin_utils._psl.api import PolicyInvalid, compile_paths
from ansible_collections.distsec.framework.plugins.plugin_utils._psl.compiler import canonical_json


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(("src", "command", "host", "groups", "status", "dest", "as_json"))

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        task_vars = task_vars or {}
        args = self._task.args
        unknown = sorted(set(args) - self._VALID_ARGS)
        if unknown:
            return {**result, "failed": True, "msg": f"unsupported parameter(s): {', '.join(unknown)}"}
        command = args.get("command", "compile")
        if command not in ("validate", "compile", "test"):
            return {**result, "failed": True, "msg": f"command must be validate, compile or test, not {command!r}"}
        src = args.get("src")
        if isinstance(src, str):
            src = [src]
        if not src:
            return {**result, "failed": True, "msg": "src is required: a PSL file path or a list of them"}
        src = [self._find_needle("files", p) if not os.path.isabs(p) and not os.path.exists(p) else p for p in src]
        status = args.get("status")
        if status is not None and not isinstance(status, dict):
            return {**result, "failed": True, "msg": "status must be a mapping (the distsec_status shape)"}
        try:
            out = compile_paths(
                src,
                host=args.get("host", task_vars.get("inventory_hostname")),
                groups=args.get("groups", task_vars.get("group_names", [])),
                status=status,
                run_policy_tests=command == "test",
            )
        except PolicyInvalid as exc:
            return {**result, "failed": True, "msg": "invalid PSL policy", "problems": exc.lines}
        compiled = out["compiled"]
        result.update(changed=False, hash=compiled["hash"], warnings_found=out["warnings"])
        if command != "validate":
            if boolean(args.get("as_json", False), strict=False):
                result["compiled_json"] = canonical_json(compiled)
            else:
                result["compiled"] = compiled
        if "preview" in out:
            result["preview"] = out["preview"]
        if command == "test":
            result["tests"] = out["tests"]
            failed = [t for t in out["tests"] if not t["passed"]]
            if failed:
                result["failed"] = True
                result["msg"] = f"{len(failed)} of {len(out['tests'])} policy test(s) failed: " + ", ".join(
                    t["name"] for t in failed
                )
        dest = args.get("dest")
        if dest and not result.get("failed"):
            text = canonical_json(compiled) + "\n"
            try:
                with open(dest, encoding="utf-8") as handle:
                    same = handle.read() == text
            except OSError:
                same = False
            if not same:
                result["changed"] = True
                if not self._task.check_mode:
                    directory = os.path.dirname(os.path.abspath(dest))
                    fd, tmp_path = tempfile.mkstemp(dir=directory, prefix=".psl-")
                    with os.fdopen(fd, "w", encoding="utf-8") as handle:
                        handle.write(text)
                    os.replace(tmp_path, dest)
        return result
