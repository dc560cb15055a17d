#!/usr/bin/env bash
# sbom.sh - the CycloneDX SBOM (JSON, spec 1.5) of one keylet release binary: every crate
# linked into it for that target and feature set, with version, license, purl and
# checksum (cargo-cyclonedx, pinned in scripts/setup.sh --release; build-dependencies
# left out; proc-macros, which run only at compile time, listed), plus what the crate
# graph does not show: the Rust standard library built into the binary (from rust-src,
# scripts/build-static.sh) and the toolchain that built it (rustc, LLVM). The binary is
# the SBOM's subject, named by its SHA-256.
#
# Usage: scripts/sbom.sh --target T --bin FILE --out FILE [--no-default-features] [--features F]
# Reproducible like the binary: the time is SOURCE_DATE_EPOCH (default the commit's),
# the serial number is derived from the binary's hash, no path of the build machine.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
TARGET='' BIN='' OUT='' FEATURES=()
while (($#)); do
  case $1 in
    --target | --bin | --out | --features)
      [[ $# -ge 2 ]] || { echo "$1 needs a value" >&2; exit 2; }
      case $1 in
        --target) TARGET=$2 ;; --bin) BIN=$2 ;; --out) OUT=$2 ;; --features) FEATURES+=(--features "$2") ;;
      esac
      shift ;;
    --no-default-features) FEATURES+=(--no-default-features) ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed 's/^# \{0,1\}//;$d'; exit 0 ;;
    *) echo "unknown option $1 (try --help)" >&2; exit 2 ;;
  esac
  shift
done
die() { echo "sbom: $*" >&2; exit 1; }
[[ -n $TARGET && -n $BIN && -n $OUT ]] || { echo "sbom: --target, --bin and --out are needed (try --help)" >&2; exit 2; }
[[ -f $BIN ]] || die "no binary at $BIN"
command -v cargo-cyclonedx >/dev/null ||
  die "cargo-cyclonedx is missing: scripts/setup.sh --release (cargo install --locked cargo-cyclonedx@0.5.9)"
command -v jq >/dev/null || die "jq is missing (apt-get install jq)"

SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct)}
sha=$(sha256sum <"$BIN" | cut -d' ' -f1)
rustc_v=$(rustc -vV)
rust_version=$(sed -n 's/^release: //p' <<<"$rustc_v")
# cargo-cyclonedx writes one file next to each Cargo.toml of the workspace: a name of this
# run, deleted at the end (only shell/'s, the keylet binary's, is used)
name=keylet-sbom-$$
trap 'find "$ROOT" -mindepth 2 -maxdepth 2 -name "$name*.json" -delete' EXIT
cargo cyclonedx -q --manifest-path shell/Cargo.toml --format json --spec-version 1.5 --no-build-deps \
  --target "$TARGET" "${FEATURES[@]}" --override-filename "$name" >&2 ||
  die "cargo cyclonedx failed"
raw=$(find "$ROOT/shell" -maxdepth 1 -name "$name*.json" | head -n 1)
[[ -s $raw ]] || die "cargo cyclonedx wrote no $name*.json in shell/"

mkdir -p "$(dirname "$OUT")"
jq --arg sha "$sha" --arg ts "$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%dT%H:%M:%SZ)" \
  --arg rv "$rust_version" --arg root "$ROOT" --arg target "$TARGET" \
  --arg commit "$(sed -n 's/^commit-hash: //p' <<<"$rustc_v")" \
  --arg llvm "$(sed -n 's/^LLVM version: //p' <<<"$rustc_v")" \
  --arg host "$(sed -n 's/^host: //p' <<<"$rustc_v")" '
  # a UUID (version 5 layout) from the binary hash: the same binary, the same serial number
  def uuid: .[0:8] + "-" + .[8:12] + "-5" + .[13:16] + "-8" + .[17:20] + "-" + .[20:32];
  # no path of the machine that made it
  walk(if type == "string" then gsub($root; ".") else . end)
  | .serialNumber = "urn:uuid:" + ($sha | uuid)
  | .metadata.timestamp = $ts
  | .metadata.component.hashes = [{alg: "SHA-256", content: $sha}]
  | .metadata.component.properties = ((.metadata.component.properties // []) + [{name: "keylet:target", value: $target}])
  | .metadata.tools = ((.metadata.tools // {}) | if type == "array" then {components: .} else . end)
  | .metadata.tools.components = ((.metadata.tools.components // []) + [{
      type: "application", name: "rustc", version: $rv,
      description: ("the Rust toolchain that built the binary: rustc " + $rv + " (" + $commit + "), LLVM " + $llvm + ", host " + $host),
      properties: [{name: "rustc:commit-hash", value: $commit}, {name: "rustc:llvm-version", value: $llvm}]}])
  | .components = ((.components // []) + [{
      type: "library", "bom-ref": ("rust-std@" + $rv), name: "std", version: $rv,
      description: "the Rust standard library (core, alloc, std), built from rust-src into the binary",
      licenses: [{expression: "MIT OR Apache-2.0"}], purl: ("pkg:generic/rust-std@" + $rv)}])
' "$raw" >"$OUT.tmp" || die "jq could not complete $raw"
mv "$OUT.tmp" "$OUT"
echo "sbom: $OUT ($(jq '.components | length' "$OUT") components, binary $sha)" >&2
