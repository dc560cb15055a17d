#!/usr/bin/env bash
# tests/e2e/package.sh - keylet's Debian package on this machine, against the real
# Keylime 7.14.3 registrar and verifier of the testbed (swtpm as the TPM).
#
# Usage: tests/e2e/package.sh [SCENARIO...]   (default: all)
#   lifecycle  scripts/build-deb.sh builds the amd64 package twice (revisions 1 and 2,
#              from the static binary of scripts/build-static.sh; a no-op build when it is
#              up to date). dpkg -i: the binary, unit, tmpfiles snippet and conffile are in
#              place, the system user keylime is in group tss, /var/lib/keylime is 0700.
#              keylet is started from /usr/bin/keylet the way keylet.service starts it
#              (user keylime, group keylime plus tss, umask 0077, no new privileges;
#              there is no systemd here) with the packaged /etc/keylime/agent.conf and the
#              testbed's settings in /etc/keylime/agent.conf.d/; the tenant adds it and the
#              verifier passes. dpkg -i of revision 2 while it runs, then a restart (what
#              the postinst's try-restart does under systemd): the same agent id, AK and
#              state file, a local edit of the conffile kept, the verifier passing.
#              dpkg -r: binary and unit gone, configuration and state kept. dpkg -P: the
#              configuration and /var/lib/keylime gone; the user keylime stays (Debian
#              practice). A user and group this test caused to exist are deleted again.
# Needs: root, dpkg, scripts/testbed.sh up; SKIP (never a pass) without root or dpkg, or
# when /etc/keylime or /var/lib/keylime hold files of another installation.
# Installs to /usr/bin, /etc/keylime, /var/lib/keylime and purges the package at the end,
# also when a check fails.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
TARGET=x86_64-unknown-linux-musl
STATIC_BIN=${CARGO_TARGET_DIR:-$ROOT/target}/$TARGET/release/keylet
# e2e_init wants a keylet binary; this suite runs the packaged one.
[[ -n ${KEYLET_BIN:-} || ! -x $STATIC_BIN ]] || export KEYLET_BIN=$STATIC_BIN
# shellcheck source=tests/e2e/lib.sh
source "$ROOT/tests/e2e/lib.sh"

STATE=/var/lib/keylime
CONF=/etc/keylime/agent.conf
SNIPPET=/etc/keylime/agent.conf.d/50-keylet-e2e-testbed.conf
STATE_FILE=$STATE/keylet-agent-state.bin

# dpkg ARGS...: dpkg, waiting (up to 2 min) while another dpkg or apt holds its lock.
dpkg_run() {
  local i out rc
  for ((i = 0; i < 60; i++)); do
    rc=0; out=$(DEBIAN_FRONTEND=noninteractive dpkg "$@" 2>&1 </dev/null) || rc=$?
    if ((rc != 0)) && grep -qi 'lock' <<<"$out"; then sleep 2; continue; fi
    printf '%s\n' "$out" >&2
    return "$rc"
  done
  fail "dpkg $*: the dpkg lock stayed taken for 2 minutes"
}
pkg_status() { dpkg-query -W -f='${db:Status-Abbrev}' keylet 2>/dev/null | tr -d ' ' || true; }
pkg_version() { dpkg-query -W -f='${Version}' keylet 2>/dev/null || true; }

# as_keylime CMD...: CMD as keylet.service runs keylet (User=keylime, Group=keylime,
# SupplementaryGroups=tss, UMask=0077, NoNewPrivileges), with an empty environment.
as_keylime() {
  umask 0077
  exec setpriv --reuid=keylime --regid=keylime --init-groups --no-new-privs \
    env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin RUST_LOG=info "$@"
}
pkg_start() {
  mkdir -p "$E2E_TMP/pkg"
  (as_keylime /usr/bin/keylet run) >>"$E2E_TMP/pkg/keylet.log" 2>&1 </dev/null &
  KEYLET_PID[pkg]=$!
  say "started /usr/bin/keylet as keylime (pid ${KEYLET_PID[pkg]})"
}
# The persisted identity, once the running keylet has written it (30 s).
pkg_identity() {
  local out i
  for ((i = 0; i < 150; i++)); do
    if out=$(as_keylime /usr/bin/keylet identity 2>/dev/null) && jq -e .uuid <<<"$out" >/dev/null 2>&1; then
      echo "$out"; return 0
    fi
    agent_alive pkg || { agent_log_tail pkg; fail "keylet exited before its identity was available"; return 1; }
    sleep 0.2
  done
  agent_log_tail pkg; fail "'keylet identity' gave no identity within 30 s"
}
status_field() { awk -v k="$2:" '$1 == k { $1 = ""; sub(/^ /, ""); print; exit }' "/proc/$1/status"; }
mode_owner() { stat -c '%a %U:%G' "$1"; }
md5() { md5sum "$1" | cut -d' ' -f1; }

