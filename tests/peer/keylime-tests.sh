#!/bin/bash
# keylime-tests' agent tests run unmodified against keylet.
#
#   tests/peer/keylime-tests.sh KEYLIME_TESTS_DIR BEAKERLIB_DIR [TEST...]
#
# KEYLIME_TESTS_DIR: a checkout of RedHat-SP-Security/keylime-tests. BEAKERLIB_DIR: beakerlib
# prepared as its README says (`make && make DD=DIR install`; DIR/share/beakerlib/beakerlib.sh).
# Neither is part of keylet: bring your own copies. TEST: paths under KEYLIME_TESTS_DIR such as
# functional/basic-attestation-on-localhost (default: the agent tests README lists).
#
# Each test runs as `bash test.sh` (beakerlib, no tmt), as root, in a private mount, network,
# UTS and PID namespace: /etc/keylime, /etc/systemd/system, /var/lib/keylime, /var/lib/swtpm, /var/tmp/limeLib,
# /keylime-tests, /etc/ima, /sys/kernel/security and /root are tmpfs there, the Keylime ports are the
# namespace's own loopback, and the suite's pkill/pgrep see only its own processes. The host
# keeps none of it. Inside, PATH starts with tests/peer/shim: keylime_agent is keylet, rpm/yum/
# systemctl/service stand in for Fedora's, swtpm runs behind a multiplexer (tpm_mux.py), and
# keylime_ima_emulator emulates the kernel's IMA list (ima_emulator.py). Keylime 7.14.3 comes from
# the venv scripts/testbed.sh installs (KEYLET_TB_VENV). The host name is the suite's agent id,
# and keylet's `uuid = hostname` registers under it (README, "keylime-tests").
#
# Environment: KEYLET_BIN (default target/debug/keylet), KEYLET_TB_VENV
# (/var/tmp/keylet-testbed/venv), KEYLET_PEER_LOGS (/var/tmp/keylet-keylime-tests),
# KEYLET_PEER_TIMEOUT seconds per test (900).
# Ends with "N passed, N failed"; exit 0 only if none failed.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
AGENT_ID=d432fbb3-d2f1-4a97-9ef7-75bd81c00000
DEFAULT_TESTS=(
  functional/basic-attestation-on-localhost
  functional/tpm_policy-sanity-on-localhost
  functional/keylime_tenant-commands-on-localhost
  functional/agent-resilience-and-reattestation
  functional/push-attestation-on-localhost
  functional/agent_UUID_assignment_options
  functional/tenant_api_version_negotiation
)
# Tests that make the agent or the tenant contact an address outside this machine.
REFUSED=(regression/keylime-agent-option-override-through-envvar)

die() { echo "keylime-tests.sh: $*" >&2; exit 2; }

