#!/usr/bin/env bash
# tests/e2e/registration.sh - keylet registers with the real Keylime 7.14.3 registrar.
#
# Usage: tests/e2e/registration.sh [SCENARIO...]   (default: all, in this order)
#   register     registers + activates; the registrar holds keylet's own AK/EK; the
#                pull API answers over mTLS only; TPM objects are flushed on exit
#   restart      restart: same UUID, same keys, accepted again (no 403), regcount grows
#   second_tpm   a COPY of the config (uuid = hash_ek) on a separately manufactured
#                swtpm registers under a different UUID; the first one is untouched
#   placeholder  the placeholder UUID is refused: exit 2, message names it
#   host_ids     uuid = hostname registers as the kernel host name, uuid = environment as
#                KEYLIME_AGENT_UUID, uuid = dmidecode as the SMBIOS UUID lower-cased (or,
#                without DMI tables, exit 2 naming product_uuid)
#   slow_start   (only when named; tests/e2e/slow-tpm.sh runs it on a slow TPM) metrics
#                answer while the TPM still makes the AK: keylet_registered 0 is scraped
#                before keylet logs its next start-up step
# Needs: scripts/testbed.sh up (the registrar is reset at the start), a keylet build.
set -euo pipefail
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# The "main" keylet's identity; runs it once if this run has not yet.
ensure_main() {
  if [[ ! -s $E2E_TMP/main/cfg.kv ]] || ! agent_identity main >/dev/null 2>&1; then
    agent_new main
    agent_start main
    local id uuid
    id=$(agent_identity main)
    uuid=$(jq -r .uuid <<<"$id")
    wait_registered "$uuid" 30 >/dev/null
    agent_stop main
  fi
  agent_identity main
}

scenario_register() {
  agent_new main
  agent_start main
  local id uuid reg body
  id=$(agent_identity main)
  uuid=$(jq -r .uuid <<<"$id")
  [[ $uuid =~ ^[0-9A-Za-z._-]{1,255}$ ]] || fail "keylet identity: implausible uuid '$uuid'"
  assert_ne "$uuid" "$PLACEHOLDER_UUID" "hash_ek UUID vs the placeholder"
  reg=$(wait_registered "$uuid" 30)
  say "registered $uuid (regcount $(jq -r .regcount <<<"$reg"))"
  assert_eq "$(jq -r .aik_tpm <<<"$reg")" "$(jq -r .aik_tpm <<<"$id")" "registrar aik_tpm vs keylet identity"
  assert_eq "$(jq -r .ek_tpm <<<"$reg")" "$(jq -r .ek_tpm <<<"$id")" "registrar ek_tpm vs keylet identity"
  assert_nonempty "$(jq -r .ekcert <<<"$reg")" "registrar ekcert (swtpm has an EK certificate in NV)"
  assert_eq "$(jq -r .ip <<<"$reg")" 127.0.0.1 "registered contact ip"
  assert_eq "$(jq -r .port <<<"$reg")" "$AGENT_PORT" "registered contact port"
  local mtls; mtls=$(jq -r .mtls_cert <<<"$reg")
  [[ $mtls == *"BEGIN CERTIFICATE"* ]] || fail "registered mtls_cert is not a PEM certificate: ${mtls:0:40}"
  # The pull API is up: with the verifier's client certificate /version answers...
  body=$(curl -sS --max-time 10 -k --cert "$TLS/client-cert.crt" --key "$TLS/client-private.pem" \
    "https://127.0.0.1:$AGENT_PORT/version") || fail "GET /version with the client certificate failed"
  jq -e '.results.supported_version' <<<"$body" >/dev/null ||
    fail "GET /version: no results.supported_version in $body"
  # ...without a client certificate the TLS handshake is refused (mTLS).
  if curl -s --max-time 10 -k -o /dev/null "https://127.0.0.1:$AGENT_PORT/version"; then
    fail "the pull API answered a client without a certificate (mTLS is on)"
  fi
  agent_alive main || fail "keylet exited after registering"
  # The reference agent's words, which operators' log alerts match.
  grep -q "SUCCESS: Agent $uuid registered" "$(agent_dir main)/keylet.log" ||
    fail "keylet did not log 'SUCCESS: Agent $uuid registered'"
  grep -q "SUCCESS: Agent $uuid activated" "$(agent_dir main)/keylet.log" ||
    fail "keylet did not log 'SUCCESS: Agent $uuid activated'"
  agent_stop main
  assert_eq "$(transient_handles)" 0 "transient objects left in swtpm after keylet stopped"
}

