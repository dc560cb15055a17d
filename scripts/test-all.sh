#!/usr/bin/env bash
# test-all.sh - every test of keylet, one command. Ends with "N passed, N failed"
# (one count per step) and exits non-zero if any step failed.
#
# Usage: scripts/test-all.sh [--quick] [--no-e2e] [--e2e-only] [--keep-testbed]
#   --quick         only the fast steps: fmt, clippy, unit/integration tests, no_std build,
#                   the shellcheck lint (no cross-architecture core tests, no Python check,
#                   no testbed, no end-to-end suites)
#   --no-e2e        everything but the testbed and the end-to-end suites
#   --e2e-only      only: build keylet, testbed up, end-to-end suites
#   --keep-testbed  leave the testbed running afterwards (default: stop it if this run started it)
# Environment: CARGO_TARGET_DIR, KEYLET_TB_* (scripts/testbed.sh), KEYLET_RELEASE_TB_*
# (the older-release testbed of tests/e2e/keylime-release.sh), E2E_REGISTRATION /
# E2E_ATTESTATION / E2E_TLS / E2E_OPERATIONS / E2E_PAYLOAD / E2E_CRASH (space-separated scenario lists
# per suite; default all), E2E_VM (tests/vm/run.sh scenarios; default register unknown_exec confine initd).
# KEYLET_E2E_QEMU: the static binaries of aarch64, armv7 and riscv64 under qemu-user against
# the testbed (tests/e2e/qemu-user.sh; each a release LTO build, ~2 min on 2 cores, plus
# ~35 s) and the size check of all four static binaries: unset or 1 on, 0 off.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT" || exit 2
TB=$ROOT/scripts/testbed.sh
QUICK=0 E2E=1 UNIT=1 KEEP_TB=0
for a in "$@"; do
  case $a in
    --quick) QUICK=1; E2E=0 ;;
    --no-e2e) E2E=0 ;;
    --e2e-only) UNIT=0 ;;
    --keep-testbed) KEEP_TB=1 ;;
    -h | --help) sed -n '2,/^set -uo/p' "$0" | sed 's/^# \{0,1\}//;$d'; exit 0 ;;
    *) echo "unknown option $a (try --help)" >&2; exit 2 ;;
  esac
done

PASSED=0 FAILED=0 SKIPPED=0 SUMMARY=() FAILED_LOGS=()
STEP_LOGS=$(mktemp -d "${TMPDIR:-/tmp}/keylet-test-all.XXXXXX") || exit 2
# step NAME CMD...: runs CMD with its output shown (and kept, so that a failed step's
# failure lines can be repeated above the summary), records PASS/FAIL and time.
step() {
  local name=$1 t0=$SECONDS rc log; shift
  log=$STEP_LOGS/$name.log
  printf '\n==== [%s] %s\n' "$name" "$*"
  # Not a pipe: a daemon a step starts (the testbed) may keep its output open.
  "$@" > >(tee "$log") 2>&1; rc=$?
  if ((rc == 0)); then
    PASSED=$((PASSED + 1)); SUMMARY+=("$(printf 'PASS  %-22s %4d s' "$name" $((SECONDS - t0)))")
  else
    FAILED=$((FAILED + 1)); SUMMARY+=("$(printf 'FAIL  %-22s %4d s  (exit %d)' "$name" $((SECONDS - t0)) "$rc")")
    FAILED_LOGS+=("$name")
  fi
  return "$rc"
}
# The lines of a failed step that say what failed (not the "N passed, 0 failed" tallies of
# the suites that passed), then its last lines. Printed after the summary, so that a reader
# of only the end of the output sees why.
failure_excerpt() {
  local log=$STEP_LOGS/$1.log
  printf '\n==== why [%s] failed (full output above)\n' "$1"
  grep -E 'FAIL|[Ff]ailed|panicked|^error' "$log" | grep -vE '^test .* ok$| 0 failed$' | tail -n 15
  echo '  ... last lines:'
  tail -n 8 "$log"
}
skip() { SKIPPED=$((SKIPPED + 1)); SUMMARY+=("$(printf 'SKIP  %-22s        %s' "$1" "$2")"); }

