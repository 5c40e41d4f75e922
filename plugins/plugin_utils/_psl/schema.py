# PRIVATE: the PSL syntax as JSON Schema, and a located validator for the subset it uses.
#
# The same schema is published as docs/psl.schema.json (for editors) and checks every file,
# so the documentation and the checker cannot disagree. Semantic checks (references,
# duplicates, shadowing, ...) are in compiler.py.
from __future__ import annotations

import difflib
import re
from typing import Any, Dict, List, Tuple

from .loader import Document
from .problems import Problems

__all__ = ["SCHEMA", "build_schema", "check_document"]

ID_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,63}$"
NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_.-]{0,63}$"
DURATION_PATTERN = r"^[0-9]+(s|m|h|d|w)$"


def _str(desc: str, **kw) -> dict:
    return {"type": "string", "description": desc, **kw}


def _list(items: dict, desc: str, **kw) -> dict:
    return {"type": "array", "items": items, "description": desc, **kw}


def _str_or_list(desc: str) -> dict:
    return {
        "anyOf": [{"type": "string", "minLength": 1}, {"type": "array", "items": {"type": "string", "minLength": 1}}],
        "description": desc,
        "x-expect": "a string or a list of strings",
    }


def _obj(props: dict, desc: str, required=(), **kw) -> dict:
    out = {"type": "object", "description": desc, "properties": props, "additionalProperties": False, **kw}
    if required:
        out["required"] = list(required)
    return out


PORT = {
    "anyOf": [
        {"type": "integer", "minimum": 0, "maximum": 65535},
        {"type": "string", "pattern": r"^[0-9]{1,5}(-[0-9]{1,5})?$"},
    ],
    "x-expect": "a port (0-65535) or a range 'LOW-HIGH'",
}
PROTO = {
    "anyOf": [
        {"type": "string", "enum": ["tcp", "udp", "sctp", "icmp", "icmpv6", "esp", "ah", "gre", "any"]},
        {"type": "integer", "minimum": 0, "maximum": 255},
    ],
    "x-expect": "tcp, udp, sctp, icmp, icmpv6, esp, ah, gre, any, or an IP protocol number 0-255",
    "description": "Transport protocol.",
}
ICMP_TYPE = {
    "anyOf": [{"type": "string", "minLength": 1}, {"type": "integer", "minimum": 0, "maximum": 255}],
    "x-expect": "an ICMP type name (echo-request, ...) or number 0-255",
}
CONDITION = {
    "anyOf": [
        {"type": "string", "minLength": 1},
        {"type": "boolean"},
        {"$ref": "#/$defs/condition_all"},
        {"$ref": "#/$defs/condition_any"},
        {"$ref": "#/$defs/condition_not"},
    ],
    "x-expect": "a condition: an expression string, or a mapping with one key all / any / not",
    "description": "A condition over the host's Security Status (see docs/psl.md, Conditions).",
}
IF_UNKNOWN = {
    "anyOf": [{"type": "boolean"}, {"type": "string", "enum": ["false", "true"]}],
    "x-expect": "true or false",
    "description": "What the condition means when a fact it reads is not reported by the host (default false).",
}
VALUE_RANGE = {
    "anyOf": [
        {"type": "integer", "minimum": 0, "maximum": 255},
        {
            "type": "string",
            "pattern": r"^([01]?[0-9]?[0-9]|2[0-4][0-9]|25[0-5])-([01]?[0-9]?[0-9]|2[0-4][0-9]|25[0-5])$",
        },
    ],
    "x-expect": "a number 0-255 or a range 'LOW-HIGH' within 0-255",
}
NEXT_HEADERS = ["tcp", "udp", "sctp", "icmpv6", "esp", "ah", "gre", "dccp", "udplite", "comp"]
# A Linux interface name: at most 15 characters, none of / * " \ $ or white space.
INTERFACE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.@+-]{0,14}$"
SAFE_TEXT_PATTERN = r"^[^\x00-\x1f\x7f\"\\$]*$"

SERVICE_ENTRY = _obj(
    {
        "proto": PROTO,
        "ports": _list(PORT, "Destination ports or ranges."),
        "sports": _list(PORT, "Source ports or ranges."),
        "types": _list(ICMP_TYPE, "ICMP or ICMPv6 types (for proto icmp / icmpv6)."),
        "codes": _list({"type": "integer", "minimum": 0, "maximum": 255}, "ICMP codes."),
        "description": _str("What the service is."),
    },
    "One protocol with its ports or ICMP types.",
    required=["proto"],
)

