"""Which grid holds a point: the same answer from /grids/at, /grids/lookup, the in-memory
index and SQL, checked against geopandas and PostGIS as independent oracles."""

import json
import subprocess
import time

import geopandas as gpd
import httpx
import numpy as np
import pytest
import shapely
from conftest import BOUNDARIES, GRIDWATCH, Server, auth

from gridwatch.geo.grid_index import GridIndex

SEAT = (100.99, 36.90)  # Sanjiaocheng, the county seat


@pytest.fixture(scope="module")
def index(db_url) -> GridIndex:
    import psycopg

    with psycopg.connect(db_url) as conn:
        return GridIndex.load(conn)


def sql_grid_at(conn, lon: float, lat: float) -> str | None:
    return conn.execute("SELECT grid_at(ST_SetSRID(ST_MakePoint(%s, %s), 4326))", [lon, lat]).fetchone()[0]


def border_points(index: GridIndex) -> np.ndarray:
    """Vertices and edge midpoints of borders shared by two grids."""
    pts = []
    for i in range(0, len(index.geoms), 3):
        ring = np.asarray(shapely.get_exterior_ring(shapely.get_parts(index.geoms[i])[0]).coords)
        pts += list(ring[::7]) + list((ring[:-1:11] + ring[1::11]) / 2)
    return np.array(pts)


def test_point_in_the_county_seat(client, keys):
    r = client.get("/grids/at", params={"lon": SEAT[0], "lat": SEAT[1]}, headers=auth(keys["viewer"]))
    assert r.status_code == 200
    body = r.json()
    assert body["township_code"] == "632223100" and body["code"].startswith(body["village_code"])
    assert body["boundary_version"] >= 1


def test_point_outside_names_the_nearest_grid(client, keys, conn):
    r = client.get("/grids/at", params={"lon": 100.2, "lat": 36.9}, headers=auth(keys["viewer"]))
    assert r.status_code == 404
    assert r.headers["content-type"] == "application/problem+json"
    body = r.json()
    near = body["nearest"]
    assert near["code"] in body["detail"] and "m away" in body["detail"]
    # PostGIS as the oracle for the nearest grid and its distance, in the same metric CRS
    point = "ST_Transform(ST_SetSRID(ST_MakePoint(100.2, 36.9), 4326), 32647)"
    closest, metres = conn.execute(f"SELECT code, ST_Distance(ST_Transform(geom, 32647), {point}) FROM grids "
                                   f"ORDER BY 2 LIMIT 1").fetchone()
    assert near["code"] == closest
    assert near["distance_m"] == pytest.approx(metres, abs=0.5)


def test_border_points_get_one_grid_the_same_from_every_path(client, keys, conn, index):
    pts = border_points(index)
    rows = index.match(pts[:, 0], pts[:, 1])
    # the rule, evaluated directly: the lowest code of the grids covering the point
    covering = [[c for c, g in zip(index.codes, index.geoms, strict=True) if g.covers(shapely.Point(x, y))]
                for x, y in pts]
    assert sum(len(c) > 1 for c in covering) > 100  # many points really are on shared borders
    assert [index.codes[r] if r >= 0 else None for r in rows] == [min(c) if c else None for c in covering]
    bulk = client.post("/grids/lookup", headers=auth(keys["viewer"]),
                       json={"points": pts.tolist()}).json()["results"]
    assert [r["code"] for r in bulk] == [min(c) if c else None for c in covering]
    for (lon, lat), cover in list(zip(pts, covering, strict=True))[:200]:
        single = client.get("/grids/at", params={"lon": lon, "lat": lat}, headers=auth(keys["viewer"]))
        expected = min(cover) if cover else None
        assert (single.json()["code"] if single.status_code == 200 else None) == expected
        assert sql_grid_at(conn, lon, lat) == expected


def test_bulk_matches_geopandas_sjoin(index):
    rng = np.random.default_rng(7)
    minx, miny, maxx, maxy = shapely.total_bounds(index.geoms)
    lon, lat = rng.uniform(minx, maxx, 50_000), rng.uniform(miny, maxy, 50_000)
    ours = index.match(lon, lat)
    grids = gpd.read_file(BOUNDARIES / "grids.geojson")[["code", "geometry"]]
    points = gpd.GeoDataFrame(geometry=gpd.points_from_xy(lon, lat), crs=4326)
    joined = gpd.sjoin(points, grids, predicate="intersects", how="left")
    theirs = joined.sort_values("code").groupby(level=0)["code"].first().reindex(range(len(lon)))
    ours_codes = np.where(ours >= 0, index.codes[np.maximum(ours, 0)], None)
    assert list(ours_codes) == [None if isinstance(c, float) else c for c in theirs]
    assert 0.3 < (ours >= 0).mean() < 0.8  # both inside and outside were exercised


def test_index_agrees_with_postgis(conn, index):
    rng = np.random.default_rng(11)
    minx, miny, maxx, maxy = shapely.total_bounds(index.geoms)
    lon, lat = rng.uniform(minx, maxx, 3000), rng.uniform(miny, maxy, 3000)
    rows = index.match(lon, lat)
    sql = conn.execute("SELECT grid_at(ST_SetSRID(ST_MakePoint(x, y), 4326)) FROM unnest(%s::float8[], %s::float8[])"
                       " WITH ORDINALITY AS p(x, y, n) ORDER BY n", [lon.tolist(), lat.tolist()]).fetchall()
    assert [r[0] for r in sql] == [index.codes[r] if r >= 0 else None for r in rows]


