#!/usr/bin/env bash
# build-deb.sh - keylet's Debian package for one architecture, with dpkg-deb from
# a staged tree (no debhelper, no cargo-deb):
#   /usr/bin/keylet                            the static binary (scripts/build-static.sh)
#   /lib/systemd/system/keylet.service         dist/keylet.service, ExecStart=/usr/bin/keylet
#   /usr/lib/tmpfiles.d/keylet-securityfs.conf dist/keylet-securityfs.conf
#   /etc/keylime/agent.conf                    dist/deb/agent.conf, a commented conffile
#   /etc/keylime/agent.conf.d/                 for site snippets
# and the maintainer scripts of dist/deb: postinst makes the system user keylime
# (group keylime, also in tss) and /var/lib/keylime (0700); remove keeps state and
# configuration, purge deletes /var/lib/keylime.
#
# Usage: scripts/build-deb.sh [--target T] [--revision N] [--bin FILE] [--out DIR]
#   --target T    x86_64-unknown-linux-musl (amd64, default), aarch64-unknown-linux-musl
#                 (arm64), armv7-unknown-linux-musleabihf (armhf), riscv64gc-unknown-linux-gnu
#                 (riscv64, static glibc)
#   --revision N  Debian revision: the package version is <keylet version>-N (default 1)
#   --bin FILE    package this binary instead of building it (it must be a static,
#                 stripped executable of the target's architecture that runs here)
#   --out DIR     where the .deb goes (default $CARGO_TARGET_DIR/deb, i.e. target/deb)
# Prints the path of the package on its last line. Exit 1 on a failure; a binary
# over build-static.sh's size budget is packaged with a warning.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
# shellcheck source=scripts/cross-env.sh
source "$ROOT/scripts/cross-env.sh"
TARGET=x86_64-unknown-linux-musl REVISION=1 BIN='' OUT=''
while (($#)); do
  case $1 in
    --target | --revision | --bin | --out)
      [[ $# -ge 2 ]] || { echo "$1 needs a value" >&2; exit 2; }
      case $1 in
        --target) TARGET=$2 ;; --revision) REVISION=$2 ;; --bin) BIN=$2 ;; --out) OUT=$2 ;;
      esac
      shift ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed 's/^# \{0,1\}//;$d'; exit 0 ;;
    *) echo "unknown option $1 (try --help)" >&2; exit 2 ;;
  esac
  shift
done
die() { echo "build-deb: $*" >&2; exit 1; }
[[ $REVISION =~ ^[0-9][0-9A-Za-z.+~]*$ ]] || die "--revision $REVISION: not a Debian revision (digits first)"
command -v dpkg-deb >/dev/null || die "dpkg-deb is missing (apt-get install dpkg)"

# the static targets of scripts/build-static.sh; Debian architecture and what `file`
# says about an executable of it from scripts/cross-env.sh
case $TARGET in
  x86_64-unknown-linux-musl | aarch64-unknown-linux-musl | armv7-unknown-linux-musleabihf | \
    riscv64gc-unknown-linux-gnu) cross_table "$TARGET"; ARCH=$X_DEB ELF=$X_ELF ;;
  *) die "no static build for target $TARGET (scripts/build-static.sh --help)" ;;
esac

TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
OUT=${OUT:-$TARGET_DIR/deb}
if [[ -z $BIN ]]; then
  rc=0
  bash "$ROOT/scripts/build-static.sh" --target "$TARGET" >&2 || rc=$?
  ((rc == 3)) && echo "build-deb: WARNING: the $TARGET binary is over the size budget; packaged anyway" >&2
  ((rc == 0 || rc == 3)) || die "scripts/build-static.sh --target $TARGET failed (exit $rc)"
  BIN=$TARGET_DIR/$TARGET/release/keylet
fi
[[ -x $BIN ]] || die "no executable at $BIN"
desc=$(file -b "$BIN")
[[ $desc == *"$ELF"* ]] || die "$BIN is not a $ARCH executable: $desc"
[[ $desc == *"statically linked"* || $desc == *"static-pie linked"* ]] || die "$BIN is not static: $desc"
[[ $desc == *"stripped"* && $desc != *"not stripped"* ]] || die "$BIN is not stripped: $desc"
# never package a binary that does not run
read -r -a runner <<<"$(cross_runner "$TARGET" 2>/dev/null || true)"
BIN_VERSION=$("${runner[@]}" "$BIN" --version 2>/dev/null) || die "$BIN does not run${runner[*]:+ under ${runner[*]}}"

VERSION=$(sed -n '/^\[workspace.package\]/,/^\[/ s/^version = "\(.*\)"/\1/p' Cargo.toml)
[[ -n $VERSION ]] || die "no version in Cargo.toml [workspace.package]"
[[ $BIN_VERSION == *"$VERSION"* ]] || die "$BIN says '$BIN_VERSION', not version $VERSION"
DEB_VERSION=$VERSION-$REVISION

