#!/usr/bin/env bash
# tests/e2e/iak.sh - keylet registers with a TCG device identity (IAK and IDevID)
# at the real Keylime 7.14.3 registrar.
#
# The suite makes, in the testbed's swtpm (tpm2-tools), an IAK (restricted RSA-2048
# RSASSA/SHA-256 signing key with a password, TCG template H-1's key type) and an
# IDevID (unrestricted RSA-2048 RSASSA/SHA-256 signing key) in the endorsement
# hierarchy, persisted at 0x81020000 and 0x81020001; a local CA (openssl) issues
# their certificates and is put into the registrar's trust store ([tenant]
# tpm_cert_store, which the 7.14.3 registrar reads); a second CA is not trusted.
#
# Usage: tests/e2e/iak.sh [SCENARIO...]   (default: all, in this order)
#   accepted      the registrar stores the IAK, IDevID and their certificates and
#                 verifies the AK certified by the IAK; the verifier attests (PASS);
#                 a restart registers again; no transient object is left in the TPM;
#                 keylet doctor finds both keys
#   wrong_cert    iak_cert holds a certificate for another key (the IDevID's): keylet
#                 stops before registering, naming the file and the handle
#   untrusted_ca  certificates from a CA the registrar does not trust: the registrar
#                 refuses (400) and keylet says why and what to check
#   tampered      a man in the middle (a proxy made by the test) corrupts iak_sign on the
#                 way to the registrar: the registrar refuses the certification (400,
#                 aik_tpm not confirmed by the IAK) and keylet says so
#   template      no handles: keylet re-creates the IAK and IDevID from the TCG template
#                 detected from their certificates (H-1 RSA-2048, H-2 P-256, H-3 P-384 /
#                 SHA-384, H-4 P-521 / SHA-512, made here by tpm2-tools from the same
#                 template; H-3 also named by iak_idevid_template = manual with ecc and
#                 sha384), registers (the registrar verifies the RSASSA-PSS or ECDSA
#                 certification) and flushes them
#   ecc_handles   the H-3 and H-4 keys persisted at iak_handle/idevid_handle (0x81020002,
#                 0x81020003): keylet
#                 reads them, the registrar verifies the ECDSA-SHA384/SHA512
#                 certification, the verifier attests (PASS)
# Needs: scripts/testbed.sh up (the registrar is reset per scenario), tpm2-tools,
# openssl, a keylet build.
set -euo pipefail
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

IAK_HANDLE=0x81020000 IDEVID_HANDLE=0x81020001 IAK_PASSWORD=e2e-iak-password
ECC_IAK_HANDLE=0x81020002 ECC_IDEVID_HANDLE=0x81020003 # ecc_handles: H-3/H-4 keys
TRUSTED_CA_FILE=$TB_STATE/tpm_cert_store/keylet-e2e-iak-ca.pem

# make_ca NAME: a self-signed CA in $E2E_TMP/pki/NAME.{key,pem}.
make_ca() {
  openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 30 -subj "/CN=keylet e2e $1" \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
    -keyout "$PKI/$1.key" -out "$PKI/$1.pem" 2>/dev/null
}

# issue CA PUBKEY_PEM CN OUT: a certificate by CA for the public key in PUBKEY_PEM.
issue() {
  openssl req -new -key "$PKI/$1.key" -subj "/CN=$3" -out "$PKI/$3.csr" 2>/dev/null
  openssl x509 -req -in "$PKI/$3.csr" -CA "$PKI/$1.pem" -CAkey "$PKI/$1.key" -force_pubkey "$2" \
    -set_serial "$((RANDOM * 32768 + RANDOM))" -days 30 -sha256 -out "$4" 2>/dev/null
}

# evict HANDLE...: removes those persistent objects that exist (the list is read
# first: grep -q on a pipe could end getcap with SIGPIPE, a failure under pipefail).
evict() {
  local h present
  present=$(tb tpm2 getcap handles-persistent)
  for h in "$@"; do
    if grep -qi "$h" <<<"$present"; then
      tb tpm2 evictcontrol -C o -c "$h" >/dev/null
    fi
  done
}

