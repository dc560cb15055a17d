#!/usr/bin/env bash
# bench-agent.sh - keylet's performance against the TPM floor, in one run against one swtpm.
#
# Usage: scripts/bench-agent.sh [--count N] [--rounds R] [--soak]
#   --count N  requests per measurement (default 200)
#   --rounds R floor and agents measured R times in turn (default 3); the summary takes the
#              median over the rounds of each figure, so a slow minute of the host moves one
#              round, not the verdict
#   --soak     also poll /quotes/integrity every 2 s for 10 minutes and sample RSS
# Needs: scripts/testbed.sh up (swtpm + registrar + verifier on the KEYLET_TB_* ports),
# no other agent on that swtpm, python3, jq. Builds the tpm-floor bench binary.
# Environment: KEYLET_BIN (default: the static musl release build of
# scripts/build-static.sh), KEYLET_REFERENCE_AGENT (a reference agent binary already on
# this machine: measured the same way, ratios printed; nothing is downloaded or built),
# KEYLET_BENCH_TPM_PROFILE (discrete or firmware: everything through the slow-tpm proxy with
# that chip's answer times; KEYLET_SLOW_TPM_PORT, default the swtpm port + 4).
#
# Measures, per AK (RSA-2048 and ECC P-256) and mask (0x0, 0x400400):
#   floor    keylet-core's quote path (PCR_Read, TPM2_Quote; PCR_Reset, PCR_Extend when PCR 16 is unbound) sent
#            straight to swtpm over one open connection (benches/src/bin/tpm-floor.rs)
#   agent    GET /v<API>/quotes/integrity over a new mTLS connection per request, API the newest
#            version the agent and keylet both serve (2.6 for keylet, 2.5 for rust-keylime 0.2.9), as the
#            verifier polls (benches/scripts/mtls_client.py); median and p95
#   tls      GET /version the same way: the TLS handshake + HTTP cost without a TPM; asked in
#            turn with the two quotes (one request of each, COUNT times), so that both
#            meet the same moments of the host
#   overhead agent - floor, agent / (floor + tls), and the target 1.15 x floor + tls (target_met)
# plus the agent's RSS after the run and CPU per 100 quotes (/proc), the time from
# exec to "registered and active" (cold: new AK; warm: saved AK), and, on the warm start,
# the time from exec to the verifier's first PASS: once registered, the real
# keylime_tenant -c add (its own duration: tenant_add_s), then the verifier's record polled
# (0.1 s) until attestation_count >= 1 with attestation_status PASS (at most 120 s; the
# agent is then removed from the verifier, before the quotes). Prints a JSON summary.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
COUNT=200 ROUNDS=3 SOAK=0
while (($#)); do
  case $1 in
    --count) COUNT=$2; shift ;;
    --rounds) ROUNDS=$2; shift ;;
    --soak) SOAK=1 ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed 's/^# \{0,1\}//;$d'; exit 0 ;;
    *) echo "unknown option $1 (try --help)" >&2; exit 2 ;;
  esac
  shift
done
: "${KEYLET_BIN:=${CARGO_TARGET_DIR:-$ROOT/target}/x86_64-unknown-linux-musl/release/keylet}"
[[ -x $KEYLET_BIN ]] || { echo "no keylet at $KEYLET_BIN: run scripts/build-static.sh or set KEYLET_BIN" >&2; exit 1; }
export KEYLET_BIN
# shellcheck source=tests/e2e/lib.sh
source "$ROOT/tests/e2e/lib.sh"
CLIENT=$ROOT/benches/scripts/mtls_client.py

