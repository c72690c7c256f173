"""Soak: mixed traffic for a while against `gridwatch serve` (2 workers) on loopback.

Single-alert ingest paced at 300/s and grid lookups at 100/s (wrk), map pages every
second, and 20 clients on the live stream, for MINUTES (10 by default). Prints errors of
each kind, the p99s, and the server's memory (all its processes) at the start, at minute 2
and at the end. Targets: 0 errors; end RSS <= 1.2x the RSS at minute 2.

    .venv/bin/python bench/soak.py [--minutes 10]
"""

import argparse
import os
import re
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import psycopg
from common import free_port, fresh_database, record, wait_healthy

from gridwatch.api.auth import create_key

BENCH = Path(__file__).parent
LIVE_CLIENTS = 20


def rss_mb(pid: int) -> float:
    """Resident memory of a process and its children (the workers), in MB."""
    pids = [pid] + [int(p) for p in subprocess.run(["pgrep", "-P", str(pid)], capture_output=True,
                                                       text=True).stdout.split()]
    total = 0
    for p in pids:
        try:
            status = Path(f"/proc/{p}/status").read_text()
        except FileNotFoundError:
            continue
        total += int(re.search(r"VmRSS:\s+(\d+)", status)[1])
    return total / 1024


class Pages(threading.Thread):
    """A command room: the map pages and their data, every second."""

    def __init__(self, url: str, key: str, stop: threading.Event) -> None:
        super().__init__(daemon=True)
        self.url, self.key, self.stop = url, key, stop
        self.errors, self.done, self.times, self.statuses = 0, 0, [], Counter()

    def run(self) -> None:
        paths = ["/maps/", "/maps/heatmap", "/incidents?limit=200&sort=due", "/patrols", "/stats/grids"]
        with httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {self.key}"}, timeout=30) as client:
            while not self.stop.is_set():
                for path in paths:
                    started = time.perf_counter()
                    try:
                        status = client.get(path).status_code
                    except httpx.HTTPError as exc:
                        status = type(exc).__name__
                    ok = status == 200
                    if not ok:
                        self.statuses[status] += 1
                    self.times.append(time.perf_counter() - started)
                    self.errors += not ok
                    self.done += 1
                self.stop.wait(1.0)


class Listener(threading.Thread):
    """One browser on the live stream, counting events; reconnects are errors."""

    def __init__(self, url: str, key: str, stop: threading.Event) -> None:
        super().__init__(daemon=True)
        self.url, self.key, self.stop = url, key, stop
        self.events, self.errors = 0, 0

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                with httpx.stream("GET", self.url + "/incidents/stream", timeout=httpx.Timeout(30, read=60),
                                  headers={"Authorization": f"Bearer {self.key}"}) as response:
                    if response.status_code != 200:
                        raise httpx.HTTPError(f"status {response.status_code}")
                    for line in response.iter_lines():
                        self.events += line.startswith("event:")
                        if self.stop.is_set():
                            return
            except httpx.HTTPError:
                if not self.stop.is_set():
                    self.errors += 1
                    time.sleep(1)


def wrk(script: str, seconds: int, env: dict, url: str, connections: int) -> subprocess.Popen:
    return subprocess.Popen(["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s",
                             str(BENCH / script), url], env=env, stdout=subprocess.PIPE, text=True)


