#!/usr/bin/env bash
# bench-pair.sh - two keylet binaries side by side on quote latency: scripts/bench-agent.sh
# run RUNS times for each, the binaries alternated (A, B, A, B, ...) so that both meet the same
# minutes of the host, then per binary and case (AK, mask) the spread and median over the runs
# of what keylet adds above floor + tls (µs), the allowance (0.15 x floor), and in how many runs
# the target (1.15 x floor + tls) was met. One run's verdict moves with the host's minute; the
# count over many runs is what BENCHMARKS.md compares.
#
# Usage: scripts/bench-pair.sh [--runs N] BIN_A BIN_B
#   --runs N  bench-agent.sh runs per binary (default 14; each is three rounds of 200
#             requests per case, about 20 s)
# Needs what bench-agent.sh needs (scripts/testbed.sh up, python3, jq).
# Environment: KEYLET_BENCH_PAIR_DIR (default /tmp/keylet-bench-pair): each run's summary,
# as a-<i>.json and b-<i>.json.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RUNS=14
while (($#)); do
  case $1 in
    --runs) RUNS=$2; shift ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed 's/^# \{0,1\}//;$d'; exit 0 ;;
    -*) echo "unknown option $1 (try --help)" >&2; exit 2 ;;
    *) break ;;
  esac
  shift
done
(($# == 2)) || { echo "usage: scripts/bench-pair.sh [--runs N] BIN_A BIN_B" >&2; exit 2; }
for bin in "$1" "$2"; do
  [[ -x $bin ]] || { echo "no executable keylet at $bin" >&2; exit 1; }
done
OUT=${KEYLET_BENCH_PAIR_DIR:-/tmp/keylet-bench-pair}
mkdir -p "$OUT"
for ((i = 1; i <= RUNS; i++)); do
  for side in a b; do
    bin=$1
    [[ $side == b ]] && bin=$2
    echo "[bench-pair] run $i of $RUNS, $side: $bin" >&2
    KEYLET_BIN=$bin KEYLET_BENCH_OUT="$OUT/$side-$i.json" \
      bash "$ROOT/scripts/bench-agent.sh" >"$OUT/$side-$i.log" 2>&1 ||
      { echo "bench-agent.sh failed for $bin; its output: $OUT/$side-$i.log" >&2; exit 1; }
  done
done
python3 - "$OUT" "$RUNS" "$1" "$2" <<'EOF'
import json, statistics, sys
out, runs, bins = sys.argv[1], int(sys.argv[2]), {"a": sys.argv[3], "b": sys.argv[4]}
print("| binary | AK | mask | over floor + tls, µs (runs) | median | allowance, µs | target met |")
print("|---|---|---|---|---|---|---|")
for side, path in bins.items():
    cases = {}
    for i in range(1, runs + 1):
        with open(f"{out}/{side}-{i}.json") as f:
            for q in json.load(f)["quotes"]:
                c = cases.setdefault((q["alg"], q["mask"]), {"over": [], "allow": [], "met": 0})
                c["over"].append(round((q["median_ms"] - q["floor_ms"] - q["tls_ms"]) * 1000))
                c["allow"].append(round(q["floor_ms"] * 150))
                c["met"] += bool(q["target_met"])
    for (alg, mask), c in sorted(cases.items()):
        over, allow = c["over"], c["allow"]
        print(f"| {side}: {path} | {alg} | {mask} | {min(over)} to {max(over)} | "
              f"{statistics.median(over)} | {min(allow)}-{max(allow)} | {c['met']} of {len(over)} |")
EOF
