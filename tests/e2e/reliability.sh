#!/usr/bin/env bash
# tests/e2e/reliability.sh - keylet under failure and load, against swtpm and the
# real Keylime 7.14.3 registrar/verifier of the testbed.
#
# Usage: tests/e2e/reliability.sh [SCENARIO...]   (default: all but soak)
#   tpm_restart     attested keylet, then swtpm killed (unclean reset): quotes answer 500 while it is gone;
#                   swtpm back: keylet reconnects, sets the unsafe TPM clock forward and reloads
#                   its AK by itself (same PID; up to 3 restarts until keylet comes back while
#                   the clock is still unsafe), the
#                   verifier's attestation_count grows again with PASS, no transient object leaks,
#                   swtpm's dictionary-attack counter did not grow (keylet's AK has noDA)
#   registrar_late  registrar down when keylet starts: keylet retries (backoff), then registers
#                   and is active once the registrar is back
#   concurrent      200 mTLS quote requests (mask 0x400400) over at most 50 parallel connections
#                   while half-open TCP clients hold connections: at least 95 % answered 200, the
#                   rest a clean 500 (never anything else), keylet alive, RSS bounded, the
#                   half-open clients are closed
#   slow_clients    1,000 idle TCP connections + 50 sending a TLS ClientHello and 50 an mTLS
#                   request one byte per second (insiders), from 127.0.0.2-11, replaced as keylet
#                   closes them: 20 verifier-like mTLS quotes (curl, keylet's cert verified) each
#                   answered 200 within 1 s, keylet's VmRSS (sampled every 0.25 s) under 16 MB;
#                   then the same with enable_agent_mtls=false and 100 plain slow requests
#   sigterm_quote   SIGTERM while quotes are in flight: exit 0, no transient objects left, state
#                   files unchanged, same UUID, a restart re-registers (no 403)
#   tpm_hang        swtpm frozen (SIGSTOP) mid-quote: /version, /agent/info, /keys/pubkey, metrics
#                   and the identity listener's /agent/info answer within 100 ms, the stuck quote
#                   answers 500 within the 10 s quote deadline, SIGCONT: quotes work again; frozen
#                   again with a quote in flight, SIGTERM ends keylet (exit 0) within 2 s; the next
#                   start flushes the AK the hung TPM could not
#   soak            (opt-in: name it, or RELIABILITY_SOAK=1) RELIABILITY_SOAK_SECS (600) of 2 s
#                   attestation by the real verifier: never FAIL, RSS every 30 s within +-5 %
# Settings: RELIABILITY_RSS_LIMIT_KB (32768) bounds keylet's RSS in "concurrent";
# RELIABILITY_IDENTITY_PORT (agent port + 1) and RELIABILITY_METRICS_PORT (agent port + 2)
# are the identity and metrics listeners of "tpm_hang" (metrics also of "sigterm_quote").
# SLOW_RSS_LIMIT_KB (16384; 24576 for a debug build, whose unoptimized code alone is ~10 MB
# of VmRSS), SLOW_RSS_GROWTH_KB (8192), SLOW_QUOTE_SECS (1.0), SLOW_IDLE (1000) for "slow_clients".
# Needs: scripts/testbed.sh up, a keylet build. Stops and restarts testbed services (swtpm,
# registrar): run it against a testbed of your own.
set -euo pipefail
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

RSS_LIMIT_KB=${RELIABILITY_RSS_LIMIT_KB:-32768}
SOAK_SECS=${RELIABILITY_SOAK_SECS:-600}
HANG_ID_PORT=${RELIABILITY_IDENTITY_PORT:-$((AGENT_PORT + 1))}
HANG_METRICS_PORT=${RELIABILITY_METRICS_PORT:-$((AGENT_PORT + 2))}
SLOW_RSS_LIMIT_KB=${SLOW_RSS_LIMIT_KB:-}
SLOW_RSS_GROWTH_KB=${SLOW_RSS_GROWTH_KB:-8192}
SLOW_QUOTE_SECS=${SLOW_QUOTE_SECS:-1.0}
SLOW_IDLE=${SLOW_IDLE:-1000}
MASK=0x400400

