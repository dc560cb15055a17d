#!/usr/bin/env bash
# tests/e2e/openrc.sh - dist/openrc/keylet under Debian 12's OpenRC (0.45.2), against the
# real Keylime registrar/verifier and swtpm of the testbed.
#
# Each scenario runs in a private mount and pid namespace (unshare): OpenRC mounted over /usr
# (read-only), /etc, /var/lib and /var/log as overlays whose writes stay in the run directory,
# /run and the cgroup tree as tmpfs. dist/openrc/keylet is installed as /etc/init.d/keylet,
# /etc/conf.d/keylet names the test's agent.conf, keylet and respawn_delay=1; stand-ins for
# the services keylet needs (net, localmount) do nothing (the host's are up).
#
# Usage: tests/e2e/openrc.sh [SCENARIO...]   (default: all, in this order)
#   supervise     the dependencies OpenRC records (need net localmount, after tpm2-abrmd
#                 firewall, use logger dns); `/etc/init.d/keylet start` starts net and
#                 localmount, then keylet under supervise-daemon with umask 0077,
#                 RUST_LOG=info, conf.d's KEYLIME_AGENT_CONFIG and /var/lib/keylime 0700;
#                 keylet registers, the tenant adds it, the verifier passes. keylet killed
#                 with SIGKILL: the same supervise-daemon starts it again, same agent id,
#                 PASS again. `rc-service keylet stop`: keylet logs "SIGTERM: stopping",
#                 flushes its AK and is not restarted; no keylet, supervise-daemon or TPM
#                 object is left
#   config_error  a configuration mistake (keylet exits 2): supervise-daemon starts keylet
#                 again whatever the exit code, respawn_max=2 times, then gives up (stopped)
# Needs: root (namespaces, mounts), scripts/testbed.sh up, a keylet build, OpenRC unpacked
# by scripts/setup.sh into KEYLET_OPENRC_ROOT (default /var/tmp/keylet-openrc; not installed
# on the host: Debian's package would replace sysv-rc).
set -euo pipefail
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SELF=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")
OPENRC_ROOT=${KEYLET_OPENRC_ROOT:-/var/tmp/keylet-openrc}/root
RESPAWN_DELAY=1

# ---------------------------------------------------------------------------- in the namespace
# private_overlay DIR NAME: DIR as the host has it, writes kept in $E2E_TMP/ns/NAME/upper.
private_overlay() {
  mkdir -p "$E2E_TMP/ns/$2/upper" "$E2E_TMP/ns/$2/work"
  mount -t overlay "keylet-e2e-$2" \
    -o "lowerdir=$1,upperdir=$E2E_TMP/ns/$2/upper,workdir=$E2E_TMP/ns/$2/work" "$1"
}

# A booted OpenRC's view of the host, in this mount namespace only.
ns_setup() {
  mount -t tmpfs -o mode=0755 keylet-e2e-run /run
  mount -t overlay keylet-e2e-openrc -o "lowerdir=$OPENRC_ROOT/usr:/usr" /usr # read-only
  private_overlay /etc etc
  private_overlay /var/lib var-lib
  private_overlay /var/log var-log
  # openrc-run puts each service in a cgroup of its own: here, directories in a tmpfs
  mount -t tmpfs -o mode=0755 keylet-e2e-cgroup /sys/fs/cgroup
  mkdir /sys/fs/cgroup/unified
  # Debian's rc.conf, no other service than this suite's
  rm -rf /etc/init.d /etc/conf.d /etc/runlevels /etc/rc.conf.d /var/lib/keylime
  mkdir -p /etc/init.d /etc/conf.d /etc/insserv.conf.d
  cp -a "$OPENRC_ROOT/etc/rc.conf" "$OPENRC_ROOT/etc/runlevels" /etc/
  : >/etc/insserv.conf
  # what OpenRC's boot leaves in /run: its state directories and the runlevel
  mkdir -p /run/openrc/{daemons,exclusive,failed,hotplugged,inactive,options,scheduled,started,starting,stopping,tmp,wasinactive}
  echo default >/run/openrc/softlevel
}

# The services keylet needs, as a host that has booted would have them: started already
# (nothing to do in a namespace that shares the host's network and mounts); each notes
# that OpenRC started it.
ns_standins() {
  printf '#!/sbin/openrc-run\ndescription="the network (stand-in)"\ndepend() { provide net; }\nstart() { echo networking >>/run/keylet-e2e-started; }\n' >/etc/init.d/networking
  printf '#!/sbin/openrc-run\ndescription="local file systems (stand-in)"\nstart() { echo localmount >>/run/keylet-e2e-started; }\n' >/etc/init.d/localmount
  chmod 0755 /etc/init.d/networking /etc/init.d/localmount
}

