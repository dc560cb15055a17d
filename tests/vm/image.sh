# shellcheck shell=bash
# tests/vm/image.sh - the guest's boot disk and keylet's host disk, from stock Debian 12
# parts (sourced by tests/vm/run.sh).
#
# Cache (KEYLET_VM_CACHE, default /var/tmp/keylet-vm), reused between runs:
#   debs/    linux-image-*-amd64, shim-signed, grub-efi-amd64-signed (apt-get download only;
#            nothing is installed on the host)
#   root/    those packages unpacked (dpkg-deb -x), modules.dep made by depmod
#   boot.img GPT disk with one EFI system partition: /EFI/BOOT/BOOTX64.EFI (Debian's signed
#            shim), grubx64.efi (Debian's signed grub), grub.cfg, the kernel and the initramfs
# Per run (VM_RUN): host.img, an ext4 disk with the static keylet, its config, the
# verifier's CA and keylime_dir (the state that must survive a reboot).

VM_CACHE=${KEYLET_VM_CACHE:-/var/tmp/keylet-vm}
# Host tools: QEMU (TCG), UEFI firmware, the guest's userland, image tools, and
# libefivar1 for Keylime's measured-boot parser (keylime-policy, the verifier).
VM_APT_PKGS=(qemu-system-x86 ovmf busybox-static e2fsprogs mtools fdisk cpio kmod libefivar1
             python3)
VM_MODULES=(e1000 virtio_pci virtio_blk ext4) # built as modules in Debian's kernel
# The kernel command line (grub.cfg; grub measures it into PCR 8).
VM_CMDLINE="console=ttyS0 quiet panic=-1"

vm_install() {
  local missing=() p
  for p in "${VM_APT_PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  ((${#missing[@]})) || return 0
  say "apt-get install ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" \
    </dev/null >/dev/null
}

