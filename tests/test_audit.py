"""The audit log: every authenticated request's row is stored whatever its path holds, one
bad row never holds up the others, nothing is let go silently, the server cannot change
or delete a row, and admins read it through the API and the CLI."""

import json
import subprocess
import time
from datetime import UTC, datetime

import psycopg
import pytest
from conftest import GRIDWATCH, auth

from gridwatch.api.audit import AuditLog
from gridwatch.api.auth import Principal
from gridwatch.config import DatabaseSettings
from gridwatch.db import APP_ROLE, open_pool


def wait_for_rows(db_url: str, where: str, params: list, count: int) -> list[tuple]:
    deadline = time.monotonic() + 10
    with psycopg.connect(db_url, autocommit=True) as conn:
        while True:
            rows = conn.execute(f"SELECT method, path, status FROM audit_log WHERE {where} ORDER BY id", params
                                ).fetchall()
            if len(rows) >= count or time.monotonic() > deadline:
                return rows
            time.sleep(0.2)


def key_id(db_url: str, key: str) -> int:
    with psycopg.connect(db_url) as conn:
        return conn.execute("SELECT id FROM api_keys WHERE prefix = %s", [key[:8]]).fetchone()[0]


def test_hostile_paths_are_audited_escaped_and_hold_up_nothing(client, keys, db_url):
    h = auth(keys["dispatcher"])
    long_path = "/grids/" + "x" * 60_000
    for path in ("/grids/%00", "/grids/a%0Db", "/grids/%FF%FE", long_path):
        assert client.get(path, headers=h).status_code in (404, 422)
    assert client.get("/grids", params={"limit": 1}, headers=h).status_code == 200
    rows = wait_for_rows(db_url, "key_id = %s", [key_id(db_url, keys["dispatcher"])], 5)
    paths = [r[1] for r in rows]
    assert paths[0] == "/grids/\\x00" and paths[1] == "/grids/a\\rb"
    assert paths[3].startswith("/grids/xxx") and paths[3].endswith("(58,007 more characters)")
    assert rows[-1] == ("GET", "/grids", 200)
    assert [r[2] for r in rows[:2]] == [422, 422]


def test_a_row_the_database_refuses_is_stored_in_ascii_and_the_others_go_on(db_url):
    pool = open_pool(db_url, DatabaseSettings(database_url=db_url))
    try:
        log = AuditLog(pool)
        who = Principal(key_id=None, name="test", role="system")
        log.record(who, "GET", "/before", 200, 1.0)
        log._rows.append((datetime.now(UTC), None, "system", "GET", "/nul\x00here", 200, 1.0))  # past printable()
        log.record(who, "GET", "/after", 200, 1.0)
        log.flush()
        assert log.state()["audit"] == "ok" and log.state()["audit_waiting"] == 0
        with psycopg.connect(db_url) as conn:
            stored = [r[0] for r in conn.execute("SELECT path FROM audit_log WHERE path IN "
                                                 "('/before', '/after', '''/nul\\x00here''') ORDER BY id")]
        assert stored == ["/before", "'/nul\\x00here'", "/after"]
    finally:
        pool.close()


def test_while_the_database_is_away_rows_wait_and_what_is_let_go_is_written_down(db_url):
    dead = "postgresql://nobody@127.0.0.1:9/none?connect_timeout=1"
    pool = open_pool(dead, DatabaseSettings(database_url=dead))
    log = AuditLog(pool, max_waiting=3)
    who = Principal(key_id=None, name="test", role="system")
    for i in range(5):
        log.record(who, "GET", f"/away/{i}", 200, 1.0)
    log.flush()
    state = log.state()
    assert state == {"audit": "behind", "audit_waiting": 3, "audit_lost": 2}
    pool.close()
    log.pool = open_pool(db_url, DatabaseSettings(database_url=db_url))
    try:
        log.flush()
        assert log.state()["audit"] == "ok"
        with psycopg.connect(db_url) as conn:
            paths = [r[0] for r in conn.execute("SELECT path FROM audit_log WHERE path LIKE '/away/%%' OR "
                                                "path LIKE '(%% audit rows were let go%%' ORDER BY id")]
        assert paths == ["/away/2", "/away/3", "/away/4",
                         "(2 audit rows were let go while the database could not be written)"]
    finally:
        log.pool.close()


def test_health_says_how_the_audit_log_is_doing(client):
    body = client.get("/health").json()
    assert body["audit"] == "ok" and body["audit_waiting"] >= 0


def test_the_server_may_add_audit_rows_but_never_change_or_delete_them(db_url):
    with psycopg.connect(db_url, options=f"-c role={APP_ROLE}") as conn:
        conn.execute("INSERT INTO audit_log (at, key_id, role, method, path, status, ms) "
                     "VALUES (now() - interval '2 days', NULL, 'system', 'GET', '/old', 200, 1)")
        conn.execute("INSERT INTO audit_log (at, key_id, role, method, path, status, ms) "
                     "VALUES (now(), NULL, 'system', 'GET', '/new', 200, 1)")
        conn.commit()
        for sql in ("UPDATE audit_log SET path = '/forged'", "DELETE FROM audit_log", "TRUNCATE audit_log"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(sql)
            conn.rollback()
        # retention's own path: old rows only, never the last day's, whatever it is asked
        assert conn.execute("SELECT purge_audit(now() + interval '1 year')").fetchone()[0] >= 1
        conn.commit()
        paths = {r[0] for r in conn.execute("SELECT path FROM audit_log WHERE path IN ('/old', '/new')")}
        assert paths == {"/new"}


def test_admins_read_the_audit_log_with_filters(client, keys, db_url):
    h = auth(keys["operator"])
    client.get("/incidents", params={"limit": 1}, headers=h)
    client.get("/incidents/999999999", headers=h)
    operator = key_id(db_url, keys["operator"])
    wait_for_rows(db_url, "key_id = %s AND path LIKE '/incidents%%'", [operator], 2)
    r = client.get("/admin/audit", params={"key": operator, "path": "/incidents"}, headers=auth(keys["admin"]))
    assert r.status_code == 200
    rows = r.json()["rows"]
    assert [(x["path"], x["status"]) for x in rows][:2] == [("/incidents/999999999", 404), ("/incidents", 200)]
    assert rows[0]["key_name"] == "test operator" and rows[0]["role"] == "operator"
    r = client.get("/admin/audit", params={"key": operator, "status": 404}, headers=auth(keys["admin"]))
    assert {x["status"] for x in r.json()["rows"]} == {404}
    r = client.get("/admin/audit", params={"key": operator, "limit": 1, "offset": 1}, headers=auth(keys["admin"]))
    assert len(r.json()["rows"]) == 1 and r.json()["rows"][0]["path"] == "/incidents"
    assert client.get("/admin/audit", headers=auth(keys["dispatcher"])).status_code == 403
    r = client.get("/admin/audit", params={"role": "boss"}, headers=auth(keys["admin"]))
    assert r.status_code == 422

    done = subprocess.run([GRIDWATCH, "audit", "--key", str(operator), "--status", "404"], capture_output=True,
                          text=True, env={"GRIDWATCH_DATABASE_URL": db_url, "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert lines and all(x["status"] == 404 and x["key_id"] == operator for x in lines)
