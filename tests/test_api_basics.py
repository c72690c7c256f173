"""API basics: health, problem+json for every error, API keys with roles, the audit log."""

import hashlib
import subprocess
import time

import httpx
import psycopg
import pytest
from conftest import GRIDWATCH, Server, auth
from fastapi.testclient import TestClient

from gridwatch.api.app import create_app
from gridwatch.api.auth import create_key
from gridwatch.config import ApiSettings, DatabaseSettings


def test_health_is_open_and_says_what_runs(client):
    r = client.get("/health")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok" and body["db"] == "ok"
    assert body["postgis"].startswith("3.") and body["boundary_version"] >= 1


def test_openapi_docs_are_open(client):
    assert client.get("/openapi.json").status_code == 200
    assert client.get("/docs").status_code == 200


def test_unknown_path_and_wrong_method_are_problem_details(client, keys):
    r = client.get("/no/such/thing", headers=auth(keys["viewer"]))
    assert r.status_code == 404 and r.headers["content-type"] == "application/problem+json"
    assert r.json() == {"type": "about:blank", "title": "Not Found", "status": 404,
                        "detail": "no such path: /no/such/thing"}
    r = client.delete("/grids/at", headers=auth(keys["viewer"]))
    assert r.status_code == 405 and "DELETE" in r.json()["detail"]


def test_missing_or_wrong_key_is_refused(client):
    r = client.get("/grids")
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    assert "API key" in r.json()["detail"]
    r = client.get("/grids", headers=auth("gw_not-a-real-key"))
    assert r.status_code == 401 and "unknown or revoked" in r.json()["detail"]
    r = client.get("/grids", headers={"Authorization": "Basic dXNlcjpwYXNz"})
    assert r.status_code == 401 and "Bearer" in r.json()["detail"]


def test_roles_are_ordered_and_ingest_stands_apart(client, keys):
    assert client.get("/grids", headers=auth(keys["viewer"])).status_code == 200
    assert client.get("/grids", headers=auth(keys["admin"])).status_code == 200
    r = client.get("/grids", headers=auth(keys["ingest"]))
    assert r.status_code == 403 and "ingest" in r.json()["detail"]


def test_keys_are_stored_hashed_and_can_be_revoked(db_url, client):
    env = {"GRIDWATCH_DATABASE_URL": db_url, "PATH": "/usr/bin:/bin"}
    made = subprocess.run([GRIDWATCH, "keys", "create", "--role", "viewer", "--name", "wall screen"],
                          capture_output=True, text=True, env=env)
    assert made.returncode == 0, made.stderr
    key = made.stdout.strip()
    assert key.startswith("gw_") and len(key) > 40 and "\n" not in key
    with psycopg.connect(db_url) as conn:
        row = conn.execute("SELECT id, key_hash, prefix FROM api_keys WHERE name = 'wall screen'").fetchone()
        assert bytes(row[1]) == hashlib.sha256(key.encode()).digest() and row[2] == key[:8]
        dump = str(conn.execute("SELECT * FROM api_keys").fetchall())
    assert key not in dump
    revoked = subprocess.run([GRIDWATCH, "keys", "revoke", str(row[0])], capture_output=True, text=True, env=env)
    assert revoked.returncode == 0, revoked.stderr
    assert client.get("/grids", headers=auth(key)).status_code == 401


def test_bad_role_is_a_cli_error(db_url):
    done = subprocess.run([GRIDWATCH, "keys", "create", "--role", "boss", "--name", "x"], capture_output=True,
                          text=True, env={"GRIDWATCH_DATABASE_URL": db_url, "PATH": "/usr/bin:/bin"})
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == ["error: role 'boss' is not one of viewer, operator, dispatcher, "
                                                "admin, ingest, team, video"]


def test_authenticated_requests_are_audited_without_bodies_or_queries(client, keys, db_url):
    client.get("/grids/at", params={"lon": 100.99, "lat": 36.9}, headers=auth(keys["operator"]))
    client.get("/grids/nope", headers=auth(keys["operator"]))
    deadline = time.monotonic() + 5
    with psycopg.connect(db_url, autocommit=True) as conn:
        while time.monotonic() < deadline:
            rows = conn.execute("SELECT a.role, method, path, status FROM audit_log a"
                                " JOIN api_keys k ON k.id = a.key_id WHERE k.role = 'operator'"
                                " ORDER BY a.id").fetchall()
            if len(rows) >= 2:
                break
            time.sleep(0.2)
    assert ("operator", "GET", "/grids/at", 200) in rows
    assert ("operator", "GET", "/grids/nope", 404) in rows
    assert not any("lon=" in r[2] for r in rows)


