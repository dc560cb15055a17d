#!/usr/bin/env python3
"""The kernel's IMA measurement list, emulated for keylime-tests on a kernel without IMA.

Run as `keylime_ima_emulator` (the suite starts it by that name). In the
runner's private mount namespace /sys/kernel/security is a tmpfs; this writes
ima/ascii_runtime_measurements there the way the kernel would for the suite's
policy: a boot_aggregate line first, then one ima-ng line for every file
executed under WATCH (the suite creates everything it measures under
/keylime-tests), each measured once per content, each extended into PCR 10 of
the TPM (through the runner's multiplexer) before the execution may go on
(a fanotify permission event), as the kernel measures before it executes.

A restarted TPM (PCR 10 all zeros) gets the whole list replayed first, as
rust-keylime's keylime_ima_emulator does. Arguments are accepted and ignored.
"""

import ctypes
import hashlib
import os
import struct
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.realpath(__file__)), "..", "e2e"))
import ima_log  # noqa: E402  (the one place that knows the ima-ng template)

LOG = "/sys/kernel/security/ima/ascii_runtime_measurements"
WATCH = "/keylime-tests"
FAN_CLOEXEC, FAN_CLASS_CONTENT = 0x01, 0x04
FAN_MARK_ADD, FAN_MARK_MOUNT = 0x01, 0x10
FAN_OPEN_EXEC_PERM, FAN_ALLOW = 0x00040000, 0x01
AT_FDCWD = -100
EVENT = struct.Struct("=IBBHQii")


def say(msg: str) -> None:
    print(f"ima_emulator: {msg}", flush=True)


def pcr_values(indices: str) -> list:
    with tempfile.NamedTemporaryFile() as out:
        subprocess.run(["tpm2_pcrread", f"sha256:{indices}", "-o", out.name], check=True,
                       stdout=subprocess.DEVNULL)
        raw = out.read()
    return [raw[i:i + 32] for i in range(0, len(raw), 32)]


def extend(digest_hex: str) -> None:
    subprocess.run(["tpm2_pcrextend", f"10:sha256={digest_hex}"], check=True)


def line_extend_digest(line: str) -> str:
    parts = line.rstrip("\n").split(" ", 4)
    alg, _, hexd = parts[3].partition(":")
    return hashlib.sha256(ima_log.template_data(alg, bytes.fromhex(hexd), parts[4])).hexdigest()


def sync_tpm() -> None:
    os.makedirs(os.path.dirname(LOG), exist_ok=True)
    with open(LOG, "a+", encoding="utf-8") as f:
        f.seek(0)
        lines = [line for line in f if line.strip()]
    if pcr_values("10")[0] != bytes(32):
        say("PCR 10 already extended: the list is taken as in sync")
        return
    if not lines:
        boot = hashlib.sha256(b"".join(pcr_values("0,1,2,3,4,5,6,7,8,9"))).digest()
        extend(ima_log.append_line(LOG, boot, "boot_aggregate"))
        say("boot_aggregate measured")
        return
    for line in lines:
        extend(line_extend_digest(line))
    say(f"replayed {len(lines)} entries into PCR 10")


def measure(fd: int, seen: set) -> None:
    path = os.readlink(f"/proc/self/fd/{fd}")
    if not path.startswith(WATCH + "/"):
        return
    h = hashlib.sha256()
    offset = 0
    while chunk := os.pread(fd, 1 << 16, offset):
        h.update(chunk)
        offset += len(chunk)
    key = (path, h.digest())
    if key in seen:
        return
    seen.add(key)
    extend(ima_log.append_line(LOG, h.digest(), path))
    say(f"measured {path}")


def main() -> int:
    libc = ctypes.CDLL(None, use_errno=True)
    sync_tpm()
    seen = set()
    with open(LOG, encoding="utf-8") as f:
        for line in f:
            parts = line.rstrip("\n").split(" ", 4)
            if len(parts) == 5 and parts[4].startswith(WATCH + "/"):
                seen.add((parts[4], bytes.fromhex(parts[3].partition(":")[2])))
    fan = libc.fanotify_init(FAN_CLOEXEC | FAN_CLASS_CONTENT, os.O_RDONLY | os.O_LARGEFILE)
    if fan < 0:
        sys.exit(f"ima_emulator: fanotify_init: {os.strerror(ctypes.get_errno())}")
    os.makedirs(WATCH, exist_ok=True)
    if libc.fanotify_mark(fan, FAN_MARK_ADD | FAN_MARK_MOUNT, ctypes.c_uint64(FAN_OPEN_EXEC_PERM),
                          AT_FDCWD, WATCH.encode()) < 0:
        sys.exit(f"ima_emulator: fanotify_mark {WATCH}: {os.strerror(ctypes.get_errno())}")
    say(f"watching executions under {WATCH}")
    while True:
        buf = os.read(fan, 4096)
        at = 0
        while at + EVENT.size <= len(buf):
            length, _, _, _, _, fd, _ = EVENT.unpack_from(buf, at)
            at += max(length, EVENT.size)
            if fd < 0:
                continue
            try:
                measure(fd, seen)
            except (OSError, subprocess.CalledProcessError) as e:
                say(f"measuring failed: {e}")
            finally:
                os.write(fan, struct.pack("=iI", fd, FAN_ALLOW))
                os.close(fd)


if __name__ == "__main__":
    sys.exit(main())
