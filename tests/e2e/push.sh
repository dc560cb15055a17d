#!/usr/bin/env bash
# tests/e2e/push.sh - push mode against the real Keylime 7.14.3 verifier in push mode.
#
# Usage: tests/e2e/push.sh [SCENARIO...]   (default: all, in this order)
#   attest      "keylime_tenant -c add --push-model": the push verifier reports PASS with
#               >= 10 attestations at its 2 s quote_interval; keylet holds no listening socket
#   ima         a runtime policy with IMA: PASS; the verifier's own records show the IMA lines
#               sent incrementally (later evidence starts where the last good one stopped and
#               carries only the new lines); a disallowed entry makes the verifier fail the agent
#   verifier_restart  the push verifier stopped for a while and started again: PASS again,
#               without operator action
#   keylet_restart    keylet restarted mid-run: PASS again without a new add
#   token_revoked     the verifier forgets every session (its sessions table emptied while
#               it is stopped): keylet gets 401, authenticates again and reaches PASS
#   doctor      keylet doctor in push mode: the verifier reached over verified TLS, the agent
#               not enrolled before the add and enrolled after it; a wrong CA fails the check
#   registrar_late  the registrar down at keylet's start for longer than its registration
#               retries: keylet keeps trying (as the reference push agent does), registers
#               once the registrar is back, and reaches PASS
#   nat         keylet in a network namespace that drops every inbound connection (the
#               verifier cannot reach it): PASS; needs root, ip, nft or iptables
# Needs: scripts/testbed.sh up with KEYLET_TB_PUSH_VERIFIER_PORT set (agents are reset per
# scenario), a keylet build.
set -euo pipefail
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
IMA_LOG_PY=$E2E_ROOT/tests/e2e/ima_log.py
# The push verifier: its port (default: the pull verifier's + 2), started here if it
# is not running and stopped again at the end.
export KEYLET_TB_PUSH_VERIFIER_PORT=${KEYLET_TB_PUSH_VERIFIER_PORT:-$((VERIFIER_PORT + 2))}
PUSH_PORT=$KEYLET_TB_PUSH_VERIFIER_PORT
PUSH_DB=$TB_STATE/keylime/cv_push_data.sqlite
ZERO64=$(printf '%064d' 0)
# PCR 15 is never extended on the testbed: a policy that needs a quote and always holds.
PCR15_POLICY="{\"15\":[\"$ZERO64\"]}"
# A CA that did not sign the verifier's certificate (the swtpm EK CA).
TPM_CA_PEM=$TB_STATE/tpm_cert_store/swtpm-localca-rootca.pem

field() { jq -r ".$1" <<<"$2"; }

push_get() { need_uuid "$1" || return 1; rest "$PUSH_PORT" "agents/$1" | jq -c 'select(.code == 200) | .results'; }

# push_agent NAME [KEY=VALUE...]: a fresh keylet in push mode (agents reset everywhere).
push_agent() {
  local n=$1; shift
  fresh_agent "$n" attestation_mode=push "verifier_url=https://127.0.0.1:$PUSH_PORT" \
    "verifier_tls_ca_cert=$TLS/cacert.crt" attestation_interval_seconds=10 "$@"
}

push_add() { # UUID [tenant args...]
  local u=$1; shift
  tb push-add "$u" "$@" >"$E2E_TMP/push-add.log" 2>&1 ||
    { tail -n 20 "$E2E_TMP/push-add.log" >&2; fail "keylime_tenant -c add --push-model $u failed"; return 1; }
}

# wait_push UUID N [SECS]: the push verifier's attestation_count >= N with status PASS.
wait_push() {
  local u=$1 n=$2 secs=${3:-60} t0=$SECONDS r cnt=
  while ((SECONDS - t0 < secs)); do
    r=$(push_get "$u" 2>/dev/null || true)
    cnt=$(jq -r '.attestation_count // empty' <<<"$r" 2>/dev/null || true)
    [[ $(jq -r '.attestation_status // empty' <<<"$r" 2>/dev/null) == FAIL ]] &&
      { fail "push verifier marks $u FAIL: $(jq -c '{attestation_status, last_event_id, severity_level}' <<<"$r")"; return 1; }
    if [[ -n $cnt ]] && ((cnt >= n)) && [[ $(jq -r .attestation_status <<<"$r") == PASS ]]; then
      echo "$r"; return 0
    fi
    sleep 0.5
  done
  fail "agent $u: push attestation_count did not reach $n within $secs s (last: ${cnt:-none}, $(jq -c '{attestation_status, last_event_id}' <<<"${r:-{\}}" 2>/dev/null))"
}

