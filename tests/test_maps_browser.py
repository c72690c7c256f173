"""The map pages in a real headless Chromium with every non-loopback request blocked:
all 127 grids drawn, the heat layer there, nothing fails, no console errors, data shown as
text, live updates without a reload, a saved heat map that opens from disk, and the API docs."""

import os
import re
import shutil
import subprocess
import uuid
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlparse

import httpx
import psycopg
import pytest
from conftest import GRIDWATCH, ROOT, Server, auth

from gridwatch.demo.history import load_history
from gridwatch.geo.grid_index import GridIndex

playwright = pytest.importorskip("playwright.sync_api", reason="make test installs playwright")
ARTIFACTS = ROOT / "tests" / "artifacts"
DOCS = ROOT / "docs"
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


@pytest.fixture(scope="module")
def browser():
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.fail("chromium is not installed: `make test` installs it (apt-get install chromium)")
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run", "--disable-quic"])
        yield browser
        browser.close()


class Watched:
    """A page whose failures are all written down; only loopback (and file:) may be reached."""

    def __init__(self, browser, allow_file: bool = False) -> None:
        self.context = browser.new_context(viewport={"width": 1400, "height": 900})
        self.page = self.context.new_page()
        self.blocked, self.failed, self.errors, self.dialogs = [], [], [], []
        self.context.route("**/*", self._route(allow_file))
        self.page.on("requestfailed", lambda r: self.failed.append(f"{r.url} {r.failure}"))
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))

    def _route(self, allow_file: bool):
        def handle(route):
            url = urlparse(route.request.url)
            local = url.scheme in ("data", "blob") or (url.scheme == "file" and allow_file) or \
                url.hostname in ("127.0.0.1", "localhost")
            if local:
                route.continue_()
            else:
                self.blocked.append(route.request.url)
                route.abort()
        return handle

    def clean(self) -> None:
        assert self.blocked == [], f"requests left the machine: {self.blocked[:5]}"
        assert self.failed == [], f"failed requests: {self.failed[:5]}"
        assert self.errors == [], f"console errors: {self.errors[:5]}"
        assert self.dialogs == [], f"a dialog opened: {self.dialogs}"

    def close(self) -> None:
        self.context.close()


def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name))
    DOCS.mkdir(exist_ok=True)
    shutil.copyfile(ARTIFACTS / name, DOCS / name)


def login(watched: Watched, server: Server, key: str, page: str) -> None:
    watched.page.goto(f"{server.url}/login?key={key}&next={page}")
    watched.page.wait_for_load_state("networkidle")


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
    assert "/maps/static" not in out.read_text()
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