# vm_fetch: Debian's kernel, shim and grub into VM_CACHE/root (once).
vm_fetch() {
  local kpkg
  [[ -s $VM_CACHE/root/.done ]] && return 0
  kpkg=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/ { print $2; exit }')
  [[ -n $kpkg ]] || { fail "apt-cache knows no linux-image-amd64 (apt-get update?)"; return 1; }
  say "fetching $kpkg, shim-signed, grub-efi-amd64-signed (apt-get download)"
  rm -rf "$VM_CACHE/debs" "$VM_CACHE/root"; mkdir -p "$VM_CACHE/debs" "$VM_CACHE/root"
  (cd "$VM_CACHE/debs" && apt-get download "$kpkg" shim-signed grub-efi-amd64-signed) >/dev/null 2>&1 ||
    { fail "apt-get download $kpkg shim-signed grub-efi-amd64-signed failed"; return 1; }
  local d
  for d in "$VM_CACHE"/debs/*.deb; do dpkg-deb -x "$d" "$VM_CACHE/root"; done
  depmod -b "$VM_CACHE/root" "$(vm_kver)"
  echo "$kpkg" >"$VM_CACHE/root/.done"
}

vm_kver() { basename "$(ls -d "$VM_CACHE"/root/lib/modules/*)"; }

# vm_initramfs OUT: busybox, the guest's /init, the modules it loads (in load order) and
# passwd/group lines for keylet's run_as user.
vm_initramfs() {
  local out=$1 d kver m
  d=$(mktemp -d "$VM_RUN/initramfs.XXXXXX"); kver=$(vm_kver)
  mkdir -p "$d"/{bin,etc,lib/modules,proc,sys,dev,tmp,run,mnt/host}
  cp /bin/busybox "$d/bin/busybox"
  install -m 0755 "$VM_DIR/guest-init" "$d/init"
  for m in "${VM_MODULES[@]}"; do
    modprobe -d "$VM_CACHE/root" -S "$kver" --show-depends "$m" | awk '$1 == "insmod" { print $2 }'
  done | awk '!seen[$0]++' | while read -r m; do
    cp "$m" "$d/lib/modules/"; basename "$m" >>"$d/etc/modules.list"
  done
  printf 'root:x:0:0:root:/:/bin/sh\nkeylime:x:490:491:keylet:/var/lib/keylime:/bin/false\n' >"$d/etc/passwd"
  printf 'root:x:0:\ntss:x:491:keylime\n' >"$d/etc/group"
  (cd "$d" && find . | cpio -o -H newc --quiet | gzip -1) >"$out"
  rm -rf "$d"
}

# vm_boot_image: VM_CACHE/boot.img, rebuilt when guest-init or this file changed.
vm_boot_image() {
  local img=$VM_CACHE/boot.img stamp kver root=$VM_CACHE/root part=$VM_RUN/esp.img cfg
  stamp=$(cat "$VM_DIR/guest-init" "$VM_DIR/image.sh" /bin/busybox | sha256sum | cut -c1-16)
  if [[ -s $img && $(cat "$img.stamp" 2>/dev/null) == "$stamp" ]]; then return 0; fi
  kver=$(vm_kver)
  say "building $img (kernel $kver, Debian's signed shim and grub)"
  vm_initramfs "$VM_RUN/initrd.img"
  cfg=$VM_RUN/grub.cfg
  printf 'set timeout=0\nmenuentry keylet {\n  linux /vmlinuz %s\n  initrd /initrd.img\n}\n' \
    "$VM_CMDLINE" >"$cfg"
  # A 64 MiB FAT partition at 1 MiB of a GPT disk.
  rm -f "$part"; truncate -s 64M "$part"
  mformat -i "$part" -F -v KEYLETESP ::
  mmd -i "$part" ::/EFI ::/EFI/BOOT ::/EFI/debian
  mcopy -i "$part" "$root/usr/lib/shim/shimx64.efi.signed" ::/EFI/BOOT/BOOTX64.EFI
  mcopy -i "$part" "$root/usr/lib/grub/x86_64-efi-signed/grubx64.efi.signed" ::/EFI/BOOT/grubx64.efi
  mcopy -i "$part" "$cfg" ::/EFI/BOOT/grub.cfg
  mcopy -i "$part" "$cfg" ::/EFI/debian/grub.cfg # the prefix Debian's signed grub looks in
  mcopy -i "$part" "$root/boot/vmlinuz-$kver" ::/vmlinuz
  mcopy -i "$part" "$VM_RUN/initrd.img" ::/initrd.img
  rm -f "$img.new"; truncate -s 66M "$img.new"
  printf 'label: gpt\nstart=2048, size=131072, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B\n' |
    sfdisk -q "$img.new" >/dev/null
  dd if="$part" of="$img.new" bs=1M seek=1 conv=notrunc status=none
  rm -f "$part" "$VM_RUN/initrd.img" "$cfg"
  mv "$img.new" "$img"; echo "$stamp" >"$img.stamp"
}

# vm_host_image OUT CONFIG EK_CA_DIR: keylet's disk: /keylet (static binary), /agent.conf,
# /cacert.crt, /ek-ca (for keylet doctor), /state (keylime_dir, owned by the run_as user),
# /init.d/keylet (dist/init.d/keylet) and, when VM_INITD names a settings file, that file as
# /keylet.default: then /init starts keylet with the init script.
vm_host_image() {
  local out=$1 conf=$2 ekca=$3 d
  d=$(mktemp -d "$VM_RUN/host.XXXXXX")
  install -m 0755 "$KEYLET_BIN" "$d/keylet"
  install -m 0644 "$conf" "$d/agent.conf"
  install -m 0644 "$TLS/cacert.crt" "$d/cacert.crt"
  cp -r "$ekca" "$d/ek-ca"
  install -d -m 0700 -o 490 -g 491 "$d/state"
  install -D -m 0755 "$VM_DIR/../../dist/init.d/keylet" "$d/init.d/keylet"
  [[ -z ${VM_INITD:-} ]] || install -m 0644 "$VM_INITD" "$d/keylet.default"
  rm -f "$out"
  mkfs.ext4 -q -L keylet-host -d "$d" "$out" 64M || { fail "mkfs.ext4 -d failed"; return 1; }
  rm -rf "$d"
}