cargo build --release -q -p keylet-benches --bin tpm-floor
FLOOR_BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/tpm-floor
e2e_init bench
# KEYLET_BENCH_TPM_PROFILE=discrete|firmware: the floor and every agent reach swtpm through the
# slow-tpm proxy (tests/src/bin/slow-tpm.rs), which holds each command for that profile's
# answer time (a discrete chip: CreatePrimary/Create 6 s, Quote 200 ms, PCR commands 8-10 ms).
TPM_PORT=$SWTPM_PORT
if [[ -n ${KEYLET_BENCH_TPM_PROFILE:-} ]]; then
  cargo build -q -p keylet-tests --bin slow-tpm
  TPM_PORT=${KEYLET_SLOW_TPM_PORT:-$((SWTPM_PORT + 4))}
  "${CARGO_TARGET_DIR:-$ROOT/target}/debug/slow-tpm" "$TPM_PORT" "$SWTPM_PORT" "$KEYLET_BENCH_TPM_PROFILE" \
    --max-secs 14400 >"$E2E_TMP/slow-tpm.log" 2>&1 &
  SLOW_TPM_PID=$!
  trap 'kill "$SLOW_TPM_PID" 2>/dev/null || true; e2e_cleanup' EXIT
  for ((i = 0; i < 100; i++)); do grep -q "^listening on" "$E2E_TMP/slow-tpm.log" && break; sleep 0.1; done
  grep -q "^listening on" "$E2E_TMP/slow-tpm.log" || { fail "slow-tpm did not start: $(cat "$E2E_TMP/slow-tpm.log")"; exit 1; }
  export KEYLET_E2E_TPM_PORT=$TPM_PORT # agent_new's tpm_device
  if [[ -n ${KEYLET_REFERENCE_AGENT:-} ]]; then
    # The reference's swtpm TCTI also sets the locality over swtpm's control channel (port + 1)
    # and gives up without it; slow-tpm has none: forward TPM_PORT + 1 to swtpm's, unchanged.
    python3 - "$((TPM_PORT + 1))" "$((SWTPM_PORT + 1))" >"$E2E_TMP/ctrl-fwd.log" 2>&1 <<'EOF' &
import socket, sys, threading
lp, up = int(sys.argv[1]), int(sys.argv[2])
srv = socket.create_server(("127.0.0.1", lp))
print("listening on", lp, flush=True)
def pipe(a, b):
    try:
        while d := a.recv(65536):
            b.sendall(d)
        b.shutdown(socket.SHUT_WR)
    except OSError:
        pass
def serve(c):
    with c, socket.create_connection(("127.0.0.1", up)) as u:
        t = threading.Thread(target=pipe, args=(u, c)); t.start(); pipe(c, u); t.join()
while True:
    threading.Thread(target=serve, args=(srv.accept()[0],), daemon=True).start()
EOF
    CTRL_FWD_PID=$!
    trap 'kill "$SLOW_TPM_PID" "$CTRL_FWD_PID" 2>/dev/null || true; e2e_cleanup' EXIT
    for ((i = 0; i < 100; i++)); do grep -q "^listening on" "$E2E_TMP/ctrl-fwd.log" && break; sleep 0.1; done
    grep -q "^listening on" "$E2E_TMP/ctrl-fwd.log" || { fail "control-port forwarder did not start: $(cat "$E2E_TMP/ctrl-fwd.log")"; exit 1; }
  fi
fi
RESULTS=$E2E_TMP/results.jsonl
: >"$RESULTS"
ROUND=1
record() { jq -c --argjson r "$ROUND" '. + {round: $r}' <<<"$1" >>"$RESULTS"; }

# ---------------------------------------------------------------- the TPM floor
floor() {
  local alg mask r
  tb tpm-flush >/dev/null 2>&1 || true
  for alg in rsa ecc; do
    for mask in 0x0 0x400400; do
      r=$("$FLOOR_BIN" 127.0.0.1 "$TPM_PORT" "$alg" "$mask" "$COUNT")
      say "round $ROUND: floor $alg $mask: $r"
      record "$(jq -c '{kind: "floor"} + .' <<<"$r")"
    done
  done
}

# ---------------------------------------------------------------- an agent
# startup_time NAME BIN ACTIVATED-REGEX [K=V...]: runs BIN "${BIN_ARGS[@]}"; STARTUP_S = seconds from exec to the log line.
startup_time() {
  local n=$1 bin=$2 re=$3 t0 i; shift 3
  agent_render "$n"
  [[ ! -f $E2E_TMP/$n/keylet.log ]] || mv "$E2E_TMP/$n/keylet.log" "$E2E_TMP/$n/keylet.log.cold"
  t0=$(date +%s%N) STARTUP_T0=$t0
  keylet_env "$n" "$@" "$bin" "${BIN_ARGS[@]}" >>"$E2E_TMP/$n/keylet.log" 2>&1 </dev/null &
  KEYLET_PID[$n]=$!
  for ((i = 0; i < 6000; i++)); do
    if grep -q -E "$re" "$E2E_TMP/$n/keylet.log" 2>/dev/null; then
      STARTUP_S=$(awk -v a="$t0" -v b="$(date +%s%N)" 'BEGIN { printf "%.3f", (b - a) / 1e9 }'); return 0
    fi
    agent_alive "$n" || { agent_log_tail "$n"; fail "'$n' exited during start-up"; return 1; }
    sleep 0.01
  done
  fail "'$n' was not active within 60 s"
}

