#!/usr/bin/env bash
# cross-env.sh - sourced by scripts/cross-test.sh, scripts/build-static.sh and
# tests/e2e/qemu-user.sh: the one table of keylet's Linux targets and what
# building and running each needs on a Debian 12 x86_64 host (rustup target,
# Debian cross gcc, qemu-user).
#
#   cross_setup TARGET   installs what is missing (rustup target add, apt-get
#                        install; KEYLET_CROSS_NO_INSTALL=1: only report it) and
#                        exports CARGO_TARGET_<T>_LINKER / _RUNNER, CC_<t>, AR_<t>
#                        so that `cargo build/test --target TARGET` links and runs
#                        and sets CROSS_CARGO_ENV (VAR=VALUE words) and
#                        CROSS_CARGO_ARGS (cargo arguments) for targets whose
#                        standard library is built from source: run
#                        env "${CROSS_CARGO_ENV[@]}" cargo build "${CROSS_CARGO_ARGS[@]}" ...
#   cross_build_std TARGET  std from rust-src for TARGET (rust-src installed when
#                        missing): sets CROSS_CARGO_ENV and CROSS_CARGO_ARGS
#   cross_runner TARGET  prints the command that runs a TARGET binary here
#                        (empty for the host's own architecture)
#   CROSS_TARGETS        every target in the table
# shellcheck shell=bash

CROSS_TARGETS=(
  x86_64-unknown-linux-musl
  aarch64-unknown-linux-musl
  aarch64-unknown-linux-gnu
  armv7-unknown-linux-gnueabihf
  s390x-unknown-linux-gnu
  armv7-unknown-linux-musleabihf
  riscv64gc-unknown-linux-gnu
)

# cross_table TARGET: sets X_GCC (the C compiler/linker), X_SYSROOT (for qemu -L),
# X_QEMU (qemu-user binary, empty for x86_64), X_PKGS (Debian packages; NAME:ARCH
# needs that foreign architecture in dpkg), X_RUSTFLAGS (for the target's crates),
# X_BUILD_STD (1: rustup has no standard library for it; built from rust-src),
# X_DEB (the Debian architecture), X_ELF (what `file` says about its executables).
cross_table() {
  X_GCC='' X_SYSROOT='' X_QEMU='' X_PKGS=() X_RUSTFLAGS='' X_BUILD_STD=0
  # shellcheck disable=SC2034 # for the scripts that source this file
  case $1 in
    x86_64-*) X_DEB=amd64 X_ELF='x86-64' ;;
    aarch64-*) X_DEB=arm64 X_ELF='ARM aarch64' ;;
    armv7-*) X_DEB=armhf X_ELF='ARM, EABI5' ;;
    riscv64gc-*) X_DEB=riscv64 X_ELF='RISC-V' ;;
    s390x-*) X_DEB=s390x X_ELF='IBM S/390' ;;
    *) X_DEB='' X_ELF='' ;;
  esac
  case $1 in
    # The one static-pie target (ASLR): its relative relocations packed as RELR
    # (binutils >= 2.38; musl's start-up code applies them) instead of 24-byte
    # RELA entries: -192 KiB, the same binary otherwise.
    x86_64-unknown-linux-musl)
      X_GCC=musl-gcc X_PKGS=(musl-tools) X_RUSTFLAGS='-C link-arg=-Wl,-z,pack-relative-relocs' ;;
    # rust-std for *-musl brings musl's libc.a and crt objects (self-contained);
    # the glibc cross gcc only links them and compiles ring's C. The static
    # binary runs under qemu without a sysroot.
    aarch64-unknown-linux-musl)
      X_GCC=aarch64-linux-gnu-gcc X_QEMU=qemu-aarch64-static
      X_PKGS=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user-static) ;;
    aarch64-unknown-linux-gnu)
      X_GCC=aarch64-linux-gnu-gcc X_SYSROOT=/usr/aarch64-linux-gnu X_QEMU=qemu-aarch64-static
      X_PKGS=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user-static) ;;
    armv7-unknown-linux-gnueabihf)
      X_GCC=arm-linux-gnueabihf-gcc X_SYSROOT=/usr/arm-linux-gnueabihf X_QEMU=qemu-arm-static
      X_PKGS=(gcc-arm-linux-gnueabihf libc6-dev-armhf-cross qemu-user-static) ;;
    s390x-unknown-linux-gnu)
      X_GCC=s390x-linux-gnu-gcc X_SYSROOT=/usr/s390x-linux-gnu X_QEMU=qemu-s390x-static
      X_PKGS=(gcc-s390x-linux-gnu libc6-dev-s390x-cross qemu-user-static) ;;
    # rustup serves no rust-std for armv7 musl: std is built from the rust-src
    # component (cargo -Z build-std, allowed on stable by RUSTC_BOOTSTRAP=1) and
    # linked by Debian's musl for armhf (musl-dev:armhf: libc.a, crt objects and
    # the arm-linux-musleabihf-gcc wrapper around the armhf cross gcc), not by
    # rustc's self-contained objects, which exist only in a rust-std. std's
    # unwinder is GCC's (libgcc_eh.a, offered as libunwind.a; see cross_setup).
    armv7-unknown-linux-musleabihf)
      X_GCC=arm-linux-musleabihf-gcc X_QEMU=qemu-arm-static X_BUILD_STD=1
      X_RUSTFLAGS='-C link-self-contained=no'
      X_PKGS=(gcc-arm-linux-gnueabihf musl-dev:armhf qemu-user-static) ;;
    # rustup serves no rust-std for riscv64gc musl and Debian 12 has no riscv64
    # musl: the glibc target, linked statically (+crt-static). A static glibc
    # finds users and groups (run_as) in /etc/passwd and /etc/group.
    riscv64gc-unknown-linux-gnu)
      X_GCC=riscv64-linux-gnu-gcc X_SYSROOT=/usr/riscv64-linux-gnu X_QEMU=qemu-riscv64-static
      X_RUSTFLAGS='-C target-feature=+crt-static'
      X_PKGS=(gcc-riscv64-linux-gnu libc6-dev-riscv64-cross qemu-user-static) ;;
    *) echo "cross-env: unknown target $1 (known: ${CROSS_TARGETS[*]})" >&2; return 2 ;;
  esac
}

