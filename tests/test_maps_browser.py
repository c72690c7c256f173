"""The map pages in a real headless Chromium with every non-loopback request blocked:
all 127 grids drawn, the heat layer there, nothing fails, no console errors, data shown as
text, live updates without a reload, a saved heat map that opens from disk, and the API docs."""

import json
import os
import re
import subprocess
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote, urlparse
from zoneinfo import ZoneInfo

import httpx
import psycopg
import pytest
from browser import ARTIFACTS, Watched, login, shot
from conftest import GRIDWATCH, Server, auth

from gridwatch.demo.history import load_history
from gridwatch.geo.grid_index import GridIndex

EVIL = "<img src=x onerror=alert(1)>"
EVIL_GRID = "632223100001003"


@pytest.fixture(scope="module")
def server(db_url):
    with psycopg.connect(db_url) as conn:
        load_history(conn, GridIndex.load(conn), days=3, progress=lambda _m: None)
        conn.execute("UPDATE grids SET name = %s WHERE code = %s", [EVIL, EVIL_GRID])
    server = Server(db_url).start()
    yield server
    server.stop()


# The grid's tooltip, rendered into the page the way Leaflet renders it (innerHTML): if the
# name were not escaped, an <img> would appear and its onerror would open a dialog.
SHOW_TOOLTIP = """code => {
  let text = null;
  for (const value of Object.values(window)) {
    if (value instanceof L.GeoJSON) {
      value.eachLayer(l => {
        if (l.feature && l.feature.properties.code === code) {
          const tip = l.getTooltip() || value.getTooltip();
          const html = typeof tip._content === 'function' ? tip._content(l) : tip._content;
          const box = document.createElement('div');
          box.className = 'gw-test-tooltip';
          if (html instanceof Element) box.appendChild(html); else box.innerHTML = html;
          document.body.appendChild(box);
          text = box.textContent;
        }
      });
    }
  }
  return text;
}"""


def test_command_room(server, browser, keys):
    # an alert outside every grid waits in the dispatcher's queue, on the map too
    outside = {"source": "browser", "event_id": uuid.uuid4().hex, "camera_id": "CAM-0300", "type": "road_obstruction",
               "score": 0.7, "occurred_at": datetime.now(UTC).isoformat(), "lon": 100.2, "lat": 36.9}
    assert httpx.post(server.url + "/alerts", json=outside, headers=auth(keys["ingest"])).json()["grid_code"] is None
    w = Watched(browser)
    requested = []
    w.page.on("request", lambda r: requested.append(r.url))
    try:
        login(w, server, keys["viewer"], "/maps/")
        page = w.page
        page.wait_for_function("document.querySelectorAll('path.gw-grid').length === 127", timeout=15000)
        page.wait_for_function("document.getElementById('gw-live').textContent === 'live'", timeout=15000)
        # the stream starts from when the page's data was read: nothing falls in between
        assert any(re.search(r"/incidents/stream\?lastEventId=\d{16}$", url) for url in requested), requested
        assert page.locator(".gw-incident").count() > 0
        assert page.locator(".gw-unassigned").count() >= 1
        assert int(page.locator("#gw-unassigned-count").text_content()) == page.locator(".gw-unassigned").count()
        assert page.locator(".gw-legend").count() == 1 and page.locator(".leaflet-control-layers").count() == 1
        text = page.evaluate(SHOW_TOOLTIP, EVIL_GRID)
        page.wait_for_timeout(300)
        assert text is not None and EVIL in text  # shown as text
        assert page.locator('img[src="x"]').count() == 0
        # a new incident appears without a reload
        before = page.locator(".gw-incident").count()
        alert = {"source": "browser", "event_id": uuid.uuid4().hex, "camera_id": "CAM-0300", "type": "fallen_person",
                 "score": 0.9, "occurred_at": datetime.now(UTC).isoformat(), "lon": 101.25, "lat": 36.94}
        assert httpx.post(server.url + "/alerts", json=alert, headers=auth(keys["ingest"])).status_code == 201
        page.wait_for_function(f"document.querySelectorAll('.gw-incident').length > {before}", timeout=15000)
        # and so does an alert outside every grid, in the unassigned queue
        queued = page.locator(".gw-unassigned").count()
        outside = {**outside, "event_id": uuid.uuid4().hex, "occurred_at": datetime.now(UTC).isoformat()}
        assert httpx.post(server.url + "/alerts", json=outside, headers=auth(keys["ingest"])).status_code == 201
        page.wait_for_function(f"document.querySelectorAll('.gw-unassigned').length > {queued}", timeout=15000)
        assert int(page.locator("#gw-unassigned-count").text_content()) == queued + 1
        page.locator(".gw-unassigned").last.hover()
        assert "nearest is" in page.locator(".leaflet-tooltip").last.text_content()
        shot(page, "command-room.png")
        w.clean()
    finally:
        w.close()


