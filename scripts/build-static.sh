#!/usr/bin/env bash
# build-static.sh - one command for keylet's static release binaries (musl libc):
# LTO, codegen-units 1, opt-level z, panic=abort, stripped (the [profile.release]
# of the workspace Cargo.toml), with std built from rust-src and the size flags of
# size_flags below (each one's saving: BENCHMARKS.md, "Static binary").
#
# Usage: scripts/build-static.sh [--target T | --all] [--minimal [--features F]] [--bloat]
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
#   --features F  with --minimal: these optional subsystems only (comma-separated:
#               doctor, metrics, payload, identity, push, iak)
#   --bloat     also print the per-crate size table (needs `cargo install cargo-bloat`)
# Installs what a target needs when missing (scripts/cross-env.sh: rustup target or
# rust-src, musl-tools or the Debian cross gcc for ring's C, musl-dev:armhf (adds the
# armhf architecture to dpkg), qemu-user-static to run it).
# Environment: CARGO_TARGET_DIR (default ./target), KEYLET_SIZE_BUDGET (bytes,
# default 2621440 = 2.5 MiB), KEYLET_AUDITABLE=1 (scripts/release.sh sets it): the
# binary carries its dependency list (crates and versions, compressed JSON in a .dep-v0
# section: cargo auditable build, cargo-auditable pinned in scripts/setup.sh --release) for `cargo
# audit bin`, syft, trivy and rust-audit-info; built into $CARGO_TARGET_DIR/auditable.
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
BLOAT=0 MINIMAL=0 PICKED='' TARGETS=() FEATURES=() TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
while (($#)); do
  case $1 in
    --target) [[ $# -ge 2 ]] || { echo "--target needs a value" >&2; exit 2; }
      [[ " ${STATIC_TARGETS[*]} " == *" $2 "* ]] ||
        { echo "unsupported target $2 (supported: ${STATIC_TARGETS[*]})" >&2; exit 2; }
      TARGETS+=("$2"); shift ;;
    --all) TARGETS=("${STATIC_TARGETS[@]}") ;;
    --bloat) BLOAT=1 ;;
    --minimal) MINIMAL=1 TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}/minimal ;;
    --features) [[ $# -ge 2 ]] || { echo "--features needs a value" >&2; exit 2; }
      PICKED=$2; shift ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed 's/^# \{0,1\}//;$d'; exit 0 ;;
    *) echo "unknown option $1 (try --help)" >&2; exit 2 ;;
  esac
  shift
done
((${#TARGETS[@]})) || TARGETS=(x86_64-unknown-linux-musl)
if ((MINIMAL)); then
  FEATURES=(--no-default-features)
  [[ -z $PICKED ]] || FEATURES+=(--features "$PICKED")
elif [[ -n $PICKED ]]; then
  echo "--features picks subsystems for --minimal (the default build has them all)" >&2; exit 2
fi

die() { echo "build-static: $*" >&2; exit 1; }

# size_flags TARGET: the release binaries' size flags (BENCHMARKS.md, "Static binary",
# lists what each saves), set in SIZE_ENV (VAR=VALUE words for env) and SIZE_ARGS
# (cargo arguments). They need unstable flags, which RUSTC_BOOTSTRAP=1 lets the stable
# compiler take; they apply to these builds only, never to tests (which need unwinding).
# - std is built from rust-src with the release profile (LTO across std, opt-level z,
#   its `optimize_for_size` algorithms) and without its backtrace symbolizer: a
#   stripped binary has no symbols to print anyway;
# - no unwind tables (.eh_frame): nothing unwinds with panic = "abort";
# - a panic aborts at once, without a message (the process dies with SIGILL or
#   SIGABRT). keylet does not panic on any input; a panic is a bug, and a debug or
#   `cargo build --release` build prints its message;
# - derived Debug prints the name of the type or variant, not its fields (keylet's
#   messages use Display; the names of errors from dependencies stay);
# - the paths of the source files are relative (crates/..., rust/..., keylet/...),
#   the same on every build machine;
# - x86_64: LLVM's machine outliner, which AArch64 and RISC-V run by default on
#   size-optimized code: repeated instruction sequences become one shared function.
size_flags() {
  local target=$1 env_t sys cargo_src flags
  env_t=$(tr 'a-z-' 'A-Z_' <<<"$target")
  sys=$(rustc --print sysroot) || return 1
  cargo_src=${CARGO_HOME:-$HOME/.cargo}/registry/src
  flags="-C force-unwind-tables=no -Z fmt-debug=shallow -Z unstable-options -C panic=immediate-abort"
  # (the last prefix that matches applies: crates.io's own directory, then any registry)
  flags+=" --remap-path-prefix=$cargo_src=crates"
  flags+=" --remap-path-prefix=$cargo_src/index.crates.io-1949cf8c6b5b557f=crates"
  flags+=" --remap-path-prefix=$sys/lib/rustlib/src/rust=rust --remap-path-prefix=$ROOT=keylet"
  [[ $target != x86_64-* ]] || flags+=" -C llvm-args=-enable-machine-outliner=always"
  local var=CARGO_TARGET_${env_t}_RUSTFLAGS
  cross_build_std "$target" || return 1
  SIZE_ENV=("${CROSS_CARGO_ENV[@]}" "$var=${!var:-} $flags")
  SIZE_ARGS=("${CROSS_CARGO_ARGS[@]}" -Z "build-std-features=optimize_for_size")
}

# build TARGET: builds and checks one binary; returns 3 when only the budget is missed.
build() {
  local target=$1 bin desc ldd_out size runner deps
  cross_setup "$target" || die "cannot set up the $target toolchain"
  size_flags "$target" || die "cannot set up the size flags for $target"
  # (called in an `||` list, so set -e is off here: every failure exits by hand)
  env "${SIZE_ENV[@]}" CARGO_TARGET_DIR="$TARGET_DIR" "${CARGO_BUILD[@]}" "${SIZE_ARGS[@]}" \
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

  if [[ ${CARGO_BUILD[1]} == auditable ]] && command -v rust-audit-info >/dev/null; then
    deps=$(rust-audit-info "$bin" | jq '.packages | length') || deps=0
    ((deps > 0)) || die "$bin carries no dependency list (rust-audit-info)"
    echo "deps:   $deps crates in its .dep-v0 section (cargo-auditable; rust-audit-info reads it)"
  fi

  if ((BLOAT)); then
    command -v cargo-bloat >/dev/null || die "cargo-bloat is not installed: cargo install cargo-bloat"
    # cargo-bloat needs symbols: the same profile, not stripped, in its own dir.
    env "${SIZE_ENV[@]}" CARGO_PROFILE_RELEASE_STRIP=false cargo bloat "${SIZE_ARGS[@]}" \
      --release --locked "${FEATURES[@]}" --target "$target" \
      -p keylet --bin keylet --crates -n 30 \
      --target-dir "$TARGET_DIR/bloat" || die "cargo bloat failed"
  fi
  ((size <= BUDGET)) || { echo "build-static: $target: $size bytes is over the budget of $BUDGET bytes" >&2; return 3; }
}

CARGO_BUILD=(cargo build)
if [[ ${KEYLET_AUDITABLE:-0} == 1 ]]; then
  CARGO_BUILD=(cargo auditable build)
  TARGET_DIR=$TARGET_DIR/auditable
  command -v cargo-auditable >/dev/null ||
    die "cargo-auditable is missing: cargo install --locked cargo-auditable@0.7.7 (scripts/setup.sh --release does)"
fi

over=0
for t in "${TARGETS[@]}"; do
  build "$t" || over=3
  echo
done
exit "$over"
