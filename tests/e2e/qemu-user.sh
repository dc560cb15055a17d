#!/usr/bin/env bash
# tests/e2e/qemu-user.sh - keylet's static binary for another architecture, run by
# qemu-user on this host, against the real Keylime 7.14.3 registrar and verifier of
# the testbed (swtpm as the TPM). test-all.sh runs it for aarch64, armv7 and riscv64
# (steps e2e-qemu-aarch64, e2e-qemu-armv7, e2e-qemu-riscv64; KEYLET_E2E_QEMU=0 none),
# after the release LTO build of the binary.
#
# Usage: tests/e2e/qemu-user.sh [--target T] [SCENARIO...]   (default: all)
#   --target T  aarch64-unknown-linux-musl (default), armv7-unknown-linux-musleabihf or
#               riscv64gc-unknown-linux-gnu: the binary of
#               scripts/build-static.sh --target T (KEYLET_QEMU_BIN to use another)
#   doctor   keylet doctor --json before the first start: every check OK (the
#            measured-boot log, which the e2e config leaves out, WARN), exit 0
#   attest   registration at the registrar, "keylime_tenant -c add" (EK cert
#            checked), then the verifier's PASS with >= 10 attestations in a row; an
#            identity quote over mTLS that the verifier's /verify/identity accepts
#   run_as   started as root with run_as = nobody:nogroup: the names are resolved, all
#            uids and gids are nobody's afterwards, the verifier passes (root only)
# Needs: scripts/testbed.sh up; qemu-user-static. A scenario is SKIPped when the
# binary is missing.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=scripts/cross-env.sh
source "$ROOT/scripts/cross-env.sh"
TARGET=aarch64-unknown-linux-musl
if [[ ${1:-} == --target ]]; then
  [[ $# -ge 2 ]] || { echo "--target needs a value" >&2; exit 2; }
  TARGET=$2; shift 2
fi
case $TARGET in
  aarch64-unknown-linux-musl | armv7-unknown-linux-musleabihf | riscv64gc-unknown-linux-gnu) ;;
  *) echo "unsupported target $TARGET (aarch64-unknown-linux-musl, armv7-unknown-linux-musleabihf, riscv64gc-unknown-linux-gnu)" >&2; exit 2 ;;
esac
cross_table "$TARGET"
QEMU_BIN=${KEYLET_QEMU_BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/$TARGET/release/keylet}
read -r -a RUNNER <<<"$(cross_runner "$TARGET")"
RUNNER[0]=$(command -v "${RUNNER[0]}") ||
  { echo "FAIL: ${RUNNER[0]} is missing (apt-get install qemu-user-static)" >&2; exit 1; }

# lib.sh runs "$KEYLET_BIN" directly (no binfmt_misc here): a wrapper that execs
# qemu, so that keylet's PID is qemu's and SIGTERM reaches keylet.
WRAP_DIR=$(mktemp -d "/tmp/keylet-qemu-$X_DEB.XXXXXX")
KEYLET_BIN=$WRAP_DIR/keylet-qemu
printf '#!/bin/sh\nexec %s %s "$@"\n' "${RUNNER[*]}" "$QEMU_BIN" >"$KEYLET_BIN"
chmod 0755 "$KEYLET_BIN"
export KEYLET_BIN

# shellcheck source=tests/e2e/lib.sh
source "$ROOT/tests/e2e/lib.sh"

field() { jq -r ".$1" <<<"$2"; }
need_binary() {
  [[ -x $QEMU_BIN ]] || skip_scenario "no $TARGET binary at $QEMU_BIN (scripts/build-static.sh --target $TARGET)"
  file -b "$QEMU_BIN" | grep -qF "$X_ELF" || fail "$QEMU_BIN is not a $X_DEB executable: $(file -b "$QEMU_BIN")"
}

