#!/usr/bin/env bash
# tests/vm/run.sh - keylet on a real Linux kernel: Debian 12's kernel under QEMU (TCG, no
# KVM needed), booted by OVMF through Debian's signed shim and grub, one swtpm per guest
# attached as tpm-crb, keylet (static) on /dev/tpmrm0 with the kernel's IMA list and the
# firmware's UEFI event log, attested by the real Keylime 7.14.3 of scripts/testbed.sh.
#
# Usage: tests/vm/run.sh [SCENARIO...]   (default: all, in this order)
#        tests/vm/run.sh --prepare       only the apt packages, the kernel and the boot image
#   register      keylet registers (the tenant checks the EK certificate against the swtpm
#                 CA) and is added with a runtime policy made by keylime-policy from the
#                 guest's own IMA list and a measured-boot policy made from its own event
#                 log: PASS, >= 10 attestations; prints boot time, keylet start -> first
#                 PASS and keylet's RSS in the guest
#   unknown_exec  the guest runs an executable not in the runtime policy: the verifier
#                 fails the agent with the IMA event naming that file
#   reboot        orderly guest reboot: same id and AK, re-registered, PASS again without
#                 a new tenant add (the IMA list and the PCRs start over)
#   power_loss    QEMU killed (no TPM2_Shutdown) and started again, three times: keylet
#                 comes back each time and the verifier passes it again
#   doctor        keylet doctor in the guest: every TPM, log and identity check OK on
#                 /dev/tpmrm0
#   confine       keylet confined itself with Landlock and its seccomp filter (the kernel
#                 shows it in filter mode) in Debian's kernel and attests (PASS);
#                 its client CA made a symlink to a copy outside its paths, readable by
#                 keylet's user: on SIGHUP the kernel refuses the open (EACCES), keylet keeps
#                 its TLS configuration and PASSes on; pointed back, the reload succeeds;
#                 keylet restarted with confine = false (no filter) reloads through the same
#                 symlink
#   initd         keylet started at boot by dist/init.d/keylet (busybox sh), attested (PASS);
#                 killed with SIGKILL, restarted by the script, PASS again; the script's
#                 stop sends SIGTERM: keylet stops in order and nothing restarts it
# Needs: root (apt-get, image ownership), scripts/testbed.sh up. Installs its apt packages
# (tests/vm/image.sh), fetches Debian's kernel, shim and grub once into KEYLET_VM_CACHE
# (default /var/tmp/keylet-vm) and builds the static keylet (scripts/build-static.sh)
# unless KEYLET_VM_BIN names one.
# Settings: KEYLET_VM_PORT (default 19100): guest N's agent port is forwarded from
# 127.0.0.1:KEYLET_VM_PORT+N; KEYLET_VM_PORT+20 (and +21) manufactures the guests'
# TPMs. KEYLET_VM_BOOT_TIMEOUT (240 s), KEYLET_VM_MEM (512 MiB), KEYLET_E2E_KEEP=1.
set -euo pipefail
VM_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
E2E_SUITE=vm
# shellcheck source=tests/e2e/lib.sh
source "$VM_DIR/../e2e/lib.sh"
# shellcheck source=tests/vm/image.sh
source "$VM_DIR/image.sh"
# shellcheck source=tests/vm/vm.sh
source "$VM_DIR/vm.sh"

VM_PORT=${KEYLET_VM_PORT:-19100}
VM_TPM_MFG_PORT=$((VM_PORT + 20))
VERIFIER_LOG=$TB_STATE/logs/verifier.log

field() { jq -r ".$1" <<<"$2"; }