RULE = _obj(
    {
        "id": _str("Stable rule id, unique in the policy (lower case, digits, '-', '_', '.').", pattern=ID_PATTERN),
        "description": _str("What the rule is for, for people.", minLength=1),
        "direction": {"type": "string", "enum": ["in", "out", "forward"], "description": "Traffic direction."},
        "from": _str_or_list("Source: address object names, literal addresses/prefixes/ranges, or 'any'."),
        "to": _str_or_list("Destination: address object names, literal addresses/prefixes/ranges, or 'any'."),
        "service": _str_or_list("Service object names (instead of proto/ports)."),
        "proto": PROTO,
        "ports": _list(PORT, "Destination ports or ranges."),
        "sports": _list(PORT, "Source ports or ranges."),
        "icmp_types": _list(ICMP_TYPE, "ICMP/ICMPv6 types (with proto icmp or icmpv6)."),
        "icmp_codes": _list({"type": "integer", "minimum": 0, "maximum": 255}, "ICMP/ICMPv6 codes of those types."),
        "family": {"type": "string", "enum": ["ipv4", "ipv6", "any"], "description": "Restrict to one family."},
        "interface": _str(
            "Interface name (input interface for in, output interface for out); at most 15 characters, no wildcards.",
            pattern=INTERFACE_PATTERN,
        ),
        "state": _list(
            {"type": "string", "enum": ["new", "established", "related", "invalid", "untracked"]},
            "Connection tracking states.",
        ),
        "fields": _obj(
            {
                "dscp": {"type": "integer", "minimum": 0, "maximum": 63, "description": "DSCP value."},
                "hop_limit": {**VALUE_RANGE, "description": "IPv6 hop limit (value or range)."},
                "ttl": {**VALUE_RANGE, "description": "IPv4 TTL (value or range)."},
                "next_header": {
                    "anyOf": [
                        {"type": "string", "enum": NEXT_HEADERS},
                        {"type": "integer", "minimum": 0, "maximum": 255},
                    ],
                    "x-expect": "one of " + ", ".join(NEXT_HEADERS) + ", or a protocol number 0-255",
                    "description": "IPv6 next header.",
                },
                "tcp_flags": _list(
                    {"type": "string", "enum": ["syn", "ack", "fin", "rst", "psh", "urg"]}, "TCP flags that are set."
                ),
            },
            "Header fields to match (a bounded set).",
        ),
        "owner": _obj(
            {
                "user": {"anyOf": [{"type": "string"}, {"type": "integer"}], "x-expect": "a user name or uid"},
                "group": {"anyOf": [{"type": "string"}, {"type": "integer"}], "x-expect": "a group name or gid"},
            },
            "Local socket owner (direction out only).",
        ),
        "action": {"type": "string", "enum": ["accept", "drop", "reject"], "description": "Verdict."},
        "log": {
            "anyOf": [
                {"type": "boolean"},
                _obj(
                    {
                        "prefix": _str(
                            "Log prefix (no quotes, backslashes, $ or control characters).",
                            maxLength=48,
                            pattern=SAFE_TEXT_PATTERN,
                        ),
                        "rate": _str("Rate limit, e.g. 5/minute.", pattern=r"^[0-9]+/(second|minute|hour|day)$"),
                    },
                    "Logging options.",
                ),
            ],
            "x-expect": "true, false or a mapping with prefix and rate",
            "description": "Log matching packets (rate-limited).",
        },
        "when": CONDITION,
        "if_unknown": IF_UNKNOWN,
        "apply_to": _str_or_list("Host groups or host names this rule is for (default: every host)."),
        "profiles": _str_or_list("Profiles this rule belongs to (default: home)."),
    },
    "A firewall rule.",
    required=["id", "description", "direction", "action"],
)

PROFILE = _obj(
    {
        "description": _str("When the profile is used."),
        "inherit": _str("Start from this profile's rules.", pattern=NAME_PATTERN),
        "rank": {
            "type": "integer",
            "minimum": 0,
            "maximum": 100,
            "description": "How restrictive; when several failed checks name profiles, the highest rank wins.",
        },
        "default": _obj(
            {k: {"type": "string", "enum": ["accept", "drop", "reject"]} for k in ("in", "out", "forward")},
            "Verdict for traffic no rule matches, per direction.",
        ),
        "baseline": {"$ref": "#/$defs/baseline"},
        "rules": _list({"$ref": "#/$defs/rule"}, "Rules of this profile only."),
    },
    "A complete rule set for one situation.",
)

