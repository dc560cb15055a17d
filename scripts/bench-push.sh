#!/usr/bin/env bash
# bench-push.sh - keylet's CPU per 100 attestations and its RSS, pull mode beside push mode,
# each attested by the real Keylime verifier of the testbed at its quote_interval (2 s).
#
# Usage: scripts/bench-push.sh [--count N]   (default 100 attestations per mode)
# Needs: scripts/testbed.sh up (the push verifier is started like tests/e2e/push.sh does:
# KEYLET_TB_PUSH_VERIFIER_PORT, default the pull verifier's port + 2), a keylet build
# (KEYLET_BIN, default the newest of target/{debug,release}/keylet).
#
# For each mode: a fresh keylet registers, the tenant adds it (pull: -t/-tp; push:
# --push-model), and after the 5th PASS keylet's CPU time (utime + stime of /proc/PID/stat)
# and the verifier's attestation_count are read; again after N more attestations. Prints
# one JSON line per mode: CPU seconds per 100 attestations, VmRSS and VmHWM at the end, the
# wall time per attestation. Metrics are off (push mode would read its status each round).
set -euo pipefail
COUNT=100
while (($#)); do
  case $1 in
    --count) COUNT=$2; shift ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed 's/^# \{0,1\}//;$d'; exit 0 ;;
    *) echo "unknown option $1 (try --help)" >&2; exit 2 ;;
  esac
  shift
done
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../tests/e2e/lib.sh"
export KEYLET_TB_PUSH_VERIFIER_PORT=${KEYLET_TB_PUSH_VERIFIER_PORT:-$((VERIFIER_PORT + 2))}
PUSH_PORT=$KEYLET_TB_PUSH_VERIFIER_PORT
ZERO64=$(printf '%064d' 0)
POLICY="{\"15\":[\"$ZERO64\"]}"

cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
status_kb() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }

# count MODE UUID: the verifier's attestation_count (pull: the pull verifier; push: the push one)
count() {
  local port=$VERIFIER_PORT
  [[ $1 == push ]] && port=$PUSH_PORT
  rest "$port" "agents/$2" | jq -r 'select(.code == 200) | .results | select(.attestation_status == "PASS") | .attestation_count'
}

wait_count() { # MODE UUID N SECS
  local t0=$SECONDS c=
  while ((SECONDS - t0 < $4)); do
    c=$(count "$1" "$2" 2>/dev/null || true)
    [[ -n $c ]] && ((c >= $3)) && { echo "$c"; return 0; }
    sleep 0.5
  done
  fail "$1: attestation_count ${c:-none} did not reach $3 within $4 s"
}

measure() { # MODE
  local mode=$1 n=bench-$1 uuid pid c0 c1 t0 t1 j0 j1 hz
  if [[ $mode == push ]]; then
    fresh_agent "$n" attestation_mode=push "verifier_url=https://127.0.0.1:$PUSH_PORT" \
      "verifier_tls_ca_cert=$TLS/cacert.crt"
  else
    fresh_agent "$n"
  fi
  RUST_LOG=warn start_registered "$n"; uuid=$REG_UUID pid=${KEYLET_PID[$n]}
  if [[ $mode == push ]]; then
    tb push-add "$uuid" --tpm_policy "$POLICY" >"$E2E_TMP/add.log" 2>&1
  else
    tenant_add "$uuid" "$AGENT_PORT" --tpm_policy "$POLICY"
  fi
  c0=$(wait_count "$mode" "$uuid" 5 120)
  j0=$(cpu_ticks "$pid") t0=$(date +%s.%N)
  c1=$(wait_count "$mode" "$uuid" $((c0 + COUNT)) $((COUNT * 4 + 60)))
  j1=$(cpu_ticks "$pid") t1=$(date +%s.%N)
  hz=$(getconf CLK_TCK)
  jq -cn --arg mode "$mode" --argjson n $((c1 - c0)) --argjson ticks $((j1 - j0)) --argjson hz "$hz" \
    --argjson rss "$(status_kb "$pid" VmRSS)" --argjson hwm "$(status_kb "$pid" VmHWM)" \
    --argjson wall "$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')" \
    '{mode: $mode, attestations: $n, cpu_s_per_100: ($ticks / $hz / $n * 100 * 1000 | round / 1000),
      vmrss_kb: $rss, vmhwm_kb: $hwm, wall_s_per_attestation: ($wall / $n * 100 | round / 100)}'
  agent_stop "$n"
}

e2e_init bench-push
say "keylet: $KEYLET_BIN ($COUNT attestations per mode)"
if ! (exec 3<>"/dev/tcp/127.0.0.1/$PUSH_PORT") 2>/dev/null; then
  tb start >/dev/null 2>&1
  trap 'rc=$?; tb service-stop verifier-push >/dev/null 2>&1 || true; (exit "$rc"); e2e_cleanup' EXIT
fi
measure pull
measure push
