# PRIVATE: the collection's version, shared by modules and the distsec command.
# Kept equal to galaxy.yml's version (a unit test checks this).
from __future__ import annotations

__all__ = ["COLLECTION", "VERSION"]

COLLECTION = "distsec.framework"
VERSION = "0.1.0"