# wait_push_since UUID T [SECS]: a PASS at or after unix time T (and still PASS).
wait_push_since() {
  local u=$1 t=$2 secs=${3:-60} t0=$SECONDS r last=
  while ((SECONDS - t0 < secs)); do
    r=$(push_get "$u" 2>/dev/null || true)
    last=$(jq -r '.last_successful_attestation // 0' <<<"$r" 2>/dev/null || echo 0)
    if [[ $(jq -r '.attestation_status // empty' <<<"$r" 2>/dev/null) == PASS ]] && ((last >= t)); then
      echo "$r"; return 0
    fi
    sleep 0.5
  done
  fail "agent $u: no PASS since $t within $secs s (last successful: ${last:-none})"
}

wait_push_failed() {
  local u=$1 secs=${2:-60} t0=$SECONDS r
  while ((SECONDS - t0 < secs)); do
    r=$(push_get "$u" 2>/dev/null || true)
    [[ $(jq -r '.attestation_status // empty' <<<"$r" 2>/dev/null) == FAIL ]] && { echo "$r"; return 0; }
    sleep 0.5
  done
  fail "push verifier did not mark $u FAIL within $secs s (last: $(jq -c '{attestation_status, attestation_count}' <<<"${r:-{\}}" 2>/dev/null))"
}

# listening_sockets PID: the TCP/TCP6 sockets in LISTEN state that PID holds (by inode).
listening_sockets() {
  local pid=$1 inodes
  inodes=$(find "/proc/$pid/fd" -lname 'socket:*' -printf '%l\n' 2>/dev/null | sed 's/socket:\[\([0-9]*\)\]/\1/' | sort -u)
  [[ -n $inodes ]] || return 0
  # /proc/net/tcp{,6}: st (4th column) 0A = LISTEN; inode is the 10th column.
  awk -v list="$(tr '\n' ' ' <<<"$inodes")" 'BEGIN { n = split(list, a, " "); for (i = 1; i <= n; i++) want[a[i]] = 1 }
    FNR > 1 && $4 == "0A" && ($10 in want) { print FILENAME ": " $2 }' \
    "/proc/$pid/net/tcp" "/proc/$pid/net/tcp6"
}

scenario_attest() {
  local uuid r0 r1 c0 c1 t0 t1 period socks
  push_agent pa
  start_registered pa; uuid=$REG_UUID
  push_add "$uuid" --tpm_policy "$PCR15_POLICY"
  r0=$(wait_push "$uuid" 1 60)
  c0=$(field attestation_count "$r0") t0=$(field last_successful_attestation "$r0")
  say "first push attestation passed (count $c0); waiting for 10 more"
  r1=$(wait_push "$uuid" $((c0 + 10)) 60)
  c1=$(field attestation_count "$r1") t1=$(field last_successful_attestation "$r1")
  assert_eq "$(field attestation_status "$r1")" PASS "attestation_status"
  assert_ge "$((c1 - c0))" 10 "attestations in the window"
  period=$(awk -v dt=$((t1 - t0)) -v dn=$((c1 - c0)) 'BEGIN { printf "%.2f", dt / dn }')
  say "$((c1 - c0)) push attestations in $((t1 - t0)) s: one per $period s"
  awk -v p="$period" 'BEGIN { exit !(p >= 1.5 && p <= 3.5) }' ||
    fail "attestation period $period s is not the verifier's ~2 s quote_interval"
  socks=$(listening_sockets "${KEYLET_PID[pa]}")
  [[ -z $socks ]] || fail "keylet (pid ${KEYLET_PID[pa]}) holds listening sockets in push mode: $socks"
  # The check can fail: the same probe sees a pull-mode listener.
  [[ -n $(listening_sockets "$(pgrep -o -f "keylime_verifier" || echo 1)") ]] ||
    fail "the listening-socket probe finds nothing even for the verifier (the probe is broken)"
  say "keylet holds no listening socket"
  agent_stop pa
}

