"""A read replica (GRIDWATCH_READ_DATABASE_URL), for real: `gridwatch db replica` copies the
embedded cluster and streams from it; maps and statistics read from the replica (its table
statistics say so, the primary's do not); a writer's answer and its next read are current
while the replica's replay is paused, when another key still reads the replica's older
state; a stopped replica sends reads to the primary; a stopped primary leaves reads
answering from the replica and writes refused with 503."""

import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import psycopg
import pytest
from conftest import Server, auth, gw
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from test_api_contract import conforms

from gridwatch.api.auth import create_key
from gridwatch.db.cluster import Cluster

HOME = Path(os.environ["GRIDWATCH_HOME"])
IN_A_GRID = {"type": "sewer_overflow", "lon": 100.99, "lat": 36.90, "note": "water over the road"}
pytestmark = pytest.mark.skipif(bool(os.environ.get("GRIDWATCH_DATABASE_URL")),
                                reason="`gridwatch db replica` copies the embedded cluster")


def wait_for(check, timeout_s: float = 15.0, what: str = "the condition"):
    deadline = time.monotonic() + timeout_s
    while not (result := check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not come within {timeout_s:g} s")
        time.sleep(0.1)
    return result


def scans(url: str, table: str) -> int:
    """How often `table` has been read on the server `url` names (sequential and index scans),
    its partitions' scans included (a partitioned table's are counted on its partitions)."""
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute("SELECT coalesce(sum(seq_scan + coalesce(idx_scan, 0)), 0) FROM pg_stat_user_tables "
                            "WHERE relid = %s::regclass "
                            "OR relid IN (SELECT inhrelid FROM pg_inherits WHERE inhparent = %s::regclass)",
                            [table, table]).fetchone()[0]


def sessions_end(url: str) -> None:
    """Wait until no other session uses `url`'s database: a backend writes its table
    statistics when it ends, so the counters are complete once a server's sessions are gone."""
    def others() -> bool:
        with psycopg.connect(url, autocommit=True) as conn:
            return conn.execute("SELECT count(*) = 0 FROM pg_stat_activity WHERE datname = current_database() "
                                "AND pid <> pg_backend_pid()").fetchone()[0]
    wait_for(others, what="the end of the server's sessions")


@pytest.fixture(scope="module")
def replica_url(db_url: str) -> Iterator[str]:
    """A streaming replica of the session's cluster (a copy of every test database), made
    and stopped through the command line; the URL of this module's database on it."""
    started = gw(HOME, "db", "replica", "start", "--fresh")
    assert started.returncode == 0, started.stderr
    assert "pg_basebackup" in started.stderr and "streaming" in started.stderr
    status = json.loads(gw(HOME, "db", "replica", "status").stdout)
    assert status["running"] and status["streaming"] and status["port"] != Cluster(HOME).state().port
    assert gw(HOME, "db", "url", "--replica").stdout.strip() == started.stdout.strip()
    yield make_conninfo(started.stdout.strip(), dbname=conninfo_to_dict(db_url)["dbname"])
    stopped = gw(HOME, "db", "replica", "stop")
    assert stopped.returncode == 0 and "stopping the read replica" in stopped.stderr


@pytest.fixture(scope="module")
def keys(db_url: str) -> dict[str, str]:
    with psycopg.connect(db_url) as conn:
        return {role: create_key(conn, role, f"replica test {role}")[1] for role in ("viewer", "dispatcher")}


@contextmanager
def replay_paused(replica_url: str) -> Iterator[None]:
    """The replica's replay paused for the block, resumed after it."""
    with psycopg.connect(replica_url, autocommit=True) as standby:
        standby.execute("SELECT pg_wal_replay_pause()")
        try:
            wait_for(lambda: standby.execute("SELECT pg_get_wal_replay_pause_state()").fetchone()[0] == "paused",
                     what="the replay's pause")
            yield
        finally:
            standby.execute("SELECT pg_wal_replay_resume()")


def incidents(server: Server, headers: dict) -> dict[int, str]:
    """The incidents a key lists, with their status."""
    r = httpx.get(server.url + "/incidents", params={"limit": 1000}, headers=headers)
    assert r.status_code == 200, r.text
    return {f["id"]: f["properties"]["status"] for f in r.json()["features"]}


def test_maps_and_statistics_read_from_the_replica(db_url, replica_url, keys):
    before = scans(db_url, "alerts"), scans(replica_url, "alerts")
    server = Server(db_url, env={"GRIDWATCH_READ_DATABASE_URL": replica_url}).start()
    try:
        for path in ("/stats/heat", "/maps/heatmap", "/alerts?limit=5"):
            r = httpx.get(server.url + path, headers=auth(keys["viewer"]), timeout=30)
            assert r.status_code == 200, (path, r.text)
        r = httpx.get(server.url + "/health")
        conforms(httpx.get(server.url + "/openapi.json").json(), "GET", "/health", r)
        health = r.json()
        assert health["status"] == "ok" and health["replica"]["status"] == "ok", health
        assert health["replica"]["lag_bytes"] >= 0 and health["replica"]["lag_s"] >= 0
    finally:
        server.stop()
    sessions_end(db_url)
    sessions_end(replica_url)
    primary, replica = scans(db_url, "alerts") - before[0], scans(replica_url, "alerts") - before[1]
    assert replica >= 3 and primary == 0, (primary, replica)


def test_a_writer_reads_its_write_while_the_replica_lags(db_url, replica_url, keys):
    """Replay paused: the write's answer comes from the primary, in the write's transaction,
    and the writer's next list is current; a key that wrote nothing still reads the
    replica, which lacks the write until replay resumes."""
    writer, other = auth(keys["dispatcher"]), auth(keys["viewer"])
    server = Server(db_url, env={"GRIDWATCH_READ_DATABASE_URL": replica_url}).start()

    try:
        with replay_paused(replica_url):
            r = httpx.post(server.url + "/incidents", json=IN_A_GRID, headers=writer)
            assert r.status_code == 201, r.text
            incident = r.json()["id"]
            r = httpx.post(f"{server.url}/incidents/{incident}/dispatch", json={}, headers=writer)
            assert r.status_code == 200 and r.json()["properties"]["status"] == "dispatched", r.text
            assert incidents(server, writer).get(incident) == "dispatched"
            assert incident not in incidents(server, other)  # the replica really is behind
            # a cookie that is no WAL position (forged, or from elsewhere) is ignored
            for forged in (b"\xb2", b"-1", b"99999999999999999999999", b"abc"):
                assert incident not in incidents(server, {**other, "Cookie": b"gridwatch_wrote=" + forged})
            lag = httpx.get(server.url + "/health").json()["replica"]
            assert lag["status"] == "ok" and lag["lag_bytes"] > 0 and lag["lag_s"] >= 0, lag
        wait_for(lambda: incidents(server, other).get(incident) == "dispatched", what="the replica's catching up")
        wait_for(lambda: httpx.get(server.url + "/health").json()["replica"]["lag_bytes"] == 0,
                 what="a lag of 0 bytes")
    finally:
        server.stop()


def test_a_replica_further_behind_than_the_maximum_serves_no_reads(db_url, replica_url, keys):
    """Replay paused: within GRIDWATCH_READ_MAX_LAG_S another key still reads the replica's
    older world; past it, every read goes to the primary and /health says the replica is
    behind, until it has caught up."""
    writer, other = auth(keys["dispatcher"]), auth(keys["viewer"])
    server = Server(db_url, env={"GRIDWATCH_READ_DATABASE_URL": replica_url, "GRIDWATCH_READ_MAX_LAG_S": "3"}).start()

    try:
        with replay_paused(replica_url):
            r = httpx.post(server.url + "/incidents", json=IN_A_GRID, headers=writer)
            assert r.status_code == 201, r.text
            incident = r.json()["id"]
            assert incident not in incidents(server, other)  # a moment behind: the replica still serves
            wait_for(lambda: incident in incidents(server, other),
                     what="reads from the primary once the replica is too far behind")
            health = httpx.get(server.url + "/health").json()
            assert health["status"] == "degraded" and health["replica"]["status"] == "behind", health
        wait_for(lambda: httpx.get(server.url + "/health").json()["replica"]["status"] == "ok",
                 what="the replica's catching up")
    finally:
        server.stop()


def test_with_two_workers_the_cookie_carries_the_write_to_the_other(db_url, replica_url, keys):
    """Each worker remembers the writes it answered; the answer's cookie tells the other
    worker, so a client keeping cookies reads its write wherever its next request lands
    (each read here on a new connection, which either worker may take)."""
    server = Server(db_url, workers=2, env={"GRIDWATCH_READ_DATABASE_URL": replica_url}).start()
    fresh = httpx.Limits(max_keepalive_connections=0)
    try:
        with psycopg.connect(replica_url, autocommit=True) as standby, \
                httpx.Client(base_url=server.url, headers=auth(keys["dispatcher"]), limits=fresh) as writer:
            standby.execute("SELECT pg_wal_replay_pause()")
            try:
                wait_for(lambda: standby.execute("SELECT pg_get_wal_replay_pause_state()").fetchone()[0] == "paused",
                         what="the replay's pause")
                r = writer.post("/incidents", json=IN_A_GRID)
                assert r.status_code == 201 and "gridwatch_wrote=" in r.headers["set-cookie"], r.headers
                incident = r.json()["id"]
                for _ in range(8):
                    r = writer.get("/incidents", params={"limit": 1000})
                    assert incident in {f["id"] for f in r.json()["features"]}
                r = httpx.get(server.url + "/incidents", params={"limit": 1000}, headers=auth(keys["viewer"]))
                assert incident not in {f["id"] for f in r.json()["features"]}
            finally:
                standby.execute("SELECT pg_wal_replay_resume()")
    finally:
        server.stop()


def test_a_stopped_replica_sends_reads_to_the_primary(db_url, replica_url, keys):
    server = Server(db_url, env={"GRIDWATCH_READ_DATABASE_URL": replica_url}).start()
    try:
        assert httpx.get(server.url + "/stats/grids", headers=auth(keys["viewer"])).status_code == 200
        assert gw(HOME, "db", "replica", "stop").returncode == 0
        for path in ("/stats/grids", "/incidents", "/maps/heatmap", "/tiles/grids/10/799/398.mvt"):
            r = httpx.get(server.url + path, headers=auth(keys["viewer"]), timeout=30)
            assert r.status_code == 200, (path, r.text)
        r = httpx.get(server.url + "/health")
        conforms(httpx.get(server.url + "/openapi.json").json(), "GET", "/health", r)
        health = r.json()
        assert health["status"] == "degraded" and health["db"] == "ok", health
        assert health["replica"]["status"].startswith("unavailable"), health

        again = gw(HOME, "db", "replica", "start")  # the kept copy, catching up
        assert again.returncode == 0 and "pg_basebackup" not in again.stderr, again.stderr
        wait_for(lambda: httpx.get(server.url + "/health").json()["status"] == "ok", what="the replica's return")
    finally:
        server.stop()


def test_with_the_primary_stopped_reads_answer_and_writes_are_503(home):
    refused = gw(home, "db", "replica", "start")
    assert refused.returncode == 1 and refused.stderr.strip().splitlines()[-1].startswith(
        "error: the embedded PostgreSQL") and "gridwatch db start" in refused.stderr
    for step in (("db", "start"), ("db", "migrate")):
        assert gw(home, *step).returncode == 0
    admin, viewer = (gw(home, "keys", "create", "--role", role, "--name", f"replica {role}").stdout.strip()
                     for role in ("admin", "viewer"))
    started = gw(home, "db", "replica", "start")
    assert started.returncode == 0, started.stderr
    # a fresh copy keeps its address: GRIDWATCH_READ_DATABASE_URL stays right
    again = gw(home, "db", "replica", "start", "--fresh")
    assert again.returncode == 0 and "pg_basebackup" in again.stderr and again.stdout == started.stdout
    server = Server(None, env={"GRIDWATCH_HOME": str(home), "GRIDWATCH_READ_DATABASE_URL": started.stdout.strip()})
    server.start()
    try:
        r = httpx.patch(server.url + "/alert-types/fire_smoke", json={"auto_dispatch": True}, headers=auth(admin))
        assert r.status_code == 200, r.text
        doc = httpx.get(server.url + "/openapi.json").json()
        assert gw(home, "db", "stop").returncode == 0

        r = httpx.patch(server.url + "/alert-types/fire_smoke", json={"auto_dispatch": False}, headers=auth(admin))
        conforms(doc, "PATCH", "/alert-types/{type_}", r)
        assert r.status_code == 503 and r.headers["content-type"] == "application/problem+json", r.text
        assert r.headers["retry-after"] and "cannot be reached" in r.json()["detail"]
        assert "read replica" in r.json()["detail"], r.json()
        # the viewer's key was never checked before: it is read from the replica
        for path in ("/alert-types", "/incidents", "/stats/grids", "/cameras"):
            started_at = time.monotonic()
            r = httpx.get(server.url + path, headers=auth(viewer), timeout=30)
            assert r.status_code == 200, (path, r.text)
            assert time.monotonic() - started_at < 1.5, path  # no wait for the dead primary's pool
        types = {t["type"]: t["auto_dispatch"] for t in httpx.get(server.url + "/alert-types",
                                                                   headers=auth(viewer)).json()["types"]}
        assert types["fire_smoke"] is True  # the write before the stop, replicated
        started_at = time.monotonic()
        r = httpx.post(server.url + "/incidents", json=IN_A_GRID, headers=auth(admin))
        assert r.status_code == 503 and time.monotonic() - started_at < 1.5, r.text
        health = httpx.get(server.url + "/health")
        conforms(doc, "GET", "/health", health)
        assert health.status_code == 200 and health.json()["status"] == "degraded", health.text
        assert health.json()["db"].startswith("unavailable") and health.json()["replica"]["status"] == "ok"
    finally:
        server.stop()
    stopped = gw(home, "db", "replica", "stop")
    assert stopped.returncode == 0 and "stopping the read replica" in stopped.stderr
    assert json.loads(gw(home, "db", "replica", "status").stdout)["running"] is False
    assert "not running" in gw(home, "db", "replica", "stop").stderr
    # the primary still down: the copy made before starts all the same, to serve reads
    again = gw(home, "db", "replica", "start")
    assert again.returncode == 0 and "streams once the primary is back" in again.stderr, again.stderr
    assert again.stdout == started.stdout and json.loads(gw(home, "db", "replica", "status").stdout)["running"]
    assert gw(home, "db", "replica", "start", "--fresh").returncode == 1  # a new copy needs the primary


def test_db_replica_is_for_the_embedded_cluster_only(db_url):
    done = gw(Path("/nonexistent"), "db", "replica", "start", GRIDWATCH_DATABASE_URL=db_url)
    assert done.returncode == 2 and "GRIDWATCH_READ_DATABASE_URL" in done.stderr.strip().splitlines()[-1]
