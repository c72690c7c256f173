"""Team status follows the work: assignments per team and incident with their times, busy
on dispatch and available when the last assignment clears, off-duty and busy teams refused
(busy ones unless overridden), auto-dispatch per alert type, concurrent dispatches, closing
with unreported departments, and response times from the assignments."""

import threading
import uuid
from datetime import UTC, datetime, timedelta

import psycopg
from conftest import auth
from fastapi.testclient import TestClient

from gridwatch.alerts.incidents import act
from gridwatch.api.app import create_app
from gridwatch.errors import Conflict

SEAT = (100.99, 36.90)


def new_incident(client, keys, type_="road_obstruction", lon=SEAT[0], lat=SEAT[1], camera="CAM-0002") -> dict:
    """An alert's incident (alerts of one type from one camera within minutes share one)."""
    body = {"source": "test", "event_id": uuid.uuid4().hex, "camera_id": camera, "type": type_, "score": 0.9,
            "occurred_at": (datetime.now(UTC) - timedelta(minutes=5)).isoformat(), "lon": lon, "lat": lat}
    r = client.post("/alerts", json=body, headers=auth(keys["ingest"]))
    assert r.status_code == 201, r.text
    return r.json()


def do(client, keys, iid, action, role="dispatcher", **body):
    return client.post(f"/incidents/{iid}/{action}", json=body or None, headers=auth(keys[role]))


def team_status(client, keys, team_id: str) -> str:
    return client.get(f"/patrols/{team_id}", headers=auth(keys["viewer"])).json()["properties"]["status"]


def set_status(client, keys, team_id: str, status: str) -> None:
    assert client.patch(f"/patrols/{team_id}", json={"status": status},
                        headers=auth(keys["dispatcher"])).status_code == 200


def test_dispatch_makes_the_team_busy_until_its_work_is_done(client, keys):
    created = new_incident(client, keys)
    iid, team = created["incident_id"], created["team_id"]
    assert team_status(client, keys, team) == "available"  # a suggestion does not take the team
    props = do(client, keys, iid, "dispatch", team_id=team).json()["properties"]
    assert props["status"] == "dispatched" and team_status(client, keys, team) == "busy"
    [a] = props["assignments"]
    assert a["team_id"] == team and a["dispatched_by"] == "test dispatcher (dispatcher)" and a["dispatched_at"]
    assert a["acknowledged_at"] is None and a["cleared_at"] is None
    do(client, keys, iid, "acknowledge", role="operator")
    do(client, keys, iid, "on-scene", role="operator")
    props = do(client, keys, iid, "resolve", role="operator", note="road cleared").json()["properties"]
    [a] = props["assignments"]
    assert a["acknowledged_at"] <= a["on_scene_at"] <= a["cleared_at"] and a["cleared_why"] == "resolved"
    assert team_status(client, keys, team) == "available"


def test_off_duty_team_cannot_be_dispatched(client, keys, db_url):
    iid = new_incident(client, keys)["incident_id"]
    set_status(client, keys, "AGATU-MOTO", "off_duty")
    try:
        r = do(client, keys, iid, "dispatch", team_id="AGATU-MOTO")
        assert r.status_code == 409 and "AGATU-MOTO is off duty" in r.json()["detail"]
        r = do(client, keys, iid, "dispatch", team_id="AGATU-MOTO", override=True)
        assert r.status_code == 409 and "off duty" in r.json()["detail"]
        props = client.get(f"/incidents/{iid}", headers=auth(keys["viewer"])).json()["properties"]
        assert props["status"] == "new" and props["assignments"] == []
    finally:
        set_status(client, keys, "AGATU-MOTO", "available")


