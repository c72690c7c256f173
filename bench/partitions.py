"""Monthly partitions: `alerts` partitioned by month (migration 0017) against the table as it was
before (migrations up to 0016), each holding N alerts (default 10,000,000) spread evenly over the
13 months before now, written by SQL (generate_series) into two databases on the same cluster.
Side by side: a week's /stats/heat (the function the route calls), /alerts?since= a week ago
(its first page of 100 with the count), and purging the oldest month: retention's DELETE on
the plain table against retention's drop of the month's partition (with its keys deleted from
alert_keys first, also timed alone), then the VACUUM each leaves to do (a DELETE only marks
rows; their space and index entries are freed by VACUUM: the plain table's, alert_keys'). Also
the server's hourly upkeep of the partitions (the coming months, the parents' statistics).
Medians of 5 runs after a warm-up, the two databases in turn.

    .venv/bin/python bench/partitions.py [--alerts N]
"""

import argparse
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import psycopg
from common import ROOT, record
from psycopg.conninfo import make_conninfo

from gridwatch.alerts.queries import alert_collection
from gridwatch.alerts.retention import purge_alerts
from gridwatch.db import database_url, partitions
from gridwatch.db.migrate import migrate
from gridwatch.geo.boundaries import import_boundaries
from gridwatch.geo.grid_index import GridIndex
from gridwatch.stats.counts import Window, heat_cells

FLAT, PARTITIONED = "gridwatch_bench_flat", "gridwatch_bench_partitioned"
CHUNK = 500_000
MONTHS = 13
# Alerts in the grids (a point near each grid's inside point), in time order, as they arrive;
# every four share an incident number (no incidents are stored: retention's check of them is
# cheap on both sides).
_LOAD_SQL = """
WITH g AS MATERIALIZED (
    SELECT array_agg(code ORDER BY code) AS codes, array_agg(township_code ORDER BY code) AS towns,
           array_agg(ST_X(ST_PointOnSurface(geom)) ORDER BY code) AS xs,
           array_agg(ST_Y(ST_PointOnSurface(geom)) ORDER BY code) AS ys, count(*)::int AS n
    FROM grids
)
INSERT INTO alerts (source, event_id, camera_id, type, score, occurred_at, received_at, updated_at, geom,
                    position_method, grid_code, township_code, county_code, incident_id, boundary_version)
SELECT 'bench', 'e' || s, 'CAM-' || lpad((1 + s %% 500)::text, 4, '0'),
       (ARRAY['fire_smoke', 'flood_water', 'sewer_overflow', 'traffic_accident', 'road_obstruction',
              'railway_intrusion', 'livestock_on_road', 'illegal_dumping', 'fallen_person', 'motion'])[1 + s %% 10],
       0.5 + (s %% 50) / 100.0, x.t, x.t, x.t,
       ST_SetSRID(ST_MakePoint(g.xs[x.k] + (hashint4(s * 7) %% 1000) / 100000.0,
                               g.ys[x.k] + (hashint4(s * 13) %% 1000) / 100000.0), 4326),
       'camera', g.codes[x.k], g.towns[x.k], left(g.codes[x.k], 6), s / 4, 1
FROM g, generate_series(%(lo)s::int, %(hi)s::int - 1) s,
     LATERAL (SELECT 1 + (hashint4(s) & 2147483647) %% g.n AS k,
                     %(start)s::timestamptz + make_interval(secs => %(span_s)s * s / %(total)s) AS t) x
"""
# Retention's statement before the partitions (for the rows the drops leave, it still is).
_DELETE_SQL = ("DELETE FROM alerts a WHERE a.occurred_at < %(before)s AND NOT EXISTS ("
               " SELECT 1 FROM incidents i WHERE i.id = a.incident_id AND i.updated_at >= %(before)s)")


def url_of(name: str) -> str:
    return make_conninfo(database_url(), dbname=name)


