#!/usr/bin/env bash
# tests/e2e/newcomer.sh - the README's commands work exactly as printed.
#
# Usage: tests/e2e/newcomer.sh [SCENARIO...]   (default: all)
#   modes   every script or test the README names (scripts/*.sh, tests/**/*.sh) is mode
#           100755 in git and starts with a shebang, so it runs as printed
#   demo    `scripts/demo.sh`, run as printed (no "bash" in front) in its own process
#           group: it brings up its own swtpm + Keylime on its own ports, keylet is
#           attested (the verifier reports PASS with attestation_count >= 3), and Ctrl-C
#           (SIGINT to the process group) stops everything it started, exit status 0
# Needs: a keylet build; the Keylime venv (scripts/setup.sh). The demo uses its own
# state dir and ports (KEYLET_DEMO_STATE, demo.sh's defaults), apart from the testbed's.
set -euo pipefail
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

DEMO_SECS=${NEWCOMER_DEMO_SECS:-300}
# demo.sh's default ports (swtpm, registrar, registrar TLS, verifier, agent).
DEMO_PORTS=(24421 18990 18991 18981 19102)

scenario_modes() {
  local f mode named=0
  while read -r f; do
    [[ -f $E2E_ROOT/$f ]] || fail "README names $f, which does not exist"
    mode=$(git -C "$E2E_ROOT" ls-files -s -- "$f" | awk '{ print $1 }')
    assert_eq "$mode" 100755 "git mode of $f (README tells users to run it)"
    [[ $(head -c 2 "$E2E_ROOT/$f") == '#!' ]] || fail "$f has no shebang"
    named=$((named + 1))
  done < <(grep -oE '(scripts|tests)/[A-Za-z0-9_/.-]+\.sh' "$E2E_ROOT/README.md" | sort -u)
  assert_ge "$named" 5 "scripts named in README"
  say "$named scripts named in README are executable in git"
}

port_listens() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# A failed scenario must not leave the demo running: Ctrl-C its group, then SIGKILL.
DEMO_PID=
demo_stop() {
  [[ -n $DEMO_PID ]] && kill -0 "$DEMO_PID" 2>/dev/null || return 0
  kill -INT -- "-$DEMO_PID" 2>/dev/null || true
  wait_gone "$DEMO_PID" 60 || kill -KILL -- "-$DEMO_PID" 2>/dev/null || true
  pkill -KILL -f "$E2E_TMP/demo-state" 2>/dev/null || true
}

scenario_demo() {
  local log=$E2E_TMP/demo.log pid i rc count=0 p
  for p in "${DEMO_PORTS[@]}"; do
    port_listens "$p" && fail "port $p is in use: is a demo already running?"
  done
  trap 'demo_stop; scenario_cleanup' EXIT
  # As printed in README: the script itself, not "bash scripts/demo.sh". setsid gives it
  # its own process group, as a terminal would, so Ctrl-C can be sent to the group.
  # Only the Keylime venv is shared with the testbed: demo.sh picks its own ports.
  (
    cd "$E2E_ROOT"
    while read -r v; do unset "$v"; done < <(compgen -e | grep '^KEYLET_TB_' || true)
    export KEYLET_BIN KEYLET_DEMO_STATE=$E2E_TMP/demo-state
    export KEYLET_TB_VENV=${VENV_PY%/bin/python}
    exec setsid scripts/demo.sh </dev/null >"$log" 2>&1
  ) &
  pid=$! DEMO_PID=$!
  for ((i = 0; i < DEMO_SECS; i++)); do
    count=$({ grep -oE 'attestation_status=PASS +attestation_count=[0-9]+' "$log" 2>/dev/null || true; } |
      awk -F= 'END { print $NF + 0 }')
    ((count >= 3)) && break
    kill -0 "$pid" 2>/dev/null || { tail -n 30 "$log" >&2; fail "demo.sh exited before PASS"; }
    sleep 1
  done
  ((count >= 3)) || { tail -n 30 "$log" >&2; fail "no PASS with attestation_count >= 3 within $DEMO_SECS s"; }
  say "demo: the verifier reports PASS, attestation_count $count"
  kill -INT -- "-$pid" # Ctrl-C
  rc=0
  wait_gone "$pid" 60 || fail "demo.sh still running 60 s after Ctrl-C"
  wait "$pid" || rc=$?
  assert_eq "$rc" 0 "demo.sh exit status after Ctrl-C"
  grep -qE 'keylet stopped|stopped keylet' "$log" || { tail -n 20 "$log" >&2; fail "demo.sh did not report keylet's stop"; }
  for p in "${DEMO_PORTS[@]}"; do
    port_listens "$p" && fail "something still listens on demo port $p after Ctrl-C"
  done
  pgrep -f "$E2E_TMP/demo-state" >/dev/null && fail "processes of the demo are still running"
  say "demo: Ctrl-C stopped keylet, the verifier, the registrar and swtpm"
}

E2E_SUITE=newcomer
E2E_TMP=$(mktemp -d /tmp/keylet-e2e-newcomer.XXXXXX)
trap e2e_cleanup EXIT
trap 'exit 130' INT TERM
find_keylet
run_scenarios modes demo -- "$@"