# deps_of TYPE: keylet's dependencies of TYPE (ineed, iafter, iuse) in OpenRC's cache.
deps_of() {
  local n
  n=$(sed -n "s/^depinfo_\([0-9]*\)_service='keylet'\$/\1/p" /run/openrc/deptree)
  [[ -n $n ]] || { fail "keylet is not in OpenRC's dependency cache"; return 1; }
  sed -n "s/^depinfo_${n}_$1_[0-9]*='\(.*\)'\$/\1/p" /run/openrc/deptree | xargs
}
# child_pid: keylet's pid as supervise-daemon recorded it (empty when none runs).
child_pid() {
  local p
  p=$(cat /run/openrc/options/keylet/child_pid 2>/dev/null) || return 1
  [[ -n $p ]] && kill -0 "$p" 2>/dev/null && echo "$p"
}
start_count() { cat /run/openrc/options/keylet/start_count 2>/dev/null || echo 0; }
keylet_supervised() { child_pid >/dev/null; }
keylets() { pgrep -x keylet | tr '\n' ' ' || true; }
# (the command name is cut to 15 characters: match the command line)
supervisors() { pgrep -f '^supervise-daemon keylet ' | tr '\n' ' ' || true; }
no_supervisor() { [[ -z $(supervisors) ]]; }
keylet_log() { cat /var/log/keylet.log 2>/dev/null || true; }
vm_log_count() { keylet_log | grep -c -F -- "$1" || true; }
# a keylet other than PID runs under OpenRC
respawned() { local p; p=$(child_pid) && [[ $p != "$1" ]]; }
status_field() { awk -v k="$2:" '$1 == k { print $2; exit }' "/proc/$1/status"; }
env_of() { tr '\0' '\n' <"/proc/$1/environ" | grep -x -F -- "$2" >/dev/null; }

ns_supervise() {
  local uuid pid pid2 sv t0 rc r count starts mode state i
  cat >/etc/conf.d/keylet <<EOF
KEYLIME_AGENT_CONFIG=$E2E_TMP/or/keylet.toml
KEYLET_BIN=$KEYLET_BIN
respawn_delay=$RESPAWN_DELAY
EOF
  tb reset >/dev/null 2>&1
  agent_new or
  agent_render or
  say "OpenRC $(cat "$OPENRC_ROOT/.version"): the order of dist/keylet.service"
  /etc/init.d/keylet ineed >/dev/null # OpenRC caches every script's dependencies
  assert_eq "$(deps_of ineed)" "net localmount" "need"
  assert_eq "$(deps_of iafter)" "tpm2-abrmd firewall" "after"
  assert_eq "$(deps_of iuse)" "logger dns" "use"
  assert_eq "$(/etc/init.d/keylet ineed | xargs)" "networking localmount" "the services keylet needs"

  t0=$SECONDS
  timeout 60 /etc/init.d/keylet start || fail "/etc/init.d/keylet start failed"
  assert_eq "$(sort /run/keylet-e2e-started 2>/dev/null | xargs)" "localmount networking" \
    "services OpenRC started before keylet (need net localmount)"
  wait_for 20 "keylet under supervise-daemon" keylet_supervised
  pid=$(child_pid)
  sv=$(supervisors)
  [[ $sv =~ ^[0-9]+\ $ ]] || fail "expected one supervise-daemon, found pids '$sv'"
  assert_eq "$(keylets)" "$pid " "keylet processes (supervise-daemon's child only)"
  assert_eq "$(readlink "/proc/$pid/exe")" "$(readlink -f "$KEYLET_BIN")" "keylet's executable"
  assert_eq "$(status_field "$pid" Umask)" 0077 "keylet's umask"
  env_of "$pid" RUST_LOG=info || fail "keylet's environment has no RUST_LOG=info"
  env_of "$pid" "KEYLIME_AGENT_CONFIG=$E2E_TMP/or/keylet.toml" ||
    fail "keylet's environment does not name the conf.d KEYLIME_AGENT_CONFIG"
  mode=$(stat -c '%a %U' /var/lib/keylime) || fail "start_pre made no /var/lib/keylime"
  assert_eq "$mode" "700 root" "/var/lib/keylime mode and owner"
  KEYLET_PID[or]=$pid # for agent_identity (it stops waiting when keylet is gone)
  uuid=$(jq -r .uuid <<<"$(agent_identity or)")
  wait_registered "$uuid" 30 >/dev/null
  say "keylet $uuid (pid $pid) registered $((SECONDS - t0)) s after start"
  tenant_add "$uuid"
  r=$(wait_attested "$uuid" 3 60)
  assert_eq "$(jq -r .attestation_status <<<"$r")" PASS "attestation_status under OpenRC"
  assert_eq "$(bash "$TB_SCRIPT" status "$uuid" | jq -r .attestation_status)" PASS "testbed.sh status"
  say "PASS ($(jq -r .attestation_count <<<"$r") attestations) $((SECONDS - t0)) s after start"

  count=$(jq -r .attestation_count <<<"$(verifier_get "$uuid")")
  starts=$(start_count)
  kill -KILL "$pid"
  t0=$SECONDS
  wait_for $((RESPAWN_DELAY + 20)) "supervise-daemon to start keylet again" respawned "$pid"
  pid2=$(child_pid)
  say "keylet killed (SIGKILL, pid $pid); supervise-daemon started pid $pid2 $((SECONDS - t0)) s later"
  assert_eq "$(supervisors)" "$sv" "supervise-daemon (the same one)"
  assert_eq "$(keylets)" "$pid2 " "keylet processes after the restart"
  assert_eq "$(start_count)" $((starts + 1)) "supervise-daemon's count of restarts"
  state=0; /etc/init.d/keylet status >/dev/null 2>&1 || state=$?
  assert_eq "$state" 0 "openrc-run status after the restart (0: started)"
  KEYLET_PID[or]=$pid2
  assert_eq "$(jq -r .uuid <<<"$(agent_identity or)")" "$uuid" "agent id after the restart"
  r=$(wait_attested "$uuid" $((count + 3)) 90)
  assert_eq "$(jq -r .attestation_status <<<"$r")" PASS "attestation_status after the restart"
  say "PASS again, $(jq -r .attestation_count <<<"$r") attestations, $((SECONDS - t0)) s after the SIGKILL"

  assert_eq "$(vm_log_count 'SIGTERM: stopping')" 0 "SIGTERM lines before the stop"
  t0=$SECONDS
  timeout 60 rc-service keylet stop || fail "rc-service keylet stop failed"
  wait_gone "$pid2" 10 || fail "keylet (pid $pid2) still runs after the stop"
  say "rc-service keylet stop: keylet gone after $((SECONDS - t0)) s"
  assert_eq "$(vm_log_count 'SIGTERM: stopping')" 1 "keylet's log of the SIGTERM"
  assert_eq "$(vm_log_count 'flushed the AK')" 1 "keylet's log of its AK flushed on the stop"
  wait_for 10 "supervise-daemon to exit" no_supervisor
  rc=0; /etc/init.d/keylet status >/dev/null 2>&1 || rc=$?
  assert_eq "$rc" 3 "openrc-run status after the stop (3: stopped)"
  # Nothing may start it again: watch for three respawn delays.
  for ((i = 0; i < RESPAWN_DELAY * 30; i++)); do
    [[ -z $(keylets) ]] || fail "a keylet runs again after the stop: pid $(keylets)"
    sleep 0.1
  done
  assert_eq "$(transient_handles)" 0 "transient TPM objects left"
  verifier_delete "$uuid"
}

