# PRIVATE: Security Status collector "sysctl": security-relevant kernel parameters from /proc/sys (stdlib only).
from __future__ import annotations

import re
from typing import Dict

from .base import CollectorError, Context, collector

__all__ = ["SYSCTL_KEYS", "collect_sysctl"]

SYSCTL_KEYS = (
    "net.ipv4.ip_forward",
    "net.ipv6.conf.all.forwarding",
    "net.ipv6.conf.default.forwarding",
    "net.ipv6.conf.all.accept_ra",
    "net.ipv6.conf.default.accept_ra",
    "net.ipv4.conf.all.rp_filter",
    "net.ipv4.conf.default.rp_filter",
    "net.ipv6.conf.all.disable_ipv6",
    "net.ipv4.conf.all.accept_redirects",
    "net.ipv6.conf.all.accept_redirects",
    "net.ipv4.conf.all.send_redirects",
    "net.ipv4.conf.all.accept_source_route",
    "net.ipv4.tcp_syncookies",
    "kernel.kptr_restrict",
    "kernel.dmesg_restrict",
    "kernel.unprivileged_bpf_disabled",
    "kernel.randomize_va_space",
)

_TABS = re.compile(r"\t+")


def _proc_path(key: str) -> str:
    # None of the keys above has a "/" in a component, so dots map to path separators.
    return "/proc/sys/" + key.replace(".", "/")


@collector("sysctl")
def collect_sysctl(ctx: Context) -> Dict[str, str]:
    """Each key's value as `sysctl -n` prints it (stripped, tabs as one space); absent keys are left out."""
    values: Dict[str, str] = {}
    for key in SYSCTL_KEYS:
        # a bounded read: /proc/sys refuses the default 64 MiB buffer with ENOMEM
        text = ctx.read(_proc_path(key), limit=4096)
        if text is not None:
            values[key] = _TABS.sub(" ", text.strip())
    if not values:
        raise CollectorError("no kernel parameter readable under /proc/sys")
    return values
