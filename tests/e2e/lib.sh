# shellcheck shell=bash
# tests/e2e/lib.sh - shared helpers of keylet's end-to-end suites (sourced).
#
# The suites run keylet against the testbed of scripts/testbed.sh (swtpm + the
# real Keylime registrar/verifier/tenant on 127.0.0.1), which must be up:
#   scripts/testbed.sh up
# Settings: KEYLET_BIN (default target/{debug,release}/keylet, newest), the
# KEYLET_TB_* variables of scripts/testbed.sh, KEYLET_E2E_KEEP=1 keeps the
# per-run directory, RUST_LOG for keylet (default info), KEYLET_E2E_TPM_PORT
# points keylet at another TPM port (the slow-tpm proxy of tests/e2e/slow-tpm.sh).

shopt -s inherit_errexit # errexit also inside $(...)
E2E_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
TB_SCRIPT=$E2E_ROOT/scripts/testbed.sh
TB_STATE=$(mkdir -p "${KEYLET_TB_STATE:-/var/tmp/keylet-testbed}" && cd "${KEYLET_TB_STATE:-/var/tmp/keylet-testbed}" && pwd)
export KEYLET_TB_STATE=$TB_STATE
# Ports etc. the testbed was started with (its settings.env only sets unset vars).
# shellcheck disable=SC1091
[[ -f $TB_STATE/settings.env ]] && source "$TB_STATE/settings.env"
SWTPM_PORT=${KEYLET_TB_SWTPM_PORT:-24321}
REGISTRAR_PORT=${KEYLET_TB_REGISTRAR_PORT:-18890}
REGISTRAR_TLS_PORT=${KEYLET_TB_REGISTRAR_TLS_PORT:-18891}
VERIFIER_PORT=${KEYLET_TB_VERIFIER_PORT:-18881}
AGENT_PORT=${KEYLET_TB_AGENT_PORT:-19002}
TLS=$TB_STATE/keylime/cv_ca
# The services' REST API version in paths (it depends on the testbed's Keylime release).
REST_API=$(bash "$TB_SCRIPT" api)
# shellcheck disable=SC2034 # used by the suites
VENV_PY=${KEYLET_TB_VENV:-$TB_STATE/venv}/bin/python
# shellcheck disable=SC2034 # used by the suites
PLACEHOLDER_UUID=d432fbb3-d2f1-4a97-9ef7-75bd81c00000

E2E_SUITE=${E2E_SUITE:-e2e}
E2E_PASSED=0 E2E_FAILED=0 E2E_SKIPPED=0
declare -A KEYLET_PID=()

say() { printf '[%s] %s\n' "$E2E_SUITE" "$*" >&2; }
# skip_scenario REASON: ends the running scenario as SKIP (never counted as a pass).
skip_scenario() { say "SKIP: $*"; printf '%s\n' "$*" >"$E2E_TMP/.skip-reason"; exit 77; }
fail() { printf '[%s] FAIL: %s\n' "$E2E_SUITE" "$*" >&2; return 1; }

# ---------------------------------------------------------------------------- setup
find_keylet() {
  if [[ -n ${KEYLET_BIN:-} ]]; then
    [[ -x $KEYLET_BIN ]] || { fail "KEYLET_BIN=$KEYLET_BIN is not an executable"; return 1; }
    return 0
  fi
  local c best=
  for c in "${CARGO_TARGET_DIR:-$E2E_ROOT/target}"/{debug,release}/keylet; do
    [[ -x $c && ( -z $best || $c -nt $best ) ]] && best=$c
  done
  [[ -n $best ]] || { fail "no keylet binary: run 'cargo build -p keylet' or set KEYLET_BIN"; return 1; }
  KEYLET_BIN=$best
}

