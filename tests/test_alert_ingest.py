"""Alert ingest: one alert becomes a placed, matched, grouped, assigned incident; repeats
never duplicate; every bad input is refused with the reason and nothing is stored."""

import asyncio
import json
import unicodedata
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from conftest import auth

from gridwatch.alerts.model import AlertIn
from gridwatch.alerts.retention import RetentionSettings, purge

SEAT = (100.99, 36.90)


def at(minutes: float = 0, base: datetime | None = None) -> str:
    return ((base or datetime.now(UTC)) + timedelta(minutes=minutes)).isoformat()


def alert(**fields) -> dict:
    return {"source": "test", "event_id": uuid.uuid4().hex, "camera_id": "CAM-0001", "type": "fire_smoke",
            "score": 0.8, "occurred_at": at(), **fields}


def post(client, keys, body, role="ingest"):
    # json.dumps writes non-ASCII as \\u escapes: a lone surrogate can be sent as JSON allows
    return client.post("/alerts", content=json.dumps(body), headers={**auth(keys[role]),
                                                                     "content-type": "application/json"})


def counts(conn) -> tuple[int, int]:
    return conn.execute("SELECT (SELECT count(*) FROM alerts), (SELECT count(*) FROM incidents)").fetchone()


def camera(client, keys, camera_id, lon, lat):
    r = client.post("/cameras", json={"id": camera_id, "name": camera_id, "lon": lon, "lat": lat, "heading_deg": 0,
                                      "fov_deg": 90, "range_m": 300}, headers=auth(keys["admin"]))
    assert r.status_code == 201, r.text


def test_answer_carries_position_grid_incident_team(client, keys):
    r = post(client, keys, alert(lon=SEAT[0], lat=SEAT[1], type="traffic_accident"))
    assert r.status_code == 201
    body = r.json()
    assert set(body) >= {"alert_id", "lon", "lat", "position_method", "grid_code", "incident_id", "team_id",
                         "team_reason", "boundary_version"}
    grid = client.get("/grids/at", params={"lon": SEAT[0], "lat": SEAT[1]}, headers=auth(keys["viewer"])).json()
    assert body["position_method"] == "reported" and body["grid_code"] == grid["code"]
    assert body["boundary_version"] == grid["boundary_version"]
    assert body["incident_id"] and body["team_id"] and "available" in body["team_reason"]


def test_without_position_or_calibration_the_camera_position_is_used(client, keys):
    cam = client.get("/cameras", params={"limit": 1000}, headers=auth(keys["viewer"])).json()["features"]
    plain = next(f for f in cam if not f["properties"]["calibrated"])
    r = post(client, keys, alert(camera_id=plain["id"], box=[100, 100, 200, 300], frame_size=[1920, 1080],
                                 type="road_obstruction"))
    body = r.json()
    assert body["position_method"] == "camera"
    assert (body["lon"], body["lat"]) == pytest.approx((plain["properties"]["lon"], plain["properties"]["lat"]))


def test_repeat_returns_the_first_result_and_stores_nothing(client, keys, conn):
    first = post(client, keys, alert(event_id="rep-1", type="illegal_dumping"))
    before = counts(conn)
    again = post(client, keys, alert(event_id="rep-1", type="illegal_dumping", score=0.1))
    assert first.status_code == 201 and again.status_code == 200
    assert {**first.json(), "repeat": True} == again.json()
    assert counts(conn) == before


def test_repeats_from_one_camera_join_one_incident(client, keys, conn):
    base = datetime.now(UTC) - timedelta(days=2)
    first = post(client, keys, alert(camera_id="CAM-0100", type="flood_water", occurred_at=at(0, base))).json()
    second = post(client, keys, alert(camera_id="CAM-0100", type="flood_water", occurred_at=at(20, base))).json()
    later = post(client, keys, alert(camera_id="CAM-0100", type="flood_water", occurred_at=at(200, base))).json()
    other_type = post(client, keys, alert(camera_id="CAM-0100", type="sewer_overflow",
                                          occurred_at=at(21, base))).json()
    assert first["incident_id"] == second["incident_id"]  # flood window is 30 min
    assert later["incident_id"] != first["incident_id"]
    assert other_type["incident_id"] not in (first["incident_id"], later["incident_id"])
    count, first_seen, last_seen = conn.execute("SELECT alert_count, first_seen, last_seen FROM incidents "
                                                "WHERE id = %s", [first["incident_id"]]).fetchone()
    assert count == 2 and (last_seen - first_seen) == timedelta(minutes=20)


