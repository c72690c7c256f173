"""The API fuzzed from its own OpenAPI document (schemathesis 4): every operation gets
generated requests, valid and invalid, sent in-process to the real application on this
module's database, with a key of a role the access table lets in. Every answer must be
neither a 5xx, nor an error that is not problem+json; its status and media type must be
ones the document declares, and its body must match the declared schema.

The run inside the suite is bounded: 10 examples per operation, the same ones every run
(derandomized, so the suite never fails by chance), one role per operation (the roles of the
table shared out so that each is used). `make fuzz` raises the number of examples
(GRIDWATCH_FUZZ_EXAMPLES); above the bounded default the examples are random, each request is
also sent with every role the operation lets in, and the coverage phase (boundary values of
each parameter, unexpected methods) runs too. Half the generated paths name what exists (the
incidents, alerts, team and places seeded below), so that actions, photos and snapshots reach
real state rather than a 404.

Left out: GET /incidents/stream, an endless event stream (the live feed's tests read it), and
POST /login, whose refusals are by design the sign-in form again (HTML for a person, not
problem+json); GET /login and POST /logout are fuzzed.
"""

import os
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta

import cv2
import numpy as np
import psycopg
import pytest
import schemathesis
from conftest import auth
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from gridwatch.alerts.deadlines import whistle
from gridwatch.alerts.incidents import act
from gridwatch.alerts.ingest import ingest
from gridwatch.alerts.model import AlertIn
from gridwatch.alerts.photos import add_photo
from gridwatch.alerts.snapshots import store as store_snapshot
from gridwatch.api import access
from gridwatch.api.app import create_app
from gridwatch.api.auth import ALL_ROLES, create_key
from gridwatch.config import DatabaseSettings
from gridwatch.geo.grid_index import GridIndex

BOUNDED = 10
EXAMPLES = int(os.environ.get("GRIDWATCH_FUZZ_EXAMPLES", BOUNDED))
LONG = EXAMPLES > BOUNDED
SKIPPED = ("GET /incidents/stream", "POST /login")

# The document as the server serves it; the application it describes is started per module below.
DOC = create_app(DatabaseSettings()).openapi()
CONFIG = schemathesis.Config.from_dict({
    "generation": {"database": "none", "with-security-parameters": False},
    "phases": {"examples": {"enabled": True}, "coverage": {"enabled": LONG}, "fuzzing": {"enabled": True},
               "stateful": {"enabled": False}},
})
schema = schemathesis.openapi.from_dict(DOC, config=CONFIG).exclude(
    func=lambda ctx: f"{ctx.operation.method.upper()} {ctx.operation.path}" in SKIPPED)


def _share_roles() -> dict[str, list[str]]:
    """For each operation, the roles to send it with: all of its rule's in a long run; in
    the bounded run one, the one used least so far (so every role of the table is used)."""
    used: Counter[str] = Counter()
    chosen = {}
    for route, rule in access.ACCESS.items():
        roles = [r for r in ALL_ROLES if r in rule] or ["none"]
        if LONG:
            chosen[route] = roles
            continue
        role = min(roles, key=lambda r: (used[r], ALL_ROLES.index(r) if r in ALL_ROLES else 0))
        used[role] += 1
        chosen[route] = [role]
    return chosen


ROLES_OF = _share_roles()
# Path values that name what exists in the module's database (filled by the `fuzzed` fixture):
# drawn half the time, so that actions, photos and snapshots reach real incidents and alerts
# rather than answering 404 to every random id.
REAL: dict[str, list] = {}


def _real(path: str, name: str) -> list:
    # a code is a grid's, a village's or a township's: /grids/{code}, /maps/grids/{code}, /villages/{code}
    return REAL.get(path.split("/")[-2] if name == "code" else name, [])


