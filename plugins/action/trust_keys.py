# Copyright: distsec.framework contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin for distsec.framework.trust_keys: `distsec keys init` on the controller, idempotent.

The key directory is made by the CLI's own code (run_keys_init in plugins/plugin_utils/_trust_cli.py);
this plugin only adds Ansible's idempotence (an existing root.json of the same domain is kept) and
check mode. The passphrase reaches the CLI code through its environment variable, set in this
worker process for the call only and never on an argv.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import threading

from ansible.module_utils.common.text.converters import to_text
from ansible.plugins.action import ActionBase

from ansible_collections.distsec.framework.plugins.module_utils._trust import crypto
from ansible_collections.distsec.framework.plugins.module_utils._trust.root import DOMAIN_RE
from ansible_collections.distsec.framework.plugins.plugin_utils._cli import CommandError
from ansible_collections.distsec.framework.plugins.plugin_utils._trust_cli import (
    MAX_KEYS_PER_COMMAND,
    PASSPHRASE_ENV,
    KeyDir,
    run_keys_init,
)

_ENV_LOCK = threading.Lock()


class KeysError(Exception):
    """A problem the task reports as its failure message."""


def _int(args, name, default=None):
    value = args.get(name)
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        raise KeysError(f"{name} must be an integer")
    try:
        return int(value)
    except (TypeError, ValueError):
        raise KeysError(f"{name} must be an integer, not {value!r}") from None


def keys_init(args, *, check=False):
    """The task's result for the arguments (a dict); KeysError for a problem the user can fix."""
    directory = to_text(args.get("dir") or "")
    domain = to_text(args.get("domain") or "")
    if not directory or not domain:
        raise KeysError("dir and domain are required")
    if not DOMAIN_RE.match(domain):
        raise KeysError(f"domain: {domain!r} is not a domain name (letters, digits, '_', '.', '-')")
    root_keys = _int(args, "root_keys", _int(args, "keys", 1))
    policy_keys = _int(args, "policy_keys", 1)
    threshold = _int(args, "threshold", 1)
    policy_threshold = _int(args, "policy_threshold", 1)
    for name, count in (("root_keys", root_keys), ("policy_keys", policy_keys)):
        if not 1 <= count <= MAX_KEYS_PER_COMMAND:
            raise KeysError(f"{name}: expected 1 to {MAX_KEYS_PER_COMMAND}, got {count}")
    for name, value, count in (
        ("threshold", threshold, root_keys),
        ("policy_threshold", policy_threshold, policy_keys),
    ):
        if not 1 <= value <= count:
            raise KeysError(f"{name}: {value} is not between 1 and the number of keys ({count})")
    keydir = KeyDir(directory)
    out = {"changed": False, "dir": directory, "domain": domain, "root": keydir.root_path}
    if os.path.lexists(keydir.root_path):
        try:
            signed = keydir.root()["signed"]
        except CommandError as exc:
            raise KeysError(f"{exc}; it is not replaced: fix or remove {directory}") from None
        if signed["domain"] != domain:
            raise KeysError(
                f"{keydir.root_path} is the trust root of domain {signed['domain']!r}, not {domain!r}: "
                "use another directory, or the domain it was made for"
            )
        return {
            **out,
            "root_version": signed["version"],
            "msg": f"{keydir.root_path} exists (root v{signed['version']})",
        }
    if check:
        return {**out, "changed": True, "root_version": 1, "msg": f"would create {keydir.root_path} (root v1)"}
    namespace = argparse.Namespace(
        dir=directory,
        domain=domain,
        keys=root_keys,
        threshold=threshold,
        policy_keys=policy_keys,
        policy_threshold=policy_threshold,
        passphrase_file=None,
    )
    passphrase = args.get("passphrase")
    printed = io.StringIO()
    with _ENV_LOCK:
        saved = os.environ.pop(PASSPHRASE_ENV, None)
        try:
            if passphrase:
                os.environ[PASSPHRASE_ENV] = to_text(passphrase)
            with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(printed):
                run_keys_init(namespace)
        except CommandError as exc:
            raise KeysError(str(exc)) from None
        finally:
            os.environ.pop(PASSPHRASE_ENV, None)
            if saved is not None:
                os.environ[PASSPHRASE_ENV] = saved
    lines = [line for line in printed.getvalue().splitlines() if line.strip()]
    return {**out, "changed": True, "root_version": 1, "msg": lines[0] if lines else "created", "stdout_lines": lines}


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(
        ("dir", "domain", "root_keys", "keys", "threshold", "policy_keys", "policy_threshold", "passphrase")
    )

    def run(self, tmp=None, task_vars=None):
        self._supports_check_mode = True
        result = super().run(tmp, task_vars)
        try:
            result.update(keys_init(dict(self._task.args), check=bool(self._task.check_mode)))
        except (KeysError, crypto.MissingCryptography) as exc:
            result.update(failed=True, msg=str(exc))
        return result
