"""No stored script injection on any page. Every name and note a user (or a boundary file)
can set, and a page can show, holds a payload that escapes each context at once (HTML body,
HTML attribute, JavaScript string, JavaScript template literal, a script block) and calls
alert() with the field's own tag. A real server and a real Chromium then open every page,
every incident's panel, the queue, and every tooltip and popup of every map: a dialog (or a
console error, which a broken script or an injected <img> makes) fails the test and names
the field. The payloads must also be seen as text, so the test cannot pass by showing
nothing."""

import uuid
from datetime import UTC, datetime

import httpx
import psycopg
import pytest
from browser import Watched, login
from conftest import Server, auth

from gridwatch.api.auth import create_key

TEAM = "AGATU-MOTO"
GRID = "632223200200002"  # Agatu Grid 2: the team answers for it
VILLAGE = GRID[:12]
TOWNSHIP = GRID[:9]
CAMERA = "CAM-0461"  # in GRID, with a view sector
OTHER_CAMERA = "CAM-0462"  # in GRID too
HERE = (101.22, 37.03)  # inside GRID
OUTSIDE = (100.2, 36.9)  # outside every grid, within 50 km of one
TYPES = {"a": "road_obstruction", "b": "illegal_dumping", "c": "traffic_accident"}
DEPARTMENT = "transport"  # road_obstruction's department


def payload(tag: str) -> str:
    """Text that runs alert(tag) if it reaches any of these contexts unescaped: a template
    literal (`${...}`, and a backtick or backslash to break out), a script block
    (</script>), HTML (<img onerror>, <svg onload>), an attribute ("' then >), a JavaScript
    string ('... or "...). The tag is a regular expression's source, not a quoted string,
    so that escaped quotes cannot turn a `${...}` that runs into a mere syntax error."""
    call = f"alert(/{tag}/.source)"
    return f"`${{{call}}}`\\</script><img src=x onerror={call}>\"'><svg onload={call}>';{call}//\";{call}//"


# tag → the field it is in (the dialog's message is the tag)
FIELDS = {
    "team": "team name (PATCH /patrols)",
    "camera": "camera name (PATCH /cameras)",
    "grid": "grid name (boundaries)",
    "village": "village name (boundaries)",
    "township": "township name (boundaries)",
    "dept": "department name (migrations)",
    **{f"label-{k}": f"alert type label of {t}" for k, t in TYPES.items()},
    "src": "alert source",
    "event": "alert event_id",
    "extra": "an alert's extra field",
    "q-src": "unassigned alert's source",
    "q-event": "unassigned alert's event_id",
    "q-extra": "unassigned alert's extra field",
    "dispatch": "dispatch note",
    "ack": "acknowledge note",
    "onscene": "on-scene note",
    "resolve": "resolve note",
    "whistle": "whistle note",
    "report": "department report note",
    "field": "field report note (POST /incidents, team key)",
    "dismiss": "dismiss reason (unassigned queue)",
    "key-disp": "API key name (dispatcher)",
    "key-op": "API key name (operator)",
    "key-team": "API key name (team)",
    "key-ingest": "API key name (ingest)",
    "key-admin": "API key name (admin)",
}
P = {tag: payload(tag) for tag in FIELDS}


def named(messages) -> list[str]:
    """Each (where, tag) once, saying which field the tag is in."""
    return [f"{where}: alert({m!r}) from {FIELDS.get(m, 'an unknown field')}" for where, m in dict.fromkeys(messages)]


