#!/usr/bin/env bash
# tests/e2e/doctor.sh - keylet doctor against swtpm and the real Keylime 7.14.3 registrar.
#
# Usage: tests/e2e/doctor.sh [SCENARIO...]   (default: all, in this order)
#   all_ok       a fresh host: every check OK (the EK chains to the swtpm CA store,
#                the registrar answers, the port is free), exit 0, no TPM object left
#   running      while keylet runs: the port is held by keylet, the id matches the
#                state; after it stopped: the saved AK loads; exit 0 both times
#   registrar_tls  registrar over TLS: OK with the testbed CA; with a CA that did
#                not sign the registrar's certificate: FAIL naming the CA option, exit 1
#   ek_chain     the EK certificate against a store without its CA: FAIL, exit 1
#   persisted_ek the RSA EK swtpm_setup persisted at 0x81010001: doctor and keylet say it is
#                used (no key generation); an ECC EK put at that handle instead: doctor WARNs
#                naming the template, keylet creates the EK and says why, registers, and
#                leaves no object; the TCG EK is persisted again at the end
#   tpm_clock    swtpm killed and started again (no TPM2_Shutdown): tpm.clock WARN saying
#                keylet will set it forward; keylet starts and does so; then tpm.clock OK
# Needs: scripts/testbed.sh up, a keylet build.
set -euo pipefail
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

EK_STORE=$TB_STATE/tpm_cert_store

scenario_all_ok() {
  agent_new fresh
  doctor fresh -- --ek-ca "$EK_STORE"
  assert_eq "$DOC_RC" 0 "exit code on a healthy host (failures: $(fails))"
  local c
  for c in config tpm.device tpm.clock tpm.lockout tpm.ek tpm.ek_cert tpm.ek_cert_chain identity.uuid keys.ak keys.nk \
    keys.mtls certs.trusted_client_ca certs.trusted_client_ca_chain registrar listen logs.ima; do
    expect "$c" ok
  done
  expect logs.measured_boot warn # the e2e config names a log that does not exist
  [[ $(detail_of listen) == *"is free"* ]] || fail "listen: $(detail_of listen)"
  [[ $(detail_of registrar) == *"answers GET /version"* ]] || fail "registrar: $(detail_of registrar)"
  # It changed nothing: no state, no keys, no TPM object left.
  [[ -z $(ls -A "$(agent_dir fresh)/state") ]] || fail "doctor wrote into keylime_dir: $(ls "$(agent_dir fresh)/state")"
  assert_eq "$(transient_handles)" 0 "transient objects left in swtpm by keylet doctor"
}

scenario_running() {
  agent_new main
  agent_start main
  local uuid
  uuid=$(agent_identity main | jq -r .uuid)
  wait_registered "$uuid" 30 >/dev/null
  doctor main -- --ek-ca "$EK_STORE"
  assert_eq "$DOC_RC" 0 "exit code while keylet runs (failures: $(fails))"
  expect listen ok
  [[ $(detail_of listen) == *"held by a running keylet"* ]] || fail "listen: $(detail_of listen)"
  expect tpm.device warn # swtpm's one connection belongs to the running keylet
  expect identity.uuid ok
  [[ $(detail_of identity.uuid) == *"$uuid"* ]] || fail "identity.uuid: $(detail_of identity.uuid)"
  expect keys.mtls ok
  expect certs.server_cert ok
  agent_alive main || fail "keylet exited while the doctor ran"
  agent_stop main
  doctor main -- --ek-ca "$EK_STORE"
  assert_eq "$DOC_RC" 0 "exit code after keylet stopped (failures: $(fails))"
  expect tpm.ak ok
  expect tpm.ak_da ok # keylet makes its AK with noDA
  expect tpm.ek_cert_chain ok
  expect identity.uuid ok
  [[ $(detail_of identity.uuid) == *"matches the agent state"* ]] || fail "identity.uuid: $(detail_of identity.uuid)"
  assert_eq "$(transient_handles)" 0 "transient objects left in swtpm by keylet doctor"
}