# guest_up NAME N: a new guest (own TPM, forwarded port KEYLET_VM_PORT+N) booted, keylet
# registered: sets G_UUID, G_AK, G_FWD.
guest_up() {
  local n=$1 i id=
  G_FWD=$((VM_PORT + $2))
  tb reset >/dev/null 2>&1
  vm_new "$n" "$G_FWD"
  vm_boot "$n"
  T_KEYLET=$SECONDS # /init starts keylet right before it answers commands
  for ((i = 0; i < 60; i++)); do
    id=$(vm_keylet "$n" identity 2>/dev/null) && jq -e .uuid <<<"$id" >/dev/null 2>&1 && break
    id=; sleep 2
  done
  [[ -n $id ]] || { tail -n 30 "$(vm_dir "$n")/console.log" >&2; fail "keylet in $n gave no identity within 120 s"; return 1; }
  G_UUID=$(jq -r .uuid <<<"$id") G_AK=$(jq -r .aik_tpm <<<"$id")
  wait_registered "$G_UUID" 120 >/dev/null
  T_REGISTERED=$((SECONDS - T_KEYLET))
  say "keylet in $n registered as $G_UUID (${T_REGISTERED} s after the guest answered)"
  # keylet holds the kernel's resource manager, not the raw TPM (no tpm_device set).
  # shellcheck disable=SC2016 # expanded in the guest
  grep -q '/dev/tpmrm0' < <(vm_exec "$n" 'ls -l /proc/$(keylet_pid)/fd') ||
    fail "keylet in $n does not hold /dev/tpmrm0 open"
}

# guest_policies NAME: runtime and measured-boot policies made by keylime-policy from the
# IMA list and the UEFI event log of the running guest.
guest_policies() {
  local n=$1 d entries; d=$(vm_dir "$1")
  vm_exec "$n" 'cat /sys/kernel/security/ima/ascii_runtime_measurements' >"$d/ima.log"
  vm_exec "$n" 'cat /sys/kernel/security/tpm0/binary_bios_measurements' >"$d/bios.bin"
  entries=$(wc -l <"$d/ima.log")
  [[ $(awk 'NR == 1 { print $5 }' "$d/ima.log") == boot_aggregate ]] ||
    fail "the guest's IMA list does not start with boot_aggregate"
  awk '$5 == "/mnt/host/keylet" { f = 1 } END { exit !f }' "$d/ima.log" ||
    fail "the guest's IMA list has no entry for /mnt/host/keylet"
  say "guest IMA list: $entries entries ($(awk '{ print $3 }' "$d/ima.log" | sort -u | tr '\n' ' ')); UEFI event log: $(stat -c %s "$d/bios.bin") bytes"
  tb policy create runtime -m "$d/ima.log" -o "$d/runtime-policy.json" >"$d/policy.log" 2>&1 ||
    { tail "$d/policy.log" >&2; fail "keylime-policy create runtime failed"; return 1; }
  tb policy create measured-boot -e "$d/bios.bin" -o "$d/mb-policy.json" \
    >>"$d/policy.log" 2>&1 || { tail "$d/policy.log" >&2; fail "keylime-policy create measured-boot failed"; return 1; }
}

# attested NAME N MIN: guest_up, policies, tenant add; waits for MIN attestations (PASS).
attested() {
  local n=$1 d; d=$(vm_dir "$1")
  guest_up "$n" "$2"
  guest_policies "$n"
  local t_add=$SECONDS
  tenant_add "$G_UUID" "$G_FWD" --runtime-policy "$d/runtime-policy.json" --mb-policy "$d/mb-policy.json"
  wait_attested "$G_UUID" 1 120 >/dev/null
  T_FIRST_PASS=$((SECONDS - T_KEYLET)) T_ADD_PASS=$((SECONDS - t_add))
  R=$(wait_attested "$G_UUID" "$3" $((30 + 6 * $3)))
  assert_eq "$(field attestation_status "$R")" PASS "attestation_status"
  assert_eq "$(field has_runtime_policy "$R")" 1 "verifier has_runtime_policy"
  assert_eq "$(field has_mb_refstate "$R")" 1 "verifier has_mb_refstate"
}