@schema.hook
def flatmap_path_parameters(context, path_parameters: dict | None) -> st.SearchStrategy:
    known = {name: _real(context.operation.path, name) for name in path_parameters or {}}
    known = {name: values for name, values in known.items() if values}
    if not known:
        return st.just(path_parameters)
    real = st.fixed_dictionaries({name: st.sampled_from(values) for name, values in known.items()})
    return st.one_of(st.just(path_parameters), real.map(lambda values: {**path_parameters, **values}))


def problem_details(ctx, response, case) -> bool | None:
    """Every error is RFC 9457 problem+json, its `status` the response's."""
    if response.status_code < 400:
        return None
    media = response.headers.get("content-type", [""])[0].split(";")[0].strip()
    assert media == "application/problem+json", f"{response.status_code} answered as {media!r}, not problem+json"
    body = response.json()
    assert isinstance(body, dict) and {"type", "title", "status", "detail"} <= body.keys(), body
    assert body["status"] == response.status_code, body
    return None


CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance,
          problem_details]


def _seed(db_url: str) -> str:
    """Alerts in grids and outside them, an incident dispatched and whistled (with a photo),
    another new, a snapshot: the lists answer with their full shapes. Returns the dispatched
    team, and fills REAL."""
    now = datetime.now(UTC)
    with psycopg.connect(db_url) as conn:
        index = GridIndex.load(conn)
        alerts = [AlertIn(source="fuzz", event_id=uuid.uuid4().hex, camera_id=camera, type=type_, score=0.8,
                          occurred_at=now - timedelta(hours=hours), lon=lon, lat=lat, box=[10, 10, 50, 60],
                          frame_size=[640, 480], note="seeded")
                  for camera, type_, hours, lon, lat in [
                      ("CAM-0002", "road_obstruction", 3, 100.99, 36.90),
                      ("CAM-0003", "sewer_overflow", 2, 100.995, 36.91),
                      ("CAM-0004", "illegal_dumping", 1, 101.40, 36.60)]]
        results = ingest(conn, alerts, index, now)
        incident = results[0].incident_id
        act(conn, incident, "dispatch", "fuzz seed", now)
        whistle(conn, incident, None, "fuzz seed", now, timedelta(hours=24), None)
        team = conn.execute("SELECT team_id FROM incidents WHERE id = %s", [incident]).fetchone()[0]
        jpeg = cv2.imencode(".jpg", np.full((48, 64, 3), 90, np.uint8))[1].tobytes()
        add_photo(conn, incident, jpeg, "fuzz seed", now)
        store_snapshot(conn, results[0].alert_id, jpeg)
        grids = [r.grid_code for r in results if r.grid_code]
        REAL.update({"incident_id": sorted({r.incident_id for r in results if r.incident_id}),
                     "alert_id": [r.alert_id for r in results], "team_id": [team], "n": [1],
                     "camera_id": sorted({a.camera_id for a in alerts}), "department": ["transport"],
                     "type_": ["road_obstruction", "motion"], "grids": grids,
                     "villages": [g[:12] for g in grids], "townships": [g[:9] for g in grids]})
        conn.commit()
    return team


@pytest.fixture(scope="module")
def fuzzed(db_url):
    """The application on this module's database (schemathesis runs its lifespan) and a key
    of each role; the team key is the dispatched team's."""
    team = _seed(db_url)
    with psycopg.connect(db_url) as conn:
        keys = {role: create_key(conn, role, f"fuzz {role}", team if role == "team" else None)[1]
                for role in ALL_ROLES}
    app = create_app(DatabaseSettings(database_url=db_url))
    yield app, keys
    from schemathesis.python import asgi
    asgi.shutdown_lifespans()


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=not LONG,
          print_blob=True)
def test_every_answer_is_declared_and_no_error_is_a_5xx(case, fuzzed):
    app, keys = fuzzed
    for role in ROLES_OF[f"{case.operation.method.upper()} {case.operation.path}"]:
        headers = auth(keys[role]) if role in keys else {}
        case.call_and_validate(app=app, headers=headers, checks=CHECKS, allow_redirects=False)