scenario_registrar_tls() {
  agent_new tls
  agent_set tls registrar_tls_enabled true
  agent_set tls registrar_tls_port "$REGISTRAR_TLS_PORT"
  agent_set tls registrar_tls_ca_cert "$TLS/cacert.crt"
  doctor tls
  expect registrar ok
  [[ $(detail_of registrar) == "https://"*"TLS verified"* ]] || fail "registrar: $(detail_of registrar)"
  expect certs.registrar_tls_ca_chain ok
  # A CA that did not sign the registrar's certificate (the swtpm EK root).
  agent_set tls registrar_tls_ca_cert "$EK_STORE/swtpm-localca-rootca.pem"
  doctor tls
  assert_eq "$DOC_RC" 1 "exit code with the wrong registrar CA"
  expect registrar fail
  [[ $(jq -r '.checks[] | select(.name == "registrar") | .fix' <<<"$DOC") == *registrar_tls_ca_cert* ]] ||
    fail "registrar fix does not name registrar_tls_ca_cert"
}

scenario_ek_chain() {
  agent_new chain
  doctor chain -- --ek-ca "$TLS/cacert.crt"
  assert_eq "$DOC_RC" 1 "exit code with an EK CA store that lacks the EK's CA"
  expect tpm.ek_cert_chain fail
  [[ $(detail_of tpm.ek_cert_chain) == *UnknownIssuer* ]] || fail "ek chain: $(detail_of tpm.ek_cert_chain)"
}

e2e_init doctor
tb reset >/dev/null
# unclean_restart: swtpm stopped without TPM2_Shutdown and started again; its clock
# is then "not safe".
unclean_restart() {
  clock_past_boundary || return 1
  # SIGKILL, as a power loss: swtpm gets no chance to do anything orderly on its way out
  local pid i; pid=$(swtpm_pid)
  [[ -n $pid ]] || { fail "swtpm is not running before the unclean restart"; return 1; }
  kill -KILL "$pid" 2>/dev/null
  for ((i = 0; i < 50; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  tb start >/dev/null 2>&1 || { fail "the testbed could not start swtpm again"; return 1; }
}

# clock_check KIND: one unclean restart, then one check that needs the clock unsafe:
#   warn    keylet doctor warns (tpm_clock_repair = true, the default)
#   fail    keylet doctor fails, exit code 1 (tpm_clock_repair = false)
#   repair  keylet run reports setting the clock forward; the doctor then finds it safe
# Returns 2 when the TPM marked its clock safe again on its own before the check (see
# clock_past_boundary; a host stalled for seconds), and the caller tries again.
clock_check() {
  local da0 pid0; da0=$(da_counter); pid0=$(swtpm_pid)
  unclean_restart || return 1
  case $1 in
    warn)
      doctor clk -- --ek-ca "$EK_STORE"
      [[ $(status_of tpm.clock) == ok ]] && return 2
      expect tpm.clock warn || return 1
      [[ $(detail_of tpm.clock) == *"reset without TPM2_Shutdown"* ]] ||
        { fail "tpm.clock: $(detail_of tpm.clock)"; return 1; } ;;
    fail)
      doctor clk KEYLIME_AGENT_TPM_CLOCK_REPAIR=false -- --ek-ca "$EK_STORE"
      [[ $(status_of tpm.clock) == ok ]] && return 2
      expect tpm.clock fail || return 1
      assert_eq "$DOC_RC" 1 "exit code with an unsafe clock and tpm_clock_repair = false" || return 1 ;;
    repair)
      local log n0; log=$(agent_dir clk)/keylet.log
      n0=$(grep -c "the TPM clock was not safe" "$log" 2>/dev/null) || n0=0
      agent_start clk || return 1
      wait_registered "$(agent_identity clk | jq -r .uuid)" 30 >/dev/null || return 1
      agent_stop clk
      # Not reported: the clock was safe again when keylet started (or keylet did not
      # repair it; three such attempts in a row fail the scenario).
      (($(grep -c "the TPM clock was not safe" "$log") > n0)) || return 2
      doctor clk -- --ek-ca "$EK_STORE"
      expect tpm.clock ok || return 1 ;;
  esac
  # Nothing keylet did counts as a dictionary-attack failure (noDA AK, EK by policy).
  assert_eq "$(da_counter)" "$da0" "swtpm's DA lockout counter after the unclean restart (swtpm pid $pid0 -> $(swtpm_pid))"
}

