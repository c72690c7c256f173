"""Vector tiles: decoded with mapbox-vector-tile, each layer holds what the database says lies
in the tile; ETag and cache headers; the tile envelope, not the column, is transformed (the
GiST index can be used); bad tile addresses are refused."""

import math
import re
import uuid
from datetime import UTC, datetime, timedelta

import mapbox_vector_tile
import pytest
from conftest import auth

from gridwatch.geo import tiles


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 2**z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return x, y


def in_tile(conn, table: str, key: str, z: int, x: int, y: int, margin: float = 0.0, where: str = "true") -> set:
    return {r[0] for r in conn.execute(
        f"SELECT {key} FROM {table} WHERE ST_Intersects(geom, ST_Transform(ST_TileEnvelope(%s, %s, %s, "
        f"margin => %s), 4326)) AND {where}", [z, x, y, margin])}


def decode(body: bytes) -> dict:
    return mapbox_vector_tile.decode(body)


@pytest.fixture(scope="module")
def viewer(keys):
    return auth(keys["viewer"])


def test_a_grid_tile_holds_the_grids_that_intersect_it(client, viewer, conn):
    x, y = tile_of(100.99, 36.90, 12)
    r = client.get(f"/tiles/grids/12/{x}/{y}.mvt", headers=viewer)
    assert r.status_code == 200 and r.headers["content-type"] == "application/vnd.mapbox-vector-tile"
    codes = {f["properties"]["code"] for f in decode(r.content)["grids"]["features"]}
    inside = in_tile(conn, "grids", "code", 12, x, y)
    with_buffer = in_tile(conn, "grids", "code", 12, x, y, tiles.BUFFER / tiles.EXTENT)
    assert inside and inside <= codes <= with_buffer
    feature = next(f for f in decode(r.content)["grids"]["features"])
    assert {"code", "name", "village_code", "township_code"} == set(feature["properties"])


def test_cameras_and_open_incidents(client, viewer, keys, conn):
    r = client.post("/alerts", headers=auth(keys["ingest"]), json={
        "source": "tiles", "event_id": uuid.uuid4().hex, "camera_id": "CAM-0001", "type": "fire_smoke", "score": 0.9,
        "occurred_at": datetime.now(UTC).isoformat(), "lon": 100.99, "lat": 36.90})
    incident = r.json()["incident_id"]
    x, y = tile_of(100.99, 36.90, 11)
    body = client.get(f"/tiles/incidents/11/{x}/{y}.mvt", headers=viewer).content
    assert incident in {f["properties"]["id"] for f in decode(body)["incidents"]["features"]}
    conn.execute("UPDATE incidents SET status = 'closed', closed_at = now() WHERE id = %s", [incident])
    conn.commit()
    body = client.get(f"/tiles/incidents/11/{x}/{y}.mvt", headers=viewer).content
    assert incident not in {f["properties"]["id"] for f in decode(body).get("incidents", {}).get("features", [])}
    x, y = tile_of(100.99, 36.90, 9)
    cameras = {f["properties"]["id"] for f in decode(client.get(f"/tiles/cameras/9/{x}/{y}.mvt",
                                                                  headers=viewer).content)["cameras"]["features"]}
    assert in_tile(conn, "cameras", "id", 9, x, y) <= cameras and len(cameras) > 10


def test_heat_counts_the_windows_alerts_in_cells(client, viewer, keys, conn):
    since = datetime(2026, 10, 1, tzinfo=UTC)
    for i in range(5):
        assert client.post("/alerts", headers=auth(keys["ingest"]), json={
            "source": "heat-tile", "event_id": uuid.uuid4().hex, "camera_id": "CAM-0002", "type": "sewer_overflow",
            "score": 0.7, "occurred_at": (since + timedelta(hours=i)).isoformat(), "lon": 101.15 + i * 1e-4,
            "lat": 36.93}).status_code == 201
    x, y = tile_of(101.15, 36.93, 10)
    window = {"since": since.isoformat(), "until": (since + timedelta(days=1)).isoformat(), "type": "sewer_overflow"}
    heat = decode(client.get(f"/tiles/heat/10/{x}/{y}.mvt", headers=viewer, params=window).content)["heat"]
    assert sum(f["properties"]["alerts"] for f in heat["features"]) == 5
    assert all(f["geometry"]["type"] == "Polygon" for f in heat["features"])
    empty = client.get(f"/tiles/heat/10/{x}/{y}.mvt", headers=viewer,
                       params={**window, "since": (since + timedelta(days=2)).isoformat(),
                               "until": (since + timedelta(days=3)).isoformat()})
    assert empty.status_code == 200 and empty.content == b""


def test_etag_answers_a_repeat_with_304(client, viewer):
    x, y = tile_of(100.99, 36.90, 12)
    first = client.get(f"/tiles/grids/12/{x}/{y}.mvt", headers=viewer)
    assert first.headers["cache-control"].startswith("private, max-age=")
    again = client.get(f"/tiles/grids/12/{x}/{y}.mvt", headers={**viewer, "If-None-Match": first.headers["etag"]})
    assert again.status_code == 304 and again.content == b""
    other = client.get(f"/tiles/grids/12/{x + 1}/{y}.mvt", headers={**viewer, "If-None-Match": first.headers["etag"]})
    assert other.status_code == 200
    etag = first.headers["etag"]
    listed = client.get(f"/tiles/grids/12/{x}/{y}.mvt", headers={**viewer, "If-None-Match": f'"a", {etag}'})
    assert listed.status_code == 304
    inside = client.get(f"/tiles/grids/12/{x}/{y}.mvt", headers={**viewer, "If-None-Match": f"xx{etag}yy"})
    assert inside.status_code == 200  # found by hostile testing: a tag was matched inside any text


@pytest.mark.parametrize("layer", list(tiles.LAYERS))
def test_the_envelope_is_transformed_not_the_column_so_the_index_serves(conn, layer):
    conn.execute("SET enable_seqscan = off")
    plan = "\n".join(r[0] for r in conn.execute(b"EXPLAIN " + tiles.query(layer).as_bytes(conn),
                                                  {"z": 12, "x": 3196, "y": 1579}))
    assert re.search(rf"Index Scan using {layer}_(open_)?geom_idx", plan), plan


@pytest.mark.parametrize("path, status, words", [
    ("/tiles/grids/25/0/0.mvt", 400, "z runs 0..22"),
    ("/tiles/grids/3/8/0.mvt", 400, "x and y 0..2^z - 1"),
    ("/tiles/grids/3/0/-1.mvt", 400, "x and y 0..2^z - 1"),
    ("/tiles/roads/3/0/0.mvt", 404, "no tile layer 'roads'"),
    ("/tiles/heat/3/0/0.mvt?since=1999-01-01T00:00:00Z", 422, "before 2000"),
])
def test_bad_tile_addresses_are_refused(client, viewer, path, status, words):
    r = client.get(path, headers=viewer)
    assert r.status_code == status and words in r.json()["detail"], r.text


def test_tiles_need_a_key(client):
    assert client.get("/tiles/grids/0/0/0.mvt").status_code == 401
