"""Statistics: counts per grid, heat cells, Gi* hot spots (against a textbook Gi*),
timeline and 1-3-1 compliance, over a half-open window."""

import uuid
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import psycopg
import pytest
import shapely
from conftest import auth
from scipy.stats import norm

from gridwatch.alerts.ingest import ingest
from gridwatch.alerts.model import AlertIn
from gridwatch.geo.grid_index import GridIndex
from gridwatch.stats.counts import Window, daily_heat_cells, heat_cells

BASE = datetime(2026, 10, 1, 4, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def loaded(db_url):
    """Alerts at known places and times: a cluster in the county seat, a few elsewhere."""
    rng = np.random.default_rng(5)
    with psycopg.connect(db_url) as conn:
        index = GridIndex.load(conn)
        alerts = []
        for i in range(600):
            town = i % 3 != 0
            lon = rng.normal(100.99, 0.008) if town else rng.uniform(100.5, 101.2)
            lat = rng.normal(36.90, 0.006) if town else rng.uniform(36.85, 37.3)
            alerts.append(AlertIn(source="stats", event_id=uuid.uuid4().hex, camera_id=f"CAM-{i % 200 + 1:04d}",
                                  type="traffic_accident" if i % 2 else "fire_smoke", score=0.7,
                                  occurred_at=BASE + timedelta(hours=i * 0.4), lon=lon, lat=lat))
        # exactly on the window's edges: `since` counts, `until` does not
        edge = dict(source="stats", camera_id="CAM-0001", type="motion", score=0.5, lon=100.99, lat=36.9)
        alerts.append(AlertIn(event_id="edge-since", occurred_at=BASE + timedelta(days=20), **edge))
        alerts.append(AlertIn(event_id="edge-until", occurred_at=BASE + timedelta(days=21), **edge))
        ingest(conn, alerts, index, BASE + timedelta(days=30), check_future=False)
    return index


def window(**extra):
    return {"since": BASE.isoformat(), "until": (BASE + timedelta(days=30)).isoformat(), **extra}


def test_grid_counts_match_the_database(client, keys, conn, loaded):
    body = client.get("/stats/grids", params=window(), headers=auth(keys["viewer"])).json()
    assert len(body["grids"]) == 127 and body["since"].startswith("2026-10-01")
    expected = dict(conn.execute("SELECT grid_code, count(*) FROM alerts WHERE source = 'stats' "
                                 "AND grid_code IS NOT NULL AND occurred_at >= %s AND occurred_at < %s GROUP BY 1",
                                 [BASE, BASE + timedelta(days=30)]).fetchall())
    got = {g["code"]: g["alerts"] for g in body["grids"] if g["alerts"]}
    assert got == expected
    busiest = max(body["grids"], key=lambda g: g["incidents"])
    assert busiest["township_code"] == "632223100" and busiest["incidents_per_km2"] > 0


def test_window_is_half_open(client, keys, loaded):
    since = (BASE + timedelta(days=20)).isoformat()
    until = (BASE + timedelta(days=21)).isoformat()
    body = client.get("/stats/grids", params={"since": since, "until": until, "type": "motion"},
                      headers=auth(keys["viewer"])).json()
    assert sum(g["alerts"] for g in body["grids"]) == 1


def test_the_time_lapse_frames_are_each_days_heat_from_one_query(conn, loaded):
    """Each local day's frame equals the heat of that day asked for alone."""
    tz = "Asia/Shanghai"
    zone = ZoneInfo(tz)
    start = datetime(2026, 10, 2, tzinfo=zone)
    days = daily_heat_cells(conn, Window(start, start + timedelta(days=4)), loaded, tz)
    assert list(days) == [(start + timedelta(days=d)).date() for d in range(4)]
    for day, data in days.items():
        since = datetime(day.year, day.month, day.day, tzinfo=zone)
        alone = heat_cells(conn, Window(since, since + timedelta(days=1)), loaded)["data"]
        assert sorted(data) == sorted(alone) and data, day


def test_heat_is_aggregated_cells_not_points(client, keys, loaded):
    body = client.get("/stats/heat", params=window(), headers=auth(keys["viewer"])).json()
    assert body["alerts"] == sum(c[2] for c in body["data"]) == 602
    assert body["cells"] < 602 / 2 and body["cell_m"] >= 50
    lat, lon, _ = max(body["data"], key=lambda c: c[2])
    assert abs(lat - 36.90) < 0.03 and abs(lon - 100.99) < 0.03
    fine = client.get("/stats/heat", params=window(cell_m=1000, type="fire_smoke"), headers=auth(keys["viewer"]))
    assert fine.json()["cell_m"] == 1000 and fine.json()["alerts"] == 300
    r = client.get("/stats/heat", params=window(cell_m=5), headers=auth(keys["viewer"]))
    assert r.status_code == 422 and "at most 100,000" in r.json()["detail"]


def textbook_gi_star(y: np.ndarray, geoms) -> np.ndarray:
    """Getis & Ord (1995) Gi* with queen neighbours and the grid itself, row-standardised."""
    n = len(y)
    w = np.eye(n)
    tree = shapely.STRtree(geoms)
    for i, j in zip(*tree.query(geoms, predicate="touches"), strict=True):
        w[i, j] = 1.0
    w /= w.sum(axis=1, keepdims=True)
    xbar, s = y.mean(), y.std()
    wi = w.sum(axis=1)
    return (w @ y - xbar * wi) / (s * np.sqrt((n * (w ** 2).sum(axis=1) - wi ** 2) / (n - 1)))


def test_hotspots_are_gi_star_with_fdr_bins(client, keys, conn, loaded):
    body = client.get("/stats/hotspots", params=window(), headers=auth(keys["viewer"])).json()
    meta = body["metadata"]
    assert meta["method"] == "Getis-Ord Gi*" and meta["esda"] and meta["libpysal"]
    grids = body["grids"]
    assert [g["code"] for g in grids] == list(loaded.codes)
    y = np.array([g["incidents"] for g in grids], dtype=float)
    counts = dict(conn.execute("SELECT grid_code, count(*) FROM incidents WHERE first_seen >= %s AND first_seen < %s "
                               "GROUP BY 1", [BASE, BASE + timedelta(days=30)]).fetchall())
    assert y.tolist() == [counts.get(c, 0) for c in loaded.codes]
    z = np.array([g["z"] for g in grids])
    np.testing.assert_allclose(z, textbook_gi_star(y, loaded.geoms), atol=2e-3)
    p = 2 * norm.sf(np.abs(z))
    # Benjamini-Hochberg at 90 %: the significant set is a prefix of the sorted p-values
    significant = np.array([g["bin"] != 0 for g in grids])
    assert significant.any(), "the county seat's cluster must show up as hot"
    assert max(p[significant]) <= min(p[~significant]) + 1e-9
    assert all(np.sign(g["bin"]) == np.sign(g["z"]) for g in grids if g["bin"])
    assert {g["bin"] for g in grids} <= set(range(-3, 4))
    hot = [g for g in grids if g["bin"] > 0]
    assert all(g["code"].startswith("632223100") or g["code"].startswith("632223101") for g in hot)


def test_timeline_and_deadlines(client, keys, loaded):
    timeline = client.get("/stats/timeline", params=window(), headers=auth(keys["viewer"])).json()
    assert timeline["timezone"] == "Asia/Shanghai"
    assert sum(d["alerts"] for d in timeline["days"]) == 602
    matrix = timeline["weekday_hour"]["counts"]
    assert len(matrix) == 7 and all(len(row) == 24 for row in matrix) and sum(map(sum, matrix)) == 602
    # 04:00 UTC is noon in the county
    first_day = BASE.astimezone(__import__("zoneinfo").ZoneInfo("Asia/Shanghai"))
    assert matrix[first_day.isoweekday() - 1][12] >= 1
    deadlines = client.get("/stats/deadlines", params=window(), headers=auth(keys["viewer"])).json()
    townships = {t["key"]: t for t in deadlines["townships"]}
    assert "632223100" in townships
    for row in deadlines["townships"] + deadlines["teams"]:
        for key in ("contact_met", "resolve_met", "feedback_met"):
            assert row[key] is None or 0 <= row[key] <= 1


@pytest.mark.parametrize(("params", "words"), [
    ({"since": "2026-10-01T00:00:00"}, "timezone"),
    ({"since": "2026-10-05T00:00:00Z", "until": "2026-10-01T00:00:00Z"}, "before"),
    ({"cell_m": 0}, "cell_m"),
    ({"type": "fire"}, "unknown alert type 'fire'; one of"),
    ({"since": "2001-01-01T00:00:00Z", "until": "2026-01-01T00:00:00Z"}, "at most 366 days at a time"),
    ({"until": "0001-01-01T00:00:00Z"}, "until: 0001-01-01T00:00:00+00:00 is before 2000"),
    ({"since": "1970-01-01T00:00:00Z"}, "since: 1970-01-01T00:00:00+00:00 is before 2000"),
    ({"township": "NOWHERE"}, "township: no township 'NOWHERE'"),
    ({"since": "9999-12-31T00:00:00Z"}, "days ahead"),
    ({"cell_m": 0.0001}, "cell_m"),
    # found by the fuzzer (tests/test_fuzz.py): cells so small that their count overflowed, or their
    # width in degrees was 0, were a 500
    ({"cell_m": 1e-300}, "cells over this extent; at most 100,000"),
    ({"cell_m": 5e-324}, "cells over this extent; at most 100,000"),
])
def test_bad_stats_queries(client, keys, params, words):
    path = "/stats/heat" if "cell_m" in params else "/stats/grids"
    r = client.get(path, params=params, headers=auth(keys["viewer"]))
    assert r.status_code == 422 and words in r.json()["detail"]


def test_empty_type_means_every_type(client, keys, loaded):
    h = auth(keys["viewer"])
    every = client.get("/stats/grids", headers=h).json()["grids"]
    assert client.get("/stats/grids", params={"type": ""}, headers=h).json()["grids"] == every


def test_stats_need_a_viewer(client, keys):
    assert client.get("/stats/grids", headers=auth(keys["ingest"])).status_code == 403


def test_the_time_lapse_is_bounded(client, keys):
    """A frame a day: a window of a century made every route answer 503 for minutes."""
    h = auth(keys["viewer"])
    r = client.get("/maps/timelapse", params={"since": "2026-01-01", "until": "2026-06-01"}, headers=h)
    assert r.status_code == 422 and "at most 92 days" in r.json()["detail"]
    r = client.get("/maps/timelapse", params={"since": "2001-01-01", "until": "2026-01-01"}, headers=h)
    assert r.status_code == 422 and "at most 366 days" in r.json()["detail"]
    assert client.get("/maps/timelapse", params={"since": "2026-10-01", "until": "2026-10-07"},
                      headers=h).status_code == 200
    for since, until in [("0001-01-01", "0001-01-05"), ("9999-12-20", "9999-12-31"), ("9999-12-31T23:59:59Z", "")]:
        r = client.get("/maps/timelapse", params={"since": since, "until": until}, headers=h)
        assert r.status_code == 422, (since, until, r.text[:200])
        r = client.get("/maps/heatmap", params={"since": since, "until": until}, headers=h)
        assert r.status_code == 422, (since, until, r.text[:200])
