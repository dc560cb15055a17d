#!/usr/bin/env bash
# tests/e2e/crash.sh - keylet after power loss and SIGKILL, against swtpm and the real
# Keylime 7.14.3 registrar/verifier of the testbed.
#
# Usage: tests/e2e/crash.sh [SCENARIO...]   (default: all, in this order)
#   da_lockout   swtpm driven into dictionary-attack lockout (wrong passwords on a key of the
#                test's own): a fresh keylet (AK with noDA) registers, the tenant adds it with
#                the EK certificate check and the verifier passes; doctor: tpm.lockout WARN,
#                tpm.ak_da OK. The lockout is cleared afterwards (TPM rebooted orderly).
#   old_ak       a state whose AK lacks noDA (made by an older keylet; here by tpm2_createak)
#                keeps working (registers, verifier passes) and doctor WARNs tpm.ak_da with the
#                fix; in lockout that AK is refused (keylet cannot register, doctor FAILs
#                tpm.lockout): the case the noDA AK avoids.
#   first_start  SIGKILL at CRASH_FIRST_START_POINTS (26) points of a first start, each on a
#                fresh state: 0-150 ms after keylet logs each step (EK, AK creation, state write
#                and payload key, mTLS key and certificate, registration), then a restart
#   rotate_cert  SIGKILL at CRASH_ROTATE_POINTS (18) times spread over `keylet rotate-cert`,
#                then keylet starts
#   payload      SIGKILL at CRASH_PAYLOAD_POINTS (6) times spread over a measured delivery of
#                the tenant's `-f` zip after keylet derived K (decryption, staging, unpacking,
#                swap), then a restart
#   After every kill and restart: the same agent id (once one was persisted), the registrar's
#   AK is the one in keylet's state, the registrar's mTLS certificate is the certificate file
#   and matches the key, no temporary or pending file is left, key and state files are 0600,
#   a payload directory is complete or absent, and no transient object is left in swtpm once
#   the restarted keylet stopped. Each scenario ends with the real verifier passing.
# Needs: scripts/testbed.sh up, a keylet build, tpm2-tools, python3, openssl.
set -euo pipefail
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

tcti() { echo "swtpm:host=127.0.0.1,port=$SWTPM_PORT"; }
flush_transients() { TPM2TOOLS_TCTI=$(tcti) tpm2_flushcontext -t >/dev/null 2>&1 || true; }
in_lockout() { tb tpm2 getcap properties-variable | awk '/inLockout:/ { print $2 }'; }

# drive_lockout: wrong passwords on a DA-protected primary key of the test's own until
# swtpm is in lockout (max_tries failures). Only while no keylet holds swtpm.
drive_lockout() {
  local d=$E2E_TMP/da i max
  mkdir -p "$d"
  max=$(($(tb tpm2 getcap properties-variable | awk '/TPM2_PT_MAX_AUTH_FAIL/ { print $2 }')))
  tb tpm2 createprimary -C o -G ecc -p right -c "$d/primary.ctx" >/dev/null 2>&1 ||
    { fail "tpm2_createprimary failed"; return 1; }
  for ((i = 0; i < max + 1; i++)); do
    flush_transients # no resource manager: each tool run loads the context again
    tb tpm2 create -C "$d/primary.ctx" -P wrong -G ecc -u "$d/k.pub" -r "$d/k.priv" >/dev/null 2>&1 &&
      { fail "a wrong password was accepted"; return 1; }
  done
  flush_transients
  assert_eq "$(in_lockout)" 1 "swtpm inLockout after $((max + 1)) wrong passwords"
  say "swtpm in dictionary-attack lockout (counter $(da_counter), max $max)"
}

# restore_tpm: clear the lockout the test caused and reboot swtpm orderly, so that later
# suites start from a clean counter.
restore_tpm() {
  clear_da_lockout
  tb tpm-reboot >/dev/null 2>&1 || fail "swtpm did not come back after an orderly reboot"
  assert_eq "$(in_lockout)" 0 "inLockout after clearing"
}

