#!/usr/bin/env bash
# tests/e2e/attestation.sh - the real Keylime 7.14.3 verifier attests keylet continuously.
#
# Usage: tests/e2e/attestation.sh [SCENARIO...]   (default: all, in this order)
#   basic       RSA AK, mTLS, real "keylime_tenant -c add" with the EK cert checked:
#               PASS, >= 10 more attestations at the ~2 s cadence, last_successful advances
#   ecc         ECC EK/AK with ECDSA signatures (the tenant accepts ecdsa): PASS
#   pcr_policy  a policy over PCRs 0-7 holding swtpm's real values passes; a wrong
#               PCR 7 value is marked failed (invalid_pcr_7)
#   ima         a synthetic IMA log matched by PCR 10 and allowed by a runtime policy
#               passes; a disallowed entry appended while keylet is stopped fails
#   restart     keylet restarted mid-run (no new add): the verifier keeps passing
#   banks       on a swtpm with only the SHA-1 bank active (older firmware), then one
#               with only SHA-384: tpm_hash_alg = that bank, the verifier's tenant
#               accepting it: PASS, and the verifier records that hash_alg
#   ek_algs     the TCG high-range EKs of recent TPMs, tpm_encryption_alg = ecc384 (with
#               the P-384 EK certificate swtpm_setup wrote, checked by the tenant), rsa3072
#               and ecc521 (no certificate): the registrar holds an EK of that type, PASS,
#               and the verifier records that enc_alg
# Needs: scripts/testbed.sh up (quote interval 2 s; agents are reset per scenario), a keylet build.
set -euo pipefail
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
IMA_LOG_PY=$E2E_ROOT/tests/e2e/ima_log.py

field() { jq -r ".$1" <<<"$2"; }

scenario_basic() {
  local uuid r0 r1 c0 c1 t0 t1 period
  fresh_agent att
  start_registered att; uuid=$REG_UUID
  tenant_add "$uuid"
  r0=$(wait_attested "$uuid" 1 60)
  c0=$(field attestation_count "$r0") t0=$(field last_successful_attestation "$r0")
  say "first attestation done (count $c0); waiting for 10 more"
  r1=$(wait_attested "$uuid" $((c0 + 10)) 60)
  c1=$(field attestation_count "$r1") t1=$(field last_successful_attestation "$r1")
  assert_eq "$(field attestation_status "$r1")" PASS "attestation_status"
  assert_eq "$(field operational_state "$r1")" 3 "operational_state (3 = Get Quote)"
  assert_ge "$((c1 - c0))" 10 "attestations in the window"
  ((t1 > t0)) || fail "last_successful_attestation did not advance ($t0 -> $t1)"
  period=$(awk -v dt=$((t1 - t0)) -v dn=$((c1 - c0)) 'BEGIN { printf "%.2f", dt / dn }')
  say "$((c1 - c0)) attestations in $((t1 - t0)) s: one per $period s"
  awk -v p="$period" 'BEGIN { exit !(p >= 1.5 && p <= 3.0) }' ||
    fail "attestation period $period s is not the ~2 s quote interval"
  assert_eq "$(field hash_alg "$r1")" sha256 "verifier hash_alg"
  assert_eq "$(field enc_alg "$r1")" rsa2048 "verifier enc_alg (Keylime normalises rsa to rsa2048)"
  assert_eq "$(field sign_alg "$r1")" rsassa "verifier sign_alg"
  verifier_delete "$uuid"
  agent_stop att
}

scenario_ecc() {
  local uuid r
  grep -q "'ecdsa'" "$TB_STATE/conf/tenant.conf" ||
    fail "the testbed tenant does not accept ecdsa (KEYLET_TB_ACCEPT_SIGNING_ALGS)"
  fresh_agent ecc tpm_encryption_alg=ecc tpm_signing_alg=ecdsa
  start_registered ecc; uuid=$REG_UUID
  tenant_add "$uuid"
  r=$(wait_attested "$uuid" 5 60)
  assert_eq "$(field attestation_status "$r")" PASS "attestation_status (ECC)"
  assert_eq "$(field enc_alg "$r")" ecc256 "verifier enc_alg (Keylime normalises ecc to ecc256)"
  assert_eq "$(field sign_alg "$r")" ecdsa "verifier sign_alg"
  verifier_delete "$uuid"
  agent_stop ecc
}

