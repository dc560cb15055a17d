#!/usr/bin/env bash
# tests/e2e/tls.sh - certificates without downtime and the identity listener for SPIRE,
# against the real Keylime 7.14.3 registrar, verifier and tenant.
#
# Usage: tests/e2e/tls.sh [SCENARIO...]   (default: all, in this order)
#   spire          identity_listen + identity_socket: the SPIRE plugin's exact requests over
#                  plain HTTP; the identity quote passes Keylime's check_quote against the AK
#                  the registrar holds, and the verifier's /verify/identity; the main port
#                  still refuses plain HTTP; other endpoints 404
#   loopback_only  a non-loopback identity_listen is refused at start (exit 2, option named)
#   ca_reload      trusted_client_ca rolled over while the verifier polls (old+new CA bundle):
#                  attestation keeps passing; a broken file and SIGHUP are logged and the old
#                  config stays; a bundle without the verifier's CA locks its client out
#   rotate         keylet rotate-cert: same id/EK/AK re-registered with the new mtls_cert
#                  (registrar active, regcount +1), old pair kept, key 0600; after the
#                  printed steps (start keylet, tenant update) the verifier passes again
# Ports: the agent on KEYLET_TB_AGENT_PORT, the identity listener on that port + 1.
set -euo pipefail
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
ID_PORT=$((AGENT_PORT + 1))

count() { jq -r .attestation_count <<<"$1"; }

# log_mark NAME: later wait_log_marked calls look only at lines logged from now on.
log_mark() { LOG_MARK=$(log_lines "$1"); }
# wait_log_marked NAME TEXT [SECS]: keylet NAME logs a line with TEXT after the mark,
# which then moves to the log's end (each reload is awaited in its own lines).
wait_log_marked() { wait_log_count "$1" "$2" 1 "${3:-}" "${LOG_MARK:-0}" && log_mark "$1"; }

# check_identity_quote NONCE RESPONSE AIK: Keylime's own Tpm.check_quote (PCR 16 =
# H(pubkey) included) accepts the response's quote and rejects it for another nonce.
check_identity_quote() {
  "$VENV_PY" - "$@" <<'PY'
import json, logging, sys
from keylime.agentstates import AgentAttestState
from keylime.common.algorithms import Hash
from keylime.mba import mba
from keylime.tpm.tpm_main import Tpm
logging.disable(logging.CRITICAL)
mba.load_imports(skip_custom_policies=True)
nonce, response, aik = sys.argv[1:4]
results = json.loads(response)["results"]
quote, pubkey = results["quote"], results["pubkey"]
def events(n):
    f = Tpm().check_quote(AgentAttestState("spire"), n, pubkey, quote, aik, {},
                          ima_measurement_list="", hash_alg=Hash("sha256"))
    return [e.event_id for e in f.events]
good, bad = events(nonce), events(nonce[::-1])
print(f"check_quote: right nonce -> {good or 'accepted'}; other nonce -> {bad or 'accepted'}")
sys.exit(0 if not good and bad else 1)
PY
}

