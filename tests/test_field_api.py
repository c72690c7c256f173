"""The API under the dispatch pages: team keys (their own assignments, actions, positions and
duty only), field reports, the unassigned queue worked by hand, and photos from the scene."""

import itertools
import ssl
import subprocess
import uuid
from datetime import UTC, datetime, timedelta

import cv2
import httpx
import numpy as np
import psycopg
import pytest
from conftest import GRIDWATCH, Server, auth

from gridwatch.alerts.retention import purge
from gridwatch.api.auth import create_key

AGATU = (101.22, 37.03)  # township 632223200, where AGATU-MOTO answers
SEAT = (100.99, 36.90)  # the county seat, another township
OUTSIDE = (100.2, 36.9)  # outside every grid
SPOTS = itertools.count()


@pytest.fixture(scope="module")
def team_keys(db_url) -> dict[str, str]:
    with psycopg.connect(db_url) as conn:
        return {team: create_key(conn, "team", f"{team} phone", team)[1] for team in ("AGATU-MOTO", "POLICE-1")}


def post_alert(client, keys, lon, lat, type_="road_obstruction", camera="CAM-0002") -> dict:
    """One alert; alerts of one type and camera within minutes join one incident."""
    body = {"source": "test", "event_id": uuid.uuid4().hex, "camera_id": camera, "type": type_, "score": 0.9,
            "occurred_at": datetime.now(UTC).isoformat(), "lon": lon, "lat": lat}
    r = client.post("/alerts", json=body, headers=auth(keys["ingest"]))
    assert r.status_code == 201, r.text
    return r.json()


def dispatched(client, keys, team: str) -> int:
    """A new incident near Agatu sent to `team`; each its own (another camera, 300 m further east), so
    nothing joins."""
    k = next(SPOTS)
    iid = post_alert(client, keys, AGATU[0] + 0.003 * k, AGATU[1], type_="illegal_dumping",
                     camera=f"CAM-{20 + k:04d}")["incident_id"]
    r = client.post(f"/incidents/{iid}/dispatch", json={"team_id": team, "override": True},
                    headers=auth(keys["dispatcher"]))
    assert r.status_code == 200, r.text
    return iid


def test_keys_create_binds_a_team_key_to_one_team(db_url):
    env = {"GRIDWATCH_DATABASE_URL": db_url, "PATH": "/usr/bin:/bin"}

    def run(*args):
        return subprocess.run([GRIDWATCH, "keys", "create", *args], capture_output=True, text=True, env=env)

    done = run("--role", "team", "--team", "AGATU-MOTO", "--name", "Agatu patrol phone")
    assert done.returncode == 0 and done.stdout.strip().startswith("gw_") and "team AGATU-MOTO" in done.stderr
    for args, words in ((("--role", "team", "--name", "x"), "give --team ID"),
                        (("--role", "team", "--team", "NOPE", "--name", "x"), "no team 'NOPE'"),
                        (("--role", "viewer", "--team", "AGATU-MOTO", "--name", "x"), "for team keys only")):
        done = run(*args)
        assert done.returncode == 2 and words in done.stderr and done.stdout == "", done.stderr


