#!/usr/bin/env bash
# cross-env.sh - sourced by scripts/cross-test.sh, scripts/build-static.sh and
# tests/e2e/qemu-aarch64.sh: the one table of keylet's Linux targets and what
# building and running each needs on a Debian 12 x86_64 host (rustup target,
# Debian cross gcc, qemu-user).
#
#   cross_setup TARGET   installs what is missing (rustup target add, apt-get
#                        install; KEYLET_CROSS_NO_INSTALL=1: only report it) and
#                        exports CARGO_TARGET_<T>_LINKER / _RUNNER, CC_<t>, AR_<t>
#                        so that `cargo build/test --target TARGET` links and runs
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
)

# cross_table TARGET: sets X_GCC (the C compiler/linker), X_SYSROOT (for qemu -L),
# X_QEMU (qemu-user binary, empty for x86_64), X_PKGS (Debian packages).
cross_table() {
  X_GCC='' X_SYSROOT='' X_QEMU='' X_PKGS=()
  case $1 in
    x86_64-unknown-linux-musl) X_GCC=musl-gcc X_PKGS=(musl-tools) ;;
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
    *) echo "cross-env: unknown target $1 (known: ${CROSS_TARGETS[*]})" >&2; return 2 ;;
  esac
}

cross_runner() {
  cross_table "$1" || return
  [[ -z $X_QEMU ]] || echo "$X_QEMU${X_SYSROOT:+ -L $X_SYSROOT}"
}

cross_setup() {
  local target=$1 missing=() p env_t
  cross_table "$target" || return
  for p in "${X_PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  if ((${#missing[@]})); then
    if [[ ${KEYLET_CROSS_NO_INSTALL:-0} == 1 ]]; then
      echo "cross-env: $target needs: apt-get install ${missing[*]}" >&2; return 1
    fi
    echo "cross-env: apt-get install ${missing[*]}" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
      --no-install-recommends "${missing[@]}" </dev/null >/dev/null || return 1
  fi
  if ! rustup target list --installed 2>/dev/null | grep -qx "$target"; then
    if [[ ${KEYLET_CROSS_NO_INSTALL:-0} == 1 ]]; then
      echo "cross-env: $target needs: rustup target add $target" >&2; return 1
    fi
    rustup target add "$target" >&2 || return 1
  fi
  env_t=$(tr 'a-z-' 'A-Z_' <<<"$target")
  export "CC_${target//-/_}=$X_GCC"
  # x86_64 musl links with the host cc and rust-std's self-contained musl.
  if [[ $X_GCC != musl-gcc ]]; then
    export "CARGO_TARGET_${env_t}_LINKER=$X_GCC" "AR_${target//-/_}=${X_GCC%gcc}ar"
  fi
  [[ -z $X_QEMU ]] || export "CARGO_TARGET_${env_t}_RUNNER=$(cross_runner "$target")"
}