def test_nearby_cameras_in_one_grid_join_within_200_m(client, keys):
    camera(client, keys, "T-NEAR-A", 100.9905, 36.9005)
    camera(client, keys, "T-NEAR-B", 100.9915, 36.9008)
    base = datetime.now(UTC) - timedelta(days=3)
    a = post(client, keys, alert(camera_id="T-NEAR-A", type="livestock_on_road", lon=100.9905, lat=36.9005,
                                 occurred_at=at(0, base))).json()
    b = post(client, keys, alert(camera_id="T-NEAR-B", type="livestock_on_road", lon=100.9911, lat=36.9006,
                                 occurred_at=at(3, base))).json()  # about 55 m away
    far = post(client, keys, alert(camera_id="T-NEAR-B", type="livestock_on_road", lon=100.9960, lat=36.9040,
                                   occurred_at=at(4, base), source="other")).json()
    assert a["grid_code"] == b["grid_code"] and a["incident_id"] == b["incident_id"]
    # the same camera joins even further away; a third camera 600 m away would not
    camera(client, keys, "T-NEAR-C", 100.9960, 36.9040)
    c = post(client, keys, alert(camera_id="T-NEAR-C", type="livestock_on_road", lon=100.9980, lat=36.9060,
                                 occurred_at=at(5, base))).json()
    assert far["incident_id"] == a["incident_id"]
    assert c["incident_id"] != a["incident_id"]


def test_alert_outside_every_grid_waits_in_the_unassigned_queue(client, keys, conn):
    r = post(client, keys, alert(lon=100.2, lat=36.9, type="motion"))
    assert r.status_code == 201
    body = r.json()
    assert body["grid_code"] is None and body["incident_id"] is None and body["team_id"] is None
    assert "nearest is" in body["team_reason"] and "unassigned" in body["team_reason"]
    queue = client.get("/alerts", params={"unassigned": "true"}, headers=auth(keys["dispatcher"])).json()
    assert body["alert_id"] in [f["id"] for f in queue["features"]]
    assert all(f["properties"]["grid_code"] is None for f in queue["features"])
    r = client.get("/alerts", params={"unassigned": "true", "type": "motions"}, headers=auth(keys["dispatcher"]))
    assert r.status_code == 422 and "unknown alert type 'motions'" in r.json()["detail"]


def test_busy_responsible_teams_give_way_to_the_nearest_available(client, keys, conn):
    point = (101.22, 37.03)  # Agatu village
    grid = client.get("/grids/at", params={"lon": point[0], "lat": point[1]}, headers=auth(keys["viewer"])).json()
    responsible = [r[0] for r in conn.execute("SELECT team_id FROM team_grids WHERE grid_code = %s ORDER BY 1",
                                              [grid["code"]])]
    assert "AGATU-MOTO" in responsible
    first = post(client, keys, alert(lon=point[0], lat=point[1], type="fallen_person")).json()
    assert first["team_id"] in responsible and first["team_reason"].startswith(f"responsible for grid {grid['code']}")
    for team in responsible:
        assert client.patch(f"/patrols/{team}", json={"status": "busy"},
                            headers=auth(keys["dispatcher"])).status_code == 200
    try:
        other = post(client, keys, alert(lon=point[0], lat=point[1], type="fallen_person",
                                         occurred_at=at(-120))).json()
        assert other["team_id"] not in responsible
        assert other["team_reason"].startswith("nearest available team") and "is busy" in other["team_reason"]
    finally:
        for team in responsible:
            client.patch(f"/patrols/{team}", json={"status": "available"}, headers=auth(keys["dispatcher"]))


def test_batch_stores_all_and_answers_repeats(client, keys, conn):
    base = datetime.now(UTC) - timedelta(days=5)
    batch = [alert(camera_id=f"CAM-{i % 50 + 1:04d}", type="road_obstruction", occurred_at=at(i % 7, base))
             for i in range(500)]
    batch.append(dict(batch[0]))  # the same event twice in one batch
    r = client.post("/alerts/batch", json=batch, headers=auth(keys["ingest"]))
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["count"] == 501 and body["created"] == 500 and body["repeated"] == 1
    assert body["results"][-1] == {**body["results"][0], "repeat": True}
    # 50 cameras, each repeating within the window: 50 incidents or fewer (cameras close together join)
    incidents = {x["incident_id"] for x in body["results"] if x["incident_id"]}
    assert len(incidents) <= 50
    again = client.post("/alerts/batch", json=batch[:10], headers=auth(keys["ingest"]))
    assert again.status_code == 200 and again.json()["repeated"] == 10


