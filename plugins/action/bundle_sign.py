# Copyright: distsec.framework contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin for distsec.framework.bundle_sign: compile and sign on the controller.

The same bundle as `distsec bundle sign` writes (plugins/plugin_utils/_trust_cli.py), with
Ansible's idempotence: when `dest` already holds the bundle that would be signed (same
compiled policy, targets, roots and keys, at the serial that would be used), it is kept. Ed25519
signatures are deterministic, so "the same bundle" is a byte-for-byte comparison with the
bundle rebuilt at dest's serial, issue and expiry times.
"""

from __future__ import annotations

import argparse
import os
import time

from ansible.module_utils.common.text.converters import to_text
from ansible.plugins.action import ActionBase

from ansible_collections.distsec.framework.plugins.module_utils._trust import crypto
from ansible_collections.distsec.framework.plugins.module_utils._trust.canonical import (
    StrictJSONError,
    format_time,
    loads_strict,
    parse_time,
)
from ansible_collections.distsec.framework.plugins.module_utils._trust.state import (
    atomic_write_bytes,
    read_bundle,
)
from ansible_collections.distsec.framework.plugins.module_utils._trust.verify import (
    MAX_BUNDLE,
    manifest_sha256,
)
from ansible_collections.distsec.framework.plugins.plugin_utils._cli import CommandError
from ansible_collections.distsec.framework.plugins.plugin_utils._psl.api import PolicyInvalid, compile_paths
from ansible_collections.distsec.framework.plugins.plugin_utils._trust_cli import (
    KeyDir,
    _passphrase,
    _targets,
    build_bundle,
    parse_duration,
)

POLICY_FILE_NAME = "policy.json"


class SignError(Exception):
    """A problem the task reports as its failure message."""


def _as_list(value, name):
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return list(value)
    raise SignError(f"{name} must be a string or a list of strings")


def existing_bundle(dest):
    """(bytes, serial, issued, expires) of the bundle at dest, or None when there is no usable one."""
    try:
        data = read_bundle(dest)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise SignError(f"dest: cannot read {dest}: {exc.strerror or exc}") from None
    if len(data) > MAX_BUNDLE:
        return None
    try:
        signed = loads_strict(data).get("signed")
        serial, issued, expires = signed["serial"], signed["issued"], signed["expires"]
        parse_time(issued)
        parse_time(expires)
    except (StrictJSONError, AttributeError, KeyError, TypeError, ValueError):
        return None
    if isinstance(serial, bool) or not isinstance(serial, int):
        return None
    return data, serial, issued, expires


def _build(*args, **kwargs):
    try:
        return build_bundle(*args, **kwargs)
    except ValueError as exc:
        raise SignError(str(exc)) from None


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    # ActionBase.run() refuses any other argument ("Invalid options for ...")
    _VALID_ARGS = frozenset(
        (
            "keys",
            "src",
            "expires",
            "serial",
            "targets",
            "dest",
            "host",
            "groups",
            "renew_before",
            "roots_since",
            "passphrase_file",
        )
    )

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        try:
            result.update(self._sign(dict(self._task.args)))
        except (SignError, CommandError, crypto.MissingCryptography) as exc:
            result.update(failed=True, msg=str(exc))
        return result

    def _sign(self, args):
        for name in ("keys", "src", "expires", "dest"):
            if not args.get(name):
                raise SignError(f"{name} is required")
        keys, dest = to_text(args["keys"]), to_text(args["dest"])
        src = [
            self._find_needle("files", p) if not os.path.isabs(p) and not os.path.exists(p) else p
            for p in _as_list(args["src"], "src")
        ]
        try:
            lifetime = parse_duration(to_text(args["expires"]))
            renew_before = parse_duration(to_text(args["renew_before"])) if args.get("renew_before") else lifetime // 2
        except ValueError as exc:
            raise SignError(f"expires/renew_before: {exc}") from None
        serial = self._int(args.get("serial"), "serial")
        if serial is not None and not 0 <= serial < 2**62:
            raise SignError(f"serial: {serial} is not a serial (0 or more)")
        roots_since = self._int(args.get("roots_since", 1), "roots_since")
        if roots_since < 1:
            raise SignError("roots_since: expected a root version (1 or more)")
        host = to_text(args["host"]) if args.get("host") else None
        groups = _as_list(args.get("groups"), "groups")
        targets = _targets(_as_list(args.get("targets"), "targets"), host)

        keydir = KeyDir(keys)
        root = keydir.root()
        signed_root = root["signed"]
        policy_role = signed_root["roles"]["policy"]
        passphrase = _passphrase(argparse.Namespace(passphrase_file=args.get("passphrase_file")))
        available = keydir.key_files(passphrase)
        signers = [available[kid].key for kid in policy_role["keyids"] if kid in available]
        if len(signers) < policy_role["threshold"]:
            raise SignError(
                f"root v{signed_root['version']} needs {policy_role['threshold']} policy key(s); "
                f"{len(signers)} found in {keydir.keys}"
            )
        try:
            compiled = compile_paths(src, host=host, groups=groups)
        except PolicyInvalid as exc:
            return {"failed": True, "msg": "invalid PSL policy; nothing signed", "problems": exc.lines}
        warnings = compiled["warnings"]
        compiled = compiled["compiled"]
        if compiled["domain"] != signed_root["domain"]:
            raise SignError(
                f"the policy is for domain {compiled['domain']!r}, the keys in {keys} for {signed_root['domain']!r}"
            )
        with keydir.signing():
            return self._sign_locked(
                keydir,
                {
                    "root": root,
                    "signers": signers,
                    "compiled": compiled,
                    "targets": targets,
                    "warnings": warnings,
                    "serial": serial,
                    "dest": dest,
                    "lifetime": lifetime,
                    "renew_before": renew_before,
                    "roots_since": roots_since,
                },
            )

    def _sign_locked(self, keydir, job):
        """Under the key directory's signing lock: keep dest, or sign the next serial."""
        root, signers, compiled, targets = job["root"], job["signers"], job["compiled"], job["targets"]
        warnings, serial, dest = job["warnings"], job["serial"], job["dest"]
        lifetime, renew_before, roots_since = job["lifetime"], job["renew_before"], job["roots_since"]
        signed_root = root["signed"]
        last = keydir.last_serial()
        shadow = keydir.last_serial_for(targets)
        now = int(time.time())

        def build(at_serial, issued, expires):
            return _build(
                keydir,
                root,
                signers,
                compiled,
                targets,
                serial=at_serial,
                issued=issued,
                expires=expires,
                roots_since=roots_since,
            )

        out = {
            "changed": False,
            "dest": dest,
            "domain": signed_root["domain"],
            "root_version": signed_root["version"],
            "targets": targets,
            "policy_hash": compiled["hash"],
            "warnings_found": warnings,
        }
        existing = existing_bundle(dest)
        if existing is not None:
            data, old_serial, old_issued, old_expires = existing
            same_bytes, same_manifest = build(old_serial, old_issued, old_expires)
            same = same_bytes == data
            remaining = parse_time(old_expires) - now
            kept = old_serial == serial if serial is not None else old_serial >= shadow
            if same and kept and (serial is not None or remaining > renew_before):
                if remaining <= renew_before:
                    self._display.warning(
                        f"bundle_sign: {dest} (serial {old_serial}) expires at {old_expires}; sign a new serial to renew it"
                    )
                return {
                    **out,
                    "serial": old_serial,
                    "issued": old_issued,
                    "expires": old_expires,
                    "manifest_sha256": manifest_sha256(same_manifest),
                    "reason": f"{dest} holds this bundle already (serial {old_serial}, expires {old_expires})",
                }
            if serial is not None and old_serial == serial and not same:
                raise SignError(
                    f"{dest} holds serial {serial} signed over other content; hosts that accepted it would refuse "
                    "another bundle with that serial (serial-reuse): give a new serial, or omit it"
                )
        new_serial = serial if serial is not None else last + 1
        issued, expires = format_time(now), format_time(now + lifetime)
        data, manifest = build(new_serial, issued, expires)
        if serial is not None and serial <= last:
            self._display.warning(f"bundle_sign: serial {serial} is not above the last signed serial {last}")
        out.update(
            changed=True,
            serial=new_serial,
            issued=issued,
            expires=expires,
            manifest_sha256=manifest_sha256(manifest),
            reason=f"signed serial {new_serial}"
            + ("" if existing is None else f" (replacing serial {existing[1]} in {dest})"),
        )
        if self._task.check_mode:
            return out
        try:
            os.makedirs(os.path.dirname(os.path.abspath(dest)), mode=0o700, exist_ok=True)
            atomic_write_bytes(dest, data, 0o600)
        except OSError as exc:
            raise SignError(f"dest: cannot write {dest}: {exc.strerror or exc}") from None
        try:
            atomic_write_bytes(keydir.serial_path, f"{max(last, new_serial)}\n".encode("ascii"), 0o600)
        except OSError as exc:
            raise SignError(
                f"{keydir.serial_path}: cannot record serial {new_serial}: {exc.strerror or exc} ({dest} is written)"
            ) from None
        keydir.record_signing(targets, new_serial)
        return out

    @staticmethod
    def _int(value, name):
        if value is None or value == "":
            return None
        if isinstance(value, bool):
            raise SignError(f"{name} must be an integer")
        try:
            return int(value)
        except (TypeError, ValueError):
            raise SignError(f"{name} must be an integer, not {value!r}") from None