def test_busy_team_needs_an_override_and_stays_busy_until_both_clear(client, keys):
    first = new_incident(client, keys, lon=101.22, lat=37.03)["incident_id"]
    second = new_incident(client, keys, type_="illegal_dumping", lon=101.221, lat=37.031)["incident_id"]
    do(client, keys, first, "dispatch", team_id="POLICE-1")
    r = do(client, keys, second, "dispatch", team_id="POLICE-1")
    assert r.status_code == 409 and r.json()["detail"] == (
        f"team POLICE-1 is busy with incident {first}; send override: true to give it a second assignment")
    assert r.json()["busy_with"] == [first]
    props = do(client, keys, second, "dispatch", team_id="POLICE-1", override=True).json()["properties"]
    assert props["team_id"] == "POLICE-1" and f"also on incident {first}" in props["team_reason"]
    do(client, keys, first, "cancel", note="a duplicate report")
    assert team_status(client, keys, "POLICE-1") == "busy"
    do(client, keys, second, "false-alarm", note="a shadow")
    assert team_status(client, keys, "POLICE-1") == "available"


def test_reassigning_frees_the_first_team(client, keys):
    iid = new_incident(client, keys, lon=101.22, lat=37.03)["incident_id"]
    do(client, keys, iid, "dispatch", team_id="POLICE-2")
    props = do(client, keys, iid, "dispatch", team_id="POLICE-3").json()["properties"]
    assert [(a["team_id"], a["cleared_why"]) for a in props["assignments"]] == [("POLICE-2", "reassigned"),
                                                                               ("POLICE-3", None)]
    assert team_status(client, keys, "POLICE-2") == "available" and team_status(client, keys, "POLICE-3") == "busy"
    r = do(client, keys, iid, "dispatch", team_id="POLICE-3")
    assert r.status_code == 409 and "already dispatched to team POLICE-3" in r.json()["detail"]
    do(client, keys, iid, "cancel")
    assert team_status(client, keys, "POLICE-3") == "available"


def test_recommendations_put_busy_teams_after_available_ones_and_say_with_what(client, keys, db_url):
    iid = new_incident(client, keys, type_="illegal_dumping", lon=101.22, lat=37.03)["incident_id"]
    do(client, keys, iid, "dispatch", team_id="POLICE-1")
    # a quiet night: two cars on duty, the rest off
    with psycopg.connect(db_url) as conn:
        off = [r[0] for r in conn.execute("UPDATE teams SET status = 'off_duty' WHERE status = 'available' "
                                          "AND id NOT IN ('POLICE-2', 'POLICE-3') RETURNING id")]
    try:
        other = new_incident(client, keys, type_="livestock_on_road", lon=101.2205, lat=37.0305)["incident_id"]
        body = client.get("/patrols/recommend", params={"incident": other, "limit": 100},
                          headers=auth(keys["viewer"])).json()
        ranked = body["candidates"]
        assert [c["status"] for c in ranked][:2] == ["available", "available"]
        assert {c["team_id"] for c in ranked[:2]} == {"POLICE-2", "POLICE-3"}
        busy = next(c for c in ranked if c["team_id"] == "POLICE-1")
        assert busy["needs_override"] and not ranked[0]["needs_override"]
        assert busy["status"] == "busy" and busy["busy_with"] == [iid]
        assert busy["reason"].startswith(f"busy with incident {iid}")
        assert not set(off) & {c["team_id"] for c in ranked} and body["none_available"] is None
        # with the two available cars gone too, the busy teams are still offered, and why none is free is said
        with psycopg.connect(db_url) as conn:
            conn.execute("UPDATE teams SET status = 'off_duty' WHERE id IN ('POLICE-2', 'POLICE-3')")
        body = client.get("/patrols/recommend", params={"incident": other}, headers=auth(keys["viewer"])).json()
        assert body["candidates"] and {c["status"] for c in body["candidates"]} == {"busy"}
        assert body["none_available"].startswith("no team is available")
    finally:
        with psycopg.connect(db_url) as conn:
            conn.execute("UPDATE teams SET status = 'available' WHERE id = ANY(%s) OR id IN ('POLICE-2', 'POLICE-3')",
                         [off])
    do(client, keys, iid, "cancel")


