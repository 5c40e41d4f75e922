# PRIVATE: Security Status collector "policy": which compiled policy the agent applied, and when.
#
# The agent records it in /var/lib/distsec/policy.json; only the known keys are reported
# (the file may carry more, which the status does not promise). No file gives {}; a file
# that is not a JSON object is an error, since "no policy" would then be a false answer.
from __future__ import annotations

from typing import Any, Dict

from ansible_collections.distsec.framework.plugins.module_utils._status.base import (
    Context,
    collector,
)

__all__ = ["KEYS", "POLICY_JSON", "collect_policy"]

POLICY_JSON = "/var/lib/distsec/policy.json"
KEYS = (
    "domain",
    "serial",
    "hash",
    "applied_at",
    "expires",
    "profile",
    "last_rejection",
    "compliant",
    "checks",
    "last_run",
)
MAX_SIZE = 16 * 1024 * 1024


@collector("policy")
def collect_policy(ctx: Context) -> Dict[str, Any]:
    data = ctx.read_json(POLICY_JSON, limit=MAX_SIZE)
    if data is None:
        return {}
    return {key: data[key] for key in KEYS if key in data}