CHECK_KINDS = {
    "package": _obj(
        {
            "name": _str("Package name.", minLength=1),
            "at_least": _str("Lowest acceptable version (platform ordering).", minLength=1),
            "below": _str("Versions from this one on are not acceptable.", minLength=1),
            "absent": {"type": "boolean", "description": "The package must not be installed."},
        },
        "A package requirement.",
        required=["name"],
    ),
    "service": _obj(
        {
            "name": _str("systemd unit name.", minLength=1),
            "state": {"type": "string", "enum": ["running", "stopped", "absent"]},
            "enabled": {"type": "boolean"},
        },
        "A service requirement.",
        required=["name"],
    ),
    "sysctl": _obj(
        {"key": _str("sysctl key.", minLength=1), "value": {"anyOf": [{"type": "string"}, {"type": "integer"}]}},
        "A kernel parameter requirement.",
        required=["key", "value"],
    ),
    "antivirus": _obj(
        {"max_age": _str("Oldest acceptable signatures, e.g. 2d.", pattern=DURATION_PATTERN)},
        "Anti-virus signature freshness.",
        required=["max_age"],
    ),
    "certificate": _obj(
        {"min_remaining": _str("Shortest acceptable remaining lifetime.", pattern=DURATION_PATTERN)},
        "The host's domain certificate is valid, not revoked, and not about to expire.",
    ),
    "listening": _obj(
        {"allowed_ports": _list(PORT, "Ports that may listen; any other listening port fails the check.")},
        "No unknown listening ports.",
        required=["allowed_ports"],
    ),
    "condition": CONDITION,
}

CHECK = _obj(
    {
        "id": _str("Stable check id.", pattern=ID_PATTERN),
        "description": _str("What is required, for people.", minLength=1),
        "severity": {"type": "string", "enum": ["low", "medium", "high", "critical"]},
        "on_fail": _str("Profile for a host that fails the check (default isolated).", pattern=NAME_PATTERN),
        "if_unknown": IF_UNKNOWN,
        "apply_to": _str_or_list("Host groups or host names this check is for (default: every host)."),
        **CHECK_KINDS,
    },
    "A Security Status requirement. Give exactly one of: " + ", ".join(CHECK_KINDS) + ".",
    required=["id", "description"],
)

BASELINE = _obj(
    {
        "loopback": {"type": "boolean", "description": "Allow traffic on the loopback interface (default true)."},
        "established": {"type": "boolean", "description": "Allow established/related traffic (default true)."},
        "icmpv6_essentials": {
            "type": "boolean",
            "description": "Allow the ICMPv6 messages IPv6 needs (RFC 4890) (default true).",
        },
        "management": {"type": "boolean", "description": "Keep management access open (default true)."},
        "acknowledge_risk": _str(
            "Required when turning off icmpv6_essentials or management: say why, in words.", minLength=10
        ),
    },
    "The built-in restrictive baseline kept in every profile.",
)

TEST = _obj(
    {
        "name": _str("What the test shows.", minLength=1),
        "host": _str("Host name the test evaluates as.", minLength=1),
        "groups": _str_or_list("Inventory groups of that host."),
        "status": {"type": "object", "description": "Security Status facts (the distsec_status shape)."},
        "status_file": _str("A JSON Security Status file, relative to this PSL file."),
        "now": _str("Evaluation time (ISO 8601), for ages and expiry."),
        "expect": _obj(
            {
                "profile": _str("The profile the host must get."),
                "compliant": {"type": "boolean"},
                "failed_checks": _list({"type": "string"}, "Exactly these checks fail."),
                "flows": _list(
                    _obj(
                        {
                            "flow": _str("A flow: 'PROTO SRC[:PORT] -> DST[:PORT] in|out|forward'.", minLength=5),
                            "action": {"type": "string", "enum": ["accept", "drop", "reject"]},
                            "rule": _str("The id of the rule that must decide it."),
                        },
                        "An expected decision for one flow.",
                        required=["flow", "action"],
                    ),
                    "Flows and their expected verdicts.",
                ),
            },
            "What must come out.",
        ),
    },
    "A policy test: synthetic Security Status in, expected decisions out.",
    required=["name", "expect"],
)


