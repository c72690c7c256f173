"""The dispatch loop in two real browsers: a dispatcher in the command room and a motorcycle
patrol's phone on /field. An alert's incident appears in the room; the dispatcher opens it,
sees the recommended teams and sends one; the phone shows the assignment and the team works
it (acknowledge, on scene, resolve with a note and a photo); the room sees each step live,
the team turns busy and then available, and the contact deadline is met."""

import uuid
from datetime import UTC, datetime

import cv2
import httpx
import numpy as np
import psycopg
import pytest
from browser import ARTIFACTS, Watched, login, shot
from conftest import Server, auth

from gridwatch.api.auth import create_key

AGATU = (101.22, 37.03)  # where the volunteer motorcycle patrol answers
TEAM = "AGATU-MOTO"
LIVE_S = 5  # each step must show in the other browser within this (the bench measures how fast it is)


@pytest.fixture(scope="module")
def server(db_url):
    server = Server(db_url).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def team_key(db_url) -> str:
    with psycopg.connect(db_url) as conn:
        return create_key(conn, "team", "Agatu patrol phone", TEAM)[1]


def room_status(page, iid: int, status: str) -> None:
    page.wait_for_function("([id, s]) => gw.room.incidents.all[id] && gw.room.incidents.all[id].p.status === s",
                           arg=[iid, status], timeout=LIVE_S * 1000)


def team_marker(page, status: str) -> None:
    page.wait_for_function("""([team, s]) => {
      let found = null;
      Object.values(window).forEach(v => {
        if (v instanceof L.GeoJSON) v.eachLayer(l => {
          if (l.feature && l.feature.properties.id === team && l.feature.properties.status !== undefined
              && l.feature.properties.team) found = l.feature.properties.status;
        });
      });
      return found === s;
    }""", arg=[TEAM, status], timeout=LIVE_S * 1000)


def photo(tmp_path) -> str:
    image = np.full((900, 1200, 3), 90, np.uint8)
    cv2.rectangle(image, (300, 300), (900, 600), (40, 160, 230), -1)
    path = tmp_path / "scene.jpg"
    cv2.imwrite(str(path), image)
    return str(path)


def test_the_whole_loop_from_alert_to_resolved(server, browser, keys, team_key, tmp_path):
    room = Watched(browser)
    phone = Watched(browser, viewport=(390, 844), is_mobile=True, has_touch=True,
                    geolocation={"latitude": AGATU[1] + 0.002, "longitude": AGATU[0] + 0.002},
                    permissions=["geolocation"])
    try:
        login(room, server, keys["dispatcher"], "/maps/")
        room.page.wait_for_function("document.getElementById('gw-live').textContent === 'live'", timeout=15000)
        login(phone, server, team_key, "/maps/")  # a team key always lands on its own page
        assert phone.page.url.endswith("/field")
        phone.page.wait_for_function("document.getElementById('gf-live').textContent === 'live'", timeout=15000)
        assert phone.page.locator("#gf-duty").is_checked()

        # an alert: its incident appears in the room, the team a suggestion
        alert = {"source": "browser", "event_id": uuid.uuid4().hex, "camera_id": "CAM-0090",
                 "type": "road_obstruction", "score": 0.9, "occurred_at": datetime.now(UTC).isoformat(),
                 "lon": AGATU[0], "lat": AGATU[1]}
        iid = httpx.post(server.url + "/alerts", json=alert, headers=auth(keys["ingest"])).json()["incident_id"]
        room_status(room.page, iid, "new")

        # the dispatcher opens it from the queue, sees the recommended teams, sends the patrol
        room.page.click(f"#gw-incident-rows [data-incident='{iid}']")
        room.page.wait_for_selector("#gw-detail h2")
        assert "suggested, not sent yet" in room.page.inner_text("#gw-detail")
        room.page.click("#gw-detail button[data-action=dispatch]")
        room.page.wait_for_selector(".gw-teams")
        row = room.page.locator(f".gw-teams tr:has(button[data-team='{TEAM}'])")
        assert " min" in row.inner_text() and "responsible for grid" in row.inner_text()
        assert "available" in row.inner_text()
        shot(room.page, "dispatch-panel.png")
        row.locator("button").click()
        room.page.wait_for_selector(f"#gw-detail .gw-message:has-text('Sent Agatu volunteer motorcycle patrol "
                                    f"({TEAM})')")
        room_status(room.page, iid, "dispatched")
        team_marker(room.page, "busy")

        # the phone shows it, live
        card = phone.page.locator(f"#gf-assignments [data-incident='{iid}']")
        card.wait_for(timeout=LIVE_S * 1000)
        assert "Blocked road" in card.inner_text() and "km away" in card.inner_text()
        shot(phone.page, "field.png")
        phone.page.screenshot(path=str(ARTIFACTS / "field-full.png"), full_page=True)

        # acknowledge, on scene, resolve with a note and a photo; the room follows each step
        card.locator("button[data-step=acknowledge]").click()
        room_status(room.page, iid, "acknowledged")
        card.locator("button[data-step=on_scene]").click()
        room_status(room.page, iid, "on_scene")
        card.locator("button[data-step=resolve]").click()
        card.locator("textarea[name=note]").fill("tree cut up and moved off the road")
        card.locator("input[name=photo]").set_input_files(photo(tmp_path))
        card.locator("form button").click()
        # (the phone makes the photo small, then sends the resolution and the photo: a slow machine takes a while)
        phone.page.wait_for_function("document.getElementById('gf-message').textContent !== ''", timeout=20_000)
        assert phone.page.inner_text("#gf-message") == "Resolve: done"
        team_marker(room.page, "available")
        # the open incident leaves the map; its panel shows the resolution, the photo and the met deadline
        room.page.wait_for_function("id => !gw.room.incidents.all[id]", arg=iid, timeout=LIVE_S * 1000)
        room.page.wait_for_selector("#gw-detail .gw-thumbs img", timeout=LIVE_S * 1000)
        detail = room.page.inner_text("#gw-detail")
        assert "resolved" in detail and "contact: met" in detail and "tree cut up" in detail
        # the panel offers feedback, not closing (feedback comes first); the queue finds it among the resolved
        offered = room.page.eval_on_selector_all("#gw-detail button[data-action]",
                                                 "bs => bs.map(b => b.getAttribute('data-action'))")
        assert "feedback" in offered and "close" not in offered
        room.page.click(".gw-tabs button[data-tab=list]")
        room.page.select_option("#gw-list select[name=status]", "resolved")
        room.page.locator(f"#gw-incident-rows [data-incident='{iid}']").wait_for(timeout=LIVE_S * 1000)
        # the phone: the card has left "now" for the finished list, with feedback still to give
        phone.page.locator(f"#gf-done [data-incident='{iid}'] button[data-step=feedback]").wait_for()
        assert phone.page.locator(f"#gf-assignments [data-incident='{iid}']").count() == 0
        props = httpx.get(f"{server.url}/incidents/{iid}", headers=auth(keys["viewer"])).json()["properties"]
        assert props["contact_state"] == "met" and props["status"] == "resolved" and len(props["photos"]) == 1
        [a] = props["assignments"]
        assert a["acknowledged_at"] and a["on_scene_at"] and a["cleared_why"] == "resolved"
        room.clean()
        phone.clean()
    finally:
        room.close()
        phone.close()