def test_heatmap_page(server, browser, keys):
    w = Watched(browser)
    try:
        login(w, server, keys["viewer"], "/maps/heatmap")
        page = w.page
        page.wait_for_function("document.querySelectorAll('path.gw-grid').length === 127", timeout=15000)
        assert page.locator("canvas.leaflet-heatmap-layer").count() == 1
        assert page.locator("form select[name=type]").count() == 1
        page.select_option("form select[name=type]", "fire_smoke")
        page.click("form button")
        page.wait_for_load_state("networkidle")
        assert "type=fire_smoke" in page.url
        page.wait_for_function("document.querySelectorAll('path.gw-grid').length === 127", timeout=15000)
        shot(page, "heatmap.png")
        w.clean()
    finally:
        w.close()


def test_pages_need_a_key(server, keys):
    # a script is told with problem+json
    r = httpx.get(server.url + "/maps/")
    assert r.status_code == 401 and r.headers["content-type"] == "application/problem+json"
    r = httpx.get(server.url + "/login", params={"key": "gw_wrong-key-123"})
    assert r.status_code == 401
    # a person at a browser is sent to the sign-in form, which will bring them back
    r = httpx.get(server.url + "/maps/heatmap?type=fire_smoke", headers={"Accept": "text/html,*/*;q=0.8"})
    assert r.status_code == 303
    assert r.headers["location"] == "/login?next=%2Fmaps%2Fheatmap%3Ftype%3Dfire_smoke"
    assert httpx.get(server.url + "/").headers["location"] == "/maps/"
    # the form never sends anyone off the site, nor lets a camera's key see the maps
    r = httpx.post(server.url + "/login", data={"key": keys["viewer"], "next": "//elsewhere.example/maps/"})
    assert r.status_code == 422 and "set-cookie" not in r.headers
    r = httpx.post(server.url + "/login", data={"key": keys["ingest"], "next": "/maps/"})
    assert r.status_code == 403 and "role viewer or above" in r.text and "set-cookie" not in r.headers


def test_sign_in_at_the_front_door(server, browser, keys):
    """The address `make demo` prints, opened in a browser: the sign-in form, then the
    command room."""
    w = Watched(browser)
    try:
        page = w.page
        page.goto(server.url + "/")
        assert urlparse(page.url).path == "/login" and page.locator("input#key").count() == 1
        page.fill("#key", "gw_not-a-key-1234")
        page.click("form button")
        assert page.locator(".error").text_content() == "unknown or revoked API key"
        assert all("401" in e for e in w.errors)  # the refused key, and nothing else
        w.errors.clear()
        assert "gw_not-a-key" not in page.url  # the key is posted, never in the address
        page.fill("#key", keys["viewer"])
        page.click("form button")
        page.wait_for_function("document.querySelectorAll('path.gw-grid').length === 127", timeout=15000)
        assert urlparse(page.url).path == "/maps/" and keys["viewer"] not in page.url
        w.clean()
        # the next person at a shared screen starts from the form (leaving the page ends its stream)
        page.click("form[action='/logout'] button")
        assert urlparse(page.url).path == "/login" and page.context.cookies() == []
        page.goto(server.url + "/maps/")
        assert urlparse(page.url).path == "/login"
        assert w.errors == [] and w.blocked == [] and all("/incidents/stream" in f for f in w.failed), w.failed
    finally:
        w.close()