since() { awk -v a="$1" -v b="$(date +%s%N)" 'BEGIN { printf "%.3f", (b - a) / 1e9 }'; }

# first_pass: right after startup_time (the agent registered, its start at STARTUP_T0), the
# real keylime_tenant -c add for the one agent the registrar holds (the registrar was reset
# before the cold start), then the verifier's record polled until its first PASS. Sets
# TENANT_S (the tenant's run) and FIRST_PASS_S (exec -> first PASS); removes the agent from
# the verifier. Returns 1 (reason said) when there is no PASS within 120 s.
first_pass() {
  local uuids u t1 r st cnt t0=$SECONDS
  TENANT_S=null FIRST_PASS_S=null
  uuids=$(rest "$REGISTRAR_TLS_PORT" agents/ | jq -r '.results.uuids[]?') || { fail "registrar list failed"; return 1; }
  [[ -n $uuids && $uuids != *$'\n'* ]] || { fail "expected one agent at the registrar, have: ${uuids:-none}"; return 1; }
  u=$uuids
  t1=$(date +%s%N)
  tenant_add "$u" "$AGENT_PORT" || return 1
  TENANT_S=$(since "$t1")
  while ((SECONDS - t0 < 120)); do
    r=$(verifier_get "$u" 2>/dev/null || true)
    st=$(jq -r '.attestation_status // empty' <<<"$r" 2>/dev/null || true)
    cnt=$(jq -r '.attestation_count // 0' <<<"$r" 2>/dev/null || echo 0)
    if [[ $st == PASS ]] && ((cnt >= 1)); then
      FIRST_PASS_S=$(since "$STARTUP_T0")
      verifier_delete "$u" || return 1
      return 0
    fi
    if [[ $st == FAIL ]]; then
      fail "verifier marks $u FAIL: $(jq -c '{operational_state, severity_level, last_event_id}' <<<"$r")"
      verifier_delete "$u" || true; return 1
    fi
    sleep 0.1
  done
  fail "agent $u: no PASS within 120 s (last: $(jq -c '{operational_state, attestation_status, attestation_count}' <<<"${r:-{\}}" 2>/dev/null))"
  verifier_delete "$u" || true; return 1
}

wait_port() {
  local i
  for ((i = 0; i < 300; i++)); do (exec 3<>"/dev/tcp/127.0.0.1/$AGENT_PORT") 2>/dev/null && return 0; sleep 0.05; done
  fail "nothing listens on $AGENT_PORT"
}