STAGE=$(mktemp -d "${TMPDIR:-/tmp}/keylet-deb.XXXXXX")
trap 'rm -rf "$STAGE"' EXIT
chmod 0755 "$STAGE"
install -D -m 0755 "$BIN" "$STAGE/usr/bin/keylet"
install -d -m 0755 "$STAGE/lib/systemd/system" "$STAGE/usr/lib/tmpfiles.d" \
  "$STAGE/etc/keylime/agent.conf.d" "$STAGE/usr/share/doc/keylet" "$STAGE/DEBIAN"
{
  echo "# Installed by the keylet Debian package: the binary is /usr/bin/keylet, the user"
  echo "# keylime was made by its postinst. Site changes: systemctl edit keylet."
  sed 's#/usr/local/bin/keylet#/usr/bin/keylet#g' dist/keylet.service
} >"$STAGE/lib/systemd/system/keylet.service"
grep -qx 'ExecStart=/usr/bin/keylet run' "$STAGE/lib/systemd/system/keylet.service" ||
  die "dist/keylet.service: no 'ExecStart=/usr/local/bin/keylet run' line to point at /usr/bin/keylet"
install -m 0644 dist/keylet-securityfs.conf "$STAGE/usr/lib/tmpfiles.d/keylet-securityfs.conf"
install -m 0644 dist/deb/agent.conf "$STAGE/etc/keylime/agent.conf"
cat >"$STAGE/usr/share/doc/keylet/copyright" <<'EOF'
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: keylet

Files: *
License: MIT or Apache-2.0
 keylet and the Rust crates linked into it are distributed under the MIT or
 Apache-2.0 licenses (the crates' own terms are in their sources).
EOF
chmod 0644 "$STAGE/usr/share/doc/keylet/copyright"

for s in postinst prerm postrm; do install -m 0755 "dist/deb/$s" "$STAGE/DEBIAN/$s"; done
echo /etc/keylime/agent.conf >"$STAGE/DEBIAN/conffiles"
# modes that do not depend on the builder's umask: directories 0755, files 0644 but
# the binary and the maintainer scripts (0755, set above)
find "$STAGE" -type d -exec chmod 0755 {} +
find "$STAGE" -type f ! -path "$STAGE/usr/bin/keylet" ! -path "$STAGE/DEBIAN/p*" -exec chmod 0644 {} +
(cd "$STAGE" && find . -type f ! -path './DEBIAN/*' ! -path './etc/*' -printf '%P\n' | LC_ALL=C sort |
  xargs md5sum) >"$STAGE/DEBIAN/md5sums"
# Installed-Size as dpkg-gencontrol counts it (KiB per file rounded up, 1 per directory),
# not du's disk usage, which depends on the file system the package is built on
size_kb=$(cd "$STAGE" && find . -path ./DEBIAN -prune -o -mindepth 1 \( -type f -printf '%s\n' -o -printf '1024\n' \) |
  awk '{ kb += int(($1 + 1023) / 1024) } END { print kb + 0 }')
cat >"$STAGE/DEBIAN/control" <<EOF
Package: keylet
Version: $DEB_VERSION
Architecture: $ARCH
Maintainer: keylet developers <keylet@example.invalid>
Installed-Size: $size_kb
Depends: adduser
Recommends: tpm-udev
Section: admin
Priority: optional
Description: TPM 2.0 attestation agent for Keylime
 keylet registers the host's TPM keys with a Keylime registrar and answers the
 Keylime verifier's quote requests over HTTPS with mutual TLS, so that the
 verifier can attest the host's boot and runtime state. One static binary: no
 TPM software stack, no OpenSSL, no Python.
 .
 It runs as the system user keylime (group tss for /dev/tpmrm0) from
 keylet.service; configure /etc/keylime/agent.conf before starting it.
EOF
chmod 0644 "$STAGE/DEBIAN/control" "$STAGE/DEBIAN/conffiles" "$STAGE/DEBIAN/md5sums"

mkdir -p "$OUT"
deb=$OUT/keylet_${DEB_VERSION}_$ARCH.deb
# Reproducible (scripts/release-verify.sh): the ar and tar times are the commit's
# (SOURCE_DATE_EPOCH: the ar member dates; file times clamped to it), owners root:root,
# files sorted by name (dpkg-deb does), modes from the install -m above (not the
# umask), and xz single-threaded: its multi-threaded output depends on the thread
# count, i.e. on the build machine's cores.
SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)} \
  dpkg-deb --root-owner-group -Zxz --threads-max=1 --build "$STAGE" "$deb" >/dev/null ||
  die "dpkg-deb --build failed"
echo "build-deb: $TARGET -> $ARCH, $(stat -c %s "$deb") bytes, binary $(stat -c %s "$BIN") bytes" >&2
echo "$deb"
