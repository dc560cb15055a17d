#!/usr/bin/env bash
# testbed.sh - keylet's loopback-only test environment: swtpm + the real Keylime
# registrar, verifier and tenant (7.14.3, or 7.12.2 with KEYLET_TB_KEYLIME_VERSION),
# all on 127.0.0.1, all state in one dir.
#
# It does not build or start keylet: tests/e2e/*.sh and scripts/demo.sh do.
#
# Usage: scripts/testbed.sh COMMAND [ARGS...]
#   install            apt packages, a venv with the pinned Keylime release, its config templates
#   init               swtpm state + EK certs, EC P-256 CA + server/client certs, Keylime configs
#   start              start swtpm, registrar, verifier (running ones are left alone)
#   up                 install + init + start + env
#   env                write + print STATE/agent.env (values keylet needs) and
#                      STATE/keylime-tools.env (for the Keylime tools; never mix the two)
#   add UUID [IP] [PORT] [tenant args...]
#                      keylime_tenant -c add (default 127.0.0.1 KEYLET_TB_AGENT_PORT),
#                      trivial policy unless tenant args add one
#   status UUID        verifier REST view of the agent (JSON "results")
#   cvstatus UUID      alias of status
#   regstatus UUID     registrar REST view of the agent (JSON "results")
#   reglist            registrar REST: list of registered UUIDs
#   push-add UUID [tenant args...]
#                      keylime_tenant -c add --push-model against the push verifier
#                      (needs KEYLET_TB_PUSH_VERIFIER_PORT)
#   push-status UUID   push verifier REST view of the agent (JSON "results")
#   wait UUID [N] [SECS]  poll the verifier REST API until attestation_count >= N
#                      (default 5, 120 s); exit 1 on timeout or attestation_status FAIL
#   delete UUID        remove the agent from the verifier
#   regdelete UUID     remove the agent from the registrar
#   reset              delete every agent (verifier, registrar) and runtime policy (REST)
#   tenant ARGS...     keylime_tenant ARGS with the testbed's configuration
#   policy ARGS...     keylime-policy ARGS (e.g. "policy create runtime -m LOG")
#   tpm2 TOOL ARGS...  tpm2-tools against the testbed swtpm ("tpm2 pcrread sha256:0,10")
#   tpm-flush          flush transient objects + sessions left in swtpm (no resource manager)
#   tpm-reboot         orderly TPM restart: PCRs reset, transients gone, NV/persistent kept
#   tpm2-start NAME PORT  start an extra swtpm (own, freshly manufactured state; EK cert
#                      from the same local CA) on PORT (control PORT+1)
#   tpm2-stop NAME     stop that extra swtpm
#   service-stop NAME  stop one service (swtpm | registrar | verifier | verifier-push);
#                      "start" brings it back
#   api                the services' REST API version for paths (v2.6 for 7.14.3, v2.4 for 7.13.1,
#                      v2.3 for 7.12.2)
#   ps | logs | stop   process list / service log tails / stop everything started here
#   destroy            stop, then delete the state (keeps venv+sdist unless KEYLET_TB_KEEP_VENV=0)
#
# Settings (environment; saved in STATE/settings.env and reused, the environment wins):
#   KEYLET_TB_STATE          state dir (default /var/tmp/keylet-testbed)
#   KEYLET_TB_VENV           venv (default STATE/venv); one per Keylime release
#   KEYLET_TB_KEYLIME_VERSION  Keylime release: 7.14.3 (default), 7.13.1 or 7.12.2, each with a tested
#                            pin set (docs/keylime-releases.md: what differs between them)
#   KEYLET_TB_SWTPM_PORT     swtpm port (default 24321; control port +1)
#   KEYLET_TB_REGISTRAR_PORT / KEYLET_TB_REGISTRAR_TLS_PORT   (default 18890 / 18891)
#   KEYLET_TB_VERIFIER_PORT  (default 18881)
#   KEYLET_TB_AGENT_PORT     port the agent under test listens on (default 19002)
#   KEYLET_TB_PUSH_VERIFIER_PORT  a second verifier with [verifier] mode = push (Keylime REST
#                            API v3.0, agents send evidence) on this port, its own database and
#                            tenant config (conf/verifier-push.conf, conf/tenant-push.conf);
#                            unset (default): none, the pull verifier alone. Not saved in
#                            settings.env: only commands run with it set start or use it
#                            (stop, ps and service-stop verifier-push work without it)
#   KEYLET_TB_QUOTE_INTERVAL seconds between quotes (default 2)
#   KEYLET_TB_REQUIRE_EK_CERT 1 (default): the tenant checks the EK cert against the swtpm CA
#   KEYLET_TB_ACCEPT_SIGNING_ALGS tenant accept_tpm_signing_algs (default: ecschnorr, rsassa, ecdsa;
#                            ecdsa is needed for ECC attestation keys, upstream leaves it out)
#   KEYLET_TB_ACCEPT_ENCRYPTION_ALGS / KEYLET_TB_ACCEPT_HASH_ALGS (default ecc, rsa / sha512, sha384, sha256)
#   KEYLET_TB_PCR_BANKS      swtpm PCR banks (default sha256); set for one tpm2-start, the
#                            banks of that extra swtpm only
#   KEYLET_TB_TENANT_CONFIG  the tenant's configuration file for this command (default the
#                            testbed's conf/tenant.conf), e.g. a copy accepting another hash
#   KEYLET_TB_SKIP_APT=1     no apt-get in install;  KEYLET_TB_FORCE=1  init re-creates everything
#
# Every command is idempotent; stop only signals PIDs this script saved (after
# checking their command line). Nothing listens on anything but 127.0.0.1.
set -euo pipefail

