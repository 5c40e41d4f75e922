#!/usr/bin/env bash
# Make sure the named Debian packages are installed on this machine.
#   tools/host-packages.sh PACKAGE...
# As root, missing packages are installed with apt-get (after one apt-get update).
# Otherwise it names what is missing and how to install it, and fails.
set -euo pipefail

missing=()
for pkg in "$@"; do
  status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
  [ "$status" = "install ok installed" ] || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "distsec: missing Debian packages: ${missing[*]}" >&2
  echo "distsec: install them as root:  apt-get update && apt-get install -y ${missing[*]}" >&2
  exit 1
fi
echo "distsec: installing Debian packages: ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
log=$(mktemp)
trap 'rm -f "$log"' EXIT
stamp=/var/lib/apt/periodic/distsec-update-stamp
if [ ! -e "$stamp" ] || [ -n "$(find "$stamp" -mmin +360)" ]; then
  apt-get update -qq >"$log" 2>&1 || { cat "$log" >&2; exit 1; }
  mkdir -p "$(dirname "$stamp")" && touch "$stamp"
fi
if ! apt-get install -y -qq "${missing[@]}" >"$log" 2>&1; then
  tail -n 30 "$log" >&2
  echo "distsec: apt-get install ${missing[*]} failed (output above)" >&2
  exit 1
fi