def test_a_team_sees_and_works_its_own_assignments_only(client, keys, team_keys):
    mine = dispatched(client, keys, "AGATU-MOTO")
    theirs = dispatched(client, keys, "POLICE-1")
    h = auth(team_keys["AGATU-MOTO"])
    listed = client.get("/patrols/AGATU-MOTO/assignments", params={"open": "true"}, headers=h)
    assert listed.status_code == 200 and listed.headers["content-type"] == "application/geo+json"
    features = listed.json()["features"]
    assert mine in [f["id"] for f in features] and theirs not in [f["id"] for f in features]
    feature = next(f for f in features if f["id"] == mine)
    assert feature["geometry"]["type"] == "Point" and feature["properties"]["assignment"]["dispatched_at"]
    assert feature["properties"]["township_name"] and feature["properties"]["grid_name"]
    # another team's list, incident, positions; the dispatcher's views and actions
    assert client.get("/patrols/POLICE-1/assignments", headers=h).status_code == 403
    assert client.get(f"/incidents/{theirs}", headers=h).status_code == 403
    assert client.get(f"/incidents/{mine}", headers=h).status_code == 200
    assert client.get("/incidents", headers=h).status_code == 403
    assert client.get("/patrols/POLICE-1", headers=h).status_code == 403
    r = client.post("/patrols/POLICE-1/positions", json={"lon": 101.2, "lat": 37.0}, headers=h)
    assert r.status_code == 403 and "AGATU-MOTO" in r.json()["detail"]
    assert client.post("/patrols/AGATU-MOTO/positions", json={"lon": 101.2, "lat": 37.0},
                       headers=h).status_code == 201
    r = client.post(f"/incidents/{theirs}/acknowledge", headers=h)
    assert r.status_code == 403 and "not assigned to team AGATU-MOTO" in r.json()["detail"]
    r = client.post(f"/incidents/{mine}/dispatch", json={"team_id": "AGATU-MOTO"}, headers=h)
    assert r.status_code == 403
    # its own work, step by step
    assert client.post(f"/incidents/{mine}/acknowledge", headers=h).json()["properties"]["status"] == "acknowledged"
    assert client.post(f"/incidents/{mine}/on-scene", headers=h).status_code == 200
    r = client.post(f"/incidents/{mine}/resolve", json={"note": "rubbish taken away"}, headers=h)
    assert r.status_code == 200 and r.json()["properties"]["history"][-1]["actor"] == "AGATU-MOTO phone (team)"
    r = client.post(f"/incidents/{mine}/feedback", json={"note": "told the shop owner"}, headers=h)
    assert r.status_code == 200 and r.json()["properties"]["feedback_at"]
    done = client.get("/patrols/AGATU-MOTO/assignments", params={"open": "false"}, headers=h).json()["features"]
    assert mine in [f["id"] for f in done]
    assert client.get(f"/incidents/{theirs}/photos/1", headers=h).status_code == 403
    client.post(f"/incidents/{theirs}/cancel", json={}, headers=auth(keys["dispatcher"]))


def test_a_team_goes_off_duty_and_cannot_be_dispatched(client, keys, team_keys):
    h = auth(team_keys["AGATU-MOTO"])
    r = client.post("/patrols/AGATU-MOTO/duty", json={"on_duty": False}, headers=h)
    assert r.status_code == 200 and r.json()["properties"]["status"] == "off_duty"
    iid = post_alert(client, keys, *AGATU, type_="livestock_on_road")["incident_id"]
    r = client.post(f"/incidents/{iid}/dispatch", json={"team_id": "AGATU-MOTO"}, headers=auth(keys["dispatcher"]))
    assert r.status_code == 409 and "off duty" in r.json()["detail"]
    assert client.post("/patrols/POLICE-1/duty", json={"on_duty": False}, headers=h).status_code == 403
    assert client.post("/patrols/AGATU-MOTO/duty", json={"on_duty": "maybe"}, headers=h).status_code == 422
    # off duty, where the team is is not kept
    r = client.post("/patrols/AGATU-MOTO/positions", json={"lon": 101.2, "lat": 37.0}, headers=h)
    assert r.status_code == 409 and "off duty" in r.json()["detail"]
    r = client.post("/patrols/AGATU-MOTO/duty", json={"on_duty": True}, headers=h)
    assert r.json()["properties"]["status"] == "available"
    r = client.post("/patrols/AGATU-MOTO/positions", json={"lon": 101.2, "lat": 37.0, "at": "2001-01-01T00:00:00Z"},
                    headers=h)
    assert r.status_code == 422 and "older than the 24 h" in r.json()["detail"]
    client.post(f"/incidents/{iid}/cancel", json={}, headers=auth(keys["dispatcher"]))