def build_schema(mechanisms: Dict[str, dict]) -> dict:
    props: Dict[str, Any] = {
        "psl": {"const": 1, "description": "Language version; this is PSL 1."},
        "domain": _str(
            "The Security Domain this policy is for (e.g. example.org).", pattern=r"^[A-Za-z0-9_.-]{1,253}$"
        ),
        "description": _str("What this policy (file) is."),
        "include": _str_or_list("Other PSL files, relative to this one, merged before it."),
        "metadata": _obj(
            {
                "serial": {"type": "integer", "minimum": 0},
                "issued": _str("ISO 8601 time."),
                "expires": _str("ISO 8601 time."),
            },
            "Filled in when the policy is signed.",
        ),
        "defaults": _obj(
            {
                "version_scheme": {"type": "string", "enum": ["dpkg", "rpm", "pep440", "semver"]},
                "if_unknown": IF_UNKNOWN,
            },
            "Policy-wide defaults.",
        ),
        "objects": _obj(
            {
                "addresses": {
                    "type": "object",
                    "propertyNames": {"pattern": NAME_PATTERN},
                    "additionalProperties": _str_or_list(
                        "Addresses, prefixes, ranges (A-B) or other address object names."
                    ),
                    "description": "Named address sets.",
                },
                "services": {
                    "type": "object",
                    "propertyNames": {"pattern": NAME_PATTERN},
                    "additionalProperties": {
                        "anyOf": [SERVICE_ENTRY, {"type": "array", "items": SERVICE_ENTRY, "minItems": 1}],
                        "x-expect": "a service (proto, ports, ...) or a list of them",
                    },
                    "description": "Named services.",
                },
                "groups": {
                    "type": "object",
                    "propertyNames": {"pattern": NAME_PATTERN},
                    "additionalProperties": _obj(
                        {
                            "description": _str("What the group is."),
                            "inventory_groups": _list({"type": "string"}, "Inventory groups whose hosts are members."),
                            "hosts": _list({"type": "string"}, "Host names that are members."),
                        },
                        "A host group.",
                    ),
                    "description": "Host groups, matched to inventory groups or host names.",
                },
            },
            "Named objects that rules refer to.",
        ),
        "management": _obj(
            {
                "from": _str_or_list("Where admins connect from (address objects or literals; default any)."),
                "service": _str_or_list("The management service objects (default tcp/22)."),
            },
            "The management path the baseline keeps open.",
        ),
        "baseline": {"$ref": "#/$defs/baseline"},
        "rules": _list({"$ref": "#/$defs/rule"}, "Firewall rules (profile home unless a rule says otherwise)."),
        "profiles": {
            "type": "object",
            "propertyNames": {"pattern": NAME_PATTERN},
            "additionalProperties": {"$ref": "#/$defs/profile"},
            "description": "Profiles (built in: home, foreign, quarantine, isolated).",
        },
        "select": _list(
            _obj(
                {
                    "profile": _str("Profile to use.", pattern=NAME_PATTERN),
                    "when": CONDITION,
                    "if_unknown": IF_UNKNOWN,
                    "description": _str("Why."),
                },
                "A profile choice.",
                required=["profile", "when"],
            ),
            "Profile selection by Security Status, first match wins (after compliance).",
        ),
        "default_profile": _str("Profile when no selection matches (default home).", pattern=NAME_PATTERN),
        "expired_profile": _str("Profile when the policy has expired (default foreign).", pattern=NAME_PATTERN),
        "checks": _list({"$ref": "#/$defs/check"}, "Security Status requirements."),
        "exceptions": _list(
            _obj(
                {
                    "id": _str("Exception id.", pattern=ID_PATTERN),
                    "description": _str("Why the exception exists.", minLength=1),
                    "apply_to": _str_or_list("Host groups or host names."),
                    "add_rules": _list({"$ref": "#/$defs/rule"}, "Extra rules for these hosts (before the others)."),
                    "remove_rules": _list({"type": "string"}, "Rule ids these hosts do not get."),
                    "remove_checks": _list({"type": "string"}, "Check ids these hosts do not get."),
                },
                "A per-host or per-group exception.",
                required=["id", "description", "apply_to"],
            ),
            "Exceptions for some hosts, without copying the policy.",
        ),
        "tests": _list({"$ref": "#/$defs/test"}, "The policy's own tests."),
    }
    for name, schema in mechanisms.items():
        props[name] = schema
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://distsec.invalid/psl/1/schema.json",
        "title": "distsec PSL 1 (Policy Specification Language)",
        "description": "A distsec.framework policy file. See docs/psl.md.",
        "type": "object",
        "properties": props,
        "additionalProperties": False,
        "$defs": {
            "rule": RULE,
            "profile": PROFILE,
            "check": CHECK,
            "baseline": BASELINE,
            "test": TEST,
            "condition_all": _obj({"all": _list(CONDITION, "All must hold.", minItems=1)}, "", required=["all"]),
            "condition_any": _obj({"any": _list(CONDITION, "One must hold.", minItems=1)}, "", required=["any"]),
            "condition_not": _obj({"not": CONDITION}, "", required=["not"]),
        },
    }


