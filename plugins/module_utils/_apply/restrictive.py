# PRIVATE: the default-restrictive ruleset file a host loads at boot, and its systemd unit (stdlib only).
#
# The file is the exact transaction the firewall module's nftables backend loads (replace_script
# over the rendered table body), behind a comment header: `nft -f FILE` creates, deletes and
# recreates `table inet distsec` in one transaction, so a boot load and an enforcement run own
# the same table and nothing else (other tables are left alone). The profile is the one the
# policy decides with nothing known about the host (an empty Security Status): for distsec's
# default-restrictive policy, `isolated`.
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Dict, List, Optional

from ansible_collections.distsec.framework.plugins.module_utils._apply.nftables import (
    Nft,
    NftError,
    TableRef,
    replace_script,
    rule_ids,
)
from ansible_collections.distsec.framework.plugins.module_utils._evaluate.decide import active_rules, decide
from ansible_collections.distsec.framework.plugins.module_utils._render.nftables import TABLE, render

__all__ = [
    "DEFAULT_PATH",
    "DEFAULT_UNIT",
    "BootRuleset",
    "boot_ruleset",
    "check_ruleset",
    "header_hash",
    "path_problem",
    "unit_problem",
    "unit_text",
]

DEFAULT_PATH = "/etc/distsec/default-restrictive.nft"
DEFAULT_UNIT = "distsec-default-restrictive.service"
_HEADER = "# distsec: default-restrictive firewall, domain {domain}, profile {profile}, policy {hash}"
_HEADER_RE = re.compile(r"^# distsec: default-restrictive firewall, .*, policy (sha256:[0-9a-f]{64})$")
_LINE_RE = re.compile(r"^(?:/dev/stdin|-):(\d+):")
_COMMENT_RE = re.compile(r'comment "([^"]*)"\s*$')
# Characters that would need quoting or escaping in a unit's ExecStart (or that no path needs).
_UNSAFE_PATH = re.compile(r"[\s\"'\\%$;`]|[\x00-\x1f\x7f]")
_UNIT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9:_.@\-]{0,240}\.service")


@dataclass
class BootRuleset:
    text: str  # the whole file
    body: str  # the table body, as the firewall module's nftables backend renders it
    profile: str
    reason: str
    rules: Dict[str, List[str]]  # chain -> ['policy drop', rule id, ...]
    hash: str


def boot_ruleset(compiled: Dict[str, Any], *, now: Optional[float] = None) -> BootRuleset:
    """The file for `compiled`: its decided profile with an empty Security Status, rendered.

    Raises RenderError (from the renderer) for a rule nftables cannot express, KeyError/TypeError
    for something that is not a compiled policy (the caller checks the shape first).
    """
    decision = decide(compiled, {}, now=now)
    body = render(compiled, decision.profile, active_rules(compiled, decision))
    family, name = TABLE.split()
    script = replace_script(TableRef(family, name), body)
    header = [
        _HEADER.format(domain=compiled.get("domain"), profile=decision.profile, hash=compiled.get("hash")),
        "# Written by distsec.framework (module default_restrictive); the next run rewrites it, do not edit.",
        f"# 'nft -f' on this file replaces table {TABLE} in one transaction; other tables are left alone.",
    ]
    return BootRuleset(
        text="\n".join(header) + "\n" + script,
        body=body,
        profile=decision.profile,
        reason=decision.reason,
        rules=rule_ids(body),
        hash=str(compiled.get("hash")),
    )


def header_hash(text: Optional[str]) -> Optional[str]:
    """The policy hash in the header of a file written by boot_ruleset, else None."""
    first = (text or "").split("\n", 1)[0]
    match = _HEADER_RE.match(first)
    return match.group(1) if match else None


def check_ruleset(nft: Nft, text: str) -> Optional[str]:
    """Run `nft -c -f -` on the file's text. None when it passes, else the checker's message,
    with the PSL rule id of the line it points at when that line has one."""
    try:
        nft.check(text)
    except NftError as exc:
        rule = None
        for line in exc.detail.splitlines():
            match = _LINE_RE.match(line.strip())
            if match:
                lines = text.splitlines()
                number = int(match.group(1))
                if 0 < number <= len(lines):
                    found = _COMMENT_RE.search(lines[number - 1].strip())
                    rule = found.group(1) if found else None
                break
        if "Operation not permitted" in exc.detail:
            return f"nft -c could not check the ruleset ({exc.detail}): run as root (become)"
        prefix = f"rule {rule}: " if rule else ""
        return f"{prefix}nft -c rejected the ruleset: {exc.detail or exc.message}"
    return None


def path_problem(path: str) -> Optional[str]:
    """Why `path` cannot be the ruleset file (it goes into the unit's ExecStart); None when it can."""
    if not path.startswith("/"):
        return f"{path!r} is not an absolute path"
    if _UNSAFE_PATH.search(path):
        return f"{path!r} has a space, quote, backslash, '%', '$', ';' or control character (it goes into ExecStart)"
    if path.endswith("/"):
        return f"{path!r} names a directory; name the file"
    return None


def unit_problem(unit: str) -> Optional[str]:
    if not _UNIT_NAME.fullmatch(unit):
        return f"{unit!r} is not a systemd service name (letters, digits, ':_.@-', ending in .service)"
    return None


def unit_text(nft: str, path: str) -> str:
    """The systemd unit that loads the file at boot.

    After nftables.service, whose own configuration (/etc/nftables.conf) starts with
    `flush ruleset`; before network-pre.target, so no interface is up before the rules are in.
    """
    return (
        "# Written by distsec.framework (module default_restrictive); the next run rewrites it, do not edit.\n"
        "[Unit]\n"
        "Description=distsec default-restrictive firewall (until the domain policy is enforced)\n"
        "DefaultDependencies=no\n"
        "After=nftables.service local-fs.target\n"
        "Before=network-pre.target shutdown.target\n"
        "Wants=network-pre.target\n"
        "Conflicts=shutdown.target\n"
        "\n"
        "[Service]\n"
        "Type=oneshot\n"
        "RemainAfterExit=yes\n"
        f"ExecStart={nft} -f {path}\n"
        "\n"
        "[Install]\n"
        "WantedBy=sysinit.target\n"
    )
