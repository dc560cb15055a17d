#!/usr/bin/env bash
# tests/e2e/slow-tpm.sh - keylet on a TPM as slow as a real chip: the e2e scenarios below
# run with keylet's tpm_device pointed at the slow-tpm proxy (tests/src/bin/slow-tpm.rs) in
# front of the testbed's swtpm, which holds every command for the profile's answer time
# (discrete: CreatePrimary/Create 6 s, Quote 200 ms, ActivateCredential 250 ms, Load 40 ms,
# StartAuthSession 25 ms, PCR commands 8-10 ms; firmware: a few times faster), answers
# every 97th command first with a TPM_RC_RETRY/YIELDED/TESTING burst, and stalls the
# 150th for 3 s.
#
# Usage: tests/e2e/slow-tpm.sh [PROFILE]   (discrete, the default, or firmware)
#   registration.sh register and slow_start (metrics answer while the AK is made),
#   attestation.sh basic (PASS at the 2 s cadence),
#   doctor.sh all_ok, reliability.sh sigterm_quote (SIGTERM with quotes queued: keylet drops
#   them, flushes its AK and exits) and tpm_restart (swtpm killed: keylet reconnects through
#   the proxy), push.sh attest; then the
#   proxy's log must show busy bursts and the stall.
# Settings: KEYLET_SLOW_TPM_PORT (swtpm port + 4), the testbed's KEYLET_TB_* variables.
# Needs: scripts/testbed.sh up, a keylet build; builds keylet-tests' slow-tpm.
set -euo pipefail
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
E2E_SUITE=slow-tpm
PROFILE=${1:-discrete}
PROXY_PORT=${KEYLET_SLOW_TPM_PORT:-$((SWTPM_PORT + 4))}
HERE=$E2E_ROOT/tests/e2e

cargo build -q -p keylet-tests --bin slow-tpm # up to date: about a second
SLOW_TPM=${CARGO_TARGET_DIR:-$E2E_ROOT/target}/debug/slow-tpm

LOG=$(mktemp /tmp/keylet-slow-tpm.XXXXXX.log)
"$SLOW_TPM" "$PROXY_PORT" "$SWTPM_PORT" "$PROFILE" --busy-every 97 --busy-burst 3 \
  --stall-at 150 --stall-ms 3000 --max-secs 900 >"$LOG" 2>&1 &
PROXY_PID=$!
trap 'kill "$PROXY_PID" 2>/dev/null || true; wait "$PROXY_PID" 2>/dev/null || true' EXIT
for ((i = 0; i < 100; i++)); do
  grep -q "^listening on" "$LOG" && break
  kill -0 "$PROXY_PID" 2>/dev/null || { cat "$LOG" >&2; fail "slow-tpm exited"; exit 1; }
  sleep 0.1
done
grep -q "^listening on" "$LOG" || { fail "slow-tpm did not listen within 10 s"; exit 1; }
say "slow-tpm ($PROFILE) on 127.0.0.1:$PROXY_PORT in front of swtpm :$SWTPM_PORT; log $LOG"
export KEYLET_E2E_TPM_PORT=$PROXY_PORT

t0=$SECONDS failed=() why=()
for run in "registration.sh register" "registration.sh slow_start" "attestation.sh basic" "doctor.sh all_ok" \
  "reliability.sh sigterm_quote" "reliability.sh tpm_restart" "push.sh attest"; do
  t=$SECONDS out=$(mktemp /tmp/keylet-slow-tpm-run.XXXXXX)
  # shellcheck disable=SC2086 # suite and scenario
  if bash "$HERE"/$run 2>&1 | tee "$out"; then say "$run: ok ($((SECONDS - t)) s)"
  else
    failed+=("$run"); say "$run: FAILED ($((SECONDS - t)) s)"
    mapfile -t -O "${#why[@]}" why < <(grep -E 'FAIL' "$out" | tail -n 5)
  fi
  rm -f "$out"
done
bursts=$(grep -c "busy answers" "$LOG" || true)
stalls=$(grep -c "stalled" "$LOG" || true)
say "slow-tpm: $bursts busy bursts, $stalls stall(s); $((SECONDS - t0)) s in all"
((bursts >= 1)) || failed+=("no busy burst reached keylet")
((stalls == 1)) || failed+=("the stall did not happen")
# What failed, again at the end: the scenarios' own lines are far above.
((${#why[@]} == 0)) || printf '  %s\n' "${why[@]}"
((${#failed[@]} == 0)) || { fail "on the $PROFILE TPM: ${failed[*]}"; exit 1; }
say "all passed on the $PROFILE TPM"
