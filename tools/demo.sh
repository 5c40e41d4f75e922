#!/usr/bin/env bash
# `make demo`: the whole story on a local fleet of five containers (docs/demo.md).
#
#   tools/demo.sh          start the fleet, set up the domain and enforce (step 1), then the story
#   tools/demo.sh story    steps 2-7 only, on a fleet where step 1 has run (molecule's side_effect)
#
# Every connection the demo shows is a real one, made from inside a container (or from the
# controller) through the hosts' nftables rulesets, and every one is checked against what the policy
# says should happen: a surprise stops the demo with exit status 1.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
top=$PWD
scenario=default
export DISTSEC_DEMO_DIR=${DISTSEC_DEMO_DIR:-$top/.cache/demo}
export ANSIBLE_HOST_KEY_CHECKING=False ANSIBLE_PIPELINING=True ANSIBLE_FORKS=5
export ANSIBLE_SSH_ARGS="-o ControlMaster=auto -o ControlPersist=60s"
export ANSIBLE_NOCOLOR=1 ANSIBLE_DEPRECATION_WARNINGS=False
demo=$DISTSEC_DEMO_DIR
inventory=inventories/demo/hosts.yml
log=$demo/demo.log
mkdir -p "$demo"
started=$(date +%s)
declare -a summary=()

bold() { printf '\033[1m%s\033[0m\n' "$*"; }
step() { printf '\n'; bold "== $*"; }
say() { printf '   %s\n' "$*"; }
plain() { sed -e 's/\x1b\[[0-9;]*m//g'; }
fail() { printf '\n\033[31mdemo: %s\033[0m\n' "$*" >&2; echo "demo: full output in $log" >&2; exit 1; }

# run a command with its output in the log; stop the demo (showing the log's end) if it fails
quiet() {
  if ! "$@" >>"$log" 2>&1; then
    tail -n 40 "$log" | plain >&2
    fail "'$*' failed"
  fi
}

# play PLAYBOOK [ARGS...]: run one of the collection's playbooks on the fleet; prints the recap.
# Its exit status is returned (the caller decides what is expected).
play() {
  local book=$1 out rc=0
  shift
  out=$(mktemp)
  ansible-playbook -i "$inventory" "playbooks/$book" "$@" >"$out" 2>&1 || rc=$?
  cat "$out" >>"$log"
  plain <"$out" | awk '/^PLAY RECAP/{on=1; next} on && NF' | sed -e 's/  */ /g' -e 's/^/   /'
  rm -f "$out"
  return "$rc"
}

# probe FROM TO_NAME ADDRESS PORT EXPECT WHY: one bounded TCP connection attempt from a container
# (FROM), or from the controller (FROM=controller), checked against EXPECT (connected|blocked)
probe() {
  local from=$1 name=$2 address=$3 port=$4 expect=$5 why=$6 got target
  target=$address
  [[ $address == *:* ]] && target="[$address]"
  if [ "$from" = controller ]; then
    if timeout 3 bash -c "exec 3<>/dev/tcp/$address/$port" 2>/dev/null; then got=connected; else got=blocked; fi
  elif podman exec "$from" nc -z -w 2 "$address" "$port" 2>/dev/null; then
    got=connected
  else
    got=blocked
  fi
  local line
  line=$(printf '%-12s -> %-6s %-22s %-9s' "${from#distsec-}" "$name" "$target:$port" "$got")
  if [ "$got" = "$expect" ]; then
    printf '   %s \033[32mas the policy says\033[0m (%s)\n' "$line" "$why"
  else
    printf '   %s \033[31mEXPECTED %s\033[0m (%s)\n' "$line" "$expect" "$why"
    fail "a connection did not behave as the policy says"
  fi
}

host_profile() {  # host_profile HOST: the profile its last run enforced, and why (from its Security Status)
  podman exec "$1" python3 -c 'import json
run = json.load(open("/var/lib/distsec/status.json"))["policy"]["last_run"]
print("%s: profile %s (%s)" % (run["host"], run["profile"]["name"], run["profile"]["reason"]))' | sed 's/^/   /'
}

table() {
  distsec report build "$demo/reports" --format table 2>/dev/null | sed 's/^/   /'
}

