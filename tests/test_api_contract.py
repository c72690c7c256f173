"""The API contract: /openapi.json is valid OpenAPI, declares what every JSON route really
sends (typed GeoJSON and JSON answers from gridwatch/api/schemas.py, problem+json for every
error), real answers of a working county match it, and a client generated from it
(openapi-python-client) reads a real server's grids and incidents as typed objects."""

import importlib
import json
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import cv2
import httpx
import numpy as np
import psycopg
import pytest
from conftest import Server, auth
from openapi_schema_validator import OAS31Validator
from openapi_spec_validator import validate

from gridwatch.api import access
from gridwatch.api.auth import create_key

JSON_TYPES = ("application/json", "application/geo+json", "application/schema+json",
              "application/vnd.oai.openapi+json")
# Answers that are not JSON, by design.
OTHER_TYPES = ("text/html", "image/jpeg", "text/event-stream", "application/vnd.mapbox-vector-tile")
# 2xx answers without a body, and an operation that only ever redirects.
NO_BODY = {("PUT", "/alerts/{alert_id}/snapshot", "201")}
REDIRECTS = {("POST", "/logout")}
# Errors that are not problem+json, by design: the sign-in form answers a person with the form
# again, and /health answers monitors in its own shape while the database is down.
NOT_PROBLEMS = {("POST", "/login", "401"), ("POST", "/login", "403"), ("GET", "/health", "503")}
PROBLEM_REF = "#/components/schemas/Problem"


@pytest.fixture(scope="module")
def doc(client) -> dict:
    return client.get("/openapi.json").json()


def operations(doc: dict):
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            yield method.upper(), path, op