(($# >= 2)) || die "usage: $0 KEYLIME_TESTS_DIR BEAKERLIB_DIR [TEST...]"
KT=$(readlink -f "$1") BL=$(readlink -f "$2")
shift 2
TESTS=("$@")
((${#TESTS[@]})) || TESTS=("${DEFAULT_TESTS[@]}")
for t in "${TESTS[@]}"; do
  for r in "${REFUSED[@]}"; do
    [[ ${t%/} == "$r" ]] && die "$r makes the agent contact an outside address; it is never run here"
  done
done

[[ -f $KT/Library/test-helpers/lib.sh ]] || die "$KT is not a keylime-tests checkout (no Library/test-helpers/lib.sh)"
BLSH=$BL/share/beakerlib
[[ -f $BLSH/beakerlib.sh ]] || die "$BL holds no prepared beakerlib (share/beakerlib/beakerlib.sh): run \`make && make DD=$BL install\` in a beakerlib checkout"
KEYLET_BIN=$(readlink -f "${KEYLET_BIN:-$repo/target/debug/keylet}")
[[ -x $KEYLET_BIN ]] || die "no keylet binary at $KEYLET_BIN: run \`cargo build -p keylet\` or set KEYLET_BIN"
VENV=${KEYLET_TB_VENV:-/var/tmp/keylet-testbed/venv}
[[ -x $VENV/bin/keylime_verifier ]] || die "no Keylime venv at $VENV: run scripts/setup.sh (or set KEYLET_TB_VENV)"
TEMPLATES=
for d in "$(dirname "$VENV")"/sdist/keylime-*/templates; do [[ -d $d ]] && TEMPLATES=$d; done
[[ -n $TEMPLATES ]] || die "no Keylime config templates next to $VENV (sdist/keylime-*/templates): run scripts/testbed.sh install"
((EUID == 0)) || die "the suite needs root (it runs in private namespaces and mounts tmpfs)"
for cmd in unshare expect swtpm swtpm_setup tpm2_pcrextend jq openssl; do
  command -v "$cmd" >/dev/null || die "$cmd is missing (apt-get install expect swtpm swtpm-tools tpm2-tools jq openssl)"
done
LOGS=${KEYLET_PEER_LOGS:-/var/tmp/keylet-keylime-tests}
TIMEOUT=${KEYLET_PEER_TIMEOUT:-900}

# The private mounts below need their mount points on the host's file system: the ones this
# run makes are removed afterwards (empty), so that no other tool finds a Keylime install here.
MOUNT_POINTS=(/etc/keylime /var/lib/keylime /var/lib/swtpm /var/tmp/limeLib /keylime-tests /etc/ima
  /usr/share/beakerlib)
if [[ ${KEYLET_PEER_INSIDE:-} != 1 ]]; then
  made=()
  for d in "${MOUNT_POINTS[@]}"; do [[ -e $d ]] || made+=("$d"); done
  export KEYLET_BIN KEYLET_TB_VENV=$VENV KEYLET_PEER_LOGS=$LOGS KEYLET_PEER_INSIDE=1
  rc=0
  unshare --mount --net --uts --pid --fork --mount-proc --propagation private \
    "$0" "$KT" "$BL" "${TESTS[@]}" || rc=$?
  for d in "${made[@]}"; do rmdir "$d" 2>/dev/null || true; done
  exit "$rc"
fi

# ---- inside the namespaces
# This shell is the PID namespace's init: it ignores signals it has no handler for, and its
# exit ends every process of the run.
trap 'echo "keylime-tests.sh: stopped by a signal" >&2; exit 130' INT TERM
ip link set lo up || die "cannot bring up loopback in the private network namespace"
hostname "$AGENT_ID"
for d in "${MOUNT_POINTS[@]:0:6}" /etc/systemd/system /sys/kernel/security; do
  { mkdir -p "$d" && mount -t tmpfs -o mode=0755 keylime-tests "$d"; } || die "cannot mount a tmpfs on $d"
done
# root's home too: some tests make gpg keys and ~/.rpmmacros there, and one runs rm -rf /root/.gnupg
mount -t tmpfs -o mode=0700 keylime-tests /root || die "cannot mount a tmpfs on /root"
{ mkdir -p /usr/share/beakerlib && mount --bind "$BLSH" /usr/share/beakerlib; } ||
  die "cannot bind $BLSH on /usr/share/beakerlib"
# Some tests patch the installed Keylime (found with `find /usr`): they get a private copy,
# bound over the venv's package and under /usr/local/src, so the shared venv stays untouched.
site=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
{ mount -t tmpfs keylime-tests /usr/local/src && mkdir -p /usr/local/src/keylime-copy /usr/local/src/keylime &&
  cp -a "$site/keylime/." /usr/local/src/keylime-copy/ &&
  mount --bind /usr/local/src/keylime-copy "$site/keylime" &&
  mount --bind /usr/local/src/keylime-copy /usr/local/src/keylime; } ||
  die "cannot make a private copy of Keylime's package"
mkdir -p /sys/kernel/security/ima && : >/sys/kernel/security/ima/ascii_runtime_measurements &&
  : >/sys/kernel/security/ima/policy

# Keylime's own defaults, as its packages install them; the agent's is Keylime's sample.
"$VENV/bin/keylime_upgrade_config" --defaults --templates "$TEMPLATES" --out /etc/keylime \
  >/var/tmp/limeLib/keylime_upgrade_config.log 2>&1 || die "keylime_upgrade_config failed"
mkdir -p /etc/keylime/agent.conf.d
cat >/etc/keylime/agent.conf.d/50-keylet-keylime-tests.conf <<'CONF'
# keylet on the keylime-tests host (see keylet's README, "keylime-tests").
[agent]
# The sample's placeholder UUID is refused by keylet; this host is named after it instead.
uuid = "hostname"
# No keylime user here: keylet stays root, as the suite's own processes do.
run_as = ""
# The suite's payloads carry autorun.sh and revocation actions: this operator wants them run.
enable_payload_script = true
enable_revocation_actions = true
CONF

# swtpm_setup's local CA, private to the namespace.
mkdir -p /var/lib/swtpm/localca
cat >/var/lib/swtpm/swtpm-localca.conf <<'CONF'
statedir = /var/lib/swtpm/localca
signingkey = /var/lib/swtpm/localca/signkey.pem
issuercert = /var/lib/swtpm/localca/issuercert.pem
certserial = /var/lib/swtpm/localca/certserial
CONF
printf -- '--platform-manufacturer keylime-tests\n--platform-version 2.1\n--platform-model swtpm\n' \
  >/var/lib/swtpm/swtpm-localca.options
cat >/var/lib/swtpm/swtpm_setup.conf <<'CONF'
create_certs_tool = /usr/bin/swtpm_localca
create_certs_tool_config = /var/lib/swtpm/swtpm-localca.conf
create_certs_tool_options = /var/lib/swtpm/swtpm-localca.options
CONF
echo socket >/var/tmp/limeLib/swtpm_setup

export PATH=$here/shim:$VENV/bin:$PATH limeIGNORE_SYSTEMD=1 KEYLET_BIN
export TPM2TOOLS_TCTI=swtpm:host=127.0.0.1,port=2321 TCTI=swtpm:host=127.0.0.1,port=2321

# variant_env MAIN_FMF NAME: KEY=VALUE lines of the "/NAME:" block's environment.
variant_env() {
  awk -v want="/$2:" '
    /^[^ ]/ { inside = ($0 == want); env = 0; next }
    inside && /^ +environment:/ { env = 1; next }
    inside && env && /^ +[A-Za-z_][A-Za-z0-9_]*: / {
      line = $0; sub(/^ +/, "", line); k = line; sub(/:.*/, "", k); v = line; sub(/^[^:]*: */, "", v)
      print k "=" v; next
    }
    inside && env && /^ +[a-z]/ { env = 0 }
  ' "$1"
}

mkdir -p "$LOGS"
passed=0 failed=0
for t in "${TESTS[@]}"; do
  t=${t%/} name=${t//\//_}
  out=$LOGS/$name
  rm -rf "$out"; mkdir -p "$out"
  # TEST/VARIANT: the variant's environment from the test's main.fmf (e.g. .../push).
  dir=$KT/$t vars=()
  if [[ ! -f $dir/test.sh && -f $(dirname "$dir")/main.fmf ]]; then
    dir=$(dirname "$dir")
    mapfile -t vars < <(variant_env "$dir/main.fmf" "${t##*/}")
    ((${#vars[@]})) || { echo "FAIL $t: no variant /${t##*/} with an environment in $dir/main.fmf"; failed=$((failed + 1)); continue; }
  fi
  if [[ ! -f $dir/test.sh ]]; then
    echo "FAIL $t: no $dir/test.sh"; failed=$((failed + 1)); continue
  fi
  echo "RUN  $t ${vars[*]} (log: $out/test.log)"
  start=$SECONDS
  (cd "$dir" && env "${vars[@]}" BEAKERLIB_DIR="$out/journal" timeout -k 10 "$TIMEOUT" bash ./test.sh) \
    >"$out/test.log" 2>&1 </dev/null
  rc=$?
  cp /var/tmp/limeLib/*.log "$out/" 2>/dev/null
  result=$(sed -n 's/^TESTRESULT_RESULT_STRING=//p' "$out/journal/TestResults" 2>/dev/null)
  service swtpm stop >/dev/null 2>&1
  if [[ $result == PASS && $rc == 0 ]]; then
    echo "PASS $t ($((SECONDS - start)) s)"; passed=$((passed + 1))
  else
    echo "FAIL $t ($((SECONDS - start)) s, result ${result:-none}, exit $rc):"
    grep -E '^:: \[ +[0-9:]+ +\] :: \[ +FAIL +\]' "$out/test.log" | head -10 | sed 's/^/    /'
    failed=$((failed + 1))
  fi
done
echo "$passed passed, $failed failed"
((failed == 0))