scenario_restart() {
  local id1 uuid n0 reg id2 rejected0 serving0
  id1=$(ensure_main)
  uuid=$(jq -r .uuid <<<"$id1")
  reg=$(wait_registered "$uuid" 5)
  n0=$(jq -r .regcount <<<"$reg")
  rejected0=$(grep -c "SECURITY: Rejected" "$TB_STATE/logs/registrar.log" || true)
  serving0=$(log_count main "serving the Keylime agent API")
  agent_start main
  reg=$(wait_registered "$uuid" 30 $((n0 + 1)))
  say "re-registered $uuid: regcount $n0 -> $(jq -r .regcount <<<"$reg")"
  id2=$(agent_identity main)
  assert_eq "$(jq -r .uuid <<<"$id2")" "$uuid" "UUID after restart"
  assert_eq "$(jq -r .aik_tpm <<<"$id2")" "$(jq -r .aik_tpm <<<"$id1")" "AK after restart"
  assert_eq "$(jq -r .ek_tpm <<<"$id2")" "$(jq -r .ek_tpm <<<"$id1")" "EK after restart"
  assert_eq "$(jq -r .aik_tpm <<<"$reg")" "$(jq -r .aik_tpm <<<"$id1")" "registrar aik_tpm after restart"
  assert_eq "$(grep -c "SECURITY: Rejected" "$TB_STATE/logs/registrar.log" || true)" "$rejected0" \
    "registrar rejections (403) during the restart"
  # Start-up goes on after the registration (payload keys, privileges): it ends serving.
  wait_log_count main "serving the Keylime agent API" $((serving0 + 1)) 30
  agent_alive main || { agent_log_tail main; fail "keylet exited after re-registering"; }
  agent_stop main
  assert_eq "$(transient_handles)" 0 "transient objects left in swtpm after keylet stopped"
}

scenario_second_tpm() {
  local id1 uuid1 port2=$((SWTPM_PORT + 10)) env2 id2 uuid2 reg2 reg1
  id1=$(ensure_main)
  uuid1=$(jq -r .uuid <<<"$id1")
  E2E_EXTRA_TPMS="e2e-b"
  KEYLET_TB_FORCE=1 tb tpm2-start e2e-b "$port2" >/dev/null # freshly manufactured
  # Another host with a copy of the same config file: only its state dir and TPM differ.
  mkdir -p "$E2E_TMP/copy/state"
  agent_render main
  cp "$E2E_TMP/main/keylet.toml" "$E2E_TMP/copy/keylet.toml"
  grep -q '^uuid = "hash_ek"$' "$E2E_TMP/copy/keylet.toml" || fail "copied config does not use uuid = hash_ek"
  env2=("KEYLIME_AGENT_KEYLIME_DIR=$E2E_TMP/copy/state" "KEYLIME_AGENT_TPM_DEVICE=tcp://127.0.0.1:$port2")
  agent_start copy "${env2[@]}"
  id2=$(agent_identity copy "${env2[@]}")
  uuid2=$(jq -r .uuid <<<"$id2")
  assert_ne "$uuid2" "$uuid1" "hash_ek UUIDs of two different TPMs"
  assert_ne "$(jq -r .ek_tpm <<<"$id2")" "$(jq -r .ek_tpm <<<"$id1")" "EKs of two different TPMs"
  reg2=$(wait_registered "$uuid2" 30)
  assert_eq "$(jq -r .aik_tpm <<<"$reg2")" "$(jq -r .aik_tpm <<<"$id2")" "registrar aik_tpm of the second keylet"
  reg1=$(wait_registered "$uuid1" 5)
  assert_eq "$(jq -r .aik_tpm <<<"$reg1")" "$(jq -r .aik_tpm <<<"$id1")" "first keylet's AK at the registrar"
  agent_stop copy
  tb tpm2-stop e2e-b >/dev/null
}