scenario_register() {
  trap 'vm_cleanup; scenario_cleanup' EXIT
  local rss
  attested reg 1 10
  # shellcheck disable=SC2016 # expanded in the guest
  rss=$(vm_exec reg 'grep VmRSS /proc/$(keylet_pid)/status' | awk '{ print $2 }')
  say "PASS x$(field attestation_count "$R") with runtime + measured-boot policies"
  say "vm-bench: QEMU start -> guest answers ${VM_BOOT_SECS} s (kernel at /init: $(grep -a 'keylet-vm: up after' "$(vm_dir reg)/console.log" | tail -n 1 | awk '{ print $4 }') s); keylet start -> registered ${T_REGISTERED} s, -> first PASS ${T_FIRST_PASS} s (incl. keylime-policy and tenant add; tenant add -> first PASS ${T_ADD_PASS} s); keylet VmRSS ${rss} kB after $(field attestation_count "$R") quotes"
}

scenario_unknown_exec() {
  trap 'vm_cleanup; scenario_cleanup' EXIT
  local r lines
  attested unk 2 3
  lines=$(wc -l <"$VERIFIER_LOG")
  vm_exec unk 'printf "#!/bin/sh\necho not in the policy\n" >/mnt/host/not-in-policy
chmod 0755 /mnt/host/not-in-policy; /mnt/host/not-in-policy' >/dev/null
  r=$(wait_failed "$G_UUID" 120)
  say "verifier: $(jq -c '{operational_state, attestation_status, last_event_id}' <<<"$r")"
  [[ $(field last_event_id "$r") == *ima* ]] || fail "the failure is not an IMA event: $(field last_event_id "$r")"
  # Not `tail | grep -m1`: under pipefail, tail ended by SIGPIPE once grep is done fails it.
  grep -m1 '/mnt/host/not-in-policy' < <(tail -n +$((lines + 1)) "$VERIFIER_LOG") >&2 ||
    fail "the verifier's log does not name /mnt/host/not-in-policy"
}

# back_again NAME COUNT SINCE: same id and AK as before, and the verifier passes keylet
# again (attestation_count > COUNT, a successful attestation after SINCE) without an add.
back_again() {
  local n=$1 c=$2 since=$3 id r
  id=$(vm_keylet "$n" identity)
  assert_eq "$(jq -r .uuid <<<"$id")" "$G_UUID" "agent id after the restart"
  assert_eq "$(jq -r .aik_tpm <<<"$id")" "$G_AK" "AK after the restart"
  r=$(wait_attested "$G_UUID" $((c + 3)) 240) ||
    { sed 's/\x1b\[[0-9;]*m//g' "$(vm_dir "$n")/console.log" | grep -a 'ERROR' | tail -n 3 >&2; return 1; }
  assert_eq "$(field attestation_status "$r")" PASS "attestation_status after the restart"
  (($(field last_successful_attestation "$r") > since)) ||
    fail "no successful attestation after the restart (last $(field last_successful_attestation "$r"), restart $since)"
  C=$(field attestation_count "$r")
}

# boots_of NAME: how many times the guest's /init has come up (its console line).
boots_of() { grep -ac 'keylet-vm: up after' "$(vm_dir "$1")/console.log" || true; }
# booted_since NAME N: the guest came up more than N times.
booted_since() { (($(boots_of "$1") > $2)); }

scenario_reboot() {
  trap 'vm_cleanup; scenario_cleanup' EXIT
  local reg0 t boots
  attested rb 3 3
  C=$(field attestation_count "$R") reg0=$(registrar_get "$G_UUID" | jq -r .regcount)
  t=$(date +%s) boots=$(boots_of rb)
  vm_exec rb orderly_reboot >/dev/null
  # The guest answers until it goes down: wait for its next boot's line first.
  wait_for "${KEYLET_VM_BOOT_TIMEOUT:-240}" "guest rb to boot again" booted_since rb "$boots"
  vm_wait_ready rb "${KEYLET_VM_BOOT_TIMEOUT:-240}"
  wait_registered "$G_UUID" 120 $((reg0 + 1)) >/dev/null
  back_again rb "$C" "$t"
  say "rebooted: re-registered (regcount $((reg0 + 1))), PASS again (count $C)"
}

