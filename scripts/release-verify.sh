#!/usr/bin/env bash
# release-verify.sh - proves that a release is reproducible: builds one commit twice
# with scripts/release.sh, each time from its own fresh clone in its own directory
# (different paths, its own target directory; the second build also with its own
# CARGO_HOME, the crates unpacked anew), one after the other, and compares every
# artefact byte by byte. scripts/release.sh --verify runs it.
#
# Usage: scripts/release-verify.sh [--commit REV] [--work DIR] [--keep] [--target T]...
#   --commit REV  the commit to build (default HEAD; uncommitted changes are not built)
#   --work DIR    where the two clones go (default a new directory under /var/tmp)
#   --keep        keep the clones and their outputs (default: deleted when all match)
#   --target T    as scripts/release.sh (repeatable; default all four)
# Prints one line per artefact (sha256 of build A, and "same" or the first differing
# byte of build B) and the time each build took.
# Exit status: 0 every artefact is byte-identical; 1 a build failed; 2 usage;
# 4 an artefact differs (named; both copies are kept under DIR for diffoscope).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
COMMIT=HEAD WORK='' KEEP=0 TARGET_ARGS=()
while (($#)); do
  case $1 in
    --commit | --work | --target)
      [[ $# -ge 2 ]] || { echo "$1 needs a value" >&2; exit 2; }
      case $1 in
        --commit) COMMIT=$2 ;; --work) WORK=$2 ;; --target) TARGET_ARGS+=(--target "$2") ;;
      esac
      shift ;;
    --keep) KEEP=1 ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed 's/^# \{0,1\}//;$d'; exit 0 ;;
    *) echo "unknown option $1 (try --help)" >&2; exit 2 ;;
  esac
  shift
done
die() { echo "release-verify: $*" >&2; exit 1; }
SHA=$(git -C "$ROOT" rev-parse --verify "$COMMIT^{commit}" 2>/dev/null) ||
  { echo "release-verify: --commit $COMMIT: not a commit of $ROOT" >&2; exit 2; }
[[ -z $(git -C "$ROOT" status --porcelain --untracked-files=no) ]] ||
  echo "release-verify: note: uncommitted changes in $ROOT are not part of the builds" >&2
WORK=${WORK:-$(mktemp -d /var/tmp/keylet-verify.XXXXXX)}
mkdir -p "$WORK"
CARGO_HOME_A=${CARGO_HOME:-$HOME/.cargo}

# build NAME CLONE_DIR [VAR=VALUE...]: a fresh clone of the commit, then its own
# scripts/release.sh into $WORK/NAME-out
build() {
  local name=$1 dir=$2 t0=$SECONDS
  shift 2
  rm -rf "$dir" "$WORK/$name-out"
  mkdir -p "$(dirname "$dir")"
  git clone --quiet --no-checkout "$ROOT" "$dir" || die "git clone into $dir failed"
  git -C "$dir" checkout --quiet --detach "$SHA" || die "checkout of $SHA in $dir failed"
  echo "==== release-verify: build $name of $SHA in $dir" >&2
  (cd "$dir" && env -u CARGO_TARGET_DIR "$@" bash scripts/release.sh --out "$WORK/$name-out" \
    "${TARGET_ARGS[@]}") >"$WORK/$name.log" 2>&1 ||
    { tail -n 30 "$WORK/$name.log" >&2; die "build $name failed (log: $WORK/$name.log)"; }
  echo "$name: $((SECONDS - t0)) s" >>"$WORK/times"
}

: >"$WORK/times"
build a "$WORK/a/keylet"
# B: another path and another CARGO_HOME (the crate archives copied, unpacked anew)
home_b=$WORK/b/cargo-home
mkdir -p "$home_b/registry"
for d in index cache; do
  [[ ! -d $CARGO_HOME_A/registry/$d ]] || cp -a "$CARGO_HOME_A/registry/$d" "$home_b/registry/"
done
build b "$WORK/b/src/other-place/keylet-b" CARGO_HOME="$home_b"

differ=0
mapfile -t files < <(cd "$WORK/a-out" && LC_ALL=C ls)
[[ $(cd "$WORK/b-out" && LC_ALL=C ls) == "$(printf '%s\n' "${files[@]}")" ]] ||
  { echo "release-verify: the two builds made different sets of files" >&2; differ=1; }
for f in "${files[@]}"; do
  sum=$(sha256sum <"$WORK/a-out/$f" | cut -d' ' -f1)
  if cmp -s "$WORK/a-out/$f" "$WORK/b-out/$f"; then
    printf 'same     %s  %s\n' "$sum" "$f"
  else
    printf 'DIFFERS  %s  %s: %s\n' "$sum" "$f" "$(cmp "$WORK/a-out/$f" "$WORK/b-out/$f" 2>&1 | head -n 1)"
    differ=1
  fi
done
cat "$WORK/times"
if ((differ)); then
  echo "release-verify: NOT reproducible; both outputs kept: diffoscope $WORK/a-out/FILE $WORK/b-out/FILE" >&2
  exit 4
fi
echo "release-verify: ${#files[@]} files byte-identical across both builds of $SHA"
((KEEP)) || rm -rf "$WORK"