def test_lookup_gives_null_and_the_nearest_hint_outside(client, keys):
    r = client.post("/grids/lookup", headers=auth(keys["viewer"]), json={"points": [list(SEAT), [100.2, 36.9]]})
    assert r.status_code == 200
    body = r.json()
    assert body["count"] == 2 and body["matched"] == 1 and body["boundary_version"] >= 1
    inside, outside = body["results"]
    assert inside["code"].startswith("632223100")
    assert outside["code"] is None and outside["nearest"]["distance_m"] > 1000


def test_a_point_half_a_world_away_gets_a_finite_distance(client, keys):
    """(0, 0), what a device without a position fix sends, lies outside the county's metric
    zone: the nearest grid is still named, the distance measured on the sphere."""
    r = client.get("/grids/at", params={"lon": 0, "lat": 0}, headers=auth(keys["viewer"]))
    assert r.status_code == 404, r.text
    assert 10_000_000 < r.json()["nearest"]["distance_m"] < 12_000_000
    r = client.post("/grids/lookup", headers=auth(keys["viewer"]), json={"points": [[0, 0], [-179.9, -89.9]]})
    assert r.status_code == 200
    assert all(p["code"] is None and p["nearest"]["distance_m"] > 1e7 for p in r.json()["results"])


def test_listing_and_single_features(client, keys):
    h = auth(keys["viewer"])
    page = client.get("/grids", params={"limit": 5, "offset": 5}, headers=h)
    assert page.headers["content-type"] == "application/geo+json"
    body = page.json()
    assert body["numberMatched"] == 127 and body["numberReturned"] == 5 and len(body["features"]) == 5
    props = body["features"][0]["properties"]
    assert {"code", "name", "village_code", "township_code", "area_m2"} <= props.keys()
    in_box = client.get("/grids", params={"bbox": "100.95,36.88,101.0,36.92", "limit": 500}, headers=h).json()
    assert 0 < in_box["numberMatched"] < 127
    town = client.get("/villages", params={"township": "632223100", "kind": "community"}, headers=h).json()
    assert town["numberMatched"] == 4 and all(f["properties"]["kind"] == "community" for f in town["features"])
    assert client.get("/townships", headers=h).json()["numberMatched"] == 6
    one = client.get(f"/grids/{props['code']}", headers=h).json()
    assert one["id"] == props["code"] and one["boundary_version"] >= 1
    missing = client.get("/grids/632223100001999", headers=h)
    assert missing.status_code == 404 and "632223100001999" in missing.json()["detail"]


BAD_QUERIES = [
    ("/grids/at", {"lon": "abc", "lat": 36.9}, "lon"),
    ("/grids/at", {"lon": 100.9, "lat": 95}, "lat"),
    ("/grids/at", {"lon": 36.9, "lat": 100.9}, "lon and lat look swapped"),
    ("/grids/at", {"lon": 100.9}, "lat"),
    ("/grids", {"bbox": "101.1,36.8,100.9,36.9"}, "minx must be ≤ maxx"),
    ("/grids", {"bbox": "1,2,3"}, "four numbers"),
    ("/grids", {"limit": 0}, "limit"),
    ("/grids", {"limit": 10001}, "limit"),
]


@pytest.mark.parametrize(("path", "params", "words"), BAD_QUERIES)
def test_bad_query_gets_problem_details(client, keys, path, params, words):
    r = client.get(path, params=params, headers=auth(keys["viewer"]))
    assert r.status_code == 422
    assert r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert body["status"] == 422 and words in body["detail"]


def test_lookup_of_100001_points_is_refused(client, keys):
    r = client.post("/grids/lookup", headers=auth(keys["viewer"]), json={"points": [list(SEAT)] * 100_001})
    assert r.status_code == 422
    assert "100,000" in r.json()["detail"]


def test_lookup_of_100000_points_is_answered(client, keys):
    rng = np.random.default_rng(3)
    pts = np.column_stack([rng.uniform(100.3, 101.3, 100_000), rng.uniform(36.75, 37.55, 100_000)])
    r = client.post("/grids/lookup", headers=auth(keys["viewer"]), json={"points": pts.round(6).tolist()})
    assert r.status_code == 200 and r.json()["count"] == 100_000


@pytest.mark.parametrize(("body", "words"), [
    (b"not json", "not JSON"),
    (b'{"pts": []}', '{"points"'),
    (b'{"points": [[100.9, "x"]]}', "points[0]"),
    (b'{"points": [[100.9, 36.9], [36.9, 100.9]]}', "points[1]"),
])
def test_bad_lookup_body(client, keys, body, words):
    r = client.post("/grids/lookup", headers={**auth(keys["viewer"]), "content-type": "application/json"},
                    content=body)
    assert r.status_code == 422 and words in r.json()["detail"]


def test_index_reloads_when_another_process_imports(db_url, tmp_path, keys):
    server = Server(db_url).start()
    try:
        h = auth(keys["viewer"])
        first = httpx.get(server.url + "/grids/at", params={"lon": SEAT[0], "lat": SEAT[1]}, headers=h).json()
        doc = json.loads((BOUNDARIES / "grids.geojson").read_text())
        for f in doc["features"]:
            if f["properties"]["code"] == first["code"]:
                f["properties"]["name"] = "Reloaded Grid"
        path = tmp_path / "grids.geojson"
        path.write_text(json.dumps(doc))
        done = subprocess.run([GRIDWATCH, "grids", "import", str(path)], capture_output=True, text=True,
                              env={"GRIDWATCH_DATABASE_URL": db_url, "PATH": "/usr/bin:/bin"})
        assert done.returncode == 0, done.stderr
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            now = httpx.get(server.url + "/grids/at", params={"lon": SEAT[0], "lat": SEAT[1]}, headers=h).json()
            if now["boundary_version"] > first["boundary_version"]:
                break
            time.sleep(0.1)
        assert now["boundary_version"] == first["boundary_version"] + 1
        assert now["name"] == "Reloaded Grid"
    finally:
        server.stop()
