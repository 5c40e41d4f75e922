# PRIVATE: every Security Status collector, registered; the module imports this.
from __future__ import annotations

from . import (  # importing registers each collector
    antivirus,
    domain,
    firewall,
    ipsec,
    network,
    packages,
    platform,
    policy,
    services,
    sockets,
    sysctl,
    time,
    updates,
)
from .base import COLLECTORS, SCHEMA_VERSION, CollectorError, Context, gather

__all__ = ["COLLECTORS", "MODULES", "SCHEMA_VERSION", "CollectorError", "Context", "gather"]

# The collector modules, in the order they appear in the status.
MODULES = (
    platform,
    packages,
    updates,
    services,
    sockets,
    firewall,
    ipsec,
    network,
    sysctl,
    antivirus,
    domain,
    policy,
    time,
)
