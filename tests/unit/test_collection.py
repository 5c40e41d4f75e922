"""Collection-level promises: metadata agrees with itself, roles' defaults match their specs,
and the built tarball ships the collection without the development files."""

from __future__ import annotations

import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import yaml

from ansible_collections.distsec.framework.plugins.module_utils._version import VERSION

TOP = Path(__file__).resolve().parents[2]
ROLES = sorted(p.name for p in (TOP / "roles").iterdir() if (p / "meta" / "argument_specs.yml").exists())


def test_galaxy_version_is_the_code_version():
    assert yaml.safe_load((TOP / "galaxy.yml").read_text())["version"] == VERSION


def test_every_role_has_an_argument_spec():
    all_roles = sorted(p.name for p in (TOP / "roles").iterdir() if p.is_dir())
    assert all_roles == ROLES


@pytest.mark.parametrize("role", ROLES)
def test_role_defaults_and_argument_specs_agree(role):
    spec = yaml.safe_load((TOP / "roles" / role / "meta" / "argument_specs.yml").read_text())
    options = spec["argument_specs"]["main"]["options"]
    defaults = yaml.safe_load((TOP / "roles" / role / "defaults" / "main.yml").read_text()) or {}
    # A default computed by Jinja (from a shared variable or a fact) cannot be a typed default in
    # argument_specs.yml: the spec documents it in its description ("Defaults to ...") instead.
    templated = {name for name, value in defaults.items() if isinstance(value, str) and "{{" in value}
    assert set(defaults) - templated == {name for name, opt in options.items() if "default" in opt}
    for name in templated:
        assert "default" not in options[name], f"{role}: {name} has a templated default; document it, do not type it"
        text = (
            " ".join(options[name]["description"])
            if isinstance(options[name]["description"], list)
            else options[name]["description"]
        )
        assert "Defaults to" in text, f"{role}: {name}: say in its description what it defaults to"
    for name, value in defaults.items():
        if name not in templated:
            assert options[name]["default"] == value, f"{role}: {name} default differs from argument_specs.yml"
    for name in options:
        assert name.startswith(f"{role}_"), f"{role}: variable {name} lacks the role prefix"


def test_collection_build_excludes_development_files(tmp_path):
    galaxy = Path(sys.executable).parent / "ansible-galaxy"
    if not galaxy.exists():
        pytest.skip("ansible-galaxy is installed by tools/venv.sh; run the tests from .venv")
    proc = subprocess.run(
        [str(galaxy), "collection", "build", "--output-path", str(tmp_path), str(TOP)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    tarball = tmp_path / f"distsec-framework-{VERSION}.tar.gz"
    with tarfile.open(tarball) as tar:
        names = tar.getnames()
    assert "MANIFEST.json" in names
    assert "plugins/modules/nft_table.py" in names
    assert "roles/nft_table/tasks/main.yml" in names
    assert "docs/architecture.md" in names
    for unwanted in (".venv", ".cache", ".build", ".git", "molecule", "tests/unit", "tools", "bench", ".ci"):
        assert not any(n == unwanted or n.startswith(unwanted + "/") for n in names), unwanted
    assert not any("__pycache__" in n or n.endswith(".pyc") for n in names)
