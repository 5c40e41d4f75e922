# PRIVATE: policy sections for mechanisms other than the firewall, behind one interface.
#
# Seed 000 4.3.1: "the PSL must be able to specify security policies for new mechanisms".
# A mechanism declares its schema (merged into the PSL JSON Schema), checks its section
# semantically and compiles it to JSON for the host. Register a new one in MECHANISMS; a
# section no mechanism claims is an error, never ignored.
from __future__ import annotations

import re
from typing import Any, Callable, Dict, List, Tuple

from .schema import DURATION_PATTERN, ID_PATTERN, _list, _obj, _str, _str_or_list

__all__ = ["MECHANISMS", "Mechanism"]

Report = Callable[[Tuple, str], None]  # (path inside the section, message)

# RFC 8247 / strongSwan recommendations: never negotiate these.
WEAK_ALGORITHMS = re.compile(
    r"(^|[-_])(des|3des|des3|cast\d*|blowfish|md5|sha1|modp(768|1024|1536)|ecp192|null)($|[-_])", re.IGNORECASE
)
_DURATION = re.compile(DURATION_PATTERN)


class Mechanism:
    """One section: `name:` at the top level of a PSL file."""

    name = ""
    description = ""

    def schema(self) -> dict:
        raise NotImplementedError

    def check(self, data: Any, report: Report, refs: Dict[str, Callable[[str], bool]]) -> None:
        """Semantic checks beyond the schema. `refs` tells which names exist."""

    def compile(self, data: Any) -> Any:
        return data


class Ipsec(Mechanism):
    name = "ipsec"
    description = "IPsec (IKEv2) between hosts and groups"

    def schema(self) -> dict:
        return _obj(
            {
                "connections": _list(
                    _obj(
                        {
                            "id": _str("Connection id.", pattern=ID_PATTERN),
                            "description": _str("What it protects.", minLength=1),
                            "peers": _str_or_list("Host groups, host names or address objects to talk IPsec with."),
                            "mode": {"type": "string", "enum": ["transport", "tunnel"]},
                            "required": {
                                "type": "boolean",
                                "description": "Drop this traffic when the SA is down (default true).",
                            },
                            "ike_proposals": _list(
                                {"type": "string"}, "IKE proposals, e.g. aes256gcm16-prfsha384-ecp384."
                            ),
                            "esp_proposals": _list({"type": "string"}, "ESP proposals, e.g. aes256gcm16-ecp384."),
                            "services": _str_or_list("Service objects to protect (default: all traffic)."),
                        },
                        "One IPsec connection policy.",
                        required=["id", "description", "peers"],
                    ),
                    "Connections.",
                ),
            },
            self.description,
        )

    def check(self, data, report, refs) -> None:
        for i, conn in enumerate(data.get("connections", [])):
            for key in ("ike_proposals", "esp_proposals"):
                for j, proposal in enumerate(conn.get(key, [])):
                    if WEAK_ALGORITHMS.search(proposal):
                        report(
                            ("connections", i, key, j),
                            f"proposal {proposal!r} uses a weak algorithm (RFC 8247: no DES/3DES/CAST/Blowfish/MD5/"
                            "SHA-1/MODP<=1536/ECP192); use e.g. aes256gcm16-prfsha384-ecp384",
                        )
            peers = conn.get("peers", [])
            for j, peer in enumerate([peers] if isinstance(peers, str) else peers):
                if not (refs["group"](peer) or refs["address"](peer)):
                    report(("connections", i, "peers", j), f"peer {peer!r} is not a host group or an address object")
            services = conn.get("services", [])
            for j, svc in enumerate([services] if isinstance(services, str) else services):
                if not refs["service"](svc):
                    report(("connections", i, "services", j), f"unknown service {svc!r}")


class Patches(Mechanism):
    name = "patches"
    description = "Patch levels: minimum versions and how fast security updates must be applied"

    def schema(self) -> dict:
        return _obj(
            {
                "security_updates_within": _str(
                    "Pending security updates older than this make the host non-compliant.", pattern=DURATION_PATTERN
                ),
                "minimum": _list(
                    _obj(
                        {"package": _str("Package.", minLength=1), "version": _str("Lowest version.", minLength=1)},
                        "A minimum package version.",
                        required=["package", "version"],
                    ),
                    "Minimum package versions.",
                ),
                "on_fail": _str("Profile for hosts that fail (default isolated)."),
            },
            self.description,
        )

    def check(self, data, report, refs) -> None:
        if "on_fail" in data and not refs["profile"](data["on_fail"]):
            report(("on_fail",), f"unknown profile {data['on_fail']!r}")


class Services(Mechanism):
    name = "services"
    description = "systemd services that must run or must be absent"

    def schema(self) -> dict:
        return _obj(
            {
                "required": _list({"type": "string", "minLength": 1}, "Units that must be running."),
                "forbidden": _list({"type": "string", "minLength": 1}, "Units that must not be running."),
            },
            self.description,
        )

    def check(self, data, report, refs) -> None:
        both = set(data.get("required", [])) & set(data.get("forbidden", []))
        for unit in sorted(both):
            report(("forbidden",), f"unit {unit!r} is both required and forbidden")


class Sysctl(Mechanism):
    name = "sysctl"
    description = "Kernel parameters"

    def schema(self) -> dict:
        return {
            "type": "object",
            "description": self.description + " (key: value).",
            "propertyNames": {"pattern": r"^[a-z0-9_]+(\.[A-Za-z0-9_*-]+)+$"},
            "additionalProperties": {
                "anyOf": [{"type": "string"}, {"type": "integer"}],
                "x-expect": "a string or a number",
            },
        }


class Antivirus(Mechanism):
    name = "antivirus"
    description = "Anti-virus presence and signature freshness"

    def schema(self) -> dict:
        return _obj(
            {
                "engine": {"type": "string", "enum": ["clamav"], "description": "Engine."},
                "required": {"type": "boolean", "description": "The engine must be installed and running."},
                "max_signature_age": _str("Oldest acceptable signatures.", pattern=DURATION_PATTERN),
            },
            self.description,
        )


MECHANISMS: Dict[str, Mechanism] = {m.name: m for m in (Ipsec(), Patches(), Services(), Sysctl(), Antivirus())}


def duration_seconds(text: str) -> int:
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
    return int(text[:-1]) * units[text[-1]]


def mechanism_names() -> List[str]:
    return list(MECHANISMS)