def create(name: str, until: int | None) -> None:
    with psycopg.connect(url_of("postgres"), autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {name}")
    with psycopg.connect(url_of(name)) as conn:
        migrate(conn, until=until)
        import_boundaries(conn, ROOT / "data" / "boundaries")


def load(name: str, n: int, start: datetime, end: datetime) -> float:
    """N alerts from start to end; returns the seconds it took (with VACUUM ANALYZE)."""
    began = time.perf_counter()
    with psycopg.connect(url_of(name)) as conn:
        if name == PARTITIONED:  # the months of the history, made before it arrives, as the server does ahead
            conn.execute("SELECT add_month_partition('alerts', 'occurred_at', m) FROM generate_series("
                         "%s::timestamptz, %s, interval '1 month') m", [start, end])
            conn.commit()
        for lo in range(0, n, CHUNK):
            conn.execute(_LOAD_SQL, {"lo": lo, "hi": min(n, lo + CHUNK), "start": start,
                                     "span_s": (end - start).total_seconds(), "total": n})
            conn.commit()
            print(f"  {name}: {min(n, lo + CHUNK):,} alerts", flush=True)
    with psycopg.connect(url_of(name), autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
    return time.perf_counter() - began


def timed(fn: Callable[[], object], runs: int = 5) -> float:
    fn()  # warm-up
    times = []
    for _ in range(runs):
        began = time.perf_counter()
        fn()
        times.append(time.perf_counter() - began)
    return statistics.median(times)


def size(name: str) -> int:
    with psycopg.connect(url_of(name)) as conn:
        return conn.execute("SELECT sum(pg_total_relation_size(c.oid))::bigint FROM pg_class c "
                            "WHERE c.relkind = 'r' AND (c.relname LIKE 'alerts%%' OR c.relname = 'alert_keys')"
                            ).fetchone()[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--alerts", type=int, default=10_000_000)
    args = parser.parse_args()
    now = datetime.now(UTC)
    this_month = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    start = (this_month - timedelta(days=1)).replace(day=1)
    for _ in range(MONTHS - 1):
        start = (start - timedelta(days=1)).replace(day=1)
    oldest_end = (start + timedelta(days=32)).replace(day=1)
    print(f"{args.alerts:,} alerts from {start:%Y-%m-%d} to now into {FLAT} (up to 0016) and {PARTITIONED}")
    create(FLAT, until=16)
    create(PARTITIONED, until=None)
    loads = {name: load(name, args.alerts, start, now) for name in (FLAT, PARTITIONED)}
    with psycopg.connect(url_of(PARTITIONED)) as conn:
        began = time.perf_counter()
        partitions.ensure(conn)
        upkeep_s = time.perf_counter() - began

    week = Window(now - timedelta(days=7), now)
    figures: dict[str, dict[str, float]] = {"heat": {}, "alerts_since": {}}
    conns = {name: psycopg.connect(url_of(name), autocommit=True) for name in (FLAT, PARTITIONED)}
    try:
        index = GridIndex.load(conns[FLAT])
        for name, conn in conns.items():
            figures["heat"][name] = timed(lambda c=conn: heat_cells(c, week, index))
            figures["alerts_since"][name] = timed(
                lambda c=conn: alert_collection(c, since=week.since, filters={}, limit=100))
        in_month = {"before": oldest_end}
        with conns[FLAT].transaction():
            month_rows = conns[FLAT].execute("SELECT count(*) FROM alerts WHERE occurred_at < %s",
                                             [oldest_end]).fetchone()[0]
        began = time.perf_counter()
        with conns[FLAT].transaction():
            deleted = conns[FLAT].execute(_DELETE_SQL, in_month).rowcount
        delete_s = time.perf_counter() - began
        # the keys' share of the drop, alone (rolled back)
        part = conns[PARTITIONED]
        began = time.perf_counter()
        with part.transaction(force_rollback=True):
            part.execute("DELETE FROM alert_keys WHERE occurred_at >= %s AND occurred_at < %s", [start, oldest_end])
        keys_s = time.perf_counter() - began
        began = time.perf_counter()
        dropped = purge_alerts(part, oldest_end)
        drop_s = time.perf_counter() - began
        vacuum_s = {}
        for name, table in ((FLAT, "alerts"), (PARTITIONED, "alert_keys")):
            began = time.perf_counter()
            conns[name].execute(f"VACUUM {table}")
            vacuum_s[name] = time.perf_counter() - began
    finally:
        for conn in conns.values():
            conn.close()
    if not deleted == dropped == month_rows:
        raise SystemExit(f"the month held {month_rows:,} alerts; DELETE removed {deleted:,}, the drop {dropped:,}")

    print(f"\n{args.alerts:,} alerts; loaded in {loads[FLAT]:.0f} s (plain) and {loads[PARTITIONED]:.0f} s "
          f"(partitioned, with its keys); {size(FLAT) / 1e9:.2f} GB and {size(PARTITIONED) / 1e9:.2f} GB")
    print(f"{'':32} {'plain':>10} {'partitioned':>12} {'plain / partitioned':>20}")
    for label, key in (("a week's /stats/heat", "heat"), ("/alerts?since= a week ago", "alerts_since")):
        flat, parted = figures[key][FLAT], figures[key][PARTITIONED]
        print(f"{label:32} {flat * 1000:8.0f} ms {parted * 1000:10.0f} ms {flat / parted:19.2f}x")
    print(f"{'purge the oldest month':32} {delete_s:8.1f} s  {drop_s:10.1f} s  {delete_s / drop_s:19.1f}x   "
          f"({month_rows:,} alerts; DELETE against drop; of the drop, deleting the keys alone: {keys_s:.1f} s)")
    flat, parted = delete_s + vacuum_s[FLAT], drop_s + vacuum_s[PARTITIONED]
    print(f"{'  then VACUUM':32} {vacuum_s[FLAT]:8.1f} s  {vacuum_s[PARTITIONED]:10.1f} s   (alerts; alert_keys)")
    print(f"{'  purge and VACUUM':32} {flat:8.1f} s  {parted:10.1f} s  {flat / parted:19.1f}x")
    print(f"the hourly upkeep of the partitions (ensure_partitions, analyze_partitioned): {upkeep_s:.1f} s")
    record("partitions", alerts=args.alerts, month_alerts=month_rows,
           heat_ms={"plain": round(figures["heat"][FLAT] * 1000), "partitioned": round(
               figures["heat"][PARTITIONED] * 1000)},
           alerts_since_ms={"plain": round(figures["alerts_since"][FLAT] * 1000),
                            "partitioned": round(figures["alerts_since"][PARTITIONED] * 1000)},
           purge_month_s={"delete": round(delete_s, 2), "drop": round(drop_s, 2), "drop_keys_alone": round(keys_s, 2),
                          "vacuum_after_delete": round(vacuum_s[FLAT], 2),
                          "vacuum_keys_after_drop": round(vacuum_s[PARTITIONED], 2)},
           load_s={"plain": round(loads[FLAT]), "partitioned": round(loads[PARTITIONED])},
           upkeep_s=round(upkeep_s, 2))
    with psycopg.connect(url_of("postgres"), autocommit=True) as conn:
        for name in (FLAT, PARTITIONED):
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


if __name__ == "__main__":
    main()