SCHEMA: Dict[str, Any] = {}  # filled by compiler.py with the mechanisms registered there

_TYPES = {
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "array": lambda v: isinstance(v, list),
    "object": lambda v: isinstance(v, dict),
    "null": lambda v: v is None,
}
_ARTICLE = {"string": "a string", "integer": "a whole number", "number": "a number", "boolean": "true or false"}
_ARTICLE.update({"array": "a list", "object": "a mapping", "null": "nothing"})
_pattern_cache: Dict[str, Any] = {}


def _describe(value: Any) -> str:
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int):
        return "a number"
    if isinstance(value, float):
        return "a decimal number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return "nothing" if value is None else type(value).__name__


class _Checker:
    def __init__(self, root: dict, doc: Document, problems: Problems) -> None:
        self.root = root
        self.doc = doc
        self.problems = problems

    def resolve(self, schema: dict) -> dict:
        while "$ref" in schema:
            schema = self.root["$defs"][schema["$ref"].rsplit("/", 1)[1]]
        return schema

    def errors(self, value: Any, schema: dict, path: Tuple) -> List[Tuple[Tuple, str, bool]]:
        """Problems as (path, message, at_key) without reporting them (for anyOf)."""
        out: List[Tuple[Tuple, str, bool]] = []
        self._check(value, self.resolve(schema), path, out)
        return out

    def _check(self, value: Any, schema: dict, path: Tuple, out: list) -> None:
        if "anyOf" in schema:
            alternatives = [self.resolve(s) for s in schema["anyOf"]]
            for alt in alternatives:  # cheap first: only alternatives of the value's type
                if self._type_ok(value, alt) and not self.errors(value, alt, path):
                    return
            results = [self.errors(value, s, path) for s in alternatives]
            if any(not r for r in results):
                return
            typed = [r for s, r in zip(alternatives, results) if self._type_ok(value, s)]
            if len(typed) == 1:  # the value has the right shape for one alternative: its errors are the useful ones
                out.extend(typed[0])
                return
            expect = schema.get("x-expect", "another kind of value")
            out.append((path, f"expected {expect}, got {_describe(value)}", False))
            return
        if "const" in schema and value != schema["const"]:
            out.append((path, f"must be {schema['const']!r}, got {value!r}", False))
            return
        if "type" in schema and not self._type_ok(value, schema):
            out.append(
                (path, f"expected {_ARTICLE.get(schema['type'], schema['type'])}, got {_describe(value)}", False)
            )
            return
        if "enum" in schema and value not in schema["enum"]:
            choices = ", ".join(str(c) for c in schema["enum"])
            hint = difflib.get_close_matches(str(value), [str(c) for c in schema["enum"]], n=1)
            more = f"; did you mean {hint[0]!r}?" if hint else ""
            out.append((path, f"{value!r} is not one of: {choices}{more}", False))
            return
        if isinstance(value, str):
            if len(value) < schema.get("minLength", 0):
                out.append((path, "must not be empty", False))
            if "maxLength" in schema and len(value) > schema["maxLength"]:
                out.append((path, f"must be at most {schema['maxLength']} characters", False))
            pattern = schema.get("pattern")
            if pattern and not _compiled(pattern).search(value):
                out.append((path, f"{value!r} does not have the required form ({_pattern_hint(pattern)})", False))
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if "minimum" in schema and value < schema["minimum"]:
                out.append((path, f"{value} is below the minimum {schema['minimum']}", False))
            if "maximum" in schema and value > schema["maximum"]:
                out.append((path, f"{value} is above the maximum {schema['maximum']}", False))
        if isinstance(value, list):
            if len(value) < schema.get("minItems", 0):
                out.append((path, f"needs at least {schema['minItems']} item(s)", False))
            if "items" in schema:
                for i, item in enumerate(value):
                    self._check(item, self.resolve(schema["items"]), (*path, i), out)
        if isinstance(value, dict):
            props = schema.get("properties", {})
            for req in schema.get("required", []):
                if req not in value:
                    out.append((path, f"missing required key {req!r}", False))
            names = schema.get("propertyNames")
            extra = schema.get("additionalProperties", True)
            for key, item in value.items():
                if names and not _compiled(names["pattern"]).search(key):
                    out.append(((*path, key), f"name {key!r} does not have the required form", True))
                    continue
                if key in props:
                    self._check(item, self.resolve(props[key]), (*path, key), out)
                elif extra is False:
                    hint = difflib.get_close_matches(key, list(props), n=1)
                    more = f"; did you mean {hint[0]!r}?" if hint else f"; expected one of: {', '.join(props)}"
                    out.append(((*path, key), f"unknown key {key!r}{more}", True))
                elif isinstance(extra, dict):
                    self._check(item, self.resolve(extra), (*path, key), out)

    def _type_ok(self, value: Any, schema: dict) -> bool:
        kind = schema.get("type")
        if kind is None:
            return True
        kinds = kind if isinstance(kind, list) else [kind]
        return any(_TYPES[k](value) for k in kinds)