field() { jq -r ".$1" <<<"$2"; }
rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
nonce() { printf 'rel%017d' "$1"; } # 20 characters, like the verifier's

quote_url() { echo "https://127.0.0.1:$AGENT_PORT/v2.2/quotes/integrity?nonce=$(nonce "$1")&mask=$MASK&partial=1"; }
# quote_code NAME I: HTTP status of one quote; the body is kept in NAME/quote.json.
quote_code() {
  agent_curl "$1" -o "$(agent_dir "$1")/quote.json" -w '%{http_code}' --max-time 30 "$(quote_url "$2")" 2>/dev/null || true
}
quote_body() { head -c 300 "$(agent_dir "$1")/quote.json" 2>/dev/null || true; }

# quote_batch NAME COUNT PARALLEL OUT: COUNT quote requests, at most PARALLEL
# connections at once (curl --parallel); one HTTP status per line in OUT (000 = no answer).
quote_batch() {
  quote_batch_config "$1" "$2"
  quote_batch_run "$1" "$3" "$4"
}

# quote_batch_config NAME COUNT: the curl config of COUNT quote requests (slow to
# write for thousands: make it before timing anything).
quote_batch_config() {
  local i
  for ((i = 1; i <= $2; i++)); do
    printf 'url = "%s"\noutput = "/dev/null"\n' "$(quote_url "$i")"
  done >"$(agent_dir "$1")/batch.curlrc"
}

# quote_batch_run NAME PARALLEL OUT: runs the batch quote_batch_config wrote.
quote_batch_run() {
  agent_curl "$1" --parallel --parallel-immediate --parallel-max "$2" --max-time 60 \
    -w '%{http_code}\n' -K "$(agent_dir "$1")/batch.curlrc" >"$3" 2>/dev/null || true
}

# Counts in OUT: "ok=N clean=N other=N total=N" (clean = 500, keylet's TPM failure answer).
count_codes() {
  awk '$1 == 200 { ok++ } $1 == 500 { clean++ } $1 != 200 && $1 != 500 { other++ }
       END { printf "ok=%d clean=%d other=%d total=%d\n", ok, clean, other, NR }' "$1"
}

# A TPM that stops without TPM2_Shutdown counts as one dictionary-attack failure
# at its next start (the AK and EK are DA-protected); libtpms locks out after 3.
# Only while no keylet holds swtpm's single connection.

scenario_tpm_restart() {
  local uuid pid r c0 t_back code i da0 try repaired=0
  # Start orderly, from a saved clock just past a multiple of 4,096 ms (see
  # clock_past_boundary): the first unclean restart below goes on from that clock.
  clock_past_boundary || return 1
  fresh_agent tr
  da0=$(da_counter)
  start_registered tr; uuid=$REG_UUID pid=${KEYLET_PID[tr]}
  tenant_add "$uuid"
  r=$(wait_attested "$uuid" 3 60); c0=$(field attestation_count "$r")
  # libtpms calls its clock safe again when it next passes a multiple of 4,096 ms, about 4 s
  # after each unclean start here: when keylet's first command after the restart comes later
  # (a host stalled for seconds), there is nothing left to repair. Up to three unclean
  # restarts, until keylet is seen repairing an unsafe clock.
  for try in 1 2 3; do
    say "attested (count $c0); stopping swtpm (unclean restart $try)"
    tb service-stop swtpm >/dev/null 2>&1
    for i in 1 2; do
      code=$(quote_code tr "$i")
      assert_eq "$code" 500 "quote $i while the TPM is gone (body: $(quote_body tr))"
    done
    agent_alive tr || fail "keylet exited while the TPM was gone"
    tb start >/dev/null 2>&1 || fail "the testbed could not start swtpm again"
    t_back=$(date +%s)
    say "swtpm is back; keylet must recover by itself"
    assert_eq "$(quote_code tr 3)" 200 "first quote after swtpm came back"
    # keylet checks (and repairs) the clock before it reloads the AK
    wait_log_count tr "AK reloaded" "$try" 5
    if (($(log_count tr "TPM clock was not safe") >= 1)); then repaired=1; break; fi
    say "keylet found the TPM clock safe again (libtpms had saved it first)"
  done
  ((repaired)) || fail "keylet did not report repairing the unsafe TPM clock in 3 unclean restarts"
  r=$(wait_attested "$uuid" $((c0 + 3)) 90)
  assert_eq "$(field attestation_status "$r")" PASS "attestation_status after the TPM restart"
  (($(field last_successful_attestation "$r") >= t_back)) ||
    fail "no successful attestation since swtpm came back"
  assert_eq "${KEYLET_PID[tr]}" "$pid" "keylet PID (no restart)"
  verifier_delete "$uuid"
  agent_stop tr
  assert_eq "$(transient_handles)" 0 "transient objects left in swtpm after keylet stopped"
  # keylet's AK has noDA and its EK needs no password: the unclean restarts counted no failure.
  assert_eq "$(da_counter)" "$da0" "swtpm's DA lockout counter after the unclean restarts"
}