# Puts the TCG RSA EK back at 0x81010001, whatever the scenario left there.
restore_rsa_ek() {
  tb tpm2 evictcontrol -C o -c 0x81010001 >/dev/null 2>&1 || true
  tb tpm2 createek -G rsa -c 0x81010001 >/dev/null 2>&1 || fail "could not persist the RSA EK again"
  tb tpm2 flushcontext -t >/dev/null 2>&1 || true
}

scenario_persisted_ek() {
  tb reset >/dev/null 2>&1 # the registrar forgets earlier scenarios' agents (same EK, other AK)
  agent_new pek
  doctor pek -- --ek-ca "$EK_STORE"
  expect tpm.ek ok
  [[ $(detail_of tpm.ek) == *"persisted at the TCG handle 0x81010001, verified"* ]] ||
    fail "tpm.ek with the EK at its TCG handle: $(detail_of tpm.ek)"
  agent_start pek
  wait_registered "$(agent_identity pek | jq -r .uuid)" 30 >/dev/null
  agent_stop pek
  grep -q "EK persisted at the TCG handle 0x81010001, verified against the TCG template: no key generation" \
    "$(agent_dir pek)/keylet.log" || fail "keylet did not say it uses the persisted EK"

  # Another key at the handle (an ECC EK): passed over with the reason, the EK created.
  tb tpm2 evictcontrol -C o -c 0x81010001 >/dev/null
  tb tpm2 createek -G ecc -c 0x81010001 >/dev/null
  tb tpm2 flushcontext -t >/dev/null
  local rc=0
  persisted_ek_other_key || rc=$?
  restore_rsa_ek
  return "$rc"
}

# The saved AK still loads: the created EK is the same key as the persisted one was.
persisted_ek_other_key() {
  doctor pek -- --ek-ca "$EK_STORE"
  expect tpm.ek warn || return 1
  [[ $(detail_of tpm.ek) == *"0x81010001 is not used, its public area is not the configured TCG EK template's"* ]] ||
    { fail "tpm.ek with an ECC key at the RSA EK's handle: $(detail_of tpm.ek)"; return 1; }
  expect tpm.ak ok || return 1
  agent_start pek || return 1
  wait_registered "$(agent_identity pek | jq -r .uuid)" 30 >/dev/null || return 1
  agent_stop pek || return 1
  grep -q "EK created from the TCG template (TPM2_CreatePrimary): the key persisted at the TCG handle 0x81010001 is not used" \
    "$(agent_dir pek)/keylet.log" || { fail "keylet did not warn about the key at the TCG handle"; return 1; }
  assert_eq "$(transient_handles)" 0 "transient objects left in swtpm"
}

scenario_tpm_clock() {
  tb reset >/dev/null 2>&1 # the registrar forgets earlier scenarios' agents (same EK, other AK)
  agent_new clk
  local kind attempt rc
  for kind in warn fail repair; do
    for attempt in 1 2 3; do
      rc=0; clock_check "$kind" || rc=$?
      ((rc == 2)) || break
      say "$kind, attempt $attempt: swtpm marked its clock safe again before the check ($(tb tpm2 readclock |
        awk '/clock:|reset_count|safe/ { printf "%s ", $0 }')); another unclean restart"
    done
    ((rc == 0)) && continue
    ((rc == 2)) && fail "$kind: three unclean restarts in a row, and each time the clock was safe again before the check, or keylet did not report setting it forward at start-up ($(agent_dir clk)/keylet.log)"
    return 1
  done
}

run_scenarios all_ok running registrar_tls ek_chain persisted_ek tpm_clock -- "$@"
