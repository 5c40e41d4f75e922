# Copyright: distsec.framework contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin for distsec.framework.firewall: apply, then confirm over a NEW connection.

The module applies the ruleset and leaves a watchdog armed on the host. This plugin then closes
the connection it used (for ssh: the ControlPersist master) and confirms through a fresh one. If
the new ruleset blocks new management connections, that confirmation cannot arrive: the host
restores the previous ruleset by itself at the deadline, and this plugin reconnects after the
deadline to report what happened, with applied=false.
"""

from __future__ import annotations

import json
import time

from ansible.errors import AnsibleConnectionFailure, AnsibleError
from ansible.plugins.action import ActionBase
from ansible.utils.display import Display

display = Display()

MODULE = "distsec.framework.firewall"


class ActionModule(ActionBase):
    TRANSFERS_FILES = False

    def _call(self, args, task_vars):
        return self._execute_module(module_name=MODULE, module_args=args, task_vars=task_vars)

    def _fresh(self, args, task_vars):
        """Run the module over a new connection; None when the host cannot be reached."""
        try:
            self._connection.reset()
        except (AnsibleError, OSError) as exc:
            display.vvv(f"firewall: closing the connection failed ({exc}); opening a new one anyway")
        try:
            result = self._call(args, task_vars)
        except (AnsibleConnectionFailure, OSError) as exc:
            display.vvv(f"firewall: new connection failed: {exc}")
            return None
        if result.get("unreachable"):
            return None
        return result

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        task_vars = task_vars or {}
        args = dict(self._task.args)
        for internal in ("_confirm", "_outcome"):
            if internal in args:
                return {**result, "failed": True, "msg": f"{internal} is internal to the firewall action"}
        if args.get("status") is None and isinstance(task_vars.get("distsec_status"), dict):
            args["status"] = task_vars["distsec_status"]
        # One JSON string travels much faster than a large nested structure of module arguments.
        for key in ("compiled", "status"):
            if isinstance(args.get(key), dict):
                args[key] = json.dumps(args[key], sort_keys=True, default=str)

        applied = self._call(args, task_vars)
        pending = applied.get("pending")
        if applied.get("failed") or not pending:
            return {**result, **applied}

        state_dir = {"state_dir": args["state_dir"]} if args.get("state_dir") else {}
        token, deadline = pending["token"], float(pending["deadline"])
        started = time.time()
        confirmed = self._fresh({"_confirm": token, **state_dir}, task_vars)
        applied.pop("pending", None)
        if confirmed is not None and confirmed.get("confirmed"):
            applied.update(confirmed=True, confirmed_after=round(time.time() - started, 2))
            return {**result, **applied}

        # No confirmation: either the new connection failed (blocked), or the host already rolled back.
        wait = max(0.0, deadline - time.time()) + 3.0
        display.warning(
            f"firewall: could not confirm the new ruleset over a new connection; the host rolls back by itself "
            f"at its deadline, checking again in {wait:.0f} s"
        )
        time.sleep(wait)
        outcome = self._fresh({"_outcome": token, **state_dir}, task_vars)
        applied.update(applied=False, confirmed=False, changed=True, failed=True)
        if outcome is None:
            applied["msg"] = (
                "the new ruleset was not confirmed: no new connection could be made, and the host is still "
                "unreachable after its rollback deadline; check it from the console"
            )
            applied["rollback"] = {"outcome": "unknown"}
        else:
            state = {k: v for k, v in outcome.items() if k not in ("changed", "invocation", "failed")}
            applied["rollback"] = state
            if state.get("outcome") == "rolled-back":
                applied["msg"] = (
                    "the new ruleset blocked new management connections (the confirmation over a new connection "
                    "failed), so the host restored the previous ruleset by itself; it is reachable again"
                )
            else:
                applied["msg"] = f"the new ruleset was not confirmed; the host reports {state.get('outcome')}"
                if confirmed is not None and confirmed.get("msg"):
                    applied["msg"] += f" ({confirmed['msg']})"
        return {**result, **applied}
