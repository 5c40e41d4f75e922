# PRIVATE: a host's identity in the domain: the inventory name (certificate CN), DNS names and
# IP addresses (subjectAltName). Pure; no Ansible import.
#
# build_identity() normalises what the inventory says (sorted, unique, addresses in their
# canonical text form) so that two identities compare with ==. identity_of() reads one back
# from a CSR or a certificate (cryptography objects) for the comparison.
from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Any, Dict, Iterable, Optional, Tuple

from ansible_collections.distsec.framework.plugins.module_utils._pki.errors import BadRequest

try:
    from cryptography import x509
    from cryptography.x509.oid import NameOID
except ImportError:  # pragma: no cover - x509.require_cryptography() reports it
    pass

__all__ = ["Identity", "build_identity", "identity_of", "is_dns_name", "parse_identity"]

# An inventory name used as the CN: printable, no control characters, at most 64 (X.520 ub-common-name).
# Both are used with fullmatch(): "$" would let a trailing newline through.
_NAME_RE = re.compile(r"[A-Za-z0-9_.:@-]{1,64}")
_LABEL_RE = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")


def is_dns_name(text: str) -> bool:
    """A hostname usable as a dNSName: LDH labels, at most 253 characters, not an address."""
    if not text or len(text) > 253 or text.endswith("."):
        return False
    try:
        ipaddress.ip_address(text)
        return False
    except ValueError:
        pass
    return all(_LABEL_RE.fullmatch(label) for label in text.split("."))


@dataclass(frozen=True)
class Identity:
    name: str
    dns: Tuple[str, ...] = ()
    ip: Tuple[str, ...] = ()

    def as_dict(self) -> Dict[str, Any]:
        return {"name": self.name, "dns": list(self.dns), "ip": list(self.ip)}

    def describe(self) -> str:
        parts = [f"CN={self.name}"]
        parts += [f"DNS:{d}" for d in self.dns]
        parts += [f"IP:{a}" for a in self.ip]
        return ", ".join(parts)


def build_identity(name: str, dns: Iterable[str] = (), ip: Iterable[str] = ()) -> Identity:
    """The identity of inventory host `name`; its name is a DNS SAN too when it is a hostname.

    Raises BadRequest naming the bad value.
    """
    if not isinstance(name, str) or not _NAME_RE.fullmatch(name):
        raise BadRequest(
            f"{name!r} cannot be a certificate name: use 1-64 letters, digits and . _ - : @ (the inventory name)"
        )
    names = set()
    if is_dns_name(name):
        names.add(name.lower())
    for entry in dns or ():
        if not isinstance(entry, str) or not is_dns_name(entry):
            raise BadRequest(f"{entry!r} is not a DNS name (letters, digits, hyphens and dots)")
        names.add(entry.lower())
    addresses = set()
    for entry in ip or ():
        try:
            address = ipaddress.ip_address(str(entry).strip())
        except ValueError:
            raise BadRequest(f"{entry!r} is not an IP address") from None
        if getattr(address, "scope_id", None):
            raise BadRequest(
                f"{entry!r}: a certificate cannot carry an IPv6 zone (%{address.scope_id}); give the address without it"
            )
        addresses.add(address)
    ordered = sorted(addresses, key=lambda a: (a.version, a.packed))
    return Identity(name=name, dns=tuple(sorted(names)), ip=tuple(str(a) for a in ordered))


def identity_of(obj: Any) -> Identity:
    """The identity a cryptography CSR or certificate carries (CN + subjectAltName)."""
    cns = obj.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    name = str(cns[0].value) if len(cns) == 1 else ""
    try:
        san = obj.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        san = None
    dns = sorted({d.lower() for d in san.get_values_for_type(x509.DNSName)}) if san else []
    values = san.get_values_for_type(x509.IPAddress) if san else []
    for value in values:
        # an iPAddress of 8 or 32 bytes is read as a network (address + mask): never a host's
        if not isinstance(value, (ipaddress.IPv4Address, ipaddress.IPv6Address)):
            raise BadRequest(
                f"the CSR carries an IP network ({value}) in its subjectAltName; only addresses are allowed"
            )
    ips = sorted(set(values), key=lambda a: (a.version, a.packed))
    return Identity(name=name, dns=tuple(dns), ip=tuple(str(a) for a in ips))


def parse_identity(data: Optional[Dict[str, Any]], default_name: str = "") -> Identity:
    """An identity from a module parameter {name, dns, ip} (built and normalised)."""
    data = data or {}
    return build_identity(data.get("name") or default_name, data.get("dns") or (), data.get("ip") or ())
