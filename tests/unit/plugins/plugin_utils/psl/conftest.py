"""Fixtures shared by the PSL tests (test modules cannot import each other)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ansible_collections.distsec.framework.plugins.plugin_utils._psl.problems import PslError

HERE = Path(__file__).resolve().parent
TOP = HERE.parents[4]


@pytest.fixture(scope="session")
def corpus_dir() -> Path:
    """tests/unit/plugins/plugin_utils/psl/corpus (valid/ and invalid/ cases)."""
    return HERE / "corpus"


@pytest.fixture(scope="session")
def mail_client_example() -> Path:
    """The example policy of the documentation."""
    path = TOP / "docs" / "examples" / "mail-client" / "policy.yml"
    assert path.is_file(), path
    return path


@pytest.fixture(scope="session")
def error_text():
    """PslError -> all its problems as one string, for assertion messages."""

    def render(exc: PslError) -> str:
        return "\n".join(str(p) for p in exc.problems.sorted()) or "(no problems)"

    return render
