# shellcheck shell=bash
# tests/vm/vm.sh - one test guest: its TPM (swtpm on a unix socket, attached as tpm-crb),
# QEMU (TCG, OVMF, user-mode networking) and its command channel (sourced by run.sh).
#
# Per guest NAME, in $E2E_TMP/NAME: swtpm state (manufactured by the testbed, so its EK
# certificate chains to the testbed's swtpm CA), OVMF_VARS.fd, host.img, console.log
# (the guest's first serial port: firmware, kernel, keylet), ctl.sock (the second one:
# tests/vm/console.py), qemu.pid, swtpm.pid.

# UEFI Secure Boot with Microsoft's keys enrolled (the ms variables), so that Debian's
# signed shim, grub and kernel boot as on a real host: only then does Debian's grub hand
# over to the kernel's EFI stub, which passes the firmware's TCG2 event log on to Linux
# (without Secure Boot, /sys/kernel/security/tpm0 does not exist). Secure Boot needs SMM.
OVMF_CODE=/usr/share/OVMF/OVMF_CODE_4M.secboot.fd OVMF_VARS=/usr/share/OVMF/OVMF_VARS_4M.ms.fd
VM_MEM=${KEYLET_VM_MEM:-512}

vm_dir() { echo "$E2E_TMP/$1"; }

# vm_new NAME FWD_PORT: a freshly manufactured TPM, empty UEFI variables and keylet's
# disk with a config whose contact port is FWD_PORT (the host's loopback port).
vm_new() {
  local n=$1 fwd=$2 d; d=$(vm_dir "$1")
  rm -rf "$d"; mkdir -p "$d/ek-ca"
  KEYLET_TB_FORCE=1 tb tpm2-start "vm-$n" "$VM_TPM_MFG_PORT" >/dev/null
  tb tpm2-stop "vm-$n" >/dev/null
  cp -a "$TB_STATE/swtpm/extra-vm-$n/state" "$d/tpm"
  cp "$OVMF_VARS" "$d/OVMF_VARS.fd"
  cp "$TB_STATE/tpm_cert_store/"*.pem "$d/ek-ca/"
  cat >"$d/agent.conf" <<EOF
[agent]
uuid = "hash_ek"
ip = "0.0.0.0"
port = 9002
contact_ip = "127.0.0.1"
contact_port = $fwd
registrar_ip = "10.0.2.2"
registrar_port = $REGISTRAR_PORT
keylime_dir = "/mnt/host/state"
trusted_client_ca = "/mnt/host/cacert.crt"
enable_agent_mtls = true
tpm_hash_alg = "sha256"
tpm_encryption_alg = "rsa"
tpm_signing_alg = "rsassa"
run_as = "keylime:tss"
EOF
  echo "$fwd" >"$d/fwd"
  vm_host_image "$d/host.img" "$d/agent.conf" "$d/ek-ca"
}

# vm_boot NAME: swtpm and QEMU started; returns once the guest answers commands.
vm_boot() {
  local n=$1 d fwd i t0=$SECONDS; d=$(vm_dir "$1"); fwd=$(cat "$d/fwd")
  rm -f "$d/swtpm.sock" "$d/ctl.sock"
  swtpm socket --tpm2 --tpmstate "dir=$d/tpm" --ctrl "type=unixio,path=$d/swtpm.sock" \
    --log "file=$d/swtpm.log,level=1" --terminate >>"$d/swtpm.out" 2>&1 </dev/null &
  echo $! >"$d/swtpm.pid"
  for ((i = 0; i < 100; i++)); do [[ -S $d/swtpm.sock ]] && break; sleep 0.1; done
  [[ -S $d/swtpm.sock ]] || { fail "swtpm for $n did not open $d/swtpm.sock"; return 1; }
  echo "==== boot $(date -u +%FT%TZ)" >>"$d/console.log"
  qemu-system-x86_64 -name "keylet-$n" -machine q35,smm=on -accel tcg -cpu max -smp 1 -m "$VM_MEM" \
    -nodefaults -display none -monitor none \
    -global driver=cfi.pflash01,property=secure,value=on \
    -drive "if=pflash,format=raw,unit=0,readonly=on,file=$OVMF_CODE" \
    -drive "if=pflash,format=raw,unit=1,file=$d/OVMF_VARS.fd" \
    -drive "file=$VM_CACHE/boot.img,if=none,id=boot,format=raw,readonly=on" \
    -device virtio-blk-pci,drive=boot,bootindex=0 \
    -drive "file=$d/host.img,if=none,id=host,format=raw" -device virtio-blk-pci,drive=host \
    -netdev "user,id=net0,hostfwd=tcp:127.0.0.1:$fwd-:9002" -device e1000,netdev=net0 \
    -chardev "socket,id=chrtpm,path=$d/swtpm.sock" -tpmdev emulator,id=tpm0,chardev=chrtpm \
    -device tpm-crb,tpmdev=tpm0 \
    -chardev "file,id=con,path=$d/console.log,append=on" -serial chardev:con \
    -chardev "socket,id=ctl,path=$d/ctl.sock,server=on,wait=off" -serial chardev:ctl \
    >>"$d/qemu.out" 2>&1 </dev/null &
  echo $! >"$d/qemu.pid"
  vm_wait_ready "$n" "${KEYLET_VM_BOOT_TIMEOUT:-240}" || return 1
  VM_BOOT_SECS=$((SECONDS - t0))
  say "guest $n answers after $VM_BOOT_SECS s (firmware, shim, grub, kernel, /init)"
}

