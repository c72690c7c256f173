"""The embedded PostGIS: started by `gridwatch db start` as an unprivileged user, survives a
crash that leaves a stale pid file, and steps aside for GRIDWATCH_DATABASE_URL."""

import json
import os
import signal
import time
from pathlib import Path

import psycopg
import pytest
from conftest import gw


def test_start_crash_with_stale_pid_restart(home):
    started = gw(home, "db", "start")
    assert started.returncode == 0, started.stderr
    assert "initialising" in started.stderr and "starting PostgreSQL" in started.stderr
    status = json.loads(gw(home, "db", "status").stdout)
    assert status["running"] and status["data_dir"] == str(home / "pg")
    if os.geteuid() == 0:
        assert status["run_user"] == "postgres" and (home / "pg").owner() == "postgres"
    url = gw(home, "db", "url").stdout.strip()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION postgis")
        conn.execute("CREATE TABLE kept AS SELECT 42 AS answer")

    # A crash: the whole server killed at once, its pid file left behind naming a pid
    # that now belongs to another (live) process.
    os.killpg(status["pid"], signal.SIGKILL)
    deadline = time.monotonic() + 10
    while Path(f"/proc/{status['pid']}").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    pid_file = home / "pg" / "postmaster.pid"
    lines = pid_file.read_text().split("\n")
    pid_file.write_text("\n".join([str(os.getpid()), *lines[1:]]))
    assert json.loads(gw(home, "db", "status").stdout)["running"] is False

    again = gw(home, "db", "start")
    assert again.returncode == 0, again.stderr
    assert "stale" in again.stderr
    with psycopg.connect(gw(home, "db", "url").stdout.strip()) as conn:
        assert conn.execute("SELECT answer FROM kept").fetchone()[0] == 42
        assert conn.execute("SELECT postgis_lib_version()").fetchone()[0].startswith("3.")

    assert gw(home, "db", "stop").returncode == 0
    assert json.loads(gw(home, "db", "status").stdout)["running"] is False
    stopped_again = gw(home, "db", "stop")
    assert stopped_again.returncode == 0 and "not running" in stopped_again.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="the fallback is for root, whose clone postgres cannot reach")
def test_root_with_unreachable_home_keeps_data_where_postgres_can_reach(home):
    home.chmod(0o700)  # like a clone in `mktemp -d`
    started = gw(home, "db", "start")
    assert started.returncode == 0, started.stderr
    status = json.loads(gw(home, "db", "status").stdout)
    assert status["running"] and status["data_dir"].startswith("/var/lib/gridwatch/")
    with psycopg.connect(gw(home, "db", "url").stdout.strip()) as conn:
        assert conn.execute("SELECT 1").fetchone()[0] == 1


def test_database_url_switches_to_an_external_server(db_url):
    started = gw(Path("/nonexistent"), "db", "start", GRIDWATCH_DATABASE_URL=db_url)
    assert started.returncode == 0 and "nothing to start" in started.stderr
    status = json.loads(gw(Path("/nonexistent"), "db", "status", GRIDWATCH_DATABASE_URL=db_url).stdout)
    assert status == {"external": True, "url": db_url}


def test_migrations_apply_once(db_url):
    first = gw(Path("/nonexistent"), "db", "migrate", GRIDWATCH_DATABASE_URL=db_url)
    assert first.returncode == 0 and "up to date" in first.stderr
    with psycopg.connect(db_url) as conn:
        names = [r[0] for r in conn.execute("SELECT name FROM schema_migrations ORDER BY version")]
    assert names[:2] == ["0001_boundaries", "0002_api_keys"]


def test_unreachable_database_is_one_clear_line(tmp_path):
    done = gw(tmp_path, "grids", "import", "data/boundaries",
              GRIDWATCH_DATABASE_URL="postgresql://nobody@127.0.0.1:9/none?connect_timeout=1")
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1].startswith("error: database unavailable")