def test_an_operator_is_offered_no_dispatch(server, browser, keys):
    alert = {"source": "browser", "event_id": uuid.uuid4().hex, "camera_id": "CAM-0091",
             "type": "illegal_dumping", "score": 0.9, "occurred_at": datetime.now(UTC).isoformat(),
             "lon": AGATU[0] + 0.01, "lat": AGATU[1]}
    iid = httpx.post(server.url + "/alerts", json=alert, headers=auth(keys["ingest"])).json()["incident_id"]
    room = Watched(browser)
    try:
        login(room, server, keys["operator"], "/maps/")
        room.page.wait_for_function("id => gw.room.incidents.all[id]", arg=iid, timeout=15000)
        room.page.evaluate("id => gw.room.panel.open(id, true)", iid)
        room.page.wait_for_selector("#gw-detail h2")
        offered = room.page.eval_on_selector_all("#gw-detail button[data-action]",
                                                 "bs => bs.map(b => b.getAttribute('data-action'))")
        assert "dispatch" not in offered and "cancel" not in offered and "whistle" not in offered
        # what the viewer's key may not do, it is not offered; the server would refuse it anyway
        r = httpx.post(f"{server.url}/incidents/{iid}/dispatch", json={}, headers=auth(keys["operator"]))
        assert r.status_code == 403
        room.clean()
    finally:
        room.close()


def test_a_refusal_shows_in_the_panel(server, browser, keys):
    """The panel offers what the state allowed when it was drawn; if the state changed
    meanwhile, the server's 409 is shown as it is."""
    alert = {"source": "browser", "event_id": uuid.uuid4().hex, "camera_id": "CAM-0092",
             "type": "livestock_on_road", "score": 0.9, "occurred_at": datetime.now(UTC).isoformat(),
             "lon": AGATU[0] - 0.01, "lat": AGATU[1]}
    iid = httpx.post(server.url + "/alerts", json=alert, headers=auth(keys["ingest"])).json()["incident_id"]
    room = Watched(browser)
    try:
        login(room, server, keys["dispatcher"], "/maps/")
        room.page.wait_for_function("id => gw.room.incidents.all[id]", arg=iid, timeout=15000)
        room.page.evaluate("gw.room.stream.close()")  # this room hears nothing more (a dropped link)
        room.page.evaluate("id => gw.room.panel.open(id, true)", iid)
        room.page.wait_for_selector("#gw-detail button[data-action=cancel]")
        # another dispatcher calls it a false alarm first
        httpx.post(f"{server.url}/incidents/{iid}/false-alarm", json={"note": "cows went home"},
                   headers=auth(keys["dispatcher"]))
        room.page.click("#gw-detail button[data-action=cancel]")
        message = room.page.locator("#gw-detail .gw-message.gw-bad")
        message.wait_for()
        assert "cannot cancel an incident that is false_alarm" in message.inner_text()
        room.failed = [f for f in room.failed if "/incidents/stream" not in f]  # the stream this test closed
        room.errors = [e for e in room.errors if "409 (Conflict)" not in e]  # the refusal this test caused
        room.clean()
    finally:
        room.close()