scenario_power_loss() {
  trap 'vm_cleanup; scenario_cleanup' EXIT
  local i t
  attested pl 4 3
  C=$(field attestation_count "$R")
  for i in 1 2 3; do
    say "power cut $i/3"
    t=$(date +%s)
    vm_kill pl
    vm_boot pl
    back_again pl "$C" "$t"
  done
  say "keylet's log lines about the TPM clock: $(grep -ci 'clock' "$(vm_dir pl)/console.log" || true)"
}

scenario_doctor() {
  trap 'vm_cleanup; scenario_cleanup' EXIT
  local doc rc=0 bad
  guest_up doc 5
  doc=$(vm_keylet doc doctor --json --ek-ca /mnt/host/ek-ca) || rc=$?
  jq -e .checks <<<"$doc" >/dev/null || { fail "keylet doctor printed no JSON: $doc"; return 1; }
  bad=$(jq -c '[.checks[] | select(.name | test("^(tpm|logs|identity)[.]")) | select(.status != "ok") | {name, status, detail}]' <<<"$doc")
  assert_eq "$bad" "[]" "TPM, log and identity checks that are not OK"
  local c
  for c in tpm.device tpm.clock tpm.ek tpm.ek_cert tpm.ek_cert_chain tpm.ak identity.uuid logs.ima logs.measured_boot; do
    jq -e --arg c "$c" '.checks[] | select(.name == $c)' <<<"$doc" >/dev/null || fail "doctor has no check $c"
  done
  [[ $(jq -r '.checks[] | select(.name == "tpm.device") | .detail' <<<"$doc") == *tpmrm0* ]] ||
    fail "tpm.device is not /dev/tpmrm0: $(jq -c '.checks[] | select(.name == "tpm.device")' <<<"$doc")"
  say "doctor: $(jq -r '[.checks[] | .status] | group_by(.) | map("\(length) \(.[0])") | join(", ")' <<<"$doc") (exit $rc)"
}

