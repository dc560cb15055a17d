#!/usr/bin/env python3
"""Several TPM clients on one swtpm, as the kernel's resource manager allows on a host.

swtpm's TCP data port serves one client at a time and keylet keeps its
connection open, so a test's own tpm2-tools (and the IMA emulation's PCR 10
extends) would wait forever behind it. This multiplexer accepts any number of
clients on LISTEN_PORT, reads one raw TPM command frame at a time (size at
bytes 2..6 of the header), and sends each to swtpm on a connection of its own,
one command at a time, so swtpm restarts are invisible to the clients. The
control port (LISTEN_PORT + 1) is forwarded as is to swtpm's control port.

Usage: tpm_mux.py LISTEN_PORT SWTPM_PORT   (all on 127.0.0.1; swtpm's control
port is SWTPM_PORT + 1). It runs until killed.
"""

import socket
import struct
import sys
import threading

HOST = "127.0.0.1"
MAX_FRAME = 64 * 1024
TPM_LOCK = threading.Lock()


def recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("peer closed")
        buf += chunk
    return buf


def recv_frame(sock: socket.socket) -> bytes:
    header = recv_exact(sock, 6)
    (size,) = struct.unpack(">I", header[2:6])
    if size < 10 or size > MAX_FRAME:
        raise ConnectionError(f"frame size {size} out of range")
    return header + recv_exact(sock, size - 6)


def transact(swtpm_port: int, command: bytes) -> bytes:
    with TPM_LOCK, socket.create_connection((HOST, swtpm_port), timeout=60) as tpm:
        tpm.sendall(command)
        return recv_frame(tpm)


def serve_client(client: socket.socket, swtpm_port: int) -> None:
    with client:
        try:
            while True:
                command = recv_frame(client)
                client.sendall(transact(swtpm_port, command))
        except (ConnectionError, OSError) as e:
            print(f"tpm_mux: client done: {e}", file=sys.stderr, flush=True)


def pipe(src: socket.socket, dst: socket.socket) -> None:
    try:
        while data := src.recv(4096):
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def forward_ctrl(client: socket.socket, ctrl_port: int) -> None:
    try:
        upstream = socket.create_connection((HOST, ctrl_port), timeout=10)
    except OSError:
        client.close()
        return
    upstream.settimeout(None)
    threading.Thread(target=pipe, args=(upstream, client), daemon=True).start()
    pipe(client, upstream)


def listen(port: int) -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((HOST, port))
    s.listen(64)
    return s


def accept_loop(server: socket.socket, handler, arg: int) -> None:
    while True:
        client, _ = server.accept()
        threading.Thread(target=handler, args=(client, arg), daemon=True).start()


def main() -> int:
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    port, swtpm_port = int(sys.argv[1]), int(sys.argv[2])
    data, ctrl = listen(port), listen(port + 1)
    threading.Thread(target=accept_loop, args=(ctrl, forward_ctrl, swtpm_port + 1), daemon=True).start()
    print(f"tpm_mux: {HOST}:{port} -> swtpm {HOST}:{swtpm_port}", file=sys.stderr, flush=True)
    accept_loop(data, serve_client, swtpm_port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
