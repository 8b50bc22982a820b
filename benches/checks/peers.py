"""Peers of the health-check benchmark (issue 4): aiohttp (+uvloop) pooled and force_close,
and asyncio TCP connect, N requests with C in flight. Prints one JSON line per run.

    python peers.py http-pooled http://127.0.0.1:18080/ 20000 64
    python peers.py http-close  http://127.0.0.1:18080/ 20000 64
    python peers.py tcp         127.0.0.1:18080         20000 64
"""
import asyncio
import json
import sys
import time

import aiohttp
import uvloop


async def http(url, n, c, force_close):
    conn = aiohttp.TCPConnector(limit=c, force_close=force_close)
    timeout = aiohttp.ClientTimeout(total=10)
    lat, errors = [], 0
    sem = asyncio.Semaphore(c)
    async with aiohttp.ClientSession(connector=conn, timeout=timeout) as s:
        async def one():
            nonlocal errors
            async with sem:
                t = time.perf_counter()
                try:
                    async with s.get(url) as r:
                        await r.read()
                        if r.status != 200:
                            errors += 1
                except Exception:
                    errors += 1
                lat.append(time.perf_counter() - t)
        await asyncio.gather(*(one() for _ in range(n // 100)))
        lat.clear()
        start = time.perf_counter()
        await asyncio.gather(*(one() for _ in range(n)))
        return time.perf_counter() - start, lat, errors


async def tcp(addr, n, c):
    host, port = addr.rsplit(":", 1)
    lat, errors = [], 0
    sem = asyncio.Semaphore(c)

    async def one():
        nonlocal errors
        async with sem:
            t = time.perf_counter()
            try:
                _, w = await asyncio.wait_for(asyncio.open_connection(host, int(port)), 10)
                w.close()
                await w.wait_closed()
            except Exception:
                errors += 1
            lat.append(time.perf_counter() - t)
    await asyncio.gather(*(one() for _ in range(n // 100)))
    lat.clear()
    start = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(n)))
    return time.perf_counter() - start, lat, errors


def main():
    mode, target, n, c = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    uvloop.install()
    if mode == "tcp":
        elapsed, lat, errors = asyncio.run(tcp(target, n, c))
    else:
        elapsed, lat, errors = asyncio.run(http(target, n, c, mode == "http-close"))
    lat.sort()
    q = lambda p: lat[min(int(len(lat) * p), len(lat) - 1)] * 1000
    print(json.dumps({"mode": "aiohttp-" + mode if mode != "tcp" else "asyncio-tcp", "n": n, "concurrency": c,
                      "checks_per_s": round(n / elapsed), "p50_ms": round(q(0.5), 3), "p99_ms": round(q(0.99), 3),
                      "errors": errors}))


main()
