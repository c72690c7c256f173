"""The simulator posts a realistic feed to a running server; the demo history replays
days of alerts through the pipeline and leaves a county with open and overdue incidents."""

import os
import subprocess
from datetime import UTC, datetime

import psycopg
from conftest import GRIDWATCH, Server

from gridwatch.demo.history import load_history
from gridwatch.geo.grid_index import GridIndex


def test_simulator_feed_reaches_the_server(db_url, keys):
    server = Server(db_url).start()
    try:
        with psycopg.connect(db_url) as conn:
            before = conn.execute("SELECT count(*) FROM alerts").fetchone()[0]
        done = subprocess.run([GRIDWATCH, "alerts", "simulate", "--rate", "40", "--duration", "5", "--url", server.url,
                               "--key", keys["operator"]], capture_output=True, text=True, timeout=60,
                              env={"PATH": os.environ["PATH"], "GRIDWATCH_DATABASE_URL": db_url})
        assert done.returncode == 0, done.stderr
        summary = done.stdout
        assert "sent 200" in summary and " 0 failed" in summary
        created = int(summary.split(": ")[1].split(" created")[0])
        with psycopg.connect(db_url) as conn:
            after = conn.execute("SELECT count(*) FROM alerts").fetchone()[0]
            incidents = conn.execute("SELECT count(*), sum(alert_count) FROM incidents WHERE first_seen > now() - "
                                     "interval '1 minute'").fetchone()
        assert after - before == created > 150
        assert incidents[0] < created  # repeats were grouped
    finally:
        server.stop()


def test_history_leaves_a_living_county(db_url):
    with psycopg.connect(db_url) as conn:
        conn.execute("DELETE FROM incident_events; DELETE FROM incident_departments; DELETE FROM alerts; "
                     "DELETE FROM incidents")
        conn.commit()
        n = load_history(conn, GridIndex.load(conn), days=3, progress=lambda _m: None, now=datetime.now(UTC))
        statuses = dict(conn.execute("SELECT status, count(*) FROM incidents GROUP BY 1").fetchall())
        grouped = conn.execute("SELECT count(*) FROM incidents WHERE alert_count > 1").fetchone()[0]
        states = conn.execute("SELECT count(*) FILTER (WHERE contact_state = 'missed'), "
                              "count(*) FILTER (WHERE escalation_level > 0), count(DISTINCT grid_code), "
                              "count(*) FILTER (WHERE status = 'closed' AND feedback_at IS NULL) "
                              "FROM incidents").fetchone()
        methods = dict(conn.execute("SELECT position_method, count(*) FROM alerts GROUP BY 1").fetchall())
    assert 600 < n < 2000
    assert statuses.get("closed", 0) > 100 and statuses.get("false_alarm", 0) > 0
    assert sum(statuses.get(s, 0) for s in ("dispatched", "acknowledged", "on_scene", "resolved")) > 0
    assert grouped > 50
    assert states[0] > 0 and states[1] > 0 and states[2] > 40 and states[3] == 0
    assert methods.get("homography", 0) > 0 and methods.get("camera", 0) > 0


def test_simulator_without_a_server_is_one_clear_line():
    done = subprocess.run([GRIDWATCH, "alerts", "simulate", "--rate", "1", "--duration", "1", "--url",
                           "http://127.0.0.1:9", "--key", "gw_x"], capture_output=True, text=True, timeout=60,
                          env={"PATH": os.environ["PATH"]})
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [done.stderr.strip().splitlines()[-1]]
    assert done.stderr.startswith("error: cannot reach")