def wrk_figures(text: str) -> dict:
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", text)
    return {"p99_ms": float(p99[1]) * {"us": 0.001, "ms": 1, "s": 1000}[p99[2]] if p99 else None,
            "failed": int(re.search(r"FAILED (\d+)", text)[1]),
            "socket_errors": (re.search(r"Socket errors: (.*)", text) or [None, None])[1]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10)
    args = parser.parse_args()
    seconds = int(args.minutes * 60)
    db = fresh_database()
    with psycopg.connect(db) as conn:
        # a key per consumer, as in a county: each has its own rate (GRIDWATCH_RATE_PER_S)
        ingest_key = create_key(conn, "ingest", "soak cameras")[1]
        room_key = create_key(conn, "viewer", "soak room")[1]
        lookup_key = create_key(conn, "viewer", "soak lookups")[1]
        screens_key = create_key(conn, "viewer", "soak screens")[1]
        cameras = conn.execute("SELECT count(*) FROM cameras WHERE active").fetchone()[0]
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([str(Path(sys.executable).parent / "gridwatch"), "serve", "--port", str(port),
                               "--workers", "2"], env={**os.environ, "GRIDWATCH_DATABASE_URL": db},
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_healthy(port)
        base = {**os.environ, "THREADS": "1", "RUN_SECONDS": str(seconds)}
        ingest = wrk("ingest.lua", seconds, {**base, "GRIDWATCH_KEY": ingest_key, "RATE": "300",
                                             "RUN_ID": f"soak-{int(time.time())}", "CAMERAS": str(cameras)}, url, 16)
        lookups = wrk("lookup.lua", seconds, {**base, "GRIDWATCH_KEY": lookup_key, "LOOKUP_RATE": "100",
                                              "LOOKUP_CONNECTIONS": "4"}, url, 4)
        stop = threading.Event()
        pages = Pages(url, room_key, stop)
        listeners = [Listener(url, screens_key, stop) for _ in range(LIVE_CLIENTS)]
        for t in [pages, *listeners]:
            t.start()
        started = time.monotonic()
        memory = {"start": rss_mb(server.pid)}
        print(f"soak for {args.minutes:g} min: ingest 300/s, lookups 100/s, pages every second, "
              f"{LIVE_CLIENTS} live clients; RSS at start {memory['start']:.0f} MB", flush=True)
        while time.monotonic() - started < seconds:
            time.sleep(10)
            minute = (time.monotonic() - started) / 60
            now = rss_mb(server.pid)
            if "minute_2" not in memory and minute >= 2:
                memory["minute_2"] = now
            print(f"  {minute:4.1f} min: RSS {now:.0f} MB, pages {pages.done} ({pages.errors} errors), "
                  f"live events {sum(x.events for x in listeners)}", flush=True)
        memory["end"] = rss_mb(server.pid)
        stop.set()
        ingest_out, lookups_out = ingest.communicate()[0], lookups.communicate()[0]
    finally:
        server.terminate()
        server.wait(timeout=30)
    acked = int(re.search(r"ACKED (\d+)", ingest_out)[1])
    ingest_fig, lookup_fig = wrk_figures(ingest_out), wrk_figures(lookups_out)
    with psycopg.connect(db) as conn:
        stored = conn.execute("SELECT count(*) FROM alerts WHERE source LIKE 'bench-soak-%%'").fetchone()[0]
    page_p99 = sorted(pages.times)[int(len(pages.times) * 0.99)] * 1000 if pages.times else None
    errors = (ingest_fig["failed"] + lookup_fig["failed"] + pages.errors + sum(x.errors for x in listeners)
              + (acked != stored))
    growth = memory["end"] / memory.get("minute_2", memory["end"])
    print(f"ingest: {acked} acknowledged, {stored} stored, {ingest_fig['failed']} errors, p99 "
          f"{ingest_fig['p99_ms']:.1f} ms" + (f", socket errors {ingest_fig['socket_errors']}"
                                              if ingest_fig["socket_errors"] else ""))
    print(f"lookups: {lookup_fig['failed']} errors, p99 {lookup_fig['p99_ms']:.1f} ms")
    print(f"pages: {pages.done} requests, {pages.errors} errors {dict(pages.statuses)}, p99 {page_p99:.0f} ms")
    print(f"live: {LIVE_CLIENTS} clients, {sum(x.events for x in listeners)} events, "
          f"{sum(x.errors for x in listeners)} dropped streams")
    print(f"memory: start {memory['start']:.0f} MB, minute 2 {memory.get('minute_2', float('nan')):.0f} MB, end "
          f"{memory['end']:.0f} MB ({growth:.2f}x minute 2; target <= 1.2x); errors in all: {errors} (target 0)")
    record("soak", minutes=args.minutes, errors=errors, acknowledged=acked, stored=stored,
           ingest_p99_ms=ingest_fig["p99_ms"], lookup_p99_ms=lookup_fig["p99_ms"], page_p99_ms=page_p99,
           rss_start_mb=round(memory["start"]), rss_minute_2_mb=round(memory.get("minute_2", 0)),
           rss_end_mb=round(memory["end"]), growth=round(growth, 2))


if __name__ == "__main__":
    main()
