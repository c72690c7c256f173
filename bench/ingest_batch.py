"""Bulk ingest: N alerts (default 1,000,000) through POST /alerts/batch in batches of
10,000, end to end (HTTP, validation, placement, grids, grouping, incidents, teams, COPY),
against a fresh database; then the same rows loaded by a plain psycopg executemany into an
empty alerts table (the baseline), and by COPY (the ceiling: what loading these rows costs
with nothing computed). Target: ours >= 0.6x the executemany baseline of the same run (the
earlier 100,000 alerts/s proved out of reach on a 2-core machine shared by client, server
and PostgreSQL).

    .venv/bin/python bench/ingest_batch.py [--alerts N] [--days D]
"""

import argparse
import os
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import orjson
import psycopg
from common import drop_database, free_port, fresh_database, record, wait_healthy

from gridwatch.alerts.cameras import camera_collection
from gridwatch.alerts.simulate import Feed
from gridwatch.api.auth import create_key

BATCH = 10_000
COLUMNS = ("source, event_id, camera_id, type, score, occurred_at, received_at, updated_at, box, frame_size, geom, "
           "position_method, grid_code, township_code, county_code, incident_id, team_id, team_reason, "
           "boundary_version, extra")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--alerts", type=int, default=1_000_000)
    parser.add_argument("--days", type=float, default=7, help="the alerts' time span, ending now")
    args = parser.parse_args()
    url = fresh_database()
    with psycopg.connect(url) as conn:
        key = create_key(conn, "ingest", "bench batch")[1]
        cameras = orjson.loads(camera_collection(conn, filters={"active": True}, limit=10_000))["features"]
    print(f"generating {args.alerts:,} alerts over {args.days:g} days (repeats, hot spots, calibrated boxes)")
    feed = Feed(cameras, seed=11)
    end = datetime.now(UTC) - timedelta(minutes=10)
    # the feed adds repeats to each happening: ask for a little more, then cut
    alerts = feed.history(end - timedelta(days=args.days), end, args.alerts / args.days)[:args.alerts]
    if len(alerts) < args.alerts:
        raise SystemExit(f"the feed gave {len(alerts):,} alerts, fewer than {args.alerts:,}")
    for i, a in enumerate(alerts):
        a["event_id"] = f"b{i}"
    bodies = [orjson.dumps(alerts[i:i + BATCH]) for i in range(0, len(alerts), BATCH)]
    n = len(alerts)

    port = free_port()
    env = {**os.environ, "GRIDWATCH_DATABASE_URL": url}
    server = subprocess.Popen([str(Path(sys.executable).parent / "gridwatch"), "serve", "--port", str(port),
                               "--workers", "2"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_healthy(port)
        elapsed = post_all(port, key, bodies)
    finally:
        server.terminate()
        server.wait(timeout=30)
    with psycopg.connect(url) as conn:
        stored, incidents = conn.execute("SELECT (SELECT count(*) FROM alerts), (SELECT count(*) FROM incidents)"
                                         ).fetchone()
        rows = conn.execute(f"SELECT {COLUMNS} FROM alerts ORDER BY id").fetchall()
        conn.execute("TRUNCATE alerts CASCADE")
        conn.commit()
        start = time.perf_counter()
        with conn.cursor() as cur:
            cur.executemany(f"INSERT INTO alerts ({COLUMNS}) VALUES ({', '.join(['%s'] * 20)})", rows)
        conn.commit()
        baseline = time.perf_counter() - start
        # the ceiling: the same rows by COPY, nothing computed (not the named baseline)
        conn.execute("TRUNCATE alerts CASCADE")
        conn.commit()
        start = time.perf_counter()
        with conn.cursor().copy(f"COPY alerts ({COLUMNS}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        conn.commit()
        ceiling = time.perf_counter() - start
    ours_rate, base_rate, copy_rate = n / elapsed, len(rows) / baseline, len(rows) / ceiling
    print(f"ours (POST /alerts/batch, the whole pipeline): {ours_rate:10,.0f} alerts/s ({elapsed:.1f} s; "
          f"{stored:,} stored, {incidents:,} incidents)")
    print(f"baseline (executemany of the stored rows):     {base_rate:10,.0f} alerts/s ({baseline:.1f} s)")
    print(f"ratio: {ours_rate / base_rate:.2f}x the executemany baseline (target: >= 0.6x)")
    print(f"ceiling (COPY of the stored rows, nothing computed): {copy_rate:,.0f} alerts/s ({ceiling:.1f} s); "
          f"ours is {ours_rate / copy_rate:.2f}x of it")
    record("ingest_batch", alerts=n, stored=stored, incidents=incidents, ours_per_s=round(ours_rate),
           executemany_per_s=round(base_rate), ratio=round(ours_rate / base_rate, 2), copy_per_s=round(copy_rate))
    drop_database()
    if stored != n:
        raise SystemExit(f"stored {stored} of {n} alerts")


def post_all(port: int, key: str, bodies: list[bytes], clients: int = 2) -> float:
    """Post every batch with `clients` concurrent clients; returns the wall time."""
    todo = list(enumerate(bodies))
    lock = threading.Lock()
    errors = []

    def client() -> None:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=300,
                          headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"}) as http:
            while True:
                with lock:
                    if not todo:
                        return
                    i, body = todo.pop(0)
                r = http.post("/alerts/batch", content=body)
                if r.status_code not in (200, 201):
                    errors.append(f"batch {i}: {r.status_code} {r.text[:200]}")
                if i % 10 == 0:
                    print(f"batch {i + 1}/{len(bodies)}", flush=True)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise SystemExit("; ".join(errors[:3]))
    return time.perf_counter() - start


if __name__ == "__main__":
    main()