def test_body_above_the_limit_is_413(client, keys):
    body = b'{"points": [' + b"[100.9, 36.9]," * 700_000 + b"[100.9, 36.9]]}"
    r = client.post("/grids/lookup", headers={**auth(keys["viewer"]), "content-type": "application/json"},
                    content=body)
    assert r.status_code == 413 and r.headers["content-type"] == "application/problem+json"


def test_a_chunked_body_above_the_limit_is_413_on_every_kind_of_route(client, keys):
    """Without a Content-Length the size shows only while reading: routes whose body FastAPI
    reads for a model answer 413 as the others do (not 400), and the audit log says 413."""
    def chunks():
        for _ in range(10):
            yield b" " * 1024 * 1024

    for path in ("/alerts", "/grids/lookup", "/incidents", "/patrols/AGATU-MOTO/positions"):
        r = client.post(path, headers={**auth(keys["admin"]), "content-type": "application/json"}, content=chunks())
        assert r.status_code == 413, (path, r.status_code, r.text[:200])
        assert r.headers["content-type"] == "application/problem+json" and "larger than" in r.json()["detail"]


@pytest.mark.parametrize("path", ["/grids/a%0Db", "/grids?township=%01", "/incidents?status=%00",
                                  "/alerts?camera=x%7F", "/grids?township=%FF", "/villages/%E4%B8"])
def test_control_characters_and_broken_utf8_in_path_or_query_are_422(client, keys, path):
    r = client.get(path, headers=auth(keys["viewer"]))
    assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json", r.text
    assert "control character" in r.json()["detail"] or "not UTF-8" in r.json()["detail"]


def test_text_in_other_scripts_passes(client, keys):
    assert client.get("/grids?township=%E6%B5%B7%E6%99%8F", headers=auth(keys["viewer"])).status_code == 200
    r = client.get("/grids/%E6%B5%B7", headers=auth(keys["viewer"]))
    assert r.status_code == 404 and "海" in r.json()["detail"]


def test_the_sign_in_cookie_is_secure_over_https_also_behind_a_proxy(db_url, keys):
    server = Server(db_url).start()
    try:
        r = httpx.post(server.url + "/login", data={"key": keys["viewer"], "next": "/maps/"},
                       headers={"X-Forwarded-Proto": "https", "Origin": "https://127.0.0.1"})
        assert r.status_code == 303 and "secure" in r.headers["set-cookie"].lower()
        r = httpx.post(server.url + "/login", data={"key": keys["viewer"], "next": "/maps/"})
        assert r.status_code == 303 and "secure" not in r.headers["set-cookie"].lower()
    finally:
        server.stop()


def test_database_down_gives_503_not_a_hang():
    dead = DatabaseSettings(database_url="postgresql://nobody@127.0.0.1:9/none?connect_timeout=1")
    with TestClient(create_app(dead), raise_server_exceptions=False) as client:
        r = client.get("/health")
        assert r.status_code == 503 and r.json()["status"] == "unavailable"
        r = client.get("/grids", headers=auth("gw_anything"))
        assert r.status_code == 503 and r.headers["content-type"] == "application/problem+json"
        assert r.headers["retry-after"]


def test_every_request_body_refuses_unknown_fields(client):
    """A field the API does not know is refused, never dropped: each JSON body's schema in the
    OpenAPI document says so (alerts keep theirs, in `extra`, by their wire format)."""
    spec = client.get("/openapi.json").json()
    schemas = spec["components"]["schemas"]
    bodies = {}
    for path, operations in spec["paths"].items():
        for method, op in operations.items():
            ref = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema", {})
            ref = next((r["$ref"] for r in ref.get("anyOf", []) if "$ref" in r), ref.get("$ref"))
            if ref:
                bodies[f"{method.upper()} {path}"] = ref.rsplit("/", 1)[-1]
    assert len(bodies) >= 15, bodies
    lax = {route: name for route, name in bodies.items()
           if name != "AlertIn" and schemas[name].get("additionalProperties") is not False}
    assert lax == {}
    r = client.post("/incidents/1/acknowledge", json={"nots": "typo"}, headers={"Authorization": "Bearer x"})
    assert r.status_code == 401  # who asks is checked before what is asked


