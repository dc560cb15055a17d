#!/usr/bin/env bash
# build-static.sh - one command for keylet's static release binaries (musl libc):
# LTO, codegen-units 1, opt-level z, panic=abort, stripped (the [profile.release]
# of the workspace Cargo.toml).
#
# Usage: scripts/build-static.sh [--target T | --all] [--minimal] [--bloat]
#   --target T  x86_64-unknown-linux-musl (default), aarch64-unknown-linux-musl,
#               armv7-unknown-linux-musleabihf (std built from rust-src with -Z build-std
#               and RUSTC_BOOTSTRAP=1, linked with Debian's musl-dev:armhf) or
#               riscv64gc-unknown-linux-gnu (static glibc, +crt-static: rustup has no
#               riscv64 musl std and Debian 12 no riscv64 musl); repeatable
#   --all       all four, one after the other
#   --minimal   without the optional subsystems (cargo --no-default-features: the
#               pull agent with mTLS and its configuration; no doctor, metrics,
#               payload delivery and revocation actions, identity listener, push
#               mode), into $CARGO_TARGET_DIR/minimal/<target>/release/keylet
#   --bloat     also print the per-crate size table (needs `cargo install cargo-bloat`)
# Installs what a target needs when missing (scripts/cross-env.sh: rustup target or
# rust-src, musl-tools or the Debian cross gcc for ring's C, musl-dev:armhf (adds the
# armhf architecture to dpkg), qemu-user-static to run it).
# Environment: CARGO_TARGET_DIR (default ./target), KEYLET_SIZE_BUDGET (bytes,
# default 2621440 = 2.5 MiB).
# Checks: each file is statically linked (`file` says "static", `ldd` says "not a
# dynamic executable"), stripped, runs (`--version`; a foreign one under
# qemu-user) and is within the size budget; exits 1 on a failure, 3 when every
# binary is fine but one is over the budget.
# Prints the path and size of each binary.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
# shellcheck source=scripts/cross-env.sh
source "$ROOT/scripts/cross-env.sh"
STATIC_TARGETS=(x86_64-unknown-linux-musl aarch64-unknown-linux-musl
  armv7-unknown-linux-musleabihf riscv64gc-unknown-linux-gnu)
BUDGET=${KEYLET_SIZE_BUDGET:-2621440}
BLOAT=0 TARGETS=() FEATURES=() TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
while (($#)); do
  case $1 in
    --target) [[ $# -ge 2 ]] || { echo "--target needs a value" >&2; exit 2; }
      [[ " ${STATIC_TARGETS[*]} " == *" $2 "* ]] ||
        { echo "unsupported target $2 (supported: ${STATIC_TARGETS[*]})" >&2; exit 2; }
      TARGETS+=("$2"); shift ;;
    --all) TARGETS=("${STATIC_TARGETS[@]}") ;;
    --bloat) BLOAT=1 ;;
    --minimal) FEATURES=(--no-default-features) TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}/minimal ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed 's/^# \{0,1\}//;$d'; exit 0 ;;
    *) echo "unknown option $1 (try --help)" >&2; exit 2 ;;
  esac
  shift
done
((${#TARGETS[@]})) || TARGETS=(x86_64-unknown-linux-musl)

die() { echo "build-static: $*" >&2; exit 1; }

# build TARGET: builds and checks one binary; returns 3 when only the budget is missed.
build() {
  local target=$1 bin desc ldd_out size runner
  cross_setup "$target" || die "cannot set up the $target toolchain"
  # (called in an `||` list, so set -e is off here: every failure exits by hand)
  env "${CROSS_CARGO_ENV[@]}" CARGO_TARGET_DIR="$TARGET_DIR" cargo build "${CROSS_CARGO_ARGS[@]}" \
    --release --locked "${FEATURES[@]}" --target "$target" -p keylet --bin keylet ||
    die "cargo build failed for $target"
  bin=$TARGET_DIR/$target/release/keylet
  [[ -x $bin ]] || die "no binary at $bin"

  desc=$(file -b "$bin")
  [[ $desc == *"statically linked"* || $desc == *"static-pie linked"* ]] ||
    die "not static: file says: $desc"
  ldd_out=$(ldd "$bin" 2>&1 || true)
  [[ $ldd_out == *"not a dynamic executable"* || $ldd_out == *"statically linked"* ]] ||
    die "not static: ldd says: $ldd_out"
  [[ $desc == *"stripped"* && $desc != *"not stripped"* ]] || die "not stripped: file says: $desc"

  size=$(stat -c %s "$bin")
  echo "target: $target"
  echo "binary: $bin"
  echo "file:   $desc"
  echo "ldd:    $ldd_out"
  awk -v s="$size" -v b="$BUDGET" 'BEGIN { printf "size:   %d bytes (%.2f MiB; budget %.2f MiB)\n", s, s / 1048576, b / 1048576 }'
  runner=$(cross_runner "$target")
  # shellcheck disable=SC2086 # the runner is a command and its arguments
  $runner "$bin" --version >/dev/null 2>&1 || $runner "$bin" --help >/dev/null 2>&1 ||
    die "the static binary does not run${runner:+ under $runner}"

  if ((BLOAT)); then
    command -v cargo-bloat >/dev/null || die "cargo-bloat is not installed: cargo install cargo-bloat"
    # cargo-bloat needs symbols: the same profile, not stripped, in its own dir.
    env "${CROSS_CARGO_ENV[@]}" CARGO_PROFILE_RELEASE_STRIP=false cargo bloat "${CROSS_CARGO_ARGS[@]}" \
      --release --locked "${FEATURES[@]}" --target "$target" \
      -p keylet --bin keylet --crates -n 30 \
      --target-dir "$TARGET_DIR/bloat" || die "cargo bloat failed"
  fi
  ((size <= BUDGET)) || { echo "build-static: $target: $size bytes is over the budget of $BUDGET bytes" >&2; return 3; }
}

over=0
for t in "${TARGETS[@]}"; do
  build "$t" || over=3
  echo
done
exit "$over"