@pytest.mark.parametrize("size", [3, 250])  # a few alerts are inserted, a large batch is copied
def test_batch_stores_every_field_as_sent(client, keys, conn, size):
    sent = [alert(camera_id=f"CAM-{i % 30 + 1:04d}", box=[10.5 + i, 20, 110.25 + i, 220], frame_size=[1920, 1080],
                  lon=100.99 + i * 1e-4, lat=36.9, note=f"tab\there, line\nthere {i}", tags={"zone": ["gate", i]})
            for i in range(size)] + [alert(camera_id="CAM-0031")]
    r = client.post("/alerts/batch", json=sent, headers=auth(keys["ingest"]))
    assert r.status_code == 201, r.text
    ids = [x["alert_id"] for x in r.json()["results"]]
    rows = conn.execute("SELECT box, frame_size, ST_X(geom), ST_Y(geom), extra, camera_id, event_id, incident_id, "
                        "team_id, occurred_at FROM alerts WHERE id = ANY(%s) ORDER BY id", [ids]).fetchall()
    assert len(rows) == size + 1
    for a, x, (box, frame, lon, lat, extra, camera_id, event_id, incident, team, occurred) in zip(
            sent, r.json()["results"], rows, strict=True):
        assert (camera_id, event_id, incident, team) == (a["camera_id"], a["event_id"], x["incident_id"],
                                                         x["team_id"])
        assert occurred == datetime.fromisoformat(a["occurred_at"])
        if "box" in a:
            assert (box, frame, lon, lat) == (a["box"], a["frame_size"], a["lon"], a["lat"])
            assert extra == {"note": a["note"], "tags": a["tags"]}
        else:
            assert (box, frame, extra) == (None, None, None)


def test_concurrent_ingests_of_one_happening_make_one_incident(db_url, conn):
    """Single alerts and large batches from one camera, stored at once on separate
    connections, all join one incident: the grouping locks serialise them."""
    from concurrent.futures import ThreadPoolExecutor

    import psycopg

    from gridwatch.alerts.ingest import ingest
    from gridwatch.alerts.model import AlertIn
    from gridwatch.geo.grid_index import GridIndex

    index = GridIndex.load(conn)
    base = datetime.now(UTC) - timedelta(days=3)
    source = uuid.uuid4().hex

    def one(k: int, size: int) -> None:
        alerts = [AlertIn(**alert(source=source, camera_id="CAM-0007", type="sewer_overflow",
                                  occurred_at=at((k * size + i) % 20 / 10, base))) for i in range(size)]
        with psycopg.connect(db_url, autocommit=True) as mine:
            ingest(mine, alerts, index, datetime.now(UTC))

    jobs = [(k, 1) for k in range(12)] + [(k, 300) for k in range(3)]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda job: one(*job), jobs))
    incidents = conn.execute("SELECT DISTINCT incident_id FROM alerts WHERE source = %s", [source]).fetchall()
    assert len(incidents) == 1
    assert conn.execute("SELECT alert_count FROM incidents WHERE id = %s", incidents[0]).fetchone()[0] == 12 + 900


def test_large_batch_with_repeats_stores_only_the_new(client, keys, conn):
    """A large batch is first copied assuming no repeats; the repeats it does hold must
    leave no trace of that first try (no alert twice, no incident counted twice)."""
    base = datetime.now(UTC) - timedelta(days=4)
    first = [alert(camera_id=f"CAM-{i % 40 + 1:04d}", type="flood_water", occurred_at=at(i % 5, base))
             for i in range(300)]
    stored = client.post("/alerts/batch", json=first, headers=auth(keys["ingest"]))
    assert stored.status_code == 201, stored.text
    total = "SELECT (SELECT count(*) FROM alerts), (SELECT sum(alert_count) FROM incidents)"
    alerts_before, counted_before = conn.execute(total).fetchone()
    fresh = [alert(camera_id="CAM-0003", type="flood_water", occurred_at=at(2, base)) for _ in range(5)]
    r = client.post("/alerts/batch", json=first + fresh, headers=auth(keys["ingest"]))
    assert r.status_code == 201, r.text
    body = r.json()
    assert (body["created"], body["repeated"]) == (5, 300)
    assert [x["alert_id"] for x in body["results"][:300]] == [x["alert_id"] for x in stored.json()["results"]]
    assert conn.execute(total).fetchone() == (alerts_before + 5, counted_before + 5)


