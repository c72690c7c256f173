"""Heat maps with 1,000,000 alerts in the database: GET /stats/heat (PostGIS cells) and the
/maps/heatmap page, against folium's HeatMap fed the raw points (time and page size);
GET /stats/hotspots for the 127 grids, and Gi* for a synthetic 50,000-grid province.
Targets: heat ≤ 0.5 s, page ≤ 5 MB, hot spots ≤ 0.3 s.

    .venv/bin/python bench/heatmap.py [--alerts N]
"""

import argparse
import os
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import folium
import httpx
import libpysal
import numpy as np
import psycopg
from common import record
from folium.plugins import HeatMap
from ingest_batch import drop_database, free_port, fresh_database, wait_healthy

from gridwatch.api.auth import create_key
from gridwatch.geo.grid_index import GridIndex
from gridwatch.stats.hotspots import gi_star


def load_alerts(url: str, n: int) -> tuple[np.ndarray, np.ndarray]:
    """n alerts over the last 30 days, clustered around cameras, written with COPY."""
    rng = np.random.default_rng(1)
    with psycopg.connect(url) as conn:
        index = GridIndex.load(conn)
        cams = conn.execute("SELECT id, ST_X(geom), ST_Y(geom) FROM cameras").fetchall()
        pick = rng.integers(0, len(cams), n)
        lon = np.array([cams[i][1] for i in pick]) + rng.normal(0, 0.002, n)
        lat = np.array([cams[i][2] for i in pick]) + rng.normal(0, 0.002, n)
        rows = index.match(lon, lat)
        end = datetime.now(UTC)
        seconds = rng.uniform(0, 30 * 86400, n)
        with conn.cursor().copy("COPY alerts (source, event_id, camera_id, type, score, occurred_at, received_at, "
                                "updated_at, geom, position_method, grid_code, township_code, county_code, "
                                "boundary_version) FROM STDIN") as copy:
            for i in range(n):
                grid = index.codes[rows[i]] if rows[i] >= 0 else None
                when = end - timedelta(seconds=float(seconds[i]))
                copy.write_row(("bench", f"h{i}", cams[pick[i]][0], "fire_smoke" if i % 3 else "flood_water", 0.8,
                                when, when, when, f"SRID=4326;POINT({lon[i]} {lat[i]})", "reported", grid,
                                grid[:9] if grid else None, "632223" if grid else None, index.version))
        conn.execute("ANALYZE alerts")
    return lon, lat


def timed(fn, runs: int = 5) -> tuple[float, object]:
    times, result = [], None
    for _ in range(runs):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--alerts", type=int, default=1_000_000)
    args = parser.parse_args()
    url = fresh_database()
    print(f"loading {args.alerts:,} alerts")
    lon, lat = load_alerts(url, args.alerts)
    with psycopg.connect(url) as conn:
        key = create_key(conn, "viewer", "bench heatmap")[1]
    port = free_port()
    server = subprocess.Popen([str(Path(sys.executable).parent / "gridwatch"), "serve", "--port", str(port)],
                              env={**os.environ, "GRIDWATCH_DATABASE_URL": url}, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        wait_healthy(port)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {key}"},
                          timeout=120) as http:
            heat_s, heat = timed(lambda: http.get("/stats/heat").json())
            page_s, page = timed(lambda: http.get("/maps/heatmap").content, runs=3)
            hot_s, _ = timed(lambda: http.get("/stats/hotspots").json())
    finally:
        server.terminate()
        server.wait(timeout=30)

    def raw_heatmap() -> str:
        m = folium.Map(location=[float(lat.mean()), float(lon.mean())], zoom_start=10, tiles=None)
        HeatMap(np.column_stack([lat, lon]).tolist()).add_to(m)
        return m.get_root().render()

    raw_s, raw_page = timed(raw_heatmap, runs=1)
    side = 224  # 50,176 grids
    w = libpysal.weights.fill_diagonal(libpysal.weights.lat2W(side, side, rook=False), 1.0)
    y = np.random.default_rng(2).poisson(3, side * side).astype(float)
    province_s, _ = timed(lambda: gi_star(y, w), runs=3)

    size_mb, raw_mb = len(page) / 1e6, len(raw_page) / 1e6
    print(f"/stats/heat: {heat_s * 1000:7.0f} ms for {heat['cells']:,} cells of {heat['cell_m']:g} m "
          f"({heat['alerts']:,} alerts) (target <= 500 ms)")
    print(f"/maps/heatmap page: {page_s * 1000:7.0f} ms, {size_mb:.2f} MB (target <= 5 MB)")
    print(f"baseline, folium HeatMap of the raw points: {raw_s * 1000:7.0f} ms, {raw_mb:.1f} MB")
    print(f"ratio: {raw_s / page_s:.1f}x faster, {raw_mb / size_mb:.1f}x smaller")
    print(f"/stats/hotspots, 127 grids: {hot_s * 1000:.0f} ms (target <= 300 ms); "
          f"Gi* for a 50,176-grid province: {province_s * 1000:.0f} ms")
    record("heatmap", alerts=args.alerts, heat_ms=round(heat_s * 1000), page_ms=round(page_s * 1000),
           page_mb=round(size_mb, 2), raw_ms=round(raw_s * 1000), raw_mb=round(raw_mb, 1),
           hotspots_ms=round(hot_s * 1000), province_gi_ms=round(province_s * 1000))
    drop_database()


if __name__ == "__main__":
    main()