# ima_setup NAME: a synthetic IMA log matched by swtpm's PCR 10 (keylet is stopped) and a
# runtime policy (IMA_POLICY) that also allows one more entry appended later (IMA_NEXT).
ima_setup() {
  local n=$1 log scratch h i pcrs=()
  log=$(agent_dir "$n")/ascii_runtime_measurements scratch=$(agent_dir "$n")/scratch-log
  IMA_POLICY=$(agent_dir "$n")/runtime-policy.json IMA_LOG=$log
  tb tpm-reboot >/dev/null 2>&1 # PCR 10 back to zero, like a fresh boot
  for i in 0 1 2 3 4 5 6 7 8 9; do pcrs+=("$(pcr_value "$i")"); done
  : >"$log"
  for h in $(python3 "$IMA_LOG_PY" boot-aggregate "$log" "${pcrs[@]}"
             python3 "$IMA_LOG_PY" append "$log" /usr/bin/keylet-push-tool="tool v1" \
               /etc/keylet-push.conf="setting = 1" /usr/lib/keylet-push.so="library v1"); do
    pcr_extend 10 "$h"
  done
  assert_eq "$(python3 "$IMA_LOG_PY" replay "$log")" "$(pcr_value 10)" "IMA log replay vs PCR 10 (test setup)"
  cp "$log" "$scratch"
  python3 "$IMA_LOG_PY" append "$scratch" /usr/bin/keylet-push-later="later v1" >/dev/null
  tb policy create runtime -m "$scratch" -o "$IMA_POLICY" >/dev/null 2>&1 || fail "keylime-policy create runtime failed"
}

# ima_records UUID: "index offset count" of each IMA evidence the push verifier stored.
ima_records() {
  sqlite3 "$PUSH_DB" "select attestation_index, chosen_parameters__starting_offset, data__entry_count \
    from evidence_items where agent_id = '$1' and evidence_type = 'ima_log' and data__entry_count is not null \
    order by attestation_index" | tr '|' ' '
}

scenario_ima() {
  local uuid r lines first later h vlog_from
  push_agent pi
  ima_setup pi
  start_registered pi; uuid=$REG_UUID
  push_add "$uuid" --runtime-policy "$IMA_POLICY"
  r=$(wait_push "$uuid" 4 60)
  assert_eq "$(field has_runtime_policy "$r")" 1 "verifier has_runtime_policy"
  lines=$(wc -l <"$IMA_LOG")
  first=$(ima_records "$uuid" | head -n 1) later=$(ima_records "$uuid" | sed -n '2,$p')
  say "IMA evidence stored by the verifier (index offset lines): $(tr '\n' ';' <<<"$(ima_records "$uuid")")"
  [[ $first == *" 0 $lines" ]] || fail "the first IMA evidence is not the whole log of $lines lines: '$first'"
  [[ -n $later ]] || fail "no later IMA evidence recorded"
  awk -v n="$lines" '$2 != n || $3 != 0 { bad = 1 } END { exit bad }' <<<"$later" ||
    fail "later evidence resent IMA lines (expected offset $lines with 0 lines): $later"
  say "one allowed entry appended while keylet is stopped: only that line is sent"
  agent_stop pi
  h=$(python3 "$IMA_LOG_PY" append "$IMA_LOG" /usr/bin/keylet-push-later="later v1")
  pcr_extend 10 "$h"
  agent_start pi
  r=$(wait_push "$uuid" $(($(field attestation_count "$r") + 3)) 60)
  # The verifier keeps only some attestations; the one that carried the new line may be
  # gone, but the offsets after it show it certified exactly one more line, and nothing
  # after it was resent.
  say "IMA evidence now: $(tr '\n' ';' <<<"$(ima_records "$uuid")")"
  ima_records "$uuid" | awk -v n="$lines" '($2 == n && $3 == 1) || ($2 == n + 1 && $3 == 0) { found = 1 }
    $2 < n && NR > 1 { resent = 1 } END { exit !(found && !resent) }' ||
    fail "the new line was not sent alone from offset $lines: $(tr '\n' ';' <<<"$(ima_records "$uuid")")"
  say "a disallowed entry appended: the verifier must fail the agent"
  agent_stop pi
  vlog_from=$(wc -l <"$TB_STATE/logs/verifier-push.log")
  h=$(python3 "$IMA_LOG_PY" append "$IMA_LOG" /tmp/keylet-push-not-allowed="evil")
  pcr_extend 10 "$h"
  agent_start pi
  r=$(wait_push_failed "$uuid" 60)
  # In push mode the verifier's REST view has no last_event_id: its log says why.
  tail -n "+$((vlog_from + 1))" "$TB_STATE/logs/verifier-push.log" |
    grep -q "File not found in allowlist: /tmp/keylet-push-not-allowed" ||
    fail "the push verifier's log does not name the disallowed entry"
  say "push verifier: FAIL, the disallowed entry named in its log"
  agent_alive pi || fail "keylet exited after the verifier failed it"
  agent_stop pi
}