# -- bad input: a clear error, nothing stored ------------------------------------------------

BAD_ALERTS = [
    ({"occurred_at": "2026-11-26T08:15:00"}, "timezone"),
    ({"camera_id": "CAM-NOPE"}, "unknown camera"),
    ({"score": 1.5}, "score"),
    ({"score": -0.1}, "score"),
    ({"box": [100, 100, 2000, 300], "frame_size": [1920, 1080]}, "outside the 1920×1080 frame"),
    ({"box": [300, 100, 200, 300]}, "x2 > x1"),
    ({"occurred_at": (datetime.now(UTC) + timedelta(minutes=30)).isoformat()}, "in the future"),
    ({"lon": 190.0, "lat": 36.9}, "lon"),
    ({"lon": 100.9, "lat": -91.0}, "lat"),
    ({"lon": 100.9}, "both lon and lat"),
    ({"type": "alien_landing"}, "unknown type"),
    ({"source": "nvr\x00"}, "control characters"),
    ({"event_id": "e\u0001vil"}, "control characters"),
    ({"colour": "red\x00"}, "colour holds a NUL character"),
    ({"meta": {"tags": ["ok", "b\x00d"]}}, "meta.tags[1] holds a NUL character"),
    ({"occurred_at": "1970-01-01T00:00:00Z"}, "before 2000: the camera's clock is not set"),
    ({"occurred_at": "0001-01-01T00:00:00Z"}, "before 2000"),
    ({"occurred_at": "0001-01-01T00:00:00-12:00"}, "before 2000"),
    ({"frame_size": [123456789012345678901234567890, 1080]}, "frame_size"),
    ({"count": 123456789012345678901234567890}, "count: 123456789012345678901234567890 does not fit in 64 bits"),
    ({"label": "\ud800"}, "label holds half of a UTF-16 surrogate pair"),
    ({"box": [0, 0, 1e300, 1e300]}, "box"),
]


@pytest.mark.parametrize(("change", "words"), BAD_ALERTS, ids=[w for _, w in BAD_ALERTS])
def test_bad_alert_is_refused_and_nothing_stored(client, keys, conn, change, words):
    before = counts(conn)
    r = post(client, keys, alert(**change))
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert words in r.json()["detail"]
    assert counts(conn) == before


def test_batch_with_one_bad_alert_stores_nothing(client, keys, conn):
    before = counts(conn)
    batch = [alert(type="motion") for _ in range(20)]
    batch[13]["score"] = 7
    r = client.post("/alerts/batch", json=batch, headers=auth(keys["ingest"]))
    assert r.status_code == 422
    body = r.json()
    assert "[13].score" in body["detail"] and "nothing was stored" in body["detail"]
    assert body["errors"][0]["field"] == "[13].score"
    batch[13]["score"] = 0.5
    batch[4]["camera_id"] = "CAM-NOPE"
    r = client.post("/alerts/batch", json=batch, headers=auth(keys["ingest"]))
    assert r.status_code == 422 and "[4].camera_id" in r.json()["detail"]
    assert counts(conn) == before


def test_batch_of_10001_is_refused(client, keys, conn):
    before = counts(conn)
    one = alert(type="motion")
    r = client.post("/alerts/batch", json=[one] * 10_001, headers=auth(keys["ingest"]))
    assert r.status_code == 422 and "at most 10,000" in r.json()["detail"]
    assert counts(conn) == before


def test_ten_megabyte_body_is_refused(client, keys, conn):
    before = counts(conn)
    body = b'[' + b",".join([b'{"source": "x", "padding": "' + b"x" * 1000 + b'"}'] * 10_000) + b"]"
    assert len(body) > 10_000_000
    r = client.post("/alerts/batch", content=body, headers={**auth(keys["ingest"]), "content-type": "application/json"})
    assert r.status_code == 413 and r.headers["content-type"] == "application/problem+json"
    assert counts(conn) == before


def test_non_json_body_is_refused(client, keys, conn):
    before = counts(conn)
    for path in ("/alerts", "/alerts/batch"):
        r = client.post(path, content=b"fire! fire!", headers={**auth(keys["ingest"]),
                                                               "content-type": "application/json"})
        assert r.status_code == 422 and "JSON" in r.json()["detail"], r.text
    assert counts(conn) == before


