# PRIVATE: the errors of the domain PKI (docs/dev/domain-design.md). Every message names what is
# wrong and what to do; the modules add the host's name and fail with it, never a traceback.
from __future__ import annotations

__all__ = [
    "BadRequest",
    "CAUnavailable",
    "ClockSkew",
    "HostRemoved",
    "IdentityMismatch",
    "InstallFailed",
    "PkiError",
]


class PkiError(Exception):
    """Base class: str(exc) is the whole message for a person."""


class CAUnavailable(PkiError):
    """The PDP directory, a CA certificate or key is missing, unreadable or undecryptable."""


class BadRequest(PkiError):
    """A CSR that is not one, has a bad signature, an unsupported key or a bad lifetime."""


class IdentityMismatch(PkiError):
    """The CSR (or a certificate) names another identity than the inventory's."""


class HostRemoved(PkiError):
    """The host left the domain (revoked); it needs the admin's readmission first."""


class ClockSkew(PkiError):
    """The host's clock is too far from the PDP's."""


class InstallFailed(PkiError):
    """The material handed to the host does not fit (key, chain, identity): nothing was installed."""
