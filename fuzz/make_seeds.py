#!/usr/bin/env python3
"""Writes the seed corpus (fuzz/corpus/<target>/) from the recorded vectors in
core/tests/data/keylime. Seeds named valid-* must parse (core/tests/corpus_replay.rs
checks that); the rest are edge cases that must merely not panic."""
import json
import pathlib
import struct

ROOT = pathlib.Path(__file__).resolve().parents[1]
VEC = ROOT / "core" / "tests" / "data" / "keylime"
OUT = ROOT / "fuzz" / "corpus"


def put(target, name, data):
    d = OUT / target
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_bytes(data)


for v in sorted(p for p in VEC.iterdir() if (p / "attest.bin").exists()):
    n = v.name
    attest, sig = (v / "attest.bin").read_bytes(), (v / "sig.bin").read_bytes()
    put("tpms_attest", f"valid-{n}", attest)
    put("tpmt_signature", f"valid-{n}", sig)
    put("tpm2b_public", f"valid-ak-{n}", (v / "ak.pub").read_bytes())
    put("tpm2b_public", f"valid-ek-{n}", (v / "ek.pub").read_bytes())
    put("credential_blob", f"valid-{n}", (v / "credential.bin").read_bytes())
    put("pcr_blob", f"valid-{n}", (v / "pcrs.bin").read_bytes())
    quote = json.loads((VEC / "export" / f"{n}.json").read_text())["quote"]
    put("quote_string", f"valid-{n}", quote.encode())
    # A TPM2_Quote response frame: header, parameterSize, TPM2B_ATTEST,
    # TPMT_SIGNATURE, then one empty password-session response.
    params = struct.pack(">H", len(attest)) + attest + sig
    body = struct.pack(">I", len(params)) + params + b"\x00\x00\x01\x00\x00"
    put("tpm_response", f"valid-{n}", struct.pack(">HII", 0x8002, 10 + len(body), 0) + body)
    put("tpms_attest", f"short-{n}", attest[:40])

put("tpm_response", "rc-retry", struct.pack(">HII", 0x8001, 10, 0x922))
# TCG device identity keys recorded from swtpm (core/tests/data/devid): P-384 and P-521.
DEVID = ROOT / "core" / "tests" / "data" / "devid"
for name in ["iak-p384", "idevid-p521"]:
    key = (DEVID / f"{name}.tpm2b").read_bytes()
    put("tpm2b_public", f"valid-{name}", key)
# A P-384 key whose X coordinate is one byte short (sizes adjusted): refused.
p384 = (DEVID / "iak-p384.tpm2b").read_bytes()
x_at = len(p384) - 2 * 50
short = p384[:x_at] + struct.pack(">H", 47) + p384[x_at + 3:]
put("tpm2b_public", "short-coordinate-p384", struct.pack(">H", len(short) - 2) + short[2:])
put("tpm_response", "size-lies", struct.pack(">HII", 0x8002, 0xFFFF, 0) + b"\xff" * 8)
put("agent_id", "valid-uuid", b"D432FBB3-D2F1-4A97-9EF7-75BD81C00001")
put("agent_id", "valid-name", b"agent_1.example-a")
put("agent_id", "placeholder", b"d432fbb3-d2f1-4a97-9ef7-75bd81c00000")
put("agent_id", "unicode", "agént".encode())
put("credential_blob", "bad-magic", b"\xba\xdc\xc0\xdf\x00\x00\x00\x01\x00\x00\x00\x00")
put("quote_string", "not-raw", b"cAAAA:BBBB:CCCC")
put("quote_string", "two-parts", b"rAAAA:BBBB")

# TPM2_Certify response frames recorded from swtpm (core/tests/data/frames/certify.txt):
# the AK certified by itself, RSA and ECC; then known-bad variants.
certify = [
    bytes.fromhex(line.split()[2])
    for line in (ROOT / "core" / "tests" / "data" / "frames" / "certify.txt").read_text().splitlines()
    if line.startswith("00000148 Response")
]
for tag, frame in zip(["rsa", "ecc"], certify):
    put("tpm_certify", f"valid-{tag}_ak_by_itself", frame)
    put("tpm_certify", f"truncated-{tag}", frame[:-12])