def test_saved_heatmap_opens_from_disk_with_no_network(server, browser, db_url, tmp_path):
    out = tmp_path / "heat.html"
    done = subprocess.run([GRIDWATCH, "map", "heatmap", "--out", str(out)], capture_output=True, text=True,
                          env={"PATH": os.environ["PATH"], "GRIDWATCH_DATABASE_URL": db_url}, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "/maps/static" not in out.read_text() and "/maps/app" not in out.read_text()
    w = Watched(browser, allow_file=True)
    try:
        w.context.route("http*://**", lambda route: (w.blocked.append(route.request.url), route.abort()))
        w.page.goto(Path(out).as_uri())
        w.page.wait_for_function("document.querySelectorAll('path.gw-grid').length === 127", timeout=15000)
        assert w.page.locator("canvas.leaflet-heatmap-layer").count() == 1
        w.clean()
    finally:
        w.close()


def test_unknown_grid_page_is_404_bad_window_or_type_422(server, keys):
    r = httpx.get(server.url + "/maps/grids/632223100001999", headers=auth(keys["viewer"]))
    assert r.status_code == 404 and "632223100001999" in r.json()["detail"]
    r = httpx.get(server.url + "/maps/heatmap", params={"since": "yesterday"}, headers=auth(keys["viewer"]))
    assert r.status_code == 422 and "since" in r.json()["detail"]
    for page in ("heatmap", "timelapse"):
        r = httpx.get(f"{server.url}/maps/{page}", params={"type": "smoke"}, headers=auth(keys["viewer"]))
        assert r.status_code == 422 and "unknown alert type 'smoke'" in r.json()["detail"]


def test_api_docs_open_with_no_network(server, browser):
    w = Watched(browser)
    try:
        w.page.goto(server.url + "/docs")
        w.page.wait_for_selector(".swagger-ui .info .title", timeout=15000)
        assert "gridwatch" in w.page.locator(".swagger-ui .info .title").text_content()
        assert w.page.locator(".opblock").count() > 30  # every endpoint listed
        w.page.wait_for_load_state("networkidle")
        w.clean()
    finally:
        w.close()


OPEN_STATUSES = "new,dispatched,acknowledged,on_scene"
TZ = ZoneInfo("Asia/Shanghai")  # ApiSettings.timezone's default, which the test server uses


def _local(when: datetime) -> str:
    local = when.astimezone(TZ)
    return f"{local.day} {local:%b %H:%M}"


def _count(server: Server, key: str, **params) -> int:
    r = httpx.get(server.url + "/incidents", params={"limit": 10000, **params}, headers=auth(key))
    assert r.status_code == 200, r.text
    return r.json()["numberMatched"]


POPUP = """id => {
  const m = gw.room.incidents.all[id].marker;
  m.openPopup();
  const content = m.getPopup().getElement().querySelector('.leaflet-popup-content');
  const text = content.textContent, links = [...content.querySelectorAll('a')].map(a => a.getAttribute('href'));
  m.closePopup();
  return [text, links];
}"""

GRID_TOOLTIP = """code => {
  const grid = gw.room.grids.byCode[code];
  let text = null;
  Object.values(window).forEach(v => {
    if (v instanceof L.GeoJSON) v.eachLayer(l => {
      if (l.feature === grid) { l.openTooltip(); text = l.getTooltip().getElement().textContent; l.closeTooltip(); }
    });
  });
  return text;
}"""

# What is drawn at an incident's place (the topmost marker there).
TOP_AT = """id => {
  const m = gw.room.incidents.all[id].marker, map = gw.room.map;
  const p = map.latLngToContainerPoint(m.getLatLng()), box = map.getContainer().getBoundingClientRect();
  const top = document.elementFromPoint(box.left + p.x, box.top + p.y);
  return [top === m._path, top.getAttribute('class')];
}"""


def test_command_room_shows_the_urgent_first_in_local_time_with_names(server, browser, keys, db_url):
    with psycopg.connect(db_url) as conn:
        grid, (a, b, c) = conn.execute(
            # open ones where the replayed history has them (it depends on the hour of the run);
            # each of the three is given its state below either way
            "SELECT grid_code, (array_agg(id ORDER BY status = ANY(%s) DESC, id))[1:3] FROM incidents "
            "WHERE grid_code IS NOT NULL GROUP BY grid_code HAVING count(*) >= 3 "
            "ORDER BY count(*) FILTER (WHERE status = ANY(%s)) DESC, count(*) DESC LIMIT 1",
            [OPEN_STATUSES.split(","), OPEN_STATUSES.split(",")]).fetchone()
        team_id, team_name = conn.execute("SELECT id, name FROM teams ORDER BY id LIMIT 1").fetchone()
        conn.execute("DELETE FROM incident_departments WHERE incident_id = ANY(%s)", [[a, b, c]])
        # a: contact missed two hours ago (already escalated, so the deadline check leaves it be); moved
        # 50 m to a spot of its own, so no other late incident of the history lies on it (the test below
        # looks at what is drawn on top there)
        conn.execute("UPDATE incidents SET status = 'dispatched', contacted_at = NULL, contact_state = 'missed', "
                     "contact_due = now() - interval '2 hours', resolve_due = now() + interval '2 days', "
                     "geom = ST_Translate(geom, 0.00037, 0.00041), "
                     "escalation_level = 1, closed_at = NULL, updated_at = now() WHERE id = %s", [a])
        # b: new, on time, with a team
        conn.execute("UPDATE incidents SET status = 'new', contacted_at = NULL, contact_state = 'pending', "
                     "contact_due = now() + interval '2 hours', resolve_due = now() + interval '3 days', "
                     "resolve_state = 'pending', escalation_level = 0, team_id = %s, closed_at = NULL, "
                     "updated_at = now() WHERE id = %s", [team_id, b])
        # c: resolved two days ago; its feedback, due yesterday, never came
        conn.execute("UPDATE incidents SET status = 'resolved', contacted_at = now() - interval '3 days', "
                     "contact_state = 'met', resolved_at = now() - interval '2 days', resolve_state = 'met', "
                     "feedback_due = now() - interval '1 day', feedback_at = NULL, feedback_state = 'missed', "
                     "escalation_level = 1, closed_at = NULL, updated_at = now() WHERE id = %s", [c])
        first_seen = conn.execute("SELECT first_seen FROM incidents WHERE id = %s", [b]).fetchone()[0]
    w = Watched(browser)
    try:
        login(w, server, keys["viewer"], "/maps/")
        page = w.page
        page.wait_for_function("document.getElementById('gw-live').textContent === 'live'", timeout=15000)
        # every overdue incident is drawn and counted, resolved ones whose feedback is late included
        overdue = _count(server, keys["viewer"], overdue="true")
        assert overdue > 0
        assert int(page.locator("#gw-overdue-count").text_content()) == overdue
        assert page.locator("path.gw-overdue").count() == overdue
        assert page.evaluate(f"gw.room.incidents.all[{c}].state") == "overdue"
        assert page.locator("path.gw-resolved.gw-overdue").count() >= 1
        assert int(page.locator("#gw-feedback-count").text_content()) >= 1
        # times on the county's clock, to the minute; deadlines in words; teams by name and id
        text, links = page.evaluate(POPUP, b)
        assert f"first seen {_local(first_seen)}" in text, text
        assert not re.search(r"\d{4}-\d\d-\d\dT", text), text
        assert re.search(r"contact due in (1 h 5\d min|2 h)", text), text
        assert re.search(r"resolution due in (2 d 23 h|3 d)", text), text
        assert f"team {team_name} ({team_id})" in text and "not escalated" in text, text
        assert f"/maps/grids/{grid}" in links
        text, _ = page.evaluate(POPUP, a)
        assert re.search(r"contact overdue by 2 h( \d+ min)?", text) and "escalated to township" in text, text
        text, _ = page.evaluate(POPUP, c)
        assert re.search(r"feedback overdue by 1 d", text) and "status resolved" in text, text
        # the grid's tooltip gives its open incidents, and the grid links to its page
        open_in_grid = _count(server, keys["viewer"], grid=grid, status=OPEN_STATUSES)
        assert f"open incidents: {open_in_grid}" in page.evaluate(GRID_TOOLTIP, grid)
        # an on-time incident that moves onto the overdue one is drawn under it
        lat, lon = page.evaluate(f"[gw.room.incidents.all[{a}].p.lat, gw.room.incidents.all[{a}].p.lon]")
        page.evaluate(f"gw.room.map.setView([{lat}, {lon}], 15, {{animate: false}})")
        page.mouse.move(1, 899)
        with psycopg.connect(db_url) as conn:
            conn.execute("UPDATE incidents SET geom = (SELECT geom FROM incidents WHERE id = %s), last_seen = now(), "
                         "updated_at = now() WHERE id = %s", [a, b])
        page.wait_for_function(f"gw.room.incidents.all[{b}].p.lat === {lat} && "
                               f"gw.room.incidents.all[{b}].p.lon === {lon}", timeout=15000)
        on_top, classes = page.evaluate(TOP_AT, a)
        assert on_top, f"drawn on top of the overdue incident: {classes}"
        # live: a cancelled incident leaves the grid's count and the header's; a late one joins the overdue
        opened = int(page.locator("#gw-open-count").text_content())
        with psycopg.connect(db_url) as conn:
            conn.execute("UPDATE incidents SET status = 'cancelled', closed_at = now(), updated_at = now() "
                         "WHERE id = %s", [b])
            late = conn.execute("UPDATE incidents SET contact_state = 'missed', contacted_at = NULL, "
                                "contact_due = now() - interval '1 hour', escalation_level = 1, updated_at = now() "
                                "WHERE id = (SELECT id FROM incidents WHERE status = 'new' AND NOT (id = ANY(%s)) "
                                "AND contact_due > now() + interval '1 hour' LIMIT 1) RETURNING id",
                                [[a, b, c]]).fetchone()
        page.wait_for_function(f"document.getElementById('gw-open-count').textContent === '{opened - 1}'",
                               timeout=15000)
        assert f"open incidents: {open_in_grid - 1}" in page.evaluate(GRID_TOOLTIP, grid)
        if late:
            page.wait_for_function(f"document.getElementById('gw-overdue-count').textContent === '{overdue + 1}'",
                                   timeout=15000)
        w.clean()
    finally:
        w.close()


def _last_days(n: int) -> tuple[str, str]:
    today = datetime.now(TZ).date()
    return (today - timedelta(days=n - 1)).isoformat(), today.isoformat()


LEGEND_SHOWN = """title => {
  const b = [...document.querySelectorAll('.gw-legend section b')].find(b => b.textContent === title);
  return b ? !b.parentElement.hidden && b.parentElement.offsetParent !== null : null;
}"""


def test_heatmap_form_keeps_the_days_chosen_and_legends_follow_their_layers(server, browser, keys, db_url):
    with psycopg.connect(db_url) as conn:
        code, name = conn.execute("SELECT code, name FROM townships ORDER BY code LIMIT 1").fetchone()
    since, until = _last_days(3)
    w = Watched(browser)
    try:
        login(w, server, keys["viewer"], quote(f"/maps/heatmap?since={since}&until={until}&township={code}", safe="/"))
        page = w.page
        page.wait_for_selector("path.gw-grid")
        assert page.input_value("input[name=since]") == since and page.input_value("input[name=until]") == until
        assert page.locator(".gw-panel .gw-township").text_content() == name
        assert f"{since} to {until}" in page.locator(".gw-panel").text_content()
        for _ in range(2):  # showing again asks for the same days
            page.click("form button")
            page.wait_for_load_state("networkidle")
            assert f"until={until}" in page.url and page.input_value("input[name=until]") == until
        # each legend shows while its layer does; the heat has one
        assert page.evaluate(LEGEND_SHOWN, "Alert heat") is True
        assert page.evaluate(LEGEND_SHOWN, "Incidents per grid") is True
        assert page.evaluate(LEGEND_SHOWN, "Hot spots (Gi*, FDR)") is False
        page.locator(".leaflet-control-layers label", has_text="Alert heat").locator("input").uncheck()
        page.locator(".leaflet-control-layers label", has_text="Hot spots").locator("input").check()
        assert page.evaluate(LEGEND_SHOWN, "Alert heat") is False
        assert page.evaluate(LEGEND_SHOWN, "Hot spots (Gi*, FDR)") is True
        # a reversed range: the page, with the reason next to the form and what was asked in it
        response = page.goto(f"{server.url}/maps/heatmap?since={until}&until={since}")
        assert response.status == 422
        assert "since must be before until" in page.locator(".gw-panel .gw-error").text_content()
        assert page.input_value("input[name=since]") == until and page.input_value("input[name=until]") == since
        page.wait_for_selector("path.gw-grid")
        assert all("422" in e for e in w.errors)  # the refused window, and nothing else
        w.errors.clear()
        w.clean()
    finally:
        w.close()


def test_timelapse_has_the_form_and_a_legend(server, browser, keys):
    since, until = _last_days(3)
    w = Watched(browser)
    try:
        login(w, server, keys["viewer"], quote(f"/maps/timelapse?since={since}&until={until}", safe="/"))
        page = w.page
        page.wait_for_selector(".leaflet-control-layers")
        assert "3 days of alerts" in page.locator(".gw-panel").text_content()
        assert page.evaluate(LEGEND_SHOWN, "Alerts by day") is True
        assert page.input_value("input[name=until]") == until
        page.select_option("form select[name=type]", "fire_smoke")
        page.click("form button")
        page.wait_for_load_state("networkidle")
        assert "type=fire_smoke" in page.url and page.input_value("select[name=type]") == "fire_smoke"
        assert "fire_smoke" in page.locator(".gw-panel").text_content()
        w.clean()
    finally:
        w.close()


# True when the element's centre is not covered by anything else (a control, the legend).
UNCOVERED = """el => {
  const r = el.getBoundingClientRect();
  const top = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
  return el === top || el.contains(top);
}"""


def test_small_screen_folds_the_layer_control_away(server, browser, keys):
    w = Watched(browser, viewport=(390, 844))
    try:
        login(w, server, keys["viewer"], "/maps/")
        page = w.page
        page.wait_for_function("document.getElementById('gw-live').textContent === 'live'", timeout=15000)
        assert page.locator(".leaflet-control-layers").count() == 1
        assert page.locator(".leaflet-control-layers-expanded").count() == 0
        assert page.locator("form[action='/logout'] button").evaluate(UNCOVERED)
        assert page.locator("#gw-overdue-count").evaluate(UNCOVERED)
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "command-room-390.png"))
        # the control still opens when asked
        box = page.locator(".leaflet-control-layers-toggle").bounding_box()
        page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        assert page.locator(".leaflet-control-layers-expanded").count() == 1
        login(w, server, keys["viewer"], "/maps/heatmap")
        page.wait_for_selector("path.gw-grid")
        w.failed = [f for f in w.failed if "/incidents/stream" not in f]  # left the command room
        for field in ("input[name=since]", "input[name=until]", "select[name=type]", "select[name=township]",
                      "form button"):
            assert page.locator(field).evaluate(UNCOVERED), field
        page.screenshot(path=str(ARTIFACTS / "heatmap-390.png"))
        w.clean()
    finally:
        w.close()