scenario_registrar_late() {
  local uuid
  fresh_agent late exponential_backoff_initial_delay=500 exponential_backoff_max_delay=2000 \
    exponential_backoff_max_retries=60
  tb service-stop registrar >/dev/null 2>&1
  agent_start late
  wait_log late "retry 2 of 60" 30
  agent_alive late || fail "keylet gave up while the registrar was down"
  say "keylet is retrying; starting the registrar"
  tb start >/dev/null 2>&1 || fail "the testbed could not start the registrar again"
  uuid=$(jq -r .uuid <<<"$(agent_identity late)")
  wait_registered "$uuid" 60 >/dev/null
  tenant_add "$uuid"
  assert_eq "$(field attestation_status "$(wait_attested "$uuid" 1 60)")" PASS "attestation after a late registrar"
  verifier_delete "$uuid"
  agent_stop late
}

scenario_concurrent() {
  local uuid pid rss0 rss1 out counts t0 dt fds=() fd i line
  fresh_agent cc
  start_registered cc; uuid=$REG_UUID pid=${KEYLET_PID[cc]}
  assert_eq "$(quote_code cc 0)" 200 "a single quote before the load"
  rss0=$(rss_kb "$pid")
  # Half-open clients: connected, never a byte sent (they hold connection slots).
  for i in 1 2 3 4; do exec {fd}<>"/dev/tcp/127.0.0.1/$AGENT_PORT"; fds+=("$fd"); done
  out=$(agent_dir cc)/codes
  t0=$SECONDS
  quote_batch cc 200 50 "$out"
  dt=$((SECONDS - t0))
  rss1=$(rss_kb "$pid")
  counts=$(count_codes "$out")
  say "200 quotes over 50 connections in $dt s: $counts; VmRSS before $rss0 kB, after $rss1 kB"
  # keylet answers a quote 200, or 500 when the TPM fails; it never sends 503.
  local codes; codes=$(sort "$out" | uniq -c | tr '\n' ' ')
  [[ $counts == *" total=200" ]] || fail "expected 200 answers: $counts ($codes)"
  ! grep -qvxE '200|500' "$out" || fail "answers other than 200/500: $codes"
  local ok=${counts#ok=}; ok=${ok%% *}
  assert_ge "$ok" 190 "requests answered 200 (at least 95 %; $codes)"
  ((rss1 < RSS_LIMIT_KB)) || fail "keylet RSS $rss1 kB after the load is over the $RSS_LIMIT_KB kB limit"
  agent_alive cc || fail "keylet exited under load"
  # The half-open clients are closed by keylet (first-byte deadline, 5 s).
  for fd in "${fds[@]}"; do
    if read -r -t 20 -u "$fd" line; then fail "a half-open client got data: $line"
    else (($? <= 128)) || fail "keylet kept a half-open client open for 20 s"; fi
    exec {fd}<&-
  done
  assert_eq "$(quote_code cc 201)" 200 "a quote after the load"
  agent_stop cc
  assert_eq "$(transient_handles)" 0 "transient objects left in swtpm after keylet stopped"
}

# flood_quotes NAME PLAIN: with keylet NAME running, the slow_clients flood
# (PLAIN=1: plain HTTP, 100 slow requests; else mTLS, 50 slow ClientHellos and 50 slow
# requests), then 20 quotes as the verifier makes them, each timed.
flood_quotes() {
  local n=$1 plain=$2 pid=${KEYLET_PID[$1]} d st flood i r code t open slow worst=0 args=() codes=() rss0 cap
  rss0=$(rss_kb "$pid")
  d=$(agent_dir "$n"); st=$d/flood.json
  # All open at once, unless keylet's open-files limit caps them (it then evicts;
  # the log says how many may wait).
  for ((i = 0; i < 100; i++)); do
    cap=$(grep -om1 'up to [0-9]* connections may wait' "$d/keylet.log" | awk '{ print $3 }' || true)
    [[ -n $cap ]] && break
    sleep 0.1
  done
  cap=${cap:-$((SLOW_IDLE + 100))}; ((cap < SLOW_IDLE + 100)) || cap=$((SLOW_IDLE + 100))
  if ((plain)); then args=(--plain --slow-hello 0 --slow-request 100)
  else args=(--cert "$TLS/client-cert.crt" --key "$TLS/client-private.pem" --slow-hello 50 --slow-request 50); fi
  "$VENV_PY" "$E2E_ROOT/tests/e2e/slow_clients.py" --port "$AGENT_PORT" --cacert "$d/state/server-cert.crt" \
    --pid "$pid" --status "$st" --secs 150 --idle "$SLOW_IDLE" "${args[@]}" >"$d/flood.out" 2>&1 &
  flood=$!
  for ((i = 0; i < 200; i++)); do # all open (after ~10 s): at most 20 s, then quote anyway
    [[ -f $st ]] && (($(jq '.open | add' "$st") >= cap)) && break
    sleep 0.1
  done
  say "flood open after $((i / 10)) s: $(jq -c .open "$st" 2>/dev/null || echo none)"
  for ((i = 1; i <= 20; i++)); do
    open=$(jq -c .open "$st")
    if ((plain)); then
      r=$(curl -sS -o "$d/quote.json" -w '%{http_code} %{time_total}' --max-time 10 \
        "http://127.0.0.1:$AGENT_PORT/v2.2/quotes/integrity?nonce=$(nonce "$i")&mask=$MASK&partial=1" 2>/dev/null || echo "000 10")
    else
      r=$(agent_curl "$n" -o "$d/quote.json" -w '%{http_code} %{time_total}' --max-time 10 "$(quote_url "$i")" 2>/dev/null || true)
    fi
    [[ $r == *' '* ]] || r="000 10"
    code=${r% *} t=${r#* }
    codes+=("$code/${t}s")
    say "quote $i: $code in $t s (flood open: $open)"
    awk -v t="$t" -v w="$worst" 'BEGIN { exit !(t > w) }' && worst=$t
    sleep 0.5
  done
  : >"$st.stop"; wait "$flood" || true
  slow=$(tail -1 "$d/flood.out")
  say "flood at the end: $slow; slowest quote $worst s"
  for r in "${codes[@]}"; do
    [[ ${r%%/*} == 200 ]] || fail "a quote during the flood was not answered 200: ${codes[*]}"
  done
  awk -v t="$worst" -v l="$SLOW_QUOTE_SECS" 'BEGIN { exit !(t < l) }' ||
    fail "the slowest quote during the flood took $worst s (limit $SLOW_QUOTE_SECS s): ${codes[*]}"
  r=$(jq .max_open <<<"$slow")
  ((r >= cap)) || fail "the flood never held $cap connections open at once (at most $r)"
  r=$(jq .max_rss_kb <<<"$slow")
  say "keylet's VmRSS: $rss0 kB before the flood, at most $r kB during it"
  ((r > 0 && r < SLOW_RSS_LIMIT_KB)) || fail "keylet's VmRSS during the flood reached $r kB (limit $SLOW_RSS_LIMIT_KB kB)"
  ((r - rss0 < SLOW_RSS_GROWTH_KB)) || fail "keylet's VmRSS grew by $((r - rss0)) kB under the flood (limit $SLOW_RSS_GROWTH_KB kB)"
  agent_alive "$n" || fail "keylet exited under the flood"
}

scenario_slow_clients() {
  if [[ -z $SLOW_RSS_LIMIT_KB ]]; then # a debug build has a .debug_info section
    if readelf -S --wide "$KEYLET_BIN" 2>/dev/null | grep -F ' .debug_info ' >/dev/null; then SLOW_RSS_LIMIT_KB=24576
    else SLOW_RSS_LIMIT_KB=16384; fi
  fi
  say "VmRSS limit during the flood: $SLOW_RSS_LIMIT_KB kB"
  fresh_agent sc
  start_registered sc
  assert_eq "$(quote_code sc 0)" 200 "a quote before the flood"
  flood_quotes sc 0
  agent_stop sc
  fresh_agent scp enable_agent_mtls=false
  start_registered scp
  flood_quotes scp 1
  agent_stop scp
}

state_sums() { (cd "$(agent_dir "$1")/state" && find . -type f -print0 | sort -z | xargs -0 sha256sum); }

# metric SERIES: its value on keylet's metrics listener (HANG_METRICS_PORT), empty if absent.
metric() {
  curl -sS --max-time 5 "http://127.0.0.1:$HANG_METRICS_PORT/metrics" 2>/dev/null |
    awk -v s="$1" 'index($0, s " ") == 1 { print $2; exit }'
}
quotes_ok_at_least() { local v; v=$(metric 'keylet_quotes_total{endpoint="integrity",result="ok"}'); ((${v:-0} >= $1)); }

scenario_sigterm_quote() {
  local uuid pid reg n0 out sums0 sums1 counts answered batch
  fresh_agent st metrics_listen="127.0.0.1:$HANG_METRICS_PORT"
  start_registered st; uuid=$REG_UUID pid=${KEYLET_PID[st]}
  reg=$(wait_registered "$uuid" 10); n0=$(field regcount "$reg")
  sums0=$(state_sums st)
  out=$(agent_dir st)/codes
  # 5000 quotes: the TPM serializes them (a few ms each), so the batch is still
  # running once keylet has answered 20 of them, even on a fast machine.
  quote_batch_config st 5000
  quote_batch_run st 10 "$out" &
  batch=$!
  wait_for 60 "keylet to answer 20 quotes of the batch" quotes_ok_at_least 20 || return 1
  kill -0 "$batch" 2>/dev/null || fail "the quote batch ended before SIGTERM (no quotes in flight)"
  say "SIGTERM with quotes in flight"
  agent_stop st # SIGTERM; must exit 0 within 10 s
  wait "$batch" || true
  answered=$(grep -cvx 000 "$out" || true)
  assert_ge "$answered" 1 "quotes answered before the shutdown"
  ((answered < 5000)) || fail "every quote was answered: SIGTERM did not meet quotes in flight"
  counts=$(count_codes "$out")
  say "quote batch: $counts (000 = refused after shutdown)"
  # Answered requests were complete answers; the rest found no listener (000).
  if grep -vqxE '200|500|000' "$out"; then fail "unexpected answers during shutdown: $(sort "$out" | uniq -c | tr '\n' ' ')"; fi
  kill -0 "$pid" 2>/dev/null && fail "keylet still runs"
  assert_eq "$(transient_handles)" 0 "transient objects left in swtpm after SIGTERM"
  sums1=$(state_sums st)
  assert_eq "$sums1" "$sums0" "state files after SIGTERM"
  assert_eq "$(jq -r .uuid <<<"$(agent_identity st)")" "$uuid" "keylet identity after SIGTERM"
  agent_start st
  wait_registered "$uuid" 30 $((n0 + 1)) >/dev/null
  # 403 as a word: the log's numbers (a TPM clock value, 1724033643 ms) may hold the digits
  if grep -qw '403' "$(agent_dir st)/keylet.log"; then fail "registrar rejection (403) after the restart"; fi
  agent_stop st
}

# swtpm_unread: bytes sent to swtpm's data port that it has not read (the receive queues
# of its connections in /proc/net/tcp); while swtpm is frozen, a command waits at the TPM.
swtpm_unread() {
  local a l st q n=0
  a=$(printf '0100007F:%04X' "$SWTPM_PORT")
  while read -r _ l _ st q _; do
    [[ $l == "$a" && $st == 01 ]] && n=$((n + 16#${q#*:}))
  done </proc/net/tcp
  ((n > 0))
}
# fastest_ms CURL-ARGS...: the fastest of 3 GETs in ms (the host may be busy; a stall is
# seconds); fails unless each answers 200.
fastest_ms() {
  local i r code s best=999999
  for i in 1 2 3; do
    r=$(curl -sS -o /dev/null -w '%{http_code} %{time_total}' --max-time 30 "$@" 2>/dev/null) || r="000 30"
    read -r code s <<<"$r"
    [[ $code == 200 ]] || { fail "${*: -1} answered $code while the TPM hangs"; return 1; }
    s=$(awk -v s="$s" 'BEGIN { printf "%d", s * 1000 }')
    ((s < best)) && best=$s
  done
  echo "$best"
}
# hang_quote NAME I OUT: one quote in the background; "<code> <seconds>" in OUT.
hang_quote() {
  agent_curl "$1" -o /dev/null -w '%{http_code} %{time_total}' --max-time 60 "$(quote_url "$2")" \
    >"$3" 2>/dev/null || true
}

scenario_tpm_hang() {
  local pid spid out code secs ms url t0 took qpid rc=0
  fresh_agent hang identity_listen="127.0.0.1:$HANG_ID_PORT" metrics_listen="127.0.0.1:$HANG_METRICS_PORT"
  clear_da_lockout
  start_registered hang; pid=${KEYLET_PID[hang]}
  assert_eq "$(quote_code hang 1)" 200 "a quote before the hang"
  spid=$(swtpm_pid)
  # Whatever happens, swtpm runs again when the scenario ends.
  # shellcheck disable=SC2064 # expand now: spid is local to this function
  trap "kill -CONT $spid 2>/dev/null || true; scenario_cleanup" EXIT
  out=$(agent_dir hang)/stuck
  kill -STOP "$spid"; say "swtpm (pid $spid) frozen"
  hang_quote hang 2 "$out" &
  qpid=$!
  wait_for 10 "the quote's first command to wait at the frozen swtpm" swtpm_unread || { kill -CONT "$spid"; return 1; }
  for url in version v2.2/agent/info v2.2/keys/pubkey; do
    ms=$(fastest_ms --cacert "$(agent_dir hang)/state/server-cert.crt" --cert "$TLS/client-cert.crt" \
      --key "$TLS/client-private.pem" "https://127.0.0.1:$AGENT_PORT/$url") || { kill -CONT "$spid"; return 1; }
    say "/$url (mTLS) answered in $ms ms while the TPM hangs"
    ((ms < 100)) || { kill -CONT "$spid"; fail "/$url took $ms ms while the TPM hangs"; return 1; }
  done
  for url in "$HANG_METRICS_PORT/metrics" "$HANG_ID_PORT/v2.2/agent/info"; do
    ms=$(fastest_ms "http://127.0.0.1:$url") || { kill -CONT "$spid"; return 1; }
    say "http://127.0.0.1:$url answered in $ms ms while the TPM hangs"
    ((ms < 100)) || { kill -CONT "$spid"; fail "$url took $ms ms while the TPM hangs"; return 1; }
  done
  wait "$qpid"
  read -r code secs <"$out" || true # no trailing newline
  say "the quote stuck in the TPM: $code after $secs s"
  assert_eq "$code" 500 "the quote stuck in the TPM" || { kill -CONT "$spid"; return 1; }
  awk -v s="$secs" 'BEGIN { exit !(s <= 11) }' || { kill -CONT "$spid"; fail "the stuck quote took $secs s (bound 10 s)"; return 1; }
  kill -CONT "$spid"; say "swtpm thawed"
  code=$(quote_code hang 3)
  [[ $code == 200 ]] || code=$(quote_code hang 4)
  assert_eq "$code" 200 "a quote after the TPM came back"
  grep -q 'keylet_tpm_errors_total{kind="deadline"} [1-9]' <(curl -sS "http://127.0.0.1:$HANG_METRICS_PORT/metrics") ||
    fail "the metrics do not count the quote deadline"

  kill -STOP "$spid"; say "swtpm frozen again; SIGTERM with a quote in flight"
  hang_quote hang 5 "$out" &
  qpid=$!
  wait_for 10 "the quote's first command to wait at the frozen swtpm" swtpm_unread || { kill -CONT "$spid"; return 1; }
  t0=$(date +%s%N)
  kill -TERM "$pid"
  wait_gone "$pid" 5 || { kill -CONT "$spid"; fail "keylet did not exit within 5 s of SIGTERM"; return 1; }
  took=$((($(date +%s%N) - t0) / 1000000))
  wait "$pid" || rc=$?
  unset "KEYLET_PID[hang]"
  kill -CONT "$spid"; say "swtpm thawed"
  wait "$qpid"
  say "keylet exited $rc ${took} ms after SIGTERM while the TPM hung"
  assert_eq "$rc" 0 "exit status on SIGTERM"
  ((took < 2000)) || fail "keylet took $took ms to exit on SIGTERM while the TPM hung"
  # swtpm over TCP has no resource manager: the AK the hung TPM could not flush is
  # flushed by the next start.
  mv "$(agent_dir hang)/keylet.log" "$(agent_dir hang)/keylet.log.1"
  agent_start hang
  wait_log hang "serving the Keylime agent API" 30
  grep -q "flushed [1-9][0-9]* TPM objects or sessions left by an earlier process" "$(agent_dir hang)/keylet.log" ||
    fail "the next start did not flush what the hung TPM kept"
  agent_stop hang
  assert_eq "$(transient_handles)" 0 "transient objects left in swtpm after keylet stopped"
}

scenario_soak() {
  local uuid pid r c0 t0 s samples=() base min max
  fresh_agent soak
  start_registered soak; uuid=$REG_UUID pid=${KEYLET_PID[soak]}
  tenant_add "$uuid"
  r=$(wait_attested "$uuid" 3 60); c0=$(field attestation_count "$r")
  say "soak: $SOAK_SECS s at the verifier's 2 s interval, RSS every 30 s"
  t0=$SECONDS
  while :; do
    s=$(rss_kb "$pid"); samples+=("$s")
    r=$(verifier_get "$uuid")
    say "t=$((SECONDS - t0)) s VmRSS=$s kB attestation_count=$(field attestation_count "$r") status=$(field attestation_status "$r")"
    assert_eq "$(field attestation_status "$r")" PASS "attestation_status during the soak"
    ((SECONDS - t0 >= SOAK_SECS)) && break
    sleep 30
  done
  r=$(wait_attested "$uuid" $((c0 + SOAK_SECS / 3)) 10)
  say "attestations in the soak: $(($(field attestation_count "$r") - c0)); RSS samples (kB): ${samples[*]}"
  base=${samples[0]} min=$(printf '%s\n' "${samples[@]}" | sort -n | head -1) max=$(printf '%s\n' "${samples[@]}" | sort -n | tail -1)
  ((max * 100 <= base * 105 && min * 100 >= base * 95)) ||
    fail "RSS not flat within +-5 % of $base kB: min $min, max $max"
  agent_alive soak || fail "keylet exited during the soak"
  verifier_delete "$uuid"
  agent_stop soak
}

# The testbed services as the suite found them, even after a failed scenario.
restore_services() {
  local rc=$?
  tb start >/dev/null 2>&1 || say "could not restart testbed services"
  tb tpm2 dictionarylockout -c >/dev/null 2>&1 || say "could not clear swtpm's DA lockout counter"
  return "$rc"
}

tb start >/dev/null 2>&1 || true # a service a stopped earlier run left down
e2e_init reliability
trap 'restore_services; e2e_cleanup' EXIT
DEFAULT=(tpm_restart registrar_late concurrent slow_clients sigterm_quote tpm_hang)
[[ ${RELIABILITY_SOAK:-0} == 1 ]] && DEFAULT+=(soak)
if (($#)); then SELECTED=("$@"); else SELECTED=("${DEFAULT[@]}"); fi
run_scenarios "${DEFAULT[@]}" soak -- "${SELECTED[@]}"