scenario_da_lockout() {
  local uuid r
  fresh_agent lo
  drive_lockout
  start_registered lo; uuid=$REG_UUID
  tenant_add "$uuid" # require_ek_cert = True: the EK certificate was read in lockout
  r=$(wait_attested "$uuid" 2 60)
  assert_eq "$(jq -r .attestation_status <<<"$r")" PASS "attestation in lockout"
  verifier_delete "$uuid"
  agent_stop lo
  assert_eq "$(in_lockout)" 1 "inLockout after keylet's work (keylet did not clear it)"
  doctor lo
  expect tpm.lockout warn
  expect tpm.ak_da ok
  [[ $(detail_of tpm.lockout) == *"keylet's AK (noDA) and EK are exempt"* ]] || fail "tpm.lockout: $(detail_of tpm.lockout)"
  [[ $(detail_of tpm.lockout) == *"usable again in about"* ]] || fail "tpm.lockout names no recovery time"
  assert_eq "$DOC_RC" 0 "doctor's exit code in lockout with a noDA AK (failures: $(fails))"
  restore_tpm
}

# old_state NAME: replace the AK in NAME's state by one without noDA, made by tpm2_createak
# under the same EK (attributes 0x00050072, keylet's AK before noDA).
old_state() {
  local d; d=$(agent_dir "$1")
  flush_transients
  TPM2TOOLS_TCTI=$(tcti) tpm2_createek -c "$d/ek.ctx" -G rsa -u "$d/ek.pub" >/dev/null
  TPM2TOOLS_TCTI=$(tcti) tpm2_createak -C "$d/ek.ctx" -c "$d/ak.ctx" -G rsa -g sha256 -s rsassa \
    -u "$d/ak.pub" -r "$d/ak.priv" >/dev/null
  flush_transients
  python3 - "$d/state/keylet-agent-state.bin" "$d/ak.pub" "$d/ak.priv" <<'PY'
import os, sys
path, pub, priv = sys.argv[1:]
b = open(path, 'rb').read()
def varint(b, i):
    n = s = 0
    while True:
        x = b[i]; i += 1; n |= (x & 0x7f) << s; s += 7
        if x < 0x80: return n, i
def enc(data):
    out, n = bytearray(), len(data)
    while True:
        if n < 0x80: out.append(n); return bytes(out) + data
        out.append((n & 0x7f) | 0x80); n >>= 7
# format u8, then agent_id, id_source, ek_public, key_alg, hash_alg, ak_public, ak_private
i, fields = 1, []
for _ in range(7):
    n, i = varint(b, i); fields.append(b[i:i + n]); i += n
assert i == len(b), "unexpected state layout"
fields[5], fields[6] = open(pub, 'rb').read(), open(priv, 'rb').read()
attrs = int.from_bytes(fields[5][6:10], 'big')
assert attrs & 0x400 == 0, hex(attrs)
tmp = path + '.new'
fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
os.write(fd, b[:1] + b''.join(enc(f) for f in fields)); os.close(fd)
os.rename(tmp, path)
PY
}

scenario_old_ak() {
  local uuid r aik
  fresh_agent old
  start_registered old; uuid=$REG_UUID
  agent_stop old
  old_state old
  tb reset >/dev/null 2>&1 # the registrar refuses a known id with another AK
  aik=$(jq -r .aik_tpm <<<"$(agent_identity old)")
  start_registered old
  assert_eq "$REG_UUID" "$uuid" "agent id with the old AK"
  assert_eq "$(registrar_get "$uuid" | jq -r .aik_tpm)" "$aik" "the registrar holds the old AK"
  tenant_add "$uuid"
  r=$(wait_attested "$uuid" 2 60)
  assert_eq "$(jq -r .attestation_status <<<"$r")" PASS "attestation with the old AK"
  verifier_delete "$uuid"
  agent_stop old
  doctor old
  expect tpm.ak_da warn
  expect tpm.lockout ok
  [[ $(jq -r '.checks[] | select(.name == "tpm.ak_da") | .fix' <<<"$DOC") == *"regdelete -u $uuid"* ]] ||
    fail "tpm.ak_da's fix does not name the registrar delete"
  # In lockout the TPM refuses this AK: what the noDA AK avoids.
  drive_lockout
  doctor old
  expect tpm.lockout fail
  agent_set old exponential_backoff_max_retries 0
  agent_start old
  wait_gone "${KEYLET_PID[old]}" 30 || fail "keylet with a locked-out AK did not give up"
  unset "KEYLET_PID[old]"
  grep -q "LOCKOUT\|lockout" "$(agent_dir old)/keylet.log" || { agent_log_tail old; fail "keylet did not report the lockout"; }
  flush_transients
  restore_tpm
}