# pcr_policy_json PCR7: {"0":[v0],...,"7":[PCR7]} with swtpm's values for 0-6.
pcr_policy_json() {
  local i v args=()
  for i in 0 1 2 3 4 5 6; do v=$(pcr_value "$i"); args+=(--arg "p$i" "$v"); done
  jq -cn "${args[@]}" --arg p7 "$1" \
    '{"0":[$p0],"1":[$p1],"2":[$p2],"3":[$p3],"4":[$p4],"5":[$p5],"6":[$p6],"7":[$p7]}'
}

scenario_pcr_policy() {
  local uuid good bad p7 r
  fresh_agent pcr
  # keylet is stopped: the TPM is ours. Give PCR 7 a non-trivial value, as firmware would.
  pcr_extend 7 "$(printf 'keylet e2e secure boot state' | sha256sum | cut -d' ' -f1)"
  p7=$(pcr_value 7)
  [[ $p7 =~ ^[0-9a-f]{64}$ && $p7 != "$(printf '%064d' 0)" ]] || fail "could not read PCR 7 ($p7)"
  good=$(pcr_policy_json "$p7")
  bad=$(pcr_policy_json "$(printf 'not the real value' | sha256sum | cut -d' ' -f1)")
  start_registered pcr; uuid=$REG_UUID
  tenant_add "$uuid" "$AGENT_PORT" --tpm_policy "$good"
  r=$(wait_attested "$uuid" 3 60)
  assert_eq "$(field attestation_status "$r")" PASS "attestation_status with the real PCR 0-7 values"
  [[ $(field tpm_policy "$r") == *'"7"'* ]] || fail "verifier tpm_policy does not hold PCR 7: $(field tpm_policy "$r")"
  verifier_delete "$uuid"
  say "now a policy with a wrong PCR 7"
  tenant_add "$uuid" "$AGENT_PORT" --tpm_policy "$bad"
  r=$(wait_failed "$uuid" 60)
  say "verifier: $(jq -c '{operational_state, attestation_status, last_event_id}' <<<"$r")"
  [[ $(field last_event_id "$r") == *invalid_pcr_7* ]] ||
    fail "failure is not about PCR 7: last_event_id=$(field last_event_id "$r")"
  verifier_delete "$uuid"
  agent_stop pcr
}

