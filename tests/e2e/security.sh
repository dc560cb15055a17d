#!/usr/bin/env bash
# tests/e2e/security.sh - bad input, TLS refusals and secrets against a live keylet.
#
# Usage: tests/e2e/security.sh [SCENARIO...]   (default: all, in this order)
#   inputs   while the real verifier attests keylet: every entry of the bad-input
#            catalogue (nonce too long / wrong charset / missing, mask not hex / too
#            large, ima_ml_entry negative / huge / text, unknown paths and methods,
#            huge headers and bodies, malformed JSON on the POST endpoints) gets the
#            answer keylime-protocol.md gives it, a good quote request succeeds after
#            each one, the verifier keeps passing, keylet never panics and exits 0;
#            then keylet's debug log of the whole run holds no secret (private key
#            PEM bodies, auth_tag, password)
#   tls      TLS without a client certificate, with a certificate from another CA,
#            TLS 1.0, TLS 1.1 and plain HTTP are all refused; TLS 1.2 and 1.3 with
#            the right client certificate work; keylet keeps serving
# Needs: scripts/testbed.sh up, a keylet build, curl, openssl, jq.
set -euo pipefail
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

BASE=https://127.0.0.1:$AGENT_PORT
AGENT_UUID='' SERVER_CERT='' # the agent's id; keylet's self-signed server certificate (pinned as the only CA)
GOOD_NONCE=abcdefghij0123456789

