"""Idle and slow clients against keylet's agent port (reliability suite, scenario
slow_clients), run with the testbed venv's Python.

Holds open, from several loopback source addresses:
  --idle N          TCP connections that never send a byte,
  --slow-hello N    connections that send a real TLS ClientHello one byte per second,
  --slow-request N  connections that send an HTTP request one byte per second
                    (after a complete mTLS handshake with --cert/--key, or over
                    plain TCP with --plain),
and opens a replacement whenever keylet closes one, for --secs seconds. Every
0.25 s it samples keylet's VmRSS (--pid) and writes the open counts and the
highest RSS so far as JSON to --status (atomically); at the end it prints them.
Connections that keylet closes are replaced at once; the first ones are opened
over a few seconds so that keylet's deadlines do not close them all together.
"""

import argparse
import asyncio
import json
import os
import resource
import ssl
import time

QUOTE = "/v2.2/quotes/integrity?nonce=slowclient0000000000&mask=0x400400&partial=1"


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class Flood:
    def __init__(self, args):
        self.args = args
        self.sources = [f"127.0.0.{i}" for i in range(2, 2 + args.sources)]
        self.open = {"idle": 0, "hello": 0, "request": 0}
        self.opened = {"idle": 0, "hello": 0, "request": 0}
        self.errors = {}
        self.max_rss = 0
        self.max_open = 0
        self.stop = asyncio.Event()
        self.tls = None
        if not args.plain and args.slow_request:
            self.tls = ssl.create_default_context(cafile=args.cacert)
            self.tls.load_cert_chain(args.cert, args.key)
        # A ClientHello maker: never completes, so nothing is verified with it.
        self.hello_ctx = ssl.create_default_context()

    def client_hello(self):
        incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        obj = self.hello_ctx.wrap_bio(incoming, outgoing, server_hostname=self.args.host)
        try:
            obj.do_handshake()
        except ssl.SSLWantReadError:
            pass
        return outgoing.read()

    async def connect(self, kind, i, tls=None):
        return await asyncio.open_connection(
            self.args.host, self.args.port, ssl=tls,
            server_hostname=self.args.host if tls else None,
            local_addr=(self.sources[i % len(self.sources)], 0))

    async def client(self, kind, i, spread):
        """One client slot of KIND: reconnects whenever keylet closes it. The
        first connections are spread over SPREAD seconds, so that keylet's
        deadlines do not close them all at the same moment."""
        await asyncio.sleep(spread * (i % 100) / 100)
        while not self.stop.is_set():
            try:
                tls = self.tls if kind == "request" else None
                reader, writer = await asyncio.wait_for(self.connect(kind, i, tls), 10)
            except (OSError, asyncio.TimeoutError, ssl.SSLError) as e:
                why = f"{kind}: {type(e).__name__} {getattr(e, 'errno', '') or ''}".strip()
                self.errors[why] = self.errors.get(why, 0) + 1
                await asyncio.sleep(0.2)
                continue
            self.open[kind] += 1
            self.opened[kind] += 1
            self.max_open = max(self.max_open, sum(self.open.values()))
            try:
                if kind == "idle":
                    await self.until_closed(reader)
                else:
                    data = self.client_hello() if kind == "hello" else (
                        f"GET {QUOTE} HTTP/1.1\r\nHost: {self.args.host}\r\n"
                        "Connection: close\r\n\r\n").encode()
                    await self.dribble(reader, writer, data)
            except (OSError, ssl.SSLError):
                pass
            finally:
                self.open[kind] -= 1
                writer.transport.abort()

    async def until_closed(self, reader):
        read = asyncio.ensure_future(reader.read(1))
        stop = asyncio.ensure_future(self.stop.wait())
        await asyncio.wait([read, stop], return_when=asyncio.FIRST_COMPLETED)
        read.cancel()
        stop.cancel()

    async def dribble(self, reader, writer, data):
        """Sends DATA one byte per second until keylet closes the connection."""
        read = asyncio.ensure_future(reader.read(1))
        try:
            for b in data:
                writer.write(bytes([b]))
                await writer.drain()
                await asyncio.wait([read], timeout=1.0)
                if read.done() or self.stop.is_set():
                    return
            await self.until_closed(reader)
        finally:
            read.cancel()

    async def sample(self):
        while not self.stop.is_set():
            try:
                self.max_rss = max(self.max_rss, rss_kb(self.args.pid))
            except OSError:
                pass
            self.write_status()
            await asyncio.sleep(0.25)

    def status(self):
        return {"open": dict(self.open), "opened": dict(self.opened), "max_open": self.max_open, "connect_errors": dict(self.errors),
                "max_rss_kb": self.max_rss}

    def write_status(self):
        tmp = self.args.status + ".tmp"
        with open(tmp, "w") as f:
            json.dump(self.status(), f)
        os.replace(tmp, self.args.status)

    async def run(self):
        a = self.args
        tasks = [asyncio.ensure_future(self.sample())]
        for kind, n in (("idle", a.idle), ("hello", a.slow_hello), ("request", a.slow_request)):
            spread = 10 if kind == "request" else 4
            tasks += [asyncio.ensure_future(self.client(kind, i, spread)) for i in range(n)]
        end = time.monotonic() + a.secs
        while time.monotonic() < end and not os.path.exists(a.status + ".stop"):
            await asyncio.sleep(0.25)
        self.stop.set()
        await asyncio.wait(tasks, timeout=5)
        self.write_status()
        print(json.dumps(self.status()))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--cacert")
    p.add_argument("--cert")
    p.add_argument("--key")
    p.add_argument("--plain", action="store_true")
    p.add_argument("--idle", type=int, default=1000)
    p.add_argument("--slow-hello", type=int, default=50)
    p.add_argument("--slow-request", type=int, default=50)
    p.add_argument("--sources", type=int, default=10)
    p.add_argument("--secs", type=float, default=60)
    p.add_argument("--pid", type=int, required=True)
    p.add_argument("--status", required=True)
    a = p.parse_args()
    need = a.idle + a.slow_hello + a.slow_request + 256
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < need:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (max(need, hard), max(need, hard)))
        except (ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    asyncio.run(Flood(a).run())


if __name__ == "__main__":
    main()
