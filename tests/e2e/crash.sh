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
# Needs: scripts/testbed.sh up, a keylet build, tpm2-tools, python3.
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

restore_services() {
  local rc=$?
  tb start >/dev/null 2>&1 || say "could not restart testbed services"
  [[ $(in_lockout 2>/dev/null) == 1 ]] && { clear_da_lockout || true; } # a scenario failed in lockout
  return "$rc"
}

tb start >/dev/null 2>&1 || true
e2e_init crash
trap 'restore_services; e2e_cleanup' EXIT
ALL=(da_lockout old_ak)
run_scenarios "${ALL[@]}" -- "$@"