scenario_ima() {
  local uuid log pol h pcrs=() i replay pcr10 r
  fresh_agent ima
  log=$(agent_dir ima)/ascii_runtime_measurements pol=$(agent_dir ima)/runtime-policy.json
  tb tpm-reboot >/dev/null 2>&1 # PCR 10 back to zero, like a fresh boot (keylet is stopped)
  for i in 0 1 2 3 4 5 6 7 8 9; do pcrs+=("$(pcr_value "$i")"); done
  : >"$log"
  for h in $(python3 "$IMA_LOG_PY" boot-aggregate "$log" "${pcrs[@]}"
             python3 "$IMA_LOG_PY" append "$log" /usr/bin/keylet-e2e-tool="tool v1" \
               /etc/keylet-e2e.conf="setting = 1" /usr/lib/keylet-e2e.so="library v1"); do
    pcr_extend 10 "$h"
  done
  replay=$(python3 "$IMA_LOG_PY" replay "$log") pcr10=$(pcr_value 10)
  assert_eq "$replay" "$pcr10" "IMA log replay vs swtpm PCR 10 (test setup)"
  tb policy create runtime -m "$log" -o "$pol" >/dev/null 2>&1 || fail "keylime-policy create runtime failed"
  KEYLIME_LOGGING_CONFIG=$TB_STATE/conf/logging.conf "$VENV_PY" "$IMA_LOG_PY" keylime-check "$log" "$pol" "$pcr10" \
    >/dev/null 2>&1 || fail "Keylime's own replay rejects the test IMA log/policy (test setup)"
  agent_set ima ima_ml_path "$log"
  start_registered ima; uuid=$REG_UUID
  tenant_add "$uuid" "$AGENT_PORT" --runtime-policy "$pol"
  r=$(wait_attested "$uuid" 5 60)
  assert_eq "$(field attestation_status "$r")" PASS "attestation_status with the IMA runtime policy"
  assert_eq "$(field has_runtime_policy "$r")" 1 "verifier has_runtime_policy"
  say "IMA log accepted; appending a disallowed entry while keylet is stopped"
  agent_stop ima
  h=$(python3 "$IMA_LOG_PY" append "$log" /tmp/keylet-e2e-not-allowed="evil")
  pcr_extend 10 "$h"
  agent_start ima
  r=$(wait_failed "$uuid" 60)
  say "verifier: $(jq -c '{operational_state, attestation_status, last_event_id}' <<<"$r")"
  [[ $(field last_event_id "$r") == *ima* ]] ||
    fail "failure is not about IMA: last_event_id=$(field last_event_id "$r")"
  verifier_delete "$uuid"
  agent_stop ima
}

# only_bank TCTI BANK: the TPM at TCTI has PCRs allocated in BANK and in no other bank.
only_bank() {
  local caps
  caps=$(TPM2TOOLS_TCTI=$1 tpm2_getcap pcrs) || { fail "tpm2_getcap pcrs failed on $1"; return 1; }
  python3 - "$2" "$caps" <<'PY' || fail "swtpm banks are not only $2: $caps"
import sys
bank, caps = sys.argv[1], sys.argv[2]
# "selected-pcrs:\n  - sha1: [ 0, 1, ... ]\n  - sha256: [ ]"
active = {l.split(":")[0].strip(" -") for l in caps.splitlines() if "[" in l and l.split("[")[1].strip(" ]")}
sys.exit(0 if active == {bank} else 1)
PY
}

scenario_banks() {
  local bank port n=0 uuid r conf=$E2E_TMP/tenant-banks.conf
  # Keylime's default accept_tpm_hash_algs leaves SHA-1 out; a fleet with SHA-1-only
  # firmware adds it in the tenant's configuration, as here.
  sed "s/^accept_tpm_hash_algs = .*/accept_tpm_hash_algs = ['sha512', 'sha384', 'sha256', 'sha1']/" \
    "$TB_STATE/conf/tenant.conf" >"$conf"
  grep -q "^accept_tpm_hash_algs = .*'sha1'" "$conf" || fail "could not accept sha1 in the tenant's copy"
  for bank in sha1 sha384; do
    port=$((SWTPM_PORT + 30 + 2 * n)) n=$((n + 1)) # control port: port + 1
    E2E_EXTRA_TPMS+=" e2e-$bank"
    KEYLET_TB_PCR_BANKS=$bank KEYLET_TB_FORCE=1 tb tpm2-start "e2e-$bank" "$port" >/dev/null
    only_bank "swtpm:host=127.0.0.1,port=$port" "$bank"
    fresh_agent "bank-$bank" tpm_hash_alg="$bank" tpm_device="tcp://127.0.0.1:$port"
    start_registered "bank-$bank"; uuid=$REG_UUID
    KEYLET_TB_TENANT_CONFIG=$conf tenant_add "$uuid"
    r=$(wait_attested "$uuid" 3 60)
    assert_eq "$(field attestation_status "$r")" PASS "attestation_status on the $bank bank"
    assert_eq "$(field hash_alg "$r")" "$bank" "verifier hash_alg"
    verifier_delete "$uuid"
    agent_stop "bank-$bank"
    tb tpm2-stop "e2e-$bank" >/dev/null
  done
}