scenario_spire() {
  local d uuid info nonce q quote aik r c0 v code
  fresh_agent spire identity_listen="127.0.0.1:$ID_PORT"
  d=$(agent_dir spire)
  agent_set spire identity_socket "$d/identity.sock"
  start_registered spire; uuid=$REG_UUID
  tenant_add "$uuid"
  c0=$(count "$(wait_attested "$uuid" 1 60)")

  # What the plugin does: GET agent/info, then quotes/identity with the server's nonce.
  info=$(curl -sS --max-time 10 "http://127.0.0.1:$ID_PORT/v2.2/agent/info")
  assert_eq "$(jq -r .results.agent_uuid <<<"$info")" "$uuid" "agent/info agent_uuid"
  assert_eq "$(jq -r .results.tpm_hash_alg <<<"$info")" sha256 "agent/info tpm_hash_alg"
  nonce=$(head -c 20 /dev/urandom | base32 | tr -d '=' | cut -c1-32) # as the SPIRE server makes it
  q=$(curl -sS --max-time 30 "http://127.0.0.1:$ID_PORT/v2.2/quotes/identity?nonce=$nonce")
  quote=$(jq -r .results.quote <<<"$q")
  assert_nonempty "$quote" "identity quote"
  aik=$(registrar_get "$uuid" | jq -r .aik_tpm)
  assert_nonempty "$aik" "registrar aik_tpm"
  check_identity_quote "$nonce" "$q" "$aik" >&2 ||
    fail "Keylime's check_quote did not accept the identity quote under the registrar's AK"
  # The SPIRE server's check: the verifier's /verify/identity.
  v=$(rest "$VERIFIER_PORT" "agents/$uuid" -o /dev/null -w '%{http_code}')
  assert_eq "$v" 200 "verifier knows the agent"
  r=$(curl -sS --max-time 10 --cacert "$TLS/cacert.crt" --cert "$TLS/client-cert.crt" \
    --key "$TLS/client-private.pem" -G "https://127.0.0.1:$VERIFIER_PORT/v2.2/verify/identity" \
    --data-urlencode "agent_uuid=$uuid" --data-urlencode "hash_alg=sha256" \
    --data-urlencode "nonce=$nonce" --data-urlencode "quote=$quote")
  assert_eq "$(jq -r .results.valid <<<"$r")" 1 "verifier /verify/identity valid ($r)"

  # The Unix socket (keylet's own user), and only the identity endpoints.
  info=$(curl -sS --max-time 10 --unix-socket "$d/identity.sock" "http://localhost/v2.5/agent/info")
  assert_eq "$(jq -r .results.agent_uuid <<<"$info")" "$uuid" "agent/info over the socket"
  assert_eq "$(stat -c %a "$d/identity.sock")" 660 "socket mode"
  code=$(curl -sS -o /dev/null -w '%{http_code}' "http://127.0.0.1:$ID_PORT/v2.2/keys/pubkey")
  assert_eq "$code" 404 "keys/pubkey on the identity listener"
  code=$(curl -sS -o /dev/null -w '%{http_code}' \
    "http://127.0.0.1:$ID_PORT/v2.2/quotes/integrity?nonce=$nonce&mask=0x400")
  assert_eq "$code" 404 "quotes/integrity on the identity listener"
  # The main port keeps mTLS.
  code=$(curl -sS -o /dev/null -w '%{http_code}' --max-time 5 "http://127.0.0.1:$AGENT_PORT/version" 2>/dev/null || true)
  [[ $code != 200 ]] || fail "the main port answered plain HTTP"
  code=$(curl -sS -o /dev/null -w '%{http_code}' --max-time 5 --cacert "$TLS/cacert.crt" \
    -k "https://127.0.0.1:$AGENT_PORT/version" 2>/dev/null || true)
  [[ $code != 200 ]] || fail "the main port answered without a client certificate"
  # The verifier kept passing meanwhile (identity quotes queued with its own).
  wait_attested "$uuid" $((c0 + 3)) 60 >/dev/null
  verifier_delete "$uuid"
  agent_stop spire
  [[ ! -e $d/identity.sock ]] || fail "the socket file is left after stop"
}

scenario_loopback_only() {
  local out rc=0
  agent_new lo
  agent_set lo identity_listen "0.0.0.0:$ID_PORT"
  agent_render lo
  out=$(keylet_env lo timeout 30 "$KEYLET_BIN" run 2>&1) || rc=$?
  assert_eq "$rc" 2 "exit code with identity_listen on 0.0.0.0" || { tail -n 5 <<<"$out" >&2; return 1; }
  if ! grep -q "identity_listen" <<<"$out" || ! grep -q loopback <<<"$out"; then
    fail "the error does not name identity_listen and loopback: $(tail -n 3 <<<"$out")"
  fi
}