# Keylime releases the testbed can run (KEYLET_TB_KEYLIME_VERSION), each with a tested
# pin set: the keylime wheel declares no dependencies, so keylime's requirements.txt,
# pinned, plus what those pull in, pinned too. REST_API: the services' API version in
# REST paths (the newest that release serves). docs/keylime-releases.md: what differs.
COMMON_PINS=(
  "cryptography==50.0.2" "tornado==6.6.1" "pyzmq==27.3.0" "PyYAML==6.0.3"
  "requests==2.34.2" "SQLAlchemy==2.1.9" "alembic==1.20.1" "packaging==26.3"
  "psutil==7.2.2" "lark==1.3.1" "pyasn1==0.6.5" "pyasn1_modules==0.4.2"
  "Jinja2==3.1.6" "jsonschema==4.26.0"
  "attrs==26.1.0" "certifi==2026.10.18" "cffi==2.1.1" "charset-normalizer==3.5.2"
  "idna==3.20" "jsonschema-specifications==2025.9.1" "Mako==1.4.3" "MarkupSafe==3.0.4"
  "pycparser==3.12" "referencing==0.37.0" "rpds-py==2026.9.1" "typing_extensions==4.16.0"
  "urllib3==2.8.0"
)
# python3-gpg: keylime imports "gpg" at start-up and it is not usable from PyPI;
# Debian's build is linked into the venv (made from Debian's /usr/bin/python3).
APT_PKGS=(swtpm swtpm-tools tpm2-tools openssl python3-venv python3-pip python3-gpg
          sqlite3 curl jq iproute2 procps ca-certificates nftables)

STATE=${KEYLET_TB_STATE:-/var/tmp/keylet-testbed}
mkdir -p "$STATE"
STATE=$(cd "$STATE" && pwd)
# shellcheck disable=SC1091
[[ -f $STATE/settings.env ]] && source "$STATE/settings.env"
VENV=${KEYLET_TB_VENV:-$STATE/venv}
KEYLIME_VERSION=${KEYLET_TB_KEYLIME_VERSION:-7.14.3}
case $KEYLIME_VERSION in
  7.14.3) REST_API=v2.6 ;;
  7.13.1) REST_API=v2.4 ;;
  7.12.2) REST_API=v2.3 ;;
  *) echo "[testbed] ERROR: Keylime $KEYLIME_VERSION has no tested pin set (KEYLET_TB_KEYLIME_VERSION: 7.14.3, 7.13.1 or 7.12.2)" >&2
     exit 2 ;;
esac
PIP_PINS=("keylime==${KEYLIME_VERSION}" "${COMMON_PINS[@]}")
SWTPM_PORT=${KEYLET_TB_SWTPM_PORT:-24321}
REGISTRAR_PORT=${KEYLET_TB_REGISTRAR_PORT:-18890}
REGISTRAR_TLS_PORT=${KEYLET_TB_REGISTRAR_TLS_PORT:-18891}
VERIFIER_PORT=${KEYLET_TB_VERIFIER_PORT:-18881}
AGENT_PORT=${KEYLET_TB_AGENT_PORT:-19002}
PUSH_VERIFIER_PORT=${KEYLET_TB_PUSH_VERIFIER_PORT:-}
QUOTE_INTERVAL=${KEYLET_TB_QUOTE_INTERVAL:-2}
REQUIRE_EK_CERT=${KEYLET_TB_REQUIRE_EK_CERT:-1}
ACCEPT_SIGNING_ALGS=${KEYLET_TB_ACCEPT_SIGNING_ALGS:-ecschnorr, rsassa, ecdsa}
ACCEPT_ENCRYPTION_ALGS=${KEYLET_TB_ACCEPT_ENCRYPTION_ALGS:-ecc, rsa}
ACCEPT_HASH_ALGS=${KEYLET_TB_ACCEPT_HASH_ALGS:-sha512, sha384, sha256}
PCR_BANKS=${KEYLET_TB_PCR_BANKS:-sha256}
FORCE=${KEYLET_TB_FORCE:-0}
HOST=127.0.0.1

CONF=$STATE/conf KLDIR=$STATE/keylime TLS=$STATE/keylime/cv_ca TPMDIR=$STATE/swtpm
CERTSTORE=$STATE/tpm_cert_store LOGS=$STATE/logs PIDS=$STATE/pids SDIST=$STATE/sdist
API=$REST_API

log() { printf '[testbed] %s\n' "$*" >&2; }
die() { printf '[testbed] ERROR: %s\n' "$*" >&2; exit 1; }

save_settings() {
  cat >"$STATE/settings.env" <<EOF
: "\${KEYLET_TB_VENV:=$VENV}"
: "\${KEYLET_TB_KEYLIME_VERSION:=$KEYLIME_VERSION}"
: "\${KEYLET_TB_SWTPM_PORT:=$SWTPM_PORT}"
: "\${KEYLET_TB_REGISTRAR_PORT:=$REGISTRAR_PORT}"
: "\${KEYLET_TB_REGISTRAR_TLS_PORT:=$REGISTRAR_TLS_PORT}"
: "\${KEYLET_TB_VERIFIER_PORT:=$VERIFIER_PORT}"
: "\${KEYLET_TB_AGENT_PORT:=$AGENT_PORT}"
: "\${KEYLET_TB_QUOTE_INTERVAL:=$QUOTE_INTERVAL}"
: "\${KEYLET_TB_REQUIRE_EK_CERT:=$REQUIRE_EK_CERT}"
: "\${KEYLET_TB_ACCEPT_SIGNING_ALGS:=$ACCEPT_SIGNING_ALGS}"
: "\${KEYLET_TB_ACCEPT_ENCRYPTION_ALGS:=$ACCEPT_ENCRYPTION_ALGS}"
: "\${KEYLET_TB_ACCEPT_HASH_ALGS:=$ACCEPT_HASH_ALGS}"
: "\${KEYLET_TB_PCR_BANKS:=$PCR_BANKS}"
EOF
}