# start_agent NAME: a fresh keylet, registered (its id in AGENT_UUID), its
# server certificate found (SERVER_CERT).
start_agent() {
  local n=$1
  tb reset >/dev/null 2>&1
  agent_new "$n"
  printf 'line one\nline two\nline three\n' >"$(agent_dir "$n")/ascii_runtime_measurements"
  agent_start "$n" RUST_LOG=debug
  AGENT_UUID=$(agent_identity "$n" | jq -r .uuid)
  wait_registered "$AGENT_UUID" 30 >/dev/null
  SERVER_CERT=$(grep -l -- '-----BEGIN CERTIFICATE-----' "$(agent_dir "$n")"/state/* 2>/dev/null | head -n 1 || true)
  [[ -n $SERVER_CERT ]] || { fail "no server certificate in $(agent_dir "$n")/state"; return 1; }
  wait_listening
}

wait_listening() {
  local i
  for ((i = 0; i < 100; i++)); do
    (exec 3<>"/dev/tcp/127.0.0.1/$AGENT_PORT") 2>/dev/null && return 0
    sleep 0.1
  done
  fail "keylet does not listen on $AGENT_PORT"
}

# call [curl args...] URL-PATH -> "CODE BODY" with the verifier's client certificate.
call() {
  local args=("${@:1:$#-1}") path=${*: -1} out
  out=$(curl -sS --max-time 20 --cacert "$SERVER_CERT" --cert "$TLS/client-cert.crt" \
    --key "$TLS/client-private.pem" -o - -w '\n%{http_code}' "${args[@]}" "$BASE$path" 2>&1) || true
  printf '%s %s\n' "${out##*$'\n'}" "${out%$'\n'*}"
}

# still_serving NAME: the process lives and a good integrity quote is answered 200.
still_serving() {
  local r
  agent_alive "$1" || { agent_log_tail "$1"; fail "keylet '$1' died"; return 1; }
  r=$(call "/v2.6/quotes/integrity?nonce=$GOOD_NONCE&mask=0x0&partial=1")
  [[ $r == "200 "* ]] || { fail "good quote request after the last probe: ${r:0:200}"; return 1; }
  jq -e '.results.quote | startswith("r")' <<<"${r#* }" >/dev/null ||
    fail "good quote request gave no quote: ${r:0:200}"
}

# expect NAME WHAT CODE STATUS-SUBSTRING [curl args...] PATH
expect() {
  local n=$1 what=$2 code=$3 want=$4 r got status; shift 4
  r=$(call "$@")
  got=${r%% *}
  status=$(jq -r '.status // empty' <<<"${r#* }" 2>/dev/null | tr -d '\000' || true)
  [[ $got == "$code" ]] || { fail "$what: HTTP $got, expected $code (${r:0:200})"; return 1; }
  if [[ -n $want && $status != *"$want"* ]]; then
    fail "$what: status '$status' does not say '$want'"; return 1
  fi
  still_serving "$n"
  say "ok: $what -> $got${status:+ \"${status:0:70}\"}"
}

# too_big NAME WHAT [curl args...] PATH: a request head over keylet's 16 KiB limit
# gets 431 (or 414), or the connection is closed while the client still sends.
too_big() {
  local n=$1 what=$2 r; shift 2
  r=$(call "$@")
  case $r in
    "431 "* | "414 "*) ;;
    "000 "*"Send failure"* | "000 "*"Connection reset"* | "000 "*"Empty reply"*) ;;
    *) fail "$what: expected 431 or a closed connection, got ${r:0:200}"; return 1 ;;
  esac
  still_serving "$n"
  say "ok: $what -> ${r:0:60}"
}

# ima_entry NAME ENTRY-PARAM EXPECTED-ENTRY EXPECTED-LINES
ima_entry() {
  local r body; r=$(call "/v2.6/quotes/integrity?nonce=$GOOD_NONCE&mask=0x400&partial=1&ima_ml_entry=$2")
  [[ $r == "200 "* ]] || { fail "ima_ml_entry=$2: ${r:0:200}"; return 1; }
  body=${r#* }
  assert_eq "$(jq -r .results.ima_measurement_list_entry <<<"$body")" "$3" "ima_ml_entry=$2: entry"
  assert_eq "$(jq -r .results.ima_measurement_list <<<"$body" | grep -c .)" "$4" "ima_ml_entry=$2: lines"
  still_serving "$1"
  say "ok: ima_ml_entry=$2 -> entry $3, $4 lines"
}

long() { head -c "$1" /dev/zero | tr '\0' "$2"; }

scenario_inputs() {
  local n=inputs uuid c0 r v=/v2.6 q big
  start_agent $n
  uuid=$AGENT_UUID
  tenant_add "$uuid"
  c0=$(wait_attested "$uuid" 1 60 | jq -r .attestation_count)
  q="mask=0x0&partial=0"

  expect $n "nonce of 65 characters" 400 "too long" "$v/quotes/integrity?nonce=$(long 65 a)&$q"
  expect $n "nonce of 15000 characters" 400 "too long" "$v/quotes/identity?nonce=$(long 15000 b)"
  too_big $n "request line of 100 KiB" "$v/quotes/identity?nonce=$(long 100000 b)"
  expect $n "nonce with '-'" 400 "alphanumeric" "$v/quotes/integrity?nonce=abc-def&$q"
  expect $n "nonce with a UTF-8 letter" 400 "alphanumeric" "$v/quotes/identity?nonce=ab%C3%A9c"
  expect $n "nonce with a NUL byte" 400 "alphanumeric" "$v/quotes/identity?nonce=ab%00c"
  expect $n "nonce missing" 400 "nonce" "$v/quotes/integrity?$q"
  expect $n "nonce empty" 400 "nonce" "$v/quotes/identity?nonce="
  expect $n "mask not hex" 400 "hex" "$v/quotes/integrity?nonce=$GOOD_NONCE&mask=0xZZ&partial=0"
  expect $n "mask negative" 400 "hex" "$v/quotes/integrity?nonce=$GOOD_NONCE&mask=-1&partial=0"
  expect $n "mask PCR 24" 400 "above 23" "$v/quotes/integrity?nonce=$GOOD_NONCE&mask=0x1000000&partial=0"
  expect $n "mask of 64 bits" 400 "above 23" "$v/quotes/integrity?nonce=$GOOD_NONCE&mask=0xffffffffffffffff&partial=0"
  expect $n "mask missing" 400 "mask" "$v/quotes/integrity?nonce=$GOOD_NONCE&partial=0"
  expect $n "partial=2" 400 "partial" "$v/quotes/integrity?nonce=$GOOD_NONCE&mask=0x0&partial=2"
  # ima_ml_entry: missing or unparsable is 0; past the end of the log is the whole log, entry 0.
  ima_entry $n 1 1 2
  ima_entry $n 3 3 0
  ima_entry $n -1 0 3
  ima_entry $n abc 0 3
  ima_entry $n 18446744073709551615 0 3
  ima_entry $n 99999999999999999999999999 0 3

  expect $n "unknown path" 400 "Not Implemented" /nothing/here
  expect $n "unknown versioned path" 400 "Not Implemented" "$v/nothing"
  expect $n "unknown quote" 400 "only /identity and /integrity" "$v/quotes/other"
  expect $n "unsupported API version" 400 "API version not supported" /v9.9/quotes/identity?nonce=abc
  expect $n "DELETE unknown path" 405 "" -X DELETE /nothing
  expect $n "PUT integrity" 405 "" -X PUT "$v/quotes/integrity?nonce=$GOOD_NONCE&$q"
  expect $n "POST version" 405 "" -X POST /version
  expect $n "path traversal" 400 "" --path-as-is "$v/../../etc/passwd"
  r=$(call -X DELETE -D - /nothing)
  grep -qi '^allow: ' <<<"$r" || fail "405 has no Allow header"

  # Huge headers: one of 64 KiB, and 200 of 200 bytes (keylet reads at most 16 KiB of head).
  too_big $n "64 KiB header" -H "X-Big: $(long 65536 x)" /version
  big=(); for ((i = 0; i < 200; i++)); do big+=(-H "X-H$i: $(long 200 y)"); done
  too_big $n "200 headers of 200 bytes" "${big[@]}" /version
  # Huge and malformed bodies on the POST endpoints.
  long 8388608 z >"$E2E_TMP/big.body"
  expect $n "8 MiB body to vkey" 413 "secure_size" -H 'Content-Type: application/json' \
    --data-binary "@$E2E_TMP/big.body" "$v/keys/vkey"
  expect $n "malformed JSON to ukey" 400 "JSON" -d '{"encrypted_key": ' "$v/keys/ukey"
  expect $n "malformed JSON to vkey" 400 "JSON" -d '[[[[' "$v/keys/vkey"
  # Revocation notifications: a body that is not a signed notification is refused with the reason.
  expect $n "malformed JSON to revocation" 400 "Invalid JSON body" -d '{"msg": ' "$v/notifications/revocation"
  expect $n "8 MiB body to revocation" 413 "larger than" --data-binary "@$E2E_TMP/big.body" "$v/notifications/revocation"
  expect $n "unsigned revocation" 400 "not signed" -d '{"msg": "{}", "signature": ""}' "$v/notifications/revocation"
  expect $n "POST to unknown notification" 400 "only /revocation" -d '{}' "$v/notifications/other"

  # The verifier kept attesting through all of this.
  r=$(wait_attested "$uuid" $((c0 + 2)) 30)
  assert_eq "$(jq -r .attestation_status <<<"$r")" PASS "verifier status after the catalogue"
  verifier_delete "$uuid"
  agent_stop $n
  no_panic $n
  no_secrets $n
}

no_panic() {
  local log; log=$(agent_dir "$1")/keylet.log
  if grep -n -i 'panicked\|RUST_BACKTRACE' "$log" >&2; then fail "keylet '$1' panicked"; return 1; fi
}

# no_secrets NAME: no private key body, auth_tag or password in keylet's log.
no_secrets() {
  local n=$1 log f line found=0 checked=0 d
  d=$(agent_dir "$n")
  log=$d/keylet.log
  [[ -s $log ]] || { fail "keylet '$n' wrote no log"; return 1; }
  for f in "$d"/state/*; do
    grep -q 'PRIVATE KEY-----' "$f" 2>/dev/null || continue
    # every base64 line of the key's PEM body (long enough to be unique)
    while IFS= read -r line; do
      [[ ${#line} -ge 32 && $line != -----* ]] || continue
      checked=$((checked + 1))
      if grep -qF -- "$line" "$log"; then found=1; fail "a line of private key $f is in the log"; fi
    done <"$f"
  done
  ((checked > 0)) || { fail "no private key PEM found in $d/state to look for"; return 1; }
  if grep -n -i 'PRIVATE KEY\|auth_tag\|password\|secret' "$log" >&2; then
    found=1; fail "keylet's log holds a secret-looking line (above)"
  fi
  ((found == 0)) || return 1
  say "ok: no secret in $(wc -l <"$log") log lines ($checked private key lines looked for)"
}

# tls_refused WHAT CURL-ARGS...: the request gets no HTTP answer.
tls_refused() {
  local what=$1 code rc=0; shift
  code=$(curl -sS --max-time 10 --cacert "$SERVER_CERT" -o /dev/null -w '%{http_code}' "$@" \
    "$BASE/version" 2>"$E2E_TMP/curl.err") || rc=$?
  if ((rc == 0)) || [[ $code != 000 ]]; then
    fail "$what: answered HTTP $code (curl exit $rc)"; return 1
  fi
  say "ok: $what refused (curl exit $rc: $(head -c 100 "$E2E_TMP/curl.err"))"
}

# s_client_refused WHAT ARGS...: openssl s_client cannot finish a handshake.
s_client_refused() {
  local what=$1 out; shift
  out=$(openssl s_client -connect "127.0.0.1:$AGENT_PORT" -CAfile "$SERVER_CERT" \
    -cert "$TLS/client-cert.crt" -key "$TLS/client-private.pem" "$@" </dev/null 2>&1 || true)
  if grep -q '^ *Protocol *: TLSv1\(\.[01]\)\?$' <<<"$out" && ! grep -q 'Cipher is (NONE)' <<<"$out"; then
    fail "$what: a handshake completed: $(grep -m1 'Protocol' <<<"$out")"; return 1
  fi
  grep -q -i 'alert\|error\|no protocols\|unsupported' <<<"$out" ||
    { fail "$what: no TLS error seen: ${out:0:300}"; return 1; }
  say "ok: $what refused ($(grep -m1 -i -o 'alert [a-z ]*\|no protocols available\|unsupported protocol' <<<"$out" | head -n 1 || echo error))"
}

scenario_tls() {
  local n=tls ca=$E2E_TMP/other-ca
  start_agent $n
  # A CA keylet does not trust, and a client certificate it signed.
  mkdir -p "$ca"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=other-ca \
    -keyout "$ca/ca.key" -out "$ca/ca.crt" 2>/dev/null
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=intruder \
    -keyout "$ca/client.key" -out "$ca/client.csr" 2>/dev/null
  openssl x509 -req -in "$ca/client.csr" -CA "$ca/ca.crt" -CAkey "$ca/ca.key" -CAcreateserial \
    -days 1 -out "$ca/client.crt" 2>/dev/null

  tls_refused "no client certificate (TLS 1.2)" --tlsv1.2 --tls-max 1.2
  still_serving $n
  tls_refused "no client certificate (TLS 1.3)" --tlsv1.3
  still_serving $n
  tls_refused "client certificate from another CA" --cert "$ca/client.crt" --key "$ca/client.key"
  still_serving $n
  tls_refused "self-signed client certificate" --cert "$ca/ca.crt" --key "$ca/ca.key"
  still_serving $n
  s_client_refused "TLS 1.0" -tls1 -cipher 'DEFAULT:@SECLEVEL=0'
  still_serving $n
  s_client_refused "TLS 1.1" -tls1_1 -cipher 'DEFAULT:@SECLEVEL=0'
  still_serving $n
  local plain; plain=$(curl -sS --max-time 5 -o /dev/null -w '%{http_code}' \
    "http://127.0.0.1:$AGENT_PORT/version" 2>/dev/null || true)
  [[ $plain != 200 ]] || fail "plain HTTP answered 200"
  say "ok: plain HTTP refused (HTTP ${plain:-none})"
  still_serving $n
  assert_eq "$(call --tlsv1.2 --tls-max 1.2 /version | cut -d' ' -f1)" 200 "TLS 1.2 with the right client certificate"
  assert_eq "$(call --tlsv1.3 /version | cut -d' ' -f1)" 200 "TLS 1.3 with the right client certificate"
  agent_stop $n
  no_panic $n
}

e2e_init security
run_scenarios inputs tls -- "$@"
