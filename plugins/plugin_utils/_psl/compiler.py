# PRIVATE: PSL files -> validated policy -> canonical compiled policy for a host or group.
#
#   policy = load_policy(["site.yml"])            # raises PslError with every problem
#   compiled = compile_policy(policy, host="ws1", groups=["workstations"])
#
# The compiled policy is plain JSON with a stable key order and a content hash. Objects are
# resolved (addresses collapsed per family), host targeting is decided, and conditions over
# the Security Status are kept as ASTs for the host to evaluate (module_utils/_evaluate).
from __future__ import annotations

import copy
import difflib
import hashlib
import ipaddress
import json
import os
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Optional, Set, Tuple

import yaml

from ansible_collections.distsec.framework.plugins.module_utils._evaluate.conditions import parse_time
from ansible_collections.distsec.framework.plugins.module_utils._evaluate.flows import ICMP_TYPES, ICMPV6_TYPES
from ansible_collections.distsec.framework.plugins.module_utils._evaluate.versions import VersionError
from ansible_collections.distsec.framework.plugins.module_utils._evaluate.versions import validate as validate_version
from ansible_collections.distsec.framework.plugins.module_utils._status.schema import fact_problem

from . import schema as schema_mod
from .expr import ExprError, parse_expression
from .loader import Document, load_documents, parse_text
from .mechanisms import MECHANISMS
from .problems import Loc, Problems, PslError

__all__ = [
    "FORMAT",
    "Policy",
    "canonical_json",
    "compile_policy",
    "load_policy",
    "load_policy_document",
    "policy_schema",
]

FORMAT = "distsec.compiled-policy/1"
_OPEN = {"in": "drop", "out": "accept", "forward": "drop"}
_SHUT = {"in": "drop", "out": "drop", "forward": "drop"}
BUILTIN_PROFILES = {
    "home": {"description": "In the home Security Domain", "rank": 0, "default": _OPEN},
    "foreign": {"description": "On a foreign or unknown network (default restrictive)", "rank": 10, "default": _OPEN},
    "quarantine": {"description": "Inspection: only the PDP and remediation servers", "rank": 20, "default": _SHUT},
    "isolated": {
        "description": "Non-compliant: only the PDP and remediation servers until fixed",
        "rank": 30,
        "default": _SHUT,
    },
}
RESTRICTED = ("quarantine", "isolated")
# Remediation paths kept open in the restricted profiles, from well-known address objects.
REMEDIATION = (
    ("pdp", None, "the PDP"),
    ("patch_mirrors", [("tcp", [[80, 80], [443, 443]])], "patch mirrors"),
    ("dns_servers", [("udp", [[53, 53]]), ("tcp", [[53, 53]])], "DNS servers"),
    ("ntp_servers", [("udp", [[123, 123]])], "NTP servers"),
    ("pki", [("tcp", [[80, 80], [443, 443]])], "the domain PKI (CRL, enrollment)"),
)
# RFC 4890 section 4.4: ICMPv6 messages a host must not drop.
ICMPV6_ESSENTIAL = ["destination-unreachable", "packet-too-big", "time-exceeded", "parameter-problem", "echo-request",
                    "echo-reply", "nd-router-solicit", "nd-router-advert", "nd-neighbor-solicit", "nd-neighbor-advert",
                    "mld-listener-query", "mld-listener-report", "mld-listener-done", "mld2-listener-report"]  # fmt: skip


def policy_schema() -> dict:
    if not schema_mod.SCHEMA:
        schema_mod.SCHEMA.update(schema_mod.build_schema({n: m.schema() for n, m in MECHANISMS.items()}))
    return schema_mod.SCHEMA


def canonical_json(data: Any) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


@dataclass
class Item:
    """A value taken from one document, with the path to find its location."""

    doc: Document
    path: Tuple
    value: Any

    def loc(self, *sub) -> Loc:
        return self.doc.loc((*self.path, *sub))

    def key_loc(self, *sub) -> Loc:
        return self.doc.key_loc((*self.path, *sub))


@dataclass
class Policy:
    """A validated policy: merged documents, resolved objects, parsed conditions."""

    domain: str
    files: List[str]
    docs: List[Document]
    addresses: Dict[str, Dict[str, List[str]]]
    services: Dict[str, List[Dict[str, Any]]]
    groups: Dict[str, Dict[str, Any]]
    rules: List[Dict[str, Any]]
    profiles: Dict[str, Dict[str, Any]]
    checks: List[Dict[str, Any]]
    select: List[Dict[str, Any]]
    exceptions: List[Dict[str, Any]]
    mechanisms: Dict[str, Any]
    tests: List[Item]
    settings: Dict[str, Any]
    problems: Problems = field(default_factory=Problems)


