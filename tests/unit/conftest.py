"""Shared fixtures for unit tests: real tools, no mocks where the real part runs here."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid

import pytest


def _run(argv, stdin=None):
    """The runner contract of the pure core: (argv, stdin) -> (rc, stdout, stderr)."""
    proc = subprocess.run(list(argv), input=stdin, capture_output=True, text=True, check=False, timeout=30)
    return proc.returncode, proc.stdout, proc.stderr


@pytest.fixture
def run():
    """The runner the pure core takes, backed by subprocess."""
    return _run


@pytest.fixture
def netns():
    """A fresh network namespace, deleted afterwards. Yields an argv prefix that runs in it."""
    if os.geteuid() != 0 or not shutil.which("ip") or not shutil.which("nft"):
        if os.environ.get("CI"):
            pytest.fail("netns tests need root, iproute2 and nftables; CI must provide them")
        pytest.skip("needs root, iproute2 and nftables (run via 'make unit')")
    name = f"distsec-ut-{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        subprocess.run(["ip", "netns", "exec", name, "ip", "link", "set", "lo", "up"], check=True)
        yield ["ip", "netns", "exec", name]
    finally:
        subprocess.run(["ip", "netns", "delete", name], check=False)