fleet_up() {
  step "0. The fleet: 5 Debian 12 containers with systemd and sshd on 198.51.100.0/26 and fd42:d15e:0:1::/64"
  : >"$log"
  quiet molecule destroy -s "$scenario"
  rm -rf "$demo/pdp" "$demo/reports"
  quiet molecule create -s "$scenario"
  quiet molecule prepare -s "$scenario"
  podman ps --filter label=org.distsec.fleet=distsec-default --format '   {{.Names}}  {{.Status}}'
  say "services: distsec-mirror (the patch mirror, HTTP), distsec-mail (SMTP 25/587, IMAP 143),"
  say "distsec-web (HTTP 80/443, an admin console on 8080); workstations distsec-ws1 and distsec-ws2."
  say "The controller is the PDP. ws1 has the outdated mail client demo-mua 102.0-1;"
  say "ws2 has demo-libssl 3.0.14-1, which the policy's check libssl-patched refuses."
}

step1() {
  step "1. Set up the Security Domain and enforce the policy (playbooks/site.yml)"
  say "pdp_init (CAs, policy keys) -> join (each host makes its key, the PDP signs) ->"
  say "baseline (default-restrictive at boot) -> publish (a signed bundle per host) -> enforce -> report"
  play site.yml || fail "site.yml failed"
  summary+=("1. domain demo.distsec.test set up; 5 hosts joined, each enforcing its signed policy")
  table
}

step2() {
  step "2. The policy holds: real connections, allowed and denied"
  probe distsec-ws1 web 198.51.100.12 80 connected "rule web-in"
  probe distsec-ws1 web fd42:d15e:0:1::12 443 connected "rule web-in, over IPv6"
  probe distsec-ws1 web 198.51.100.12 8080 blocked "the admin console is not in the policy"
  probe distsec-web ws1 198.51.100.21 22 blocked "workstations accept SSH from admins only"
  probe controller ws1 198.51.100.21 22 connected "baseline-management-in"
  summary+=("2. allowed and denied flows checked with real connections over IPv4 and IPv6")
}

step3() {
  step "3. The conditional rule: an outdated mail client has mail blocked"
  say "policy: block-mail-old-client, when packages[\"demo-mua\"].version < \"115.0\" (workstations)"
  probe distsec-ws1 mail 198.51.100.11 587 blocked "ws1 has demo-mua 102.0-1"
  probe distsec-ws2 mail 198.51.100.11 587 blocked "ws2 is isolated (step 4)"
  say "upgrading the mail client on ws1 from the patch mirror ..."
  quiet podman exec distsec-ws1 apt-get install -y -q demo-mua
  say "$(podman exec distsec-ws1 dpkg-query -W -f='demo-mua ${Version} installed' demo-mua)"
  say "enforce.yml on ws1: the status now says 115.0-1, the rule no longer applies"
  play enforce.yml -l distsec-ws1 || fail "enforce.yml failed"
  probe distsec-ws1 mail 198.51.100.11 587 connected "the rule's condition is false now"
  probe distsec-ws1 mail fd42:d15e:0:1::11 143 connected "IMAP over IPv6 too"
  summary+=("3. ws1's outdated mail client had mail blocked; after the upgrade and one run, mail flows")
}

step4() {
  step "4. Quarantine: a non-compliant host is isolated until it is fixed"
  host_profile distsec-ws2
  local pdp_port=8140 pdp_pid
  python3 -m http.server "$pdp_port" --bind 198.51.100.1 >/dev/null 2>&1 &
  pdp_pid=$!
  sleep 0.5
  probe distsec-ws2 mirror 198.51.100.10 80 connected "baseline-remediation-patch-mirrors"
  probe distsec-ws2 PDP 198.51.100.1 "$pdp_port" connected "baseline-remediation-pdp"
  probe distsec-ws2 web 198.51.100.12 80 blocked "isolated: nothing else"
  probe distsec-ws2 mail fd42:d15e:0:1::11 25 blocked "isolated: nothing else"
  probe controller ws2 fd42:d15e:0:1::22 22 connected "admins still reach it"
  kill "$pdp_pid" 2>/dev/null || true
  say "ws2 installs the fix from the patch mirror (which isolation still allows) ..."
  quiet podman exec distsec-ws2 apt-get install -y -q demo-libssl
  say "$(podman exec distsec-ws2 dpkg-query -W -f='demo-libssl ${Version} installed' demo-libssl)"
  play enforce.yml -l distsec-ws2 || fail "enforce.yml failed"
  host_profile distsec-ws2
  probe distsec-ws2 web 198.51.100.12 80 connected "compliant again: back in home"
  summary+=("4. ws2 (vulnerable library) was isolated, reached only the PDP and the mirror, patched itself, went home")
}

