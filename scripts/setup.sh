#!/usr/bin/env bash
# setup.sh - installs what keylet's tests need on Debian 12, and only what is missing:
# apt packages, the Rust target and components, the pinned Keylime venvs of the testbed
# (7.14.3, and 7.12.2 for the older-release suite), Debian's OpenRC (unpacked, not
# installed) for tests/e2e/openrc.sh.
# scripts/test-all.sh runs it first; .ci/run too. Idempotent: a second run changes nothing
# and takes about a second.
#
# Usage: scripts/setup.sh [--no-testbed] [--release]
#   --no-testbed  skip the Keylime venvs (the fast steps of test-all.sh do not need them)
#   --release     also what only scripts/release.sh needs: cargo-auditable, rust-audit-info,
#                 cargo-cyclonedx (the SBOMs)
# Cargo tools, pinned, built from crates.io source when missing (once; measured on 2
# cores at load average ~20, a quiet machine is several times faster): cargo-deny (CI
# step licenses, 5 min: 308 s on 2 cores beside a CI build); with --release cargo-auditable (the dependency list inside the
# release binaries, 41 s), rust-audit-info (reads it back, 8 s), cargo-cyclonedx (26 min).
# Installing needs root (apt-get); as another user it names what is missing and fails.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TESTBED=1 RELEASE=0
for a in "$@"; do
  case $a in
    --no-testbed) TESTBED=0 ;;
    --release) RELEASE=1 ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed 's/^# \{0,1\}//;$d'; exit 0 ;;
    *) echo "setup.sh: unknown option $a (try --help)" >&2; exit 2 ;;
  esac
done
say() { printf '[setup] %s\n' "$*" >&2; }

# Everything the test steps call: swtpm and tpm2-tools (TPM), the testbed's Python and
# tools, shellcheck, a C compiler for ring, musl-gcc for the static build, systemd for
# the unit check; Debian's cross compilers and qemu-user for the cross-architecture
# tests and static binaries; QEMU, UEFI firmware, busybox, image tools and libefivar1 (Keylime's
# measured-boot parser) for the VM suite (tests/vm/image.sh installs the same itself).
APT_PKGS=(
  swtpm swtpm-tools tpm2-tools openssl python3 python3-venv python3-pip python3-gpg
  sqlite3 curl jq iproute2 procps ca-certificates nftables shellcheck build-essential pkg-config
  systemd musl-tools
  qemu-system-x86 ovmf busybox-static e2fsprogs mtools fdisk cpio kmod libefivar1
  gcc-aarch64-linux-gnu gcc-arm-linux-gnueabihf gcc-s390x-linux-gnu gcc-riscv64-linux-gnu
  libc6-dev-arm64-cross libc6-dev-armhf-cross libc6-dev-s390x-cross libc6-dev-riscv64-cross
  qemu-user-static
  musl-dev:armhf
)
# musl-dev:armhf (the static armv7 binary, scripts/build-static.sh) needs the armhf
# architecture in dpkg.
FOREIGN_ARCHS=(armhf)
# thumbv7em: the no_std build; the others: scripts/cross-test.sh (core under qemu-user)
# and scripts/build-static.sh.
RUST_TARGETS=(thumbv7em-none-eabihf aarch64-unknown-linux-gnu armv7-unknown-linux-gnueabihf
  s390x-unknown-linux-gnu x86_64-unknown-linux-musl aarch64-unknown-linux-musl
  riscv64gc-unknown-linux-gnu)
# rust-src: the armv7 musl standard library is built from it (cargo -Z build-std)
RUST_COMPONENTS=(clippy rustfmt rust-src)

missing=()
for p in "${APT_PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  if ((EUID != 0)); then
    say "missing Debian packages: ${missing[*]}"
    say "install them as root: dpkg --add-architecture ${FOREIGN_ARCHS[*]}; apt-get install ${missing[*]}"
    exit 1
  fi
  for a in "${FOREIGN_ARCHS[@]}"; do
    dpkg --print-foreign-architectures | grep -qx "$a" || { say "dpkg --add-architecture $a"; dpkg --add-architecture "$a"; }
  done
  say "apt-get install ${missing[*]}"
  # an index of the foreign architecture that fails to load (a mirror sync in progress)
  # must not stop the install of what the loaded indexes offer
  apt-get update -qq || say "apt-get update reported errors; installing from the indexes that loaded"
  apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null >/dev/null
