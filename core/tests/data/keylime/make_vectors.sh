#!/usr/bin/env bash
# Regenerates the golden quote vectors in this directory from a fresh swtpm.
# Needs swtpm, tpm2-tools and openssl. Loopback only; leaves nothing running.
#
#   bash core/tests/data/keylime/make_vectors.sh
#
# Each vector directory holds:
#   attest.bin   TPMS_ATTEST (tpm2_quote -m)
#   sig.bin      TPMT_SIGNATURE (tpm2_quote -s)
#   pcrs.bin     tpm2-tools PCR blob (tpm2_quote -o), exactly Keylime's third quote part
#   ak.pub       AK TPM2B_PUBLIC (tpm2_readpublic -f tss)
#   ak.pem       AK SubjectPublicKeyInfo PEM (tpm2_readpublic -f pem)
#   ek.pub/.pem  EK TPM2B_PUBLIC and PEM, same tools
#   nk.pem       payload key PEM whose hash was extended into PCR 16 after a reset
#   credential.bin  tpm2_makecredential blob of challenge.txt for this EK and AK
#   nonce.txt    the nonce; its ASCII bytes were the quote's qualifying data
#   selection.txt  the tpm2_quote -l argument
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
work="$(mktemp -d)"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
swtpm socket --tpm2 --tpmstate dir="$work" --server type=tcp,port="$port",bindaddr=127.0.0.1 \
  --ctrl type=tcp,port=$((port + 1)),bindaddr=127.0.0.1 --flags not-need-init,startup-clear &
swtpm_pid=$!
trap 'kill "$swtpm_pid" 2>/dev/null; rm -rf "$work"' EXIT
sleep 0.5
export TPM2TOOLS_TCTI="swtpm:host=127.0.0.1,port=$port"

# Run one tool, then flush what it left loaded (swtpm has no resource manager).
t() { "$@" >/dev/null; tpm2_flushcontext -t >/dev/null; tpm2_flushcontext -s >/dev/null; }

# $1 name, $2 EK alg (rsa|ecc), $3 AK alg, $4 AK sign scheme, $5 PCR selection, $6 nonce
vector() {
  local name=$1 ek_alg=$2 ak_alg=$3 scheme=$4 sel=$5 nonce=$6
  local out="$here/$name"
  mkdir -p "$out"
  t tpm2_flushcontext -t
  t tpm2_createek -c "$work/ek.ctx" -G "$ek_alg" -u "$work/ek.tss"
  t tpm2_readpublic -c "$work/ek.ctx" -f tss -o "$out/ek.pub"
  t tpm2_readpublic -c "$work/ek.ctx" -f pem -o "$out/ek.pem"
  t tpm2_createak -C "$work/ek.ctx" -c "$work/ak.ctx" -G "$ak_alg" -g sha256 -s "$scheme" \
    -u "$work/ak.tss" -n "$work/ak.name"
  t tpm2_readpublic -c "$work/ak.ctx" -f tss -o "$out/ak.pub"
  t tpm2_readpublic -c "$work/ak.ctx" -f pem -o "$out/ak.pem"
  openssl ecparam -name prime256v1 -genkey -noout -out "$work/nk.key" 2>/dev/null
  openssl ec -in "$work/nk.key" -pubout -out "$out/nk.pem" 2>/dev/null
  t tpm2_pcrreset 16
  t tpm2_pcrextend "16:sha256=$(sha256sum "$out/nk.pem" | cut -d' ' -f1)"
  printf '%s' "$nonce" > "$out/nonce.txt"
  printf '%s' "$sel" > "$out/selection.txt"
  t tpm2_quote -c "$work/ak.ctx" -l "$sel" -g sha256 -q "$(printf '%s' "$nonce" | od -An -tx1 | tr -d ' \n')" \
    -m "$out/attest.bin" -s "$out/sig.bin" -o "$out/pcrs.bin"
  # The registrar's credential: a 32-char [A-Za-z0-9] challenge for this EK and AK name.
  printf '%s' "$nonce$nonce$nonce" | tr -dc 'A-Za-z0-9' | cut -c1-32 | tr -d '\n' > "$out/challenge.txt"
  tpm2_makecredential -T none -u "$out/ek.pub" -s "$out/challenge.txt" \
    -n "$(od -An -tx1 "$work/ak.name" | tr -d ' \n')" -o "$out/credential.bin" >/dev/null
}

vector rsa_sha256_pcr16 rsa rsa rsassa sha256:16 "1BwF0xQ2uVtLk9HRpZc3"
vector rsa_sha256_multi rsa rsa rsassa sha256:0,1,2,3,4,5,6,7,8,9,10,16,22 "nonce-for-multi-pcr-0001"
vector ecc_sha256_pcr16 ecc ecc ecdsa sha256:10,16 "EcQuoteNonce7890abcd"
echo "vectors written to $here"