scenario_verifier_restart() {
  local uuid r c t_back from
  push_agent pv
  start_registered pv; uuid=$REG_UUID
  push_add "$uuid" --tpm_policy "$PCR15_POLICY"
  r=$(wait_push "$uuid" 3 60)
  c=$(field attestation_count "$r")
  from=$(log_lines pv)
  tb service-stop verifier-push >/dev/null 2>&1
  say "push verifier stopped; keylet keeps trying with backoff"
  wait_log_count pv "unreachable" 2 60 "$from" # a failed try, and a retry after the backoff
  agent_alive pv || fail "keylet exited while the verifier was down"
  tb start >/dev/null 2>&1
  t_back=$(date +%s)
  r=$(wait_push_since "$uuid" "$t_back" 90)
  r=$(wait_push "$uuid" $(($(field attestation_count "$r") + 2)) 30)
  grep -q "unreachable" "$(agent_dir pv)/keylet.log" || fail "keylet did not log the verifier as unreachable"
  agent_stop pv
}

scenario_keylet_restart() {
  local uuid r c t_restart
  push_agent pk
  start_registered pk; uuid=$REG_UUID
  push_add "$uuid" --tpm_policy "$PCR15_POLICY"
  r=$(wait_push "$uuid" 3 60)
  c=$(field attestation_count "$r")
  agent_stop pk
  t_restart=$(date +%s)
  agent_start pk
  r=$(wait_push_since "$uuid" "$t_restart" 60)
  r=$(wait_push "$uuid" $(($(field attestation_count "$r") + 2)) 30)
  grep -q "authenticated at the verifier" "$(agent_dir pk)/keylet.log" || fail "keylet did not authenticate after its restart"
  agent_stop pk
}

scenario_token_revoked() {
  local uuid r c auths t_back
  command -v sqlite3 >/dev/null || fail "sqlite3 is needed to revoke the sessions"
  push_agent pt
  start_registered pt; uuid=$REG_UUID
  push_add "$uuid" --tpm_policy "$PCR15_POLICY"
  r=$(wait_push "$uuid" 3 60)
  c=$(field attestation_count "$r")
  tb service-stop verifier-push >/dev/null 2>&1
  sqlite3 "$PUSH_DB" "delete from sessions"
  tb start >/dev/null 2>&1
  t_back=$(date +%s)
  say "every session revoked; keylet's token is void"
  r=$(wait_push_since "$uuid" "$t_back" 90)
  grep -q "answered 401" "$(agent_dir pt)/keylet.log" || fail "keylet never saw a 401"
  auths=$(grep -c "authenticated at the verifier" "$(agent_dir pt)/keylet.log")
  assert_ge "$auths" 2 "authentications (the first one and the one after the revocation)"
  agent_stop pt
}