def test_fire_is_dispatched_at_once_by_auto_dispatch(client, keys):
    created = new_incident(client, keys, type_="fire_smoke", lon=101.0, lat=36.95)
    props = client.get(f"/incidents/{created['incident_id']}", headers=auth(keys["viewer"])).json()["properties"]
    assert props["status"] == "dispatched" and not props["team_suggested"]
    assert [(h["actor"], h["action"]) for h in props["history"]] == [("system", "created"),
                                                                   ("auto-dispatch", "dispatch")]
    [a] = props["assignments"]
    assert a["team_id"] == created["team_id"] and a["dispatched_by"] == "auto-dispatch"
    assert team_status(client, keys, created["team_id"]) == "busy"
    do(client, keys, created["incident_id"], "false-alarm", note="steam from a kitchen")
    assert team_status(client, keys, created["team_id"]) == "available"


def test_two_fires_at_once_go_to_two_teams(client, keys):
    # two fires 350 m apart: one team is the first choice for both
    spots = [(101.22, 37.03), (101.22, 37.0265)]
    firsts = [client.get("/patrols/recommend", params={"lon": lon, "lat": lat}, headers=auth(keys["viewer"])).json()
              for lon, lat in spots]
    assert firsts[0]["grid_code"] == firsts[1]["grid_code"]
    assert firsts[0]["candidates"][0]["team_id"] == firsts[1]["candidates"][0]["team_id"]
    now = datetime.now(UTC).isoformat()
    batch = [{"source": "test", "event_id": uuid.uuid4().hex, "camera_id": cam, "type": "fire_smoke", "score": 0.9,
              "occurred_at": now, "lon": lon, "lat": lat}
             for cam, (lon, lat) in zip(("CAM-0010", "CAM-0011"), spots, strict=True)]
    r = client.post("/alerts/batch", json=batch, headers=auth(keys["ingest"]))
    assert r.status_code == 201, r.text
    results = r.json()["results"]
    assert len({x["incident_id"] for x in results}) == 2
    teams = {x["team_id"] for x in results}
    assert len(teams) == 2 and None not in teams and firsts[0]["candidates"][0]["team_id"] in teams
    for x in results:
        do(client, keys, x["incident_id"], "cancel")


