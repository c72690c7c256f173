"""Cameras: the registry, view sectors, and calibration (homography) with its refusals."""

import math

import geopandas as gpd
import pytest
import shapely
from conftest import auth
from pinhole import GOOD_PIXELS, Pinhole, metres
from shapely.geometry import shape

SEAT = (100.99, 36.90)


def new_camera(client, keys, camera_id: str, **fields) -> dict:
    body = {"id": camera_id, "name": f"test {camera_id}", "lon": SEAT[0], "lat": SEAT[1], "heading_deg": 90,
            "fov_deg": 60, "range_m": 300, **fields}
    r = client.post("/cameras", json=body, headers=auth(keys["admin"]))
    assert r.status_code == 201, r.text
    return r.json()


def test_demo_cameras_are_listed_as_geojson(client, keys):
    r = client.get("/cameras", params={"limit": 1000}, headers=auth(keys["viewer"]))
    assert r.status_code == 200 and r.headers["content-type"] == "application/geo+json"
    body = r.json()
    assert 450 <= body["numberMatched"] <= 600
    props = body["features"][0]["properties"]
    assert {"id", "name", "lon", "lat", "heading_deg", "fov_deg", "range_m", "grid_code", "active",
            "calibrated"} <= props.keys()
    assert sum(f["properties"]["calibrated"] for f in body["features"]) >= 40
    assert all(f["properties"]["grid_code"] for f in body["features"])
    town = client.get("/cameras", params={"township": "632223100", "limit": 1000}, headers=auth(keys["viewer"]))
    assert 0 < town.json()["numberMatched"] < body["numberMatched"]
    sectors = client.get("/cameras", params={"view": "true", "limit": 5}, headers=auth(keys["viewer"])).json()
    assert all(f["geometry"]["type"] == "Polygon" for f in sectors["features"])


def test_create_gives_a_view_sector_and_a_grid(client, keys):
    feature = new_camera(client, keys, "T-SECTOR", heading_deg=45, fov_deg=90, range_m=200)
    assert feature["properties"]["grid_code"].startswith("632223100")
    sectors = client.get("/cameras", params={"view": "true", "grid": feature["properties"]["grid_code"],
                                             "limit": 1000}, headers=auth(keys["viewer"])).json()["features"]
    sector = shape(next(f for f in sectors if f["id"] == "T-SECTOR")["geometry"])
    assert sector.covers(shapely.Point(SEAT))
    area = gpd.GeoSeries([sector], crs=4326).to_crs(32647).area.iloc[0]
    assert area == pytest.approx(math.pi * 200**2 / 4, rel=0.02)
    # it opens to the north-east
    c = sector.centroid
    assert c.x > SEAT[0] and c.y > SEAT[1]


def test_camera_writes_need_admin_and_valid_fields(client, keys):
    body = {"id": "T-X", "name": "x", "lon": 100.9, "lat": 36.9, "heading_deg": 0, "fov_deg": 60, "range_m": 100}
    assert client.post("/cameras", json=body, headers=auth(keys["dispatcher"])).status_code == 403
    for bad, field in (({"fov_deg": 0}, "fov_deg"), ({"lat": 95}, "lat"), ({"heading_deg": 360}, "heading_deg"),
                       ({"id": "bad id!"}, "id")):
        r = client.post("/cameras", json={**body, **bad}, headers=auth(keys["admin"]))
        assert r.status_code == 422 and field in r.json()["detail"]
    new_camera(client, keys, "T-DUP")
    r = client.post("/cameras", json={**body, "id": "T-DUP"}, headers=auth(keys["admin"]))
    assert r.status_code == 409 and "exists" in r.json()["detail"]


def test_calibration_fits_and_places_within_half_a_metre(client, keys):
    new_camera(client, keys, "T-CAL", heading_deg=30)
    cam = Pinhole(SEAT[0], SEAT[1], heading_deg=30)
    r = client.put("/cameras/T-CAL/calibration", json=cam.calibration(GOOD_PIXELS), headers=auth(keys["admin"]))
    assert r.status_code == 200, r.text
    assert r.json()["error_m"] < 0.05 and all(r.json()["inliers"])
    assert client.get("/cameras/T-CAL", headers=auth(keys["viewer"])).json()["properties"]["calibrated"]
    # a pixel that was not a calibration point
    truth = cam.ground(1100, 900)
    u, v = cam.pixel(*truth)
    alert = {"source": "t", "event_id": "cal-1", "camera_id": "T-CAL", "type": "road_obstruction", "score": 0.8,
             "occurred_at": "2026-11-26T08:00:00+08:00", "box": [u - 40, v - 120, u + 40, v],
             "frame_size": [1920, 1080]}
    placed = client.post("/alerts", json=alert, headers=auth(keys["ingest"])).json()
    assert placed["position_method"] == "homography"
    assert metres(placed["lon"], placed["lat"], *truth) < 0.5