def test_pages_take_the_vocabularies_from_python(server, keys):
    from gridwatch.alerts.grouping import OPEN
    from gridwatch.alerts.incidents import STATUSES
    from gridwatch.maps.base import APP_DIR
    from gridwatch.maps.vocab import DEADLINE_STATES, vocab

    html = httpx.get(server.url + "/maps/", headers=auth(keys["viewer"])).text
    block = re.search(r'<script type="application/json" id="gw-data">(.*?)</script>', html, re.S).group(1)
    data = json.loads(block)
    assert data["vocab"] == json.loads(json.dumps(vocab()))
    assert data["vocab"]["open"] == list(OPEN) and data["vocab"]["statuses"] == list(STATUSES)
    assert data["timezone"] == "Asia/Shanghai"
    # no second list typed in the scripts
    for script in APP_DIR.glob("*.js"):
        text = script.read_text()
        for status in STATUSES:
            assert f'"{status}"' not in text and f"'{status}'" not in text, (script.name, status)
        for _, colour, _ in DEADLINE_STATES:
            assert colour not in text, (script.name, colour)
    # and our files are served
    assert httpx.get(server.url + "/maps/app/gw.js").status_code == 200


def test_a_grid_links_to_its_page(server, browser, keys):
    w = Watched(browser)
    try:
        login(w, server, keys["viewer"], "/maps/")
        page = w.page
        page.wait_for_function("document.getElementById('gw-live').textContent === 'live'", timeout=15000)
        page.evaluate("""code => {
          const grid = gw.room.grids.byCode[code];
          Object.values(window).forEach(v => {
            if (v instanceof L.GeoJSON) v.eachLayer(l => { if (l.feature === grid) l.openPopup(); });
          });
        }""", EVIL_GRID)
        page.click(f".leaflet-popup-content a[href='/maps/grids/{EVIL_GRID}']")
        page.wait_for_selector("path.gw-grid")
        assert urlparse(page.url).path == f"/maps/grids/{EVIL_GRID}"
        assert page.locator(".gw-panel h1").text_content() == f"{EVIL} ({EVIL_GRID})"
        assert page.locator('img[src="x"]').count() == 0
        w.failed = [f for f in w.failed if "/incidents/stream" not in f]  # left the command room
        w.clean()
    finally:
        w.close()