def test_a_field_report_opens_an_incident_in_its_grid(client, keys, team_keys):
    h = auth(team_keys["AGATU-MOTO"])
    body = {"type": "sewer_overflow", "lon": AGATU[0], "lat": AGATU[1] + 0.001,
            "note": "a resident says sewage runs into the street"}
    r = client.post("/incidents", json=body, headers=h)
    assert r.status_code == 201, r.text
    props = r.json()["properties"]
    assert props["origin"] == "field" and props["grid_code"].startswith("632223200") and props["status"] == "new"
    assert props["contact_due"] and props["resolve_due"] and props["team_id"] and props["alert_count"] == 0
    assert props["history"][0]["actor"] == "AGATU-MOTO phone (team)"
    assert props["history"][0]["note"] == body["note"]
    assert r.headers["location"] == f"/incidents/{props['id']}"
    listed = client.get("/incidents", params={"origin": "field"}, headers=auth(keys["viewer"])).json()
    assert props["id"] in [f["id"] for f in listed["features"]]
    assert all(f["properties"]["origin"] == "field" for f in listed["features"])
    assert client.get("/incidents", params={"origin": "phone"}, headers=auth(keys["viewer"])).status_code == 422
    # outside the team's township, outside every grid, a wrong type, no note, an unknown field
    r = client.post("/incidents", json={**body, "lon": SEAT[0], "lat": SEAT[1]}, headers=h)
    assert r.status_code == 403 and "township" in r.json()["detail"]
    r = client.post("/incidents", json={**body, "lon": OUTSIDE[0], "lat": OUTSIDE[1]}, headers=h)
    assert r.status_code == 422 and "outside every grid" in r.json()["detail"]
    r = client.post("/incidents", json={**body, "type": "sewage"}, headers=h)
    assert r.status_code == 422 and "sewer_overflow" in r.json()["detail"]
    assert client.post("/incidents", json={**body, "note": " "}, headers=h).status_code == 422
    assert client.post("/incidents", json={**body, "photo": "x"}, headers=h).status_code == 422
    # the reporting team reads its report and adds a photo to it, though no one sent it there
    assert client.get(f"/incidents/{props['id']}", headers=h).status_code == 200
    r = client.post(f"/incidents/{props['id']}/photos", content=_phone_jpeg(),
                    headers={**h, "content-type": "image/jpeg"})
    assert r.status_code == 201
    # an operator reports anywhere; a viewer cannot
    r = client.post("/incidents", json={**body, "lon": SEAT[0], "lat": SEAT[1]}, headers=auth(keys["operator"]))
    assert r.status_code == 201 and r.json()["properties"]["origin"] == "field"
    assert client.post("/incidents", json=body, headers=auth(keys["viewer"])).status_code == 403
    # text a database cannot hold is refused, not a server error
    r = client.post("/incidents", json={**body, "note": "dr\u0000ain"}, headers=auth(keys["operator"]))
    assert r.status_code == 422 and "NUL" in r.json()["detail"]
    r = client.post("/incidents", content=b'{"type": "sewer_overflow", "lon": 101.22, "lat": 37.03, '
                    b'"note": "\\ud800"}', headers={**auth(keys["operator"]), "content-type": "application/json"})
    assert r.status_code == 422
    assert client.get("/incidents", params={"township": "a\x00b"}, headers=auth(keys["viewer"])).status_code == 422


def test_a_team_without_a_township_reports_nowhere(client, keys, db_url):
    with psycopg.connect(db_url) as conn:
        conn.execute("UPDATE teams SET township_code = NULL WHERE id = 'POLICE-2'")
        key = create_key(conn, "team", "police car 2", "POLICE-2")[1]
    r = client.post("/incidents", json={"type": "road_obstruction", "lon": AGATU[0], "lat": AGATU[1],
                                        "note": "a fallen tree"}, headers=auth(key))
    assert r.status_code == 403 and "no township" in r.json()["detail"]
    r = client.patch("/patrols/POLICE-2", json={"township_code": "nowhere"}, headers=auth(keys["dispatcher"]))
    assert r.status_code == 422 and "no township 'nowhere'" in r.json()["detail"]
    r = client.patch("/patrols/POLICE-2", json={"township_code": "632223200"}, headers=auth(keys["dispatcher"]))
    assert r.status_code == 200 and r.json()["properties"]["township_code"] == "632223200"