cross_runner() {
  cross_table "$1" || return
  [[ -z $X_QEMU ]] || echo "$X_QEMU${X_SYSROOT:+ -L $X_SYSROOT}"
}

cross_setup() {
  local target=$1 missing=() p env_t arch unwind_dir
  # shellcheck disable=SC2034 # for the scripts that source this file
  CROSS_CARGO_ENV=() CROSS_CARGO_ARGS=()
  cross_table "$target" || return
  for p in "${X_PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  if ((${#missing[@]})); then
    if [[ ${KEYLET_CROSS_NO_INSTALL:-0} == 1 ]]; then
      echo "cross-env: $target needs: apt-get install ${missing[*]}" >&2; return 1
    fi
    for p in "${missing[@]}"; do
      [[ $p != *:* ]] && continue
      arch=${p#*:}
      dpkg --print-foreign-architectures | grep -qx "$arch" && continue
      echo "cross-env: dpkg --add-architecture $arch" >&2
      dpkg --add-architecture "$arch" || return 1
    done
    echo "cross-env: apt-get install ${missing[*]}" >&2
    # an index of another architecture that fails to download (a mirror sync) must not
    # stop the install of what the indexes that did load offer
    apt-get update -qq || echo "cross-env: apt-get update reported errors; trying the install anyway" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
      --no-install-recommends "${missing[@]}" </dev/null >/dev/null || return 1
  fi
  env_t=$(tr 'a-z-' 'A-Z_' <<<"$target")
  [[ -z $X_RUSTFLAGS ]] || export "CARGO_TARGET_${env_t}_RUSTFLAGS=$X_RUSTFLAGS"
  if ((X_BUILD_STD)); then
    cross_build_std "$target" || return 1
    # std's unwind crate links libunwind.a for static musl; GCC's unwinder serves
    unwind_dir=${CARGO_TARGET_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/target}/cross-unwind/$target
    mkdir -p "$unwind_dir" || return 1
    ln -sf "$("$X_GCC" -print-file-name=libgcc_eh.a)" "$unwind_dir/libunwind.a" || return 1
    [[ -e $unwind_dir/libunwind.a ]] || { echo "cross-env: $X_GCC has no libgcc_eh.a" >&2; return 1; }
    export "CARGO_TARGET_${env_t}_RUSTFLAGS=$X_RUSTFLAGS -L native=$unwind_dir"
    cross_env_exports "$target"
    return 0
  fi
  if ! rustup target list --installed 2>/dev/null | grep -qx "$target"; then
    if [[ ${KEYLET_CROSS_NO_INSTALL:-0} == 1 ]]; then
      echo "cross-env: $target needs: rustup target add $target" >&2; return 1
    fi
    rustup target add "$target" >&2 || return 1
  fi
  cross_env_exports "$target"
}

# cross_build_std TARGET: std built from the rust-src component (installed when
# missing) with cargo -Z build-std, which RUSTC_BOOTSTRAP=1 lets the stable compiler
# take: sets CROSS_CARGO_ENV and CROSS_CARGO_ARGS. cross_setup calls it for targets
# that rustup has no std for; scripts/build-static.sh for every release binary.
cross_build_std() {
  if ! rustup component list --installed 2>/dev/null | grep -q '^rust-src'; then
    if [[ ${KEYLET_CROSS_NO_INSTALL:-0} == 1 ]]; then
      echo "cross-env: $1 needs: rustup component add rust-src" >&2; return 1
    fi
    rustup component add rust-src >&2 || return 1
  fi
  # shellcheck disable=SC2034 # for the scripts that source this file
  CROSS_CARGO_ENV=(RUSTC_BOOTSTRAP=1)
  # shellcheck disable=SC2034
  CROSS_CARGO_ARGS=(-Z "build-std=std,panic_abort")
}

cross_env_exports() {
  local target=$1 env_t gcc
  env_t=$(tr 'a-z-' 'A-Z_' <<<"$target")
  export "CC_${target//-/_}=$X_GCC"
  # x86_64 musl links with the host cc and rust-std's self-contained musl.
  if [[ $X_GCC != musl-gcc ]]; then
    # (the musl wrapper arm-linux-musleabihf-gcc has no ar of its own)
    gcc=${X_GCC/musleabihf/gnueabihf}
    export "CARGO_TARGET_${env_t}_LINKER=$X_GCC" "AR_${target//-/_}=${gcc%gcc}ar"
  fi
  [[ -z $X_QEMU ]] || export "CARGO_TARGET_${env_t}_RUNNER=$(cross_runner "$target")"
}
