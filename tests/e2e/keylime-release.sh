#!/usr/bin/env bash
# tests/e2e/keylime-release.sh - keylet with its DEFAULT configuration against an older
# Keylime release (default 7.12.2): registration, the release's own tenant add, PASS.
#
# Older tenants and verifiers take the agent's newest API version from /version without
# checking that they speak it; keylet's default (api_versions unset) offers no version
# newer than the registrar's own. docs/keylime-releases.md lists what differs.
#
# Usage: tests/e2e/keylime-release.sh [install | SCENARIO...]   (default: all, in this order)
#   install      only install the release's venv and config templates (scripts/setup.sh)
#   register     default config: registers; /version offers nothing newer than the
#                registrar's current API version; the log and keylet doctor say so
#   attest       the release's keylime_tenant -c add: PASS, >= 10 attestations (RSA AK:
#                7.12 cannot check ECDSA quotes, see docs/keylime-releases.md)
#   pinned       an explicit api_versions still wins: /version offers what it lists
# It brings up its OWN testbed (state dir, venv, ports below) and stops it afterwards
# (unless it was already running). Settings (environment):
#   KEYLET_RELEASE                Keylime release (default 7.12.2; also 7.13.1: scripts/testbed.sh
#                                 knows their pins)
#   KEYLET_RELEASE_TB_STATE       its testbed state (default /var/tmp/keylet-testbed-RELEASE, venv inside)
#   KEYLET_RELEASE_TB_SWTPM_PORT / _REGISTRAR_PORT / _REGISTRAR_TLS_PORT / _VERIFIER_PORT / _AGENT_PORT
#                                 (default 24521 / 18790 / 18791 / 18781 / 19202: not the default testbed's)
set -euo pipefail

RELEASE=${KEYLET_RELEASE:-7.12.2}
export KEYLET_TB_KEYLIME_VERSION=$RELEASE
export KEYLET_TB_STATE=${KEYLET_RELEASE_TB_STATE:-/var/tmp/keylet-testbed-$RELEASE}
export KEYLET_TB_VENV=$KEYLET_TB_STATE/venv
export KEYLET_TB_SWTPM_PORT=${KEYLET_RELEASE_TB_SWTPM_PORT:-24521}
export KEYLET_TB_REGISTRAR_PORT=${KEYLET_RELEASE_TB_REGISTRAR_PORT:-18790}
export KEYLET_TB_REGISTRAR_TLS_PORT=${KEYLET_RELEASE_TB_REGISTRAR_TLS_PORT:-18791}
export KEYLET_TB_VERIFIER_PORT=${KEYLET_RELEASE_TB_VERIFIER_PORT:-18781}
export KEYLET_TB_AGENT_PORT=${KEYLET_RELEASE_TB_AGENT_PORT:-19202}
TB=$(dirname "${BASH_SOURCE[0]}")/../../scripts/testbed.sh
if [[ ${1:-} == install ]]; then exec bash "$TB" install; fi

TB_WAS_UP=0
bash "$TB" ps 2>/dev/null | grep -q '^verifier: running' && TB_WAS_UP=1
if ((!TB_WAS_UP)); then trap 'bash "$TB" stop >/dev/null 2>&1 || true' EXIT; fi # until e2e_init
bash "$TB" install && bash "$TB" init && bash "$TB" start

# shellcheck source=tests/e2e/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# registrar_current: the registrar's own API version (its GET /version current_version).
registrar_current() {
  curl -sS --max-time 10 "http://127.0.0.1:$REGISTRAR_PORT/version" | jq -r '.results.current_version'
}

# agent_version: keylet's GET /version results, as the tenant and verifier see them.
agent_version() {
  curl -sS --max-time 10 --cacert "$TLS/cacert.crt" -k --cert "$TLS/client-cert.crt" \
    --key "$TLS/client-private.pem" "https://127.0.0.1:$AGENT_PORT/version" | jq -c .results
}

scenario_register() {
  local reg cur v
  fresh_agent def
  grep -q '^api_versions=' "$(agent_dir def)/cfg.kv" && fail "the default config sets api_versions"
  start_registered def
  reg=$(registrar_get "$REG_UUID")
  assert_eq "$(jq -r .aik_tpm <<<"$reg")" "$(agent_identity def | jq -r .aik_tpm)" "registrar aik_tpm"
  cur=$(registrar_current)
  v=$(agent_version)
  say "registrar $RELEASE current API $cur; keylet /version: $v"
  assert_eq "$(jq -r .supported_version <<<"$v")" "$cur" "keylet's newest offered API version vs the registrar's"
  jq -e --arg c "$cur" '[.supported_versions[] | select((split(".") | map(tonumber)) > ($c | split(".") | map(tonumber)))] | length == 0' \
    <<<"$v" >/dev/null || fail "keylet offers versions newer than the registrar's $cur: $v"
  [[ $(grep -c "offering agent API versions" "$(agent_dir def)/keylet.log") == 1 ]] ||
    fail "keylet did not log its API version choice exactly once: $(grep -i "api version" "$(agent_dir def)/keylet.log")"
  agent_stop def
  # keylet doctor explains the choice in its registrar check.
  v=$(keylet_env def "$KEYLET_BIN" doctor --json | jq -r '.checks[] | select(.name == "registrar") | .detail') || true
  [[ $v == *"offering agent API versions 2.1 to $cur (api_versions unset"* ]] ||
    fail "keylet doctor's registrar check does not explain the offered versions: $v"
}

scenario_attest() {
  local uuid r0 r1 c0 c1
  fresh_agent att
  start_registered att; uuid=$REG_UUID
  tenant_add "$uuid"
  r0=$(wait_attested "$uuid" 1 60)
  c0=$(jq -r .attestation_count <<<"$r0")
  say "first attestation by the $RELEASE verifier (count $c0); waiting for 10 more"
  r1=$(wait_attested "$uuid" $((c0 + 10)) 60)
  c1=$(jq -r .attestation_count <<<"$r1")
  assert_ge "$((c1 - c0))" 10 "attestations in the window"
  assert_eq "$(jq -r .operational_state <<<"$r1")" 3 "operational_state (3 = Get Quote)"
  # 7.14 reports PASS; older releases have no attestation_status field.
  [[ $(jq -r '.attestation_status // "PASS"' <<<"$r1") == PASS ]] || fail "attestation_status: $(jq -c . <<<"$r1")"
  assert_eq "$(jq -r .hash_alg <<<"$r1")" sha256 "verifier hash_alg"
  assert_eq "$(jq -r .sign_alg <<<"$r1")" rsassa "verifier sign_alg"
  say "verifier $RELEASE: enc_alg $(jq -r .enc_alg <<<"$r1"), $((c1 - c0)) attestations in the window"
  verifier_delete "$uuid"
  agent_stop att
}

scenario_pinned() {
  local v
  fresh_agent pin api_versions="2.1, 2.2, 2.3, 2.4, 2.5, 2.6"
  start_registered pin
  v=$(agent_version)
  assert_eq "$(jq -r .supported_version <<<"$v")" 2.6 "newest offered version with api_versions pinned to 2.1-2.6"
  agent_stop pin
}

e2e_init "keylime-$RELEASE"
if ((!TB_WAS_UP)); then
  release_cleanup() { # e2e_cleanup (it reads $?), then stop the testbed this suite started
    local rc=$?
    set +e; (exit "$rc"); e2e_cleanup
    bash "$TB" stop >/dev/null 2>&1; exit "$rc"
  }
  trap release_cleanup EXIT
fi
say "Keylime $RELEASE testbed: $TB_STATE (REST $REST_API)"
run_scenarios register attest pinned -- "$@"
