#!/usr/bin/env bash
# `make demo`: the main job on the local container fleet.
#
# Today (collection 0.1.0) the fleet is the foundation scenario: a target and a peer on an
# IPv6+IPv4 test network, reached over SSH; a table is applied to the target and real
# connections from the peer show it holding. The full story (PDP, join, signed policy,
# quarantine, drift, report) replaces this as those features land.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scenario=default
target=distsec-default-target
peer=distsec-default-peer

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
plain() { sed -e 's/\x1b\[[0-9;]*m//g' -e 's/^[[:space:]│└┌─]*//'; }
recap() { plain | grep -E "^$target +:" | sed 's/^/  /'; }
log=.cache/demo.log
mkdir -p .cache && : > "$log"
quiet() {  # run a step with its output in the log; show the log's end if it fails
  if ! "$@" >>"$log" 2>&1; then
    tail -n 40 "$log" | plain >&2
    echo "demo: '$*' failed; full output in $log" >&2
    exit 1
  fi
}
probe() {  # probe ADDRESS PORT: one bounded connection attempt from the peer
  if podman exec "$peer" nc -z -w 2 "$1" "$2"; then echo "  $1 port $2: connected"; else echo "  $1 port $2: blocked"; fi
}

step "1. Start the fleet (2 containers, systemd, SSH on 198.51.100.0/26 and fd42:d15e:0:1::/64)"
quiet molecule destroy -s "$scenario"
quiet molecule create -s "$scenario"
quiet molecule prepare -s "$scenario"
podman ps --filter label=org.distsec.fleet=distsec-default --format '  {{.Names}}  {{.Status}}'

step "2. Apply the table to the target over SSH: check mode first, then for real, then again"
echo "  check mode (nothing is changed):"
molecule converge -s "$scenario" -- --check 2>&1 | recap
echo "  real run:"
molecule converge -s "$scenario" 2>&1 | recap
echo "  second run (idempotent: changed=0):"
molecule converge -s "$scenario" 2>&1 | recap

step "3. What the kernel has on the target (our table; other owners' tables untouched)"
podman exec "$target" nft list table inet distsec_smoke | sed 's/^/  /'
podman exec "$target" nft list tables | sed 's/^/  /'

step "4. Real connections from the peer"
probe 198.51.100.11 8080
probe fd42:d15e:0:1::11 8080
probe 198.51.100.11 8081
probe fd42:d15e:0:1::11 8081

step "5. The full verification (testinfra over SSH)"
molecule verify -s "$scenario" 2>&1 | plain | grep -E '^=+ .*(passed|failed)' | sed 's/^/  /'

cat <<MSG

Done. The fleet keeps running: log in with 'molecule login -s $scenario -h $target'.
Remove it with: make demo-clean
MSG
