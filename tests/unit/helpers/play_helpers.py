"""Run tasks in a real ansible-playbook on localhost and return each task's result (json callback)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

__all__ = ["run_play"]

BIN = Path(sys.executable).parent
TOP = Path(__file__).resolve().parents[3]


def run_play(tmp_path, tasks, *, check=False):
    """The localhost results of `tasks`, in order. DISTSEC_KEY_PASSPHRASE is not passed on."""
    if not (BIN / "ansible-playbook").exists():
        pytest.skip("ansible-playbook is installed by tools/venv.sh")
    book = Path(tmp_path) / "play.yml"
    book.write_text(yaml.safe_dump([{"hosts": "localhost", "gather_facts": False, "tasks": tasks}]))
    env = dict(
        os.environ,
        ANSIBLE_STDOUT_CALLBACK="json",
        ANSIBLE_COLLECTIONS_PATH=str(TOP / ".ansible" / "collections"),
        ANSIBLE_PYTHON_INTERPRETER=sys.executable,
        ANSIBLE_LOCALHOST_WARNING="false",
        ANSIBLE_INVENTORY_UNPARSED_WARNING="false",
    )
    env.pop("DISTSEC_KEY_PASSPHRASE", None)
    argv = [str(BIN / "ansible-playbook"), "-i", "localhost,", "-c", "local", str(book)] + ["--check"] * check
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, check=False, timeout=180)
    report = json.loads(proc.stdout)
    return [t["hosts"]["localhost"] for t in report["plays"][0]["tasks"]]
