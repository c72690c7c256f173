"""The access table: every route has a rule, the app applies it before the route runs, and
the README and the OpenAPI document show it."""

import re
import subprocess
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from conftest import GRIDWATCH, ROOT, auth
from fastapi.testclient import TestClient

from gridwatch.api import access
from gridwatch.api.app import create_app
from gridwatch.api.auth import create_key, revoke_key

ROLES = ("viewer", "operator", "dispatcher", "admin", "ingest", "team", "video")
SECURED = [key for key, rule in access.ACCESS.items() if rule]
PUBLIC = [key for key, rule in access.ACCESS.items() if not rule]


@pytest.fixture(scope="module")
def team_keys(db_url) -> dict[str, str]:
    """Every role's key, a revoked one and an expired one."""
    with psycopg.connect(db_url) as conn:
        team = conn.execute("SELECT id FROM teams ORDER BY id LIMIT 1").fetchone()[0]
        keys = {role: create_key(conn, role, f"access {role}", team if role == "team" else None)[1] for role in ROLES}
        revoked_id, keys["revoked"] = create_key(conn, "admin", "access revoked")
        revoke_key(conn, revoked_id)
        expired_id, keys["expired"] = create_key(conn, "admin", "access expired",
                                                 expires_at=datetime.now(UTC) + timedelta(hours=1))
        conn.execute("UPDATE api_keys SET expires_at = now() - interval '1 second' WHERE id = %s", [expired_id])
        conn.commit()
    return keys


def call(client: TestClient, route: str, headers: dict) -> "object":
    """Call a route of the table with placeholder path values and an empty JSON body."""
    method, path = route.split(" ", 1)
    path = re.sub(r"\{[^}]+\}", "X", path)
    body = {} if method in ("POST", "PUT", "PATCH") else None
    return client.request(method, path, headers=headers, json=body, follow_redirects=False)


def refused_by_role(response) -> bool:
    return response.status_code == 403 and "this needs role" in response.json()["detail"]


@pytest.mark.parametrize("route", SECURED)
def test_each_route_lets_in_exactly_the_roles_of_its_rule(client, team_keys, route):
    rule = access.ACCESS[route]
    for who, expect in [("nobody", "unknown"), ("revoked", "unknown or revoked"), ("expired", "expired at")]:
        r = call(client, route, auth(team_keys[who]) if who != "nobody" else {})
        assert r.status_code == 401, (route, who, r.status_code)
        if who != "nobody":
            assert expect in r.json()["detail"]
    for role in ROLES:
        if route == "GET /incidents/stream" and role in rule:
            continue  # an endless stream; the live feed's tests read it as viewer and team
        r = call(client, route, auth(team_keys[role]))
        assert r.status_code != 401, (route, role, r.text)
        assert refused_by_role(r) == (role not in rule), (route, role, r.status_code, r.text[:200])


@pytest.mark.parametrize("route", [r for r in PUBLIC if r != "POST /login"])
def test_public_routes_need_no_key(client, route):
    r = call(client, route, {})
    assert r.status_code not in (401, 403), (route, r.status_code)


def test_the_rules_that_matter_most_are_as_the_readme_says():
    """Spot checks written out by hand, so a slip in the table itself shows here."""
    assert access.ACCESS["POST /patrols"] == {"admin"}
    assert access.ACCESS["POST /admin/boundaries"] == {"admin"}
    assert access.ACCESS["GET /field"] == {"team"}
    assert access.ACCESS["POST /alerts"] == {"operator", "dispatcher", "admin", "ingest"}
    assert access.ACCESS["GET /health"] == frozenset()
    assert "ingest" not in access.ACCESS["GET /incidents"] and "team" not in access.ACCESS["GET /incidents"]
    # a fleet host posts only under its lease; admin reads streams whole (a host, those it holds)
    assert access.ACCESS["POST /video/alerts"] == {"video"} and "video" not in access.ACCESS["POST /alerts"]
    assert access.ACCESS["GET /cameras/{camera_id}/stream"] == {"admin"}


def test_a_route_without_a_rule_stops_the_server_from_starting(settings):
    app = create_app(settings)

    @app.get("/forgotten")
    def forgotten() -> dict:
        return {"secret": True}

    with pytest.raises(RuntimeError, match=r"no rule for GET /forgotten"), TestClient(app):
        pass


def test_a_rule_without_a_route_is_refused_too(settings):
    app = create_app(settings)
    app.state.access["GET /gone"] = access.VIEWER
    with pytest.raises(RuntimeError, match=r"no route for GET /gone"), TestClient(app):
        pass


def test_the_key_is_checked_before_the_body_is_read(client):
    r = client.post("/incidents/1/acknowledge", content=b"{not json", headers={"Content-Type": "application/json"})
    assert r.status_code == 401
    r = client.post("/alerts", content=b"\x00" * 100, headers={"Content-Type": "application/json"})
    assert r.status_code == 401


def test_the_readme_shows_the_table():
    readme = (ROOT / "README.md").read_text()
    assert access.markdown() in readme, "README.md's access table differs from gridwatch/api/access.py: " \
                                        "paste `python -c 'from gridwatch.api.access import markdown; " \
                                        "print(markdown())'` into it"


def test_openapi_names_the_key_scheme_and_each_operations_roles(client):
    doc = client.get("/openapi.json").json()
    assert doc["components"]["securitySchemes"]["bearerKey"] == {
        "type": "http", "scheme": "bearer", "description": doc["components"]["securitySchemes"]["bearerKey"][
            "description"]}
    patrols = doc["paths"]["/patrols"]["post"]
    assert patrols["security"] == [{"bearerKey": []}] and patrols["x-roles"] == ["admin"]
    assert "Roles: admin." in patrols["description"] and "403" in patrols["responses"]
    assert doc["paths"]["/health"]["get"]["security"] == []
    for path, operations in doc["paths"].items():
        for method, operation in operations.items():
            assert "security" in operation, f"{method.upper()} {path}"


def test_docs_offer_the_authorize_button_from_local_assets(client):
    page = client.get("/docs").text
    assert "persistAuthorization" in page and "/maps/static/swagger-ui/" in page


def test_keys_may_expire(db_url, client):
    env = {"GRIDWATCH_DATABASE_URL": db_url, "PATH": "/usr/bin:/bin"}
    run = subprocess.run([GRIDWATCH, "keys", "create", "--role", "viewer", "--name", "contractor", "--expires",
                          "2001-01-01"], capture_output=True, text=True, env=env)
    assert run.returncode == 2 and "has passed already" in run.stderr
    run = subprocess.run([GRIDWATCH, "keys", "create", "--role", "viewer", "--name", "contractor", "--expires",
                          "soon"], capture_output=True, text=True, env=env)
    assert run.returncode == 2 and "--expires" in run.stderr and "7d" in run.stderr
    run = subprocess.run([GRIDWATCH, "keys", "create", "--role", "viewer", "--name", "contractor", "--expires", "7d"],
                         capture_output=True, text=True, env=env, check=True)
    key = run.stdout.strip().splitlines()[-1]
    assert client.get("/grids", params={"limit": 1}, headers=auth(key)).status_code == 200
    listed = subprocess.run([GRIDWATCH, "keys", "list"], capture_output=True, text=True, env=env, check=True).stdout
    assert '"name": "contractor"' in listed and '"expires_at": "20' in listed