# e2e_init SUITE: per-run directory, cleanup trap, checks the testbed and keylet.
e2e_init() {
  E2E_SUITE=$1
  E2E_TMP=$(mktemp -d "/tmp/keylet-e2e-$1.XXXXXX")
  trap e2e_cleanup EXIT
  trap 'exit 130' INT TERM
  find_keylet
  say "keylet: $KEYLET_BIN; testbed: $TB_STATE; run dir: $E2E_TMP"
  local p
  for p in "$SWTPM_PORT" "$REGISTRAR_PORT" "$REGISTRAR_TLS_PORT" "$VERIFIER_PORT"; do
    (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null ||
      { fail "nothing listens on 127.0.0.1:$p: run 'scripts/testbed.sh up' first"; return 1; }
  done
}

# Stops what a scenario (or the suite) left running: keylets by PID, extra swtpms by name.
scenario_cleanup() {
  local rc=$? n
  for n in "${!KEYLET_PID[@]}"; do
    if kill -0 "${KEYLET_PID[$n]}" 2>/dev/null; then
      say "cleanup: stopping keylet '$n' (pid ${KEYLET_PID[$n]})"
      kill -TERM "${KEYLET_PID[$n]}" 2>/dev/null || true
      if ! wait_gone "${KEYLET_PID[$n]}" 10; then
        kill -KILL "${KEYLET_PID[$n]}" 2>/dev/null || true
        tb tpm-flush >/dev/null 2>&1 || true # a killed keylet cannot flush its objects
      fi
    fi
  done
  for n in ${E2E_EXTRA_TPMS:-}; do tb tpm2-stop "$n" >/dev/null 2>&1 || true; done
  return "$rc"
}

# unmount_under DIR: lazily unmounts what is mounted below DIR (keylet, started as
# root, mounts a tmpfs for payloads at keylime_dir/secure and leaves it mounted).
unmount_under() {
  local m i
  for ((i = 0; i < 10; i++)); do # stacked mounts: /proc/mounts changes under the reader
    m=$(awk -v d="$1/" 'index($2, d) == 1 { m = $2 } END { print m }' /proc/mounts)
    [[ -n $m ]] || return 0
    umount -l "$m" 2>/dev/null || return 0
  done
}

e2e_cleanup() {
  local rc=$?
  scenario_cleanup || true
  # keylet mounts a tmpfs at keylime_dir/secure when root (payload delivery)
  unmount_under "$E2E_TMP"
  if ((rc != 0)) || [[ ${KEYLET_E2E_KEEP:-0} == 1 ]]; then
    say "run directory kept for inspection: $E2E_TMP"
  else
    rm -rf "$E2E_TMP"
  fi
  return "$rc"
}

tb() { bash "$TB_SCRIPT" "$@"; }
# An unclean TPM restart counts as a dictionary-attack failure; a few of them lock
# the EK out (ActivateCredential answers TPM_RC_LOCKOUT). Suites that kill swtpm clear it.
clear_da_lockout() { tb tpm2 dictionarylockout -c >/dev/null 2>&1 || fail "could not clear swtpm's DA lockout counter"; }
da_counter() { tb tpm2 getcap properties-variable | awk '/TPM2_PT_LOCKOUT_COUNTER/ { print $2 }'; }
# swtpm_pid: the running swtpm's pid (empty when it is not running)
swtpm_pid() { tb ps | awk '/^swtpm: running/ { print $NF }'; }

# clock_past_boundary: the TPM's clock set just past its next multiple of 4,096 ms and
# saved by an orderly reboot. After a power loss swtpm's clock goes on from the value it
# last saved, at the last TPM2_Shutdown unless it saved one since (a clock set with
# TPM2_ClockSet is not saved), and libtpms calls the clock
# safe again when it next passes a multiple of 4,096 ms (NV_CLOCK_UPDATE_INTERVAL 12).
# A saved value just below a multiple made every retry fail alike; one just past it
# leaves the checks about 4 s of unsafe clock. The reboot also keeps the DA check fair:
# a TPM that authorized a DA-protected object since its last orderly shutdown (another
# suite's, e.g. the IAK) counts the next unclean restart as a dictionary-attack failure,
# which a suite's DA check would blame on keylet.
clock_past_boundary() {
  local now
  now=$(tb tpm2 readclock | awk '/clock:/ { print $2 }')
  [[ $now =~ ^[0-9]+$ ]] || { fail "could not read swtpm's clock: '$now'"; return 1; }
  tb tpm2 setclock $((((now >> 12) + 1) << 12 | 1)) >/dev/null 2>&1 ||
    { fail "could not set swtpm's clock forward"; return 1; }
  tb tpm-reboot >/dev/null 2>&1 || { fail "swtpm did not come back after an orderly reboot"; return 1; }
}

# ---------------------------------------------------------------------------- asserts
assert_eq() { [[ $1 == "$2" ]] || fail "$3: expected '$2', got '$1'"; }
assert_ne() { [[ $1 != "$2" ]] || fail "$3: both are '$1'"; }
assert_ge() { if [[ ! $1 =~ ^[0-9]+$ ]] || (($1 < $2)); then fail "$3: expected >= $2, got '$1'"; fi; }
assert_nonempty() { [[ -n $1 && $1 != null ]] || fail "$2: empty"; }

# run_scenarios ALL_NAMES... -- SELECTED_NAMES...: runs each selected scenario
# function "scenario_NAME" in order, counts and reports; returns 1 if any failed.
run_scenarios() {
  local all=() sel=() s t0 rc
  while (($#)) && [[ $1 != -- ]]; do all+=("$1"); shift; done
  shift || true
  sel=("$@"); ((${#sel[@]})) || sel=("${all[@]}")
  for s in "${sel[@]}"; do
    [[ " ${all[*]} " == *" $s "* ]] || { fail "unknown scenario '$s' (have: ${all[*]})"; return 2; }
  done
  for s in "${sel[@]}"; do
    say "=== scenario $s"
    t0=$SECONDS
    # A subshell per scenario, outside any condition so that errexit works
    # in it; its trap stops whatever keylet/swtpm the scenario left running.
    set +e
    (set -euo pipefail; trap scenario_cleanup EXIT; "scenario_$s")
    rc=$?
    set -e
    if ((rc == 0)); then
      E2E_PASSED=$((E2E_PASSED + 1)); say "=== PASS $s ($((SECONDS - t0)) s)"
    elif ((rc == 77)); then
      E2E_SKIPPED=$((E2E_SKIPPED + 1)); say "=== SKIP $s"
      # scripts/test-all.sh lists skipped scenarios in its summary.
      [[ -z ${KEYLET_E2E_SKIP_FILE:-} ]] ||
        printf '%s/%s: %s\n' "$E2E_SUITE" "$s" "$(cat "$E2E_TMP/.skip-reason" 2>/dev/null)" >>"$KEYLET_E2E_SKIP_FILE"
    else
      E2E_FAILED=$((E2E_FAILED + 1)); say "=== FAIL $s ($((SECONDS - t0)) s)"
    fi
  done
  if ((E2E_SKIPPED)); then
    echo "$E2E_SUITE: $E2E_PASSED passed, $E2E_FAILED failed, $E2E_SKIPPED skipped"
  else
    echo "$E2E_SUITE: $E2E_PASSED passed, $E2E_FAILED failed"
  fi
  ((E2E_FAILED == 0))
}

# ---------------------------------------------------------------------------- keylet
# agent_new NAME: a fresh keylime_dir and config for keylet instance NAME.
# The config lives in $E2E_TMP/NAME/cfg.kv (key=value); agent_set edits it.
agent_new() {
  local d=$E2E_TMP/$1
  unmount_under "$d"
  rm -rf "$d"; mkdir -p "$d/state"; : >"$d/ascii_runtime_measurements"
  cat >"$d/cfg.kv" <<EOF
uuid=hash_ek
ip=127.0.0.1
port=$AGENT_PORT
contact_ip=127.0.0.1
contact_port=$AGENT_PORT
registrar_ip=127.0.0.1
registrar_port=$REGISTRAR_PORT
keylime_dir=$d/state
trusted_client_ca=$TLS/cacert.crt
enable_agent_mtls=true
tpm_device=tcp://127.0.0.1:${KEYLET_E2E_TPM_PORT:-$SWTPM_PORT}
tpm_hash_alg=sha256
tpm_encryption_alg=rsa
tpm_signing_alg=rsassa
run_as=
ima_ml_path=$d/ascii_runtime_measurements
measuredboot_ml_path=$d/no-measured-boot-log
EOF
}

agent_dir() { echo "$E2E_TMP/$1"; }

agent_set() { # NAME KEY VALUE
  local f=$E2E_TMP/$1/cfg.kv
  grep -v "^$2=" "$f" >"$f.new" || true
  printf '%s=%s\n' "$2" "$3" >>"$f.new"; mv "$f.new" "$f"
}

# Render cfg.kv as keylet.toml ([agent]; integers and booleans bare, the rest quoted).
agent_render() {
  local d=$E2E_TMP/$1 k v
  [[ -f $d/cfg.kv ]] || return 0 # a config copied in as is
  {
    echo "[agent]"
    while IFS='=' read -r k v; do
      if [[ $v =~ ^([0-9]+|true|false)$ ]]; then echo "$k = $v"
      else v=${v//\\/\\\\}; echo "$k = \"${v//\"/\\\"}\""; fi
    done <"$d/cfg.kv"
  } >"$d/keylet.toml"
}

# keylet's environment: nothing of the caller's (no KEYLIME_DIR & co.), only
# the config file, RUST_LOG and any extra K=V given.
keylet_env() { # NAME [K=V...]
  local n=$1; shift
  exec env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME="${HOME:-/root}" RUST_LOG="${RUST_LOG:-info}" \
    KEYLIME_AGENT_CONFIG="$E2E_TMP/$n/keylet.toml" "$@"
}

# agent_start NAME [K=V...]: keylet run in the background; log in NAME/keylet.log.
agent_start() {
  local n=$1; shift
  agent_render "$n"
  keylet_env "$n" "$@" "$KEYLET_BIN" run >>"$E2E_TMP/$n/keylet.log" 2>&1 </dev/null &
  KEYLET_PID[$n]=$!
  say "started keylet '$n' (pid ${KEYLET_PID[$n]})"
}

# fresh_agent NAME [KEY=VALUE...]: no agents in the services, a new keylet state dir.
fresh_agent() {
  local n=$1 kv; shift
  tb start >/dev/null 2>&1 # a service an earlier failed scenario left stopped
  tb reset >/dev/null 2>&1
  agent_new "$n"
  for kv in "$@"; do agent_set "$n" "${kv%%=*}" "${kv#*=}"; done
}

# start_registered NAME [K=V env...]: starts keylet and sets REG_UUID once the
# registrar shows it active. Not a $(...) function: keylet's PID must stay in
# the suite's shell (KEYLET_PID) so that agent_stop and the cleanup find it.
start_registered() {
  local id
  REG_UUID=
  agent_start "$@"
  id=$(agent_identity "$@")
  REG_UUID=$(jq -r .uuid <<<"$id")
  wait_registered "$REG_UUID" 30 >/dev/null
}

agent_alive() { [[ -n ${KEYLET_PID[$1]:-} ]] && kill -0 "${KEYLET_PID[$1]}" 2>/dev/null; }

# wait_for SECS WHAT CMD...: runs CMD every 0.1 s until it succeeds; fails naming WHAT
# when it has not within SECS.
wait_for() {
  local secs=$1 what=$2 i; shift 2
  for ((i = 0; i < secs * 10; i++)); do "$@" 2>/dev/null && return 0; sleep 0.1; done
  fail "waited $secs s for $what"
}

wait_gone() { local i; for ((i = 0; i < $2 * 10; i++)); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done; return 1; }

# agent_stop NAME: SIGTERM; keylet must exit 0 within 10 s.
agent_stop() {
  local n=$1 pid=${KEYLET_PID[$1]:-} rc=0
  [[ -n $pid ]] || return 0
  if ! kill -0 "$pid" 2>/dev/null; then
    wait "$pid" || rc=$?
    unset "KEYLET_PID[$n]"
    fail "keylet '$n' had already exited (status $rc) before it was asked to stop"; return 1
  fi
  kill -TERM "$pid" 2>/dev/null || true
  if ! wait_gone "$pid" 10; then
    kill -KILL "$pid" 2>/dev/null || true; unset "KEYLET_PID[$n]"
    fail "keylet '$n' did not stop within 10 s of SIGTERM"; return 1
  fi
  wait "$pid" || rc=$?
  unset "KEYLET_PID[$n]"
  ((rc == 0)) || { agent_log_tail "$n"; fail "keylet '$n' exited $rc on SIGTERM (expected 0)"; return 1; }
  say "stopped keylet '$n' (exit 0)"
}

stop_all_keylets() { local n; for n in "${!KEYLET_PID[@]}"; do agent_stop "$n" || true; done; }

agent_log_tail() { say "--- last lines of keylet '$1' log:"; tail -n 25 "$E2E_TMP/$1/keylet.log" >&2 || true; }

# ---------------------------------------------------------------------------- keylet's log
# The one way the suites read and wait for keylet NAME's log ($(agent_dir NAME)/keylet.log).
# TEXT is a fixed string; FROM (default 0) skips the log's first FROM lines, as counted
# by log_lines before the step whose lines are awaited.
LOG_WAIT_SECS=30 # default of wait_log and wait_log_count
# log_lines NAME: how many lines keylet NAME's log has (0 while there is none).
log_lines() { local f; f=$(agent_dir "$1")/keylet.log; if [[ -f $f ]]; then wc -l <"$f"; else echo 0; fi; }
# log_count NAME TEXT [FROM]: how many lines after the first FROM hold TEXT (0 without a log).
log_count() {
  local f c; f=$(agent_dir "$1")/keylet.log
  if ((${3:-0} > 0)); then
    c=$(tail -n "+$((${3} + 1))" "$f" 2>/dev/null | grep -cF -- "$2" || true)
  else
    c=$(grep -cF -- "$2" "$f" 2>/dev/null || true)
  fi
  echo "${c:-0}"
}
# wait_log_count NAME TEXT N [SECS] [FROM] [STEP]: polls (every STEP s, 0.05) until at
# least N lines after the first FROM hold TEXT; after SECS ($LOG_WAIT_SECS) it prints the
# log's tail and fails. An empty SECS or FROM takes the default.
wait_log_count() {
  local n=$1 text=$2 want=$3 secs=${4:-$LOG_WAIT_SECS} from=${5:-0} step=${6:-0.05} c end after=
  end=$((${EPOCHREALTIME/[.,]/} + secs * 1000000))
  while :; do
    c=$(log_count "$n" "$text" "$from")
    ((c >= want)) && return 0
    ((${EPOCHREALTIME/[.,]/} < end)) || break
    sleep "$step"
  done
  ((from == 0)) || after=" after line $from"
  agent_log_tail "$n"
  fail "keylet '$n' logged '$text' $c times$after, not $want, within $secs s"
}
# wait_log NAME TEXT [SECS]: keylet NAME's log holds a line with TEXT.
wait_log() { wait_log_count "$1" "$2" 1 "${3:-}"; }

# keylet identity -> {"uuid","aik_tpm","ek_tpm"}; while keylet NAME runs, waits (30 s)
# until it has written its state.
agent_identity() { # NAME [K=V...] (the same env overrides as agent_start)
  local n=$1 out i; shift
  for ((i = 0; i < 150; i++)); do
    if out=$(keylet_env "$n" "$@" "$KEYLET_BIN" identity 2>/dev/null) && jq -e .uuid <<<"$out" >/dev/null 2>&1; then
      echo "$out"; return 0
    fi
    if [[ -z ${KEYLET_PID[$n]:-} ]]; then # not running: the state on disk is all there is
      fail "'keylet identity' found no identity in $E2E_TMP/$n/state"; return 1
    fi
    if ! agent_alive "$n"; then
      agent_log_tail "$n"; fail "keylet '$n' exited before its identity was available"; return 1
    fi
    sleep 0.2
  done
  agent_log_tail "$n"; fail "'keylet identity' gave no identity for '$n' within 30 s"
}

# The verifier's view of a quote: mTLS with the testbed client certificate, keylet's
# own server certificate as the trust anchor (verified, never -k).
agent_curl() { # NAME [curl args...]
  local n=$1; shift
  curl -sS --cacert "$(agent_dir "$n")/state/server-cert.crt" --cert "$TLS/client-cert.crt" \
    --key "$TLS/client-private.pem" "$@"
}

# ---------------------------------------------------------------------------- keylet doctor
# doctor NAME [K=V...] -- [doctor args...]: keylet doctor --json; sets DOC (report) and DOC_RC.
doctor() {
  local n=$1 envs=(); shift
  while (($#)) && [[ $1 != -- ]]; do envs+=("$1"); shift; done
  shift || true
  agent_render "$n"
  DOC_RC=0 # used by the suites
  # shellcheck disable=SC2034
  DOC=$(keylet_env "$n" "${envs[@]}" "$KEYLET_BIN" doctor --json "$@") || DOC_RC=$?
  jq -e .checks <<<"$DOC" >/dev/null || { fail "keylet doctor printed no JSON report: $DOC"; return 1; }
}
status_of() { jq -r --arg n "$1" '[.checks[] | select(.name == $n) | .status] | join(",")' <<<"$DOC"; }
detail_of() { jq -r --arg n "$1" '[.checks[] | select(.name == $n) | .detail] | join(" | ")' <<<"$DOC"; }
fails() { jq -c '[.checks[] | select(.status == "fail")]' <<<"$DOC"; }
expect() { # CHECK STATUS
  local got; got=$(status_of "$1")
  [[ $got == "$2" ]] || fail "check $1: expected $2, got '${got:-absent}' ($(detail_of "$1"))"
}

# ---------------------------------------------------------------------------- services (REST)
rest() { # PORT PATH [curl args] -> body (any HTTP status)
  local port=$1 path=$2; shift 2
  curl -sS --max-time 10 --cacert "$TLS/cacert.crt" --cert "$TLS/client-cert.crt" \
    --key "$TLS/client-private.pem" "$@" "https://127.0.0.1:$port/$REST_API/$path"
}
need_uuid() { [[ $1 =~ ^[0-9A-Za-z._-]+$ ]] || fail "not a UUID: '$1'"; }
registrar_get() { need_uuid "$1" || return 1; rest "$REGISTRAR_TLS_PORT" "agents/$1" | jq -c 'select(.code == 200) | .results'; }
verifier_get() { need_uuid "$1" || return 1; rest "$VERIFIER_PORT" "agents/$1" | jq -c 'select(.code == 200) | .results'; }

# wait_registered UUID [SECS] [MIN_REGCOUNT]: the registrar shows UUID active
# (with regcount >= MIN_REGCOUNT); prints its record.
wait_registered() {
  local u=$1 secs=${2:-30} min=${3:-0} t0=$SECONDS r
  need_uuid "$u"
  while ((SECONDS - t0 < secs)); do
    r=$(registrar_get "$u" 2>/dev/null || true)
    if [[ -n $r ]] && (($(jq -r '.regcount // 0' <<<"$r") >= min)); then echo "$r"; return 0; fi
    sleep 0.3
  done
  fail "registrar does not show agent $u active (regcount >= $min) within $secs s"
}

# wait_attested UUID N [SECS]: the verifier's attestation_count >= N with status PASS.
wait_attested() {
  local u=$1 n=$2 secs=${3:-60} t0=$SECONDS r cnt=
  need_uuid "$u"
  while ((SECONDS - t0 < secs)); do
    r=$(verifier_get "$u" 2>/dev/null || true)
    cnt=$(jq -r '.attestation_count // empty' <<<"$r" 2>/dev/null || true)
    # attestation_status (7.13 and later) or, in any release, operational_state
    # 7 (Failed), 9 (Invalid Quote), 10 (Tenant Quote Failed)
    if [[ $(jq -r '.attestation_status // empty' <<<"$r" 2>/dev/null) == FAIL ||
      " 7 9 10 " == *" $(jq -r '.operational_state // empty' <<<"$r" 2>/dev/null) "* ]]; then
      fail "verifier marks $u FAIL: $(jq -c '{operational_state, severity_level, last_event_id}' <<<"$r")"; return 1
    fi
    if [[ -n $cnt ]] && ((cnt >= n)); then echo "$r"; return 0; fi
    sleep 0.5
  done
  fail "agent $u: attestation_count did not reach $n within $secs s (last: ${cnt:-none}; $(jq -c '{operational_state, attestation_status, last_event_id}' <<<"${r:-{\}}" 2>/dev/null))"
}

# wait_failed UUID [SECS]: the verifier marks UUID FAIL; prints its record.
wait_failed() {
  local u=$1 secs=${2:-60} t0=$SECONDS r
  need_uuid "$u"
  while ((SECONDS - t0 < secs)); do
    r=$(verifier_get "$u" 2>/dev/null || true)
    [[ $(jq -r '.attestation_status // empty' <<<"$r" 2>/dev/null) == FAIL ]] && { echo "$r"; return 0; }
    sleep 0.5
  done
  fail "verifier did not mark $u FAIL within $secs s (last: $(jq -c '{operational_state, attestation_status, attestation_count}' <<<"${r:-{\}}" 2>/dev/null))"
}

# tenant_add UUID [PORT] [tenant args...]: the real keylime_tenant -c add.
tenant_add() {
  local u=$1 port=${2:-$AGENT_PORT}; shift $(($# < 2 ? $# : 2))
  tb add "$u" 127.0.0.1 "$port" "$@" >"$E2E_TMP/tenant-add.log" 2>&1 ||
    { tail -n 20 "$E2E_TMP/tenant-add.log" >&2; fail "keylime_tenant -c add $u failed"; return 1; }
}

# verifier_delete UUID: remove from the verifier (REST) and wait until it is gone.
verifier_delete() {
  local i code
  rest "$VERIFIER_PORT" "agents/$1" -X DELETE -o /dev/null || true
  for ((i = 0; i < 300; i++)); do
    code=$(rest "$VERIFIER_PORT" "agents/$1" -o /dev/null -w '%{http_code}' || true)
    [[ $code == 404 ]] && return 0; sleep 0.1
  done
  fail "verifier did not delete $1 within 30 s"
}

# ---------------------------------------------------------------------------- TPM (keylet stopped!)
# pcr_value N [PORT]: lower-case hex SHA-256 PCR N of swtpm.
pcr_value() {
  TPM2TOOLS_TCTI="swtpm:host=127.0.0.1,port=${2:-$SWTPM_PORT}" tpm2_pcrread "sha256:$1" |
    sed -n 's/^ *[0-9]\+ *: *0x\([0-9A-Fa-f]\+\)$/\1/p' | tr 'A-F' 'a-f'
}
pcr_extend() { tb tpm2 pcrextend "$1:sha256=$2"; }
transient_handles() { tb tpm2 getcap handles-transient | grep -c 0x || true; }
