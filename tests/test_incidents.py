"""Incidents: the dispatcher's state machine, history, listing filters, 1-3-1 deadlines
with escalation and whistled departments, and which team to send."""

import subprocess
import uuid
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from conftest import GRIDWATCH, auth

from gridwatch.alerts.deadlines import check_deadlines
from gridwatch.alerts.ingest import ingest
from gridwatch.alerts.model import AlertIn
from gridwatch.geo.grid_index import GridIndex

SEAT = (100.99, 36.90)


def new_incident(client, keys, type_="road_obstruction", lon=SEAT[0], lat=SEAT[1]) -> dict:
    body = {"source": "test", "event_id": uuid.uuid4().hex, "camera_id": "CAM-0002", "type": type_, "score": 0.9,
            "occurred_at": (datetime.now(UTC) - timedelta(days=20, minutes=len(uuid.uuid4().hex))).isoformat(),
            "lon": lon, "lat": lat}
    r = client.post("/alerts", json=body, headers=auth(keys["ingest"]))
    assert r.status_code == 201, r.text
    return r.json()


def back_dated(db_url: str, hours_ago: float, type_="sewer_overflow") -> int:
    """An incident created `hours_ago`, through the real pipeline with that clock."""
    now = datetime.now(UTC) - timedelta(hours=hours_ago)
    with psycopg.connect(db_url) as conn:
        alert = AlertIn(source="test", event_id=uuid.uuid4().hex, camera_id="CAM-0003", type=type_, score=0.7,
                        occurred_at=now, lon=SEAT[0] + 0.003, lat=SEAT[1])
        [result] = ingest(conn, [alert], GridIndex.load(conn), now)
    return result.incident_id


def do(client, keys, iid, action, role="dispatcher", **body):
    return client.post(f"/incidents/{iid}/{action}", json=body or None, headers=auth(keys[role]))


def test_full_lifecycle_keeps_history_and_meets_deadlines(client, keys):
    iid = new_incident(client, keys)["incident_id"]
    detail = client.get(f"/incidents/{iid}", headers=auth(keys["viewer"])).json()["properties"]
    # the team is a suggestion until a dispatcher sends it
    assert detail["status"] == "new" and detail["team_id"] and detail["team_suggested"]
    assert detail["alerts"][0]["camera_id"] == "CAM-0002" and detail["origin"] == "camera"
    props = do(client, keys, iid, "dispatch", team_id=detail["team_id"]).json()["properties"]
    assert props["status"] == "dispatched" and not props["team_suggested"]
    assert do(client, keys, iid, "acknowledge", role="operator").json()["properties"]["contact_state"] == "met"
    assert do(client, keys, iid, "on-scene", role="operator").status_code == 200
    r = do(client, keys, iid, "resolve", role="operator")
    assert r.status_code == 422 and "note" in r.json()["detail"]
    props = do(client, keys, iid, "resolve", role="operator", note="cleared the debris").json()["properties"]
    assert props["status"] == "resolved" and props["resolve_state"] == "met" and props["feedback_due"]
    r = do(client, keys, iid, "close")
    assert r.status_code == 409 and "feedback" in r.json()["detail"]
    do(client, keys, iid, "feedback", role="operator", note="told the reporting shop")
    props = do(client, keys, iid, "close").json()["properties"]
    assert props["status"] == "closed" and props["feedback_state"] == "met" and props["closed_at"]
    history = [(h["action"], h["from"], h["to"]) for h in props["history"]]
    assert history == [("created", None, "new"), ("dispatch", "new", "dispatched"),
                       ("acknowledge", "dispatched", "acknowledged"), ("on_scene", "acknowledged", "on_scene"),
                       ("resolve", "on_scene", "resolved"), ("feedback", "resolved", "resolved"),
                       ("close", "resolved", "closed")]
    assert props["history"][2]["actor"] == "test operator (operator)"
    assert props["history"][4]["note"] == "cleared the debris"