# ---------------------------------------------------------------------------- SIGKILL points
FS_POINTS=${CRASH_FIRST_START_POINTS:-26}
ROT_POINTS=${CRASH_ROTATE_POINTS:-18}
PAY_POINTS=${CRASH_PAYLOAD_POINTS:-6}
declare -A PHASES=()

now_ms() { echo $(($(date +%s%N) / 1000000)); }
sleep_ms() { sleep "$(printf '%d.%03d' $(($1 / 1000)) $(($1 % 1000)))"; }
# Kills at precise moments poll keylet's log finely: wait_log_count's STEP argument.
FINE=0.001
kill_keylet() { # NAME: SIGKILL, reaped
  local pid=${KEYLET_PID[$1]}
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  unset "KEYLET_PID[$1]"
}
# phase NAME FROM: what the killed keylet logged last after line FROM (for the spread report).
phase() {
  local l; l=$(tail -n +"$(($2 + 1))" "$(agent_dir "$1")/keylet.log" | grep -oE 'TPM: |creating the AK|generating the payload key|generating the mTLS|registering agent|is registered and active|serving the Keylime|payload key K derived|decrypted payload|payload delivered' \
    | tail -n 1 || true)
  l=${l%: }
  PHASES[${l:-nothing}]=$((${PHASES[${l:-nothing}]:-0} + 1))
}
phases() { local k; for k in "${!PHASES[@]}"; do printf '%s: %s; ' "$k" "${PHASES[$k]}"; done; PHASES=(); }

