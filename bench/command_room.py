"""The command room under load: the page with 2,000 open incidents and 151 teams against the
same page with 20 (bytes, and the time until a browser has drawn every incident), and an
action's round trip: a dispatcher clicks in one browser, the change is drawn in another
(median and 95th percentile over 50 actions, on loopback).

    .venv/bin/python bench/command_room.py [--incidents 2000] [--actions 50]
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import numpy as np
import psycopg
import shapely
from common import drop_database, free_port, fresh_database, record, wait_healthy
from playwright.sync_api import sync_playwright

from gridwatch.alerts.ingest import ingest
from gridwatch.alerts.model import AlertIn
from gridwatch.api.auth import create_key
from gridwatch.geo.grid_index import GridIndex

TYPES = ["road_obstruction", "illegal_dumping", "sewer_overflow", "livestock_on_road", "flood_water",
         "traffic_accident"]  # none dispatched at once: every incident waits for a dispatcher
LOADS = 5


def open_incidents(url: str, n: int, seed: int, first: int = 0) -> None:
    """n more open incidents through the real pipeline: one alert each, at random places in
    the county, seen in the last 50 minutes, each from a camera-and-type pair no other alert
    has (numbered from `first`), so none joins another's incident by camera."""
    rng = np.random.default_rng(seed)
    with psycopg.connect(url) as conn:
        index = GridIndex.load(conn)
        cameras = [r[0] for r in conn.execute("SELECT id FROM cameras ORDER BY id")]
        minx, miny, maxx, maxy = shapely.total_bounds(index.geoms)
        now = datetime.now(UTC)
        target = conn.execute("SELECT count(*) FROM incidents").fetchone()[0] + n
        pair = first
        while (have := conn.execute("SELECT count(*) FROM incidents").fetchone()[0]) < target:
            lon, lat = rng.uniform(minx, maxx, 4 * n), rng.uniform(miny, maxy, 4 * n)
            inside = index.match(lon, lat) >= 0
            alerts = []
            for x, y in list(zip(lon[inside], lat[inside], strict=True))[:target - have]:
                alerts.append(AlertIn(source="bench", event_id=uuid.uuid4().hex,
                                      camera_id=cameras[pair % len(cameras)],
                                      type=TYPES[(pair // len(cameras)) % len(TYPES)], score=0.8, lon=float(x),
                                      lat=float(y), occurred_at=now - timedelta(minutes=float(rng.uniform(0, 50)))))
                pair += 1
            ingest(conn, alerts, index, now)
            conn.commit()


def page_figures(browser, url: str, key: str, expected: int) -> dict:
    """The command room's size and how long until a browser has drawn all `expected`
    incidents (median of LOADS loads, the sign-in cookie already set)."""
    size = len(httpx.get(url + "/maps/", headers={"Authorization": f"Bearer {key}"}, timeout=60).content)
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.goto(f"{url}/login?key={key}")
    times = []
    for _ in range(LOADS):
        started = time.perf_counter()
        page.goto(url + "/maps/", wait_until="commit")
        page.wait_for_function("n => window.gw && gw.room && gw.room.panel && "
                               "Object.keys(gw.room.incidents.all).length >= n", arg=expected, timeout=120_000)
        times.append(time.perf_counter() - started)
    context.close()
    return {"bytes": size, "drawn_s": statistics.median(times)}


def round_trips(browser, url: str, key: str, ids: list[int]) -> list[float]:
    """For each incident: the dispatcher in one command room cancels it (a click in its
    panel); the milliseconds until another command room has drawn the change."""
    rooms = []
    for _ in range(2):
        context = browser.new_context(viewport={"width": 1400, "height": 900})
        page = context.new_page()
        page.goto(f"{url}/login?key={key}")
        page.wait_for_function("document.getElementById('gw-live').textContent === 'live'", timeout=120_000)
        rooms.append(page)
    clicker, watcher = rooms
    watcher.evaluate("window.seen = {}; gw.room.on('change', p => { if (!seen[p.id]) seen[p.id] = Date.now(); })")
    out = []
    for iid in ids:
        clicker.evaluate("id => gw.room.panel.open(id, true)", iid)
        clicker.wait_for_selector("#gw-detail button[data-action=cancel]")
        clicked = clicker.evaluate("""() => {
          const t = Date.now();
          document.querySelector('#gw-detail button[data-action=cancel]').click();
          return t;
        }""")
        drawn = watcher.wait_for_function("id => window.seen[id]", arg=iid, timeout=30_000).json_value()
        out.append(drawn - clicked)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--incidents", type=int, default=2000)
    parser.add_argument("--actions", type=int, default=50)
    args = parser.parse_args()
    url = fresh_database()
    port = free_port()
    server = None
    try:
        with psycopg.connect(url) as conn:
            key = create_key(conn, "dispatcher", "bench dispatcher")[1]
            teams = conn.execute("SELECT count(*) FROM teams").fetchone()[0]
        server = subprocess.Popen([os.path.join(os.path.dirname(sys.executable), "gridwatch"), "serve", "--port",
                                   str(port)], env={**os.environ, "GRIDWATCH_DATABASE_URL": url},
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_healthy(port)
        base = f"http://127.0.0.1:{port}"
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=shutil.which("chromium"), args=["--no-sandbox"])
            open_incidents(url, 20, seed=1)
            small = page_figures(browser, base, key, 20)
            open_incidents(url, args.incidents - 20, seed=2, first=20)
            large = page_figures(browser, base, key, args.incidents)
            with psycopg.connect(url) as conn:
                ids = [r[0] for r in conn.execute("SELECT id FROM incidents WHERE status = 'new' ORDER BY id LIMIT %s",
                                                  [args.actions])]
            trips = round_trips(browser, base, key, ids)
            browser.close()
    finally:
        if server:
            server.terminate()
            server.wait(timeout=30)
        drop_database()
    p95 = float(np.percentile(trips, 95))
    print(f"command room, {teams} teams:")
    print(f"  {args.incidents:>5} open incidents: {large['bytes'] / 1e6:.2f} MB, drawn in {large['drawn_s']:.2f} s")
    print(f"  {20:>5} open incidents: {small['bytes'] / 1e6:.2f} MB, drawn in {small['drawn_s']:.2f} s")
    print(f"  ratio: {large['bytes'] / small['bytes']:.1f}x the bytes, "
          f"{large['drawn_s'] / small['drawn_s']:.1f}x the time")
    print(f"an action's round trip (click in one room -> drawn in another), {len(trips)} actions: "
          f"median {statistics.median(trips):.0f} ms, p95 {p95:.0f} ms")
    record("command_room", incidents=args.incidents, teams=teams, bytes=large["bytes"], drawn_s=large["drawn_s"],
           baseline_incidents=20, baseline_bytes=small["bytes"], baseline_drawn_s=small["drawn_s"],
           actions=len(trips), round_trip_median_ms=statistics.median(trips), round_trip_p95_ms=p95)


if __name__ == "__main__":
    main()
