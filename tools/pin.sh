#!/usr/bin/env bash
# Re-resolve requirements/requirements.txt in a scratch venv and write every resolved
# version into requirements/constraints.txt. Review the diff, then run `make test`.
set -euo pipefail
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
python3 -m venv "$scratch/venv"
"$scratch/venv/bin/python" -m pip install -q --disable-pip-version-check -r "$top/requirements/requirements.txt"
{
  echo "# Full pinned set for .venv/ (pip freeze of requirements.txt). Regenerate with: make pin"
  "$scratch/venv/bin/python" -m pip freeze --exclude-editable
} > "$top/requirements/constraints.txt"
echo "pin: wrote requirements/constraints.txt; review with git diff" >&2