scenario_doctor() {
  local c
  need_binary
  agent_new "$X_DEB"
  doctor "$X_DEB" -- --ek-ca "$TB_STATE/tpm_cert_store"
  assert_eq "$DOC_RC" 0 "doctor's exit code (failures: $(fails))"
  for c in config tpm.device tpm.clock tpm.lockout tpm.ek tpm.ek_cert tpm.ek_cert_chain identity.uuid keys.ak keys.nk \
    keys.mtls certs.trusted_client_ca certs.trusted_client_ca_chain registrar listen logs.ima; do
    expect "$c" ok
  done
  expect logs.measured_boot warn # the e2e config names a log that does not exist
  # qemu-user does not pass Landlock's system calls on to the kernel (ENOSYS): doctor says
  # keylet would run unconfined, which is what this emulator gives
  expect confine warn
  # nor does it install a seccomp filter (and armv7 has none): doctor's probe says so
  expect confine.seccomp warn
  assert_eq "$(jq -r '[.checks[] | select(.status != "ok")] | length' <<<"$DOC")" 3 \
    "checks not OK (only logs.measured_boot, confine and confine.seccomp)"
  say "$X_DEB under qemu: keylet doctor: $(jq -r '.checks | length' <<<"$DOC") checks, all OK but the missing measured-boot log"
}

scenario_attest() {
  local uuid r0 r1 c0 c1 t_start=$SECONDS t_reg t_first nonce q quote v
  need_binary
  fresh_agent "$X_DEB"
  # emulated start-up (TPM key creation, TLS set-up) is slower than native: 90 s
  agent_start "$X_DEB"
  uuid=$(jq -r .uuid <<<"$(agent_identity "$X_DEB")")
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
  # an identity quote over mTLS, checked by the verifier as the SPIRE server does
  nonce=$(head -c 20 /dev/urandom | base32 | tr -d '=' | cut -c1-32)
  # (-k: the agent's certificate is self-signed; the verifier pins it, curl need not)
  q=$(curl -sS --max-time 60 -k --cert "$TLS/client-cert.crt" --key "$TLS/client-private.pem" \
    "https://127.0.0.1:$AGENT_PORT/v2.2/quotes/identity?nonce=$nonce")
  quote=$(jq -r .results.quote <<<"$q")
  assert_nonempty "$quote" "identity quote ($q)"
  v=$(curl -sS --max-time 10 --cacert "$TLS/cacert.crt" --cert "$TLS/client-cert.crt" \
    --key "$TLS/client-private.pem" -G "https://127.0.0.1:$VERIFIER_PORT/v2.2/verify/identity" \
    --data-urlencode "agent_uuid=$uuid" --data-urlencode "hash_alg=sha256" \
    --data-urlencode "nonce=$nonce" --data-urlencode "quote=$quote")
  assert_eq "$(jq -r .results.valid <<<"$v")" 1 "verifier /verify/identity valid ($v)"
  say "$X_DEB under qemu: registered ${t_reg} s, first PASS ${t_first} s, $((c1 - c0)) more PASS by $((SECONDS - t_start)) s, identity quote valid"
  verifier_delete "$uuid"
  agent_stop "$X_DEB"
}

# run_as names a user and a group: resolved by the libc linked in (musl, or a static
# glibc for riscv64) from /etc/passwd and /etc/group
scenario_run_as() {
  local uuid pid nobody nogroup r
  need_binary
  ((EUID == 0)) || skip_scenario "run_as needs root"
  nobody=$(id -u nobody) nogroup=$(getent group nogroup | cut -d: -f3)
  [[ -n $nogroup ]] || fail "no group nogroup on this host"
  fresh_agent "$X_DEB" run_as=nobody:nogroup
  agent_start "$X_DEB"
  uuid=$(jq -r .uuid <<<"$(agent_identity "$X_DEB")")
  wait_registered "$uuid" 90 >/dev/null
  pid=${KEYLET_PID[$X_DEB]}
  wait_log "$X_DEB" 'dropped privileges to nobody:nogroup' 10
  assert_eq "$(awk '$1 == "Uid:" { print $2, $3, $4, $5 }' "/proc/$pid/status")" "$nobody $nobody $nobody $nobody" "Uid"
  assert_eq "$(awk '$1 == "Gid:" { print $2, $3, $4, $5 }' "/proc/$pid/status")" "$nogroup $nogroup $nogroup $nogroup" "Gid"
  tenant_add "$uuid"
  r=$(wait_attested "$uuid" 3 120)
  assert_eq "$(field attestation_status "$r")" PASS "attestation_status after the drop"
  say "$X_DEB under qemu: run_as nobody:nogroup resolved and dropped to, verifier PASS"
  verifier_delete "$uuid"
  agent_stop "$X_DEB"
}

e2e_init "qemu-$X_DEB"
trap 'rc=$?; rm -rf "$WRAP_DIR"; (exit "$rc"); e2e_cleanup' EXIT
run_scenarios doctor attest run_as -- "$@"
