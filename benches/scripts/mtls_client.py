#!/usr/bin/env python3
"""mtls_client.py - times agent API requests the way the Keylime verifier makes
them: a new TCP + TLS connection for every request, the verifier's client
certificate, the agent's registered server certificate as the only trust
anchor (hostname not checked, as the verifier does).

Usage:
  mtls_client.py times  HOST PORT CA CERT KEY COUNT PATH [PATH...]
                                                           -> JSON timings, a line per PATH
  mtls_client.py poll   HOST PORT CA CERT KEY SECS INTERVAL PATH PID
                                                           -> JSON RSS samples
  mtls_client.py get    HOST PORT CA CERT KEY PATH         -> the answer's body
Several PATHs are asked in turn, one request each, COUNT times, so that each
meets the same moments of the host (a quote and the handshake it is compared
with); the order is shuffled every turn (seeded: the same every run), since a
request answers measurably slower right after another kind. Percentiles are
nearest-rank. Any non-200 answer is an error (exit 1).
"""
import http.client
import json
import math
import os
import random
import ssl
import sys
import time


def context(ca, cert, key):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.load_verify_locations(cafile=ca)
    ctx.load_cert_chain(cert, key)
    return ctx


def fetch(host, port, ctx, path):
    conn = http.client.HTTPSConnection(host, port, context=ctx, timeout=30)
    conn.request("GET", path)
    resp = conn.getresponse()
    body = resp.read()
    conn.close()
    if resp.status != 200:
        sys.exit(f"GET {path}: HTTP {resp.status}: {body[:200]!r}")
    return body


def one(host, port, ctx, path):
    t0 = time.perf_counter()
    fetch(host, port, ctx, path)
    dt = (time.perf_counter() - t0) * 1000.0
    return dt


def pct(sorted_ms, q):
    i = max(0, min(len(sorted_ms) - 1, math.ceil(q * len(sorted_ms)) - 1))
    return sorted_ms[i]


def cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return -1


def main():
    mode = sys.argv[1]
    host, port, ca, cert, key = sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5], sys.argv[6]
    ctx = context(ca, cert, key)
    if mode == "times":
        count, paths = int(sys.argv[7]), sys.argv[8:]
        pid = os.environ.get("BENCH_PID")
        for path in paths:
            one(host, port, ctx, path)  # warm-up (page cache, first AK use)
        ms = {path: [] for path in paths}
        ticks = dict.fromkeys(paths, 0)  # the agent's CPU ticks during each path's requests
        order = list(paths)
        shuffle = random.Random(count).shuffle
        for _ in range(count):
            shuffle(order)
            for path in order:
                t0 = cpu_ticks(pid) if pid else 0
                ms[path].append(one(host, port, ctx, path))
                if pid:
                    ticks[path] += cpu_ticks(pid) - t0
        hz = os.sysconf("SC_CLK_TCK")
        for path in paths:
            s = sorted(ms[path])
            out = {"count": count, "median_ms": round(pct(s, 0.5), 3), "p95_ms": round(pct(s, 0.95), 3),
                   "min_ms": round(s[0], 3)}
            if pid:
                out["cpu_s_per_100"] = round(ticks[path] / hz * 100.0 / count, 3)
                out["rss_kb"] = rss_kb(pid)
            print(json.dumps(out))
    elif mode == "poll":
        secs, interval, path, pid = float(sys.argv[7]), float(sys.argv[8]), sys.argv[9], sys.argv[10]
        start = time.monotonic()
        samples, n = [], 0
        while time.monotonic() - start < secs:
            one(host, port, ctx, path)
            n += 1
            if n % 30 == 1:
                samples.append([round(time.monotonic() - start), rss_kb(pid)])
            time.sleep(interval)
        samples.append([round(time.monotonic() - start), rss_kb(pid)])
        print(json.dumps({"requests": n, "rss_kb_samples": samples}))
    elif mode == "get":
        sys.stdout.write(fetch(host, port, ctx, sys.argv[7]).decode())
    else:
        sys.exit(f"unknown mode {mode}")


if __name__ == "__main__":
    main()