evict_device_keys() { evict "$IAK_HANDLE" "$IDEVID_HANDLE" "$ECC_IAK_HANDLE" "$ECC_IDEVID_HANDLE"; }

# The IAK and IDevID in swtpm, their public keys as PEM, and certificates from
# the trusted CA ("good") and from an untrusted one ("rogue").
setup_device_identity() {
  PKI=$E2E_TMP/pki
  mkdir -p "$PKI"
  evict_device_keys
  tb tpm2 createprimary -C e -g sha256 -G rsa2048:rsassa-sha256:null -p "$IAK_PASSWORD" \
    -a 'fixedtpm|fixedparent|sensitivedataorigin|userwithauth|restricted|sign' \
    -c "$PKI/iak.ctx" >/dev/null
  tb tpm2 evictcontrol -C o -c "$PKI/iak.ctx" "$IAK_HANDLE" >/dev/null
  tb tpm2 flushcontext -t
  tb tpm2 createprimary -C e -g sha256 -G rsa2048:rsassa-sha256:null \
    -a 'fixedtpm|fixedparent|sensitivedataorigin|userwithauth|sign' \
    -c "$PKI/idevid.ctx" >/dev/null
  tb tpm2 evictcontrol -C o -c "$PKI/idevid.ctx" "$IDEVID_HANDLE" >/dev/null
  tb tpm2 flushcontext -t
  tb tpm2 readpublic -c "$IAK_HANDLE" -f pem -o "$PKI/iak.pub.pem" >/dev/null
  tb tpm2 readpublic -c "$IDEVID_HANDLE" -f pem -o "$PKI/idevid.pub.pem" >/dev/null
  # TPM2B_PUBLIC, as the registrar stores it (base64)
  tb tpm2 readpublic -c "$IAK_HANDLE" -f tss -o "$PKI/iak.tpm2b" >/dev/null
  tb tpm2 readpublic -c "$IDEVID_HANDLE" -f tss -o "$PKI/idevid.tpm2b" >/dev/null
  make_ca trusted-ca
  make_ca rogue-ca
  issue trusted-ca "$PKI/iak.pub.pem" iak-good "$PKI/iak-good.pem"
  issue trusted-ca "$PKI/idevid.pub.pem" idevid-good "$PKI/idevid-good.pem"
  issue rogue-ca "$PKI/iak.pub.pem" iak-rogue "$PKI/iak-rogue.pem"
  issue rogue-ca "$PKI/idevid.pub.pem" idevid-rogue "$PKI/idevid-rogue.pem"
  # DER for the IDevID certificate: keylet reads PEM and DER
  openssl x509 -in "$PKI/idevid-good.pem" -outform der -out "$PKI/idevid-good.der"
  cp "$PKI/trusted-ca.pem" "$TRUSTED_CA_FILE"
}

# tcg_unique TEXT ECC: tpm2-tools' -u file (a TPMU_PUBLIC_ID as the C struct:
# little-endian sizes, fixed-size buffers): RSA TEXT, or ECC x = y = TEXT.
tcg_unique() {
  "$VENV_PY" -c 'import sys; t = sys.argv[1].encode(); n = len(t).to_bytes(2, "little")
if sys.argv[2] == "ecc": sys.stdout.buffer.write((n + t.ljust(128, b"\0")) * 2)
else: sys.stdout.buffer.write(n + t)' "$1" "$2"
}

