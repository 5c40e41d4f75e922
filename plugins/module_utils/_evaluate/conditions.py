# PRIVATE: evaluate PSL condition ASTs against a host's Security Status (stdlib only).
#
# Three-valued: a condition is true, false or UNKNOWN (a fact the host does not report, a
# value of the wrong type). and/or/not follow Kleene logic; the author's `if_unknown`
# decides what UNKNOWN means at the top. Every unknown is recorded with its reason.
from __future__ import annotations

import datetime
import ipaddress
from typing import Any, Dict, List, Optional

from .versions import VersionError, compare

__all__ = ["UNKNOWN", "Evaluator", "parse_time"]


class _Unknown:
    def __repr__(self) -> str:
        return "UNKNOWN"

    def __bool__(self) -> bool:
        raise TypeError("UNKNOWN has no truth value; use Evaluator.truth()")


UNKNOWN: Any = _Unknown()
_MISSING = object()


def parse_time(value: Any) -> Optional[float]:
    """Epoch seconds from a number or an ISO 8601 string (naive times are UTC)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        try:
            return float(value)
        except OverflowError:
            return None
    if isinstance(value, str):
        text = value.strip().replace("Z", "+00:00")
        try:
            moment = datetime.datetime.fromisoformat(text)
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=datetime.timezone.utc)
            return moment.timestamp()
        except (ValueError, OverflowError, OSError):
            return None
    return None


class Evaluator:
    def __init__(
        self,
        status: Dict[str, Any],
        addresses: Dict[str, Dict[str, List[str]]],
        *,
        now: float,
        default_scheme: Optional[str] = None,
    ) -> None:
        self.status = status
        self.addresses = addresses
        self.now = now
        self.default_scheme = default_scheme
        self.unknowns: List[str] = []
        self._nets: Dict[str, list] = {}

    # ---- values -----------------------------------------------------------------------
    def fact(self, path: List[Any]) -> Any:
        value: Any = self.status
        for part in path:
            if (isinstance(value, dict) and part in value) or (
                isinstance(value, list) and isinstance(part, int) and -len(value) <= part < len(value)
            ):
                value = value[part]
            else:
                return _MISSING
        return value

    def _unknown(self, reason: str) -> Any:
        if reason not in self.unknowns:
            self.unknowns.append(reason)
        return UNKNOWN

    def value(self, node: list) -> Any:
        kind = node[0]
        if kind == "lit":
            return node[1]
        if kind == "dur":
            return node[1]
        if kind == "list":
            return [self.value(n) for n in node[1:]]
        if kind == "ref":
            return ("ref", node[1])
        if kind == "fact":
            found = self.fact(node[1:])
            if found is _MISSING:
                return self._unknown("not reported: " + _dotted(node[1:]))
            return found
        if kind == "call":
            return self.call(node[1], node[2:])
        return self.truth3(node)

    def call(self, name: str, args: List[list]) -> Any:
        if name == "exists":
            return self.fact(args[0][1:]) is not _MISSING
        if name == "version":
            return self.value(args[0])
        if name == "listening_only":
            return self.listening_only(args[0][1])
        value = self.value(args[0])
        if value is UNKNOWN:
            return UNKNOWN
        if name == "age":
            moment = parse_time(value)
            if moment is None:
                return self._unknown(f"age(): not a time: {value!r}")
            return self.now - moment
        if name == "until":
            moment = parse_time(value)
            if moment is None:
                return self._unknown(f"until(): not a time: {value!r}")
            return moment - self.now
        if name == "len":
            return len(value) if isinstance(value, (list, dict, str)) else self._unknown(f"len() of {value!r}")
        if name == "lower":
            return value.lower() if isinstance(value, str) else self._unknown(f"lower() of {value!r}")
        if name in ("any_in", "all_in"):
            items = value if isinstance(value, list) else [value]
            container = self.value(args[1])
            if container is UNKNOWN:
                return UNKNOWN
            results = [self.member(item, container) for item in items]
            if name == "any_in":
                return _or(results)
            return _and(results)
        return self._unknown(f"unknown function {name}()")

    def listening_only(self, allowed: List[List[int]]) -> Any:
        sockets = self.fact(["sockets"])
        if not isinstance(sockets, list):
            return self._unknown("not reported: sockets")
        for sock in sockets:
            if isinstance(sock, dict) and _loopback(sock.get("address")):
                continue  # reachable from this host only
            port = sock.get("port") if isinstance(sock, dict) else None
            if not isinstance(port, int):
                return self._unknown(f"socket without a port: {sock!r}")
            if not any(lo <= port <= hi for lo, hi in allowed):
                return False
        return True

    def networks(self, name: str) -> list:
        if name not in self._nets:
            sets = self.addresses.get(name, {})
            self._nets[name] = [ipaddress.ip_network(n) for fam in ("ipv4", "ipv6") for n in sets.get(fam, [])]
        return self._nets[name]

    def member(self, item: Any, container: Any) -> Any:
        if item is UNKNOWN:
            return UNKNOWN
        if isinstance(container, tuple) and container[:1] == ("ref",):
            try:
                address = ipaddress.ip_interface(str(item)).ip if "/" in str(item) else ipaddress.ip_address(str(item))
            except ValueError:
                return self._unknown(f"not an IP address: {item!r}")
            return any(address.version == n.version and address in n for n in self.networks(container[1]))
        if isinstance(container, list):
            return item in container
        if isinstance(container, dict):
            return item in container
        if isinstance(container, str) and isinstance(item, str):
            return item in container
        return self._unknown(f"'in' needs a list, a mapping or an @address object, got {container!r}")

    # ---- truth --------------------------------------------------------------------------
    def truth3(self, node: list) -> Any:
        kind = node[0]
        if kind == "and":
            return _and([self.truth3(n) for n in node[1:]])
        if kind == "or":
            return _or([self.truth3(n) for n in node[1:]])
        if kind == "not":
            inner = self.truth3(node[1])
            return UNKNOWN if inner is UNKNOWN else not inner
        if kind == "in":
            return self.member(self.value(node[1]), self.value(node[2]))
        if kind == "cmp":
            return self.compare(node[1], self.value(node[2]), self.value(node[3]))
        if kind == "vcmp":
            return self.version_compare(node)
        value = self.value(node)
        if value is UNKNOWN:
            return UNKNOWN
        if isinstance(value, bool):
            return value
        return self._unknown(f"not true/false: {value!r}")

    def compare(self, op: str, left: Any, right: Any) -> Any:
        if left is UNKNOWN or right is UNKNOWN:
            return UNKNOWN
        if op == "==":
            return left == right
        if op == "!=":
            return left != right
        numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (left, right))
        if not numeric:
            return self._unknown(f"cannot order {left!r} and {right!r}")
        return {"<": left < right, "<=": left <= right, ">": left > right, ">=": left >= right}[op]

    def version_compare(self, node: list) -> Any:
        op, left_node, right_node, scheme = node[1:]
        left, right = self.value(left_node), self.value(right_node)
        if left is UNKNOWN or right is UNKNOWN:
            return UNKNOWN
        scheme = scheme or self.scheme_for(left_node) or self.scheme_for(right_node)
        if not scheme:
            return self._unknown("no version scheme: the host reports no platform.version_scheme")
        try:
            result = compare(str(left), str(right), scheme)
        except VersionError as exc:
            return self._unknown(str(exc))
        return {
            "==": result == 0,
            "!=": result != 0,
            "<": result < 0,
            "<=": result <= 0,
            ">": result > 0,
            ">=": result >= 0,
        }[op]

    def scheme_for(self, node: list) -> Optional[str]:
        if node[0] != "fact":
            return None
        path = node[1:]
        if len(path) >= 3 and path[0] == "packages":
            own = self.fact([*path[:2], "scheme"])
            if isinstance(own, str):
                return own
        platform = self.fact(["platform", "version_scheme"])
        if isinstance(platform, str):
            return platform
        return self.default_scheme

    def truth(self, node: Optional[list], if_unknown: bool = False) -> bool:
        """The condition's final answer; an unknown result becomes `if_unknown`."""
        if node is None:
            return True
        result = self.truth3(node)
        return if_unknown if result is UNKNOWN else bool(result)


def _loopback(address: Any) -> bool:
    try:
        return ipaddress.ip_address(str(address).split("%", maxsplit=1)[0]).is_loopback
    except ValueError:
        return False


def _and(values: List[Any]) -> Any:
    if any(v is False for v in values):
        return False
    if any(v is UNKNOWN for v in values):
        return UNKNOWN
    return all(bool(v) if not isinstance(v, bool) else v for v in values)


def _or(values: List[Any]) -> Any:
    if any(v is True for v in values):
        return True
    if any(v is UNKNOWN for v in values):
        return UNKNOWN
    return False


def _dotted(path: List[Any]) -> str:
    out = str(path[0])
    for part in path[1:]:
        out += f"[{part}]" if isinstance(part, int) else (f"[{part!r}]" if "." in str(part) else f".{part}")
    return out