def test_ransac_drops_a_bad_pair(client, keys):
    new_camera(client, keys, "T-RANSAC", heading_deg=200)
    cam = Pinhole(SEAT[0], SEAT[1], heading_deg=200)
    body = cam.calibration(GOOD_PIXELS + [(1000, 650), (700, 900)])
    body["points"][-1]["lon"] += 0.0005  # 45 m off
    r = client.put("/cameras/T-RANSAC/calibration", json=body, headers=auth(keys["admin"]))
    assert r.status_code == 200, r.text
    assert r.json()["inliers"][-1] is False and r.json()["error_m"] < 0.1


@pytest.mark.parametrize(("change", "words"), [
    (lambda b: b["points"][:3], "at least 4"),
    (lambda b: [{**p, "pixel": [100 + 100 * i, 700 + 50 * i]} for i, p in enumerate(b["points"])], "one line"),
    (lambda b: b["points"][:4] + [b["points"][0]], "same"),
    (lambda b: [{**p, "lon": q["lon"], "lat": q["lat"]} for p, q in zip(b["points"], b["points"][::-1],
                                                                        strict=True)][:4], "ground plane"),
    (lambda b: [{**b["points"][0], "pixel": [2500, 700]}] + b["points"][1:], "outside the 1920×1080 frame"),
])
def test_degenerate_calibration_is_refused_with_the_reason(client, keys, change, words):
    new_camera(client, keys, f"T-BAD-{abs(hash(words)) % 10000}", heading_deg=10)
    cam = Pinhole(SEAT[0], SEAT[1], heading_deg=10)
    body = cam.calibration(GOOD_PIXELS)
    body["points"] = change(body)
    r = client.put(f"/cameras/T-BAD-{abs(hash(words)) % 10000}/calibration", json=body, headers=auth(keys["admin"]))
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert words in r.json()["detail"]
    assert not client.get(f"/cameras/T-BAD-{abs(hash(words)) % 10000}",
                          headers=auth(keys["viewer"])).json()["properties"]["calibrated"]


def test_moving_a_camera_drops_its_calibration_and_deactivation_stops_its_alerts(client, keys):
    new_camera(client, keys, "T-MOVE", heading_deg=30)
    cam = Pinhole(SEAT[0], SEAT[1], heading_deg=30)
    assert client.put("/cameras/T-MOVE/calibration", json=cam.calibration(GOOD_PIXELS),
                      headers=auth(keys["admin"])).status_code == 200
    moved = client.patch("/cameras/T-MOVE", json={"heading_deg": 120}, headers=auth(keys["admin"])).json()
    assert moved["properties"]["calibrated"] is False and moved["properties"]["heading_deg"] == 120
    gone = client.delete("/cameras/T-MOVE", headers=auth(keys["admin"])).json()
    assert gone["properties"]["active"] is False
    alert = {"source": "t", "event_id": "after-deactivate", "camera_id": "T-MOVE", "type": "motion", "score": 0.5,
             "occurred_at": "2026-11-26T08:00:00+08:00"}
    r = client.post("/alerts", json=alert, headers=auth(keys["ingest"]))
    assert r.status_code == 422 and "deactivated" in r.json()["detail"]


MASK = [[0.0, 0.5], [0.3, 0.5], [0.3, 1.0], [0.0, 1.0]]
ZONE = {"name": "road", "type": "road_obstruction", "polygon": [[0.2, 0.4], [0.8, 0.4], [0.8, 0.9], [0.2, 0.9]]}


def test_a_camera_is_registered_with_its_zones_and_privacy_masks(client, keys):
    new_camera(client, keys, "T-MASKED", zones=[ZONE], privacy_masks=[MASK])
    video = client.get("/cameras/T-MASKED/video", headers=auth(keys["ingest"])).json()
    assert video["privacy_masks"] == [MASK] and video["zones"] == [ZONE]


def test_a_misspelt_field_is_refused_and_nothing_is_stored(client, keys):
    body = {"id": "T-TYPO", "name": "typo", "lon": SEAT[0], "lat": SEAT[1], "heading_deg": 90, "fov_deg": 60,
            "range_m": 300, "privacy_mask": [MASK]}
    r = client.post("/cameras", json=body, headers=auth(keys["admin"]))
    assert r.status_code == 422 and r.json()["detail"].startswith("privacy_mask: unknown field")
    assert client.get("/cameras/T-TYPO", headers=auth(keys["viewer"])).status_code == 404
    bad_zone = {**body, "id": "T-ZONE", "zones": [{**ZONE, "type": "fire"}]}
    del bad_zone["privacy_mask"]
    r = client.post("/cameras", json=bad_zone, headers=auth(keys["admin"]))
    assert r.status_code == 422 and "unknown alert type" in r.json()["detail"]
    assert client.get("/cameras/T-ZONE", headers=auth(keys["viewer"])).status_code == 404
    r = client.patch("/cameras/T-MASKED", json={"privacy_masks": [MASK], "zone": []}, headers=auth(keys["admin"]))
    assert r.status_code == 422 and "zone: unknown field" in r.json()["detail"]
