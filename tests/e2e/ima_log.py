#!/usr/bin/env python3
"""Synthetic IMA measurement lists for keylet's end-to-end tests.

Writes `ascii_runtime_measurements` lines in the kernel's ima-ng format and
prints the SHA-256 digests the kernel would extend into PCR 10, so a test can
make swtpm's PCR 10 match the log with tpm2_pcrextend. The template hash is
computed the way Keylime 7.14 replays it (keylime/ima/ast.py):

  template data  = u32le(len(alg) + 2 + len(digest)) || alg || ":" || NUL || digest
                 || u32le(len(path) + 1) || path || NUL
  column 2       = SHA-1(template data)      (the policy's ima.log_hash_alg, "sha1")
  PCR 10 extend  = SHA-256(template data)    (the quoted bank)

Commands:
  append LOG PATH=CONTENT...    append one ima-ng line per file (file digest =
                                SHA-256 of CONTENT); print each PCR-10 extend digest
  boot-aggregate LOG PCR0..PCR9 append the boot_aggregate line computed from
                                the hex SHA-256 values of PCRs 0-9; print its extend digest
  replay LOG                    print the SHA-256 PCR 10 value the log replays to
  keylime-check LOG POLICY PCR10
                                (run with the Keylime venv's python) replay LOG with
                                Keylime's own code against POLICY and the quoted PCR 10
                                value; print the failure events; exit 0 only if none
"""

import hashlib
import struct
import sys


def template_data(alg: str, digest: bytes, path: str) -> bytes:
    a = alg.encode()
    p = path.encode()
    return (
        struct.pack("<I", len(a) + 2 + len(digest))
        + a
        + b":\x00"
        + digest
        + struct.pack("<I", len(p) + 1)
        + p
        + b"\x00"
    )


def append_line(log: str, digest: bytes, path: str) -> str:
    data = template_data("sha256", digest, path)
    line = f"10 {hashlib.sha1(data).hexdigest()} ima-ng sha256:{digest.hex()} {path}\n"
    with open(log, "a", encoding="utf-8") as f:
        f.write(line)
    return hashlib.sha256(data).hexdigest()


def replay(log: str) -> str:
    pcr = bytes(32)
    with open(log, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            parts = line.rstrip("\n").split(" ", 4)
            if len(parts) != 5 or parts[2] != "ima-ng":
                sys.exit(f"{log}:{n}: not an ima-ng line: {line!r}")
            alg, _, hexd = parts[3].partition(":")
            data = template_data(alg, bytes.fromhex(hexd), parts[4])
            pcr = hashlib.sha256(pcr + hashlib.sha256(data).digest()).digest()
    return pcr.hex()


def keylime_check(log: str, policy_file: str, pcr10: str) -> int:
    # Imported here: only this command needs Keylime (the venv's python).
    import json

    from keylime.common.algorithms import Hash
    from keylime.ima import ima

    with open(policy_file, encoding="utf-8") as f:
        policy = json.load(f)
    ima.validate_runtime_policy(policy)
    with open(log, encoding="utf-8") as f:
        lines = f.read().split("\n")
    running, failure = ima.process_measurement_list(
        None, lines, policy, pcrval=pcr10, hash_alg=Hash.SHA256
    )
    events = [e.event_id for e in failure.events]
    print(json.dumps({"replayed_pcr10": running, "failure_events": events}))
    return 1 if failure else 0


def main(argv: list) -> int:
    if len(argv) >= 3 and argv[1] == "append":
        for spec in argv[3:]:
            path, sep, content = spec.partition("=")
            if not sep or not path.startswith("/"):
                sys.exit(f"append: expected /ABS/PATH=CONTENT, got {spec!r}")
            print(append_line(argv[2], hashlib.sha256(content.encode()).digest(), path))
        return 0
    if len(argv) == 13 and argv[1] == "boot-aggregate":
        pcrs = b"".join(bytes.fromhex(v.removeprefix("0x")) for v in argv[3:13])
        print(append_line(argv[2], hashlib.sha256(pcrs).digest(), "boot_aggregate"))
        return 0
    if len(argv) == 3 and argv[1] == "replay":
        print(replay(argv[2]))
        return 0
    if len(argv) == 5 and argv[1] == "keylime-check":
        return keylime_check(argv[2], argv[3], argv[4])
    sys.exit(__doc__)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
