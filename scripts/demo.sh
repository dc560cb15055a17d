#!/usr/bin/env bash
# demo.sh - see keylet work: swtpm + the real Keylime 7.14.3 registrar and verifier
# on 127.0.0.1, keylet registered and added with keylime_tenant, and the verifier's
# verdict printed every 2 s as attestations stream in. Ctrl-C stops what it started.
#
# Usage: scripts/demo.sh        (as root on Debian 12: installs swtpm, tpm2-tools and
#                                a Keylime venv if missing; needs cargo for keylet)
# Settings: KEYLET_BIN (skip the build), KEYLET_DEMO_STATE (default /var/tmp/keylet-demo),
# KEYLET_TB_* ports (defaults 24421, 18990/18991, 18981, agent 19102: apart from the tests').
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export KEYLET_TB_STATE=${KEYLET_DEMO_STATE:-/var/tmp/keylet-demo}
export KEYLET_TB_SWTPM_PORT=${KEYLET_TB_SWTPM_PORT:-24421}
export KEYLET_TB_REGISTRAR_PORT=${KEYLET_TB_REGISTRAR_PORT:-18990}
export KEYLET_TB_REGISTRAR_TLS_PORT=${KEYLET_TB_REGISTRAR_TLS_PORT:-18991}
export KEYLET_TB_VERIFIER_PORT=${KEYLET_TB_VERIFIER_PORT:-18981}
export KEYLET_TB_AGENT_PORT=${KEYLET_TB_AGENT_PORT:-19102}
export KEYLET_TB_QUOTE_INTERVAL=2
TB=$ROOT/scripts/testbed.sh
say() { printf '\033[1m[demo]\033[0m %s\n' "$*" >&2; }
die() { printf '[demo] ERROR: %s\n' "$*" >&2; exit 1; }

say "1/5 installing what is missing (swtpm, tpm2-tools, Keylime 7.14.3 venv)"
bash "$TB" install
say "2/5 building keylet"
if [[ -z ${KEYLET_BIN:-} ]]; then
  command -v cargo >/dev/null || die "cargo not found: install Rust (rustup) or set KEYLET_BIN"
  (cd "$ROOT" && cargo build -q -p keylet)
fi

STARTED_TB=0
bash "$TB" ps 2>/dev/null | grep -q '^verifier: running' || STARTED_TB=1
say "3/5 starting swtpm, registrar and verifier on 127.0.0.1"
bash "$TB" init
bash "$TB" start

# keylet runs with the e2e suites' helpers (clean environment, config file).
# shellcheck source=tests/e2e/lib.sh
source "$ROOT/tests/e2e/lib.sh"
E2E_SUITE=demo
find_keylet
E2E_TMP=$KEYLET_TB_STATE/demo
mkdir -p "$E2E_TMP"
cleanup() {
  trap - EXIT INT TERM
  say "stopping"
  local n rc
  for n in "${!KEYLET_PID[@]}"; do # Ctrl-C reaches keylet too: it may be gone already
    agent_alive "$n" && continue
    rc=0; wait "${KEYLET_PID[$n]}" 2>/dev/null || rc=$?
    say "keylet stopped (exit $rc)"; unset "KEYLET_PID[$n]"
  done
  stop_all_keylets
  if ((STARTED_TB)); then bash "$TB" stop; fi
}
trap cleanup EXIT
trap 'exit 0' INT TERM

bash "$TB" reset >/dev/null 2>&1 # a fresh keylet state dir means a new AK: forget old agents
agent_new agent
say "4/5 starting keylet ($KEYLET_BIN), config $E2E_TMP/agent/keylet.toml, log $E2E_TMP/agent/keylet.log"
agent_start agent
ID=$(agent_identity agent)
UUID=$(jq -r .uuid <<<"$ID")
wait_registered "$UUID" 30 >/dev/null
say "keylet $UUID is registered and activated"

say "5/5 keylime_tenant -c add (EK certificate checked against the swtpm CA)"
tenant_add "$UUID"
say "attestations (Ctrl-C to stop everything):"
while true; do
  if ! agent_alive agent; then
    # Ctrl-C reaches keylet too, and keylet may stop before this script's trap runs: a
    # clean exit is that stop, anything else is a failure.
    rc=0; wait "${KEYLET_PID[agent]}" 2>/dev/null || rc=$?
    unset "KEYLET_PID[agent]"
    if ((rc == 0)); then say "keylet stopped (exit 0)"; exit 0; fi
    agent_log_tail agent; die "keylet exited (status $rc)"
  fi
  r=$(verifier_get "$UUID" || true)
  if [[ -n $r ]]; then
    jq -r '"\(now | strftime("%H:%M:%S"))  attestation_status=\(.attestation_status)  attestation_count=\(.attestation_count)  last_successful_attestation=\(.last_successful_attestation)"' <<<"$r"
  else
    echo "$(date +%H:%M:%S)  (verifier has no record yet)"
  fi
  sleep 2
done
