#!/usr/bin/env bash
# tests/e2e/payload.sh - payload keys and payloads from the real Keylime 7.14.3 tenant and verifier.
#
# Usage: tests/e2e/payload.sh [SCENARIO...]   (default: all, in this order)
#   file    "keylime_tenant -c add -f FILE --verify": the tenant's U and the verifier's V
#           combine to K (the tenant's --verify HMAC check passes), FILE appears decrypted in
#           keylime_dir/secure/unzipped (a tmpfs when root), attestation keeps passing
#   cert    "keylime_tenant -c add --cert CA_DIR --include DIR --verify": the certificate
#           zip is unpacked, and its autorun.sh runs only with enable_payload_script = true,
#           and may write outside /tmp and keylime_dir (as keylime-tests' payload writes
#           /var/tmp): with scripts on and confine unset, keylet is not confined
#   zipped  "keylime_tenant -c add -f PAYLOAD.zip": a zip made with deflate (as `zip` makes
#           it) is unpacked, nested directories included; then, on a second keylet with
#           secure_size = 1m, a zip bomb (8 MiB deflated to a few KB) is refused before
#           anything is written, keylet says why and attestation keeps passing
#   revocation  two keylets on two swtpms, both added with the same "--cert CA_DIR"; the
#           first has enable_revocation_actions and an action_list in its payload. The
#           second fails attestation (a PCR 23 policy it cannot meet): the real verifier's
#           signed notification reaches the first, which runs its action with the message;
#           a notification signed with another key is refused (400) and runs nothing
#   slow_action  as revocation, but the surviving keylet's action takes 50 s: while it runs,
#           the verifier keeps that host at PASS and its integrity quotes, asked over mTLS
#           as the verifier asks, answer 200 within 1 s each
#   insecure  mTLS off without enable_insecure_payload: the tenant's add with -f fails
#           with keylet's reason, and no payload is written
#   bad_secure  a file where keylime_dir/secure should be: keylet refuses to start, says
#           why, and leaves no TPM object behind
# Needs: scripts/testbed.sh up, a keylet build. Runs in ~2.5 min.
set -euo pipefail
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# wait_file PATH [SECS]: PATH exists (delivery runs after the tenant's add returns).
wait_file() { wait_for "${2:-20}" "$1 to appear" test -e "$1"; }

# The real tenant with the testbed's Keylime configuration, but a CA config of
# this run (keylime_tenant --cert needs a CA password, and "default" makes it prompt).
tenant_with_ca() {
  (
    # shellcheck disable=SC1091
    source "$TB_STATE/keylime-tools.env"
    sed 's/^password = .*/password = keylet-e2e-ca/' "$KEYLIME_CA_CONFIG" >"$E2E_TMP/ca.conf"
    export KEYLIME_CA_CONFIG=$E2E_TMP/ca.conf
    cd "$TB_STATE" && keylime_tenant "$@"
  )
}

scenario_file() {
  local uuid d secure r
  fresh_agent file
  d=$(agent_dir file)
  printf 'database password for the attested host: %s\n' "$RANDOM$RANDOM" >"$E2E_TMP/secret.txt"
  start_registered file
  uuid=$REG_UUID
  tenant_add "$uuid" "$AGENT_PORT" -f "$E2E_TMP/secret.txt" --verify
  grep -q "Successful key derivation" "$E2E_TMP/tenant-add.log" ||
    fail "the tenant did not report a successful key derivation (--verify)"
  secure=$d/state/secure
  wait_file "$secure/unzipped/decrypted_payload"
  cmp "$E2E_TMP/secret.txt" "$secure/unzipped/decrypted_payload" ||
    fail "decrypted payload differs from the file given to the tenant"
  assert_eq "$(stat -c %a "$secure/unzipped/decrypted_payload")" 600 "payload file mode"
  assert_eq "$(stat -c %s "$secure/unzipped/derived_tci_key")" 32 "K file size"
  if ((EUID == 0)); then
    assert_eq "$(findmnt -n -o FSTYPE --mountpoint "$secure" || true)" tmpfs "secure dir filesystem"
  fi
  r=$(wait_attested "$uuid" 3 60)
  assert_eq "$(jq -r .attestation_status <<<"$r")" PASS "attestation_status"
  assert_nonempty "$(jq -r .v <<<"$r")" "verifier's V"
  verifier_delete "$uuid"
  agent_stop file
}

