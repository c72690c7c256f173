"""One real PostGIS per test session (the embedded cluster, or GRIDWATCH_DATABASE_URL),
a fresh database per test module cloned from a template holding the demo boundaries."""

import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
from fastapi.testclient import TestClient
from psycopg.conninfo import make_conninfo

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("GRIDWATCH_HOME", str(ROOT / "var"))

from gridwatch.api.app import create_app  # noqa: E402
from gridwatch.api.auth import create_key  # noqa: E402
from gridwatch.config import DatabaseSettings  # noqa: E402
from gridwatch.db import embedded_cluster  # noqa: E402
from gridwatch.db.cluster import Cluster  # noqa: E402
from gridwatch.db.migrate import migrate  # noqa: E402
from gridwatch.demo.places import seed_cameras, seed_teams  # noqa: E402
from gridwatch.geo.boundaries import import_boundaries  # noqa: E402
from gridwatch.geo.grid_index import GridIndex  # noqa: E402

BOUNDARIES = ROOT / "data" / "boundaries"
# The console script of the venv running the tests.
GRIDWATCH = str(Path(sys.executable).parent / "gridwatch")
TEMPLATE = "gw_test_template"


@pytest.fixture(scope="session")
def server_url() -> str:
    """A URL of the PostGIS server's maintenance database."""
    external = os.environ.get("GRIDWATCH_DATABASE_URL")
    if external:
        return make_conninfo(external, dbname="postgres")
    cluster = embedded_cluster()
    cluster.start()
    return cluster.url("postgres")


def url_for(server_url: str, dbname: str) -> str:
    return make_conninfo(server_url, dbname=dbname)


def _recreate(server_url: str, name: str, template: str | None = None) -> None:
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {name}" + (f" TEMPLATE {template}" if template else ""))


@pytest.fixture(scope="session")
def template_db(server_url: str) -> str:
    """A migrated database with the demo county (boundaries, cameras, teams; no alerts),
    to clone per module."""
    _recreate(server_url, TEMPLATE)
    with psycopg.connect(url_for(server_url, TEMPLATE)) as conn:
        migrate(conn)
        report = import_boundaries(conn, BOUNDARIES)
        assert report.ok, report.errors
        index = GridIndex.load(conn)
        seed_cameras(conn, index, lambda _m: None)
        seed_teams(conn, index, lambda _m: None)
    return TEMPLATE


@pytest.fixture(scope="module")
def db_url(server_url: str, template_db: str, request) -> Iterator[str]:
    """A fresh database for this test module, with the demo boundaries (version 1)."""
    name = "gw_t_" + re.sub(r"\W", "_", request.module.__name__.rsplit(".", 1)[-1])[:50]
    _recreate(server_url, name, template_db)
    yield url_for(server_url, name)


@pytest.fixture
def conn(db_url: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(db_url) as conn:
        yield conn


@pytest.fixture(scope="module")
def settings(db_url: str) -> DatabaseSettings:
    return DatabaseSettings(database_url=db_url)


@pytest.fixture(scope="module")
def client(settings: DatabaseSettings) -> Iterator[TestClient]:
    """The real application in-process (lifespan included: pool, grid index, audit log)."""
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield client


@pytest.fixture(scope="module")
def keys(db_url: str) -> dict[str, str]:
    """One key per role."""
    with psycopg.connect(db_url) as conn:
        return {role: create_key(conn, role, f"test {role}")[1]
                for role in ("viewer", "operator", "dispatcher", "admin", "ingest")}


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def gw(home: Path, *args: str, **env) -> subprocess.CompletedProcess:
    """The gridwatch command with `home` as GRIDWATCH_HOME and nothing else of this environment."""
    return subprocess.run([GRIDWATCH, *args], capture_output=True, text=True, timeout=180,
                          env={"PATH": os.environ["PATH"], "GRIDWATCH_HOME": str(home), **env})


@pytest.fixture
def home() -> Iterator[Path]:
    """A throwaway embedded cluster's home, which the `postgres` account can reach (/tmp/x with
    mode 755); its replica, if one was made, and its cluster are stopped and removed after the
    test (the session's cluster keeps running)."""
    path = Path(tempfile.mkdtemp(prefix="gw-home-", dir="/tmp"))
    path.chmod(0o755)
    yield path
    if (path / "replica.json").exists():
        gw(path, "db", "replica", "stop")
    Cluster(path).stop()
    state = Cluster(path).state()
    if state and not Path(state.data_dir).is_relative_to(path):
        shutil.rmtree(Path(state.data_dir).parent, ignore_errors=True)
    shutil.rmtree(path, ignore_errors=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`gridwatch serve` as a real process on a free port."""

    def __init__(self, db_url: str | None, workers: int = 1, env: dict | None = None,
                 command: str = GRIDWATCH, cwd: Path = ROOT) -> None:
        # db_url None: the server's own embedded PostGIS (GRIDWATCH_HOME in env); command and
        # cwd: another install of gridwatch, run from elsewhere
        self.port = free_port()
        self.env = {**os.environ, "GRIDWATCH_BOUNDARY_POLL_S": "1", **(env or {})}
        if db_url:
            self.env["GRIDWATCH_DATABASE_URL"] = db_url
        else:
            self.env.pop("GRIDWATCH_DATABASE_URL", None)
        self.command, self.cwd = command, cwd
        self.url = f"{'https' if 'GRIDWATCH_TLS_CERT' in self.env else 'http'}://127.0.0.1:{self.port}"
        self.workers = workers
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 30) -> "Server":
        self.proc = subprocess.Popen([self.command, "serve", "--port", str(self.port),
                                      "--workers", str(self.workers)], env=self.env, cwd=self.cwd,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + "/health", timeout=1, verify=False).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.proc.stderr.read().decode()[-2000:]}")
            time.sleep(0.2)
        raise RuntimeError("server did not become healthy")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, 15)
            self.proc.wait(timeout=15)


@pytest.fixture(scope="module")
def browser():
    """A headless Chromium (Debian's) driven by Playwright, for the pages' tests."""
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.fail("chromium is not installed: `make test` installs it (apt-get install chromium)")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run", "--disable-quic"])
        yield browser
        browser.close()