USER_EXISTED=0 GROUP_EXISTED=0
# Leaves the machine as found: keylet stopped (scenario_cleanup), the package purged,
# the user and group this test caused to exist deleted.
pkg_cleanup() {
  rm -f "$SNIPPET"
  if [[ -n $(pkg_status) && $(pkg_status) != un ]]; then
    say "cleanup: dpkg --purge keylet"
    dpkg_run --purge keylet >/dev/null 2>&1 || say "cleanup: dpkg --purge keylet failed"
  fi
  if ((!USER_EXISTED)) && getent passwd keylime >/dev/null; then deluser --quiet --system keylime >/dev/null 2>&1 || true; fi
  if ((!GROUP_EXISTED)) && getent group keylime >/dev/null; then delgroup --quiet --system keylime >/dev/null 2>&1 || true; fi
}
pkg_on_exit() {
  local rc=$?
  scenario_cleanup || true
  pkg_cleanup
  exit "$rc"
}

scenario_lifecycle() {
  local deb1 deb2 uuid uuid2 id id2 pid kl_uid tss_gid r c0 c1 reg md5_state md5_conf
  ((EUID == 0)) || skip_scenario "installs a Debian package: needs root"
  { command -v dpkg-deb && command -v dpkg-query; } >/dev/null || skip_scenario "no dpkg on this machine"
  command -v setpriv >/dev/null || skip_scenario "no setpriv (util-linux) to start keylet as keylime"
  case $(pkg_status) in
    '' | un) ;;
    *) [[ $(dpkg-query -W -f='${Maintainer}' keylet) == *keylet@example.invalid* ]] ||
         skip_scenario "a package named keylet of another origin is installed"
       say "a keylet package is installed (an interrupted earlier run?): purging it first"
       dpkg_run --purge keylet >/dev/null ;;
  esac
  [[ ! -e /etc/keylime && ! -e $STATE ]] ||
    skip_scenario "/etc/keylime or $STATE exists: another Keylime installation's files are not touched"
  getent passwd keylime >/dev/null && USER_EXISTED=1
  getent group keylime >/dev/null && GROUP_EXISTED=1
  trap pkg_on_exit EXIT

  mkdir -p "$E2E_TMP/debs"
  deb1=$(bash "$ROOT/scripts/build-deb.sh" --target "$TARGET" --revision 1 --out "$E2E_TMP/debs" | tail -n 1)
  deb2=$(bash "$ROOT/scripts/build-deb.sh" --target "$TARGET" --revision 2 --bin "$STATIC_BIN" --out "$E2E_TMP/debs" | tail -n 1)
  say "packages: $(basename "$deb1"), $(basename "$deb2")"

  # ---- install
  dpkg_run -i "$deb1"
  assert_eq "$(pkg_status)" ii "package status after dpkg -i"
  assert_eq "$(pkg_version)" "$(dpkg-deb -f "$deb1" Version)" "installed version"
  /usr/bin/keylet --version >/dev/null || fail "/usr/bin/keylet --version failed"
  grep -qx 'ExecStart=/usr/bin/keylet run' /lib/systemd/system/keylet.service || fail "the unit does not start /usr/bin/keylet"
  [[ -f /usr/lib/tmpfiles.d/keylet-securityfs.conf ]] || fail "no tmpfiles.d snippet"
  dpkg-query -W -f='${Conffiles}' keylet | grep -q "^ $CONF " || fail "$CONF is not a conffile"
  grep -q '^\[agent\]' "$CONF" || fail "$CONF has no [agent] section"
  ! grep -qE '^[a-z_]+ *=' "$CONF" || fail "$CONF sets an option (it should only show the defaults, commented)"
  kl_uid=$(id -u keylime) tss_gid=$(getent group tss | cut -d: -f3)
  ((kl_uid < 1000)) || fail "keylime is not a system user (uid $kl_uid)"
  id -nG keylime | tr ' ' '\n' | grep -qx tss || fail "keylime is not in group tss ($(id -nG keylime))"
  assert_eq "$(getent passwd keylime | cut -d: -f6,7)" "$STATE:/usr/sbin/nologin" "keylime's home and shell"
  assert_eq "$(mode_owner "$STATE")" "700 keylime:keylime" "$STATE mode and owner"
  if command -v deb-systemd-helper >/dev/null; then
    [[ -L /etc/systemd/system/multi-user.target.wants/keylet.service ]] || fail "keylet.service is not enabled"
  fi
  say "installed $(pkg_version): user keylime ($kl_uid) in tss, $STATE 0700, unit enabled"

  # ---- configure as an operator would: the CA in keylime_dir, site settings in a snippet
  install -d -m 0700 -o keylime -g keylime "$STATE/cv_ca"
  install -m 0644 -o keylime -g keylime "$TLS/cacert.crt" "$STATE/cv_ca/cacert.crt"
  install -m 0644 -o keylime -g keylime /dev/null "$STATE/ima-empty"
  cat >"$SNIPPET" <<EOF