# TCG policy digests (authPolicy) of the IAK and IDevID by name hash.
declare -A TCG_POLICY=(
  [iak-sha256]=5437182326e414fca797d5f174615a1641f61255797c3a2b22c21d120b2d1e07
  [idevid-sha256]=ad6b3a2284fd698a0710bf5cc1b9bdf15e2532e3f601fa4b93a6a8fa8de579ea
  [iak-sha384]=129d94ebf84556652c6eef43bbb757512ac87e52be7b349ca6ce4d826f749fcf672f51716c5cbb605f313bf345aab312
  [idevid-sha384]=4db1aa836d0b5615df6ee53a40ef70c61c217f4303d44695925972bc927006cfa5cbdf6dc18c4dbe329b2f1542c3dd33
  [iak-sha512]=8060d1fb31716a29e48a6e5fece088bcfc1b278fc162255e81c3eca3544cd44af94410c3715d561cccd9e39a6cb2646d43535bb54ea88710deb5f7836bd9b586
  [idevid-sha512]=7dd7500fd6c1b94f97a6af910da147301ef28f662fee06f225a4ccadda3b4e6b38e66b2f3ad5dee1a0503cd2daedb1e68cfe4f84b03a8cd22bb6a976f071a72f
)

# make_template_keys H [PERSIST]: the IAK and IDevID of TCG template H (H-1 to H-4)
# as keylet re-creates them, certified by the trusted CA; transient and flushed, or
# with PERSIST kept at ECC_IAK_HANDLE / ECC_IDEVID_HANDLE.
make_template_keys() {
  local h=$1 persist=${2:-} alg hash=sha256 iak_g idevid_g kind
  case $h in
    H-1) alg=rsa iak_g=rsa2048:rsapss-sha256:null idevid_g=rsa2048:null:null ;;
    H-2) alg=ecc iak_g=ecc256:ecdsa-sha256:null idevid_g=ecc256:ecdsa-sha256:null ;;
    H-3) alg=ecc hash=sha384 iak_g=ecc384:ecdsa-sha384:null idevid_g=ecc384:ecdsa-sha384:null ;;
    H-4) alg=ecc hash=sha512 iak_g=ecc521:ecdsa-sha512:null idevid_g=ecc521:ecdsa-sha512:null ;;
  esac
  for kind in iak idevid; do
    printf '%s' "${TCG_POLICY[$kind-$hash]}" | xxd -r -p >"$PKI/$kind-$hash.policy"
  done
  for kind in iak idevid; do
    local g=$iak_g attrs='fixedtpm|fixedparent|sensitivedataorigin|userwithauth|adminwithpolicy|sign'
    [[ $kind == iak ]] && attrs+='|restricted'
    [[ $kind == idevid ]] && g=$idevid_g
    tcg_unique "${kind^^}" "$alg" >"$PKI/$kind-$h.unique"
    tb tpm2 createprimary -C e -g "$hash" -G "$g" -a "$attrs" -L "$PKI/$kind-$hash.policy" \
      -u "$PKI/$kind-$h.unique" -c "$PKI/$kind-$h.ctx" >/dev/null
    tb tpm2 readpublic -c "$PKI/$kind-$h.ctx" -f pem -o "$PKI/$kind-$h.pub.pem" >/dev/null
    tb tpm2 readpublic -c "$PKI/$kind-$h.ctx" -f tss -o "$PKI/$kind-$h.tpm2b" >/dev/null
    tb tpm2 flushcontext -t # swtpm has no resource manager: each -c ctx loads a copy
    if [[ -n $persist ]]; then
      local handle=$ECC_IAK_HANDLE; [[ $kind == idevid ]] && handle=$ECC_IDEVID_HANDLE
      evict "$handle"
      tb tpm2 evictcontrol -C o -c "$PKI/$kind-$h.ctx" "$handle" >/dev/null
      tb tpm2 flushcontext -t
    fi
    issue trusted-ca "$PKI/$kind-$h.pub.pem" "$kind-$h" "$PKI/$kind-$h.pem"
  done
}

# The IAK and IDevID are DA-protected (TCG templates): a TPM that used them since its
# last orderly shutdown counts its next unclean restart as a dictionary-attack failure.
# An orderly reboot at the end keeps that out of the suites that follow.
suite_cleanup() {
  rm -f "$TRUSTED_CA_FILE"
  evict_device_keys 2>/dev/null || true
  tb tpm-reboot >/dev/null 2>&1 || say "swtpm did not come back after an orderly reboot"
}