@pytest.fixture(scope="module")
def world(db_url):
    """The county with every field holding its payload: names set in the database before the
    server starts (they come from boundary files and migrations), the rest through the API."""
    assert all(len(p) <= 200 for p in P.values())  # the API's longest names
    with psycopg.connect(db_url) as conn:
        conn.execute("UPDATE grids SET name = %s WHERE code = %s", [P["grid"], GRID])
        conn.execute("UPDATE villages SET name = %s WHERE code = %s", [P["village"], VILLAGE])
        conn.execute("UPDATE townships SET name = %s WHERE code = %s", [P["township"], TOWNSHIP])
        conn.execute("UPDATE departments SET name = %s WHERE code = %s", [P["dept"], DEPARTMENT])
        for k, t in TYPES.items():
            assert conn.execute("UPDATE alert_types SET label = %s WHERE type = %s",
                                [P[f"label-{k}"], t]).rowcount == 1
        keys = {role: create_key(conn, role, P[tag], TEAM if role == "team" else None)[1]
                for role, tag in (("dispatcher", "key-disp"), ("operator", "key-op"), ("team", "key-team"),
                                  ("ingest", "key-ingest"), ("admin", "key-admin"))}
    server = Server(db_url).start()
    try:
        def call(method, path, key, body=None, ok=(200, 201)):
            r = httpx.request(method, server.url + path, json=body, headers=auth(keys[key]), timeout=30)
            assert r.status_code in ok, (path, r.status_code, r.text)
            return r.json()

        call("PATCH", f"/patrols/{TEAM}", "dispatcher", {"name": P["team"]})
        call("PATCH", f"/cameras/{CAMERA}", "admin", {"name": P["camera"]})

        def alert(camera, type_, prefix, where=None):
            body = {"source": P[f"{prefix}src"], "event_id": P[f"{prefix}event"], "camera_id": camera,
                    "type": type_, "score": 0.9, "occurred_at": datetime.now(UTC).isoformat(),
                    "note": P[f"{prefix}extra"]}  # a field the wire format does not know: kept in `extra`
            if where:
                body.update(lon=where[0], lat=where[1])
            return call("POST", "/alerts", "ingest", body)

        # a: dispatched and acknowledged (open), with departments whistled, one of them reported
        a = alert(CAMERA, TYPES["a"], "")
        assert a["grid_code"] == GRID, a
        a = a["incident_id"]
        call("POST", f"/incidents/{a}/dispatch", "dispatcher", {"team_id": TEAM, "note": P["dispatch"]})
        call("POST", f"/incidents/{a}/acknowledge", "team", {"note": P["ack"]})
        call("POST", f"/incidents/{a}/whistle", "dispatcher",
             {"departments": [DEPARTMENT, "health"], "hours": 24, "note": P["whistle"]})
        call("POST", f"/incidents/{a}/departments/{DEPARTMENT}/report", "operator", {"note": P["report"]})
        # b: worked to resolved by the team (feedback still to give)
        b = httpx.post(server.url + "/alerts", headers=auth(keys["ingest"]), json={
            "source": "injection-test", "event_id": uuid.uuid4().hex, "camera_id": OTHER_CAMERA, "type": TYPES["b"],
            "score": 0.9, "occurred_at": datetime.now(UTC).isoformat()}).json()
        assert b["grid_code"] == GRID, b
        b = b["incident_id"]
        call("POST", f"/incidents/{b}/dispatch", "dispatcher", {"team_id": TEAM, "override": True,
                                                               "note": P["dispatch"]})
        call("POST", f"/incidents/{b}/acknowledge", "team", {"note": P["ack"]})
        call("POST", f"/incidents/{b}/on-scene", "team", {"note": P["onscene"]})
        call("POST", f"/incidents/{b}/resolve", "team", {"note": P["resolve"]})
        # c: reported from the field by the team, not sent yet
        c = call("POST", "/incidents", "team", {"type": TYPES["c"], "lon": HERE[0], "lat": HERE[1],
                                                "note": P["field"]})["id"]
        # an alert outside every grid, waiting in the queue (dismissed from the command room, with a reason)
        q = alert(CAMERA, TYPES["a"], "q-", OUTSIDE)
        assert q["grid_code"] is None, q
        yield {"server": server, "keys": keys, "a": a, "b": b, "c": c, "queued": q["alert_id"]}
    finally:
        server.stop()