scenario_doctor() {
  local uuid
  push_agent pd
  start_registered pd; uuid=$REG_UUID
  agent_stop pd # swtpm serves one client: the doctor's TPM checks need it
  doctor pd -- || true
  expect verifier ok
  expect verifier.enrolled fail
  expect listen ok
  [[ $(detail_of verifier.enrolled) == *"$uuid"* ]] || fail "verifier.enrolled does not name the agent"
  push_add "$uuid" --tpm_policy "$PCR15_POLICY"
  doctor pd -- || true
  expect verifier.enrolled ok
  agent_set pd verifier_tls_ca_cert "$TPM_CA_PEM"
  doctor pd -- || true
  expect verifier fail
  [[ $(jq -r '.checks[] | select(.name == "verifier") | .fix' <<<"$DOC") == *verifier_tls_ca_cert* ]] ||
    fail "the verifier check's fix does not name verifier_tls_ca_cert"
}

NAT_NS=keylet-push-nat NAT_HOST_IF=kpn-host NAT_NS_IF=kpn-agent NAT_HOST_IP=10.231.77.1 NAT_NS_IP=10.231.77.2
nat_cleanup() {
  [[ -z ${NAT_FWD_PID:-} ]] || kill "$NAT_FWD_PID" 2>/dev/null || true
  [[ -z ${NAT_LISTENER_PID:-} ]] || kill "$NAT_LISTENER_PID" 2>/dev/null || true
  ip netns del "$NAT_NS" 2>/dev/null || true
  ip link del "$NAT_HOST_IF" 2>/dev/null || true
  rm -rf "/etc/netns/$NAT_NS"
}

scenario_nat() {
  local uuid r socks rc
  [[ $(id -u) == 0 ]] || skip_scenario "needs root (network namespace)"
  command -v ip >/dev/null || skip_scenario "needs iproute2"
  command -v nft >/dev/null || skip_scenario "needs nft (nftables) to drop inbound connections"
  nat_cleanup
  trap 'nat_cleanup; scenario_cleanup' EXIT
  ip netns add "$NAT_NS"
  ip link add "$NAT_HOST_IF" type veth peer name "$NAT_NS_IF"
  ip link set "$NAT_NS_IF" netns "$NAT_NS"
  ip addr add "$NAT_HOST_IP/30" dev "$NAT_HOST_IF"; ip link set "$NAT_HOST_IF" up
  ip -n "$NAT_NS" addr add "$NAT_NS_IP/30" dev "$NAT_NS_IF"
  ip -n "$NAT_NS" link set "$NAT_NS_IF" up; ip -n "$NAT_NS" link set lo up
  # Like a host behind NAT or a firewall: no new connection gets in, answers to its own do.
  ip netns exec "$NAT_NS" nft -f - <<'NFT'
table inet keylet_push_nat {
  chain input { type filter hook input priority 0; policy drop; iif lo accept; ct state established,related accept; }
}
NFT
  # The testbed listens on 127.0.0.1 only: reach it from the namespace through the host end.
  python3 "$E2E_ROOT/tests/e2e/tcp_forward.py" "$NAT_HOST_IP" "$REGISTRAR_PORT" "$PUSH_PORT" "$SWTPM_PORT" \
    >"$E2E_TMP/forward.log" 2>&1 &
  NAT_FWD_PID=$!
  wait_for 10 "the forwarder listening on $NAT_HOST_IP" grep -q '^forwarding' "$E2E_TMP/forward.log" ||
    { cat "$E2E_TMP/forward.log" >&2; return 1; }
  # The verifier's certificate names 127.0.0.1 and localhost: in the namespace, localhost
  # is the host end (ip netns exec bind-mounts /etc/netns/NS/hosts over /etc/hosts).
  mkdir -p "/etc/netns/$NAT_NS"; printf '%s localhost\n' "$NAT_HOST_IP" >"/etc/netns/$NAT_NS/hosts"
  push_agent pn "registrar_ip=$NAT_HOST_IP" "tpm_device=tcp://$NAT_HOST_IP:$SWTPM_PORT" \
    "verifier_url=https://localhost:$PUSH_PORT"
  agent_render pn
  ip netns exec "$NAT_NS" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin RUST_LOG=info \
    KEYLIME_AGENT_CONFIG="$E2E_TMP/pn/keylet.toml" "$KEYLET_BIN" run >>"$E2E_TMP/pn/keylet.log" 2>&1 </dev/null &
  KEYLET_PID[pn]=$!
  uuid=$(jq -r .uuid <<<"$(agent_identity pn)")
  wait_registered "$uuid" 30 >/dev/null
  # The firewall holds: a listener inside the namespace, up and reachable from inside it,
  # cannot be reached from the host (its connection attempt gets no answer at all).
  rm -f "$E2E_TMP/nat-listener.ready"
  ip netns exec "$NAT_NS" python3 -c 'import socket, sys, time
s = socket.socket(); s.bind(("0.0.0.0", 19399)); s.listen(8)
open(sys.argv[1], "w").close(); time.sleep(60)' "$E2E_TMP/nat-listener.ready" &
  NAT_LISTENER_PID=$!
  wait_for 10 "the listener inside the namespace" test -e "$E2E_TMP/nat-listener.ready" || return 1
  ip netns exec "$NAT_NS" timeout 3 bash -c "exec 3<>/dev/tcp/$NAT_NS_IP/19399" 2>/dev/null ||
    { fail "the listener inside the namespace cannot be reached from inside it (the probe is broken)"; return 1; }
  rc=0; timeout 3 bash -c "exec 3<>/dev/tcp/$NAT_NS_IP/19399" 2>/dev/null || rc=$?
  kill "$NAT_LISTENER_PID" 2>/dev/null || true; wait "$NAT_LISTENER_PID" 2>/dev/null || true; NAT_LISTENER_PID=
  case $rc in
    124) ;; # dropped: no answer within 3 s
    0) fail "the namespace accepted an inbound connection (the NAT stand-in does not hold)"; return 1 ;;
    *) fail "an inbound connection was refused (status $rc), not dropped: the NAT stand-in does not hold"; return 1 ;;
  esac
  push_add "$uuid" --tpm_policy "$PCR15_POLICY"
  r=$(wait_push "$uuid" 5 90)
  assert_eq "$(field attestation_status "$r")" PASS "attestation_status behind NAT"
  socks=$(listening_sockets "${KEYLET_PID[pn]}")
  [[ -z $socks ]] || fail "keylet holds listening sockets behind NAT: $socks"
  say "PASS from inside a namespace that admits no inbound connection; keylet listens on nothing"
  agent_stop pn
}