def test_wrong_transition_is_409_saying_what_is_allowed(client, keys):
    iid = new_incident(client, keys)["incident_id"]
    assert do(client, keys, iid, "acknowledge", role="operator").json()["allowed"] == [
        "dispatch", "false_alarm", "cancel"]
    do(client, keys, iid, "dispatch", override=True)
    r = do(client, keys, iid, "resolve", role="operator", note="x")
    assert r.status_code == 409 and r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert "cannot resolve an incident that is dispatched" in body["detail"]
    assert set(body["allowed"]) == {"dispatch", "acknowledge", "on_scene", "false_alarm", "cancel"}
    # the wrong moment is said first: a note would not make it right
    r = do(client, keys, iid, "resolve", role="operator")
    assert r.status_code == 409 and "cannot resolve" in r.json()["detail"]
    r = client.post(f"/incidents/{iid}/acknowledge", content=b"{oops", headers={**auth(keys["operator"]),
                                                                              "content-type": "application/json"})
    assert r.status_code == 422 and r.json()["detail"].startswith("body: not JSON")
    do(client, keys, iid, "false-alarm", note="a reflection on the lens")
    r = do(client, keys, iid, "acknowledge", role="operator")
    assert r.status_code == 409 and "finished" in r.json()["detail"]
    assert client.post(f"/incidents/{iid}/explode", headers=auth(keys["admin"])).status_code == 422
    assert do(client, keys, 999_999, "acknowledge", role="operator").status_code == 404


def test_actions_need_their_role(client, keys):
    iid = new_incident(client, keys)["incident_id"]
    r = do(client, keys, iid, "dispatch", role="operator")
    assert r.status_code == 403 and "dispatcher" in r.json()["detail"]
    assert do(client, keys, iid, "acknowledge", role="viewer").status_code == 403
    assert do(client, keys, iid, "acknowledge", role="ingest").status_code == 403


def test_reassign_to_a_named_team(client, keys):
    iid = new_incident(client, keys)["incident_id"]
    props = do(client, keys, iid, "dispatch", team_id="POLICE-1", note="send a car").json()["properties"]
    assert props["team_id"] == "POLICE-1" and "dispatched by test dispatcher" in props["team_reason"]
    assert props["history"][-1]["team_id"] == "POLICE-1"
    r = do(client, keys, iid, "dispatch", team_id="NO-SUCH-TEAM")
    assert r.status_code == 422 and "NO-SUCH-TEAM" in r.json()["detail"]


def test_listing_filters(client, keys):
    fresh = new_incident(client, keys, type_="illegal_dumping", lon=101.22, lat=37.03)
    h = auth(keys["viewer"])
    by_type = client.get("/incidents", params={"type": "illegal_dumping"}, headers=h).json()
    assert fresh["incident_id"] in [f["id"] for f in by_type["features"]]
    assert all(f["properties"]["type"] == "illegal_dumping" for f in by_type["features"])
    assert client.get("/incidents", params={"township": "632223200", "type": "illegal_dumping"},
                      headers=h).json()["numberMatched"] >= 1
    assert client.get("/incidents", params={"grid": fresh["grid_code"]}, headers=h).json()["numberMatched"] >= 1
    since = datetime.now(UTC).isoformat()
    assert client.get("/incidents", params={"since": since}, headers=h).json()["numberMatched"] == 0
    r = client.get("/incidents", params={"since": "2026-01-01T00:00:00"}, headers=h)
    assert r.status_code == 422 and "timezone" in r.json()["detail"]
    r = client.get("/incidents", params={"since": since, "until": "2020-01-01T00:00:00Z"}, headers=h)
    assert r.status_code == 422 and "before" in r.json()["detail"]
    statuses = client.get("/incidents", params={"status": "dispatched,new"}, headers=h).json()["features"]
    assert statuses and {f["properties"]["status"] for f in statuses} <= {"dispatched", "new"}
    # a misspelt filter is refused with the right words, not answered with nothing
    r = client.get("/incidents", params={"status": "new,on-scene"}, headers=h)
    assert r.status_code == 422 and "'on-scene'" in r.json()["detail"] and "on_scene" in r.json()["detail"]
    r = client.get("/incidents", params={"type": "fire"}, headers=h)
    assert r.status_code == 422 and "fire_smoke" in r.json()["detail"]


