#!/usr/bin/env python3
"""console.py - runs one shell command in keylet's test guest (tests/vm).

Usage: console.py SOCKET TIMEOUT COMMAND

SOCKET is the unix socket QEMU serves the guest's second serial port on. The
host sends "NONCE BASE64(COMMAND)\\n"; the guest's /init (tests/vm/guest-init)
runs the command and answers with base64 of its output, then "@@NONCE RC@@".
Prints the output (bytes as they are) and exits with the command's status;
124 if no answer came within TIMEOUT seconds, 125 if SOCKET did not accept.
"""

import base64
import os
import re
import socket
import sys
import time


def main() -> int:
    if len(sys.argv) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    path, timeout, command = sys.argv[1], float(sys.argv[2]), sys.argv[3]
    nonce = os.urandom(8).hex()
    end = re.compile(rb"@@" + nonce.encode() + rb" (\d+)@@")
    deadline = time.monotonic() + timeout
    try:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(path)
    except OSError as e:
        print(f"console.py: cannot connect to {path}: {e}", file=sys.stderr)
        return 125
    with sock:
        sock.sendall(nonce.encode() + b" " + base64.b64encode(command.encode()) + b"\n")
        buf = b""
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return 124
            sock.settimeout(left)
            try:
                chunk = sock.recv(65536)
            except socket.timeout:
                return 124
            if not chunk:
                return 125
            buf += chunk
            m = end.search(buf)
            if m:
                break
    # Earlier answers (an attempt that timed out) may precede this one: keep
    # only the base64 lines right before the marker.
    lines = buf[: m.start()].replace(b"\r", b"").split(b"\n")
    body = []
    for line in reversed(lines):
        if line.startswith(b"@@"):
            break
        body.append(line)
    out = base64.b64decode(b"".join(reversed(body)), validate=False)
    sys.stdout.buffer.write(out)
    return int(m.group(1))


if __name__ == "__main__":
    sys.exit(main())