class Visit:
    """A page in Chromium with every dialog written down with the step that was on when it
    opened (the watched page dismisses it), as well as what `Watched` records."""

    def __init__(self, browser, name: str, **context) -> None:
        self.w = Watched(browser, **context)  # registers its dialog handler before anything loads
        self.page = self.w.page
        self.page.set_default_timeout(15_000)
        self.name, self.step, self.dialogs = name, "signing in and loading the page", []
        self.page.on("dialog", lambda d: self.dialogs.append((f"{self.name}, {self.step}", d.message)))

    def __enter__(self) -> "Visit":
        return self

    def __exit__(self, kind, error, _tb) -> None:
        """A step that failed after a dialog or a script error (a script an injection broke
        stops before drawing anything) says so, naming the fields, not just the wait."""
        try:
            told = str(error).startswith("script injection")
            if error is not None and not told and (self.dialogs or self.w.errors):
                raise AssertionError(f"{self.name}: failed while {self.step}, after " + "; ".join(
                    named(self.dialogs) + [f"script error: {e}" for e in self.w.errors[:5]])) from error
        finally:
            self.w.close()

    def at(self, step: str) -> None:
        self.step = step

    def settle(self) -> None:
        """Time for what an injected element would do later (an <img> failing to load)."""
        self.page.wait_for_timeout(400)

    def no_dialogs(self) -> None:
        assert self.dialogs == [], "script injection: " + "; ".join(named(self.dialogs))

    def check(self) -> None:
        self.settle()
        self.no_dialogs()
        self.w.failed = [f for f in self.w.failed if "/incidents/stream" not in f]
        self.w.clean()
        assert self.page.locator('img[src="x"], svg[onload]').count() == 0


# Every interactive shape of the page's map, hovered and clicked the way a mouse would (the
# events go through Leaflet's own handlers): each tooltip and popup is drawn into the page.
# Returns the text they showed.
SWEEP = """() => {
  const tips = [], pops = [];
  const shapes = Array.from(document.querySelectorAll('.leaflet-map-pane .leaflet-interactive'));
  for (const el of shapes) {
    if (!el.isConnected) continue;
    el.dispatchEvent(new MouseEvent('mouseover', {bubbles: true}));
    document.querySelectorAll('.leaflet-tooltip').forEach(t => tips.push(t.textContent));
    el.dispatchEvent(new MouseEvent('mouseout', {bubbles: true}));
    if (el.isConnected) {
      el.dispatchEvent(new MouseEvent('click', {bubbles: true}));
      document.querySelectorAll('.leaflet-popup-content').forEach(p => pops.push(p.textContent));
    }
  }
  return {shapes: shapes.length, tips: tips, pops: pops};
}"""

# Every overlay of the layer control shown (cameras are hidden at first).
ALL_OVERLAYS = """() => document.querySelectorAll('.leaflet-control-layers-overlays input[type=checkbox]')
  .forEach(box => { if (!box.checked) box.click(); })"""

# Each incident's own popup (a click on its marker opens the side panel instead).
INCIDENT_POPUPS = """() => Object.values(gw.room.incidents.all).map(i => {
  i.marker.openPopup();
  const text = i.marker.getPopup().getElement().querySelector('.leaflet-popup-content').textContent;
  i.marker.closePopup();
  return text;
})"""


def sweep(v: Visit, what: str) -> dict:
    v.at(f"hovering and clicking {what}")
    seen = v.page.evaluate(SWEEP)
    assert seen["shapes"] > 0, what
    v.settle()
    v.no_dialogs()
    return seen


def shows(texts, tag: str) -> bool:
    return any(P[tag] in t for t in texts)


