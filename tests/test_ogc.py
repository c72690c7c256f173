"""OGC API Features under /ogc: the documents, paging, bbox, datetime and queryables against
the database's own answers, bad input, and GDAL's OAPIF driver as a real client."""

import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pyogrio
import pytest
import shapely
from conftest import Server, auth

ALERT_TIMES = [datetime(2026, 11, d, 8, tzinfo=UTC) for d in (2, 3, 4)]


@pytest.fixture(scope="module")
def viewer(keys) -> dict:
    return auth(keys["viewer"])


@pytest.fixture(scope="module")
def alerts(client, keys) -> list[dict]:
    """Three alerts a day apart, in three grids."""
    placed = []
    for when, (lon, lat) in zip(ALERT_TIMES, [(100.99, 36.90), (101.15, 36.93), (100.80, 37.24)], strict=True):
        r = client.post("/alerts", headers=auth(keys["ingest"]), json={
            "source": "ogc", "event_id": uuid.uuid4().hex, "camera_id": "CAM-0001", "type": "flood_water",
            "score": 0.9, "occurred_at": when.isoformat(), "lon": lon, "lat": lat})
        assert r.status_code == 201, r.text
        placed.append(r.json())
    return placed


def test_landing_conformance_and_collections(client, viewer):
    landing = client.get("/ogc", headers=viewer).json()
    rels = {link["rel"]: link["href"] for link in landing["links"]}
    assert {"self", "service-desc", "service-doc", "conformance", "data"} <= rels.keys()
    assert rels["data"] == "http://testserver/ogc/collections"
    conformance = client.get("/ogc/conformance", headers=viewer).json()["conformsTo"]
    assert "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core" in conformance
    listed = client.get("/ogc/collections", headers=viewer).json()["collections"]
    assert [c["id"] for c in listed] == ["townships", "villages", "grids", "cameras", "incidents", "alerts"]
    grids = next(c for c in listed if c["id"] == "grids")
    minx, miny, maxx, maxy = grids["extent"]["spatial"]["bbox"][0]
    assert 100 < minx < maxx < 102 and 36 < miny < maxy < 38
    assert any(link["rel"] == "items" for link in grids["links"])
    api = client.get("/ogc/api", headers=viewer)
    assert api.headers["content-type"].startswith("application/vnd.oai.openapi+json")
    assert set(api.json()["paths"]) >= {"/ogc/collections/{collection_id}/items"}
    assert all(p.startswith("/ogc") for p in api.json()["paths"])


def test_pages_of_grids_follow_next_links_to_every_grid(client, viewer, conn):
    codes, url, pages = [], "/ogc/collections/grids/items?limit=50", 0
    while url:
        page = client.get(url, headers=viewer)
        assert page.status_code == 200 and page.headers["content-type"] == "application/geo+json"
        body = page.json()
        assert body["numberMatched"] == 127 and body["numberReturned"] == len(body["features"])
        codes += [f["id"] for f in body["features"]]
        url = next((link["href"] for link in body["links"] if link["rel"] == "next"), None)
        pages += 1
    assert pages == 3 and codes == sorted(codes)
    assert codes == [r[0] for r in conn.execute("SELECT code FROM grids ORDER BY code")]
    second = client.get("/ogc/collections/grids/items?limit=50&offset=50", headers=viewer).json()
    prev = next(link["href"] for link in second["links"] if link["rel"] == "prev")
    assert "offset=0" in prev


def test_bbox_selects_what_intersects_it(client, viewer, conn):
    box = (100.95, 36.88, 101.0, 36.92)
    body = client.get("/ogc/collections/grids/items", headers=viewer,
                      params={"bbox": ",".join(map(str, box)), "limit": 1000}).json()
    expected = [r[0] for r in conn.execute("SELECT code FROM grids WHERE ST_Intersects(geom, "
                                           "ST_MakeEnvelope(%s, %s, %s, %s, 4326)) ORDER BY code", box)]
    assert 0 < len(expected) < 127 and [f["id"] for f in body["features"]] == expected
    assert body["numberMatched"] == len(expected)