step5() {
  step "5. A tampered bundle is refused; the host keeps its last good policy"
  local good=$demo/pdp/out/distsec-ws1.bundle.json bad=$demo/tampered.bundle.json
  python3 - "$good" "$bad" <<'PY'
import base64, json, sys
bundle = json.load(open(sys.argv[1], encoding="utf-8"))
policy = json.loads(base64.b64decode(bundle["files"]["policy.json"]))
# an attacker's edit after signing: one more rule in the home profile, the signature left as it was
policy["profiles"]["home"]["rules"].insert(0, dict(policy["profiles"]["home"]["rules"][-1], id="evil"))
bundle["files"]["policy.json"] = base64.b64encode(json.dumps(policy).encode()).decode()
json.dump(bundle, open(sys.argv[2], "w", encoding="utf-8"))
PY
  quiet podman cp "$bad" distsec-ws1:/var/lib/distsec/incoming/tampered.bundle.json
  say "pushed to ws1 a copy of its bundle with a rule added after signing; enforce.yml verifies it first:"
  play enforce.yml -l distsec-ws1 -e enforce_bundle=/var/lib/distsec/incoming/tampered.bundle.json ||
    fail "enforce.yml failed"
  local rejected
  rejected=$(podman exec distsec-ws1 python3 -c 'import json; r = json.load(open("/var/lib/distsec/policy.json"))["last_rejection"]; print(r["reason"] + ": " + r["detail"])')
  say "refused: $rejected"
  probe distsec-ws1 mail 198.51.100.11 587 connected "still the last good policy"
  probe distsec-ws1 web 198.51.100.12 8080 blocked "still the last good policy"
  summary+=("5. a tampered bundle was refused ($rejected); ws1 kept its last good policy")
}

step6() {
  step "6. Drift: a rule added by hand is found and removed"
  say "someone opens the web server's admin console by hand: nft insert rule inet distsec input tcp dport 8080 accept"
  quiet podman exec distsec-web nft insert rule inet distsec input tcp dport 8080 accept
  probe distsec-ws1 web 198.51.100.12 8080 connected "the hand-made rule"
  say "drift.yml (an audit in check mode; exit status 2 when drift or non-compliance is found):"
  local rc=0
  play drift.yml || rc=$?
  [ "$rc" -eq 2 ] || fail "drift.yml exited $rc, expected 2 (drift found)"
  say "drift.yml exited 2: $(distsec report build "$demo/reports" --format table 2>/dev/null | grep -E ': drift found' | head -1 | sed 's/^ *//')"
  say "drift.yml -e remediate=true:"
  play drift.yml -e remediate=true || fail "drift.yml -e remediate=true failed"
  probe distsec-ws1 web 198.51.100.12 8080 blocked "the hand-made rule is gone"
  rc=0
  play drift.yml || rc=$?
  [ "$rc" -eq 0 ] || fail "drift.yml exited $rc after remediation, expected 0"
  say "drift.yml exited 0: nothing found"
  summary+=("6. a hand-made rule on distsec-web was found by drift.yml (exit 2) and removed with remediate=true")
}

step7() {
  step "7. The fleet compliance report"
  table
  say "HTML:  $demo/reports/report.html"
  say "JSON:  $demo/reports/report.json"
  say "JUnit: $demo/reports/report.junit.xml"
  summary+=("7. report: $demo/reports/report.html (also report.json, report.junit.xml)")
}

finish() {
  local took=$(($(date +%s) - started))
  step "Summary ($((took / 60)) min $((took % 60)) s)"
  for line in "${summary[@]}"; do say "$line"; done
  cat <<MSG

   Log in to a host:   molecule login -s $scenario -h distsec-ws1
   Its status:         podman exec distsec-ws1 cat /var/lib/distsec/status.json
   The full log:       $log
   Remove the fleet:   make demo-clean
MSG
}

story() {
  mkdir -p "$demo"
  touch "$log"
  step2
  step3
  step4
  step5
  step6
  step7
}

case "${1:-all}" in
  all)
    fleet_up
    step1
    story
    finish
    ;;
  story)
    story
    finish
    ;;
  *)
    echo "usage: tools/demo.sh [story]" >&2
    exit 2
    ;;
esac
