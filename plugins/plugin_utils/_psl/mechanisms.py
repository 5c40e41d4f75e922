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

# RFC 8247 and strongSwan's recommendations: never negotiate these (checked per token of a
# proposal such as aes256gcm16-prfsha384-ecp384).
_WEAK_TOKEN = re.compile(
    r"^(des|3des|des3|cast\d*|blowfish\d*|null|sha|sha1|md5|prfsha1|prfmd5|hmacmd5\w*|hmacsha1\w*|sha1_160|"
    r"aes\d*gcm8|aes\d*ccm8|modp(768|1024|1536)(s\d+)?|modp2048s(224|256)|ecp192)$"
)


def weak_parts(proposal: str) -> List[str]:
    """The weak algorithms named in an IKE/ESP proposal (empty when it is acceptable)."""
    tokens = [t for t in re.split(r"[-_,]", proposal.lower()) if t]
    return [t for t in tokens if _WEAK_TOKEN.match(t) or t.endswith("md5") or t.endswith("sha1")]


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

    def checks(self, data: Any) -> List[Tuple[Tuple, Dict[str, Any]]]:
        """Compliance checks the section implies, as (path, check) in the `checks:` form."""
        return []


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
                    if weak_parts(proposal):
                        report(
                            ("connections", i, key, j),
                            f"proposal {proposal!r} uses weak algorithm(s) {', '.join(weak_parts(proposal))} (RFC 8247: no DES/3DES/CAST/Blowfish/MD5/"
                            "SHA-1/MODP<=1536/ECP192); use e.g. aes256gcm16-prfsha384-ecp384",
                        )
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

    def checks(self, data):
        on_fail = data.get("on_fail", "isolated")
        out = []
        for i, item in enumerate(data.get("minimum", [])):
            out.append((
                ("minimum", i),
                {"id": f"patches-minimum-{_slug(item['package'])}", "severity": "high", "on_fail": on_fail,
                 "description": f"{item['package']} is at least {item['version']} (patches.minimum)",
                 "package": {"name": item["package"], "at_least": item["version"]}},
            ))  # fmt: skip
        if "security_updates_within" in data:
            limit = data["security_updates_within"]
            out.append((
                ("security_updates_within",),
                {"id": "patches-security-updates", "severity": "high", "on_fail": on_fail,
                 "description": f"no security update pending for longer than {limit} (patches.security_updates_within)",
                 "condition": f"updates.security_count == 0 or updates.oldest_security_age <= {limit}"},
            ))  # fmt: skip
        return out


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

    def checks(self, data):
        out = []
        for i, unit in enumerate(data.get("required", [])):
            out.append((
                ("required", i),
                {"id": f"services-required-{_slug(unit)}", "severity": "medium",
                 "description": f"{unit} is running (services.required)", "service": {"name": unit, "state": "running"}},
            ))  # fmt: skip
        for i, unit in enumerate(data.get("forbidden", [])):
            out.append((
                ("forbidden", i),
                {"id": f"services-forbidden-{_slug(unit)}", "severity": "high",
                 "description": f"{unit} is not running (services.forbidden)", "service": {"name": unit, "state": "stopped"}},
            ))  # fmt: skip
        return out


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

    def checks(self, data):
        out = []
        if data.get("required"):
            out.append((
                ("required",),
                {"id": "antivirus-running", "severity": "high", "description": "clamav is running (antivirus.required)",
                 "service": {"name": "clamav-daemon.service", "state": "running"}},
            ))  # fmt: skip
        if "max_signature_age" in data:
            age = data["max_signature_age"]
            out.append((
                ("max_signature_age",),
                {"id": "antivirus-signatures", "severity": "high",
                 "description": f"anti-virus signatures are younger than {age} (antivirus.max_signature_age)",
                 "antivirus": {"max_age": age}},
            ))  # fmt: skip
        return out


MECHANISMS: Dict[str, Mechanism] = {m.name: m for m in (Ipsec(), Patches(), Services(), Sysctl(), Antivirus())}


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9_.-]+", "-", name.lower()).strip("-")[:40] or "x"


def duration_seconds(text: str) -> int:
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
    return int(text[:-1]) * units[text[-1]]


def mechanism_names() -> List[str]:
    return list(MECHANISMS)