rsa = certify[0]
(alen,) = struct.unpack(">H", rsa[14:16])
# certifyInfo one byte longer, holding a trailing byte after the TPMS_ATTEST
# (parameterSize and the frame size grow with it).
body = rsa[16:16 + alen] + b"\x00" + rsa[16 + alen:]
params_len = struct.unpack(">I", rsa[10:14])[0] + 1
put("tpm_certify", "trailing-rsa",
    struct.pack(">HII", 0x8002, len(rsa) + 1, 0) + struct.pack(">I", params_len)
    + struct.pack(">H", alen + 1) + body)
# The TPMS_ATTEST type changed from CERTIFY (0x8017) to QUOTE (0x8018): offset
# 10 header + 4 parameterSize + 2 TPM2B size + 4 magic.
put("tpm_certify", "quote-type", rsa[:20] + b"\x80\x18" + rsa[22:])
put("tpm_certify", "rc-retry", struct.pack(">HII", 0x8001, 10, 0x922))

# Push-model verifier answers (JSON:API, Keylime 7.14.3 shapes): what keylet reads, then
# known-bad variants that every reader must refuse.
SESSION = (b'{"data":{"type":"session","id":"4f1c1e0e-7d1b-4d4a-9a53-0c3f7e0e2b11","attributes":'
           b'{"agent_id":"a","authentication_requested":[{"authentication_class":"pop",'
           b'"authentication_type":"tpm_pop","chosen_parameters":{"challenge":"AAECAwQFBgcICQoLDA0ODw=="}}],'
           b'"created_at":"2026-12-01T02:00:00+00:00","challenges_expire_at":"2026-12-01T02:01:00+00:00"}}}')
PASS = (b'{"data":{"type":"session","id":"s","attributes":{"agent_id":"a","evaluation":"pass",'
        b'"token":"4f1c1e0e.c2VjcmV0","token_expires_at":"2026-12-01T02:03:00+00:00"}}}')
REQUESTED = (b'{"data":{"type":"attestation","id":"3","attributes":{"stage":"awaiting_evidence",'
             b'"evidence_requested":[{"evidence_class":"certification","evidence_type":"tpm_quote",'
             b'"chosen_parameters":{"challenge":"AAECAwQFBgcICQoLDA0ODw==","signature_scheme":"rsassa",'
             b'"hash_algorithm":"sha256","selected_subjects":{"sha256":[10,15]}}},'
             b'{"evidence_class":"log","evidence_type":"ima_log","chosen_parameters":{"starting_offset":5,'
             b'"format":"text/plain"}}]}}}')
put("verifier_response", "valid-session-challenge", SESSION)
put("verifier_response", "valid-session-pass", PASS)
put("verifier_response", "valid-session-fail", b'{"data":{"attributes":{"evaluation":"fail"}}}')
put("verifier_response", "valid-evidence-requested", REQUESTED)
put("verifier_response", "valid-evidence-accepted",
    b'{"data":{"type":"attestation","attributes":{"stage":"evaluating_evidence"}},'
    b'"meta":{"seconds_to_next_attestation":2}}')
put("verifier_response", "html", b"<html><body>502 Bad Gateway</body></html>")
put("verifier_response", "error-422",
    b'{"errors":[{"status":"422","detail":"must have a PCR bank","source":{"pointer":"/evidence_supported/0"}}]}')
put("verifier_response", "challenge-65-bytes", SESSION.replace(b"AAECAwQFBgcICQoLDA0ODw==", b"A" * 88))
put("verifier_response", "session-id-path", SESSION.replace(b"4f1c1e0e-7d1b-4d4a-9a53-0c3f7e0e2b11", b"../x"))
put("verifier_response", "token-with-space", PASS.replace(b"4f1c1e0e.c2VjcmV0", b"a b"))
put("verifier_response", "pcr-24", REQUESTED.replace(b"[10,15]", b"[10,24]"))
put("verifier_response", "negative-offset", REQUESTED.replace(b'"starting_offset":5', b'"starting_offset":-5'))
put("verifier_response", "next-not-a-number", b'{"meta":{"seconds_to_next_attestation":"soon"}}')
put("verifier_response", "valid-agent-status",
    b'{"code":200,"status":"Success","results":{"attestation_status":"PASS",'
    b'"last_successful_attestation":1796092112,"attestation_count":9}}')
