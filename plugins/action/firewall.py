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

from ansible.errors import AnsibleError
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
        except (AnsibleError, OSError) as exc:
            display.vvv(f"firewall: new connection failed: {exc}")
            return None
        if result.get("unreachable"):
            return None
        return result

    def _ssh_connection(self):
        """SSH_CONNECTION of the session, read before privilege escalation (sudo drops it)."""
        try:
            out = self._low_level_execute_command('echo "$SSH_CONNECTION"', sudoable=False)
        except (AnsibleError, OSError) as exc:
            display.vvv(f"firewall: cannot read SSH_CONNECTION: {exc}")
            return None
        text = (out.get("stdout") or "").strip()
        return text if out.get("rc") == 0 and len(text.split()) == 4 else None

    def _outcome(self, token, remaining, state_dir, task_vars):
        """Reconnect after the host's deadline and wait for a final answer (bounded)."""
        wait = max(0.0, remaining) + 3.0
        display.warning(
            f"firewall: could not confirm the new ruleset over a new connection; the host rolls back by itself "
            f"at its deadline, checking again in {wait:.0f} s"
        )
        time.sleep(wait)
        outcome = None
        for attempt in range(10):
            outcome = self._fresh({"_outcome": token, **state_dir}, task_vars)
            state = (outcome or {}).get("outcome")
            if state in ("rolled-back", "rollback-failed", "confirmed", "cancelled"):
                return outcome
            if state == "pending" and outcome.get("remaining", 0) > 0:
                time.sleep(min(float(outcome["remaining"]) + 1.0, 60.0))  # the host's clock decides
            elif attempt < 9:
                time.sleep(3.0)
        return outcome

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        task_vars = task_vars or {}
        args = dict(self._task.args)
        for internal in ("_confirm", "_outcome", "_ssh_connection", "_connection"):
            if internal in args:
                return {**result, "failed": True, "msg": f"{internal} is internal to the firewall action"}
        delegated = self._task.delegate_to is not None
        if args.get("status") is None and not delegated and isinstance(task_vars.get("distsec_status"), dict):
            args["status"] = task_vars["distsec_status"]
        # One JSON string travels much faster than a large nested structure of module arguments.
        for key in ("compiled", "status"):
            if isinstance(args.get(key), dict):
                args[key] = json.dumps(args[key], sort_keys=True, default=str)
        transport = str(getattr(self._connection, "transport", "") or "")
        args["_connection"] = transport.rsplit(".", 1)[-1] if transport.startswith("ansible.builtin.") else transport
        if args["_connection"] in ("ssh", "paramiko", "paramiko_ssh") and self._play_context.become:
            ssh_connection = self._ssh_connection()
            if ssh_connection:
                args["_ssh_connection"] = ssh_connection

        applied = self._call(args, task_vars)
        pending = applied.get("pending")
        if applied.get("failed") or not pending:
            return {**result, **applied}

        state_dir = {"state_dir": args["state_dir"]} if args.get("state_dir") else {}
        token = pending["token"]
        started = time.time()
        confirmed = self._fresh({"_confirm": token, **state_dir}, task_vars)
        applied.pop("pending", None)
        if confirmed is not None and confirmed.get("confirmed"):
            applied.update(confirmed=True, confirmed_after=round(time.time() - started, 2))
            return {**result, **applied}

        # No confirmation: the new connection failed (blocked), or the host already rolled back.
        remaining = float(pending.get("remaining", 0)) - (time.time() - started)
        outcome = self._outcome(token, remaining, state_dir, task_vars)
        state = {k: v for k, v in (outcome or {}).items() if k not in ("changed", "invocation", "failed")}
        applied["rollback"] = state or {"outcome": "unknown"}
        if state.get("outcome") == "confirmed":  # the confirmation arrived; only its answer was lost
            applied.update(confirmed=True)
            return {**result, **applied}
        applied.update(confirmed=False, changed=True, failed=True)
        run = applied.get("run")
        if isinstance(run, dict):  # the record the host keeps is its previous one; this one says what happened
            run["result"] = "failed"
            run["firewall"] = {**run.get("firewall", {}), "applied": False, "confirmed": False}
            run["drift"] = {**run.get("drift", {}), "fixed": False}
        if outcome is None:
            applied["applied"] = None
            if isinstance(run, dict):
                run["firewall"]["applied"] = None
            applied["msg"] = (
                "the new ruleset was not confirmed: no new connection could be made, and the host is still "
                "unreachable after its rollback deadline; check it from the console"
            )
        elif state.get("outcome") == "rolled-back":
            applied["applied"] = False
            applied["msg"] = (
                "the new ruleset blocked new management connections (the confirmation over a new connection "
                "failed), so the host restored the previous ruleset by itself; it is reachable again"
            )
        else:
            applied["applied"] = None if state.get("outcome") == "rollback-failed" else False
            applied["msg"] = f"the new ruleset was not confirmed; the host reports {state.get('outcome')}"
            if state.get("error"):
                applied["msg"] += f": {state['error']}"
            if confirmed is not None and confirmed.get("msg"):
                applied["msg"] += f" ({confirmed['msg']})"
        if isinstance(run, dict):
            run["error"] = applied["msg"]
        return {**result, **applied}