scenario_ca_reload() {
  local d ca uuid c pid code
  fresh_agent car
  d=$(agent_dir car) ca=$(agent_dir car)/clientca.pem
  cp "$TLS/cacert.crt" "$ca"
  agent_set car trusted_client_ca "$ca"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj "/CN=next CA" \
    -keyout "$d/next-ca.key" -out "$d/next-ca.crt" 2>/dev/null
  start_registered car; uuid=$REG_UUID
  pid=${KEYLET_PID[car]}
  log_mark car
  tenant_add "$uuid"
  c=$(count "$(wait_attested "$uuid" 1 60)")
  # Rollover step 1: old + new CA, written in place.
  cat "$TLS/cacert.crt" "$d/next-ca.crt" >"$ca"
  wait_log_marked car "a trusted_client_ca file changed: TLS configuration reloaded"
  c=$(count "$(wait_attested "$uuid" $((c + 2)) 60)")
  # A broken file: logged with its name, the old config stays.
  echo "-----BEGIN CERTIFICATE-----" >"$ca"
  wait_log_marked car "TLS reload rejected, the previous configuration stays in use: the trusted client CA (trusted_client_ca) file $ca"
  c=$(count "$(wait_attested "$uuid" $((c + 2)) 60)")
  kill -HUP "$pid"
  wait_log_marked car "SIGHUP: TLS reload rejected"
  # Fixed, and SIGHUP.
  cat "$d/next-ca.crt" "$TLS/cacert.crt" >"$ca.new" && mv "$ca.new" "$ca"
  kill -HUP "$pid"
  wait_log_marked car "SIGHUP: TLS configuration reloaded"
  c=$(count "$(wait_attested "$uuid" $((c + 2)) 60)")
  agent_alive car || fail "keylet stopped during the reloads"
  # Only the new CA: the verifier's client certificate is refused from now on.
  verifier_delete "$uuid"
  cp "$d/next-ca.crt" "$ca"
  wait_log_marked car "reloaded (client CAs: $ca)" 15
  code=$(curl -sS -o /dev/null -w '%{http_code}' --max-time 5 --cacert "$(agent_dir car)/state/server-cert.crt" \
    --cert "$TLS/client-cert.crt" --key "$TLS/client-private.pem" \
    "https://127.0.0.1:$AGENT_PORT/version" 2>/dev/null || true)
  [[ $code != 200 ]] || fail "a client of the removed CA still got in"
  agent_stop car
}

scenario_rotate() {
  local d uuid before after reg0 reg1 out
  fresh_agent rot
  d=$(agent_dir rot)/state
  start_registered rot; uuid=$REG_UUID
  tenant_add "$uuid"
  wait_attested "$uuid" 1 60 >/dev/null
  reg0=$(registrar_get "$uuid")
  before=$(cat "$d/server-cert.crt")
  assert_eq "$(jq -r .mtls_cert <<<"$reg0")" "$before" "registrar mtls_cert before"
  agent_stop rot # swtpm over TCP serves one client at a time
  agent_render rot
  out=$(keylet_env rot "$KEYLET_BIN" rotate-cert 2>&1) || { printf '%s\n' "$out" >&2; fail "keylet rotate-cert failed"; }
  grep -q "keylime_tenant -c update -u $uuid" <<<"$out" || fail "rotate-cert did not print the verifier step: $out"
  after=$(cat "$d/server-cert.crt")
  assert_ne "$after" "$before" "server certificate after rotate-cert"
  assert_eq "$(cat "$d/server-cert.crt.old")" "$before" "kept previous certificate"
  assert_eq "$(stat -c %a "$d/server-private.pem")" 600 "new key mode"
  openssl x509 -noout -checkend 86400 -in "$d/server-cert.crt" >/dev/null || fail "new certificate not valid"
  [[ $(openssl pkey -in "$d/server-private.pem" -pubout) == $(openssl x509 -in "$d/server-cert.crt" -noout -pubkey) ]] ||
    fail "the new key does not match the new certificate"
  reg1=$(wait_registered "$uuid" 10)
  assert_eq "$(jq -r .mtls_cert <<<"$reg1")" "$after" "registrar mtls_cert after"
  assert_eq "$(jq -r .aik_tpm <<<"$reg1")" "$(jq -r .aik_tpm <<<"$reg0")" "same AK"
  assert_eq "$(jq -r .regcount <<<"$reg1")" "$(($(jq -r .regcount <<<"$reg0") + 1))" "regcount"
  # The printed steps: keylet serves the new certificate, the verifier is updated.
  agent_start rot
  wait_registered "$uuid" 30 >/dev/null
  verifier_delete "$uuid"
  tenant_add "$uuid"
  assert_eq "$(jq -r .attestation_status <<<"$(wait_attested "$uuid" 2 60)")" PASS "attestation after rotation"
  verifier_delete "$uuid"
  agent_stop rot
}

e2e_init tls
tb reset
run_scenarios spire loopback_only ca_reload rotate -- "$@"