# iak_agent NAME IAK_CERT IDEVID_CERT: a fresh keylet with the device identity on.
iak_agent() {
  fresh_agent "$1" enable_iak_idevid=true "iak_handle=$IAK_HANDLE" "idevid_handle=$IDEVID_HANDLE" \
    "iak_cert=$2" "idevid_cert=$3" "iak_password=$IAK_PASSWORD"
}

# registrar_log_mark / new_registrar_log: the registrar's log lines written since the mark.
registrar_log_mark() { LOG_MARK=$(wc -l <"$TB_STATE/logs/registrar.log"); }
new_registrar_log() { tail -n +"$((LOG_MARK + 1))" "$TB_STATE/logs/registrar.log"; }

# run_refused NAME: keylet run must exit non-zero within 60 s; its output in OUT.
run_refused() {
  local rc=0
  agent_render "$1"
  OUT=$(keylet_env "$1" timeout 60 "$KEYLET_BIN" run 2>&1) || rc=$?
  ((rc != 0 && rc != 124)) || { tail -n 10 <<<"$OUT" >&2; fail "keylet run: exit $rc (expected a refusal)"; }
  say "keylet exited $rc: $(grep -m1 'ERROR' <<<"$OUT" || tail -n 1 <<<"$OUT")"
}

# registrar_record UUID: the registrar's stored IAK/IDevID fields as JSON (its REST
# API does not show them), read from its database.
registrar_record() {
  "$VENV_PY" - "$TB_STATE/keylime/reg_data.sqlite" "$1" <<'PY'
import json, sqlite3, sys
db = sqlite3.connect(sys.argv[1])
row = db.execute("select iak_tpm, iak_cert, idevid_tpm, idevid_cert from registrarmain where agent_id = ?",
                 (sys.argv[2],)).fetchone() or [None] * 4
print(json.dumps(dict(zip(["iak_tpm", "iak_cert", "idevid_tpm", "idevid_cert"], row))))
PY
}

# der_b64 CERT_FILE: base64 DER of a PEM or DER certificate.
der_b64() { openssl x509 -in "$1" -inform "$([[ $1 == *.der ]] && echo der || echo pem)" -outform der | base64 -w0; }

scenario_accepted() {
  local reg
  iak_agent ok "$PKI/iak-good.pem" "$PKI/idevid-good.der"
  registrar_log_mark
  start_registered ok
  reg=$(registrar_record "$REG_UUID")
  assert_eq "$(jq -r .iak_tpm <<<"$reg")" "$(base64 -w0 "$PKI/iak.tpm2b")" "registrar iak_tpm vs the TPM's IAK"
  assert_eq "$(jq -r .idevid_tpm <<<"$reg")" "$(base64 -w0 "$PKI/idevid.tpm2b")" \
    "registrar idevid_tpm vs the TPM's IDevID"
  assert_eq "$(jq -r .iak_cert <<<"$reg")" "$(der_b64 "$PKI/iak-good.pem")" "registrar iak_cert"
  assert_eq "$(jq -r .idevid_cert <<<"$reg")" "$(der_b64 "$PKI/idevid-good.der")" "registrar idevid_cert"
  grep -q "Agent $REG_UUID AIK verified with IAK" <<<"$(new_registrar_log)" ||
    fail "the registrar's log does not show the AK verified with the IAK"
  tenant_add "$REG_UUID"
  wait_attested "$REG_UUID" 2 90 >/dev/null
  say "attested with PASS"
  # a restart registers again with the same keys (no 403) and keeps attesting
  local n0; n0=$(jq -r .regcount <<<"$(registrar_get "$REG_UUID")")
  agent_stop ok
  agent_start ok
  wait_registered "$REG_UUID" 30 $((n0 + 1)) >/dev/null
  wait_attested "$REG_UUID" 4 90 >/dev/null
  agent_stop ok
  assert_eq "$(transient_handles)" 0 "transient objects left in swtpm after keylet stopped"
  doctor ok -- # keylet stopped: swtpm takes one connection at a time
  expect tpm.iak ok
  expect tpm.idevid ok
}