scenario_confine() {
  trap 'vm_cleanup; scenario_cleanup' EXIT
  local con pid i perms mode name serving changed ca=/mnt/host/cacert.crt probe=/etc/keylet-vm-probe.crt
  local reloaded='a trusted_client_ca file changed: TLS configuration reloaded'
  attested cnf 7 3
  con=$(vm_dir cnf)/console.log
  grep -aq 'confined with Landlock: file access limited to [1-9][0-9]* configured paths' "$con" ||
    { grep -a 'Landlock\|confine' "$con" | tail -n 3 >&2; fail "keylet in the guest did not confine itself"; return 1; }
  pid=$(vm_exec cnf keylet_pid)
  # The seccomp filter too: the kernel reports keylet in filter mode (2).
  grep -aq 'seccomp filter installed: [1-9][0-9]* system calls allowed' "$con" ||
    { grep -a 'seccomp' "$con" | tail -n 3 >&2; fail "keylet in the guest did not install its seccomp filter"; return 1; }
  assert_eq "$(vm_exec cnf "awk '/^Seccomp:/ { print \$2 }' /proc/$pid/status" | tr -d '\r')" 2 \
    "Seccomp mode of keylet in /proc/$pid/status" || return 1
  # The client CA becomes a symlink to a copy in /etc (outside keylet's paths), which
  # keylet's own user can read: only Landlock can refuse it.
  vm_exec cnf "cp $ca /mnt/host/cacert.orig && cp $ca $probe && chmod 0644 $probe && ln -sfn $probe $ca" >/dev/null ||
    { fail "could not point $ca at $probe in the guest"; return 1; }
  # (by its modes: the guest's busybox is not executable by other users, so no su test)
  perms=$(vm_exec cnf "stat -L -c '%A %n' / /etc $probe /mnt/host $ca") || return 1
  while read -r mode name; do
    [[ ${mode:7:1} == r && ($mode != d* || ${mode:9:1} == x) ]] ||
      { fail "$name ($mode) is not readable by every user: the test would prove nothing"; return 1; }
  done <<<"$perms"
  vm_exec cnf "kill -HUP $pid" >/dev/null
  for ((i = 0; i < 60; i++)); do
    grep -aq 'SIGHUP: TLS reload rejected.*ermission denied' "$con" && break
    sleep 1
  done
  grep -aq 'SIGHUP: TLS reload rejected.*ermission denied' "$con" ||
    { grep -a 'SIGHUP' "$con" | tail -n 3 >&2; fail "no reload refused by the kernel (EACCES) after SIGHUP"; return 1; }
  say "kernel refused: $(grep -a 'SIGHUP: TLS reload rejected' "$con" | tail -n 1 | sed 's/\x1b\[[0-9;]*m//g' | cut -c1-220)"
  C=$(field attestation_count "$R")
  R=$(wait_attested "$G_UUID" $((C + 2)) 60) || return 1
  assert_eq "$(field attestation_status "$R")" PASS "attestation_status after the refused reload"
  # Pointed back inside keylet's paths, the same reload succeeds.
  vm_exec cnf "ln -sfn /mnt/host/cacert.orig $ca && kill -HUP $pid" >/dev/null
  for ((i = 0; i < 60; i++)); do
    grep -aq 'SIGHUP: TLS configuration reloaded' "$con" && break
    sleep 1
  done
  grep -aq 'SIGHUP: TLS configuration reloaded' "$con" || { fail "the reload inside keylet's paths did not succeed"; return 1; }
  C=$(field attestation_count "$R")
  R=$(wait_attested "$G_UUID" $((C + 2)) 60) || return 1
  assert_eq "$(field attestation_status "$R")" PASS "attestation_status after the reload"
  # The contrast: keylet started again with confine = false reloads through the same
  # symlink (its watcher sees the CA file change; no signal needed).
  serving=$(grep -ac 'serving the agent API with mTLS' "$con" || true)
  changed=$(grep -ac "$reloaded" "$con" || true)
  vm_exec cnf keylet_stop >/dev/null || { fail "could not stop keylet in the guest"; return 1; }
  vm_exec cnf "KEYLIME_AGENT_CONFIG=/mnt/host/agent.conf KEYLIME_AGENT_CONFINE=false RUST_LOG=info \
    setsid /mnt/host/keylet run >>/dev/console 2>&1 </dev/null & echo \$! >/run/keylet.pid" >/dev/null
  for ((i = 0; i < 60; i++)); do
    (($(grep -ac 'serving the agent API with mTLS' "$con" || true) > serving)) && break
    sleep 1
  done
  grep -aq 'confine = false: keylet runs without Landlock' "$con" || { fail "keylet did not start unconfined"; return 1; }
  pid=$(vm_exec cnf keylet_pid)
  assert_eq "$(vm_exec cnf "awk '/^Seccomp:/ { print \$2 }' /proc/$pid/status" | tr -d '\r')" 0 \
    "Seccomp mode of the unconfined keylet" || return 1
  vm_exec cnf "ln -sfn $probe $ca" >/dev/null
  for ((i = 0; i < 60; i++)); do
    (($(grep -ac "$reloaded" "$con" || true) > changed)) && break
    sleep 1
  done
  (($(grep -ac "$reloaded" "$con" || true) > changed)) ||
    { grep -a 'trusted_client_ca' "$con" | tail -n 2 >&2; fail "unconfined, keylet did not reload the CA through the same symlink"; return 1; }
  say "PASS x$(field attestation_count "$R"): confined keylet, a reload outside its paths refused by the kernel, one inside accepted; unconfined, the same reload succeeds"
}