def test_command_room(world, browser):
    server, a, b, c = world["server"], world["a"], world["b"], world["c"]
    with Visit(browser, "/maps/") as v:
        page = v.page
        login(v.w, server, world["keys"]["dispatcher"], "/maps/")
        v.at("waiting for the page to be drawn")
        page.wait_for_function("document.getElementById('gw-live').textContent === 'live'", timeout=15000)
        assert P["key-disp"] in page.locator(".gw-me").text_content()
        # one more alert outside every grid, arriving live (the stream's path into the queue)
        v.at("receiving a live alert")
        queued = page.locator(".gw-unassigned").count()
        r = httpx.post(server.url + "/alerts", headers=auth(world["keys"]["ingest"]), json={
            "source": P["q-src"], "event_id": uuid.uuid4().hex, "camera_id": OTHER_CAMERA, "type": TYPES["b"],
            "score": 0.9, "occurred_at": datetime.now(UTC).isoformat(), "lon": OUTSIDE[0], "lat": OUTSIDE[1],
            "note": P["q-extra"]})
        assert r.status_code == 201 and r.json()["grid_code"] is None, r.text
        page.wait_for_function(f"document.querySelectorAll('.gw-unassigned').length > {queued}")
        page.locator(f"#gw-alert-rows [data-alert='{r.json()['alert_id']}']").wait_for()
        assert P["label-b"] in page.locator("#gw-alert-rows").text_content()

        v.at("showing every layer")
        page.evaluate(ALL_OVERLAYS)
        page.wait_for_function("document.querySelectorAll('.leaflet-map-pane .leaflet-interactive').length > 600")
        seen = sweep(v, "the map")
        tips = seen["tips"]
        for tag in ("camera", "team", "grid", "village", "township"):
            assert shows(tips, tag), f"{tag} not shown in any tooltip"
        assert any("the grid's page" in p for p in seen["pops"])
        v.at("opening the incidents' popups")
        popups = page.evaluate(INCIDENT_POPUPS)
        assert len(popups) >= 2 and shows(popups, "team") and shows(popups, "grid")

        # every incident in the list, opened from its row
        v.at("opening the incident list")
        page.click(".gw-tabs button[data-tab=list]")
        rows = page.eval_on_selector_all("#gw-incident-rows [data-incident]",
                                         "rs => rs.map(r => Number(r.getAttribute('data-incident')))")
        assert {a, c} <= set(rows), rows
        list_text = page.locator("#gw-incident-rows").text_content()
        assert P["label-a"] in list_text and P["grid"] in list_text and P["team"] in list_text
        details = {}
        for iid in rows:
            v.at(f"opening incident {iid} from the list")
            page.click(".gw-tabs button[data-tab=list]")
            page.click(f"#gw-incident-rows [data-incident='{iid}']")
            details[iid] = open_detail(page, iid)
        history = details[a]
        for tag in ("dispatch", "ack", "whistle", "report", "key-disp", "key-team", "key-op", "label-a", "grid",
                    "village", "township", "team", "dept"):
            assert P[tag] in history, f"{FIELDS[tag]} not shown in incident {a}'s panel"
        assert P["field"] in details[c] and P["label-c"] in details[c]

        # incident a's whistle form (department names)
        page.click(".gw-tabs button[data-tab=list]")
        page.click(f"#gw-incident-rows [data-incident='{a}']")
        open_detail(page, a)
        v.at(f"incident {a}: the whistle form")
        page.click("#gw-detail button[data-action=whistle]")
        assert P["dept"] in page.locator("#gw-form").text_content()
        page.click("#gw-form [data-cancel]")

        # incident c: the teams it could be sent to
        v.at(f"incident {c}: the recommended teams")
        page.click(".gw-tabs button[data-tab=list]")
        page.click(f"#gw-incident-rows [data-incident='{c}']")
        open_detail(page, c)
        page.click("#gw-detail button[data-action=dispatch]")
        page.wait_for_selector(".gw-teams")
        assert P["team"] in page.locator(".gw-teams").text_content()
        page.click("#gw-form [data-cancel]")

        # incident b, resolved: the list asks the API for it
        v.at(f"opening resolved incident {b} from the list")
        page.click(".gw-tabs button[data-tab=list]")
        page.select_option("#gw-list select[name=status]", "resolved")
        page.click(f"#gw-incident-rows [data-incident='{b}']")
        detail = open_detail(page, b)
        for tag in ("resolve", "onscene", "label-b", "key-team"):
            assert P[tag] in detail, f"{FIELDS[tag]} not shown in incident {b}'s panel"
        page.click(".gw-tabs button[data-tab=list]")
        page.select_option("#gw-list select[name=status]", "")

        # the unassigned queue: the alert opened from its row, then dismissed with a reason
        v.at("opening the unassigned alert")
        page.click(".gw-tabs button[data-tab=list]")
        row = page.locator(f"#gw-alert-rows [data-alert='{world['queued']}']")
        assert P["label-a"] in row.text_content()
        row.click()
        page.wait_for_selector("#gw-detail form[data-form=dismiss]")
        assert P["label-a"] in page.locator("#gw-detail h2").text_content()
        v.at("dismissing the unassigned alert")
        page.fill("#gw-detail textarea[name=reason]", P["dismiss"])
        page.click("#gw-detail form[data-form=dismiss] button")
        message = page.locator("#gw-detail .gw-message")
        message.wait_for(state="visible")
        assert message.text_content() == "Dismissed: " + P["dismiss"]
        page.wait_for_function("id => !document.querySelector(`#gw-alert-rows [data-alert='${id}']`)",
                               arg=world["queued"], timeout=5000)
        v.check()