# tamper_proxy PORT: forwards 127.0.0.1:PORT to the registrar's plain port and flips
# the last byte of iak_sign in registrations; stops by itself after 60 s.
tamper_proxy() {
  timeout 60 "$VENV_PY" - "$1" "$REGISTRAR_PORT" <<'PY' &
import base64, http.client, http.server, json, sys
listen, upstream = int(sys.argv[1]), int(sys.argv[2])
class Proxy(http.server.BaseHTTPRequestHandler):
    def forward(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.command == "POST" and body:
            doc = json.loads(body)
            if "iak_sign" in doc:
                sig = bytearray(base64.b64decode(doc["iak_sign"]))
                sig[-1] ^= 1
                doc["iak_sign"] = base64.b64encode(bytes(sig)).decode()
                body = json.dumps(doc).encode()
        c = http.client.HTTPConnection("127.0.0.1", upstream, timeout=10)
        c.request(self.command, self.path, body or None, {"Content-Type": "application/json"})
        r = c.getresponse(); data = r.read()
        self.send_response(r.status); self.send_header("Content-Length", str(len(data)))
        self.send_header("Content-Type", "application/json"); self.end_headers(); self.wfile.write(data)
    do_GET = do_POST = do_PUT = forward
    def log_message(self, *a): pass
http.server.ThreadingHTTPServer(("127.0.0.1", listen), Proxy).serve_forever()
PY
  PROXY_PID=$!
  local i; for ((i = 0; i < 50; i++)); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done
  fail "the tampering proxy did not start on port $1"
}

scenario_tampered() {
  local port=$((AGENT_PORT + 1)) # in the suite's port range, unused by the testbed
  tamper_proxy "$port"
  iak_agent tampered "$PKI/iak-good.pem" "$PKI/idevid-good.pem"
  agent_set tampered registrar_port "$port"
  registrar_log_mark
  run_refused tampered
  kill "$PROXY_PID" 2>/dev/null || true
  grep -q "refused the registration with the IAK and IDevID (400" <<<"$OUT" ||
    fail "keylet does not report the registrar's refusal: $(tail -n 3 <<<"$OUT")"
  grep -q "aik_tpm cannot be confirmed as having been created by the same TPM as the IAK" <<<"$(new_registrar_log)" ||
    fail "the registrar's log does not show the refused certification"
}

scenario_template() {
  local h reg n how
  for h in H-1 H-2 H-3 H-4 manual-H-3; do
    how=detect n=tmpl$h
    local settings=()
    if [[ $h == manual-* ]]; then
      h=${h#manual-} how=manual n=manual$h
      settings=(iak_idevid_template=manual iak_idevid_asymmetric_alg=ecc iak_idevid_name_alg=sha384)
    else
      make_template_keys "$h"
    fi
    fresh_agent "$n" enable_iak_idevid=true "iak_cert=$PKI/iak-$h.pem" "idevid_cert=$PKI/idevid-$h.pem" \
      "${settings[@]}"
    registrar_log_mark
    start_registered "$n"
    grep -q "re-creating the IAK from TCG template $h" "$E2E_TMP/$n/keylet.log" ||
      fail "keylet did not take template $h ($how)"
    reg=$(registrar_record "$REG_UUID")
    assert_eq "$(jq -r .iak_cert <<<"$reg")" "$(der_b64 "$PKI/iak-$h.pem")" "registrar iak_cert ($h)"
    grep -q "Agent $REG_UUID AIK verified with IAK" <<<"$(new_registrar_log)" ||
      fail "the registrar's log does not show the AK verified with the $h IAK"
    # both keys are flushed once used, not at exit
    grep -q "re-created IDevID is checked against idevid_cert and flushed" "$E2E_TMP/$n/keylet.log" ||
      fail "keylet did not flush the re-created IDevID"
    grep -q "re-created IAK has certified the AK and is flushed" "$E2E_TMP/$n/keylet.log" ||
      fail "keylet did not flush the re-created IAK after certifying"
    agent_stop "$n"
    assert_eq "$(transient_handles)" 0 "transient objects left in swtpm after keylet stopped ($h)"
    doctor "$n" --
    expect tpm.iak ok
    grep -q "re-created from template $h" <<<"$(detail_of tpm.iak)" || fail "doctor: $(detail_of tpm.iak)"
    assert_eq "$(transient_handles)" 0 "transient objects left in swtpm after keylet doctor ($h)"
  done
}

# The H-3 and H-4 keys persisted at the handles (made from the template, so no
# password): read there, certification verified (ECDSA with SHA-384, SHA-512), PASS.
scenario_ecc_handles() {
  local h n
  for h in H-3 H-4; do
    n=handles$h
    make_template_keys "$h" persist
    fresh_agent "$n" enable_iak_idevid=true "iak_handle=$ECC_IAK_HANDLE" "idevid_handle=$ECC_IDEVID_HANDLE" \
      "iak_cert=$PKI/iak-$h.pem" "idevid_cert=$PKI/idevid-$h.pem"
    registrar_log_mark
    start_registered "$n"
    assert_eq "$(jq -r .iak_tpm <<<"$(registrar_record "$REG_UUID")")" "$(base64 -w0 "$PKI/iak-$h.tpm2b")" \
      "registrar iak_tpm vs the TPM's $h IAK" # read before keylet holds swtpm's one connection
    grep -q "Agent $REG_UUID AIK verified with IAK" <<<"$(new_registrar_log)" ||
      fail "the registrar's log does not show the AK verified with the $h IAK"
    tenant_add "$REG_UUID"
    wait_attested "$REG_UUID" 2 90 >/dev/null
    say "$h keys at the handles: attested with PASS"
    agent_stop "$n"
    assert_eq "$(transient_handles)" 0 "transient objects left in swtpm after keylet stopped ($h)"
  done
}

scenario_wrong_cert() {
  iak_agent wrong "$PKI/idevid-good.pem" "$PKI/idevid-good.pem"
  run_refused wrong
  grep -q "idevid-good.pem (iak_cert) is not for the key at $IAK_HANDLE (iak_handle)" <<<"$OUT" ||
    fail "the error does not name the file and the handle: $(tail -n 3 <<<"$OUT")"
  ! grep -q "registering agent" <<<"$OUT" || fail "keylet contacted the registrar with a wrong certificate"
  doctor wrong --
  expect tpm.iak fail
  expect tpm.idevid ok
  grep -q "idevid-good.pem (iak_cert) is not for the key" <<<"$(detail_of tpm.iak)" ||
    fail "keylet doctor does not say why: $(detail_of tpm.iak)"
  local id; id=$(agent_identity wrong)
  [[ -z $(registrar_get "$(jq -r .uuid <<<"$id")") ]] || fail "the agent was registered anyway"
}

scenario_untrusted_ca() {
  iak_agent rogue "$PKI/iak-rogue.pem" "$PKI/idevid-rogue.pem"
  registrar_log_mark
  run_refused rogue
  grep -q "refused the registration with the IAK and IDevID (400" <<<"$OUT" ||
    fail "keylet does not report the registrar's refusal: $(tail -n 3 <<<"$OUT")"
  grep -q "tpm_cert_store" <<<"$OUT" || fail "keylet does not say what to check: $(tail -n 3 <<<"$OUT")"
  grep -q "iak_cert.*must contain a certificate issued by a CA present in the trust store" <<<"$(new_registrar_log)" ||
    fail "the registrar's log does not name the untrusted iak_cert"
}

e2e_init iak
command -v tpm2_createprimary >/dev/null || { fail "tpm2-tools is not installed (scripts/setup.sh installs it)"; exit 1; }
trap 'suite_cleanup; e2e_cleanup' EXIT
setup_device_identity
run_scenarios accepted wrong_cert untrusted_ca tampered template ecc_handles -- "$@"
