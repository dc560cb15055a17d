#!/usr/bin/env bash
# build-static.sh - one command for keylet's static release binary:
# x86_64-unknown-linux-musl, LTO, codegen-units 1, opt-level s, panic=abort,
# stripped (the [profile.release] of the workspace Cargo.toml).
#
# Usage: scripts/build-static.sh [--bloat]
#   --bloat   also print the per-crate size table (needs `cargo install cargo-bloat`)
# Environment: CARGO_TARGET_DIR (default ./target), KEYLET_SIZE_BUDGET (bytes,
# default 2621440 = 2.5 MiB).
# Checks: the file is statically linked (`file` says "static", `ldd` says "not a
# dynamic executable") and within the size budget; exits non-zero otherwise.
# Prints the path and size of the binary.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
TARGET=x86_64-unknown-linux-musl
BUDGET=${KEYLET_SIZE_BUDGET:-2621440}
BLOAT=0
for a in "$@"; do
  case $a in
    --bloat) BLOAT=1 ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed 's/^# \{0,1\}//;$d'; exit 0 ;;
    *) echo "unknown option $a (try --help)" >&2; exit 2 ;;
  esac
done

die() { echo "build-static: $*" >&2; exit 1; }

rustup target list --installed 2>/dev/null | grep -qx "$TARGET" || rustup target add "$TARGET"
# ring compiles some C and assembly; for a musl target the cc crate calls musl-gcc.
command -v musl-gcc >/dev/null || die "musl-gcc is missing: apt-get install musl-tools"

cargo build --release --locked --target "$TARGET" -p keylet --bin keylet
BIN=${CARGO_TARGET_DIR:-$ROOT/target}/$TARGET/release/keylet
[[ -x $BIN ]] || die "no binary at $BIN"

desc=$(file -b "$BIN")
[[ $desc == *"statically linked"* || $desc == *"static-pie linked"* ]] ||
  die "not static: file says: $desc"
ldd_out=$(ldd "$BIN" 2>&1 || true)
[[ $ldd_out == *"not a dynamic executable"* || $ldd_out == *"statically linked"* ]] ||
  die "not static: ldd says: $ldd_out"
[[ $desc == *"stripped"* && $desc != *"not stripped"* ]] || die "not stripped: file says: $desc"

size=$(stat -c %s "$BIN")
echo "binary: $BIN"
echo "file:   $desc"
echo "ldd:    $ldd_out"
awk -v s="$size" -v b="$BUDGET" 'BEGIN { printf "size:   %d bytes (%.2f MiB; budget %.2f MiB)\n", s, s / 1048576, b / 1048576 }'
"$BIN" --version >/dev/null 2>&1 || "$BIN" --help >/dev/null 2>&1 || die "the static binary does not run"

if ((BLOAT)); then
  command -v cargo-bloat >/dev/null || die "cargo-bloat is not installed: cargo install cargo-bloat"
  # cargo-bloat needs symbols: the same profile, not stripped, in its own dir.
  CARGO_PROFILE_RELEASE_STRIP=false cargo bloat --release --locked --target "$TARGET" \
    -p keylet --bin keylet --crates -n 30 \
    --target-dir "${CARGO_TARGET_DIR:-$ROOT/target}/bloat"
fi

((size <= BUDGET)) || die "$size bytes is over the budget of $BUDGET bytes"