def _compiled(pattern: str):
    if pattern not in _pattern_cache:
        # JSON Schema's `$` is the end of the string; Python's also matches before a final
        # newline, which would let "64-64\n" through. Our patterns use `$` only as the anchor.
        _pattern_cache[pattern] = re.compile(pattern[:-1] + r"\Z" if pattern.endswith("$") else pattern)
    return _pattern_cache[pattern]


def _pattern_hint(pattern: str) -> str:
    return {
        ID_PATTERN: "lower-case letters, digits, '-', '_', '.'; at most 64",
        NAME_PATTERN: "a letter or '_', then letters, digits, '-', '_', '.'",
        DURATION_PATTERN: "a number and a unit s, m, h, d or w, e.g. 7d",
        INTERFACE_PATTERN: "an interface name of at most 15 characters: letters, digits, '_', '.', '@', '+', '-'",
        SAFE_TEXT_PATTERN: "text without quotes, backslashes, $ or control characters",
    }.get(pattern, f"pattern {pattern}")


LIST_SECTIONS = ("rules", "checks", "select", "exceptions", "tests")


def _prune_point(path: Tuple) -> Tuple:
    """The smallest whole item to drop for an error at `path` (a rule, an object, a section)."""
    if not path:
        return path
    if path[0] in LIST_SECTIONS and len(path) >= 2:
        return path[:2]
    if path[0] == "objects" and len(path) >= 3:
        return path[:3]
    if path[0] == "profiles" and len(path) >= 4 and path[2] == "rules":
        return path[:4]
    if path[0] == "profiles" and len(path) >= 2:
        return path[:2]
    return path[:1]


def check_document(doc: Document, problems: Problems, schema: dict) -> bool:
    """Check one file against the schema and report every problem.

    Items with errors (a rule, an object, a whole section) are taken out of `doc.data` so the
    semantic checks can still run on the rest and report their problems in the same run;
    a list item becomes None so the other items keep their positions. True when it all fits.
    """
    checker = _Checker(schema, doc, problems)
    found = checker.errors(doc.data, schema, ())
    for path, message, at_key in found:
        loc = doc.key_loc(path) if at_key else doc.loc(path)
        problems.error(loc, message)
    for point in sorted({_prune_point(p) for p, _m, _k in found}, key=len, reverse=True):
        if not point:
            continue
        parent = doc.data
        for part in point[:-1]:
            parent = parent.get(part) if isinstance(parent, dict) else None
            if parent is None:
                break
        if isinstance(parent, list) and isinstance(point[-1], int) and point[-1] < len(parent):
            parent[point[-1]] = None
        elif isinstance(parent, dict):
            parent.pop(point[-1], None)
    return not found