fi

command -v rustup >/dev/null || { say "rustup not found: install Rust with rustup (https://rustup.rs)"; exit 1; }
installed=$(rustup target list --installed)
for t in "${RUST_TARGETS[@]}"; do
  grep -qx "$t" <<<"$installed" || { say "rustup target add $t"; rustup target add "$t"; }
done
installed=$(rustup component list --installed)
for c in "${RUST_COMPONENTS[@]}"; do
  grep -q "^$c" <<<"$installed" || { say "rustup component add $c"; rustup component add "$c"; }
done

# cargo_tool CRATE VERSION [BINARY]: cargo install --locked CRATE@VERSION unless that
# version is installed
cargo_tool() {
  local have
  have=$(cargo install --list | sed -n "s/^$1 v\([^:]*\):\$/\1/p")
  [[ $have == "$2" ]] && return 0
  say "cargo install --locked $1@$2 (from source: minutes)"
  cargo install --locked --quiet "$1@$2"
}
cargo_tool cargo-deny 0.20.2
# Every crate of Cargo.lock, for every platform: the licenses step (cargo deny --offline)
# reads the whole graph, and builds download only what this host compiles.
(cd "$ROOT" && cargo fetch --locked --quiet)
if ((RELEASE)); then
  cargo_tool cargo-auditable 0.7.7
  cargo_tool rust-audit-info 0.5.4
  cargo_tool cargo-cyclonedx 0.5.9
fi

# Debian's OpenRC for tests/e2e/openrc.sh, unpacked into a directory of its own
# (KEYLET_OPENRC_ROOT): installed, it would replace sysv-rc and take over the host's
# init scripts. The suite mounts it over /usr in a private mount namespace.
openrc_fetch() {
  local dir=${KEYLET_OPENRC_ROOT:-/var/tmp/keylet-openrc} d sub tmp
  [[ -s $dir/root/.version ]] && return 0
  say "apt-get download openrc librc1 libeinfo1 (unpacked into $dir, not installed)"
  tmp=$(mktemp -d "${TMPDIR:-/tmp}/keylet-openrc.XXXXXX")
  (cd "$tmp" && apt-get download openrc librc1 libeinfo1) >/dev/null 2>&1 ||
    { apt-get update -qq && (cd "$tmp" && apt-get download openrc librc1 libeinfo1) >/dev/null; } ||
    { say "apt-get download openrc librc1 libeinfo1 failed"; rm -rf "$tmp"; return 1; }
  mkdir -p "$tmp/x" "$tmp/root/usr"
  for d in "$tmp"/*.deb; do dpkg-deb -x "$d" "$tmp/x"; done
  # Debian 12 has a merged /usr: /lib, /sbin and /bin are links into /usr
  cp -a "$tmp/x/usr/." "$tmp/root/usr/"
  for sub in lib sbin bin; do
    if [[ -d $tmp/x/$sub ]]; then mkdir -p "$tmp/root/usr/$sub"; cp -a "$tmp/x/$sub/." "$tmp/root/usr/$sub/"; fi
  done
  cp -a "$tmp/x/etc" "$tmp/root/etc"
  dpkg-deb -f "$tmp"/openrc_*.deb Version >"$tmp/root/.version"
  rm -rf "$dir"; mkdir -p "$dir"; mv "$tmp/root" "$dir/root"; rm -rf "$tmp"
}

if ((TESTBED)); then
  openrc_fetch
  KEYLET_TB_SKIP_APT=1 bash "$ROOT/scripts/testbed.sh" install </dev/null
  # the older Keylime release of tests/e2e/keylime-release.sh (own venv)
  KEYLET_TB_SKIP_APT=1 KEYLET_RELEASE=7.12.2 bash "$ROOT/tests/e2e/keylime-release.sh" install </dev/null
fi
say "ready"
