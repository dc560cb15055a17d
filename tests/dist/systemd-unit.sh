#!/usr/bin/env bash
# tests/dist/systemd-unit.sh - dist/keylet.service passes systemd's own checks:
# `systemd-analyze verify` without a warning, and `systemd-analyze security`
# (offline) at or below an exposure of $KEYLET_UNIT_MAX_EXPOSURE (default 2.0;
# the unit scores about 1.5). A copy with the hardening stripped must exceed it,
# so the threshold really discriminates. Skipped with a message when
# systemd-analyze is not installed. Takes about 2 s.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
UNIT=$ROOT/dist/keylet.service
MAX=${KEYLET_UNIT_MAX_EXPOSURE:-2.0}
# --threshold counts in tenths (exposure 2.0 = 20).
THRESHOLD=$(awk -v m="$MAX" 'BEGIN { printf "%d", m * 10 + 0.5 }')

if ! command -v systemd-analyze >/dev/null; then
  echo "SKIP: systemd-analyze is not installed (apt-get install systemd); dist/keylet.service not checked"
  exit 0
fi
tmp=$(mktemp -d /tmp/keylet-unit.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

# verify needs ExecStart to exist: point it at a real executable.
bin=$(command -v true)
sed "s#^ExecStart=/usr/local/bin/keylet #ExecStart=$bin #" "$UNIT" >"$tmp/keylet.service"
grep -q "^ExecStart=$bin run$" "$tmp/keylet.service" || fail "unexpected ExecStart line in $UNIT"

out=$(systemd-analyze verify "$tmp/keylet.service" 2>&1) || fail "systemd-analyze verify failed: $out"
[[ -z $out ]] || fail "systemd-analyze verify warned: $out"
echo "ok: systemd-analyze verify"

# exposure SCORE_FILE -> the overall exposure number
exposure() {
  systemd-analyze security --offline=true "$1" 2>&1 |
    sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p'
}
score=$(exposure "$tmp/keylet.service")
[[ -n $score ]] || fail "no exposure score from systemd-analyze security"
systemd-analyze security --offline=true --threshold="$THRESHOLD" "$tmp/keylet.service" >/dev/null 2>&1 ||
  fail "exposure $score is over the threshold $MAX"
echo "ok: systemd-analyze security exposure $score <= $MAX"

# The same unit without its hardening must fail the threshold.
grep -vE '^(Protect|Private|Restrict|SystemCall|Capability|Ambient|NoNewPrivileges|LockPersonality|MemoryDeny|RemoveIPC|Device|UMask|User|Group|Supplementary)' \
  "$tmp/keylet.service" >"$tmp/bare.service"
bare=$(exposure "$tmp/bare.service")
if systemd-analyze security --offline=true --threshold="$THRESHOLD" "$tmp/bare.service" >/dev/null 2>&1; then
  fail "the unhardened unit (exposure $bare) passes the threshold $MAX: the check does not discriminate"
fi
echo "ok: without hardening the exposure is $bare (> $MAX)"

# What the README promises about the unit.
for line in 'User=keylime' 'SupplementaryGroups=tss' 'AmbientCapabilities=' 'CapabilityBoundingSet=' \
  'ProtectSystem=strict' 'StateDirectory=keylime' 'NoNewPrivileges=yes' \
  'RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX' 'SystemCallFilter=@system-service'; do
  grep -qx "$line" "$UNIT" || fail "$UNIT lacks '$line'"
done
echo "ok: non-root settings present"
echo "systemd-unit: 3 passed, 0 failed"
