# PRIVATE: Security Status collector "policy": which compiled policy the agent applied, and when.
#
# The agent records it in /var/lib/distsec/policy.json; only the known keys are reported
# (the file may carry more, which the status does not promise). No file gives {}; a file
# that is not a JSON object is an error, since "no policy" would then be a false answer.
from __future__ import annotations

import json
from typing import Any, Dict

from ansible_collections.distsec.framework.plugins.module_utils._status.base import (
    CollectorError,
    Context,
    collector,
)

__all__ = ["KEYS", "POLICY_JSON", "collect_policy"]

POLICY_JSON = "/var/lib/distsec/policy.json"
KEYS = ("domain", "serial", "hash", "applied_at", "expires", "profile", "last_rejection")
MAX_SIZE = 16 * 1024 * 1024


@collector("policy")
def collect_policy(ctx: Context) -> Dict[str, Any]:
    if not ctx.exists(POLICY_JSON):
        return {}
    text = ctx.read(POLICY_JSON, limit=MAX_SIZE + 1)
    if text is None:
        raise CollectorError(f"{POLICY_JSON} exists but cannot be read")
    if len(text) > MAX_SIZE:
        raise CollectorError(f"{POLICY_JSON} is larger than 16 MiB")
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise CollectorError(f"{POLICY_JSON} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise CollectorError(f"{POLICY_JSON} must hold a JSON object, not {type(data).__name__}")
    return {key: data[key] for key in KEYS if key in data}
