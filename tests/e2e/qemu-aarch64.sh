#!/usr/bin/env bash
# tests/e2e/qemu-aarch64.sh - keylet's static aarch64 binary, run by qemu-user
# (qemu-aarch64-static) on this host, against the real Keylime 7.14.3 registrar
# and verifier of the testbed (swtpm as the TPM). Opt-in (test-all.sh runs it
# with KEYLET_E2E_QEMU=1): building the binary is a release LTO build.
#
# Usage: tests/e2e/qemu-aarch64.sh [SCENARIO...]   (default: all)
#   attest   registration at the registrar, "keylime_tenant -c add" (EK cert
#            checked), then the verifier's PASS with >= 10 attestations in a row
# Needs: scripts/testbed.sh up; the binary of
#   scripts/build-static.sh --target aarch64-unknown-linux-musl
# (KEYLET_AARCH64_BIN to use another); SKIP (exit 0, "SKIP" printed) if it is missing.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=scripts/cross-env.sh
source "$ROOT/scripts/cross-env.sh"
TARGET=aarch64-unknown-linux-musl
AARCH64_BIN=${KEYLET_AARCH64_BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/$TARGET/release/keylet}
if [[ ! -x $AARCH64_BIN ]]; then
  echo "SKIP: no aarch64 binary at $AARCH64_BIN (scripts/build-static.sh --target $TARGET)"
  exit 0
fi
file -b "$AARCH64_BIN" | grep -q 'ARM aarch64' || { echo "FAIL: $AARCH64_BIN is not an aarch64 executable" >&2; exit 1; }
read -r -a RUNNER <<<"$(cross_runner "$TARGET")"
RUNNER[0]=$(command -v "${RUNNER[0]}") ||
  { echo "FAIL: ${RUNNER[0]} is missing (apt-get install qemu-user-static)" >&2; exit 1; }

# lib.sh runs "$KEYLET_BIN" directly (no binfmt_misc here): a wrapper that execs
# qemu, so that keylet's PID is qemu's and SIGTERM reaches keylet.
KEYLET_BIN=$(dirname "$AARCH64_BIN")/keylet-qemu
printf '#!/bin/sh\nexec %s %s "$@"\n' "${RUNNER[*]}" "$AARCH64_BIN" >"$KEYLET_BIN"
chmod 0755 "$KEYLET_BIN"
export KEYLET_BIN

# shellcheck source=tests/e2e/lib.sh
source "$ROOT/tests/e2e/lib.sh"

field() { jq -r ".$1" <<<"$2"; }

scenario_attest() {
  local uuid r0 r1 c0 c1 t_start=$SECONDS t_reg t_first
  fresh_agent arm64
  # emulated start-up (TPM key creation, TLS set-up) is slower than native: 90 s
  agent_start arm64
  uuid=$(jq -r .uuid <<<"$(agent_identity arm64)")
  wait_registered "$uuid" 90 >/dev/null
  t_reg=$((SECONDS - t_start))
  say "registered as $uuid after $t_reg s"
  tenant_add "$uuid"
  r0=$(wait_attested "$uuid" 1 120)
  t_first=$((SECONDS - t_start))
  c0=$(field attestation_count "$r0")
  say "first attestation after $t_first s (count $c0); waiting for 10 more"
  r1=$(wait_attested "$uuid" $((c0 + 10)) 120)
  c1=$(field attestation_count "$r1")
  assert_eq "$(field attestation_status "$r1")" PASS "attestation_status"
  assert_ge "$((c1 - c0))" 10 "attestations in the window"
  say "aarch64 under qemu: registered ${t_reg} s, first PASS ${t_first} s, $((c1 - c0)) more PASS by $((SECONDS - t_start)) s"
  verifier_delete "$uuid"
  agent_stop arm64
}

e2e_init qemu-aarch64
run_scenarios attest -- "$@"