# make_zip OUT NAME=LEN...: a deflated zip (Python's zipfile, as `zip` makes it)
# whose entries hold LEN bytes each.
make_zip() {
  python3 - "$@" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1], "w", zipfile.ZIP_DEFLATED) as z:
    for arg in sys.argv[2:]:
        name, n = arg.split("=")
        z.writestr(name, (name * (int(n) // len(name) + 1))[: int(n)])
PY
}

scenario_zipped() {
  local uuid unzipped r
  fresh_agent zip
  make_zip "$E2E_TMP/payload.zip" notes.txt=5000 etc/app/token=64
  start_registered zip
  uuid=$REG_UUID
  tenant_add "$uuid" "$AGENT_PORT" -f "$E2E_TMP/payload.zip"
  unzipped=$(agent_dir zip)/state/secure/unzipped
  wait_file "$unzipped/etc/app/token"
  python3 - "$E2E_TMP/payload.zip" "$unzipped" <<'PY' || fail "unpacked files differ from the zip"
import sys, zipfile, pathlib
z = zipfile.ZipFile(sys.argv[1])
assert all(i.compress_type == zipfile.ZIP_DEFLATED for i in z.infolist())
for i in z.infolist():
    assert (pathlib.Path(sys.argv[2]) / i.filename).read_bytes() == z.read(i), i.filename
PY
  verifier_delete "$uuid"
  agent_stop zip

  fresh_agent bomb secure_size=1m
  make_zip "$E2E_TMP/bomb.zip" bomb.bin=8388608
  (($(stat -c %s "$E2E_TMP/bomb.zip") < 65536)) || fail "the bomb is not small"
  start_registered bomb
  uuid=$REG_UUID
  tenant_add "$uuid" "$AGENT_PORT" -f "$E2E_TMP/bomb.zip"
  wait_log bomb "nothing was unpacked" 30
  [[ ! -e $(agent_dir bomb)/state/secure/unzipped/bomb.bin ]] || fail "the bomb was unpacked"
  r=$(wait_attested "$uuid" 3 60)
  assert_eq "$(jq -r .attestation_status <<<"$r")" PASS "attestation_status after the refused payload"
  verifier_delete "$uuid"
  agent_stop bomb
}

# post_revocation PORT MSG KEY: POSTs MSG signed like the verifier (RSA-PSS, SHA-256,
# largest salt) with KEY to the agent on PORT; prints the HTTP status.
post_revocation() {
  local sig
  printf '%s' "$2" >"$E2E_TMP/rv-msg"
  sig=$(openssl dgst -sha256 -sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:max -sign "$3" \
    "$E2E_TMP/rv-msg" | base64 -w0)
  jq -n --arg m "$2" --arg s "$sig" '{msg: $m, signature: $s}' >"$E2E_TMP/rv-body"
  curl -sS --max-time 10 -k --cert "$TLS/client-cert.crt" --key "$TLS/client-private.pem" \
    -o "$E2E_TMP/rv-answer" -w '%{http_code}' -H 'Content-Type: application/json' \
    --data-binary @"$E2E_TMP/rv-body" "https://127.0.0.1:$1/$REST_API/notifications/revocation"
}

# watching_host NAME ACTION SCRIPT: a fresh keylet NAME with enable_revocation_actions,
# added with "--cert CA_DIR" and a payload whose action_list names ACTION (the shell
# script SCRIPT); returns once the verifier attested it twice; sets REG_UUID.
watching_host() {
  local incl=$E2E_TMP/rv-include-$1
  fresh_agent "$1" enable_revocation_actions=true
  mkdir -p "$incl"
  printf '%s\n' "$2" >"$incl/action_list"
  printf '%b' "$3" >"$incl/$2"
  chmod 700 "$incl/$2"
  start_registered "$1"
  tenant_with_ca -c add -t 127.0.0.1 -tp "$AGENT_PORT" -u "$REG_UUID" --cert "$E2E_TMP/ca" \
    --include "$incl" >"$E2E_TMP/tenant-rv-a.log" 2>&1 ||
    { tail -n 20 "$E2E_TMP/tenant-rv-a.log" >&2; fail "keylime_tenant --cert (watching agent) failed"; }
  wait_file "$(agent_dir "$1")/state/secure/unzipped/RevocationNotifier-cert.crt"
  wait_attested "$REG_UUID" 2 60 >/dev/null
}

# failing_host: a second keylet ("victim") on a swtpm of its own, added with the same
# "--cert CA_DIR" and a PCR 23 policy it cannot meet; returns once the verifier marks it
# FAIL (and so sends its revocation notification to the others); sets REG_UUID.
failing_host() {
  local port2=$((SWTPM_PORT + 20)) aport2=$((AGENT_PORT + 1))
  E2E_EXTRA_TPMS="e2e-rv"
  KEYLET_TB_FORCE=1 tb tpm2-start e2e-rv "$port2" >/dev/null
  agent_new victim
  agent_set victim port "$aport2"
  agent_set victim contact_port "$aport2"
  agent_set victim tpm_device "tcp://127.0.0.1:$port2"
  start_registered victim
  tenant_with_ca -c add -t 127.0.0.1 -tp "$aport2" -u "$REG_UUID" --cert "$E2E_TMP/ca" \
    --tpm_policy "{\"23\": [\"$(printf '%064d' 1)\"]}" >"$E2E_TMP/tenant-rv-b.log" 2>&1 ||
    { tail -n 20 "$E2E_TMP/tenant-rv-b.log" >&2; fail "keylime_tenant --cert (failing agent) failed"; }
  wait_failed "$REG_UUID" 60 >/dev/null
}

scenario_revocation() {
  local state uuid_a uuid_b seen code
  # shellcheck disable=SC2016 # expanded by the action's shell
  watching_host watch local_action_mark \
    '#!/bin/sh
cp "$1" "$PWD/revocation-seen.json"
(cat "$1"; echo) >>"$PWD/revocation-runs"
id -u >"$PWD/revocation-uid"
'
  uuid_a=$REG_UUID
  state=$(agent_dir watch)/state

  # A forged notification (another key) is refused and runs nothing (checked once the
  # genuine one below has run its action: actions run one at a time, in order).
  openssl genrsa -out "$E2E_TMP/forger.pem" 2048 2>/dev/null
  code=$(post_revocation "$AGENT_PORT" '{"type": "revocation", "agent_id": "forged"}' "$E2E_TMP/forger.pem")
  assert_eq "$code" 400 "HTTP status of a forged revocation notification"
  grep -q "does not verify" "$E2E_TMP/rv-answer" || fail "400 without the reason: $(cat "$E2E_TMP/rv-answer")"

  failing_host
  uuid_b=$REG_UUID
  assert_ne "$uuid_b" "$uuid_a" "agent ids of the two hosts"
  wait_file "$state/revocation-seen.json" 60
  seen=$(jq -r .agent_id "$state/revocation-seen.json")
  assert_eq "$seen" "$uuid_b" "agent named by the revocation message the action got"
  ! grep -q '"forged"' "$state/revocation-runs" || fail "a forged notification ran the action"
  assert_eq "$(cat "$state/revocation-uid")" "$EUID" "the action ran as keylet's user"
  grep -q "reports that agent $uuid_b failed" "$(agent_dir watch)/keylet.log" ||
    fail "keylet did not log the verified notification"
  # The reference agent's wording: operators' log alerts watch for it.
  grep -q "Executing revocation action local_action_mark" "$(agent_dir watch)/keylet.log" ||
    fail "keylet did not log the action it ran as 'Executing revocation action NAME'"
  verifier_delete "$uuid_b"
  verifier_delete "$uuid_a"
  agent_stop victim
  agent_stop watch
  tb tpm2-stop e2e-rv >/dev/null
}

# The verifier's integrity quote, asked directly over mTLS: prints "STATUS SECONDS".
quote_timed() { # NAME I
  agent_curl "$1" -o /dev/null -w '%{http_code} %{time_total}' --max-time 15 \
    "https://127.0.0.1:$AGENT_PORT/v2.2/quotes/integrity?nonce=$(printf 'slow%016d' "$2")&mask=0x400&partial=1" \
    2>/dev/null || echo "000 15"
}

scenario_slow_action() {
  local state uuid_a i r count
  # shellcheck disable=SC2016 # expanded by the action's shell
  watching_host steady slow_action \
    '#!/bin/sh
: >"$PWD/action-started"
sleep 50
: >"$PWD/action-done"
'
  uuid_a=$REG_UUID
  state=$(agent_dir steady)/state
  failing_host
  verifier_delete "$REG_UUID"
  agent_stop victim
  wait_file "$state/action-started" 60
  # While the 50 s action runs: each round waits for the verifier's next attestation
  # of this host (PASS, or wait_attested fails), then asks for a quote as it does.
  count=$(verifier_get "$uuid_a" | jq -r .attestation_count)
  for ((i = 1; i <= 6; i++)); do
    count=$(wait_attested "$uuid_a" $((count + 1)) 15 | jq -r .attestation_count)
    r=$(quote_timed steady "$i")
    say "quote $i during the action: HTTP ${r% *} in ${r#* } s"
    assert_eq "${r% *}" 200 "HTTP status of quote $i during the revocation action"
    awk -v t="${r#* }" 'BEGIN { exit !(t < 1.0) }' ||
      fail "quote $i during the revocation action took ${r#* } s (limit 1 s)"
  done
  [[ ! -e $state/action-done ]] || fail "the action ended before the last quote: the checks did not run during it"
  wait_file "$state/action-done" 60
  wait_log steady "revocation actions for agent"
  wait_attested "$uuid_a" $((count + 1)) 15 >/dev/null
  verifier_delete "$uuid_a"
  agent_stop steady
  tb tpm2-stop e2e-rv >/dev/null
}

scenario_cert() {
  local uuid d incl unzipped outside=/var/tmp/keylet-e2e-cert-$$.installed
  fresh_agent cert enable_payload_script=true
  d=$(agent_dir cert)
  incl=$E2E_TMP/include
  mkdir -p "$incl"
  rm -f "$outside"
  printf 'extra file for the host\n' >"$incl/extra.txt"
  printf '#!/bin/sh\necho installed > %s\nid -u > autorun-ran\n' "$outside" >"$incl/autorun.sh"
  start_registered cert
  uuid=$REG_UUID
  tenant_with_ca -c add -t 127.0.0.1 -tp "$AGENT_PORT" -u "$uuid" \
    --cert "$E2E_TMP/ca" --include "$incl" --verify >"$E2E_TMP/tenant-cert.log" 2>&1 ||
    { tail -n 20 "$E2E_TMP/tenant-cert.log" >&2; fail "keylime_tenant --cert --include failed"; }
  unzipped=$d/state/secure/unzipped
  wait_file "$unzipped/autorun-ran"
  cmp "$incl/extra.txt" "$unzipped/extra.txt" || fail "included file differs"
  [[ -s $unzipped/RevocationNotifier-cert.crt ]] || fail "no RevocationNotifier-cert.crt unpacked"
  [[ -s $unzipped/$uuid-cert.crt ]] || fail "no $uuid-cert.crt unpacked from the cert package"
  assert_eq "$(cat "$unzipped/autorun-ran")" "$EUID" "autorun.sh ran as keylet's user"
  [[ $(cat "$outside" 2>/dev/null) == installed ]] ||
    { agent_log_tail cert; fail "autorun.sh could not write $outside (outside /tmp and keylime_dir)"; }
  rm -f "$outside"
  grep -q 'operator scripts are enabled .* keylet runs without Landlock confinement' "$d/keylet.log" ||
    fail "keylet did not log why it runs unconfined"
  wait_attested "$uuid" 2 60 >/dev/null
  verifier_delete "$uuid"
  agent_stop cert
}

scenario_insecure() {
  local uuid d
  fresh_agent insecure enable_agent_mtls=false
  d=$(agent_dir insecure)
  printf 'must not arrive\n' >"$E2E_TMP/refused.txt"
  start_registered insecure
  uuid=$REG_UUID
  if tb add "$uuid" 127.0.0.1 "$AGENT_PORT" -f "$E2E_TMP/refused.txt" >"$E2E_TMP/tenant-insecure.log" 2>&1; then
    fail "the tenant's add with a payload succeeded although keylet serves plain HTTP"
  fi
  grep -q "enable_insecure_payload" "$E2E_TMP/tenant-insecure.log" ||
    { tail -n 5 "$E2E_TMP/tenant-insecure.log" >&2; fail "the tenant did not show keylet's reason"; }
  [[ ! -e $d/state/secure ]] || fail "a secure directory was prepared although payloads are refused"
  tb delete "$uuid" >/dev/null 2>&1 || true
  agent_stop insecure
}

scenario_bad_secure() {
  local d rc=0
  fresh_agent badsec
  d=$(agent_dir badsec)
  printf 'not a directory\n' >"$d/state/secure"
  agent_start badsec
  wait "${KEYLET_PID[badsec]}" || rc=$?
  unset "KEYLET_PID[badsec]"
  ((rc != 0)) || fail "keylet started although keylime_dir/secure is a file"
  grep -q "secure directory .*secure: exists but is not a directory" "$d/keylet.log" ||
    { agent_log_tail badsec; fail "keylet's error does not name the secure directory problem"; }
  assert_eq "$(transient_handles)" 0 "transient TPM objects left after the failed start"
}

e2e_init payload
run_scenarios file zipped cert revocation slow_action insecure bad_secure -- "$@"
