#!/usr/bin/env bash
# bench-ima.sh - an integrity quote carrying a large IMA list: time and keylet's peak RSS.
#
# Usage: scripts/bench-ima.sh [--entries N] [--count C]
#   --entries N  lines in the IMA list (default 100000, about 17 MB)
#   --count C    quotes fetched (default 10)
# Needs: scripts/testbed.sh up (swtpm + registrar on the KEYLET_TB_* ports), curl, jq.
# Environment: KEYLET_BIN (default: the newest target/{debug,release}/keylet).
#
# keylet runs without mTLS with ima_ml_path on a list of N ima-ng lines; each quote is
# GET /v2.6/quotes/integrity?...&mask=0x400&partial=1&ima_ml_entry=0, the whole list in
# one answer, timed by curl (time_total). Prints min/median/max seconds, the answer's
# size, and keylet's VmHWM (peak RSS) after the quotes, as JSON.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ENTRIES=100000 COUNT=10
while (($#)); do
  case $1 in
    --entries) ENTRIES=$2; shift ;;
    --count) COUNT=$2; shift ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed 's/^# \{0,1\}//;$d'; exit 0 ;;
    *) echo "unknown option $1 (try --help)" >&2; exit 2 ;;
  esac
  shift
done
# shellcheck source=tests/e2e/lib.sh
source "$ROOT/tests/e2e/lib.sh"
e2e_init bench-ima

fresh_agent ima enable_agent_mtls=false
log=$(agent_dir ima)/ascii_runtime_measurements
awk -v n="$ENTRIES" 'BEGIN { for (i = 0; i < n; i++)
  printf "10 %040x ima-ng sha256:%064x /usr/lib/x86_64-linux-gnu/keylet-bench/file-%08d.so\n", i, i, i }' >"$log"
size=$(stat -c %s "$log")
say "IMA list: $ENTRIES lines, $size bytes"
start_registered ima
pid=${KEYLET_PID[ima]}

url="http://127.0.0.1:$AGENT_PORT/v2.6/quotes/integrity?nonce=abcdefghij0123456789&mask=0x400&partial=1&ima_ml_entry=0"
times=()
for ((i = 0; i < COUNT; i++)); do
  out=$(curl -sS -o "$E2E_TMP/answer.json" -w '%{http_code} %{time_total} %{size_download}' "$url")
  read -r code t bytes <<<"$out"
  assert_eq "$code" 200 "quote $i"
  times+=("$t")
done
got=$(jq -r '.results.ima_measurement_list | length' "$E2E_TMP/answer.json")
want=$(wc -m <"$log")
assert_eq "$got" "$want" "characters of ima_measurement_list"
hwm=$(awk '/^VmHWM/ { print $2 }' "/proc/$pid/status")
agent_stop ima
printf '%s\n' "${times[@]}" | sort -n | jq -s --argjson e "$ENTRIES" --argjson s "$size" --argjson b "$bytes" \
  --argjson h "$hwm" '{entries: $e, log_bytes: $s, answer_bytes: $b, quotes: length, min_s: .[0],
  median_s: .[((length - 1) / 2 | floor)], max_s: .[-1], vmhwm_kb: $h}'
