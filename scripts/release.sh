#!/usr/bin/env bash
# release.sh - every release artefact of keylet in one directory: the static binary
# and the Debian package of each target, and SHA256SUMS over them.
#
# Usage: scripts/release.sh [--out DIR] [--target T]...
#        scripts/release.sh --verify [scripts/release-verify.sh options]
#   --verify    build the commit twice from two fresh clones and compare every file
#               byte by byte (scripts/release-verify.sh --help); exit 4 if one differs
#   --target T  one of the targets of scripts/build-static.sh (repeatable; default all
#               four: x86_64-unknown-linux-musl, aarch64-unknown-linux-musl,
#               armv7-unknown-linux-musleabihf, riscv64gc-unknown-linux-gnu)
#   --out DIR   default $CARGO_TARGET_DIR/dist/keylet-<version> (target/dist/...)
# For each target: scripts/build-static.sh (static, stripped, runs here or under
# qemu-user, size budget), scripts/build-deb.sh on that binary. DIR then holds
#   keylet-<version>-<target>           the binaries
#   keylet_<version>-1_<arch>.deb       the packages (amd64, arm64, armhf, riscv64)
#   keylet-<version>-<target>.cdx.json  the CycloneDX SBOM of each binary (scripts/sbom.sh)
#   SHA256SUMS                          sha256sum of all of them (sha256sum -c SHA256SUMS)
# The builds are reproducible: the same commit gives the same bytes wherever and
# whenever it is built (SOURCE_DATE_EPOCH is the commit's time; the paths are remapped
# in build-static.sh; build-deb.sh packs deterministically).
# Exit status: 0 all built; 1 a target could not be built or packaged (named; no
# SHA256SUMS is written, so a partial directory is not taken for a release); 3 all
# built but a binary is over the size budget (KEYLET_SIZE_BUDGET, build-static.sh).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
ALL=(x86_64-unknown-linux-musl aarch64-unknown-linux-musl armv7-unknown-linux-musleabihf
  riscv64gc-unknown-linux-gnu)
[[ ${1:-} != --verify ]] || { shift; exec bash "$ROOT/scripts/release-verify.sh" "$@"; }
TARGETS=() OUT=''
while (($#)); do
  case $1 in
    --target) [[ $# -ge 2 ]] || { echo "--target needs a value" >&2; exit 2; }
      [[ " ${ALL[*]} " == *" $2 "* ]] || { echo "unsupported target $2 (supported: ${ALL[*]})" >&2; exit 2; }
      TARGETS+=("$2"); shift ;;
    --out) [[ $# -ge 2 ]] || { echo "--out needs a value" >&2; exit 2; }
      OUT=$2; shift ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed 's/^# \{0,1\}//;$d'; exit 0 ;;
    *) echo "unknown option $1 (try --help)" >&2; exit 2 ;;
  esac
  shift
done
((${#TARGETS[@]})) || TARGETS=("${ALL[@]}")
VERSION=$(sed -n '/^\[workspace.package\]/,/^\[/ s/^version = "\(.*\)"/\1/p' Cargo.toml)
[[ -n $VERSION ]] || { echo "release: no version in Cargo.toml" >&2; exit 1; }
# the one time a release carries: its commit's (a date inside a file, the .deb's)
SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct)} ||
  { echo "release: not a git checkout: set SOURCE_DATE_EPOCH" >&2; exit 1; }
export SOURCE_DATE_EPOCH
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
OUT=${OUT:-$TARGET_DIR/dist/keylet-$VERSION}
mkdir -p "$OUT"
rm -f "$OUT/SHA256SUMS"

results=() failed=0 over=0 files=()
for t in "${TARGETS[@]}"; do
  t0=$SECONDS rc=0
  echo "==== release: $t"
  KEYLET_AUDITABLE=1 bash scripts/build-static.sh --target "$t" || rc=$?
  if ((rc != 0 && rc != 3)); then
    results+=("FAIL  $t: scripts/build-static.sh exit $rc"); failed=1; continue
  fi
  ((rc == 3)) && over=1
  bin=$TARGET_DIR/auditable/$t/release/keylet
  install -m 0755 "$bin" "$OUT/keylet-$VERSION-$t"
  if ! deb=$(bash scripts/build-deb.sh --target "$t" --bin "$bin" --out "$OUT" | tail -n 1); then
    results+=("FAIL  $t: scripts/build-deb.sh"); failed=1; continue
  fi
  if ! bash scripts/sbom.sh --target "$t" --bin "$OUT/keylet-$VERSION-$t" --out "$OUT/keylet-$VERSION-$t.cdx.json"; then
    results+=("FAIL  $t: scripts/sbom.sh"); failed=1; continue
  fi
  files+=("keylet-$VERSION-$t" "$(basename "$deb")" "keylet-$VERSION-$t.cdx.json")
  results+=("$(printf '%-5s %-32s %9d B  %s %4d s' "$( ((rc == 3)) && echo OVER || echo OK)" "$t" \
    "$(stat -c %s "$bin")" "$(basename "$deb")" $((SECONDS - t0)))")
done

echo
echo "==== release: $OUT"
printf '%s\n' "${results[@]}"
if ((failed)); then
  echo "release: a target failed (above); no SHA256SUMS written" >&2
  exit 1
fi
(cd "$OUT" && sha256sum "${files[@]}" >SHA256SUMS && sha256sum --quiet -c SHA256SUMS)
echo "SHA256SUMS: $OUT/SHA256SUMS ($((${#files[@]})) files)"
if ((over)); then
  echo "release: a binary is over the size budget (OVER above)" >&2
  exit 3
fi