# ek_type TPM2B_PUBLIC_BASE64: "<type> <nameAlg> <key bits or curve>" of a public area.
ek_type() {
  python3 -c '
import base64, struct, sys
b = base64.b64decode(sys.argv[1])[2:]
typ, name_alg = struct.unpack(">HH", b[:4])
policy_len = struct.unpack(">H", b[8:10])[0]
p = b[10 + policy_len:]
# symmetric (alg, bits, mode), scheme NULL, then keyBits (RSA) or curveID (ECC)
size = struct.unpack(">H", p[8:10])[0]
print("%#06x %#06x %#06x" % (typ, name_alg, size))' "$1"
}

scenario_ek_algs() {
  local alg sign want uuid reg r conf=$E2E_TMP/tenant-ek.conf tconf
  sed "s/^accept_tpm_encryption_algs = .*/accept_tpm_encryption_algs = ['ecc384', 'rsa3072', 'ecc521']/" \
    "$TB_STATE/conf/tenant.conf" >"$conf"
  sed 's/^require_ek_cert = .*/require_ek_cert = False/' "$conf" >"$conf.no-cert"
  grep -q "^accept_tpm_encryption_algs = .*'ecc521'" "$conf" || fail "could not accept the EK types in the tenant's copy"
  grep -q "^require_ek_cert = True" "$conf" || fail "the testbed tenant does not check EK certificates"
  # type (RSA 0x0001, ECC 0x0023), nameAlg (SHA-384 0x000c, SHA-512 0x000d), key bits or curve
  for want in "ecc384 0x0023 0x000c 0x0004" "rsa3072 0x0001 0x000c 0x0c00" "ecc521 0x0023 0x000d 0x0005"; do
    alg=${want%% *} tconf=$conf.no-cert
    [[ $alg == ecc384 ]] && tconf=$conf # swtpm_setup certified the P-384 EK at 0x01c00016
    sign=ecdsa; [[ $alg == rsa* ]] && sign=rsassa
    fresh_agent "ek-$alg" tpm_encryption_alg="$alg" tpm_signing_alg="$sign"
    start_registered "ek-$alg"; uuid=$REG_UUID
    reg=$(registrar_get "$uuid")
    assert_eq "$alg $(ek_type "$(jq -r .ek_tpm <<<"$reg")")" "$want" "the registered EK (type, nameAlg, size)"
    if [[ $alg == ecc384 ]]; then
      assert_nonempty "$(jq -r .ekcert <<<"$reg")" "the P-384 EK certificate at the registrar"
    fi
    KEYLET_TB_TENANT_CONFIG=$tconf tenant_add "$uuid"
    r=$(wait_attested "$uuid" 3 90)
    assert_eq "$(field attestation_status "$r")" PASS "attestation_status with the $alg EK"
    assert_eq "$(field enc_alg "$r")" "$alg" "verifier enc_alg"
    verifier_delete "$uuid"
    agent_stop "ek-$alg"
  done
}

scenario_restart() {
  local uuid r0 r1 c0 t_restart
  fresh_agent rs
  start_registered rs; uuid=$REG_UUID
  tenant_add "$uuid"
  r0=$(wait_attested "$uuid" 3 60)
  c0=$(field attestation_count "$r0")
  agent_stop rs
  t_restart=$(date +%s)
  agent_start rs
  r1=$(wait_attested "$uuid" $((c0 + 5)) 60)
  assert_eq "$(field attestation_status "$r1")" PASS "attestation_status after the restart"
  (($(field last_successful_attestation "$r1") > t_restart)) ||
    fail "no successful attestation after the restart (last $(field last_successful_attestation "$r1"), restart $t_restart)"
  agent_alive rs || fail "keylet exited after the restart"
  verifier_delete "$uuid"
  agent_stop rs
}

e2e_init attestation
run_scenarios basic ecc pcr_policy ima restart banks ek_algs -- "$@"
