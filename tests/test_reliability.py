"""Nothing acknowledged is lost: the server killed with SIGKILL mid-stream, and PostgreSQL
restarted under a running server."""

import os
import shutil
import signal
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import psycopg
import pytest
from conftest import BOUNDARIES, Server, auth

from gridwatch.api.auth import create_key
from gridwatch.db.cluster import Cluster
from gridwatch.db.migrate import migrate
from gridwatch.demo.places import seed_cameras, seed_teams
from gridwatch.geo.boundaries import import_boundaries
from gridwatch.geo.grid_index import GridIndex


class Poster:
    """Posts alerts one after another from a few threads; remembers what was acknowledged."""

    def __init__(self, url: str, key: str, source: str, threads: int = 4) -> None:
        self.url, self.key, self.source = url, key, source
        self.acked: set[str] = set()
        self.statuses: list[int] = []
        self.problems: list[str] = []
        self.sent: list[str] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, args=(t,), daemon=True) for t in range(threads)]

    def alert(self, event_id: str) -> dict:
        n = int(event_id.split("-")[-1])
        return {"source": self.source, "event_id": event_id, "camera_id": f"CAM-{n % 300 + 1:04d}",
                "type": "road_obstruction", "score": 0.7, "occurred_at": datetime.now(UTC).isoformat()}

    def _run(self, t: int) -> None:
        with httpx.Client(timeout=10, headers=auth(self.key)) as client:
            n = 0
            while not self._stop.is_set():
                event_id = f"t{t}-{n}"
                n += 1
                with self._lock:
                    self.sent.append(event_id)
                try:
                    r = client.post(self.url + "/alerts", json=self.alert(event_id))
                except httpx.HTTPError:
                    time.sleep(0.05)
                    continue
                with self._lock:
                    self.statuses.append(r.status_code)
                    if r.status_code in (200, 201):
                        self.acked.add(event_id)
                    elif r.headers.get("content-type") == "application/problem+json":
                        self.problems.append(r.json()["detail"])

    def start(self) -> "Poster":
        for t in self._threads:
            t.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=15)


def stored(db_url: str, source: str) -> set[str]:
    with psycopg.connect(db_url) as conn:
        return {r[0] for r in conn.execute("SELECT event_id FROM alerts WHERE source = %s", [source])}


def test_sigkill_loses_no_acknowledged_alert_and_reposting_duplicates_nothing(db_url, keys):
    server = Server(db_url, workers=2).start()
    poster = Poster(server.url, keys["ingest"], "kill-test").start()
    time.sleep(2.0)
    os.killpg(server.proc.pid, signal.SIGKILL)
    time.sleep(0.5)
    poster.stop()
    assert len(poster.acked) > 50
    in_db = stored(db_url, "kill-test")
    assert poster.acked <= in_db  # every acknowledged alert survived
    # a new server; every event is sent again: stored ones answer as repeats, none doubles
    server = Server(db_url).start()
    try:
        with httpx.Client(timeout=10, headers=auth(keys["ingest"])) as client:
            for event_id in poster.sent:
                r = client.post(server.url + "/alerts", json=poster.alert(event_id))
                assert r.status_code == (200 if event_id in in_db else 201), (event_id, r.text)
    finally:
        server.stop()
    with psycopg.connect(db_url) as conn:
        count, distinct = conn.execute("SELECT count(*), count(DISTINCT event_id) FROM alerts WHERE source = %s",
                                       ["kill-test"]).fetchone()
    assert count == distinct == len(set(poster.sent))


@pytest.fixture
def own_cluster():
    """A cluster of this test's own, so restarting it disturbs no other test."""
    home = Path(tempfile.mkdtemp(prefix="gw-restart-", dir="/tmp"))
    home.chmod(0o755)
    cluster = Cluster(home)
    cluster.start()
    with psycopg.connect(cluster.url()) as conn:
        migrate(conn)
        assert import_boundaries(conn, BOUNDARIES).ok
        index = GridIndex.load(conn)
        seed_cameras(conn, index, lambda _m: None)
        seed_teams(conn, index, lambda _m: None)
        key = create_key(conn, "ingest", "restart test")[1]
    yield cluster, key
    cluster.stop()
    state = cluster.state()
    shutil.rmtree(Path(state.data_dir).parent if not Path(state.data_dir).is_relative_to(home) else home,
                  ignore_errors=True)
    shutil.rmtree(home, ignore_errors=True)


def test_postgres_restart_gives_503_then_recovers_and_loses_nothing(own_cluster):
    cluster, key = own_cluster
    url = cluster.url()
    server = Server(url, env={"GRIDWATCH_HOME": str(cluster.home)}).start()
    poster = Poster(server.url, key, "restart-test", threads=2).start()
    try:
        time.sleep(1.5)
        cluster.stop()
        time.sleep(2.5)
        during = len(poster.statuses)
        cluster.start()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and poster.statuses[-1:] != [201]:
            time.sleep(0.2)
        time.sleep(1.0)
    finally:
        poster.stop()
        server.stop()
    assert 503 in poster.statuses[:during + 5] or poster.problems, "no 503 during the outage"
    assert all(s in (200, 201, 503) for s in poster.statuses)
    assert any("database" in p for p in poster.problems)
    assert poster.statuses[-1] == 201  # recovered by itself
    assert poster.acked <= stored(url, "restart-test")


def test_a_burst_of_requests_is_served_not_refused(db_url):
    """Found by hostile testing: 200 requests at once to one server process made every worker
    thread wait for a database connection while the requests holding one had no thread left to
    finish on; after 2 s most were refused 503 and /health took seconds. Requests now wait for
    a connection without holding a thread."""
    import asyncio

    with psycopg.connect(db_url) as conn:
        key = create_key(conn, "viewer", "burst")[1]
    server = Server(db_url, env={"GRIDWATCH_RATE_PER_S": "100000"}).start()

    async def burst() -> tuple[list[int], tuple[int, float]]:
        async with httpx.AsyncClient(base_url=server.url, headers=auth(key), timeout=60,
                                     limits=httpx.Limits(max_connections=None)) as client:
            async def health() -> tuple[int, float]:
                await asyncio.sleep(0.3)
                started = time.monotonic()
                r = await client.get("/health")
                return r.status_code, time.monotonic() - started

            answers = [client.get("/ogc/collections/grids/items?limit=1000") for _ in range(200)]
            *done, watched = await asyncio.gather(*answers, health())
            return [r.status_code for r in done], watched

    try:
        statuses, health = asyncio.run(burst())
        assert statuses.count(200) == 200, {s: statuses.count(s) for s in set(statuses)}
        assert health[0] == 200 and health[1] < 2.0, health
    finally:
        server.stop()
