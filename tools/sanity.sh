#!/usr/bin/env bash
# Run `ansible-test sanity` on the collection.
#
# ansible-test wants the collection at .../ansible_collections/distsec/framework and lists
# files with git, so the tracked and untracked-not-ignored files of the working tree are
# copied into .build/sanity/ansible_collections/distsec/framework with a git index of
# their own. Extra arguments are passed to ansible-test (e.g. --test validate-modules).
#
# ansible-test installs each sanity test's requirements into venvs of its own, bootstrapping
# pip with a get-pip script from a host that is not reachable here. This script places an
# offline stand-in in ansible-test's cache: pip from the standard library's ensurepip, which
# then installs ansible-test's pinned requirements from PyPI as usual.
set -euo pipefail

top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv=${DISTSEC_VENV:-$top/.venv}
export PATH="$venv/bin:$PATH"

pip_version=$("$venv/bin/python" -c '
import inspect, re
import ansible_test._internal.python_requirements as r
print(re.search(r"pip=.(\d[\d.]*).", inspect.getsource(r.get_venv_packages)).group(1))')
cache="$HOME/.ansible/test/cache"
mkdir -p "$cache"
cat > "$cache/get_pip_${pip_version//./_}.py" <<'EOF'
# Offline stand-in for get-pip.py (written by distsec's tools/sanity.sh): bootstrap pip
# from the standard library, then let it install what ansible-test asked for.
import ensurepip
import os
import subprocess
import sys

env = dict(os.environ)  # ensurepip points PIP_CONFIG_FILE at /dev/null in this process
ensurepip.bootstrap(upgrade=True)
args = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
sys.exit(subprocess.call([sys.executable, "-m", "pip", "install", *args], env=env))
EOF

dest="$top/.build/sanity/ansible_collections/distsec/framework"
rm -rf "$dest"
mkdir -p "$dest"
cd "$top"
git ls-files -co --exclude-standard -z | xargs -0 cp --parents -t "$dest"
cd "$dest"
git init -q && git add -A

python_version=$("$venv/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
# (the grep hides pip's noise about this machine's optional local package indexes)
ansible-test sanity --python "$python_version" --color no "$@" 2>&1 \
  | grep -v --line-buffered 'is ignored: it is neither a file nor a directory'
