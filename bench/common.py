"""Shared by the bench scripts: a fresh database, a server's port, the results file.

    python bench/common.py fresh    # print the URL of a fresh bench database
"""

import json
import os
import platform
import socket
import sys
import time
from pathlib import Path

import httpx
import psycopg
from psycopg.conninfo import make_conninfo

from gridwatch.db import database_url
from gridwatch.db.migrate import migrate
from gridwatch.demo.places import seed_cameras, seed_teams
from gridwatch.geo.boundaries import import_boundaries
from gridwatch.geo.grid_index import GridIndex

RESULTS = Path(__file__).parent / "results"
ROOT = Path(__file__).resolve().parents[1]
DB = "gridwatch_bench"


def connect() -> psycopg.Connection:
    return psycopg.connect(database_url())


def record(name: str, **figures) -> None:
    """Append one JSON line to bench/results/NAME.jsonl."""
    RESULTS.mkdir(exist_ok=True)
    line = {"bench": name, "at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "host": platform.node(),
            "cpus": os.cpu_count(), **figures}
    with open(RESULTS / f"{name}.jsonl", "a") as fh:
        fh.write(json.dumps(line) + "\n")


def fresh_database() -> str:
    """An empty gridwatch database with the demo county's boundaries, cameras and teams."""
    admin = make_conninfo(database_url(), dbname="postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {DB}")
    url = make_conninfo(database_url(), dbname=DB)
    with psycopg.connect(url) as conn:
        migrate(conn)
        import_boundaries(conn, ROOT / "data" / "boundaries")
        index = GridIndex.load(conn)
        seed_cameras(conn, index, lambda _m: None)
        seed_teams(conn, index, lambda _m: None)
    return url


def drop_database() -> None:
    with psycopg.connect(make_conninfo(database_url(), dbname="postgres"), autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")


def free_port() -> int:

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(port: int) -> None:
    for _ in range(150):
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit("the server did not start")


if __name__ == "__main__" and sys.argv[1:] == ["fresh"]:
    print(fresh_database())
