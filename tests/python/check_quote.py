#!/usr/bin/env python3
"""Feed quote strings encoded by keylet-core to the real Keylime verifier check.

The quotes themselves were recorded from swtpm with tpm2-tools
(core/tests/data/keylime/make_vectors.sh); keylet-core encodes them into
Keylime's quote string and PCR blob. So this proves keylet's Keylime encoding,
not its TPM command building (the e2e suites prove that against the real
verifier). Each input is a JSON file (written by core/tests/keylime_export.rs) with:
  quote     the Keylime quote string "r<attest>:<signature>:<pcr blob>"
  nonce     the nonce the quote answers (its ASCII bytes are extraData)
  ak_tpm    the AK TPM2B_PUBLIC in base64, as the registrar stores it
  hash_alg  the quote's hash algorithm name
  pubkey    the payload key PEM whose hash the agent extended into PCR 16

For every input, Keylime's own `Tpm.check_quote` (keylime.tpm.tpm_main, the
function the verifier and tenant run, with the clock check of a fresh
AgentAttestState and the PCR 16 binding check) must accept the quote, and must
reject three corrupted variants: another nonce, a changed PCR value, and a
different payload key. Exit status 0 only if all of that holds.

Usage: check_quote.py [FILE_OR_DIR ...]   (default: core/tests/data/keylime/export)
Needs a Python with keylime 7.14.3 installed, e.g. the testbed venv:
  bash shared/testbed/keylime-testbed.sh -d DIR install
  DIR/venv/bin/python tests/python/check_quote.py
"""

import base64
import json
import logging
import pathlib
import sys

from keylime.agentstates import AgentAttestState
from keylime.common.algorithms import Hash
from keylime.mba import mba
from keylime.tpm.tpm_main import Tpm

ROOT = pathlib.Path(__file__).resolve().parents[2]
DEFAULT = ROOT / "core" / "tests" / "data" / "keylime" / "export"


def check(case: dict, quote: str, nonce: str, pubkey: str) -> list:
    """Run Keylime's check; returns the failure events (empty = accepted)."""
    failure = Tpm().check_quote(
        AgentAttestState(case["name"]),
        nonce,
        pubkey,
        quote,
        case["ak_tpm"],
        {},
        # An agent without IMA sends an empty list; PCR 10 then must still be zero.
        ima_measurement_list="",
        hash_alg=Hash(case["hash_alg"]),
    )
    return [e.event_id for e in failure.events]


def corrupt_pcr_blob(quote: str) -> str:
    """Flip one byte of the first PCR digest inside the third quote part."""
    kind_attest, sig, blob, *rest = quote.split(":")
    raw = bytearray(base64.b64decode(blob))
    raw[142] ^= 0xFF
    return ":".join([kind_attest, sig, base64.b64encode(bytes(raw)).decode(), *rest])


OTHER_PUBKEY = """-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEQ0nR3G1F9Ls1OJXOf7gMhJ0bnhqg
YbqNtR/4oYz4C1U8vNq0GxKxyZ3cRKf+4HYwUc2BkqZUZ6uOwh7d2fCm3w==
-----END PUBLIC KEY-----
"""


def main(argv: list) -> int:
    logging.basicConfig(level=logging.CRITICAL)
    # As the tenant does: the measured-boot parser the PCR checks call into.
    mba.load_imports(skip_custom_policies=True)
    paths = [pathlib.Path(a) for a in argv] or [DEFAULT]
    files = sorted(f for p in paths for f in (p.glob("*.json") if p.is_dir() else [p]))
    if not files:
        print("no input files", file=sys.stderr)
        return 2
    passed = failed = 0
    for f in files:
        case = json.loads(f.read_text())
        q, n, k = case["quote"], case["nonce"], case["pubkey"]
        runs = [
            ("accepts keylet's quote", True, q, n, k),
            ("rejects another nonce", False, q, n + "x", k),
            ("rejects a changed PCR value", False, corrupt_pcr_blob(q), n, k),
            ("rejects another payload key (PCR 16)", False, q, n, OTHER_PUBKEY),
        ]
        for label, want_ok, quote, nonce, pubkey in runs:
            events = check(case, quote, nonce, pubkey)
            ok = (not events) == want_ok
            print(f"{'ok  ' if ok else 'FAIL'} {case['name']}: {label} {events or ''}")
            passed += ok
            failed += not ok
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