def test_one_feature_equals_the_database(client, viewer, conn):
    code, wkb = conn.execute("SELECT code, ST_AsBinary(geom) FROM grids ORDER BY code LIMIT 1").fetchone()
    feature = client.get(f"/ogc/collections/grids/items/{code}", headers=viewer).json()
    assert feature["id"] == code and feature["properties"]["code"] == code
    assert shapely.equals_exact(shapely.geometry.shape(feature["geometry"]), shapely.from_wkb(wkb), 1e-7)
    assert {link["rel"] for link in feature["links"]} == {"self", "collection"}


def test_datetime_selects_alerts_by_when_they_occurred(client, viewer, alerts):
    def ids(value: str) -> list[int]:
        body = client.get("/ogc/collections/alerts/items", headers=viewer, params={"datetime": value}).json()
        return [f["id"] for f in body["features"]]

    a, b, c = (x["alert_id"] for x in alerts)
    assert ids("2026-11-03T08:00:00Z") == [b]
    assert ids("2026-11-03") == [b]
    assert ids("2026-11-03T00:00:00Z/..") == [b, c]
    assert ids("../2026-11-03T08:00:00+00:00") == [a, b]
    assert ids("2026-11-02/2026-11-03") == [a, b]
    assert ids("2026-11-03t08:00:00z") == [b]  # RFC 3339 allows lower case


def test_queryables_filter_by_equality(client, viewer, conn, alerts):
    q = client.get("/ogc/collections/grids/queryables", headers=viewer)
    assert q.headers["content-type"] == "application/schema+json"
    assert q.json()["properties"]["township_code"] == {"type": "string"}
    township = conn.execute("SELECT township_code FROM grids ORDER BY code LIMIT 1").fetchone()[0]
    body = client.get(f"/ogc/collections/grids/items?township_code={township}&limit=200", headers=viewer).json()
    expected = conn.execute("SELECT count(*) FROM grids WHERE township_code = %s", [township]).fetchone()[0]
    assert body["numberMatched"] == expected == len(body["features"]) > 0
    assert {f["properties"]["township_code"] for f in body["features"]} == {township}
    incidents = client.get("/ogc/collections/incidents/items?status=new&type=flood_water", headers=viewer).json()
    assert incidents["numberMatched"] == 3 and {f["properties"]["status"] for f in incidents["features"]} == {"new"}


@pytest.mark.parametrize("path, status, words", [
    ("/ogc/collections/roads", 404, "no collection 'roads'"),
    ("/ogc/collections/roads/items", 404, "no collection 'roads'"),
    ("/ogc/collections/grids/items/999", 404, "no feature '999' in grids"),
    ("/ogc/collections/alerts/items/abc", 404, "whole numbers"),
    # found by hostile testing: digits that are not ASCII were a 500, or a second name of a feature
    ("/ogc/collections/alerts/items/%C2%B2", 404, "whole numbers"),
    ("/ogc/collections/alerts/items/%EF%BC%91", 404, "whole numbers"),
    ("/ogc/collections/alerts/items/0001", 404, "whole numbers"),
    ("/ogc/collections/alerts/items?datetime=2026-W48-1", 422, "not an RFC 3339"),
    ("/ogc/collections/alerts/items?datetime=2026-12-01T00Z", 422, "not an RFC 3339"),
    ("/ogc/collections/grids/items?bbox=100,36,101", 422, "four numbers"),
    ("/ogc/collections/alerts/items?datetime=2026-13-01", 422, "not an RFC 3339"),
    ("/ogc/collections/alerts/items?datetime=2026-11-01T00:00:00", 422, "no time zone"),
    ("/ogc/collections/alerts/items?datetime=2026-11-05/2026-11-01", 422, "ends before it starts"),
    ("/ogc/collections/grids/items?datetime=2026-11-01", 422, "grids has no time"),
    ("/ogc/collections/grids/items?limit=10001", 422, "limit"),
    ("/ogc/collections/grids/items?bbox-crs=http://www.opengis.net/def/crs/EPSG/0/3857", 400,
     "supported: http://www.opengis.net/def/crs/OGC/1.3/CRS84"),
    ("/ogc/collections/grids/items?colour=red", 400, "unknown query parameter 'colour'"),
    ("/ogc/collections/cameras/items?active=maybe", 422, "true or false"),
    ("/ogc/collections?f=xml", 400, "supported: json"),
])
def test_bad_requests_are_refused_with_the_reason(client, viewer, path, status, words):
    r = client.get(path, headers=viewer)
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json" and words in r.json()["detail"], r.json()


