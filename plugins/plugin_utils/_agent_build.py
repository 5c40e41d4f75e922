# PRIVATE: build the host-local audit agent, distsec-audit.pyz, on the controller (stdlib only).
#
# A zipapp (the `python3 -m zipapp` format: an interpreter line, then a zip with __main__.py) of the
# collection's host-side code, exactly ansible_collections/distsec/framework/plugins/module_utils/**/*.py
# plus empty __init__.py files for the packages above it, so the same imports work on a host that
# has no Ansible. Deterministic: sorted entries, a fixed timestamp and fixed permissions, and no
# compression (zlib implementations, e.g. zlib-ng, compress the same bytes differently), so the same
# collection always builds byte-identical bytes and copying it again changes nothing.
from __future__ import annotations

import hashlib
import io
import os
import zipfile
from typing import List, Optional, Tuple

from ansible_collections.distsec.framework.plugins.module_utils._version import VERSION

__all__ = ["AGENT_NAME", "MODULE_UTILS", "PACKAGE", "agent_entries", "build_agent", "digest"]

AGENT_NAME = "distsec-audit.pyz"
PACKAGE = "ansible_collections/distsec/framework/plugins/module_utils"
MODULE_UTILS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "module_utils")
INTERPRETER = b"#!/usr/bin/python3\n"
ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip can hold
FILE_MODE = 0o100644  # a regular file, rw-r--r--
# The packages above module_utils: empty, so that `ansible_collections.distsec.framework...` imports.
PARENT_PACKAGES = (
    "ansible_collections/__init__.py",
    "ansible_collections/distsec/__init__.py",
    "ansible_collections/distsec/framework/__init__.py",
    "ansible_collections/distsec/framework/plugins/__init__.py",
)
MAIN = f"""\
# distsec-audit: the host-local audit of distsec.framework {VERSION}, built by distsec.framework.audit_agent.
# Run: python3 distsec-audit.pyz --help
import sys

if sys.version_info < (3, 9):
    sys.exit("distsec-audit: needs Python 3.9 or newer (this is %d.%d)" % sys.version_info[:2])

from ansible_collections.distsec.framework.plugins.module_utils._agent.cli import main

sys.exit(main())
"""


def agent_entries(module_utils: Optional[str] = None) -> List[Tuple[str, bytes]]:
    """(archive name, content) of every file of the agent, sorted by name."""
    top = module_utils or MODULE_UTILS
    if not os.path.isfile(os.path.join(top, "_agent", "cli.py")):
        raise FileNotFoundError(f"{top}: not the collection's module_utils (no _agent/cli.py)")
    entries = [(name, b"") for name in PARENT_PACKAGES]
    for directory, subdirs, files in os.walk(top):
        subdirs[:] = sorted(d for d in subdirs if d != "__pycache__" and not d.startswith("."))
        for name in sorted(files):
            if not name.endswith(".py") or name.startswith("."):
                continue
            path = os.path.join(directory, name)
            relative = os.path.relpath(path, top).replace(os.sep, "/")
            with open(path, "rb") as handle:
                entries.append((f"{PACKAGE}/{relative}", handle.read()))
    entries.append(("__main__.py", MAIN.encode("utf-8")))
    return sorted(entries)


def build_agent(module_utils: Optional[str] = None) -> bytes:
    """The zipapp's bytes: the same bytes for the same collection, whenever and wherever it is built."""
    buffer = io.BytesIO()
    buffer.write(INTERPRETER)
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        for name, content in agent_entries(module_utils):
            info = zipfile.ZipInfo(name, date_time=ZIP_TIME)
            info.create_system = 3  # Unix, so that external_attr holds the mode
            info.external_attr = FILE_MODE << 16
            info.compress_type = zipfile.ZIP_STORED
            archive.writestr(info, content)
    return buffer.getvalue()


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