def test_missed_contact_escalates_to_township_then_resolution_to_county(client, keys, db_url):
    iid = back_dated(db_url, hours_ago=2)
    listed = client.get("/incidents", params={"overdue": "true", "limit": 1000}, headers=auth(keys["viewer"])).json()
    assert iid in [f["id"] for f in listed["features"]]
    done = subprocess.run([GRIDWATCH, "sla", "check"], capture_output=True, text=True,
                          env={"GRIDWATCH_DATABASE_URL": db_url, "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    assert f"incident {iid}: contact within 1 hour missed" in done.stdout and "township" in done.stdout
    props = client.get(f"/incidents/{iid}", headers=auth(keys["viewer"])).json()["properties"]
    assert props["contact_state"] == "missed" and props["escalated_to"] == "township" and props["overdue"]
    assert props["history"][-1]["action"] == "escalate"
    # a second check escalates nothing more
    with psycopg.connect(db_url) as conn:
        assert not [e for e in check_deadlines(conn, datetime.now(UTC)) if e["incident_id"] == iid]
        later = check_deadlines(conn, datetime.now(UTC) + timedelta(days=3))
    assert any(e["incident_id"] == iid and e["deadline"] == "resolve" and e["level"] == "county" for e in later)


def test_late_feedback_escalates(client, keys, db_url):
    iid = new_incident(client, keys, type_="flood_water")["incident_id"]
    do(client, keys, iid, "dispatch", override=True)
    do(client, keys, iid, "on-scene", role="operator")
    do(client, keys, iid, "resolve", role="operator", note="pumped out")
    with psycopg.connect(db_url) as conn:
        escalated = check_deadlines(conn, datetime.now(UTC) + timedelta(days=1, minutes=1))
    assert any(e["incident_id"] == iid and e["deadline"] == "feedback" for e in escalated)
    props = do(client, keys, iid, "feedback", role="operator", note="told the village").json()["properties"]
    assert props["feedback_state"] == "missed"


def test_whistled_department_must_report(client, keys, db_url):
    iid = new_incident(client, keys, type_="sewer_overflow")["incident_id"]
    r = client.post(f"/incidents/{iid}/whistle", json={"hours": 2, "note": "sewage on the main street"},
                    headers=auth(keys["dispatcher"]))
    assert r.status_code == 200, r.text
    departments = r.json()["properties"]["departments"]
    assert [d["department"] for d in departments] == ["housing_construction"]
    assert departments[0]["state"] == "pending" and r.json()["properties"]["escalated_to"] == "township"
    r = client.post(f"/incidents/{iid}/whistle", json={"departments": ["ministry_of_magic"]},
                    headers=auth(keys["dispatcher"]))
    assert r.status_code == 422 and "ministry_of_magic" in r.json()["detail"]
    assert client.post(f"/incidents/{iid}/whistle", json={}, headers=auth(keys["operator"])).status_code == 403
    # water resources is whistled too, and never reports
    client.post(f"/incidents/{iid}/whistle", json={"departments": ["water_resources"], "hours": 1},
                headers=auth(keys["dispatcher"]))
    r = client.post(f"/incidents/{iid}/departments/housing_construction/report", json={"note": "crew sent"},
                    headers=auth(keys["operator"]))
    assert r.status_code == 200
    states = {d["department"]: d["state"] for d in r.json()["properties"]["departments"]}
    assert states == {"housing_construction": "met", "water_resources": "pending"}
    with psycopg.connect(db_url) as conn:
        escalated = check_deadlines(conn, datetime.now(UTC) + timedelta(hours=1, minutes=5))
    assert any(e["incident_id"] == iid and e["deadline"] == "report:water_resources" and e["level"] == "county"
               for e in escalated)
    props = client.get(f"/incidents/{iid}", headers=auth(keys["viewer"])).json()["properties"]
    assert {d["department"]: d["state"] for d in props["departments"]}["water_resources"] == "missed"
    assert props["escalated_to"] == "county"


def test_recommend_ranks_with_eta_and_reasons(client, keys):
    iid = new_incident(client, keys, type_="illegal_dumping", lon=101.22, lat=37.03)["incident_id"]
    r = client.get("/patrols/recommend", params={"incident": iid}, headers=auth(keys["viewer"]))
    assert r.status_code == 200
    candidates = r.json()["candidates"]
    assert candidates[0]["responsible"] and "responsible for grid" in candidates[0]["reason"]
    etas = [c["eta_min"] for c in candidates if not c["responsible"]]
    assert etas == sorted(etas) and all(c["reason"].startswith("nearest available") for c in candidates
                                        if not c["responsible"])
    point = client.get("/patrols/recommend", params={"lon": 100.6, "lat": 37.1}, headers=auth(keys["viewer"]))
    assert point.json()["grid_code"] and point.json()["candidates"]
    assert client.get("/patrols/recommend", headers=auth(keys["viewer"])).status_code == 422


def test_fresh_gps_is_used_stale_gps_falls_back_to_base(client, keys):
    now = datetime.now(UTC)
    r = client.post("/patrols/POLICE-2/positions", json={"lon": 101.215, "lat": 37.03, "at": now.isoformat()},
                    headers=auth(keys["operator"]))
    assert r.status_code == 201 and r.json()["stored"] == 1
    stale = [{"lon": 101.216, "lat": 37.031, "at": (now - timedelta(minutes=45 + i)).isoformat()} for i in range(3)]
    r = client.post("/patrols/POLICE-3/positions", json={"positions": stale}, headers=auth(keys["operator"]))
    assert r.json() == {"team_id": "POLICE-3", "received": 3, "stored": 3}
    ranked = {c["team_id"]: c for c in client.get("/patrols/recommend", params={"lon": 101.22, "lat": 37.03},
                                                  headers=auth(keys["viewer"])).json()["candidates"]}
    assert ranked["POLICE-2"]["position"] == "gps" and "GPS 0 min ago" in ranked["POLICE-2"]["reason"]
    assert ranked["POLICE-2"]["distance_m"] < 1000
    team = client.get("/patrols/POLICE-3", headers=auth(keys["viewer"])).json()
    assert team["properties"]["position"] == "base"
    future = client.post("/patrols/POLICE-2/positions", json={"lon": 101.2, "lat": 37.0,
                                                              "at": (now + timedelta(hours=1)).isoformat()},
                         headers=auth(keys["operator"]))
    assert future.status_code == 422 and "future" in future.json()["detail"]
    # a ping without a time is taken as of its arrival; a bad one is named once, by field
    r = client.post("/patrols/POLICE-4/positions", json={"lon": 101.3, "lat": 37.0}, headers=auth(keys["operator"]))
    assert r.status_code == 201 and r.json()["stored"] == 1
    assert client.get("/patrols/POLICE-4", headers=auth(keys["viewer"])).json()["properties"]["position"] == "gps"
    r = client.post("/patrols/POLICE-4/positions", json={"lon": 101.3}, headers=auth(keys["operator"]))
    assert r.status_code == 422 and r.json()["detail"] == "positions[0].lat: Field required"
    r = client.post("/patrols/NO-SUCH/positions", json={"lon": 101.3, "lat": 37.0}, headers=auth(keys["operator"]))
    assert r.status_code == 404 and "NO-SUCH" in r.json()["detail"]


def test_no_team_available_says_why(db_url):
    with psycopg.connect(db_url) as conn:
        conn.execute("UPDATE teams SET status = 'off_duty' WHERE kind <> 'car'")
        conn.execute("UPDATE teams SET status = 'busy' WHERE kind = 'car'")
        try:
            iid = None
            now = datetime.now(UTC) - timedelta(days=40)
            alert = AlertIn(source="test", event_id=uuid.uuid4().hex, camera_id="CAM-0004", type="motion", score=0.5,
                            occurred_at=now, lon=SEAT[0], lat=SEAT[1])
            [result] = ingest(conn, [alert], GridIndex.load(conn), now)
            iid = result.incident_id
            assert result.team_id is None and result.team_reason.startswith("no team is available")
            assert conn.execute("SELECT status FROM incidents WHERE id = %s", [iid]).fetchone()[0] == "new"
        finally:
            conn.rollback()


@pytest.mark.parametrize("status", ["available", "busy", "off_duty"])
def test_team_status_changes_by_dispatcher(client, keys, status):
    r = client.patch("/patrols/AGATU-MOTO", json={"status": status}, headers=auth(keys["dispatcher"]))
    assert r.status_code == 200 and r.json()["properties"]["status"] == status
    assert client.patch("/patrols/AGATU-MOTO", json={"status": "asleep"},
                        headers=auth(keys["dispatcher"])).status_code == 422
    client.patch("/patrols/AGATU-MOTO", json={"status": "available"}, headers=auth(keys["dispatcher"]))