# vm_wait_ready NAME SECS: the guest's command loop answers.
vm_wait_ready() {
  local n=$1 secs=$2 t0=$SECONDS d; d=$(vm_dir "$1")
  while ((SECONDS - t0 < secs)); do
    vm_running "$n" || { tail -n 30 "$d/console.log" >&2; fail "QEMU for $n exited (see $d/qemu.out)"; return 1; }
    [[ $(python3 "$VM_DIR/console.py" "$d/ctl.sock" 3 'echo ready' 2>/dev/null) == ready ]] && return 0
    sleep 1
  done
  tail -n 30 "$d/console.log" >&2
  fail "guest $n did not answer within $secs s (console: $d/console.log)"
}

vm_running() { local p; p=$(cat "$(vm_dir "$1")/qemu.pid" 2>/dev/null) && kill -0 "$p" 2>/dev/null; }

# vm_exec NAME COMMAND [TIMEOUT]: runs COMMAND (sh, with /init's functions keylet_start,
# keylet_stop, keylet_pid, orderly_reboot) in the guest; its output on stdout, its status.
vm_exec() {
  python3 "$VM_DIR/console.py" "$(vm_dir "$1")/ctl.sock" "${3:-60}" "$2"
}

# vm_keylet NAME ARGS...: keylet ARGS in the guest with its config (e.g. identity, doctor).
vm_keylet() {
  local n=$1; shift
  vm_exec "$n" "KEYLIME_AGENT_CONFIG=/mnt/host/agent.conf /mnt/host/keylet $*" 120
}

# vm_kill NAME: QEMU killed (a power cut: no TPM2_Shutdown); swtpm exits with it.
vm_kill() {
  local d p; d=$(vm_dir "$1")
  for p in qemu swtpm; do
    [[ -s $d/$p.pid ]] || continue
    { kill -KILL "$(cat "$d/$p.pid")" && wait "$(cat "$d/$p.pid")"; } 2>/dev/null || true
    wait_gone "$(cat "$d/$p.pid")" 10 || true
    rm -f "$d/$p.pid"
  done
}

# vm_poweroff NAME: keylet stopped, disk unmounted, poweroff (the kernel shuts the TPM
# down); killed if it does not end within 60 s.
vm_poweroff() {
  local n=$1 d p; d=$(vm_dir "$1")
  vm_running "$n" || { vm_kill "$n"; return 0; }
  vm_exec "$n" 'keylet_stop; sync; umount /mnt/host; (sleep 1; poweroff -f) >/dev/null 2>&1 &' 30 \
    >/dev/null 2>&1 || true
  p=$(cat "$d/qemu.pid")
  wait_gone "$p" 60 || say "guest $n did not power off within 60 s; killing it"
  vm_kill "$n"
}

# vm_cleanup: every guest of this run powered off (trap of the scenarios).
vm_cleanup() {
  local rc=$? d
  for d in "$E2E_TMP"/*/qemu.pid; do
    [[ -e $d ]] && vm_poweroff "$(basename "$(dirname "$d")")"
  done
  return "$rc"
}
