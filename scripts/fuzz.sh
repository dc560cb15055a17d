#!/usr/bin/env bash
# Runs every fuzz target (fuzz/fuzz_targets/*.rs) under libFuzzer for a while, with
# the stable toolchain: no nightly, no cargo-fuzz. The targets are built with the
# coverage instrumentation cargo-fuzz would add (sancov; no sanitizer: keylet's
# parsers are safe Rust, a panic or overflow is the crash), debug assertions and
# overflow checks on, into $CARGO_TARGET_DIR/fuzz (default target/fuzz).
#
# Usage: scripts/fuzz.sh [SECONDS_PER_TARGET (default 60)] [TARGET...]
# Each target starts from a copy of its seeds (fuzz/corpus/<target>/); the repository
# is not written to. A crash stops the run with the target's name and the input that
# crashed, which belongs in fuzz/corpus/<target>/ once fixed (replayed by cargo test).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SECS=${1:-60}; shift || true
[[ $SECS =~ ^[0-9]+$ ]] || { echo "fuzz.sh: seconds per target must be a number, got '$SECS'" >&2; exit 2; }
OUT=${CARGO_TARGET_DIR:-$ROOT/target}/fuzz
HOST=$(rustc -vV | awk '/^host:/ { print $2 }')
mapfile -t TARGETS < <(if (($#)); then printf '%s\n' "$@"; else
  for f in "$ROOT"/fuzz/fuzz_targets/*.rs; do basename "$f" .rs; done; fi)

# RUSTFLAGS reach only the fuzz targets' crates because --target is given (build
# scripts and proc macros are built without the instrumentation).
echo "fuzz.sh: building ${#TARGETS[@]} targets for $HOST"
(cd "$ROOT/fuzz" && RUSTC_BOOTSTRAP=1 RUSTFLAGS="-Cpasses=sancov-module \
  -Cllvm-args=-sanitizer-coverage-level=4 -Cllvm-args=-sanitizer-coverage-inline-8bit-counters \
  -Cllvm-args=-sanitizer-coverage-pc-table -Cllvm-args=-sanitizer-coverage-trace-compares \
  --cfg fuzzing -Cdebug-assertions -Coverflow-checks" \
  cargo build --release --bins --target "$HOST" --target-dir "$OUT")

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
for t in "${TARGETS[@]}"; do
  bin=$OUT/$HOST/release/$t
  [[ -x $bin ]] || { echo "fuzz.sh: no target '$t' (fuzz/fuzz_targets/$t.rs)" >&2; exit 2; }
  mkdir -p "$WORK/$t"
  [[ ! -d $ROOT/fuzz/corpus/$t ]] || cp -r "$ROOT/fuzz/corpus/$t/." "$WORK/$t/"
  if ! (cd "$WORK" && "$bin" "$WORK/$t" -max_total_time="$SECS" -rss_limit_mb=1024 \
    -print_final_stats=1 >"$WORK/$t.log" 2>&1); then
    tail -n 30 "$WORK/$t.log" >&2
    cp "$WORK"/crash-* "$ROOT/" 2>/dev/null || true
    echo "fuzz.sh: $t CRASHED; the input is in $ROOT/crash-* (above: its log)" >&2
    exit 1
  fi
  runs=$(awk '/stat::number_of_executed_units/ { print $2 }' "$WORK/$t.log")
  echo "fuzz.sh: $t: ${runs:-?} inputs in ${SECS} s, no crash"
done