def _as_list(value: Any) -> List[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


class _Builder:
    def __init__(self, docs: List[Document], problems: Problems, root_dir: Optional[str] = ".") -> None:
        self.docs = docs
        self.root_dir = root_dir
        self._rel: Dict[str, str] = {}
        self._literals: Dict[str, Optional[List[Any]]] = {}
        self.bad_objects: Set[str] = set()  # address objects with an error of their own
        self.p = problems
        self.addr_items: Dict[str, Item] = {}
        self.svc_items: Dict[str, Item] = {}
        self.group_items: Dict[str, Item] = {}
        self.profile_items: Dict[str, Item] = {}
        self.used: Set[str] = set()
        self.addresses: Dict[str, Dict[str, List[str]]] = {}
        self.services: Dict[str, List[Dict[str, Any]]] = {}
        self.rule_ids: Dict[str, Loc] = {}

    # ---- merging ------------------------------------------------------------------------
    def merge_named(self, section: str, sub: Optional[str], target: Dict[str, Item], what: str) -> None:
        for doc in self.docs:
            node = doc.data.get(section)
            path: Tuple = (section,)
            if sub is not None:
                node = node.get(sub) if isinstance(node, dict) else None
                path = (section, sub)
            if not isinstance(node, dict):
                continue
            for name, value in node.items():
                if name in target:
                    self.p.error(
                        doc.key_loc((*path, name)),
                        f"{what} {name!r} is already defined at {target[name].key_loc()}; names are unique across files",
                    )
                    continue
                target[name] = Item(doc, (*path, name), value)

    def merge_list(self, section: str) -> List[Item]:
        out = []
        for doc in self.docs:
            for i, value in enumerate(_as_list(doc.data.get(section))):
                if value is not None:  # None: pruned after a schema error, already reported
                    out.append(Item(doc, (section, i), value))
        return out

    def single(self, section: str) -> Optional[Item]:
        found: Optional[Item] = None
        for doc in self.docs:
            if section in doc.data:
                if found is not None:
                    self.p.error(
                        doc.key_loc((section,)),
                        f"section {section!r} is also defined at {found.key_loc()}; keep it in one file",
                    )
                    continue
                found = Item(doc, (section,), doc.data[section])
        return found

    # ---- addresses ----------------------------------------------------------------------
    def resolve_addresses(self) -> None:
        state: Dict[str, str] = {}

        def resolve(name: str, stack: List[str]) -> Dict[str, List[Any]]:
            if state.get(name) == "done":
                return self.addresses[name]
            item = self.addr_items[name]
            if state.get(name) == "busy":
                cycle = " -> ".join([*stack[stack.index(name) :], name])
                self.p.error(item.key_loc(), f"address objects refer to each other in a cycle: {cycle}")
                return {"ipv4": [], "ipv6": []}
            state[name] = "busy"
            nets: Dict[str, List[Any]] = {"ipv4": [], "ipv6": []}
            for i, entry in enumerate(_as_list(item.value)):
                if not isinstance(entry, str):
                    continue
                loc = item.loc(i) if isinstance(item.value, list) else item.loc()
                if entry in self.addr_items:
                    self.used.add(entry)
                    before = len(self.p.errors)
                    sub = resolve(entry, [*stack, name])
                    if len(self.p.errors) > before or entry in self.bad_objects:
                        self.bad_objects.add(name)
                    nets["ipv4"].extend(sub["ipv4"])
                    nets["ipv6"].extend(sub["ipv6"])
                    continue
                parsed = self.literal(entry, loc)
                if parsed is None:
                    self.bad_objects.add(name)
                else:
                    nets["ipv4"].extend(n for n in parsed if n.version == 4)
                    nets["ipv6"].extend(n for n in parsed if n.version == 6)
            state[name] = "done"
            self.addresses[name] = {fam: list(ipaddress.collapse_addresses(v)) for fam, v in nets.items()}
            return self.addresses[name]

        for name in self.addr_items:
            resolve(name, [])

    def literal(self, text: str, loc: Loc, *, quiet: bool = False) -> Optional[List[Any]]:
        """An address, prefix or range -> networks; None (and an error) when it is none of those."""
        if text in self._literals and self._literals[text] is not None:
            return self._literals[text]
        result = self._parse_literal(text, loc, quiet=quiet)
        self._literals[text] = result
        return result

    def _parse_literal(self, text: str, loc: Loc, *, quiet: bool = False) -> Optional[List[Any]]:
        try:
            if "-" in text and "/" not in text:
                low, high = (ipaddress.ip_address(x.strip()) for x in text.split("-", 1))
                if low.version != high.version:
                    raise ValueError("a range must not mix IPv4 and IPv6")
                if low > high:
                    raise ValueError(f"the range starts above its end ({low} > {high})")
                return list(ipaddress.summarize_address_range(low, high))
            if "/" in text:
                addr, _sep, length = text.partition("/")
                limit = 128 if ":" in addr else 32
                if not length.isdigit() or int(length) > limit:
                    raise ValueError(
                        f"prefix length /{length} is invalid (IPv{6 if limit == 128 else 4} allows 0-{limit})"
                    )
                try:
                    return [ipaddress.ip_network(text, strict=True)]
                except ValueError as exc:
                    if "host bits set" in str(exc):
                        net = ipaddress.ip_network(text, strict=False)
                        raise ValueError(f"{text} has host bits set; did you mean {net}?") from None
                    raise
            return [ipaddress.ip_network(text)]
        except ValueError as exc:
            if not quiet:
                names = difflib.get_close_matches(text, list(self.addr_items), n=1)
                hint = f"; did you mean the object {names[0]!r}?" if names else ""
                message = str(exc)
                if "does not appear to be" in message or "too many" in message.lower():
                    message = "not an address object, an IPv4/IPv6 address, a prefix or a range"
                self.p.error(loc, f"{text!r}: {message}{hint}")
            return None

    def endpoint(self, value: Any, item: Item, key: str) -> Optional[Dict[str, Any]]:
        """A rule's from/to -> {"objects": [...], "literal": {...}}; None means any."""
        entries = _as_list(value)
        if not entries or "any" in entries:
            if len(entries) > 1:
                self.p.warning(item.loc(key), "'any' together with other entries means any")
            return None
        objects: List[str] = []
        literal: Dict[str, List[Any]] = {"ipv4": [], "ipv6": []}
        for i, entry in enumerate(entries):
            loc = item.loc(key, i) if isinstance(value, list) else item.loc(key)
            if not isinstance(entry, str):
                continue
            if entry in self.addr_items:
                self.used.add(entry)
                if entry not in objects:
                    objects.append(entry)
                continue
            parsed = self.literal(entry, loc)
            for net in parsed or []:
                literal["ipv4" if net.version == 4 else "ipv6"].append(net)
        return {
            "objects": objects,
            "literal": {
                fam: [str(n) for n in (ipaddress.collapse_addresses(v) if len(v) > 1 else v)]
                for fam, v in literal.items()
            },
        }

    def families(self, spec: Optional[Dict[str, Any]]) -> Set[str]:
        if spec is None:
            return {"ipv4", "ipv6"}
        fams = {fam for fam, nets in spec["literal"].items() if nets}
        for name in spec["objects"]:
            fams |= {fam for fam, nets in self.addresses.get(name, {}).items() if nets}
        return fams

    # ---- services -----------------------------------------------------------------------
    def ports(self, values: Any, loc_of, what: str) -> Optional[List[List[int]]]:
        if values is None:
            return None
        out = []
        for i, value in enumerate(values):
            if isinstance(value, bool):
                continue
            if isinstance(value, int):
                out.append([value, value])
                continue
            if not isinstance(value, str):
                continue
            low, _sep, high = value.partition("-")
            lo, hi = int(low), int(high or low)
            if hi > 65535 or lo > 65535:
                self.p.error(loc_of(i), f"{what} {value!r} is out of range (0-65535)")
            elif lo > hi:
                self.p.error(loc_of(i), f"{what} range {value!r} starts above its end")
            else:
                out.append([lo, hi])
        out.sort()
        merged: List[List[int]] = []
        for lo, hi in out:
            if merged and lo <= merged[-1][1] + 1:
                merged[-1][1] = max(merged[-1][1], hi)
            else:
                merged.append([lo, hi])
        return merged

    def proto_entry(self, entry: Dict[str, Any], item: Item, *sub) -> Optional[Dict[str, Any]]:
        proto = entry.get("proto", "any")
        out: Dict[str, Any] = {"proto": proto, "ports": None, "sports": None, "types": None, "codes": None}
        ported = proto in ("tcp", "udp", "sctp")
        for key in ("ports", "sports"):
            if key in entry:
                if not ported:
                    self.p.error(item.loc(*sub, key), f"{key} need proto tcp, udp or sctp (proto is {proto})")
                    return None
                out[key] = self.ports(entry[key], lambda i, k=key: item.loc(*sub, k, i), "port")
        type_key = "types" if "types" in entry else "icmp_types"
        if type_key in entry:
            if proto not in ("icmp", "icmpv6"):
                self.p.error(item.loc(*sub, type_key), f"ICMP types need proto icmp or icmpv6 (proto is {proto})")
                return None
            table = ICMPV6_TYPES if proto == "icmpv6" else ICMP_TYPES
            types = []
            for i, t in enumerate(entry[type_key]):
                if isinstance(t, int):
                    types.append(t)
                elif t in table:
                    types.append(table[t])
                else:
                    hint = difflib.get_close_matches(str(t), list(table), n=1)
                    more = f"; did you mean {hint[0]!r}?" if hint else f"; known: {', '.join(table)}"
                    self.p.error(item.loc(*sub, type_key, i), f"unknown {proto} type {t!r}{more}")
            out["types"] = sorted(set(types))
        code_key = "codes" if "codes" in entry else "icmp_codes"
        if code_key in entry:
            if proto not in ("icmp", "icmpv6") or out["types"] is None:
                self.p.error(
                    item.loc(*sub, code_key), "ICMP codes need proto icmp or icmpv6 and the types they belong to"
                )
                return None
            out["codes"] = sorted(set(entry[code_key]))
        return out

    def resolve_services(self) -> None:
        for name, item in self.svc_items.items():
            entries = []
            for i, entry in enumerate(_as_list(item.value)):
                if isinstance(entry, dict):
                    sub = (i,) if isinstance(item.value, list) else ()
                    compiled = self.proto_entry(entry, item, *sub)
                    if compiled:
                        entries.append(compiled)
            self.services[name] = entries

    # ---- conditions ---------------------------------------------------------------------
    def condition(self, value: Any, item: Item, *sub) -> Optional[list]:
        if value is None:
            return None
        if isinstance(value, bool):
            return ["lit", value]
        if isinstance(value, str):
            try:
                ast = parse_expression(value, lambda name: name in self.addr_items)
            except ExprError as exc:
                self.p.error(item.loc(*sub), f"condition {value!r}: {exc} (at character {exc.column + 1})")
                return None
            self._mark_refs(ast)
            self._check_versions(ast, value, item.loc(*sub))
            self._check_facts(ast, value, item.loc(*sub))
            return ast
        if isinstance(value, dict) and len(value) == 1:
            key, inner = next(iter(value.items()))
            if key == "not":
                got = self.condition(inner, item, *sub, "not")
                return None if got is None else ["not", got]
            if key in ("all", "any") and isinstance(inner, list):
                parts = [self.condition(v, item, *sub, key, i) for i, v in enumerate(inner)]
                if any(p is None for p in parts):
                    return None
                return ["and" if key == "all" else "or", *parts]
        return None  # shape errors are reported by the schema check

    def _check_versions(self, ast: Any, text: str, loc: Loc) -> None:
        """A version literal must be a valid version in the ordering it will be compared with."""
        if not isinstance(ast, list) or not ast:
            return
        if ast[0] == "vcmp":
            # An explicit version(x, SCHEME) fixes the ordering. Otherwise the host's own scheme
            # wins at evaluation, so the literal only has to be a version in some ordering.
            schemes = [ast[4]] if ast[4] else (["dpkg", "rpm", "pep440", "semver"])
            for side in (ast[2], ast[3]):
                if side[0] == "lit" and isinstance(side[1], str):
                    errors = []
                    for scheme in schemes:
                        try:
                            validate_version(side[1], scheme)
                            break
                        except VersionError as exc:
                            errors.append(str(exc))
                    else:
                        detail = errors[0] if len(errors) == 1 else f"{side[1]!r} is not a version in any ordering"
                        self.p.error(loc, f"condition {text!r}: {detail}")
        for child in ast[1:]:
            self._check_versions(child, text, loc)

    def _check_facts(self, ast: Any, text: str, loc: Loc) -> None:
        """Warn about a fact no collector reports (the Security Status schema, shared with the module)."""
        if not isinstance(ast, list) or not ast:
            return
        if ast[0] == "fact":
            problem = fact_problem(ast[1:])
            if problem:
                self.p.warning(loc, f"condition {text!r}: {problem} (the condition will be unknown on every host)")
            return
        for child in ast[1:]:
            self._check_facts(child, text, loc)

    def _mark_refs(self, ast: Any) -> None:
        if isinstance(ast, list):
            if ast and ast[0] == "ref":
                self.used.add(ast[1])
            for child in ast[1:]:
                self._mark_refs(child)

    # ---- rules --------------------------------------------------------------------------
    def rule(self, item: Item, default_profiles: List[str]) -> Optional[Dict[str, Any]]:
        r = item.value
        if not isinstance(r, dict) or "id" not in r:
            return None
        rid = r["id"]
        if rid.startswith("baseline-"):
            self.p.error(
                item.loc("id"), f"rule id {rid!r}: ids starting with 'baseline-' are reserved for built-in rules"
            )
            return None
        if rid in self.rule_ids:
            self.p.error(
                item.loc("id"), f"rule id {rid!r} is already used at {self.rule_ids[rid]}; rule ids are unique"
            )
            return None
        self.rule_ids[rid] = item.loc("id")
        ok = True
        errors_before = len(self.p.errors)
        src = self.endpoint(r.get("from"), item, "from")
        dst = self.endpoint(r.get("to"), item, "to")
        if len(self.p.errors) > errors_before:
            ok = False
        if any(o in self.bad_objects for spec in (src, dst) if spec for o in spec["objects"]):
            ok = False  # the object's own error is reported; no second error about this rule
        protocols: Optional[List[Dict[str, Any]]] = None
        if "service" in r:
            if any(k in r for k in ("proto", "ports", "sports", "icmp_types", "icmp_codes")):
                self.p.error(item.loc("service"), "give either service or proto/ports/icmp_types, not both")
                ok = False
            protocols = []
            for i, name in enumerate(_as_list(r["service"])):
                if name in self.services:
                    self.used.add(name)
                    protocols.extend(self.services[name])
                else:
                    hint = difflib.get_close_matches(str(name), list(self.svc_items), n=1)
                    more = f"; did you mean {hint[0]!r}?" if hint else " (define it under objects.services)"
                    loc = item.loc("service", i) if isinstance(r["service"], list) else item.loc("service")
                    self.p.error(loc, f"unknown service {name!r}{more}")
                    ok = False
        elif any(k in r for k in ("proto", "ports", "sports", "icmp_types", "icmp_codes")):
            if ("ports" in r or "sports" in r or "icmp_types" in r or "icmp_codes" in r) and "proto" not in r:
                self.p.error(item.loc(), f"rule {rid}: ports and ICMP types need a proto")
                ok = False
            else:
                entry = self.proto_entry(r, item)
                protocols = [entry] if entry else None
                ok = ok and entry is not None
        fams = self.families(src) & self.families(dst)
        family = r.get("family", "any")
        if family != "any":
            fams &= {family}
        protos = {e["proto"] for e in protocols or []}
        if protos == {"icmp"}:
            fams &= {"ipv4"}
        elif protos == {"icmpv6"}:
            fams &= {"ipv6"}
        fields = r.get("fields") or {}
        if "hop_limit" in fields:
            fams &= {"ipv6"}
        if "ttl" in fields:
            fams &= {"ipv4"}
        if not fams and ok:
            self.p.error(
                item.loc(),
                f"rule {rid} can never match: its sources, destinations, protocol and fields have no address "
                "family in common (IPv4 vs IPv6)",
            )
            ok = False
        if "owner" in r and r.get("direction") != "out":
            self.p.error(item.loc("owner"), "owner matches local sockets, so it needs direction: out")
            ok = False
        if "owner" in r and not r["owner"]:
            self.p.error(item.loc("owner"), "owner needs user or group")
            ok = False
        profiles = [str(p) for p in _as_list(r.get("profiles"))] or default_profiles
        for i, name in enumerate(profiles):
            if name not in self.profile_items and name not in BUILTIN_PROFILES:
                self.p.error(item.loc("profiles", i) if "profiles" in r else item.loc(), f"unknown profile {name!r}")
                ok = False
        when = self.condition(r.get("when"), item, "when")
        if "when" in r and when is None:
            ok = False
        if not ok:
            return None
        log = r.get("log", False)
        if log is True:
            log = {"prefix": f"distsec {rid}"[:48], "rate": "5/minute"}
        elif isinstance(log, dict):
            log = {"prefix": log.get("prefix", f"distsec {rid}"[:48]), "rate": log.get("rate", "5/minute")}
        else:
            log = None
        return {
            "id": rid,
            "description": r["description"],
            "direction": r["direction"],
            "action": r["action"],
            "from": src,
            "to": dst,
            "protocols": protocols,
            "family": None if fams == {"ipv4", "ipv6"} else sorted(fams)[0],
            "interface": r.get("interface"),
            "state": sorted(r["state"]) if r.get("state") else None,
            "fields": fields or None,
            "owner": r.get("owner"),
            "log": log,
            "when": when,
            "when_source": _source(r.get("when")),
            "if_unknown": self.if_unknown(r),
            "apply_to": [str(a) for a in _as_list(r.get("apply_to"))],
            "profiles": profiles,
            "origin": self.origin(item.loc()),
            "_loc": item.loc(),
            "_apply_loc": item.loc("apply_to"),
        }

    def origin(self, loc: Loc) -> str:
        """FILE:LINE:COL with FILE relative to the root policy file, so output is the same from any cwd."""
        rel = self._rel.get(loc.file)
        if rel is None:
            rel = self._rel[loc.file] = _relative(loc.file, self.root_dir)
        return f"{rel}:{loc.line}:{loc.col}"

    def if_unknown(self, node: Dict[str, Any]) -> bool:
        return str(node.get("if_unknown", self.default_if_unknown)).lower() == "true"

    default_if_unknown: Any = False
    default_scheme: Optional[str] = None


def _relative(file: str, root_dir: Optional[str]) -> str:
    if root_dir is None:  # a document built in code: its origin name as given
        return file
    return os.path.relpath(os.path.abspath(file), root_dir).replace(os.sep, "/")


def _source(value: Any) -> Optional[str]:
    if value is None:
        return None
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def _check_condition(kind: str, spec: Any) -> Tuple[Optional[str], Any]:
    """A typed check -> (expression text, or None when spec is already a condition)."""
    if kind == "package":
        name = json.dumps(spec["name"])
        path = f"packages[{name}]"
        if spec.get("absent"):
            return f"not exists({path})", None
        parts = [f"exists({path})"]
        if "at_least" in spec:
            parts.append(f"{path}.version >= {json.dumps(spec['at_least'])}")
        if "below" in spec:
            parts.append(f"{path}.version < {json.dumps(spec['below'])}")
        return " and ".join(parts), None
    if kind == "service":
        unit = json.dumps(spec["name"])
        path = f"services[{unit}]"
        state = spec.get("state", "running")
        if state == "absent":
            parts = [f"not exists({path})"]
        elif state == "running":
            parts = [f"{path}.active == true"]
        else:
            parts = [f"(not exists({path}) or {path}.active == false)"]
        if "enabled" in spec:
            parts.append(f"{path}.enabled == {'true' if spec['enabled'] else 'false'}")
        return " and ".join(parts), None
    if kind == "sysctl":
        return f"sysctl[{json.dumps(spec['key'])}] == {json.dumps(str(spec['value']))}", None
    if kind == "antivirus":
        return f"age(antivirus.signatures_updated) <= {spec['max_age']}", None
    if kind == "certificate":
        expr = "domain.certificate.valid == true and domain.certificate.revoked == false"
        if "min_remaining" in spec:
            expr += f" and until(domain.certificate.not_after) >= {spec['min_remaining']}"
        return expr, None
    if kind == "listening":
        ports = spec["allowed_ports"]
        return None, ("listening", ports)
    return None, spec


def load_policy(paths: List[str]) -> Policy:
    """Read, check and resolve a policy. Raises PslError listing every problem."""
    problems = Problems()
    docs = load_documents(list(paths), problems)
    return _build_policy(docs, problems, os.path.dirname(os.path.abspath(paths[0])))


class _PlainDumper(yaml.SafeDumper):
    """YAML without anchors: PSL refuses them, and a value used twice must be written twice."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def load_policy_document(document: Dict[str, Any], origin: str = "<document>") -> Policy:
    """A policy built in code (one PSL document as a mapping), checked like a file named `origin`.

    The mapping goes through the same YAML reader as a file, so every check and limit applies and
    problems are located as `ORIGIN:LINE:COL` in its YAML text. `origin` is kept as given in
    `sources` and rule origins (use a name in angle brackets, e.g. `<default-restrictive>`).
    No include is followed. Raises PslError listing every problem.
    """
    problems = Problems()
    if "include" in document:
        problems.error(Loc(origin, 1, 1), "a policy built in code cannot include files")
        raise PslError(problems)
    text = yaml.dump(dict(document), Dumper=_PlainDumper, sort_keys=False, allow_unicode=True)
    doc = parse_text(text, origin, problems)
    return _build_policy([doc] if doc is not None else [], problems, None)


def _build_policy(docs: List[Document], problems: Problems, root_dir: Optional[str]) -> Policy:
    schema = policy_schema()
    valid_docs = []
    for doc in docs:
        if doc.data.get("psl") != 1:
            if "psl" not in doc.data:
                problems.error(doc.loc(()), "not a PSL file: it must start with 'psl: 1'")
            else:
                problems.error(doc.loc(("psl",)), f"unsupported PSL version {doc.data['psl']!r}; this is PSL 1")
            continue
        schema_mod.check_document(doc, problems, schema)  # reports, and prunes broken items
        valid_docs.append(doc)
    if not valid_docs:
        raise PslError(problems)

    b = _Builder(valid_docs, problems, root_dir)
    domains = [(d, d.data["domain"]) for d in valid_docs if "domain" in d.data]
    if not domains:
        problems.error(
            valid_docs[-1].loc(()) if valid_docs else None, "no file names the Security Domain: add 'domain: NAME'"
        )
        raise PslError(problems)
    domain = domains[-1][1]
    for doc, name in domains:
        if name != domain:
            problems.error(doc.loc(("domain",)), f"domain {name!r} differs from {domain!r} in {domains[-1][0].file}")

    b.merge_named("objects", "addresses", b.addr_items, "address object")
    b.merge_named("objects", "services", b.svc_items, "service")
    b.merge_named("objects", "groups", b.group_items, "group")
    b.merge_named("profiles", None, b.profile_items, "profile")
    for name, item in b.addr_items.items():
        if name == "any":
            problems.error(item.key_loc(), "'any' is reserved; choose another name")
    settings_items = {
        k: b.single(k) for k in ("defaults", "management", "baseline", "default_profile", "expired_profile", "metadata")
    }
    mech_items = {k: b.single(k) for k in MECHANISMS}
    defaults = settings_items["defaults"].value if settings_items["defaults"] else {}
    b.default_if_unknown = defaults.get("if_unknown", False)
    b.default_scheme = defaults.get("version_scheme")

    meta = settings_items["metadata"]
    for key in ("issued", "expires"):
        if meta and key in meta.value and parse_time(meta.value[key]) is None:
            problems.error(
                meta.loc(key), f"metadata.{key}: {meta.value[key]!r} is not an ISO 8601 time (2027-01-31T00:00:00Z)"
            )
    b.resolve_addresses()
    b.resolve_services()
    known_profiles = set(BUILTIN_PROFILES) | set(b.profile_items)

    def profile_ref(name: Any, loc: Loc) -> None:
        if name not in known_profiles:
            hint = difflib.get_close_matches(str(name), sorted(known_profiles), n=1)
            more = f"; did you mean {hint[0]!r}?" if hint else f"; profiles: {', '.join(sorted(known_profiles))}"
            problems.error(loc, f"unknown profile {name!r}{more}")

    # profiles (inherit, baseline)
    for name, item in b.profile_items.items():
        parent = item.value.get("inherit")
        seen = [name]
        while parent is not None:
            if parent not in known_profiles:
                profile_ref(parent, item.loc("inherit"))
                break
            if parent in seen:
                problems.error(
                    item.loc("inherit"), f"profiles inherit from each other in a cycle: {' -> '.join([*seen, parent])}"
                )
                break
            seen.append(parent)
            parent = b.profile_items[parent].value.get("inherit") if parent in b.profile_items else None
    for key in ("default_profile", "expired_profile"):
        if settings_items[key]:
            profile_ref(settings_items[key].value, settings_items[key].loc())
    for item in [settings_items["baseline"]] + [
        Item(i.doc, (*i.path, "baseline"), i.value["baseline"])
        for i in b.profile_items.values()
        if "baseline" in i.value
    ]:
        risky = item and (item.value.get("icmpv6_essentials") is False or item.value.get("management") is False)
        if risky and not item.value.get("acknowledge_risk"):
            problems.error(
                item.loc(),
                "turning off icmpv6_essentials or management can cut IPv6 or lock admins out; "
                "say why in acknowledge_risk to confirm you mean it",
            )

    # rules: top level, profile-level, exception additions
    rules: List[Dict[str, Any]] = []
    for item in b.merge_list("rules"):
        compiled = b.rule(item, ["home"])
        if compiled:
            rules.append(compiled)
    profile_rules: Dict[str, List[Dict[str, Any]]] = {}
    for name, item in b.profile_items.items():
        for i, r in enumerate(item.value.get("rules", [])):
            if r is None:
                continue
            compiled = b.rule(Item(item.doc, (*item.path, "rules", i), r), [name])
            if compiled:
                if "profiles" in r:
                    problems.error(
                        item.loc("rules", i, "profiles"),
                        "a rule inside a profile belongs to that profile; remove 'profiles'",
                    )
                compiled["profiles"] = [name]
                profile_rules.setdefault(name, []).append(compiled)
    exceptions = []
    for item in b.merge_list("exceptions"):
        e = item.value
        added = []
        for i, r in enumerate(e.get("add_rules", [])):
            compiled = b.rule(Item(item.doc, (*item.path, "add_rules", i), r), ["home"])
            if compiled:
                added.append(compiled)
        exceptions.append({
            "id": e["id"], "apply_to": [str(a) for a in _as_list(e["apply_to"])], "add_rules": added,
            "remove_rules": e.get("remove_rules", []), "remove_checks": e.get("remove_checks", []), "item": item,
        })  # fmt: skip

    # management path
    mgmt = settings_items["management"]
    mgmt_rule_src = Item(mgmt.doc, mgmt.path, mgmt.value) if mgmt else None
    management = {
        "from": None,
        "protocols": [{"proto": "tcp", "ports": [[22, 22]], "sports": None, "types": None, "codes": None}],
    }
    if mgmt_rule_src:
        management["from"] = b.endpoint(mgmt.value.get("from"), mgmt, "from")
        if "service" in mgmt.value:
            protos = []
            for i, name in enumerate(_as_list(mgmt.value["service"])):
                if name in b.services:
                    b.used.add(name)
                    protos.extend(b.services[name])
                else:
                    problems.error(
                        mgmt.loc("service", i) if isinstance(mgmt.value["service"], list) else mgmt.loc("service"),
                        f"unknown service {name!r}",
                    )
            management["protocols"] = protos

    # checks
    checks = []
    check_ids: Dict[str, Loc] = {}
    kinds = list(schema_mod.CHECK_KINDS)
    implied = [
        Item(mech.doc, (*mech.path, *sub), check)
        for name, mech in mech_items.items()
        if mech is not None and isinstance(mech.value, dict)
        for sub, check in MECHANISMS[name].checks(mech.value)
    ]
    for item in b.merge_list("checks") + implied:
        c = item.value
        if c["id"] in check_ids:
            problems.error(item.loc("id"), f"check id {c['id']!r} is already used at {check_ids[c['id']]}")
            continue
        check_ids[c["id"]] = item.loc("id")
        given = [k for k in kinds if k in c]
        if len(given) != 1:
            problems.error(item.loc(), f"check {c['id']}: give exactly one of {', '.join(kinds)} (found {len(given)})")
            continue
        kind = given[0]
        on_fail = c.get("on_fail", "isolated")
        profile_ref(on_fail, item.loc("on_fail") if "on_fail" in c else item.loc())
        text, raw = _check_condition(kind, c[kind])
        if text is not None:
            ast = b.condition(text, item, kind)
        elif isinstance(raw, tuple) and raw[0] == "listening":
            allowed = b.ports(raw[1], lambda i, it=item, k=kind: it.loc(k, "allowed_ports", i), "port") or []
            ast = ["call", "listening_only", ["lit", allowed]]
        else:
            ast = b.condition(raw, item, kind)
        if ast is None:
            continue
        checks.append({
            "id": c["id"], "description": c["description"], "severity": c.get("severity", "medium"),
            "on_fail": on_fail, "require": ast, "require_source": text or _source(raw), "if_unknown": b.if_unknown(c),
            "apply_to": [str(a) for a in _as_list(c.get("apply_to"))], "origin": b.origin(item.loc()), "_loc": item.loc(),
        })  # fmt: skip

    # profile selection
    select = []
    for item in b.merge_list("select"):
        s = item.value
        profile_ref(s["profile"], item.loc("profile"))
        ast = b.condition(s["when"], item, "when")
        if ast is not None:
            select.append({
                "profile": s["profile"], "when": ast, "if_unknown": b.if_unknown(s),
                "description": s.get("description", ""), "source": _source(s["when"]),
            })  # fmt: skip

    # references from exceptions and apply_to
    all_rule_ids = set(b.rule_ids)
    for e in exceptions:
        item = e["item"]
        for i, rid in enumerate(e["remove_rules"]):
            if rid not in all_rule_ids:
                problems.error(item.loc("remove_rules", i), f"unknown rule id {rid!r}")
        for i, cid in enumerate(e["remove_checks"]):
            if cid not in check_ids:
                problems.error(item.loc("remove_checks", i), f"unknown check id {cid!r}")

    def check_targets(targets: List[str], loc: Loc) -> None:
        for t in targets:
            if t not in b.group_items:
                hint = difflib.get_close_matches(t, list(b.group_items), n=1)
                if hint:
                    problems.warning(
                        loc, f"{t!r} is not a group, so it is taken as a host name; did you mean the group {hint[0]!r}?"
                    )

    for r in rules + [r for rs in profile_rules.values() for r in rs]:
        check_targets(r["apply_to"], r["_apply_loc"])
    for e in exceptions:
        check_targets(e["apply_to"], e["item"].loc("apply_to"))
    for c in checks:
        check_targets(c["apply_to"], c["_loc"])

    # mechanisms
    mechanisms: Dict[str, Any] = {}
    refs = {
        "group": lambda n: n in b.group_items,
        "address": lambda n: n in b.addr_items,
        "service": lambda n: n in b.svc_items,
        "profile": lambda n: n in known_profiles,
    }
    for name, item in mech_items.items():
        if item is None:
            continue
        MECHANISMS[name].check(item.value, lambda sub, msg, it=item: problems.error(it.loc(*sub), msg), refs)
        for sub, value in _walk(item.value):
            if isinstance(value, str) and sub and "peers" in sub and value in b.addr_items:
                b.used.add(value)
        mechanisms[name] = MECHANISMS[name].compile(item.value)
        for svc in _as_list(item.value.get("connections", [])) if isinstance(item.value, dict) else []:
            for s in _as_list(svc.get("services")):
                b.used.add(s)

    # unused objects
    for name, item in b.addr_items.items():
        if name not in b.used and name not in {r[0] for r in REMEDIATION}:
            problems.warning(item.key_loc(), f"address object {name!r} is never used")
    for name, item in b.svc_items.items():
        if name not in b.used:
            problems.warning(item.key_loc(), f"service {name!r} is never used")

    baseline = settings_items["baseline"].value if settings_items["baseline"] else {}
    profiles = {}
    for name in sorted(known_profiles):
        base = copy.deepcopy(
            BUILTIN_PROFILES.get(
                name, {"description": "", "rank": 5, "default": {"in": "drop", "out": "accept", "forward": "drop"}}
            )
        )
        item = b.profile_items.get(name)
        spec = item.value if item else {}
        profiles[name] = {
            "description": spec.get("description", base["description"]),
            "rank": spec.get("rank", base["rank"]),
            "default": {**base["default"], **spec.get("default", {})},
            "baseline": {**{"loopback": True, "established": True, "icmpv6_essentials": True, "management": True}, **baseline, **spec.get("baseline", {})},
            "inherit": spec.get("inherit"),
            "rules": profile_rules.get(name, []),
        }  # fmt: skip

    if problems.errors:
        raise PslError(problems)

    restricted_in_use = any(c["on_fail"] in RESTRICTED for c in checks) or any(
        s["profile"] in RESTRICTED for s in select
    )
    if restricted_in_use:
        for obj, _protos, what in REMEDIATION:
            if obj not in b.addr_items:
                problems.warning(
                    None, f"no address object {obj!r}: hosts in the isolated/quarantine profiles cannot reach {what}"
                )

    settings = {
        "defaults": defaults,
        "metadata": settings_items["metadata"].value if settings_items["metadata"] else {},
        "default_profile": settings_items["default_profile"].value if settings_items["default_profile"] else "home",
        "expired_profile": settings_items["expired_profile"].value if settings_items["expired_profile"] else "foreign",
        "management": management,
        "description": next((d.data["description"] for d in reversed(valid_docs) if "description" in d.data), ""),
    }
    policy = Policy(
        domain=domain,
        files=[_relative(d.file, b.root_dir) for d in valid_docs],
        docs=valid_docs,
        addresses={k: {f: [str(n) for n in v[f]] for f in ("ipv4", "ipv6")} for k, v in b.addresses.items()},
        services=b.services,
        groups={
            k: {"hosts": v.value.get("hosts", []), "inventory_groups": v.value.get("inventory_groups", [])}
            for k, v in b.group_items.items()
        },
        rules=rules,
        profiles=profiles,
        checks=checks,
        select=select,
        exceptions=exceptions,
        mechanisms=mechanisms,
        tests=b.merge_list("tests"),
        settings=settings,
        problems=problems,
    )
    _shadow_warnings(policy, problems)
    return policy


def _walk(value: Any, path: Tuple = ()) -> Iterable[Tuple[Tuple, Any]]:
    yield path, value
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _walk(v, (*path, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _walk(v, (*path, i))


# ---- host targeting and compilation ---------------------------------------------------------


def member_groups(policy: Policy, host: Optional[str], inventory_groups: List[str]) -> List[str]:
    """The PSL groups a host belongs to (by host name or inventory group)."""
    out = []
    inv = set(inventory_groups)
    for name, g in policy.groups.items():
        if (
            (host is not None and host in g["hosts"])
            or inv & set(g["inventory_groups"])
            or (not g["hosts"] and not g["inventory_groups"] and name in inv)
        ):
            out.append(name)
    return sorted(out)


def _applies(targets: List[str], host: Optional[str], groups: List[str]) -> bool:
    return not targets or any(t == host or t in groups for t in targets)


def _baseline_rules(policy: Policy, name: str, profile: Dict[str, Any]) -> List[Dict[str, Any]]:
    base = profile["baseline"]
    origin = "<built-in baseline>"
    out = []

    def rule(rid, description, direction, **kw):
        r = {"id": rid, "description": description, "direction": direction, "action": "accept", "from": None, "to": None,
             "protocols": None, "family": None, "interface": None, "state": None, "fields": None, "owner": None,
             "log": None, "when": None, "when_source": None, "if_unknown": False, "apply_to": [], "profiles": [name],
             "origin": origin}  # fmt: skip
        r.update(kw)
        out.append(r)

    if base["loopback"]:
        rule("baseline-loopback-in", "Loopback traffic", "in", interface="lo")
        rule("baseline-loopback-out", "Loopback traffic", "out", interface="lo")
    if base["established"]:
        for d in ("in", "out"):
            rule(f"baseline-established-{d}", "Replies to allowed connections", d, state=["established", "related"])
    if base["icmpv6_essentials"]:
        types = sorted(ICMPV6_TYPES[t] for t in ICMPV6_ESSENTIAL)
        for d in ("in", "out"):
            rule(f"baseline-icmpv6-{d}", "ICMPv6 that IPv6 needs (RFC 4890: ND, PMTUD, errors)", d, family="ipv6",
                 protocols=[{"proto": "icmpv6", "ports": None, "sports": None, "types": types, "codes": None}])  # fmt: skip
    if base["management"]:
        mgmt = policy.settings["management"]
        rule("baseline-management-in", "Management access (keeps admins from being locked out)", "in",
             **{"from": mgmt["from"], "protocols": mgmt["protocols"]})  # fmt: skip
    if name in RESTRICTED:
        for obj, protocols, what in REMEDIATION:
            if obj in policy.addresses:
                protos = (
                    None
                    if protocols is None
                    else [
                        {"proto": p, "ports": ports, "sports": None, "types": None, "codes": None}
                        for p, ports in protocols
                    ]
                )
                rule(f"baseline-remediation-{obj.replace('_', '-')}", f"Reach {what} while restricted", "out",
                     to={"objects": [obj], "literal": {"ipv4": [], "ipv6": []}}, protocols=protos)  # fmt: skip
    return out


def compile_policy(policy: Policy, *, host: Optional[str] = None, groups: Optional[List[str]] = None) -> Dict[str, Any]:
    """The canonical compiled policy for one host (or the domain default when host is None)."""
    inv_groups = sorted(set(groups or []))
    psl_groups = member_groups(policy, host, inv_groups)
    targets = psl_groups + inv_groups
    mine = [e for e in policy.exceptions if _applies(e["apply_to"], host, targets)]
    removed_rules = {r for e in mine for r in e["remove_rules"]}
    removed_checks = {c for e in mine for c in e["remove_checks"]}

    def keep(rule: Dict[str, Any]) -> bool:
        return rule["id"] not in removed_rules and _applies(rule["apply_to"], host, targets)

    profiles_out: Dict[str, Any] = {}
    for name, prof in policy.profiles.items():
        chain = [name]
        while policy.profiles[chain[-1]]["inherit"]:
            chain.append(policy.profiles[chain[-1]]["inherit"])
        body: List[Dict[str, Any]] = []
        for e in mine:
            body.extend(r for r in e["add_rules"] if set(chain) & set(r["profiles"]))
        for pname in reversed(chain):
            body.extend(r for r in policy.rules if pname in r["profiles"])
            body.extend(policy.profiles[pname]["rules"])
        seen_ids: Set[str] = set()
        unique = []
        for r in body:  # a rule listed in a profile and in one it inherits from appears once
            if r["id"] not in seen_ids:
                seen_ids.add(r["id"])
                unique.append(r)
        body = [_public_rule(r) for r in unique if keep(r)]
        profiles_out[name] = {
            "description": prof["description"],
            "rank": prof["rank"],
            "default": prof["default"],
            "rules": [_public_rule(r) for r in _baseline_rules(policy, name, prof)] + body,
        }
    used = set()
    for prof in profiles_out.values():
        for r in prof["rules"]:
            for end in ("from", "to"):
                if r[end]:
                    used.update(r[end]["objects"])
            _collect_refs(r["when"], used)
    checks = [{k: v for k, v in c.items() if k != "apply_to" and not k.startswith("_")} for c in policy.checks
              if c["id"] not in removed_checks and _applies(c["apply_to"], host, targets)]  # fmt: skip
    for c in checks:
        _collect_refs(c["require"], used)
    for s in policy.select:
        _collect_refs(s["when"], used)
    for conn in policy.mechanisms.get("ipsec", {}).get("connections", []):
        used.update(p for p in _as_list(conn.get("peers")) if p in policy.addresses)
    compiled = {
        "format": FORMAT,
        "domain": policy.domain,
        "description": policy.settings["description"],
        "metadata": policy.settings["metadata"],
        "target": {"host": host, "inventory_groups": inv_groups, "groups": psl_groups},
        "defaults": policy.settings["defaults"],
        "objects": {"addresses": {k: v for k, v in sorted(policy.addresses.items()) if k in used}},
        "checks": checks,
        "select": policy.select,
        "default_profile": policy.settings["default_profile"],
        "expired_profile": policy.settings["expired_profile"],
        "profiles": profiles_out,
        "mechanisms": policy.mechanisms,
        "sources": policy.files,
    }
    compiled["hash"] = "sha256:" + hashlib.sha256(canonical_json(compiled).encode("utf-8")).hexdigest()
    return compiled


def _collect_refs(ast: Any, used: Set[str]) -> None:
    if isinstance(ast, list) and ast:
        if ast[0] == "ref":
            used.add(ast[1])
        for child in ast[1:]:
            _collect_refs(child, used)


def _public_rule(rule: Dict[str, Any]) -> Dict[str, Any]:
    return {k: v for k, v in rule.items() if k not in ("apply_to", "profiles") and not k.startswith("_")}


# ---- shadowed rules -------------------------------------------------------------------------


def _nets_of(spec: Optional[Dict[str, Any]], addresses, cache: Dict[str, list]) -> Optional[list]:
    if spec is None:
        return None
    out = [ipaddress.ip_network(n) for fam in ("ipv4", "ipv6") for n in spec["literal"][fam]]
    for name in spec["objects"]:
        if name not in cache:
            cache[name] = [
                ipaddress.ip_network(n) for fam in ("ipv4", "ipv6") for n in addresses.get(name, {}).get(fam, [])
            ]
        out.extend(cache[name])
    return out


def _covers_nets(outer: Optional[list], inner: Optional[list]) -> bool:
    if outer is None:
        return True
    if inner is None:
        return False
    return all(any(n.version == o.version and n.subnet_of(o) for o in outer) for n in inner)


def _covers_ranges(a, b) -> bool:
    if a is None:
        return True
    if b is None:
        return False
    return all(any(alo <= lo and hi <= ahi for alo, ahi in a) for lo, hi in b)


def _covers_protocols(a, b) -> bool:
    if a is None:
        return True
    if b is None:
        return False
    for eb in b:
        if not any(
            (ea["proto"] in ("any", eb["proto"]))
            and _covers_ranges(ea["ports"], eb["ports"])
            and _covers_ranges(ea["sports"], eb["sports"])
            and (ea["types"] is None or (eb["types"] is not None and set(eb["types"]) <= set(ea["types"])))
            and (ea.get("codes") is None or (eb.get("codes") is not None and set(eb["codes"]) <= set(ea["codes"])))
            for ea in a
        ):
            return False
    return True


MAX_SHADOW_COMPARISONS = 100_000


def _shadow_warnings(policy: Policy, problems: Problems) -> None:
    """Warn about a rule that an earlier unconditional rule always decides first.

    Each rule is compared with the earlier rules that could cover it: those with no port or a
    port range, and those with the same single port. The work is bounded: a policy with very
    many overlapping range rules gets a warning that the analysis stopped early.
    """
    cache: Dict[str, list] = {}
    budget = MAX_SHADOW_COMPARISONS
    for name in policy.profiles:
        rules = [r for r in policy.rules if name in r["profiles"]] + policy.profiles[name]["rules"]
        broad: Dict[str, List[Tuple[Dict[str, Any], Any, Any]]] = {}
        by_port: Dict[Tuple[str, int], List[Tuple[Dict[str, Any], Any, Any]]] = {}
        for r in rules:
            key = r["direction"]
            candidates = list(broad.get(key, []))
            for entry in r["protocols"] or []:
                for lo, hi in entry["ports"] or []:
                    if lo == hi:
                        candidates.extend(by_port.get((key, lo), []))
            if budget - len(candidates) < 0:
                problems.warning(
                    r.get("_loc"),
                    f"shadowed-rule analysis stopped at rule {r['id']} after {MAX_SHADOW_COMPARISONS} comparisons "
                    "(many overlapping port-range rules); the rules from here on were not checked",
                )
                return
            budget -= len(candidates)
            mine = None
            for earlier, e_src, e_dst in candidates:
                if not (
                    earlier["apply_to"] == [] or (r["apply_to"] and set(r["apply_to"]) <= set(earlier["apply_to"]))
                ):
                    continue
                if not _qualifiers_cover(earlier, r) or not _covers_protocols(earlier["protocols"], r["protocols"]):
                    continue
                if mine is None:
                    mine = (_nets_of(r["from"], policy.addresses, cache), _nets_of(r["to"], policy.addresses, cache))
                if _covers_nets(e_src, mine[0]) and _covers_nets(e_dst, mine[1]):
                    verb = "unreachable" if earlier["action"] == r["action"] else "shadowed"
                    problems.warning(
                        r.get("_loc"),
                        f"rule {r['id']} is {verb} in profile {name}: rule {earlier['id']} ({earlier['origin']}) "
                        f"matches all of its traffic first",
                    )
                    break
            if r["when"] is not None:
                continue
            entry_item = (r, _nets_of(r["from"], policy.addresses, cache), _nets_of(r["to"], policy.addresses, cache))
            single = [lo for e in (r["protocols"] or []) for lo, hi in (e["ports"] or []) if lo == hi]
            wide = r["protocols"] is None or any(
                e["ports"] is None or any(lo != hi for lo, hi in e["ports"]) for e in r["protocols"]
            )
            if wide:
                broad.setdefault(key, []).append(entry_item)
            for port in single:
                by_port.setdefault((key, port), []).append(entry_item)


def _qualifiers_cover(a: Dict[str, Any], b: Dict[str, Any]) -> bool:
    if a["when"] is not None:
        return False
    for key in ("interface", "owner", "fields"):
        if a[key] is not None and a[key] != b[key]:
            return False
    if a["state"] is not None and (b["state"] is None or not set(b["state"]) <= set(a["state"])):
        return False
    return a["family"] is None or a["family"] == b["family"]