def test_a_key_over_its_rate_gets_429_with_retry_after_and_others_go_on(settings, db_url):
    with psycopg.connect(db_url) as conn:
        _, hasty = create_key(conn, "viewer", "hasty script")
        _, calm = create_key(conn, "viewer", "calm screen")
        _, camera = create_key(conn, "ingest", "busy NVR")
    app = create_app(settings, ApiSettings(rate_per_s=5, ingest_rate_per_s=50))
    with TestClient(app) as client:
        answers = [client.get("/grids/at", params={"lon": 100.99, "lat": 36.9}, headers=auth(hasty)).status_code
                   for _ in range(20)]
        assert answers[:10] == [200] * 10 and 429 in answers[10:]  # a burst of two seconds' worth, then no
        r = client.get("/grids/at", params={"lon": 100.99, "lat": 36.9}, headers=auth(hasty))
        assert r.status_code == 429 and r.headers["content-type"] == "application/problem+json"
        assert int(r.headers["retry-after"]) >= 1 and "more than 5 requests a second" in r.json()["detail"]
        assert client.get("/grids/at", params={"lon": 100.99, "lat": 36.9}, headers=auth(calm)).status_code == 200
        # a camera's key has its own, higher rate
        codes = [client.get("/cameras/CAM-0001/video", headers=auth(camera)).status_code for _ in range(60)]
        assert codes == [200] * 60
        time.sleep(0.25)
        assert client.get("/grids/at", params={"lon": 100.99, "lat": 36.9}, headers=auth(hasty)).status_code == 200


def test_a_slow_query_ends_in_503_not_a_hung_worker(db_url):
    slow = DatabaseSettings(database_url=db_url, statement_timeout_ms=100)
    with TestClient(create_app(slow), raise_server_exceptions=False) as client, \
            psycopg.connect(db_url) as conn:
        _, key = create_key(conn, "admin", "slow")
        conn.execute("BEGIN; LOCK TABLE teams IN ACCESS EXCLUSIVE MODE")  # every team query now waits
        started = time.monotonic()
        r = client.get("/patrols", headers=auth(key))
        assert r.status_code == 503 and r.headers["retry-after"] and time.monotonic() - started < 5
        assert "took too long" in r.json()["detail"]
        conn.rollback()


def test_an_exhausted_pool_makes_requests_wait_briefly_then_503(client, keys):
    """Slow clients holding every connection: a request waits the pool's timeout, then gets
    503 with Retry-After, never hangs; /health says the database is unavailable meanwhile."""
    pool = client.app.state.pool
    held = [pool.getconn(timeout=5) for _ in range(pool.max_size)]
    try:
        started = time.monotonic()
        r = client.get("/incidents", params={"limit": 1}, headers=auth(keys["viewer"]))
        waited = time.monotonic() - started
        assert r.status_code == 503 and r.headers["retry-after"] and 1 < waited < 10, (r.status_code, waited)
    finally:
        for conn in held:
            pool.putconn(conn)
    assert client.get("/incidents", params={"limit": 1}, headers=auth(keys["viewer"])).status_code == 200


@pytest.mark.parametrize(("path", "content_type", "body", "says"), [
    ("/alerts", "application/json", b'{"source": "\xff"}', "not UTF-8 text"),
    ("/admin/boundaries", "multipart/form-data", b"no boundary given", "Missing boundary in multipart"),
])
def test_a_body_that_cannot_be_read_is_422_not_400(client, keys, path, content_type, body, says):
    """Found by the fuzzer (tests/test_fuzz.py): the framework answered 400 to a JSON body
    that is not UTF-8, and to a broken form; unreadable input is 422, as JSON that does not
    parse is."""
    r = client.post(path, content=body, headers={**auth(keys["admin"]), "Content-Type": content_type})
    assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json", r.text
    assert says in r.json()["detail"] and r.json()["errors"][0]["field"] == "body"