def open_detail(page, iid: int) -> str:
    """The panel of incident `iid` once drawn (its history included): its text."""
    page.wait_for_function("""id => {
      const d = document.getElementById('gw-detail');
      return !d.hidden && d.querySelector('table.gw-history') && d.textContent.includes('Incident ' + id + ' ·');
    }""", arg=iid, timeout=5000)
    return page.locator("#gw-detail").text_content()


def test_heatmap_and_timelapse(world, browser):
    server = world["server"]
    with Visit(browser, "/maps/heatmap") as v:
        page = v.page
        login(v.w, server, world["keys"]["dispatcher"], f"/maps/heatmap?township={TOWNSHIP}")
        v.at("waiting for the page to be drawn")
        page.wait_for_selector("path.gw-grid")
        assert P["township"] in page.locator(".gw-panel").text_content()
        options = page.locator("select[name=township]").text_content()
        assert P["township"] in options
        page.evaluate(ALL_OVERLAYS)
        tips = sweep(v, "the heat map")["tips"]
        assert shows(tips, "grid")
        v.check()

        v.name = "/maps/timelapse"
        v.at("waiting for the page to be drawn")
        page.goto(f"{server.url}/maps/timelapse?township={TOWNSHIP}")
        page.wait_for_selector(".leaflet-control-layers")
        assert P["township"] in page.locator(".gw-panel").text_content()
        assert page.locator(".gw-label", has_text=P["township"]).count() == 1  # the base map's label
        v.at("playing the time-lapse")
        page.evaluate("""() => Object.values(window).forEach(x => {
          if (x instanceof L.Map && x.timeDimension) {
            x.timeDimension.setCurrentTimeIndex(x.timeDimension.getAvailableTimes().length - 1);
          }
        })""")
        v.check()


def test_grid_page(world, browser):
    server = world["server"]
    with Visit(browser, f"/maps/grids/{GRID}") as v:
        page = v.page
        login(v.w, server, world["keys"]["dispatcher"], f"/maps/grids/{GRID}")
        v.at("waiting for the page to be drawn")
        page.wait_for_selector("path.gw-grid")
        assert page.locator(".gw-panel h1").text_content() == f"{P['grid']} ({GRID})"
        assert page.title() == f"gridwatch · {P['grid']}"
        tips = sweep(v, "the grid's map")["tips"]
        for tag in ("grid", "team", "camera"):
            assert shows(tips, tag), f"{tag} not shown in any tooltip"
        v.check()


def test_field_page(world, browser):
    server, a, b = world["server"], world["a"], world["b"]
    with Visit(browser, "/field", viewport=(390, 844), is_mobile=True, has_touch=True,
               geolocation={"latitude": HERE[1], "longitude": HERE[0]}, permissions=["geolocation"]) as v:
        page = v.page
        login(v.w, server, world["keys"]["team"], "/field")
        v.at("waiting for the page to be drawn")
        assert page.url.endswith("/field")
        page.wait_for_selector(f"#gf-assignments [data-incident='{a}']")
        page.wait_for_selector(f"#gf-done [data-incident='{b}']")
        assert page.title() == f"gridwatch · {P['team']}"
        assert P["team"] in page.locator(".gf-who").text_content()
        card = page.locator(f"#gf-assignments [data-incident='{a}']").text_content()
        for tag in ("label-a", "grid", "village", "township", "key-disp"):
            assert P[tag] in card, f"{FIELDS[tag]} not shown on the assignment's card"
        done = page.locator(f"#gf-done [data-incident='{b}']").text_content()
        assert P["label-b"] in done and P["grid"] in done
        assert P["label-c"] in page.locator("#gf-report select[name=type]").text_content()
        tips = sweep(v, "the phone's map")["tips"]
        assert shows(tips, "label-a")
        # the feedback step of the finished one opened (its form; nothing sent)
        v.at(f"opening the feedback step of incident {b}")
        page.click(f"#gf-done [data-incident='{b}'] button[data-step=feedback]")
        page.wait_for_selector(f"#gf-done [data-incident='{b}'] .gf-step-form textarea")
        v.check()
