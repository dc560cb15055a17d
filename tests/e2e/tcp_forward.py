#!/usr/bin/env python3
"""Forwards TCP connections from BIND_IP:PORT to 127.0.0.1:PORT, for each PORT given.

The testbed's services listen on 127.0.0.1 only; tests/e2e/push.sh (scenario nat) runs
keylet in a network namespace that reaches them through this forwarder on the host end
of a veth pair. Runs until killed.

Usage: tcp_forward.py BIND_IP PORT...
"""

import asyncio
import sys


async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()


def handler(port: int):
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            writer.close()
            return
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    return handle


async def main() -> None:
    bind, ports = sys.argv[1], [int(p) for p in sys.argv[2:]]
    servers = [await asyncio.start_server(handler(p), bind, p, reuse_address=True) for p in ports]
    print("forwarding", bind, ports, flush=True)
    await asyncio.gather(*(s.serve_forever() for s in servers))


asyncio.run(main())