def test_roles_ingest_cannot_read_viewer_cannot_post(client, keys, conn):
    before = counts(conn)
    r = client.get("/incidents", headers=auth(keys["ingest"]))
    assert r.status_code == 403 and "ingest" in r.json()["detail"]
    r = post(client, keys, alert(type="motion"), role="viewer")
    assert r.status_code == 403 and "viewer" in r.json()["detail"]
    assert counts(conn) == before


def test_an_alert_with_no_position_fix_is_refused(client, keys, conn):
    before = counts(conn)
    r = post(client, keys, alert(lon=0.0, lat=0.0, type="motion"))
    assert r.status_code == 422 and r.json()["detail"].startswith("lon: (0.00000, 0.00000) is 10,")
    assert "no position fix" in r.json()["detail"]
    batch = [alert(lon=100.99, lat=36.9), alert(lon=0.0, lat=0.0), alert(lon=36.9, lat=100.99 - 90)]
    r = client.post("/alerts/batch", json=batch, headers=auth(keys["ingest"]))
    assert r.status_code == 422 and [e["index"] for e in r.json()["errors"]] == [1, 2]
    assert counts(conn) == before  # nothing stored
    # a camera on the county's edge still reports into the queue
    assert post(client, keys, alert(lon=100.2, lat=36.9, type="motion")).status_code == 201


def test_an_event_sent_composed_and_decomposed_is_one_event(client, keys, conn):
    composed = unicodedata.normalize("NFC", f"café-{uuid.uuid4().hex[:6]}")
    first = post(client, keys, alert(event_id=composed))
    again = post(client, keys, alert(event_id=unicodedata.normalize("NFD", composed)))
    assert first.status_code == 201 and again.status_code == 200
    assert again.json()["alert_id"] == first.json()["alert_id"]
    assert conn.execute("SELECT count(*) FROM alerts WHERE event_id = %s", [composed]).fetchone()[0] == 1


def test_one_bad_alert_never_fails_the_others_in_its_commit(client, keys, conn):
    """Single alerts that arrive together share one transaction. One that the checks refuse,
    and one that only the database refuses (made here without the checks), fail alone."""
    queue = client.app.state.ingest_queue
    good = [AlertIn(**alert(event_id=f"together-{i}")) for i in range(20)]
    unstorable = AlertIn.model_construct(**{**alert(event_id="together-bad"), "source": "nul\x00"})
    unstorable.occurred_at = datetime.now(UTC)

    async def together():
        return await asyncio.gather(*(queue.submit(a) for a in [*good[:10], unstorable, *good[10:]]),
                                    return_exceptions=True)

    results = client.portal.call(together)
    assert isinstance(results[10], Exception)
    assert all(not isinstance(r, Exception) and not r.repeat for i, r in enumerate(results) if i != 10), results
    assert conn.execute("SELECT count(*) FROM alerts WHERE event_id LIKE 'together-%%'").fetchone()[0] == 20

    before = counts(conn)
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda body: post(client, keys, body),
                                [alert(event_id=f"burst-{i}") for i in range(14)] + [alert(source="nul\x00")]
                                + [alert(occurred_at="0001-01-01T00:00:00Z")]))
    assert [r.status_code for r in answers] == [201] * 14 + [422, 422]
    assert counts(conn)[0] == before[0] + 14


def test_retention_leaves_an_incident_its_evidence_while_it_is_worked_on(client, keys, conn):
    """An alert from two days ago, in an incident active today: a one-day retention keeps it
    until the incident too has been quiet for a day."""
    r = post(client, keys, alert(occurred_at=at(-2 * 24 * 60), camera_id="CAM-0002"))
    assert r.status_code == 201, r.text
    alert_id, incident_id = r.json()["alert_id"], r.json()["incident_id"]
    conn.execute("UPDATE incidents SET updated_at = now() WHERE id = %s", [incident_id])
    conn.commit()
    one_day = RetentionSettings(alerts_days=1)
    purge(conn, datetime.now(UTC), one_day)
    assert conn.execute("SELECT count(*) FROM alerts WHERE id = %s", [alert_id]).fetchone()[0] == 1
    purge(conn, datetime.now(UTC) + timedelta(days=2), one_day)
    assert conn.execute("SELECT count(*) FROM alerts WHERE id = %s", [alert_id]).fetchone()[0] == 0
    assert conn.execute("SELECT alert_count FROM incidents WHERE id = %s", [incident_id]).fetchone()[0] >= 1