# Environment of the Keylime tools only (KEYLIME_DIR must never reach keylet).
kl_env() {
  export KEYLIME_DIR=$KLDIR
  export KEYLIME_VERIFIER_CONFIG=$CONF/verifier.conf KEYLIME_REGISTRAR_CONFIG=$CONF/registrar.conf
  export KEYLIME_TENANT_CONFIG=${KEYLET_TB_TENANT_CONFIG:-$CONF/tenant.conf} KEYLIME_CA_CONFIG=$CONF/ca.conf
  export KEYLIME_LOGGING_CONFIG=$CONF/logging.conf
  export PATH=$VENV/bin:$PATH
}

tcti() { echo "swtpm:host=$HOST,port=${1:-$SWTPM_PORT}"; }
port_open() { (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null; }
pid_of() { if [[ -s $PIDS/$1.pid ]]; then cat "$PIDS/$1.pid"; fi; }
alive() { # name match -> saved PID runs and is still our program
  local pid; pid=$(pid_of "$1")
  [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null &&
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$2"
}

wait_port() { # port seconds name
  local i pid; pid=$(pid_of "$3")
  for ((i = 0; i < $2 * 10; i++)); do
    port_open "$1" && return 0
    if [[ -n $pid ]] && ! kill -0 "$pid" 2>/dev/null; then
      tail -n 20 "$LOGS/$3.log" >&2 || true
      die "$3 (pid $pid) exited before opening port $1; log: $LOGS/$3.log"
    fi
    sleep 0.1
  done
  die "$3 did not open port $1 within $2 s (see $LOGS/$3.log)"
}

# ---------------------------------------------------------------------------- install
cmd_install() {
  local t0=$SECONDS
  if [[ ${KEYLET_TB_SKIP_APT:-0} != 1 ]]; then
    local missing=() p
    for p in "${APT_PKGS[@]}"; do
      dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    if ((${#missing[@]})); then
      log "apt-get install ${missing[*]}"
      apt-get update -qq
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
  fi
  if [[ ! -x $VENV/bin/python ]]; then
    log "creating venv $VENV"
    /usr/bin/python3 -m venv "$VENV"
  fi
  local site; site=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
  if [[ ! -e $site/gpg ]]; then
    [[ -d /usr/lib/python3/dist-packages/gpg ]] || die "python3-gpg (Debian) is not installed"
    ln -s /usr/lib/python3/dist-packages/gpg "$site/gpg"
  fi
  local have; have=$("$VENV/bin/python" -c "import importlib.metadata as m; print(m.version('keylime'))" 2>/dev/null || true)
  [[ -z $have || $have == "$KEYLIME_VERSION" ]] ||
    die "$VENV holds Keylime $have, not $KEYLIME_VERSION: give each release its own KEYLET_TB_VENV (and KEYLET_TB_STATE)"
  if [[ -z $have ]]; then
    log "pip install keylime==$KEYLIME_VERSION and its pinned dependencies"
    "$VENV/bin/pip" install -q --disable-pip-version-check "${PIP_PINS[@]}"
  fi
  # The wheel ships no config templates; the sdist does.
  if [[ ! -d $SDIST/keylime-$KEYLIME_VERSION/templates ]]; then
    log "fetching the keylime-$KEYLIME_VERSION sdist (config templates)"
    mkdir -p "$SDIST"
    "$VENV/bin/pip" download -q --disable-pip-version-check --no-deps --no-binary :all: \
      -d "$SDIST" "keylime==$KEYLIME_VERSION"
    tar -xzf "$SDIST/keylime-$KEYLIME_VERSION.tar.gz" -C "$SDIST"
  fi
  log "install done in $((SECONDS - t0)) s: keylime $("$VENV/bin/pip" show keylime 2>/dev/null | sed -n 's/^Version: //p')"
}

# ---------------------------------------------------------------------------- init
# Private swtpm_setup / swtpm-localca configuration (nothing in /etc or /var/lib).
localca_config() {
  [[ -s $TPMDIR/swtpm_setup.conf ]] && return 0
  mkdir -p "$TPMDIR/localca"
  cat >"$TPMDIR/swtpm-localca.conf" <<EOF
statedir = $TPMDIR/localca
signingkey = $TPMDIR/localca/signkey.pem
issuercert = $TPMDIR/localca/issuercert.pem
certserial = $TPMDIR/localca/certserial
EOF
  printf -- '--platform-manufacturer KeyletTestbed\n--platform-version 2.1\n--platform-model swtpm\n' \
    >"$TPMDIR/swtpm-localca.options"
  cat >"$TPMDIR/swtpm_setup.conf" <<EOF
create_certs_tool = /usr/bin/swtpm_localca
create_certs_tool_config = $TPMDIR/swtpm-localca.conf
create_certs_tool_options = $TPMDIR/swtpm-localca.options
active_pcr_banks = $PCR_BANKS
EOF
}

# manufacture DIR: a new TPM with RSA + ECC EKs and their certificates in NV
# (RSA-2048 0x01c00002, P-384 0x01c00016, P-256 0x01c0000a), read-only like a
# real TPM, signed by the local CA.
manufacture() {
  local dir=$1
  rm -rf "$dir"; mkdir -p "$dir/state" "$dir/ekcerts"
  swtpm_setup --tpm2 --tpm-state "$dir/state" --config "$TPMDIR/swtpm_setup.conf" \
    --create-ek-cert --lock-nvram --pcr-banks "$PCR_BANKS" --write-ek-cert-files "$dir/ekcerts" \
    --overwrite --logfile "$dir/swtpm_setup.log" >"$dir/swtpm_setup.out" 2>&1 ||
    die "swtpm_setup failed; see $dir/swtpm_setup.log"
  provision_ecc256_cert "$dir"
}

# provision_ecc256_cert DIR: swtpm_setup certifies a P-384 ECC EK (NV 0x01c00016),
# but Keylime's "ecc" means P-256, the TCG L-2 EK, whose certificate lives at
# NV 0x01c0000a. Add that certificate, signed by the same local CA, written and
# locked under the platform hierarchy like swtpm_setup does for its own.
provision_ecc256_cert() {
  local dir=$1 port=$((SWTPM_PORT + 8)) t pid x y size i rc=0
  t="swtpm:host=127.0.0.1,port=$port"
  swtpm socket --tpm2 --server "type=tcp,port=$port,bindaddr=127.0.0.1" \
    --ctrl "type=tcp,port=$((port + 1)),bindaddr=127.0.0.1" --tpmstate "dir=$dir/state" \
    --flags not-need-init,startup-clear >>"$dir/swtpm_setup.out" 2>&1 &
  pid=$!
  for ((i = 0; i < 100; i++)); do port_open "$port" && break; sleep 0.1; done
  port_open "$port" || { kill "$pid" 2>/dev/null; die "temporary swtpm on port $port did not start"; }
  ecc256_cert "$dir" "$t" >>"$dir/swtpm_setup.out" 2>&1 || rc=$?
  swtpm_ioctl --tcp "127.0.0.1:$((port + 1))" -s >/dev/null 2>&1 || kill "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null || true
  rm -rf "$dir/ek256" "$dir/ek256.ctx"
  ((rc == 0)) || die "could not add the P-256 EK certificate (NV 0x01c0000a); see $dir/swtpm_setup.out"
}

# ecc256_cert DIR TCTI: the steps of provision_ecc256_cert against a running swtpm.
ecc256_cert() {
  local dir=$1 x y size
  export TPM2TOOLS_TCTI=$2
  tpm2_createek -G ecc -c "$dir/ek256.ctx" -u "$dir/ek256.pem" -f pem >/dev/null || return 1
  tpm2_flushcontext -t || return 1
  read -r x y < <(openssl ec -pubin -in "$dir/ek256.pem" -outform DER 2>/dev/null | tail -c 64 |
    od -An -v -tx1 | tr -d ' \n' | sed -E 's/^(.{64})(.{64})$/\1 \2/')
  [[ ${#x} == 64 && ${#y} == 64 ]] || { echo "cannot read the P-256 EK point"; return 1; }
  mkdir -p "$dir/ek256" || return 1
  swtpm_localca --type ek --ek "x=$x,y=$y,id=secp256r1" --dir "$dir/ek256" \
    --logfile "$dir/swtpm_setup.log" --tpm-spec-family 2.0 --tpm-spec-level 0 \
    --tpm-spec-revision 164 --tpm-manufacturer id:00001014 --tpm-model swtpm \
    --tpm-version id:20191023 --tpm2 --configfile "$TPMDIR/swtpm-localca.conf" \
    --optsfile "$TPMDIR/swtpm-localca.options" >/dev/null || return 1
  size=$(stat -c %s "$dir/ek256/ek.cert") || return 1
  tpm2_nvdefine 0x01c0000a -C p -s "$size" \
    -a "platformcreate|ppwrite|ppread|ownerread|authread|no_da|writedefine" >/dev/null || return 1
  tpm2_nvwrite 0x01c0000a -C p -i "$dir/ek256/ek.cert" || return 1
  tpm2_nvwritelock 0x01c0000a -C p || return 1
  openssl x509 -inform DER -in "$dir/ek256/ek.cert" -out "$dir/ekcerts/ek-secp256r1.crt"
}

init_swtpm() {
  if [[ -s $TPMDIR/main/state/tpm2-00.permall && $FORCE != 1 ]]; then
    log "swtpm state exists, keeping it"; return
  fi
  alive swtpm "swtpm socket" && die "swtpm is running; stop it before re-creating its state"
  [[ $FORCE == 1 ]] && rm -rf "$TPMDIR" "$CERTSTORE"
  localca_config
  log "manufacturing swtpm (EKs + EK certificates in NV)"
  manufacture "$TPMDIR/main"
  # The tenant checks one level: the issuing (intermediate) CA must be in the store.
  mkdir -p "$CERTSTORE"
  cp "$TPMDIR/localca/issuercert.pem" "$CERTSTORE/swtpm-localca.pem"
  cp "$TPMDIR/localca/swtpm-localca-rootca-cert.pem" "$CERTSTORE/swtpm-localca-rootca.pem"
}

init_tls() {
  if [[ -s $TLS/cacert.crt && -s $TLS/client-bundle.pem && $FORCE != 1 ]]; then
    log "TLS material exists, keeping it"; return
  fi
  rm -rf "$TLS"; mkdir -p "$TLS"; chmod 700 "$TLS"
  log "creating EC P-256 CA, server and client certificates in $TLS"
  (
    cd "$TLS"
    openssl ecparam -name prime256v1 -genkey -noout -out ca-private.pem
    openssl req -x509 -new -key ca-private.pem -sha256 -days 3650 \
      -subj "/O=keylet testbed/CN=keylet testbed CA" -out cacert.crt \
      -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
      -addext "subjectKeyIdentifier=hash"
    for role in server client; do
      openssl ecparam -name prime256v1 -genkey -noout -out "$role.tmp"
      openssl pkcs8 -topk8 -nocrypt -in "$role.tmp" -out "$role-private.pem"; rm -f "$role.tmp"
      cat >"$role.ext" <<EOF
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyAgreement
extendedKeyUsage = serverAuth,clientAuth
subjectAltName = IP:127.0.0.1,DNS:localhost
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EOF
      openssl req -new -key "$role-private.pem" -subj "/O=keylet testbed/CN=keylet-testbed-$role" -out "$role.csr"
      openssl x509 -req -in "$role.csr" -CA cacert.crt -CAkey ca-private.pem -CAcreateserial \
        -days 825 -sha256 -extfile "$role.ext" -out "$role-cert.crt" 2>/dev/null
      rm -f "$role.csr" "$role.ext"
    done
    chmod 600 ./*-private.pem
    cat client-cert.crt client-private.pem >client-bundle.pem; chmod 600 client-bundle.pem
  )
}

ini_set() { # file section key=value...
  "$VENV/bin/python" - "$@" <<'EOF'
import configparser, sys
f, sec, kvs = sys.argv[1], sys.argv[2], sys.argv[3:]
c = configparser.RawConfigParser()
c.optionxform = str
c.read(f)
if not c.has_section(sec):
    c.add_section(sec)
for kv in kvs:
    k, v = kv.split("=", 1)
    c.set(sec, k, v)
with open(f, "w") as fh:
    c.write(fh)
EOF
}

pylist() { # "a, b" -> ['a', 'b']
  local out="" x; local -a xs; IFS=', ' read -r -a xs <<<"$1"
  for x in "${xs[@]}"; do [[ -n $x ]] && out+="${out:+, }'$x'"; done
  echo "[$out]"
}

init_configs() {
  if [[ ! -s $CONF/verifier.conf || $FORCE == 1 ]]; then
    mkdir -p "$CONF"; rm -f "$CONF"/*.conf
    "$VENV/bin/keylime_upgrade_config" --defaults \
      --templates "$SDIST/keylime-$KEYLIME_VERSION/templates" --out "$CONF" >"$CONF/render.log" 2>&1 ||
      die "keylime_upgrade_config failed; see $CONF/render.log"
  fi
  local req_ek=True; [[ $REQUIRE_EK_CERT == 1 ]] || req_ek=False
  ini_set "$CONF/verifier.conf" verifier \
    "ip=$HOST" "port=$VERIFIER_PORT" "registrar_ip=$HOST" "registrar_port=$REGISTRAR_TLS_PORT" \
    "tls_dir=default" "enable_agent_mtls=True" "database_url=sqlite" \
    "quote_interval=$QUOTE_INTERVAL" "mode=pull" "num_workers=1" "max_workers=1"
  ini_set "$CONF/verifier.conf" revocations "enabled_revocation_notifications=['agent']" "zmq_ip=$HOST"
  ini_set "$CONF/registrar.conf" registrar \
    "ip=$HOST" "port=$REGISTRAR_PORT" "tls_port=$REGISTRAR_TLS_PORT" \
    "tls_dir=default" "database_url=sqlite" "max_workers=1"
  ini_set "$CONF/tenant.conf" tenant \
    "verifier_ip=$HOST" "verifier_port=$VERIFIER_PORT" \
    "registrar_ip=$HOST" "registrar_port=$REGISTRAR_TLS_PORT" \
    "tls_dir=default" "enable_agent_mtls=True" \
    "tpm_cert_store=$CERTSTORE" "require_ek_cert=$req_ek" \
    "accept_tpm_signing_algs=$(pylist "$ACCEPT_SIGNING_ALGS")" \
    "accept_tpm_encryption_algs=$(pylist "$ACCEPT_ENCRYPTION_ALGS")" \
    "accept_tpm_hash_algs=$(pylist "$ACCEPT_HASH_ALGS")"
  init_push_configs
  mkdir -p "$KLDIR" "$LOGS" "$PIDS"
}

# The push verifier: the pull verifier's configuration with mode = push, its own
# port and database, and no revocation notifications (no agent to notify); a
# tenant configuration pointing at it.
init_push_configs() {
  [[ -n $PUSH_VERIFIER_PORT ]] || return 0
  cp "$CONF/verifier.conf" "$CONF/verifier-push.conf"
  ini_set "$CONF/verifier-push.conf" verifier \
    "port=$PUSH_VERIFIER_PORT" "mode=push" "database_url=sqlite:///$KLDIR/cv_push_data.sqlite"
  ini_set "$CONF/verifier-push.conf" revocations "enabled_revocation_notifications=[]"
  cp "$CONF/tenant.conf" "$CONF/tenant-push.conf"
  ini_set "$CONF/tenant-push.conf" tenant "verifier_port=$PUSH_VERIFIER_PORT"
}

cmd_init() {
  [[ -x $VENV/bin/keylime_verifier ]] || die "run '$0 install' first"
  save_settings; init_swtpm; init_tls; init_configs
  cmd_env >/dev/null # agent.env and keylime-tools.env, for scripts that source them
  log "init done: $STATE"
}

# ---------------------------------------------------------------------------- start/stop
start_daemon() { # name match port cmd...
  local name=$1 match=$2 port=$3; shift 3
  if alive "$name" "$match"; then log "$name already running (pid $(pid_of "$name"))"; return; fi
  port_open "$port" && die "port $port is in use by something else than our $name; set KEYLET_TB_*_PORT"
  log "starting $name"
  setsid "$@" >>"$LOGS/$name.log" 2>&1 </dev/null &
  echo $! >"$PIDS/$name.pid"
}

start_swtpm() { # name statedir port
  start_daemon "$1" "swtpm socket" "$3" swtpm socket --tpm2 \
    --server "type=tcp,port=$3,bindaddr=$HOST" --ctrl "type=tcp,port=$(($3 + 1)),bindaddr=$HOST" \
    --tpmstate "dir=$2" --flags not-need-init,startup-clear --log "file=$LOGS/$1-debug.log,level=1"
  wait_port "$3" 10 "$1"
}

cmd_start() {
  [[ -s $CONF/verifier.conf ]] || die "run '$0 init' first"
  mkdir -p "$LOGS" "$PIDS"; save_settings; kl_env
  start_swtpm swtpm "$TPMDIR/main/state" "$SWTPM_PORT"
  start_daemon registrar keylime_registrar "$REGISTRAR_TLS_PORT" keylime_registrar
  wait_port "$REGISTRAR_TLS_PORT" 60 registrar; wait_port "$REGISTRAR_PORT" 30 registrar
  start_daemon verifier keylime_verifier "$VERIFIER_PORT" keylime_verifier
  wait_port "$VERIFIER_PORT" 60 verifier
  if [[ -n $PUSH_VERIFIER_PORT ]]; then
    [[ -s $CONF/verifier-push.conf ]] || init_push_configs
    start_daemon verifier-push keylime_verifier "$PUSH_VERIFIER_PORT" \
      env KEYLIME_VERIFIER_CONFIG="$CONF/verifier-push.conf" keylime_verifier
    wait_port "$PUSH_VERIFIER_PORT" 60 verifier-push
  fi
  log "all services up"
}

stop_one() { # name match
  local pid i; pid=$(pid_of "$1")
  [[ -n $pid ]] || return 0
  if alive "$1" "$2"; then
    log "stopping $1 (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    # setsid made PGID == PID: take down forked workers that outlived the main process.
    if pgrep -g "$pid" >/dev/null 2>&1; then
      kill -TERM -- "-$pid" 2>/dev/null || true; sleep 1
      if pgrep -g "$pid" >/dev/null 2>&1; then kill -KILL -- "-$pid" 2>/dev/null || true; fi
    fi
  fi
  rm -f "$PIDS/$1.pid"
}

cmd_stop() {
  local f
  stop_one verifier-push keylime_verifier
  stop_one verifier keylime_verifier; stop_one registrar keylime_registrar
  tpm_shutdown stop; stop_one swtpm "swtpm socket"
  for f in "$PIDS"/tpm2-*.pid; do [[ -e $f ]] && stop_one "$(basename "$f" .pid)" "swtpm socket"; done
  log "stopped"
}

cmd_tpm2_start() { # NAME PORT
  local name=${1:?usage: tpm2-start NAME PORT} port=${2:?usage: tpm2-start NAME PORT}
  [[ $name =~ ^[A-Za-z0-9_-]+$ ]] || die "tpm2-start: NAME must be [A-Za-z0-9_-]+"
  [[ -s $TPMDIR/swtpm_setup.conf ]] || die "run '$0 init' first"
  mkdir -p "$LOGS" "$PIDS"
  if [[ ! -s $TPMDIR/extra-$name/state/tpm2-00.permall || $FORCE == 1 ]]; then
    alive "tpm2-$name" "swtpm socket" && die "swtpm $name is running; tpm2-stop it first"
    log "manufacturing swtpm '$name'"
    manufacture "$TPMDIR/extra-$name"
  fi
  start_swtpm "tpm2-$name" "$TPMDIR/extra-$name/state" "$port"
  tcti "$port"
}

# No resource manager: flush what a killed agent left loaded (only while none runs).
cmd_tpm_flush() {
  local t; t=$(tcti)
  TPM2TOOLS_TCTI=$t tpm2_flushcontext -t; TPM2TOOLS_TCTI=$t tpm2_flushcontext -l
  TPM2TOOLS_TCTI=$t tpm2_flushcontext -s
  log "flushed; transient handles left: $(TPM2TOOLS_TCTI=$t tpm2_getcap handles-transient | tr -d '\n')"
}

# tpm_shutdown WHY: an orderly TPM2_Shutdown before swtpm stops, as an OS does: otherwise
# the TPM counts an unclean restart (clock not "safe", one dictionary-attack failure)
# and keylet rightly refuses quotes the verifier would fail. Needs the TPM free (keylet
# stopped): bounded wait; WHY names the command in the log line when it fails.
tpm_shutdown() {
  alive swtpm "swtpm socket" || return 0
  TPM2TOOLS_TCTI=$(tcti) timeout 10 tpm2_shutdown -c >/dev/null 2>&1 ||
    log "$1: TPM2_Shutdown failed (is a keylet holding swtpm?); stopping swtpm uncleanly"
}

cmd_tpm_reboot() {
  tpm_shutdown tpm-reboot
  stop_one swtpm "swtpm socket"; start_swtpm swtpm "$TPMDIR/main/state" "$SWTPM_PORT"
}

cmd_service_stop() { # NAME
  case ${1:?usage: service-stop swtpm|registrar|verifier} in
    swtpm) stop_one swtpm "swtpm socket" ;;
    registrar) stop_one registrar keylime_registrar ;;
    verifier) stop_one verifier keylime_verifier ;;
    verifier-push) stop_one verifier-push keylime_verifier ;;
    *) die "service-stop: unknown service '$1' (swtpm, registrar, verifier, verifier-push)" ;;
  esac
}

cmd_ps() {
  local f n m
  for f in "$PIDS"/*.pid; do
    [[ -e $f ]] || continue
    n=$(basename "$f" .pid); m="swtpm socket"; [[ $n == registrar || $n == verifier ]] && m=keylime_$n
    [[ $n == verifier-push ]] && m=keylime_verifier
    if alive "$n" "$m"; then echo "$n: running, pid $(pid_of "$n")"; else echo "$n: not running"; fi
  done
}

# ---------------------------------------------------------------------------- env
cmd_env() {
  cat >"$STATE/agent.env" <<EOF
# keylet testbed: environment for the AGENT UNDER TEST (source it; never with keylime-tools.env)
export TCTI='$(tcti)'
export TPM2TOOLS_TCTI='$(tcti)'
export KEYLIME_AGENT_TPM_DEVICE='tcp://$HOST:$SWTPM_PORT'
export KEYLIME_AGENT_IP=$HOST
export KEYLIME_AGENT_CONTACT_IP=$HOST
export KEYLIME_AGENT_PORT=$AGENT_PORT
export KEYLIME_AGENT_CONTACT_PORT=$AGENT_PORT
export KEYLIME_AGENT_REGISTRAR_IP=$HOST
export KEYLIME_AGENT_REGISTRAR_PORT=$REGISTRAR_PORT
export KEYLIME_AGENT_TRUSTED_CLIENT_CA='$TLS/cacert.crt'
export KEYLIME_AGENT_ENABLE_AGENT_MTLS=true
export KEYLIME_AGENT_RUN_AS=
# for talking to the services / the agent like the verifier does (curl --cert ... --key ...)
export KEYLET_TB_CA_CERT='$TLS/cacert.crt'
export KEYLET_TB_CLIENT_CERT='$TLS/client-cert.crt'
export KEYLET_TB_CLIENT_KEY='$TLS/client-private.pem'
EOF
  cat >"$STATE/keylime-tools.env" <<EOF
# keylet testbed: environment for the Keylime tools (never source it in the agent's shell)
export KEYLIME_DIR='$KLDIR'
export KEYLIME_VERIFIER_CONFIG='$CONF/verifier.conf'
export KEYLIME_REGISTRAR_CONFIG='$CONF/registrar.conf'
export KEYLIME_TENANT_CONFIG='$CONF/tenant.conf'
export KEYLIME_CA_CONFIG='$CONF/ca.conf'
export KEYLIME_LOGGING_CONFIG='$CONF/logging.conf'
export PATH='$VENV/bin':\$PATH
EOF
  echo "##### $STATE/agent.env"; cat "$STATE/agent.env"
  echo "##### $STATE/keylime-tools.env"; cat "$STATE/keylime-tools.env"
}

# ---------------------------------------------------------------------------- REST + tenant
rest() { # port path [curl args...] -> body; fails on transport errors only
  local port=$1 path=$2; shift 2
  curl -sS --max-time 10 --cacert "$TLS/cacert.crt" --cert "$TLS/client-cert.crt" \
    --key "$TLS/client-private.pem" "$@" "https://$HOST:$port/$API/$path"
}
results() { # stdin: a Keylime REST answer -> its .results; fails unless code 200
  local body code; body=$(cat)
  code=$(jq -r '.code // empty' <<<"$body" 2>/dev/null || true)
  [[ $code == 200 ]] || die "answer ${code:-?}: $(jq -r '.status // empty' <<<"$body" 2>/dev/null || echo "$body")"
  jq '.results' <<<"$body"
}

tenant() { kl_env; cd "$STATE" && keylime_tenant "$@"; }

cmd_add() {
  local uuid=${1:?usage: add UUID [IP] [PORT] [tenant args...]} ip=${2:-$HOST} port=${3:-$AGENT_PORT}
  shift $(($# < 3 ? $# : 3))
  tenant -c add -t "$ip" -tp "$port" -u "$uuid" "$@"
}

cmd_push_add() { # UUID [tenant args...]
  local uuid=${1:?usage: push-add UUID [tenant args...]}; shift
  [[ -n $PUSH_VERIFIER_PORT ]] || die "no push verifier: set KEYLET_TB_PUSH_VERIFIER_PORT and run '$0 up'"
  kl_env; cd "$STATE" && KEYLIME_TENANT_CONFIG=$CONF/tenant-push.conf keylime_tenant -c add --push-model -u "$uuid" "$@"
}

cmd_wait() { # UUID [N] [SECS]
  local uuid=${1:?usage: wait UUID [N] [SECS]} n=${2:-5} secs=${3:-120} t0=$SECONDS body cnt st
  while ((SECONDS - t0 < secs)); do
    body=$(rest "$VERIFIER_PORT" "agents/$uuid" 2>/dev/null || true)
    cnt=$(jq -r '.results.attestation_count // empty' <<<"$body" 2>/dev/null || true)
    st=$(jq -r '.results.attestation_status // empty' <<<"$body" 2>/dev/null || true)
    [[ $st == FAIL ]] && die "agent $uuid: attestation_status FAIL: $(jq -c .results <<<"$body")"
    if [[ -n $cnt ]] && ((cnt >= n)); then log "agent $uuid: $st, attestation_count=$cnt"; return 0; fi
    sleep 1
  done
  die "agent $uuid did not reach $n attestations within $secs s (last: status=${st:-?} count=${cnt:-?})"
}

# Forget every agent (verifier first: it may be polling; then registrar) and every
# runtime policy. REST, no tenant.
cmd_reset() {
  local u i code
  if [[ -n $PUSH_VERIFIER_PORT ]] && port_open "$PUSH_VERIFIER_PORT"; then
    for u in $(rest "$PUSH_VERIFIER_PORT" "agents/" | jq -r '.results.uuids | flatten | .[]'); do
      rest "$PUSH_VERIFIER_PORT" "agents/$u" -X DELETE -o /dev/null
      log "push verifier: deleted $u"
    done
    while IFS= read -r u; do
      [[ -n $u ]] || continue
      rest "$PUSH_VERIFIER_PORT" "allowlists/$u" -X DELETE -o /dev/null
      log "push verifier: deleted runtime policy $u"
    done < <(rest "$PUSH_VERIFIER_PORT" "allowlists/" | jq -r '.results["runtimepolicy names"][]?')
  fi
  for u in $(rest "$VERIFIER_PORT" "agents/" | jq -r '.results.uuids | flatten | .[]'); do
    rest "$VERIFIER_PORT" "agents/$u" -X DELETE -o /dev/null
    for ((i = 0; i < 300; i++)); do # a polled agent is deleted at its next poll (202)
      code=$(rest "$VERIFIER_PORT" "agents/$u" -o /dev/null -w '%{http_code}' || true)
      [[ $code == 404 ]] && break; sleep 0.1
    done
    [[ $code == 404 ]] || die "verifier did not delete agent $u within 30 s"
    log "verifier: deleted $u"
  done
  for u in $(rest "$REGISTRAR_TLS_PORT" "agents/" | jq -r '.results.uuids | flatten | .[]'); do
    code=$(rest "$REGISTRAR_TLS_PORT" "agents/$u" -X DELETE -o /dev/null -w '%{http_code}')
    [[ $code == 200 ]] || die "registrar refused to delete $u (HTTP $code)"
    log "registrar: deleted $u"
  done
  local name
  while IFS= read -r name; do
    [[ -n $name ]] || continue
    rest "$VERIFIER_PORT" "allowlists/$name" -X DELETE -o /dev/null
    log "verifier: deleted runtime policy $name"
  done < <(rest "$VERIFIER_PORT" "allowlists/" | jq -r '.results["runtimepolicy names"][]?')
}

cmd_destroy() {
  cmd_stop
  if [[ ${KEYLET_TB_KEEP_VENV:-1} == 1 && $VENV == "$STATE/venv" ]]; then
    find "$STATE" -mindepth 1 -maxdepth 1 ! -name venv ! -name sdist -exec rm -rf {} +
  else
    rm -rf "$STATE"
  fi
  log "destroyed $STATE"
}

main() {
  local c=${1:-help}; shift || true
  case $c in
    install) cmd_install ;;
    init) cmd_init ;;
    start) cmd_start ;;
    up) cmd_install; cmd_init; cmd_start; cmd_env ;;
    env) cmd_env ;;
    add) cmd_add "$@" ;;
    status | cvstatus) rest "$VERIFIER_PORT" "agents/${1:?UUID}" | results ;;
    regstatus) rest "$REGISTRAR_TLS_PORT" "agents/${1:?UUID}" | results ;;
    push-add) cmd_push_add "$@" ;;
    push-status) rest "${PUSH_VERIFIER_PORT:?no push verifier (KEYLET_TB_PUSH_VERIFIER_PORT)}" "agents/${1:?UUID}" | results ;;
    reglist) rest "$REGISTRAR_TLS_PORT" "agents/" | results | jq -c '.uuids' ;;
    wait) cmd_wait "$@" ;;
    delete) tenant -c delete -u "${1:?UUID}" ;;
    regdelete) tenant -c regdelete -u "${1:?UUID}" ;;
    reset) cmd_reset ;;
    tenant) tenant "$@" ;;
    policy) kl_env; keylime-policy "$@" ;;
    tpm2) local t=${1:?tool}; shift; TPM2TOOLS_TCTI=$(tcti) "tpm2_$t" "$@" ;;
    tpm-flush) cmd_tpm_flush ;;
    tpm-reboot) cmd_tpm_reboot ;;
    tpm2-start) cmd_tpm2_start "$@" ;;
    tpm2-stop) stop_one "tpm2-${1:?NAME}" "swtpm socket" ;;
    service-stop) cmd_service_stop "$@" ;; # reliability suite: one service down
    api) echo "$API" ;;
    ps) cmd_ps ;;
    logs) tail -n 30 "$LOGS"/*.log ;;
    stop) cmd_stop ;;
    destroy) cmd_destroy ;;
    help | -h | --help) sed -n '2,/^set -euo/p' "$0" | sed 's/^# \{0,1\}//;$d' ;;
    *) die "unknown command '$c' (try: $0 help)" ;;
  esac
}
main "$@"