push_port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$PUSH_PORT") 2>/dev/null; }
e2e_init push
if ! push_port_open; then
  say "starting the push verifier on port $PUSH_PORT"
  tb start >"$E2E_TMP/push-verifier-start.log" 2>&1 ||
    { tail -n 20 "$E2E_TMP/push-verifier-start.log" >&2; fail "could not start the push verifier"; exit 1; }
  # Stopped again on the way out, before the usual cleanup (which keeps the exit status).
  trap 'rc=$?; tb service-stop verifier-push >/dev/null 2>&1 || true; (exit "$rc"); e2e_cleanup' EXIT
fi
scenario_registrar_late() {
  local uuid
  push_agent late exponential_backoff_initial_delay=200 exponential_backoff_max_delay=1000 \
    exponential_backoff_max_retries=2
  tb service-stop registrar >/dev/null 2>&1
  agent_start late
  wait_log late 'push mode keeps trying' 60 # a round of registration retries ended
  agent_alive late || fail "keylet gave up registering while the registrar was down"
  say "keylet keeps trying; starting the registrar"
  tb start >/dev/null 2>&1 || fail "the testbed could not start the registrar again"
  uuid=$(jq -r .uuid <<<"$(agent_identity late)")
  wait_registered "$uuid" 60 >/dev/null
  push_add "$uuid" --tpm_policy "$PCR15_POLICY"
  assert_eq "$(field attestation_status "$(wait_push "$uuid" 1 60)")" PASS "push attestation after a late registrar"
  agent_stop late
}

run_scenarios attest ima verifier_restart keylet_restart token_revoked doctor registrar_late nat -- "$@"