scenario_placeholder() {
  local out rc=0
  agent_new ph
  agent_set ph uuid "$PLACEHOLDER_UUID"
  agent_render ph
  out=$(keylet_env ph timeout 30 "$KEYLET_BIN" run 2>&1) || rc=$?
  assert_eq "$rc" 2 "keylet exit code with the placeholder UUID (2 = bad config)" ||
    { printf '%s\n' "$out" | tail -n 10 >&2; return 1; }
  grep -qi -e "$PLACEHOLDER_UUID" -e placeholder <<<"$out" ||
    fail "the error message does not name the placeholder UUID: $(tail -n 3 <<<"$out")"
  [[ -z $(registrar_get "$PLACEHOLDER_UUID") ]] || fail "the placeholder UUID was registered anyway"
}

# refused NAME WHAT [K=V...]: keylet run exits 2 and the message contains WHAT.
refused() {
  local n=$1 what=$2 out rc=0; shift 2
  agent_render "$n"
  out=$(keylet_env "$n" "$@" timeout 30 "$KEYLET_BIN" run 2>&1) || rc=$?
  assert_eq "$rc" 2 "keylet exit code ($what)" || { tail -n 5 <<<"$out" >&2; return 1; }
  grep -q -- "$what" <<<"$out" || fail "the error does not name $what: $(tail -n 3 <<<"$out")"
}

scenario_host_ids() {
  local host want smbios=/sys/class/dmi/id/product_uuid
  host=$(cat /proc/sys/kernel/hostname)
  fresh_agent hn uuid=hostname
  if [[ $host =~ ^[A-Za-z0-9_.-]{1,80}$ && ! ${host,,} =~ ^localhost ]]; then
    start_registered hn
    assert_eq "$REG_UUID" "$host" "uuid = hostname: registered id"
    agent_stop hn
  else
    refused hn "$host"
  fi
  want=0123abcd-0000-4000-8000-00000000e2e1
  fresh_agent env uuid=environment
  refused env KEYLIME_AGENT_UUID
  start_registered env "KEYLIME_AGENT_UUID=${want^^}"
  assert_eq "$REG_UUID" "$want" "uuid = environment: registered id (KEYLIME_AGENT_UUID, lower-cased)"
  agent_stop env
  fresh_agent dmi uuid=dmidecode
  if [[ -r $smbios ]] && want=$(tr 'A-F' 'a-f' <"$smbios") &&
    [[ $want =~ ^[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}$ && $want != 00000000-* && $want != ffffffff-* ]]; then
    start_registered dmi
    assert_eq "$REG_UUID" "$want" "uuid = dmidecode: registered id"
    agent_stop dmi
  else
    refused dmi product_uuid # no (usable) SMBIOS tables here
  fi
}

e2e_init registration
tb reset
scenario_slow_start() {
  local mport log text
  mport=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  fresh_agent slow
  agent_set slow metrics_listen "127.0.0.1:$mport"
  log=$(agent_dir slow)/keylet.log
  agent_start slow
  wait_log slow 'creating the AK' 60
  # The AK's TPM2_Create takes seconds on this TPM: the scrape must not wait for it.
  text=$(curl -sS --max-time 3 "http://127.0.0.1:$mport/metrics") ||
    { agent_log_tail slow; fail "no metrics while the TPM creates the AK"; }
  ! grep -q 'generating the mTLS server key' "$log" ||
    fail "the scrape was answered only after the AK was made (metrics waited for the TPM)"
  assert_eq "$(awk '$1 == "keylet_registered" { print $2 }' <<<"$text")" 0 "keylet_registered during start-up"
  wait_registered "$(jq -r .uuid <<<"$(agent_identity slow)")" 120 >/dev/null
  agent_stop slow
}

defaults=(register restart second_tpm placeholder host_ids)
(($#)) || set -- "${defaults[@]}"
run_scenarios "${defaults[@]}" slow_start -- "$@"