# A configuration mistake (exit 2) is restarted too: supervise-daemon does not look at the
# exit code (the unit's RestartPreventExitStatus=2 has no OpenRC equivalent); it gives up
# after respawn_max restarts within respawn_period.
ns_config_error() {
  local rc
  agent_new bad
  agent_set bad metrics_listen 0.0.0.0:9
  agent_render bad
  cat >/etc/conf.d/keylet <<EOF
KEYLIME_AGENT_CONFIG=$E2E_TMP/bad/keylet.toml
KEYLET_BIN=$KEYLET_BIN
respawn_delay=$RESPAWN_DELAY
respawn_max=2
respawn_period=60
EOF
  timeout 60 /etc/init.d/keylet start || fail "/etc/init.d/keylet start failed"
  wait_for 30 "supervise-daemon to give up" no_supervisor
  assert_eq "$(vm_log_count 'metrics_allow_remote = true')" 3 "keylet's starts (1 + respawn_max)"
  assert_eq "$(keylets)" "" "keylet processes"
  rc=0; /etc/init.d/keylet status >/dev/null 2>&1 || rc=$?
  assert_eq "$rc" 3 "openrc-run status once supervise-daemon gave up (3: stopped)"
  say "keylet exited 2 three times (start + respawn_max=2), then supervise-daemon gave up"
}

# ---------------------------------------------------------------------------- the scenarios
# in_namespace NAME: ns_NAME in a namespace of its own, prepared by ns_setup.
in_namespace() {
  local rc=0
  ((EUID == 0)) || skip_scenario "needs root (mount and pid namespaces)"
  [[ -x $OPENRC_ROOT/usr/sbin/openrc-run && -s $OPENRC_ROOT/.version ]] ||
    fail "no OpenRC in $OPENRC_ROOT: run scripts/setup.sh"
  # The namespace's first process is the suite's own inner run: when it ends, the kernel
  # ends everything it started (supervise-daemon, keylet) and its mounts go with it.
  rm -rf "$E2E_TMP/ns"
  unshare --mount --pid --fork --mount-proc bash "$SELF" --in-namespace "$E2E_TMP" "$KEYLET_BIN" "$1" || rc=$?
  if ((rc != 0)); then
    say "--- /var/log/keylet.log in the namespace:"
    tail -n 30 "$E2E_TMP/ns/var-log/upper/keylet.log" >&2 2>/dev/null || true
    tb tpm-flush >/dev/null 2>&1 || true # a keylet killed with the namespace flushes nothing
  fi
  return "$rc"
}
scenario_supervise() { in_namespace supervise; }
scenario_config_error() { in_namespace config_error; }

if [[ ${1:-} == --in-namespace ]]; then
  E2E_SUITE=openrc E2E_TMP=$2 KEYLET_BIN=$3
  ns_setup
  ns_standins
  install -m 0755 "$E2E_ROOT/dist/openrc/keylet" /etc/init.d/keylet
  "ns_$4"
  exit 0
fi
e2e_init openrc
run_scenarios supervise config_error -- "$@"