def test_the_unassigned_queue_is_placed_in_a_grid_or_dismissed(client, keys, db_url):
    first = post_alert(client, keys, *OUTSIDE, type_="road_obstruction", camera="CAM-0300")
    second = post_alert(client, keys, OUTSIDE[0] + 0.01, OUTSIDE[1], type_="motion", camera="CAM-0300")
    assert first["grid_code"] is None and second["grid_code"] is None
    queue = client.get("/alerts", params={"unassigned": "true"}, headers=auth(keys["dispatcher"])).json()["features"]
    waiting = {f["id"]: f["properties"] for f in queue}
    nearest = waiting[first["alert_id"]]["nearest_grid_code"]
    assert nearest and nearest in first["team_reason"]
    h = auth(keys["operator"])
    assert client.post(f"/alerts/{first['alert_id']}/assign", json={"grid_code": nearest},
                       headers=auth(keys["viewer"])).status_code == 403
    r = client.post(f"/alerts/{first['alert_id']}/assign", json={"grid_code": "999"}, headers=h)
    assert r.status_code == 422 and "no grid '999'" in r.json()["detail"]
    r = client.post(f"/alerts/{first['alert_id']}/assign", json={"grid_code": nearest}, headers=h)
    assert r.status_code == 200, r.text
    placed = r.json()
    assert placed["grid_code"] == nearest and placed["incident_id"] and not placed["joined"]
    incident = client.get(f"/incidents/{placed['incident_id']}", headers=h).json()["properties"]
    assert incident["alert_count"] == 1 and incident["grid_code"] == nearest and incident["team_id"]
    assert f"placed in grid {nearest} by test operator (operator)" in incident["history"][0]["note"]
    r = client.post(f"/alerts/{first['alert_id']}/assign", json={"grid_code": nearest}, headers=h)
    assert r.status_code == 409 and "assigned already" in r.json()["detail"]
    r = client.post(f"/alerts/{second['alert_id']}/dismiss", json={"reason": " "}, headers=h)
    assert r.status_code == 422
    r = client.post(f"/alerts/{second['alert_id']}/dismiss", json={"reason": "headlights on the lens"}, headers=h)
    assert r.status_code == 200
    props = r.json()["properties"]
    assert props["queue_action"] == "dismissed" and props["queue_note"] == "headlights on the lens"
    assert props["queue_actor"] == "test operator (operator)"
    queue = client.get("/alerts", params={"unassigned": "true"}, headers=h).json()["features"]
    assert {first["alert_id"], second["alert_id"]}.isdisjoint(f["id"] for f in queue)
    inside = post_alert(client, keys, *SEAT)
    r = client.post(f"/alerts/{inside['alert_id']}/dismiss", json={"reason": "x"}, headers=h)
    assert r.status_code == 409 and "only alerts outside every grid" in r.json()["detail"]
    assert client.post("/alerts/999999999/dismiss", json={"reason": "x"}, headers=h).status_code == 404