# files_ok NAME [restarted]: key and state files 0600 (certificates 0600/0644), payload files
# 0600/0700; after a restart also no temporary, pending or staging file anywhere.
files_ok() {
  local d f mode bad='' left
  d=$(agent_dir "$1")/state
  while IFS= read -r f; do
    mode=$(stat -c %a "$f")
    case $f in
      *.crt | *.crt.old) [[ $mode == 644 || $mode == 600 ]] || bad+=" $f:$mode" ;;
      *) [[ $mode == 600 || ($mode == 700 && $f == */secure/*) ]] || bad+=" $f:$mode" ;;
    esac
  done < <(find "$d" -type f)
  [[ -z $bad ]] || { fail "files with a wrong mode:$bad"; return 1; }
  [[ ${2:-} == restarted ]] || return 0
  left=$(find "$d" \( -name '.*.tmp-*' -o -name '*.pending' \) -print)
  [[ -z $left ]] || { fail "left behind after the restart: $left"; return 1; }
}

state_id() { # NAME -> the persisted agent id, or nothing
  local n=$1
  [[ -s $(agent_dir "$n")/state/keylet-agent-state.bin ]] || return 0
  (unset "KEYLET_PID[$n]"; agent_identity "$n") | jq -r .uuid
}

# restart_consistent NAME [ID]: keylet starts, registers, and agrees with the registrar.
restart_consistent() {
  local n=$1 want=${2:-} before id reg d
  d=$(agent_dir "$n")/state
  before=$(log_count "$n" "is registered and active")
  agent_start "$n"
  wait_log_count "$n" "is registered and active" $((before + 1)) 30
  id=$(agent_identity "$n")
  CUR_UUID=$(jq -r .uuid <<<"$id")
  [[ -z $want ]] || assert_eq "$CUR_UUID" "$want" "agent id after the restart"
  reg=$(registrar_get "$CUR_UUID")
  assert_eq "$(jq -r .aik_tpm <<<"$reg")" "$(jq -r .aik_tpm <<<"$id")" "the registrar's AK vs keylet's state"
  assert_eq "$(jq -r .mtls_cert <<<"$reg")" "$(cat "$d/server-cert.crt")" "the registrar's mTLS certificate vs server-cert.crt"
  assert_eq "$(openssl x509 -noout -pubkey -in "$d/server-cert.crt")" \
    "$(openssl pkey -pubout -in "$d/server-private.pem")" "server-private.pem vs server-cert.crt"
  files_ok "$n" restarted
}

stop_clean() { # NAME: SIGTERM; no transient object left
  agent_stop "$1"
  assert_eq "$(transient_handles)" 0 "transient objects in swtpm after the restarted keylet stopped"
}

attest_again() { # UUID [tenant args]: the real verifier passes
  local u=$1 r; shift
  tenant_add "$u" "$AGENT_PORT" "$@"
  r=$(wait_attested "$u" 2 60)
  assert_eq "$(jq -r .attestation_status <<<"$r")" PASS "attestation after the kills"
  verifier_delete "$u"
}

# The first start's steps as keylet logs them, in order: EK, AK creation (in the TPM), the
# state write and the payload key (software RSA), the mTLS key and certificate, registration.
FS_ANCHORS=("TPM: " "creating the AK" "generating the payload key" "generating the mTLS" "registering agent")
FS_OFFSETS=(0 3 10 25 60 150)

scenario_first_start() {
  local i anchor d id from t0s
  tb reset >/dev/null 2>&1
  say "$FS_POINTS SIGKILLs at 0-150 ms after each step of a first start, each on a fresh state"
  t0s=$SECONDS
  for ((i = 0; i < FS_POINTS; i++)); do
    agent_new fs; agent_set fs uuid generate
    anchor=${FS_ANCHORS[i % ${#FS_ANCHORS[@]}]}
    d=${FS_OFFSETS[(i / ${#FS_ANCHORS[@]}) % ${#FS_OFFSETS[@]}]}
    from=$(log_lines fs); agent_start fs
    wait_log_count fs "$anchor" 1 30 0 "$FINE"
    sleep_ms "$d"; kill_keylet fs
    phase fs "$from"
    files_ok fs
    id=$(state_id fs)
    restart_consistent fs "$id"
    stop_clean fs
  done
  say "kill points by the last step logged: $(phases)(in $((SECONDS - t0s)) s)"
  agent_start fs; wait_log_count fs "serving the Keylime" 1 30
  attest_again "$CUR_UUID"
  stop_clean fs
}

scenario_rotate_cert() {
  local t0 total i d id pid fp t0s
  fresh_agent rc
  start_registered rc; id=$REG_UUID
  stop_clean rc
  agent_render rc
  # How long rotate-cert takes until it has replaced the certificate.
  fp=$(stat -c %Y.%i "$(agent_dir rc)/state/server-cert.crt")
  t0=$(now_ms)
  (keylet_env rc "$KEYLET_BIN" rotate-cert >>"$(agent_dir rc)/rotate.log" 2>&1) &
  pid=$!
  while [[ $(stat -c %Y.%i "$(agent_dir rc)/state/server-cert.crt" 2>/dev/null) == "$fp" ]] && kill -0 "$pid" 2>/dev/null; do
    sleep 0.005
  done
  total=$(($(now_ms) - t0))
  wait "$pid" || { tail -n 5 "$(agent_dir rc)/rotate.log" >&2; fail "keylet rotate-cert failed"; }
  say "rotate-cert replaces the certificate after $total ms; $ROT_POINTS SIGKILLs spread over 1.2 times that and around it"
  t0s=$SECONDS
  for ((i = 0; i < ROT_POINTS; i++)); do
    fp=$(sha256sum <"$(agent_dir rc)/state/server-cert.crt")
    # Half spread over the whole run, half 4 ms apart around the installation.
    if ((i < ROT_POINTS / 2)); then d=$((total * 12 * (i + 1) / (5 * ROT_POINTS)))
    else d=$((total - 20 + 4 * (i - ROT_POINTS / 2))); ((d > 0)) || d=1; fi
    (keylet_env rc "$KEYLET_BIN" rotate-cert >>"$(agent_dir rc)/rotate.log" 2>&1) &
    pid=$!
    sleep_ms "$d"; pkill -KILL -P "$pid" 2>/dev/null || true; kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    [[ $fp == "$(sha256sum <"$(agent_dir rc)/state/server-cert.crt")" ]] && PHASES[same certificate]=$((${PHASES[same certificate]:-0} + 1)) ||
      PHASES[new certificate]=$((${PHASES[new certificate]:-0} + 1))
    [[ -e $(agent_dir rc)/state/server-private.pem.pending ]] && PHASES[pending]=$((${PHASES[pending]:-0} + 1))
    files_ok rc
    restart_consistent rc "$id"
    stop_clean rc
  done
  say "after the kills: $(phases)(in $((SECONDS - t0s)) s)"
  agent_start rc; wait_log_count rc "serving the Keylime" 1 30
  attest_again "$id"
  stop_clean rc
}

# A zip of many stored files: its decryption, staging and unpacking take a while.
make_zip() {
  python3 - "$1" <<'PY'
import os, sys, zipfile
with zipfile.ZipFile(sys.argv[1], 'w', zipfile.ZIP_STORED) as z:
    for i in range(80):
        z.writestr('data/f%03d.bin' % i, os.urandom(8192))
PY
}

# payload_ok NAME ZIP: unzipped/ is absent or a complete delivery of ZIP.
payload_ok() {
  local u; u=$(agent_dir "$1")/state/secure/unzipped
  [[ -e $u ]] || return 0
  cmp -s "$2" "$u/decrypted_payload" || { fail "unzipped/decrypted_payload is not the whole payload"; return 1; }
  assert_eq "$(stat -c %s "$u/derived_tci_key")" 32 "K file size"
  assert_eq "$(find "$u/data" -type f | wc -l)" 80 "files unpacked"
}

scenario_payload() {
  local uuid zip t0 total i d k tenant from sec
  fresh_agent pl secure_size=4m
  sec=$(agent_dir pl)/state/secure
  zip=$E2E_TMP/payload.zip; make_zip "$zip"
  start_registered pl; uuid=$REG_UUID
  # A clean delivery: from "K derived" (decryption, staging, unpacking, swap) to "delivered".
  k=$(log_count pl "payload key K derived")
  (tenant_add "$uuid" "$AGENT_PORT" -f "$zip") &
  tenant=$!
  wait_log_count pl "payload key K derived" $((k + 1)) 60 0 "$FINE"
  t0=$(now_ms)
  wait_log_count pl "payload delivered" 1 60 0 "$FINE"
  total=$((($(now_ms) - t0) * 13 / 10 + 10))
  wait "$tenant" || fail "the tenant's add failed"
  payload_ok pl "$zip"
  verifier_delete "$uuid"
  say "a delivery takes $((total * 10 / 13 - 10)) ms after keylet logs K; $PAY_POINTS SIGKILLs spread over 1.3 times that"
  for ((i = 0; i < PAY_POINTS; i++)); do
    k=$(log_count pl "payload key K derived"); from=$(log_lines pl)
    (tb add "$uuid" 127.0.0.1 "$AGENT_PORT" -f "$zip" >>"$E2E_TMP/tenant-crash.log" 2>&1 || true) &
    tenant=$!
    wait_log_count pl "payload key K derived" $((k + 1)) 60 0 "$FINE"
    d=$((total * (i + 1) / PAY_POINTS))
    sleep_ms "$d"
    if compgen -G "$sec/.unzipped.tmp-*" >/dev/null; then PHASES[staging directory]=$((${PHASES[staging directory]:-0} + 1)); fi
    kill_keylet pl
    phase pl "$from"
    files_ok pl
    payload_ok pl "$zip"
    restart_consistent pl "$uuid"
    payload_ok pl "$zip"
    wait "$tenant" || true
    verifier_delete "$uuid"
  done
  say "kill points by the last step logged: $(phases)"
  rm -rf "$sec/unzipped"
  k=$(log_count pl "payload delivered")
  attest_again "$uuid" -f "$zip"
  wait_log_count pl "payload delivered" $((k + 1)) 30
  payload_ok pl "$zip"
  [[ -e $sec/unzipped ]] || fail "no payload after the last add"
  stop_clean pl
}

restore_services() {
  local rc=$?
  tb start >/dev/null 2>&1 || say "could not restart testbed services"
  [[ $(in_lockout 2>/dev/null) == 1 ]] && { clear_da_lockout || true; } # a scenario failed in lockout
  return "$rc"
}

tb start >/dev/null 2>&1 || true
e2e_init crash
trap 'restore_services; e2e_cleanup' EXIT
ALL=(da_lockout old_ak first_start rotate_cert payload)
run_scenarios "${ALL[@]}" -- "$@"