def test_two_dispatchers_at_once_leave_one_assignment(client, keys, db_url):
    iid = new_incident(client, keys, lon=101.22, lat=37.03)["incident_id"]
    outcomes: list = []

    def dispatch(team: str) -> None:
        with psycopg.connect(db_url) as conn:
            try:
                outcomes.append(act(conn, iid, "dispatch", f"dispatcher {team}", datetime.now(UTC), team_id=team,
                                    override=True))
            except Conflict as exc:
                outcomes.append(exc)

    threads = [threading.Thread(target=dispatch, args=(team,)) for team in ("POLICE-4", "RAIL-PATROL")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(outcomes) == 2
    with psycopg.connect(db_url) as conn:
        open_ = conn.execute("SELECT team_id FROM assignments WHERE incident_id = %s AND cleared_at IS NULL",
                             [iid]).fetchall()
        team = conn.execute("SELECT team_id FROM incidents WHERE id = %s", [iid]).fetchone()[0]
        busy = dict(conn.execute("SELECT id, status FROM teams WHERE id IN ('POLICE-4', 'RAIL-PATROL')").fetchall())
    assert open_ == [(team,)]  # the incident's team is the one open assignment
    assert busy[team] == "busy" and busy[({"POLICE-4", "RAIL-PATROL"} - {team}).pop()] == "available"
    do(client, keys, iid, "cancel")


def test_closing_with_an_unreported_department_needs_confirming(client, keys):
    iid = new_incident(client, keys, type_="sewer_overflow")["incident_id"]
    do(client, keys, iid, "dispatch", override=True)
    client.post(f"/incidents/{iid}/whistle", json={"hours": 4}, headers=auth(keys["dispatcher"]))
    do(client, keys, iid, "on-scene", role="operator")
    do(client, keys, iid, "resolve", role="operator", note="drain unblocked")
    do(client, keys, iid, "feedback", role="operator", note="told the residents")
    r = do(client, keys, iid, "close")
    assert r.status_code == 409 and "housing_construction has not reported" in r.json()["detail"]
    assert r.json()["unreported"] == ["housing_construction"]
    props = do(client, keys, iid, "close", confirm=True).json()["properties"]
    assert props["status"] == "closed"
    assert props["history"][-1]["note"] == ("closed with housing_construction not reported "
                                            "(confirmed by test dispatcher (dispatcher))")


def test_response_times_per_township_and_team_kind(client, keys):
    iid = new_incident(client, keys, type_="traffic_accident", lon=101.22, lat=37.03)["incident_id"]
    do(client, keys, iid, "dispatch", team_id="LAKESHORE-MOTO", override=True)
    do(client, keys, iid, "acknowledge", role="operator")
    do(client, keys, iid, "on-scene", role="operator")
    do(client, keys, iid, "resolve", role="operator", note="cars moved")
    r = client.get("/stats/response", headers=auth(keys["viewer"]))
    assert r.status_code == 200
    groups = r.json()["groups"]
    overall = groups[0]
    assert overall["township_code"] is None and overall["team_kind"] is None
    assert overall["assignments"] >= 1 and overall["resolved"]["count"] >= 1
    moto = next(g for g in groups if g["township_code"] == "632223200" and g["team_kind"] == "motorcycle")
    assert moto["acknowledged"]["median"] is not None and moto["acknowledged"]["p90"] >= moto["acknowledged"]["median"]
    assert moto["on_scene"]["count"] >= 1 and moto["resolved"]["median"] < 5


def test_a_cross_site_form_post_is_refused(client, keys, settings):
    iid = new_incident(client, keys, type_="road_obstruction", lon=101.0, lat=36.93)["incident_id"]
    # a browser signed in as a dispatcher (the cookie), lured to another site that posts to gridwatch
    with TestClient(create_app(settings), cookies={"gridwatch_key": keys["dispatcher"]}) as browser:
        r = browser.post(f"/incidents/{iid}/cancel", headers={"origin": "http://evil.example"})
        assert r.status_code == 403 and "cross-site request from http://evil.example" in r.json()["detail"]
        assert browser.post(f"/incidents/{iid}/cancel").status_code == 403  # no Origin, no Referer
        for origin in ("null", "https://testserver", "http://testserver:8080"):
            assert browser.post(f"/incidents/{iid}/cancel", headers={"origin": origin}).status_code == 403
        props = browser.get(f"/incidents/{iid}").json()["properties"]  # reading is fine
        assert props["status"] == "new" and [h["action"] for h in props["history"]] == ["created"]
        r = browser.post(f"/incidents/{iid}/cancel", headers={"origin": "http://testserver"})
        assert r.status_code == 200 and r.json()["properties"]["status"] == "cancelled"
    # a script with a Bearer key is not asked where it comes from
    iid = new_incident(client, keys, type_="road_obstruction", lon=101.0, lat=36.94)["incident_id"]
    r = client.post(f"/incidents/{iid}/cancel", headers={**auth(keys["dispatcher"]), "origin": "http://elsewhere"})
    assert r.status_code == 200


def test_the_list_sorts_by_the_most_urgent_deadline(client, keys, db_url):
    late = new_incident(client, keys, type_="flood_water", lon=101.0, lat=36.95)["incident_id"]
    with psycopg.connect(db_url) as conn:  # its contact was due 10 minutes ago
        conn.execute("UPDATE incidents SET contact_due = now() - interval '10 minutes' WHERE id = %s", [late])
    r = client.get("/incidents", params={"status": "new,dispatched,acknowledged,on_scene,resolved", "sort": "due",
                                         "limit": 1000}, headers=auth(keys["viewer"]))
    features = r.json()["features"]
    dues = [f["properties"]["next_due"] for f in features if f["properties"]["next_due"]]
    assert features[0]["id"] == late and dues == sorted(dues) and len(dues) >= 2
    r = client.get("/incidents", params={"sort": "urgency"}, headers=auth(keys["viewer"]))
    assert r.status_code == 422 and "due" in r.json()["detail"]


def _at_once(calls) -> list:
    """Run the calls in threads started together; their results (or the errors they raised)."""
    barrier, out = threading.Barrier(len(calls)), [None] * len(calls)

    def run(i, call):
        barrier.wait()
        try:
            out[i] = call()
        except Exception as exc:  # noqa: BLE001 - the test looks at what each got
            out[i] = exc

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out


def _consistent(db_url) -> None:
    """Every open incident has at most one open assignment, held by its team; every team on
    duty is busy exactly when it holds one."""
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT count(*) FROM (SELECT incident_id FROM assignments WHERE cleared_at IS NULL "
                            "GROUP BY 1 HAVING count(*) > 1) x").fetchone()[0] == 0
        assert conn.execute("SELECT count(*) FROM assignments a JOIN incidents i ON i.id = a.incident_id "
                            "WHERE a.cleared_at IS NULL AND a.team_id <> i.team_id").fetchone()[0] == 0
        wrong = conn.execute("SELECT id, status FROM teams t WHERE status <> 'off_duty' AND (status = 'busy') <> "
                             "EXISTS (SELECT 1 FROM assignments a WHERE a.team_id = t.id AND a.cleared_at IS NULL)"
                             ).fetchall()
        assert wrong == []


def test_swapping_teams_between_two_incidents_at_once_does_not_deadlock(client, keys, db_url):
    a = new_incident(client, keys, type_="road_obstruction", lon=101.22, lat=37.02, camera="CAM-0060")["incident_id"]
    b = new_incident(client, keys, type_="road_obstruction", lon=101.25, lat=37.02, camera="CAM-0061")["incident_id"]
    assert a != b
    do(client, keys, a, "dispatch", team_id="POLICE-2", override=True)
    do(client, keys, b, "dispatch", team_id="POLICE-3", override=True)
    for round_ in range(3):
        first, second = ("POLICE-3", "POLICE-2") if round_ % 2 == 0 else ("POLICE-2", "POLICE-3")
        got = _at_once([lambda t=first: do(client, keys, a, "dispatch", team_id=t, override=True),
                        lambda t=second: do(client, keys, b, "dispatch", team_id=t, override=True)])
        assert {r.status_code for r in got} <= {200, 409}, [r.text for r in got]
        assert all("deadlock" not in r.text for r in got)
        _consistent(db_url)
    do(client, keys, a, "cancel")
    do(client, keys, b, "cancel")


def test_recommended_dispatches_at_once_go_to_different_teams(client, keys, db_url):
    spots = [(101.22 + 0.004 * k, 37.01) for k in range(4)]
    ids = [new_incident(client, keys, type_="illegal_dumping", lon=lon, lat=lat, camera=f"CAM-{50 + k:04d}")
           ["incident_id"] for k, (lon, lat) in enumerate(spots)]
    assert len(set(ids)) == len(ids)
    got = _at_once([lambda i=i: do(client, keys, i, "dispatch") for i in ids])
    assert [r.status_code for r in got] == [200] * len(ids), [r.text for r in got]
    teams = [r.json()["properties"]["team_id"] for r in got]
    assert len(set(teams)) == len(ids)
    _consistent(db_url)
    for i in ids:
        do(client, keys, i, "cancel")


def test_fires_reported_at_once_send_each_team_once(client, keys, db_url):
    body = {"type": "fire_smoke", "lon": 101.2577, "lat": 37.00407, "note": "smoke from a barn"}
    got = _at_once([lambda: client.post("/incidents", json=body, headers=auth(keys["operator"]))
                    for _ in range(6)])
    assert [r.status_code for r in got] == [201] * 6, [r.text for r in got]
    with psycopg.connect(db_url) as conn:
        auto = conn.execute("SELECT team_id, count(*) FROM assignments WHERE dispatched_by = 'auto-dispatch' "
                            "AND cleared_at IS NULL GROUP BY 1 HAVING count(*) > 1").fetchall()
    assert auto == []
    _consistent(db_url)
    for r in got:
        do(client, keys, r.json()["id"], "cancel")


def test_an_admin_chooses_which_types_are_dispatched_at_once(client, keys):
    types = {t["type"]: t for t in client.get("/alert-types", headers=auth(keys["viewer"])).json()["types"]}
    assert types["fire_smoke"]["auto_dispatch"] and not types["livestock_on_road"]["auto_dispatch"]
    assert types["fire_smoke"]["label"] == "Fire or smoke" and types["fire_smoke"]["window_s"] == 900
    r = client.patch("/alert-types/livestock_on_road", json={"auto_dispatch": True}, headers=auth(keys["dispatcher"]))
    assert r.status_code == 403
    r = client.patch("/alert-types/livestock", json={"auto_dispatch": True}, headers=auth(keys["admin"]))
    assert r.status_code == 422 and "livestock_on_road" in r.json()["detail"]
    assert client.patch("/alert-types/livestock_on_road", json={"auto_dispatch": "yes"},
                        headers=auth(keys["admin"])).status_code == 422
    r = client.patch("/alert-types/livestock_on_road", json={"auto_dispatch": True}, headers=auth(keys["admin"]))
    assert r.status_code == 200 and r.json()["auto_dispatch"]
    try:
        created = new_incident(client, keys, type_="livestock_on_road", camera="CAM-0070")
        props = client.get(f"/incidents/{created['incident_id']}", headers=auth(keys["viewer"])).json()["properties"]
        assert props["status"] == "dispatched" and props["history"][-1]["actor"] == "auto-dispatch"
        do(client, keys, created["incident_id"], "cancel")
    finally:
        client.patch("/alert-types/livestock_on_road", json={"auto_dispatch": False}, headers=auth(keys["admin"]))


def test_responsible_teams_are_offered_even_when_busy(client, keys, db_url):
    iid = new_incident(client, keys, type_="illegal_dumping", lon=101.22, lat=37.03, camera="CAM-0080")["incident_id"]
    first = client.get("/patrols/recommend", params={"incident": iid}, headers=auth(keys["viewer"])).json()
    responsible = [c["team_id"] for c in first["candidates"] if c["responsible"]]
    assert responsible
    other = new_incident(client, keys, type_="road_obstruction", lon=101.0, lat=36.93, camera="CAM-0081")
    for team in responsible:  # each sent elsewhere: busy, ranked after every available team
        do(client, keys, other["incident_id"], "dispatch", team_id=team, override=True)
    with psycopg.connect(db_url) as conn:
        conn.execute("UPDATE teams SET status = 'busy' WHERE id = ANY(%s)", [responsible])
    ranked = client.get("/patrols/recommend", params={"incident": iid, "limit": 3},
                        headers=auth(keys["viewer"])).json()["candidates"]
    assert [c["status"] for c in ranked[:3]] == ["available"] * 3
    assert set(responsible) <= {c["team_id"] for c in ranked[3:] if c["status"] == "busy"}
    with psycopg.connect(db_url) as conn:
        conn.execute("UPDATE teams SET status = 'available' WHERE id = ANY(%s)", [responsible])
    do(client, keys, iid, "cancel")
    do(client, keys, other["incident_id"], "cancel")