def resolve(doc: dict, schema: dict) -> dict:
    while "$ref" in schema:
        schema = doc["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def test_the_document_is_valid_openapi(doc):
    validate(doc)
    assert doc["openapi"].startswith("3.1")
    # FastAPI's own 422 (a list of pydantic errors) is not what gridwatch sends
    assert not {"HTTPValidationError", "ValidationError"} & doc["components"]["schemas"].keys()
    assert doc["components"]["schemas"]["Problem"] == access.PROBLEM_SCHEMA


def test_every_json_operation_declares_what_it_answers(doc):
    for method, path, op in operations(doc):
        ok = {status: r for status, r in op["responses"].items() if status.startswith("2")}
        assert ok or (method, path) in REDIRECTS, f"{method} {path} declares no 2xx answer"
        for status, response in ok.items():
            content = response.get("content", {})
            if not content:
                assert (method, path, status) in NO_BODY, f"{method} {path} {status}: no body declared"
                continue
            for media, declared in content.items():
                assert media in JSON_TYPES + OTHER_TYPES, f"{method} {path} {status}: {media}"
                schema = resolve(doc, declared.get("schema", {}))
                assert schema, f"{method} {path} {status} {media}: empty schema"
                if media in JSON_TYPES:
                    assert schema.get("type") == "object" and schema.get("properties"), \
                        f"{method} {path} {status}: the answer's members are not declared"


def test_every_error_is_declared_as_problem_details(doc):
    for method, path, op in operations(doc):
        assert "422" in op["responses"], f"{method} {path}: no 422 (a path or query not plain text)"
        for status, response in op["responses"].items():
            if status[0] not in "45" or (method, path, status) in NOT_PROBLEMS:
                continue
            schema = response.get("content", {}).get("application/problem+json", {}).get("schema")
            assert schema == {"$ref": PROBLEM_REF}, f"{method} {path} {status}: not problem+json"


def test_geojson_is_declared_as_such(doc):
    geojson = {f"{m} {p}" for m, p, op in operations(doc)
               for s, r in op["responses"].items() if "application/geo+json" in r.get("content", {})}
    assert {"GET /grids", "GET /grids/{code}", "GET /villages", "GET /townships/{code}", "GET /cameras",
            "GET /alerts", "GET /alerts/{alert_id}", "GET /incidents", "GET /incidents/{incident_id}",
            "POST /incidents/{incident_id}/{action}", "GET /patrols", "GET /patrols/{team_id}",
            "GET /patrols/{team_id}/assignments"} <= geojson
    grid = doc["components"]["schemas"]["GridFeature"]
    assert grid["properties"]["geometry"] == {"$ref": "#/components/schemas/MultiPolygon"}
    assert resolve(doc, grid["properties"]["properties"])["additionalProperties"] is True  # the file's own


# -- real answers ---------------------------------------------------------------------------

def alert(**fields) -> dict:
    return {"source": "contract", "event_id": uuid.uuid4().hex, "camera_id": "CAM-0002", "type": "road_obstruction",
            "score": 0.9, "occurred_at": (datetime.now(UTC) - timedelta(hours=2)).isoformat(), **fields}


def conforms(doc: dict, method: str, path: str, response: httpx.Response) -> None:
    """The answer is one the document declares for the operation: its status, its media
    type, and a body valid against the schema (formats such as date-time checked)."""
    declared = doc["paths"][path][method.lower()]["responses"]
    assert str(response.status_code) in declared, (method, path, response.status_code, response.text[:300])
    media = response.headers.get("content-type", "").split(";")[0]
    content = declared[str(response.status_code)].get("content", {})
    assert media in content, (method, path, response.status_code, media, list(content))
    if media in OTHER_TYPES:
        return
    schema = {**content[media]["schema"], "components": doc["components"]}
    OAS31Validator(schema, format_checker=OAS31Validator.FORMAT_CHECKER).validate(response.json())


def test_answers_of_a_working_county_match_their_schemas(client, keys, doc, db_url):
    """Each JSON route asked as a client would, in a county with alerts in and out of the
    grids, a dispatched and whistled incident with a photo, pings and a calibrated camera;
    and a few refusals."""
    admin, ingest = auth(keys["admin"]), auth(keys["ingest"])

    def call(method, path, template=None, expect=None, headers=admin, **kw) -> httpx.Response:
        r = client.request(method, path, headers=headers, **kw)
        if expect is None:
            assert r.status_code < 300, (method, path, r.status_code, r.text[:300])
        else:
            assert r.status_code == expect, (method, path, r.status_code, r.text[:300])
        conforms(doc, method, template or path.split("?")[0], r)
        return r

    placed = call("POST", "/alerts", headers=ingest, json=alert(lon=100.99, lat=36.90, box=[10, 10, 50, 60],
                                                                 frame_size=[640, 480], note="extra")).json()
    iid, team, grid = placed["incident_id"], placed["team_id"], placed["grid_code"]
    call("POST", "/alerts", headers=ingest, expect=201, json=alert(event_id="repeat-me", lon=100.99, lat=36.90))
    call("POST", "/alerts", headers=ingest, expect=200, json=alert(event_id="repeat-me", lon=100.99, lat=36.90))
    outside = [call("POST", "/alerts", headers=ingest, json=alert(lon=101.40, lat=36.60)).json()["alert_id"]
               for _ in range(2)]
    call("POST", "/alerts/batch", headers=ingest, json=[alert(camera_id="CAM-0003"), alert(camera_id="CAM-0004")])
    call("POST", f"/alerts/{outside[0]}/assign", "/alerts/{alert_id}/assign", json={"grid_code": grid})
    call("POST", f"/alerts/{outside[1]}/dismiss", "/alerts/{alert_id}/dismiss", json={"reason": "a reflection"})
    call("POST", f"/incidents/{iid}/dispatch", "/incidents/{incident_id}/{action}", json={"team_id": team})
    call("POST", f"/incidents/{iid}/whistle", "/incidents/{incident_id}/whistle", json={})
    call("POST", f"/incidents/{iid}/acknowledge", "/incidents/{incident_id}/{action}")
    call("POST", f"/incidents/{iid}/close", "/incidents/{incident_id}/{action}", expect=409)
    with psycopg.connect(db_url) as conn:
        phone = auth(create_key(conn, "team", "contract phone", team)[1])
    ok, photo = cv2.imencode(".jpg", np.full((40, 60, 3), 128, np.uint8))
    assert ok
    call("POST", f"/incidents/{iid}/photos", "/incidents/{incident_id}/photos", expect=201,
         headers={**phone, "Content-Type": "image/jpeg"}, content=photo.tobytes())
    call("POST", f"/patrols/{team}/positions", "/patrols/{team_id}/positions", headers=phone,
         json={"lon": 100.99, "lat": 36.9})
    call("POST", "/incidents", headers=phone, expect=201,
         json={"type": "sewer_overflow", "lon": 100.991, "lat": 36.901, "note": "water in the street"})
    call("PUT", "/cameras/CAM-0002/calibration", "/cameras/{camera_id}/calibration", json={
        "frame_size": [1920, 1080], "points": [
            {"pixel": [100, 1000], "lon": 101.0206, "lat": 36.8926},
            {"pixel": [1800, 1000], "lon": 101.0211, "lat": 36.8926},
            {"pixel": [1700, 500], "lon": 101.0213, "lat": 36.8934},
            {"pixel": [200, 500], "lon": 101.0204, "lat": 36.8934}]})
    call("PATCH", "/cameras/CAM-0002", "/cameras/{camera_id}", json={"zones": [
        {"name": "road", "type": "road_obstruction", "polygon": [[0, 0.5], [1, 0.5], [1, 1]]}]})
    call("PATCH", "/alert-types/motion", "/alert-types/{type_}", json={"auto_dispatch": False})
    call("POST", "/grids/lookup", json={"points": [[100.99, 36.9], [101.4, 36.6]]})
    townships = (Path(__file__).parents[1] / "data" / "boundaries" / "townships.geojson").read_bytes()
    call("POST", "/admin/boundaries?dry_run=true", "/admin/boundaries", files={"file": ("t.geojson", townships)})
    for path, template in [
        ("/health", None), ("/grids/at?lon=100.99&lat=36.90", None), ("/grids?limit=2", None),
        (f"/grids/{grid}", "/grids/{code}"), ("/villages?limit=2", None),
        (f"/villages/{grid[:12]}", "/villages/{code}"),
        ("/townships?limit=2", None), (f"/townships/{grid[:9]}", "/townships/{code}"), ("/cameras?limit=3", None),
        ("/cameras?limit=3&view=true", None), ("/cameras/CAM-0002", "/cameras/{camera_id}"),
        ("/cameras/CAM-0002/video", "/cameras/{camera_id}/video"), ("/alerts", None), ("/alerts?unassigned=true", None),
        (f"/alerts/{placed['alert_id']}", "/alerts/{alert_id}"), (f"/alerts/{outside[1]}", "/alerts/{alert_id}"),
        ("/alert-types", None), ("/incidents", None), (f"/incidents/{iid}", "/incidents/{incident_id}"),
        ("/patrols", None), (f"/patrols/{team}", "/patrols/{team_id}"),
        (f"/patrols/{team}/assignments", "/patrols/{team_id}/assignments"),
        (f"/patrols/recommend?incident={iid}", None), ("/stats/grids", None), ("/stats/heat", None),
        ("/stats/hotspots", None), ("/stats/timeline", None), ("/stats/deadlines", None), ("/stats/response", None),
        ("/admin/audit?limit=5", None)]:
        call("GET", path, template)
    items = "/ogc/collections/{collection_id}/items"
    for path, template in [
        ("/ogc", None), ("/ogc/conformance", None), ("/ogc/api", None), ("/ogc/collections", None),
        ("/ogc/collections/incidents", "/ogc/collections/{collection_id}"),
        ("/ogc/collections/grids/queryables", "/ogc/collections/{collection_id}/queryables"),
        ("/ogc/collections/grids/items?limit=3", items), ("/ogc/collections/cameras/items?limit=3", items),
        ("/ogc/collections/incidents/items?status=dispatched", items), ("/ogc/collections/alerts/items", items),
        (f"/ogc/collections/grids/items/{grid}", items + "/{feature_id}"),
        (f"/ogc/collections/incidents/items/{iid}", items + "/{feature_id}")]:
        call("GET", path, template)
    call("GET", "/ogc/collections/grids/items?bbox-crs=EPSG:3857", items, expect=400)
    call("GET", "/tiles/grids/9/400/197.mvt", "/tiles/{layer}/{z}/{x}/{y}.mvt")
    call("GET", "/tiles/grids/30/0/0.mvt", "/tiles/{layer}/{z}/{x}/{y}.mvt", expect=400)
    call("GET", "/grids/at?lon=101.4&lat=36.6", expect=404)
    call("GET", "/grids/nowhere", "/grids/{code}", expect=404)
    call("GET", "/incidents?status=lost", expect=422)


# -- a generated client ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def generated(doc, tmp_path_factory):
    """A Python client generated from the document (openapi-python-client), imported."""
    out = tmp_path_factory.mktemp("client")
    (out / "openapi.json").write_text(json.dumps(doc))
    (out / "config.json").write_text(json.dumps({"package_name_override": "gridwatch_client",
                                                 # it reads JPEG answers and tiles as bytes (a File) then
                                                 "content_type_overrides": {
                                                     "image/jpeg": "application/octet-stream",
                                                     "application/vnd.mapbox-vector-tile":
                                                         "application/octet-stream"}}))
    bin_dir = str(Path(sys.executable).parent)  # its post-processing runs ruff, from this venv
    run = subprocess.run([f"{bin_dir}/openapi-python-client", "generate", "--path", str(out / "openapi.json"),
                          "--config", str(out / "config.json"), "--output-path", str(out / "gridwatch_client"),
                          "--meta", "none", "--fail-on-warning"], capture_output=True, text=True,
                         env={"PATH": f"{bin_dir}:/usr/bin:/bin", "HOME": str(out)})
    assert run.returncode == 0, run.stdout + run.stderr
    sys.path.insert(0, str(out))
    try:
        yield importlib.import_module("gridwatch_client")
    finally:
        sys.path.remove(str(out))
        for name in [m for m in sys.modules if m == "gridwatch_client" or m.startswith("gridwatch_client.")]:
            del sys.modules[name]


def test_a_generated_client_reads_a_real_servers_grids_and_incidents_as_typed_objects(generated, db_url, keys):
    api = importlib.import_module("gridwatch_client.api")
    models = importlib.import_module("gridwatch_client.models")
    post_alert = importlib.import_module("gridwatch_client.api.alerts.post_alert_alerts_post")
    get_grid = importlib.import_module("gridwatch_client.api.grids.get_grid_grids_code_get")
    get_incident = importlib.import_module("gridwatch_client.api.incidents.get_incident_incidents_incident_id_get")
    assert api is not None
    server = Server(db_url).start()
    try:
        with generated.AuthenticatedClient(base_url=server.url, token=keys["admin"]) as client:
            sent = models.AlertIn.from_dict(alert(type="illegal_dumping", lon=100.99, lat=36.90, box=[10, 10, 50, 60]))
            placed = post_alert.sync(client=client, body=sent)
            assert isinstance(placed, models.AlertResult) and placed.grid_code and placed.incident_id

            grid = get_grid.sync(code=placed.grid_code, client=client)
            assert isinstance(grid, models.Grid) and isinstance(grid.properties, models.GridProperties)
            assert grid.properties.code == placed.grid_code == grid.id and grid.boundary_version >= 1
            assert isinstance(grid.geometry, models.MultiPolygon) and len(grid.geometry.coordinates[0][0][0]) == 2

            incident = get_incident.sync(incident_id=placed.incident_id, client=client)
            assert isinstance(incident, models.IncidentDetail)
            props = incident.properties
            assert isinstance(props, models.IncidentDetailProperties) and props.grid_code == placed.grid_code
            assert isinstance(props.first_seen, datetime) and props.first_seen.tzinfo is not None
            assert props.status == models.IncidentDetailPropertiesStatus.NEW and props.team_suggested
            assert isinstance(props.alerts[0], models.IncidentAlert) and props.alerts[0].alert_id == placed.alert_id
            assert isinstance(props.history[0], models.IncidentEvent) and props.history[0].action == "created"
            assert isinstance(incident.geometry, models.Point)

            missing = get_grid.sync(code="000000000000000", client=client)  # a problem, typed too
            assert isinstance(missing, models.Problem) and missing.status == 404
    finally:
        server.stop()