shellcheck_all() {
  command -v shellcheck >/dev/null || { echo "shellcheck is not installed (apt-get install shellcheck)"; return 1; }
  local files=(scripts/*.sh tests/e2e/*.sh)
  [[ -f .ci/run ]] && files+=(.ci/run)
  files+=(tests/dist/*.sh) # systemd unit check (ops)
  files+=(tests/vm/*.sh tests/vm/guest-init) # keylet in a VM
  files+=(tests/peer/*.sh tests/peer/shim/init.d/*) # keylime-tests runner (opt-in, not run here)
  local f
  for f in tests/peer/shim/*; do [[ -f $f ]] && files+=("$f"); done
  files+=(dist/init.d/keylet dist/openrc/keylet) # init scripts for hosts without systemd
  shellcheck -x "${files[@]}"
}

# Keylime's own quote check on keylet-built quotes, with the testbed's Keylime venv.
python_check() {
  bash "$TB" install || return 1
  local py; py="${KEYLET_TB_VENV:-${KEYLET_TB_STATE:-/var/tmp/keylet-testbed}/venv}/bin/python"
  if [[ -x tests/python/run.sh ]]; then
    KEYLET_KEYLIME_PYTHON=$py tests/python/run.sh
  else
    "$py" tests/python/check_quote.py
  fi
}

testbed_up() { bash "$TB" install && bash "$TB" init && bash "$TB" start; }

# A static binary for another architecture (build-static.sh exits 3 when only the size
# budget is missed) under qemu-user against the testbed: doctor, PASS, identity quote, run_as.
e2e_qemu() {
  local rc=0
  bash scripts/build-static.sh --target "$1" || rc=$?
  ((rc == 0 || rc == 3)) || return "$rc"
  timeout 900 bash tests/e2e/qemu-user.sh --target "$1"
}
# What the steps need (apt packages, Rust target and components, the Keylime venv):
# installed here when missing, so this script works on a fresh machine by itself.
if ((E2E)) || { ((UNIT)) && ((!QUICK)); }; then
  step setup bash scripts/setup.sh || { echo "setup failed: nothing else can run"; exit 1; }
else
  step setup bash scripts/setup.sh --no-testbed || { echo "setup failed: nothing else can run"; exit 1; }
fi
# e2e suites append "suite/scenario: reason" for each scenario they skip.
KEYLET_E2E_SKIP_FILE=$(mktemp /tmp/keylet-e2e-skips.XXXXXX)
export KEYLET_E2E_SKIP_FILE
trap 'rm -f "$KEYLET_E2E_SKIP_FILE"' EXIT

if ((UNIT)); then
  step fmt cargo fmt --all --check
  step clippy cargo clippy --workspace --all-targets -- -D warnings
  step test cargo test --workspace
  # The workspace run unifies features (other crates turn on core's `alloc`): run
  # core's own tests once more as the no-alloc build that ships.
  step test-core-no-alloc cargo test -p keylet-core
  # Tests that need root (mounts, other uids) are #[ignore]d in the plain run.
  if ((EUID == 0)); then
    step test-root cargo test -p keylet --test payload_secure_dir --test identity_listener -- --ignored
  else
    skip test-root "needs root (mounts a tmpfs, runs clients as other uids)"
  fi
  step no_std-build cargo build -p keylet-core --target thumbv7em-none-eabihf
  # the smaller build without the optional subsystems (README "Static binary") stays clean
  step minimal-build cargo clippy -p keylet --no-default-features --all-targets -- -D warnings
  if ((QUICK)); then
    skip cross-core "--quick"
  else
    # keylet-core's tests on aarch64, armv7 (32-bit) and s390x (big-endian) under qemu-user
    step cross-core bash scripts/cross-test.sh
  fi
  step shellcheck shellcheck_all
  step systemd-unit bash tests/dist/systemd-unit.sh # dist/keylet.service (ops), ~1 s
  # the licenses of the crates linked into keylet against deny.toml's allow-list (offline)
  step licenses cargo deny --offline check licenses
  if ((QUICK)); then
    skip python-check "--quick"
  elif [[ -x tests/python/run.sh || -f tests/python/check_quote.py ]]; then
    step python-check python_check
  else
    skip python-check "no tests/python/run.sh or check_quote.py"
  fi
fi

if ((E2E)); then
  TB_WAS_UP=0
  bash "$TB" ps 2>/dev/null | grep -q '^verifier: running' && TB_WAS_UP=1
  step build-keylet cargo build -p keylet
  if step testbed-up testbed_up; then
    # shellcheck disable=SC2086 # scenario lists are word lists
    step e2e-registration timeout 900 bash tests/e2e/registration.sh ${E2E_REGISTRATION:-}
    # shellcheck disable=SC2086
    step e2e-attestation timeout 1200 bash tests/e2e/attestation.sh ${E2E_ATTESTATION:-}
    # certificate reload, rotate-cert, identity listener for SPIRE (~1 min)
    # shellcheck disable=SC2086
    step e2e-tls timeout 600 bash tests/e2e/tls.sh ${E2E_TLS:-}
    # TCG device identity: IAK and IDevID made in swtpm (H-1 to H-4), certificates from a local CA (~45 s)
    # shellcheck disable=SC2086
    step e2e-iak timeout 300 bash tests/e2e/iak.sh ${E2E_IAK:-}
    # keylet doctor against swtpm + the real registrar (about 5 s)
    step e2e-doctor timeout 300 bash tests/e2e/doctor.sh
    # run_as drop and metrics (ops), ~20 s
    # shellcheck disable=SC2086
    step e2e-operations timeout 300 bash tests/e2e/operations.sh ${E2E_OPERATIONS:-}
    # payload keys and payloads, revocation with a 50 s action (~3 min)
    # shellcheck disable=SC2086
    step e2e-payload timeout 480 bash tests/e2e/payload.sh ${E2E_PAYLOAD:-}
    # security proof: bad-input catalogue, TLS refusals, no secrets in the log (~30 s)
    step e2e-security timeout 300 bash tests/e2e/security.sh
    # reliability: TPM restart and hang, late registrar, 200 concurrent quotes, 1,100 idle/slow
    # clients during verifier quotes, SIGTERM mid-quote (~3 min; soak opt-in)
    # shellcheck disable=SC2086
    step e2e-reliability timeout 600 bash tests/e2e/reliability.sh ${E2E_RELIABILITY:-}
    # README's commands as printed: script modes, scripts/demo.sh to PASS and Ctrl-C (~1 min)
    step e2e-newcomer timeout 400 bash tests/e2e/newcomer.sh
    # push mode against a second, push-mode verifier (started and stopped by the suite):
    # PASS, incremental IMA, verifier/keylet restarts, revoked token, behind NAT (~2.5 min)
    # shellcheck disable=SC2086
    step e2e-push timeout 400 bash tests/e2e/push.sh ${E2E_PUSH:-}
    # a TPM with a discrete chip's speed (slow-tpm proxy: 6 s key generation, 200 ms quotes,
    # busy bursts, a 3 s stall): registration, attestation, doctor, SIGTERM mid-quote, TPM
    # restart, push (~2.5-4 min)
    step e2e-slow-tpm timeout 500 bash tests/e2e/slow-tpm.sh discrete
    # crash: DA lockout with a noDA AK, 50 SIGKILLs over first start, rotate-cert, payload (~3 min)
    # shellcheck disable=SC2086
    step e2e-crash timeout 600 bash tests/e2e/crash.sh ${E2E_CRASH:-}
    # keylet in Debian's kernel under QEMU: /dev/tpmrm0, the kernel's IMA list, the UEFI
    # event log, Landlock refusing a path outside keylet's, keylet under dist/init.d/keylet
    # (static build + 4 guests, ~7 min; needs root for apt and the disk images)
    if ((EUID == 0)); then
      # shellcheck disable=SC2086
      step e2e-vm timeout 1000 bash tests/vm/run.sh ${E2E_VM:-register unknown_exec confine initd}
    else
      skip e2e-vm "needs root (apt-get, disk images)"
    fi
    # the Debian package: dpkg -i, keylet as user keylime to PASS, upgrade (same id), remove,
    # purge (~30 s; reuses the static binary the e2e-vm step built; root only, else SKIP)
    step e2e-package timeout 600 bash tests/e2e/package.sh
    # dist/openrc/keylet under Debian's OpenRC, in a private mount and pid namespace: start to
    # PASS, SIGKILL and supervise-daemon's restart to PASS, stop with SIGTERM (~20 s)
    if ((EUID == 0)); then
      step e2e-openrc timeout 180 bash tests/e2e/openrc.sh
    else
      skip e2e-openrc "needs root (mount and pid namespaces)"
    fi
    if [[ ${KEYLET_E2E_QEMU:-1} != 0 ]]; then
      step e2e-qemu-aarch64 e2e_qemu aarch64-unknown-linux-musl
      step e2e-qemu-armv7 e2e_qemu armv7-unknown-linux-musleabihf
      step e2e-qemu-riscv64 e2e_qemu riscv64gc-unknown-linux-gnu
      # each static binary of the steps above (no rebuild) within the size budget
      # (2.5 MiB; build-static.sh exits 3 over it)
      step size bash scripts/build-static.sh --all
    else
      skip e2e-qemu-aarch64 "KEYLET_E2E_QEMU=0"; skip e2e-qemu-armv7 "KEYLET_E2E_QEMU=0"
      skip e2e-qemu-riscv64 "KEYLET_E2E_QEMU=0"; skip size "KEYLET_E2E_QEMU=0"
    fi
  else
    skip e2e-registration "testbed is not up"; skip e2e-attestation "testbed is not up"
    skip e2e-tls "testbed is not up"
    skip e2e-iak "testbed is not up" # IAK and IDevID
    skip e2e-doctor "testbed is not up" # keylet doctor
    skip e2e-operations "testbed is not up" # run_as and metrics
    skip e2e-payload "testbed is not up"
    skip e2e-security "testbed is not up" # security proof
    skip e2e-reliability "testbed is not up" # reliability suite
    skip e2e-newcomer "testbed is not up"
    skip e2e-crash "testbed is not up" # crash suite
    skip e2e-push "testbed is not up" # push mode
    skip e2e-vm "testbed is not up" # keylet in a VM
    skip e2e-package "testbed is not up" # the Debian package
    skip e2e-openrc "testbed is not up" # the OpenRC script
    skip e2e-qemu-aarch64 "testbed is not up" # static aarch64 binary under qemu-user
    skip e2e-qemu-armv7 "testbed is not up"; skip e2e-qemu-riscv64 "testbed is not up"
  fi
  if ((!TB_WAS_UP && !KEEP_TB)); then bash "$TB" stop >/dev/null 2>&1 || true; fi
  # The default configuration against an older Keylime release, on its own testbed
  # (own state, venv and ports; started and stopped by the suite): registration, PASS (~1 min)
  step e2e-keylime-7.12 timeout 300 env KEYLET_RELEASE=7.12.2 bash tests/e2e/keylime-release.sh
fi

while IFS= read -r line; do
  [[ -n $line ]] && skip "${line%%: *}" "${line#*: }"
done <"$KEYLET_E2E_SKIP_FILE"

sleep 0.2 # let the last tee finish writing
printf '\n==== summary\n'
printf '%s\n' "${SUMMARY[@]}"
for name in "${FAILED_LOGS[@]}"; do failure_excerpt "$name"; done
rm -rf "$STEP_LOGS"
if ((SKIPPED)); then
  echo "$PASSED passed, $FAILED failed, $SKIPPED skipped"
else
  echo "$PASSED passed, $FAILED failed"
fi
((FAILED == 0))
