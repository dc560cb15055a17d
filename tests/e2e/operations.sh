#!/usr/bin/env bash
# tests/e2e/operations.sh - keylet for operators, against the real Keylime 7.14.3 and swtpm.
#
# Usage: tests/e2e/operations.sh [SCENARIO...]   (default: all, in this order)
#   run_as          keylet started as root with run_as=nobody:nogroup: after start-up
#                   /proc/PID/status shows uid/gid/groups nobody and no capabilities,
#                   the TPM connection opened as root still quotes (the real verifier
#                   attests PASS), and the metrics listener (bound as root) reports the
#                   registration and the verifier's quotes
#   metrics_remote  metrics_listen on a non-loopback address without metrics_allow_remote
#                   is refused at start-up (exit 2, the message names both options)
# Needs: scripts/testbed.sh up, a keylet build; run_as needs root (skipped otherwise).
set -euo pipefail
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# status_field PID NAME -> the value of NAME: in /proc/PID/status, whitespace squeezed.
status_field() { awk -v k="$2:" '$1 == k { $1 = ""; sub(/^ /, ""); print; exit }' "/proc/$1/status"; }

# metric TEXT NAME{LABELS} -> the sample's value (empty when absent).
metric() { awk -v s="$2" '$1 == s { print $2; exit }' <<<"$1"; }

scenario_run_as() {
  local uuid pid nobody nogroup r text v
  (($(id -u) == 0)) || skip_scenario "run_as needs root"
  nobody=$(id -u nobody) nogroup=$(getent group nogroup | cut -d: -f3)
  [[ -n $nogroup ]] || fail "no group nogroup on this host"
  local mport; mport=$(free_port)
  tb reset >/dev/null 2>&1
  agent_new ops
  agent_set ops run_as nobody:nogroup
  agent_set ops metrics_listen "127.0.0.1:$mport"
  agent_start ops
  uuid=$(jq -r .uuid <<<"$(agent_identity ops)")
  wait_registered "$uuid" 30 >/dev/null
  pid=${KEYLET_PID[ops]}
  # The drop happens once registered, before serving: wait for the log line.
  wait_log ops 'dropped privileges to nobody:nogroup' 5
  assert_eq "$(status_field "$pid" Uid)" "$nobody $nobody $nobody $nobody" "Uid (real effective saved fs)"
  assert_eq "$(status_field "$pid" Gid)" "$nogroup $nogroup $nogroup $nogroup" "Gid (real effective saved fs)"
  assert_eq "$(status_field "$pid" Groups)" "$nogroup" "supplementary groups"
  assert_eq "$(status_field "$pid" CapEff)" 0000000000000000 "effective capabilities"
  assert_eq "$(status_field "$pid" CapPrm)" 0000000000000000 "permitted capabilities"
  say "keylet runs as $(status_field "$pid" Uid | cut -d' ' -f1):$(status_field "$pid" Gid | cut -d' ' -f1) without capabilities"
  # Every quote below is made after the drop, over the TPM connection opened as root.
  tenant_add "$uuid"
  r=$(wait_attested "$uuid" 3 60)
  assert_eq "$(jq -r .attestation_status <<<"$r")" PASS "attestation_status after the drop"
  text=$(curl -sS --max-time 10 "http://127.0.0.1:$mport/metrics")
  [[ $(tail -n 1 <<<"$text") == "# EOF" ]] || fail "the scrape does not end with # EOF"
  assert_eq "$(metric "$text" keylet_registered)" 1 "keylet_registered"
  v=$(metric "$text" 'keylet_quotes_total{endpoint="integrity",result="ok"}')
  assert_ge "$v" 3 "integrity quotes counted"
  v=$(metric "$text" 'keylet_quotes_total{endpoint="identity",result="ok"}')
  assert_ge "$v" 1 "identity quotes counted (the tenant's)"
  v=$(metric "$text" 'keylet_tpm_command_duration_seconds_count{command="quote"}')
  assert_ge "$v" 4 "timed TPM2_Quote commands"
  v=$(metric "$text" "keylet_certificate_expiry_timestamp_seconds{path=\"$TLS/cacert.crt\"}")
  assert_ge "$v" "$(date +%s)" "trusted_client_ca expiry (in the future)"
  v=$(metric "$text" keylet_last_quote_timestamp_seconds)
  assert_ge "$v" "$(($(date +%s) - 30))" "last quote time (within 30 s)"
  verifier_delete "$uuid"
  agent_stop ops
}

scenario_metrics_remote() {
  local rc=0 log
  agent_new remote
  agent_set remote metrics_listen "0.0.0.0:$(free_port)"
  agent_render remote
  log=$(agent_dir remote)/keylet.log
  (keylet_env remote "$KEYLET_BIN" run) >"$log" 2>&1 </dev/null || rc=$?
  assert_eq "$rc" 2 "exit code for a remote metrics_listen without opt-in"
  { grep -q "metrics_listen" "$log" && grep -q "metrics_allow_remote = true" "$log"; } ||
    { cat "$log" >&2; fail "the error does not name metrics_listen and metrics_allow_remote"; }
}

e2e_init operations
run_scenarios run_as metrics_remote -- "$@"
