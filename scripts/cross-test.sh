#!/usr/bin/env bash
# cross-test.sh - keylet-core's tests on other architectures, under qemu-user:
# aarch64 (64-bit little-endian), armv7 (32-bit usize) and s390x (big-endian),
# so the core's byte handling is shown not to depend on the host's byte order
# or word size. Each target is tested without and with the `alloc` feature
# (RSA verification), in debug, core only.
#
# Usage: scripts/cross-test.sh [--target T]...
#   --target T   one of aarch64-unknown-linux-gnu, armv7-unknown-linux-gnueabihf,
#                s390x-unknown-linux-gnu (repeatable; default all three)
# Installs what is missing (rustup target, Debian cross gcc, qemu-user-static;
# KEYLET_CROSS_NO_INSTALL=1 only reports it). Environment: CARGO_TARGET_DIR.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
# shellcheck source=scripts/cross-env.sh
source "$ROOT/scripts/cross-env.sh"

TARGETS=()
while (($#)); do
  case $1 in
    --target) [[ $# -ge 2 ]] || { echo "--target needs a value" >&2; exit 2; }
      TARGETS+=("$2"); shift 2 ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed 's/^# \{0,1\}//;$d'; exit 0 ;;
    *) echo "unknown option $1 (try --help)" >&2; exit 2 ;;
  esac
done
((${#TARGETS[@]})) || TARGETS=(aarch64-unknown-linux-gnu armv7-unknown-linux-gnueabihf s390x-unknown-linux-gnu)

results=() failed=0
for t in "${TARGETS[@]}"; do
  cross_setup "$t" || { results+=("FAIL  $t: toolchain setup"); failed=1; continue; }
  for features in "" alloc; do
    t0=$SECONDS
    echo "==== cross-test: $t ${features:+--features $features} (runner: $(cross_runner "$t"))"
    if cargo test --locked -p keylet-core --target "$t" ${features:+--features "$features"}; then
      results+=("$(printf 'PASS  %-32s %-6s %4d s' "$t" "${features:--}" $((SECONDS - t0)))")
    else
      results+=("$(printf 'FAIL  %-32s %-6s %4d s' "$t" "${features:--}" $((SECONDS - t0)))")
      failed=1
    fi
  done
done
printf '\n==== cross-test summary\n'
printf '%s\n' "${results[@]}"
exit "$failed"
