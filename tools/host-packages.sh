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
# Daemons the tests only need the tools of (firewalld: firewall-offline-cmd). They must never
# start on this machine: a running firewalld would rewrite its firewall and podman's networking.
no_start=(firewalld)
plain=() quiet=()
for pkg in "${missing[@]}"; do
  if [[ " ${no_start[*]} " == *" $pkg "* ]]; then quiet+=("$pkg"); else plain+=("$pkg"); fi
done
if [ ${#plain[@]} -gt 0 ] && ! apt-get install -y -qq "${plain[@]}" >"$log" 2>&1; then
  tail -n 30 "$log" >&2
  echo "distsec: apt-get install ${plain[*]} failed (output above)" >&2
  exit 1
fi
if [ ${#quiet[@]} -gt 0 ]; then
  # policy-rc.d answering 101 stops the maintainer scripts from starting the service (both
  # invoke-rc.d and deb-systemd-invoke ask it); an existing policy-rc.d is left as it is.
  policy=/usr/sbin/policy-rc.d
  own_policy=
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy" && own_policy=1
    trap 'rm -f "$log"; [ -z "$own_policy" ] || rm -f "$policy"' EXIT
  elif "$policy" firewalld.service start >/dev/null 2>&1; [ $? -ne 101 ]; then
    echo "distsec: $policy would let ${quiet[*]} start; install it yourself with services kept off:" >&2
    echo "distsec:   apt-get install --no-install-recommends ${quiet[*]} && systemctl disable ${quiet[*]}" >&2
    exit 1
  fi
  if ! apt-get install -y -qq --no-install-recommends "${quiet[@]}" >"$log" 2>&1; then
    tail -n 30 "$log" >&2
    echo "distsec: apt-get install ${quiet[*]} failed (output above)" >&2
    exit 1
  fi
  # the package enables its unit for the next boot: undo that (it was not installed before)
  for pkg in "${quiet[@]}"; do
    if command -v systemctl >/dev/null 2>&1; then
      systemctl disable "$pkg.service" >/dev/null 2>&1 || true
    fi
  done
fi