def test_every_ogc_route_needs_a_key(client):
    for path in ["/ogc", "/ogc/collections", "/ogc/collections/grids/items"]:
        assert client.get(path).status_code == 401


@pytest.fixture(scope="module")
def server(db_url):
    s = Server(db_url).start()
    yield s
    s.stop()


def test_gdal_reads_every_grid_with_a_viewer_key_and_nothing_without(server, keys, conn, tmp_path):
    """GDAL's OAPIF driver (inside pyogrio), the key sent as a GIS user sets it. (GDAL 3.12's
    OAPIF driver sends its own Accept header, which makes it ignore GDAL_HTTP_HEADERS: the key
    goes in a header file, GDAL_HTTP_HEADER_FILE.)"""
    url = f"OAPIF:{server.url}/ogc"
    with pytest.raises(pyogrio.errors.DataSourceError, match="401"):
        pyogrio.read_dataframe(url, layer="grids")
    headers = tmp_path / "gridwatch.headers"
    headers.write_text(f"Authorization: Bearer {keys['viewer']}\n")
    pyogrio.set_gdal_config_options({"GDAL_HTTP_HEADER_FILE": str(headers)})
    try:
        frame = pyogrio.read_dataframe(url, layer="grids")
    finally:
        pyogrio.set_gdal_config_options({"GDAL_HTTP_HEADER_FILE": None})
    assert len(frame) == 127
    stored = dict(conn.execute("SELECT code, ST_AsBinary(geom) FROM grids").fetchall())
    for code, geom in zip(frame["code"], frame.geometry, strict=True):
        assert shapely.equals_exact(geom, shapely.from_wkb(stored[code]), 1e-7), code


EVIL = "<img src=x onerror=alert(1)>${alert(2)}\"'</script><script>alert(3)</script>"


def test_the_pages_draw_features_from_local_assets_and_never_run_data(server, keys, browser, conn):
    """f=html: a person browses from the landing page to a page of grids on a map, and a
    camera named with script in every context is shown as text (Chromium, listening for dialogs)."""
    from browser import Watched, login, shot

    r = httpx.post(server.url + "/cameras", headers=auth(keys["admin"]), json={
        "id": "EVIL-1", "name": EVIL, "lon": 100.99, "lat": 36.90, "heading_deg": 10, "fov_deg": 60, "range_m": 80})
    assert r.status_code == 201, r.text
    w = Watched(browser)
    try:
        login(w, server, keys["viewer"], "/ogc")
        page = w.page
        assert page.title() == "gridwatch · OGC API Features"
        page.click("text=the collections")
        page.click("a:text-is('grids')")
        page.click("text=Governance grids: the features")
        page.wait_for_function("document.querySelectorAll('#ogc-map path.leaflet-interactive').length === 10")
        assert page.locator("tbody tr").count() == 10
        page.click("text=the next page")
        page.wait_for_function("document.querySelectorAll('#ogc-map path.leaflet-interactive').length === 10")
        assert "features 11–20 of 127" in page.locator("h1").text_content()
        shot(page, "ogc-grids.png")
        page.goto(f"{server.url}/ogc/collections/cameras/items/EVIL-1?f=html")
        page.wait_for_selector("#ogc-map .leaflet-interactive")
        assert EVIL in page.locator("tbody").text_content()
        page.hover("#ogc-map .leaflet-interactive")
        w.clean()  # nothing left the machine, nothing failed, no console error, no dialog
    finally:
        w.close()


def test_a_browser_without_a_key_is_sent_to_sign_in(server):
    r = httpx.get(server.url + "/ogc/collections?f=html", headers={"Accept": "text/html"})
    assert r.status_code == 303 and r.headers["location"].startswith("/login?next=")