# keylet's package test: the loopback testbed
[agent]
port = $AGENT_PORT
contact_port = $AGENT_PORT
registrar_port = $REGISTRAR_PORT
tpm_device = "tcp://127.0.0.1:$SWTPM_PORT"
ima_ml_path = "$STATE/ima-empty"
measuredboot_ml_path = "$STATE/no-measured-boot-log"
EOF
  echo "# a local edit that an upgrade must keep" >>"$CONF"
  md5_conf=$(md5 "$CONF")

  # ---- run as keylime, attested by the real verifier
  tb reset >/dev/null 2>&1
  pkg_start
  id=$(pkg_identity)
  uuid=$(jq -r .uuid <<<"$id")
  r=$(wait_registered "$uuid" 60)
  reg=$(jq -r .regcount <<<"$r")
  pid=${KEYLET_PID[pkg]}
  assert_eq "$(status_field "$pid" Uid | cut -d' ' -f1)" "$kl_uid" "keylet's uid"
  status_field "$pid" Groups | tr ' ' '\n' | grep -qx "$tss_gid" || fail "keylet's groups lack tss: $(status_field "$pid" Groups)"
  assert_eq "$(mode_owner "$STATE_FILE")" "600 keylime:keylime" "agent state file"
  tenant_add "$uuid"
  r=$(wait_attested "$uuid" 5 90)
  assert_eq "$(jq -r .attestation_status <<<"$r")" PASS "attestation_status"
  c0=$(jq -r .attestation_count <<<"$r")
  say "registered as $uuid (regcount $reg), verifier PASS, $c0 attestations"
  md5_state=$(md5 "$STATE_FILE")

  # ---- upgrade while keylet runs, then restart it on the new binary
  dpkg_run -i "$deb2"
  assert_eq "$(pkg_status)" ii "package status after the upgrade"
  assert_eq "$(pkg_version)" "$(dpkg-deb -f "$deb2" Version)" "version after the upgrade"
  assert_eq "$(md5 "$CONF")" "$md5_conf" "$CONF after the upgrade (local edit kept)"
  [[ -f $SNIPPET ]] || fail "the upgrade removed $SNIPPET"
  assert_eq "$(mode_owner "$STATE")" "700 keylime:keylime" "$STATE after the upgrade"
  agent_stop pkg
  pkg_start
  wait_registered "$uuid" 60 $((reg + 1)) >/dev/null
  id2=$(pkg_identity)
  uuid2=$(jq -r .uuid <<<"$id2")
  assert_eq "$uuid2" "$uuid" "agent id after the upgrade"
  assert_eq "$(jq -r .aik_tpm <<<"$id2")" "$(jq -r .aik_tpm <<<"$id")" "AK after the upgrade"
  assert_eq "$(md5 "$STATE_FILE")" "$md5_state" "agent state file after the upgrade"
  r=$(wait_attested "$uuid" $((c0 + 3)) 90)
  c1=$(jq -r .attestation_count <<<"$r")
  assert_eq "$(jq -r .attestation_status <<<"$r")" PASS "attestation_status after the upgrade"
  say "upgraded to $(pkg_version): same id $uuid, re-registered, PASS ($c1 attestations)"

  # ---- remove: configuration and state stay
  verifier_delete "$uuid"
  agent_stop pkg
  dpkg_run -r keylet
  assert_eq "$(pkg_status)" rc "package status after dpkg -r"
  [[ ! -e /usr/bin/keylet ]] || fail "/usr/bin/keylet is left after dpkg -r"
  [[ ! -e /lib/systemd/system/keylet.service ]] || fail "the unit is left after dpkg -r"
  assert_eq "$(md5 "$CONF")" "$md5_conf" "$CONF after dpkg -r (kept)"
  assert_eq "$(md5 "$STATE_FILE")" "$md5_state" "agent state after dpkg -r (kept)"
  assert_eq "$(mode_owner "$STATE")" "700 keylime:keylime" "$STATE after dpkg -r"
  getent passwd keylime >/dev/null || fail "dpkg -r deleted the user keylime"
  say "removed: $CONF and $STATE_FILE kept"

  # ---- purge: the configuration and the state go, the user stays
  rm -f "$SNIPPET" # the site's own file, not the package's
  dpkg_run -P keylet
  [[ $(pkg_status) == '' || $(pkg_status) == un ]] || fail "package status after dpkg -P: $(pkg_status)"
  [[ ! -e $STATE ]] || fail "$STATE is left after dpkg -P: $(ls -A "$STATE")"
  [[ ! -e /etc/keylime ]] || fail "/etc/keylime is left after dpkg -P: $(find /etc/keylime)"
  [[ ! -e /etc/systemd/system/multi-user.target.wants/keylet.service ]] || fail "the unit's enablement is left after dpkg -P"
  getent passwd keylime >/dev/null || fail "dpkg -P deleted the user keylime (Debian keeps system users)"
  say "purged: /etc/keylime and $STATE gone, the user keylime kept"
}

e2e_init package
run_scenarios lifecycle -- "$@"