scenario_initd() {
  trap 'vm_cleanup; scenario_cleanup' EXIT
  local sup pid0 pid1='' t i con
  printf '%s\n' KEYLET_BIN=/mnt/host/keylet KEYLIME_AGENT_CONFIG=/mnt/host/agent.conf \
    KEYLET_LOG=/dev/console KEYLET_STATE_DIR=/mnt/host/state KEYLET_STATE_OWNER=keylime \
    >"$E2E_TMP/keylet.default"
  VM_INITD=$E2E_TMP/keylet.default attested ini 6 3
  con=$(vm_dir ini)/console.log
  sup=$(vm_exec ini 'cat /run/keylet-supervise.pid') pid0=$(vm_exec ini keylet_pid)
  grep -q 'init.d/keylet supervise' < <(vm_exec ini "tr '\\0' ' ' </proc/$sup/cmdline") ||
    fail "the supervisor ($sup) is not the init script"
  assert_eq "$(vm_exec ini "awk '/^PPid:/ { print \$2 }' /proc/$pid0/status")" "$sup" \
    "keylet's parent (the init script's supervisor)"
  say "PASS x$(field attestation_count "$R") with keylet $pid0 started by the init script (supervisor $sup)"
  C=$(field attestation_count "$R") t=$(date +%s)
  vm_exec ini "kill -KILL $pid0" >/dev/null
  # the event: a new keylet (another pid, alive), at most 60 s (restart delay 5 s)
  for ((i = 0; i < 60; i++)); do
    pid1=$(vm_exec ini keylet_pid 2>/dev/null) || pid1=''
    [[ -n $pid1 && $pid1 != "$pid0" ]] && vm_exec ini "kill -0 $pid1" >/dev/null 2>&1 && break
    pid1=''; sleep 1
  done
  [[ -n $pid1 ]] || { tail -n 20 "$con" >&2; fail "the init script did not restart keylet within 60 s"; return 1; }
  grep -aq 'keylet-init: keylet exited with 137; restarting' "$con" ||
    fail "the console does not show the supervisor's restart note"
  back_again ini "$C" "$t"
  say "killed keylet $pid0, restarted as $pid1, PASS again (count $C)"
  vm_exec ini keylet_stop >/dev/null || fail "the init script's stop failed"
  ! vm_exec ini "kill -0 $pid1 || kill -0 $sup" >/dev/null 2>&1 ||
    fail "keylet ($pid1) or its supervisor ($sup) still runs after stop"
  grep -aq 'SIGTERM: stopping' "$con" || fail "keylet did not log its SIGTERM stop"
  vm_exec ini '[ ! -e /run/keylet.pid ] && [ ! -e /run/keylet-supervise.pid ]' >/dev/null ||
    fail "pid files left after stop"
  vm_exec ini '/mnt/host/init.d/keylet status' >/dev/null && fail "status says running after stop"
  say "stopped with SIGTERM: keylet logged its stop, no restart, status 'not running'"
}

((EUID == 0)) || { echo "tests/vm/run.sh needs root (apt-get, disk image ownership)" >&2; exit 2; }
VM_RUN_T0=$SECONDS
vm_install
if [[ ${1:-} == --prepare ]]; then # CI's set-up: packages, kernel, boot image; no testbed
  VM_RUN=$(mktemp -d /tmp/keylet-vm-prepare.XXXXXX)
  vm_fetch && vm_boot_image
  rm -rf "$VM_RUN"
  say "prepared $VM_CACHE in $((SECONDS - VM_RUN_T0)) s"
  exit 0
fi
if [[ -n ${KEYLET_VM_BIN:-} ]]; then
  KEYLET_BIN=$KEYLET_VM_BIN
else
  # The guest runs the static release binary; its size budget is not this suite's concern.
  KEYLET_SIZE_BUDGET=$((64 << 20)) bash "$E2E_ROOT/scripts/build-static.sh" >/dev/null
  KEYLET_BIN=${CARGO_TARGET_DIR:-$E2E_ROOT/target}/x86_64-unknown-linux-musl/release/keylet
fi
e2e_init vm
VM_RUN=$E2E_TMP
vm_fetch
vm_boot_image
say "kernel, images and keylet ready after $((SECONDS - VM_RUN_T0)) s"
run_scenarios register unknown_exec reboot power_loss doctor confine initd -- "$@"