def test_gdal_pages_through_ten_thousand_incidents(server, client, keys, conn, tmp_path):
    """10,000 alerts two hours apart at the grids' inner points, one incident each; GDAL's OAPIF
    driver follows the next links through all of them (and the module's others)."""
    points = conn.execute("SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) AS p FROM grids) g").fetchall()
    start = datetime.now(UTC) - timedelta(hours=2 * 10_000 + 1)
    batch = [{"source": "ogc-many", "event_id": f"many-{i}", "camera_id": f"CAM-{i % 400 + 1:04d}",
              "type": "illegal_dumping", "score": 0.6, "occurred_at": (start + timedelta(hours=2 * i)).isoformat(),
              "lon": points[i % len(points)][0], "lat": points[i % len(points)][1]} for i in range(10_000)]
    r = client.post("/alerts/batch", json=batch, headers=auth(keys["ingest"]))
    assert r.status_code in (200, 201), r.text[:500]
    stored = {row[0] for row in conn.execute("SELECT id FROM incidents")}
    assert len(stored) >= 10_000
    headers = tmp_path / "gridwatch.headers"
    headers.write_text(f"Authorization: Bearer {keys['viewer']}\n")
    pyogrio.set_gdal_config_options({"GDAL_HTTP_HEADER_FILE": str(headers)})
    try:
        frame = pyogrio.read_dataframe(f"OAPIF:{server.url}/ogc", layer="incidents")
    finally:
        pyogrio.set_gdal_config_options({"GDAL_HTTP_HEADER_FILE": None})
    assert set(frame["id"]) == stored and len(frame) == len(stored)


def test_the_boundaries_may_be_opened_to_readers_without_a_key(settings, keys):
    """GRIDWATCH_OGC_PUBLIC_BOUNDARIES: townships, villages and grids (and the documents that
    lead to them) without a key; incidents, alerts and cameras still need one, and a key that
    is sent is checked as always."""
    from fastapi.testclient import TestClient

    from gridwatch.api.app import create_app
    from gridwatch.config import ApiSettings

    with TestClient(create_app(settings, ApiSettings(ogc_public_boundaries=True))) as open_client:
        for path in ["/ogc", "/ogc/conformance", "/ogc/api", "/ogc/collections/grids",
                     "/ogc/collections/grids/queryables", "/ogc/collections/villages/items?limit=2",
                     "/ogc/collections/grids/items/632223100001001"]:
            assert open_client.get(path).status_code == 200, path
        listed = open_client.get("/ogc/collections").json()["collections"]
        assert [c["id"] for c in listed] == ["townships", "villages", "grids"]
        for path in ["/ogc/collections/incidents/items", "/ogc/collections/cameras", "/tiles/grids/0/0/0.mvt",
                     "/grids", "/ogc/collections/grids/items/../../incidents/items"]:
            assert open_client.get(path).status_code in (401, 404), path
        assert open_client.get("/ogc/collections/grids/items", headers=auth("gw_not-a-key")).status_code == 401
        full = open_client.get("/ogc/collections", headers=auth(keys["viewer"])).json()["collections"]
        assert len(full) == 6


def test_a_page_links_its_json_and_pages_back_from_beyond_the_end(client, viewer):
    """Found by trying the pages as an analyst: a page's JSON link led to the page again, and
    from beyond the last page "previous" led to another empty one."""
    page = client.get("/ogc/collections/grids/items?f=html&limit=5", headers=viewer).text
    assert 'href="http://testserver/ogc/collections/grids/items?limit=5">application/geo+json' in page
    beyond = client.get("/ogc/collections/grids/items?limit=10&offset=5000", headers=viewer).json()
    prev = next(link["href"] for link in beyond["links"] if link["rel"] == "prev")
    assert "offset=117" in prev and not beyond["features"]
    assert "no features from 5,001 on (127 in all)" in client.get(
        "/ogc/collections/grids/items?f=html&limit=10&offset=5000", headers=viewer).text


def test_links_come_from_the_public_url_when_it_is_set(settings, keys):
    """Found by hostile testing: the links followed whatever Host the client wrote. With
    GRIDWATCH_PUBLIC_URL set they name the server's own address."""
    from fastapi.testclient import TestClient

    from gridwatch.api.app import create_app
    from gridwatch.config import ApiSettings

    app = create_app(settings, ApiSettings(public_url="https://gridwatch.county.example/"))
    with TestClient(app) as c:
        body = c.get("/ogc/collections/grids/items?limit=2", headers={**auth(keys["viewer"]), "Host": "evil.example"})
        hrefs = [link["href"] for link in body.json()["links"]]
        assert hrefs and all(h.startswith("https://gridwatch.county.example/ogc/") for h in hrefs), hrefs
        landing = c.get("/ogc", headers={**auth(keys["viewer"]), "Host": "evil.example"}).json()
        assert all(link["href"].startswith("https://gridwatch.county.example/") for link in landing["links"])