def _phone_jpeg(size=(1200, 900)) -> bytes:
    """A JPEG with an Exif block holding a GPS-like tag, as phones write them."""
    image = np.full((size[1], size[0], 3), 120, np.uint8)
    cv2.circle(image, (size[0] // 2, size[1] // 2), 100, (0, 0, 255), -1)
    jpeg = cv2.imencode(".jpg", image)[1].tobytes()
    exif = b"Exif\x00\x00MM\x00*\x00\x00\x00\x08" + b"GPSLatitude 36.9012 owner-phone-4711" * 4
    app1 = b"\xff\xe1" + (len(exif) + 2).to_bytes(2, "big") + exif
    return jpeg[:2] + app1 + jpeg[2:]


def _claiming(jpeg: bytes, width: int, height: int) -> bytes:
    """The JPEG with its frame header saying another size (the data stays as it was)."""
    i = jpeg.index(b"\xff\xc0")
    return jpeg[:i + 5] + height.to_bytes(2, "big") + width.to_bytes(2, "big") + jpeg[i + 9:]


def test_a_photo_from_the_scene_is_stored_without_its_metadata(client, keys, team_keys, db_url):
    iid = dispatched(client, keys, "AGATU-MOTO")
    h = {**auth(team_keys["AGATU-MOTO"]), "content-type": "image/jpeg"}
    original = _phone_jpeg((3000, 2000))
    assert b"owner-phone-4711" in original
    r = client.post(f"/incidents/{iid}/photos", content=original, headers=h)
    assert r.status_code == 201, r.text
    assert r.json() == {"incident_id": iid, "n": 1, "href": f"/incidents/{iid}/photos/1"}
    stored = client.get(f"/incidents/{iid}/photos/1", headers=auth(keys["viewer"]))
    assert stored.status_code == 200 and stored.headers["content-type"] == "image/jpeg"
    assert b"owner-phone-4711" not in stored.content and b"Exif" not in stored.content
    image = cv2.imdecode(np.frombuffer(stored.content, np.uint8), cv2.IMREAD_COLOR)
    assert image.shape[:2] == (1067, 1600)
    props = client.get(f"/incidents/{iid}", headers=auth(keys["viewer"])).json()["properties"]
    assert props["photos"][0]["href"] == f"/incidents/{iid}/photos/1"
    assert props["history"][-1]["action"] == "photo"
    # not a JPEG, too large, another team's incident, a viewer
    r = client.post(f"/incidents/{iid}/photos", content=b"GIF89a....", headers=h)
    assert r.status_code == 422 and "JPEG" in r.json()["detail"]
    r = client.post(f"/incidents/{iid}/photos", content=b"\xff\xd8\xff" + bytes(7 * 1024 * 1024), headers=h)
    assert r.status_code == 413 and "at most" in r.json()["detail"]
    r = client.post(f"/incidents/{iid}/photos", content=original, headers={**h, "content-type": "text/plain"})
    assert r.status_code == 422 and "image/jpeg" in r.json()["detail"]
    # a few kilobytes that claim a picture too large to decode; a photo cut short
    r = client.post(f"/incidents/{iid}/photos", content=_claiming(original, 32_000, 32_000), headers=h)
    assert r.status_code == 422 and "32000×32000" in r.json()["detail"]
    r = client.post(f"/incidents/{iid}/photos", content=_claiming(original, 1, 65_000), headers=h)
    assert r.status_code == 422
    r = client.post(f"/incidents/{iid}/photos", content=original[:len(original) // 2], headers=h)
    assert r.status_code == 422 and "cut short" in r.json()["detail"]
    theirs = dispatched(client, keys, "POLICE-1")
    assert client.post(f"/incidents/{theirs}/photos", content=original, headers=h).status_code == 403
    assert client.post(f"/incidents/{iid}/photos", content=original,
                       headers={**auth(keys["viewer"]), "content-type": "image/jpeg"}).status_code == 403
    assert client.get(f"/incidents/{iid}/photos/9", headers=auth(keys["viewer"])).status_code == 404
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT count(*) FROM incident_photos WHERE incident_id = %s", [iid]).fetchone()[0] == 1
        assert purge(conn, datetime.now(UTC) + timedelta(days=400))["incident_photos"] >= 1
        assert conn.execute("SELECT count(*) FROM incident_photos").fetchone()[0] == 0


def test_served_over_https_for_phones(db_url, tmp_path):
    """Phones give a page their position only over HTTPS (or on loopback): serve takes a
    certificate and its key."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)
    server = Server(db_url, env={"GRIDWATCH_TLS_CERT": str(cert), "GRIDWATCH_TLS_KEY": str(key)}).start()
    try:
        assert server.url.startswith("https://")
        r = httpx.get(server.url + "/health", verify=ssl.create_default_context(cafile=str(cert)))
        assert r.status_code == 200 and r.json()["status"] == "ok"
        with pytest.raises(httpx.HTTPError):
            httpx.get(server.url.replace("https://", "http://") + "/health", timeout=3)
    finally:
        server.stop()
    env = {"GRIDWATCH_DATABASE_URL": db_url, "PATH": "/usr/bin:/bin"}
    done = subprocess.run([GRIDWATCH, "serve", "--tls-cert", str(cert)], capture_output=True, text=True, env=env)
    assert done.returncode == 2 and done.stderr.strip() == (
        "error: GRIDWATCH_TLS_CERT and GRIDWATCH_TLS_KEY go together: set both, or neither")
    done = subprocess.run([GRIDWATCH, "serve", "--tls-cert", str(tmp_path / "none.pem"), "--tls-key", str(key)],
                          capture_output=True, text=True, env=env)
    assert done.returncode == 2 and "tls_cert: Path does not point to a file" in done.stderr