# wait_ready NAME: the agent listens and catches SIGTERM (SigCgt bit 15 in /proc): rust-keylime
# 0.2.9 opens its port before its runtime installs the handler, and a SIGTERM in between kills it
# (exit 143) instead of stopping it.
wait_ready() {
  local pid=${KEYLET_PID[$1]} i m
  wait_port
  for ((i = 0; i < 100; i++)); do
    m=$(awk '/^SigCgt:/ { print $2 }' "/proc/$pid/status" 2>/dev/null || true)
    [[ -n $m ]] && (((16#$m >> 14) & 1)) && return 0
    sleep 0.05
  done
  fail "'$1' (pid $pid) does not catch SIGTERM 5 s after opening its port"
}

# The agent API versions keylet serves, oldest first.
KEYLET_APIS='["2.1","2.2","2.3","2.4","2.5","2.6"]'

# common_api CERT: the newest agent API version that both the agent on AGENT_PORT (its
# GET /version: supported_versions, else supported_version, its newest) and keylet serve.
# rust-keylime 0.2.9 serves 2.1-2.5 and refuses /v2.6 with 400.
common_api() {
  local body
  body=$(python3 "$CLIENT" get 127.0.0.1 "$AGENT_PORT" "$1" "$TLS/client-cert.crt" "$TLS/client-private.pem" /version) ||
    { fail "GET /version failed"; return 1; }
  jq -er --argjson k "$KEYLET_APIS" '
    def num: split(".") | map(tonumber);
    if .results.supported_versions then .results.supported_versions | map(select(. as $v | $k | index($v)))
    else (.results.supported_version | num) as $newest | $k | map(select(num <= $newest)) end
    | max_by(num)' <<<"$body" ||
    { fail "no agent API version in common with keylet in: $body"; return 1; }
}

# measure NAME LABEL ALG BIN ACTIVATED-REGEX [args/env...]: cold + warm start, timings.
measure() {
  local n=$1 label=$2 alg=$3 bin=$4 re=$5 cold warm cert pid mask r; shift 5
  tb reset >/dev/null 2>&1
  tb tpm-flush >/dev/null 2>&1 || true
  agent_new "$n"
  if [[ $alg == ecc ]]; then agent_set "$n" tpm_encryption_alg ecc; agent_set "$n" tpm_signing_alg ecdsa; fi
  startup_time "$n" "$bin" "$re" "$@"; cold=$STARTUP_S
  wait_ready "$n"
  agent_stop "$n"
  startup_time "$n" "$bin" "$re" "$@"; warm=$STARTUP_S
  wait_ready "$n"
  if first_pass; then
    say "round $ROUND: $label $alg: exec -> first PASS ${FIRST_PASS_S} s (tenant add ${TENANT_S} s)"
  else
    say "round $ROUND: $label $alg: no first PASS measured (reason above); log: $E2E_TMP/tenant-add.log"
  fi
  pid=${KEYLET_PID[$n]}
  cert=$(grep -l -- "-----BEGIN CERTIFICATE-----" "$E2E_TMP/$n"/state/* 2>/dev/null | head -n 1 || true)
  [[ -n $cert ]] || { fail "no server certificate under $E2E_TMP/$n/state"; return 1; }
  say "round $ROUND: $label $alg: start-up cold ${cold} s, warm ${warm} s (pid $pid)"
  record "$(jq -nc --arg a "$label" --arg alg "$alg" --argjson c "$cold" --argjson w "$warm" \
    --argjson f "$FIRST_PASS_S" --argjson t "$TENANT_S" \
    '{kind: "startup", agent: $a, alg: $alg, cold_s: $c, warm_s: $w, first_pass_s: $f, tenant_add_s: $t}')"
  local cl=(python3 "$CLIENT" times 127.0.0.1 "$AGENT_PORT" "$cert" "$TLS/client-cert.crt" "$TLS/client-private.pem" "$COUNT")
  local api
  api=$(common_api "$cert") || return 1
  say "round $ROUND: $label $alg: asking at API $api, the newest this agent and keylet both serve"
  # /version and the two quotes in turn, so the handshake a quote is compared with is
  # measured in the same moments of the host as the quote.
  local quote="/v$api/quotes/integrity?nonce=abcdefghij0123456789&partial=1&ima_ml_entry=0&mask=" rs
  rs=$(BENCH_PID=$pid "${cl[@]}" /version "${quote}0x0" "${quote}0x400400")
  r=$(sed -n 1p <<<"$rs")
  say "round $ROUND: $label $alg tls (/version): $r"
  record "$(jq -c --arg a "$label" --arg alg "$alg" '{kind: "tls", agent: $a, alg: $alg} + .' <<<"$r")"
  local line=2
  for mask in 0x0 0x400400; do
    r=$(sed -n "${line}p" <<<"$rs") line=$((line + 1))
    say "round $ROUND: $label $alg $mask: $r"
    record "$(jq -c --arg a "$label" --arg alg "$alg" --arg m "$mask" '{kind: "quote", agent: $a, alg: $alg, mask: $m} + .' <<<"$r")"
  done
  if ((SOAK)) && [[ $alg == rsa ]] && ((ROUND == 1)); then
    say "round $ROUND: $label: 10-minute soak, one quote every 2 s"
    r=$(python3 "$CLIENT" poll 127.0.0.1 "$AGENT_PORT" "$cert" "$TLS/client-cert.crt" "$TLS/client-private.pem" \
      600 2 "/v$api/quotes/integrity?nonce=abcdefghij0123456789&mask=0x400400&partial=1&ima_ml_entry=0" "$pid")
    say "round $ROUND: $label soak: $r"
    record "$(jq -c --arg a "$label" '{kind: "soak", agent: $a} + .' <<<"$r")"
  fi
  agent_stop "$n"
}

for ((ROUND = 1; ROUND <= ROUNDS; ROUND++)); do
  floor
  BIN_ARGS=(run)
  for alg in rsa ecc; do
    measure "keylet-$alg" keylet "$alg" "$KEYLET_BIN" 'is registered and active' RUST_LOG=info
  done
  if [[ -n ${KEYLET_REFERENCE_AGENT:-} ]]; then
    [[ -x $KEYLET_REFERENCE_AGENT ]] || { fail "KEYLET_REFERENCE_AGENT=$KEYLET_REFERENCE_AGENT is not executable"; exit 1; }
    BIN_ARGS=()
    for alg in rsa ecc; do
      # The reference agent reads the same [agent] file; it takes the TPM from TCTI.
      measure "reference-$alg" reference "$alg" "$KEYLET_REFERENCE_AGENT" 'Agent .* activated|activated' \
        RUST_LOG=info "TCTI=swtpm:host=127.0.0.1,port=$TPM_PORT" KEYLIME_AGENT_RUN_AS=
    done
  fi
done

# ---------------------------------------------------------------- summary
jq -s '
  def med: sort | .[((length - 1) / 2 | floor)];
  def collapse: group_by([.kind, .agent // "", .alg // "", .mask // ""])
    | map(. as $g | ($g[0] | del(.round)) + {rounds: ($g | length)}
      + reduce (["median_ms", "p95_ms", "min_ms", "cpu_s_per_100", "rss_kb", "cold_s", "warm_s",
          "first_pass_s", "tenant_add_s"][]
          as $k | select($g[0] | has($k))
          | {($k): ([$g[][$k] | select(. != null)] | if length > 0 then med else null end)}) as $o ({}; . + $o));
  collapse |
  def q(a; alg; m): map(select(.kind == "quote" and .agent == a and .alg == alg and .mask == m))[0];
  def t(a; alg): map(select(.kind == "tls" and .agent == a and .alg == alg))[0];
  def f(alg; m): map(select(.kind == "floor" and .alg == alg and .mask == m))[0];
  . as $all
  | [ $all[] | select(.kind == "quote") | . as $x
      | ($all | f($x.alg; $x.mask)) as $f | ($all | t($x.agent; $x.alg)) as $t
      | { agent: $x.agent, alg: $x.alg, mask: $x.mask, median_ms: $x.median_ms, p95_ms: $x.p95_ms,
          floor_ms: $f.median_ms, tls_ms: $t.median_ms,
          overhead_ms: (($x.median_ms - $f.median_ms) * 1000 | round / 1000),
          ratio_to_floor_plus_tls: (($x.median_ms / ($f.median_ms + $t.median_ms)) * 1000 | round / 1000),
          target_ms: ((1.15 * $f.median_ms + $t.median_ms) * 1000 | round / 1000),
          target_met: ($x.median_ms <= 1.15 * $f.median_ms + $t.median_ms),
          cpu_s_per_100: $x.cpu_s_per_100, rss_kb: $x.rss_kb } ]
  | { quotes: ., startup: [$all[] | select(.kind == "startup")], soak: [$all[] | select(.kind == "soak")] }
' "$RESULTS" | tee "$E2E_TMP/summary.json"
if [[ -n ${KEYLET_REFERENCE_AGENT:-} ]]; then
  say "ratios keylet / reference (median quote time, RSS, CPU):"
  jq -r '.quotes | group_by([.alg, .mask])[] | select(length == 2)
    | (map(select(.agent == "keylet"))[0]) as $k | (map(select(.agent == "reference"))[0]) as $r
    | "\($k.alg) \($k.mask): time \($k.median_ms / $r.median_ms) rss \($k.rss_kb / $r.rss_kb) cpu \($k.cpu_s_per_100 / $r.cpu_s_per_100)"' \
    "$E2E_TMP/summary.json"
fi
say "start-up (median over rounds; warm_s = exec -> registered with the saved AK):"
jq -r '.startup[] | "\(.agent) \(.alg): exec -> registered cold \(.cold_s) s, warm \(.warm_s) s; exec -> first PASS \(.first_pass_s // "not measured") s (of it tenant add \(.tenant_add_s // "-") s)"' \
  "$E2E_TMP/summary.json" >&2
cp "$E2E_TMP/summary.json" "${KEYLET_BENCH_OUT:-/tmp/keylet-bench-summary.json}"
say "summary written to ${KEYLET_BENCH_OUT:-/tmp/keylet-bench-summary.json}"
