"""Monthly partitions (migration 0017): alerts, GPS pings and the audit log by month, the
coming months made ahead, a key unique across months, retention dropping whole months (but
never an active incident's evidence), the audit log's partitions append-only for the server,
and the in-place conversion of a database holding the demo history: the same counts and the
same answers from /alerts and /stats before and after."""

import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from conftest import BOUNDARIES, _recreate, auth, url_for
from fastapi.testclient import TestClient
from test_alert_ingest import alert, post

from gridwatch.alerts.retention import purge
from gridwatch.alerts.snapshots import store
from gridwatch.api.app import create_app
from gridwatch.api.auth import create_key
from gridwatch.config import DatabaseSettings
from gridwatch.db import APP_ROLE, partitions
from gridwatch.db.migrate import migrate
from gridwatch.demo.history import load_history
from gridwatch.demo.places import seed_cameras, seed_teams
from gridwatch.geo.boundaries import import_boundaries
from gridwatch.geo.grid_index import GridIndex

TABLES = ("alerts", "team_positions", "audit_log")


def month_start(t: datetime) -> datetime:
    return t.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def add_months(t: datetime, n: int) -> datetime:
    y, m = divmod(t.month - 1 + n, 12)
    return t.replace(year=t.year + y, month=m + 1)


def partition_of(conn, table: str, where: str, params: list) -> str:
    return conn.execute(f"SELECT tableoid::regclass::text FROM {table} WHERE {where}", params).fetchone()[0]


def months(conn, table: str) -> list[datetime]:
    return [r[0] for r in conn.execute("SELECT lo FROM month_partitions(%s::regclass)", [table])]


def test_this_month_and_the_next_three_exist_for_each_table(conn):
    this = month_start(datetime.now(UTC))
    for table in TABLES:
        assert {add_months(this, n) for n in range(4)} <= set(months(conn, table)), table
        assert conn.execute("SELECT to_regclass(%s)", [f"{table}_default"]).fetchone()[0] is not None


def test_a_key_posted_in_two_months_is_one_alert(client, keys, conn):
    """The second post of a key carries a time in another month (and another partition): a
    repeat, answered with the first result, whether the first waits in the default partition,
    sits in its own month's, or the repeat comes in a large batch (COPY)."""
    long_ago = datetime.now(UTC) - timedelta(days=75)
    first = post(client, keys, alert(event_id="months-1", occurred_at=long_ago.isoformat()))
    assert first.status_code == 201, first.text
    alert_id = first.json()["alert_id"]
    assert partition_of(conn, "alerts", "id = %s", [alert_id]) == "alerts_default"
    again = post(client, keys, alert(event_id="months-1"))
    assert again.status_code == 200 and again.json() == {**first.json(), "repeat": True}

    conn.commit()
    partitions.ensure(conn)  # its month is made, and it moves there
    month = f"alerts_p{month_start(long_ago):%Y_%m}"
    assert partition_of(conn, "alerts", "id = %s", [alert_id]) == month
    again = post(client, keys, alert(event_id="months-1", occurred_at=(long_ago + timedelta(days=40)).isoformat()))
    assert again.status_code == 200 and again.json()["alert_id"] == alert_id, again.text

    batch = [alert(event_id=f"months-batch-{i}") for i in range(250)] + [alert(event_id="months-1")]
    r = client.post("/alerts/batch", json=batch, headers=auth(keys["ingest"]))
    assert r.status_code == 201, r.text
    body = r.json()
    assert (body["created"], body["repeated"]) == (250, 1)
    assert body["results"][-1]["alert_id"] == alert_id and body["results"][-1]["repeat"]
    assert conn.execute("SELECT count(*) FROM alerts WHERE source = 'test' AND event_id = 'months-1'"
                        ).fetchone()[0] == 1
    assert conn.execute("SELECT alert_id FROM alert_keys WHERE source = 'test' AND event_id = 'months-1'"
                        ).fetchone()[0] == alert_id


def test_alerts_dated_years_back_make_no_partition_of_their_own(client, keys, conn):
    """A camera key posting alerts dated over many past years must not make a partition for
    each of their months: beyond 24 months back they stay in the default partition."""
    old = [alert(event_id=f"ancient-{year}", occurred_at=f"{year}-06-15T12:00:00+00:00") for year in range(2001, 2011)]
    assert client.post("/alerts/batch", json=old, headers=auth(keys["ingest"])).status_code == 201
    conn.commit()
    partitions.ensure(conn)
    assert conn.execute("SELECT count(*) FROM alerts_default WHERE event_id LIKE 'ancient-%%'").fetchone()[0] == 10
    assert conn.execute("SELECT count(*) FROM pg_class WHERE relname ~ '^alerts_p20(0[0-9]|10)_'").fetchone()[0] == 0


def test_the_partitioned_tables_get_statistics_as_a_whole(client, keys, conn):
    """Autovacuum never analyzes a partitioned table as a whole; without its statistics the
    OGC extent of alerts (PostGIS's estimate) would be read from every alert."""
    for i in range(20):
        assert post(client, keys, alert(camera_id=f"CAM-{i + 10:04d}")).status_code == 201
    conn.commit()
    partitions.ensure(conn)
    assert conn.execute("SELECT ST_EstimatedExtent('public', 'alerts', 'geom')").fetchone()[0] is not None


def test_concurrent_posts_of_one_key_in_different_months_store_one(client, keys, conn):
    event = f"race-{uuid.uuid4().hex[:8]}"
    times = [(datetime.now(UTC) - timedelta(days=35 * i)).isoformat() for i in range(8)]
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda t: post(client, keys, alert(event_id=event, occurred_at=t)), times))
    assert sorted(r.status_code for r in answers) == [200] * 7 + [201]
    assert len({r.json()["alert_id"] for r in answers}) == 1
    assert conn.execute("SELECT count(*) FROM alerts WHERE event_id = %s", [event]).fetchone()[0] == 1


def test_retention_drops_a_month_whole_but_keeps_an_active_incidents_evidence(client, keys, conn):
    """Two months past retention: the one whose incidents have been quiet is dropped whole
    (its keys and snapshots with it); the one holding an alert of an incident worked on today
    loses only its other alerts, and is dropped once that incident is quiet too."""
    now = datetime.now(UTC)
    quiet_month, active_month = add_months(month_start(now), -15), add_months(month_start(now), -14)
    posted = {}
    for label, month, camera in (("quiet", quiet_month, "CAM-0003"), ("active", active_month, "CAM-0004")):
        for i in range(3):
            when = month + timedelta(days=3 + 5 * i)  # a few incidents: the windows are hours
            r = post(client, keys, alert(event_id=f"old-{label}-{i}", camera_id=camera, occurred_at=when.isoformat()))
            assert r.status_code == 201, r.text
            posted[(label, i)] = r.json()
    conn.execute("UPDATE incidents SET updated_at = last_seen WHERE id = ANY(%s)",
                 [[r["incident_id"] for r in posted.values()]])
    evidence = posted[("active", 1)]
    conn.execute("UPDATE incidents SET updated_at = now() WHERE id = %s", [evidence["incident_id"]])
    store(conn, posted[("quiet", 0)]["alert_id"], b"\xff\xd8 a quiet month's frame")
    conn.commit()
    partitions.ensure(conn)
    assert {quiet_month, active_month} <= set(months(conn, "alerts"))

    done = purge(conn, now)
    assert done["alerts"] >= 5
    assert quiet_month not in months(conn, "alerts") and active_month in months(conn, "alerts")
    left = {r[0] for r in conn.execute("SELECT event_id FROM alerts WHERE event_id LIKE 'old-%%'")}
    assert left == {"old-active-1"}
    assert conn.execute("SELECT count(*) FROM alert_keys WHERE event_id LIKE 'old-%%'").fetchone()[0] == 1
    assert conn.execute("SELECT count(*) FROM snapshots WHERE alert_id = %s",
                        [posted[("quiet", 0)]["alert_id"]]).fetchone()[0] == 0
    # the incidents stay, with their counts
    assert conn.execute("SELECT count(*) FROM incidents WHERE id = ANY(%s)",
                        [[r["incident_id"] for r in posted.values()]]).fetchone()[0] == len(
        {r["incident_id"] for r in posted.values()})

    conn.execute("UPDATE incidents SET updated_at = last_seen WHERE id = %s", [evidence["incident_id"]])
    conn.commit()
    assert purge(conn, now)["alerts"] == 1
    assert active_month not in months(conn, "alerts")
    # a repeat of a key whose alert retention removed is a new alert
    r = post(client, keys, alert(event_id="old-active-1", camera_id="CAM-0004"))
    assert r.status_code == 201 and r.json()["alert_id"] != evidence["alert_id"]


def _held_insert(db_url: str, like: int, event_id: str, occurred_at: datetime) -> psycopg.Connection:
    """A connection in the middle of storing an alert (a copy of alert `like`, with its own key
    and time, in no incident): the row is written, not yet committed."""
    writer = psycopg.connect(db_url)
    writer.execute("INSERT INTO alerts SELECT (jsonb_populate_record(a, jsonb_build_object("
                   "'id', nextval('alerts_id_seq'), 'event_id', %s::text, 'occurred_at', %s::timestamptz, "
                   "'incident_id', NULL))).* FROM alerts a WHERE a.id = %s", [event_id, occurred_at, like])
    return writer


def _commit_soon(writer: psycopg.Connection, job):
    """Run `job` in a thread while `writer` still holds its row, commit that row half a second
    later, and return what the job returned."""
    with ThreadPoolExecutor(1) as pool:
        done = pool.submit(job)
        time.sleep(0.5)
        writer.commit()
        writer.close()
        return done.result(timeout=30)


def test_an_alert_stored_while_its_month_moves_out_of_the_default_partition_is_kept(client, keys, conn, db_url):
    """Moving a month out of the default partition holds it: an alert of that month stored
    meanwhile is moved with the others, neither lost nor in the way of the attach."""
    month = add_months(month_start(datetime.now(UTC)), -7)
    first = post(client, keys, alert(event_id="moving-0", occurred_at=(month + timedelta(days=2)).isoformat()))
    assert first.status_code == 201
    conn.commit()
    writer = _held_insert(db_url, first.json()["alert_id"], "moving-1", month + timedelta(days=3))

    def ensure() -> int:
        with psycopg.connect(db_url) as other:
            return partitions.ensure(other)

    assert _commit_soon(writer, ensure) >= 1
    name = f"alerts_p{month:%Y_%m}"
    assert {r[0] for r in conn.execute("SELECT tableoid::regclass::text FROM alerts WHERE event_id LIKE "
                                       "'moving-%%'")} == {name}
    assert conn.execute("SELECT count(*) FROM alert_keys k JOIN alerts a ON a.id = k.alert_id "
                        "WHERE k.event_id LIKE 'moving-%%'").fetchone()[0] == 2


def test_an_alert_stored_while_retention_drops_its_month_leaves_no_key_behind(client, keys, conn, db_url):
    """Retention holds a month before it deletes the month's keys and drops it: an alert of
    that month stored meanwhile goes with it, key and all, and its key is new again."""
    month = add_months(month_start(datetime.now(UTC)), -16)
    first = post(client, keys, alert(event_id="dropping-0", occurred_at=(month + timedelta(days=2)).isoformat()))
    assert first.status_code == 201
    conn.execute("UPDATE incidents SET updated_at = last_seen WHERE id = %s", [first.json()["incident_id"]])
    conn.commit()
    partitions.ensure(conn)
    writer = _held_insert(db_url, first.json()["alert_id"], "dropping-1", month + timedelta(days=3))

    def retain() -> dict:
        with psycopg.connect(db_url) as other:
            return purge(other, datetime.now(UTC))

    _commit_soon(writer, retain)
    assert month not in months(conn, "alerts")
    assert conn.execute("SELECT count(*) FROM alert_keys WHERE event_id LIKE 'dropping-%%'").fetchone()[0] == 0
    again = post(client, keys, alert(event_id="dropping-1"))
    assert again.status_code == 201, again.text


def test_a_key_whose_alert_is_gone_takes_its_alert_anew(client, keys, conn):
    """A key left behind by its alert (removed by hand, say) does not refuse that key for ever."""
    first = post(client, keys, alert(event_id="orphan-1"))
    assert first.status_code == 201
    conn.execute("ALTER TABLE alerts DISABLE TRIGGER USER")  # as a hand-made delete that forgot the key
    conn.execute("DELETE FROM alerts WHERE id = %s", [first.json()["alert_id"]])
    conn.execute("ALTER TABLE alerts ENABLE TRIGGER USER")
    conn.commit()
    assert conn.execute("SELECT count(*) FROM alert_keys WHERE event_id = 'orphan-1'").fetchone()[0] == 1
    for body in (alert(event_id="orphan-1"), [alert(event_id="orphan-1"), alert(event_id="orphan-2")]):
        r = client.post("/alerts/batch" if isinstance(body, list) else "/alerts", json=body,
                        headers=auth(keys["ingest"]))
        assert r.status_code in (200, 201), r.text
    assert conn.execute("SELECT count(*) FROM alerts WHERE event_id LIKE 'orphan-%%'").fetchone()[0] == 2


def test_retention_drops_old_months_of_positions(conn):
    long_ago = add_months(month_start(datetime.now(UTC)), -3) + timedelta(days=2)
    conn.execute("INSERT INTO team_positions (team_id, at, geom) SELECT id, %s, base FROM teams LIMIT 5",
                 [long_ago])
    conn.commit()
    partitions.ensure(conn)
    month = month_start(long_ago)
    assert month in months(conn, "team_positions")
    assert purge(conn, datetime.now(UTC))["team_positions"] >= 5
    assert month not in months(conn, "team_positions")


def test_the_server_cannot_delete_from_an_audit_partition_and_purge_drops_old_months(db_url):
    """Default privileges would grant the server DELETE on every new table: each audit
    partition, those made later included, refuses it, as the audit log itself does. purge_audit
    drops old months and still never touches the last day's rows."""
    long_ago = add_months(month_start(datetime.now(UTC)), -5) + timedelta(days=1)
    with psycopg.connect(db_url, options=f"-c role={APP_ROLE}") as conn:
        conn.execute("INSERT INTO audit_log (at, key_id, role, method, path, status, ms) "
                     "VALUES (%s, NULL, 'system', 'GET', '/five-months-ago', 200, 1), "
                     "(now(), NULL, 'system', 'GET', '/today', 200, 1)", [long_ago])
        conn.commit()
        assert partition_of(conn, "audit_log", "path = '/five-months-ago'", []) == "audit_log_default"
        conn.commit()
        assert partitions.ensure(conn) >= 1  # the server itself makes the month, and moves the row
        month = f"audit_log_p{month_start(long_ago):%Y_%m}"
        assert partition_of(conn, "audit_log", "path = '/five-months-ago'", []) == month
        this_month = f"audit_log_p{month_start(datetime.now(UTC)):%Y_%m}"
        for table in (month, this_month, "audit_log_default"):
            for sql in (f"DELETE FROM {table}", f"UPDATE {table} SET path = '/forged'", f"TRUNCATE {table}"):
                with pytest.raises(psycopg.errors.InsufficientPrivilege):
                    conn.execute(sql)
                conn.rollback()
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SELECT drop_month_partition('audit_log', %s)", [month_start(long_ago)])
        conn.rollback()
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(f"DROP TABLE {month}")
        conn.rollback()
        assert conn.execute("SELECT purge_audit(now() + interval '1 year')").fetchone()[0] >= 1
        conn.commit()
        assert month_start(long_ago) not in months(conn, "audit_log")
        paths = {r[0] for r in conn.execute("SELECT path FROM audit_log WHERE path IN ('/five-months-ago', '/today')")}
        assert paths == {"/today"}


# -- the conversion of a database holding the demo history -----------------------------------

OLD = "gw_t_partitions_conversion"


@pytest.fixture(scope="module")
def old_db(server_url: str) -> str:
    """A database as the release before the partitions left it (migrations up to 0016), with
    the demo county and a replayed history that crosses a month's end."""
    _recreate(server_url, OLD)
    url = url_for(server_url, OLD)
    with psycopg.connect(url) as conn:
        migrate(conn, until=16)
        assert conn.execute("SELECT max(version) FROM schema_migrations").fetchone()[0] == 16
        assert import_boundaries(conn, BOUNDARIES).ok
        index = GridIndex.load(conn)
        seed_cameras(conn, index, lambda _m: None)
        seed_teams(conn, index, lambda _m: None)
        # Today's pipeline replays the history; it looks for repeats in alert_keys, which the old
        # schema lacks: a view over alerts stands in (alerts' own unique key still refuses a
        # repeat), and goes before the migration. The history ends a day into this month, so its
        # alerts fall in two months.
        conn.execute("CREATE VIEW alert_keys AS SELECT source, event_id, id AS alert_id, occurred_at FROM alerts")
        load_history(conn, index, days=3, progress=lambda _m: None,
                     now=month_start(datetime.now(UTC)) + timedelta(days=1))
        conn.execute("DROP VIEW alert_keys")
        conn.commit()
    return url


def unstamped(body):
    """An answer without the time it was computed at (the hot spots say it)."""
    if isinstance(body, dict):
        return {k: unstamped(v) for k, v in body.items() if k != "computed_at"}
    if isinstance(body, list):
        return [unstamped(v) for v in body]
    return body


def answers(url: str, keys: dict[str, str], alert_ids: list[int], since: datetime, until: datetime) -> dict:
    """What the API says about the history, through the real application."""
    window = {"since": since.isoformat(), "until": until.isoformat()}
    week = {"since": (until - timedelta(days=2)).isoformat()}
    viewer = auth(keys["viewer"])
    queries = [("/alerts", {"limit": 10_000}), ("/alerts", {**week, "limit": 500}),
               ("/alerts", {**week, "type": "fire_smoke"}), ("/alerts", {**window, "offset": 100, "limit": 50}),
               ("/alerts", {"unassigned": "true"}), ("/stats/grids", window),
               ("/stats/heat", {**window, "cell_m": 500}), ("/stats/hotspots", window), ("/stats/timeline", window),
               ("/stats/deadlines", window), ("/stats/response", window)]
    got = {}
    with TestClient(create_app(DatabaseSettings(database_url=url)), raise_server_exceptions=False) as client:
        for path, params in queries:
            r = client.get(path, params=params, headers=viewer)
            assert r.status_code == 200, (path, r.text)
            got[f"{path} {sorted(params.items())}"] = unstamped(r.json())
        for alert_id in alert_ids:
            got[f"/alerts/{alert_id}"] = client.get(f"/alerts/{alert_id}", headers=viewer).json()
        r = client.get(f"/alerts/{alert_ids[0]}/snapshot", headers=viewer)
        got["snapshot"] = (r.status_code, r.content)
    return got


COUNTS = ("SELECT (SELECT count(*) FROM alerts), (SELECT coalesce(sum(id), 0) FROM alerts), "
          "(SELECT count(*) FROM incidents), (SELECT count(*) FROM team_positions), "
          "(SELECT count(*) FROM audit_log), (SELECT count(*) FROM snapshots), "
          "(SELECT count(DISTINCT date_trunc('month', occurred_at, 'UTC')) FROM alerts)")


def test_the_conversion_keeps_counts_and_answers(old_db):
    with psycopg.connect(old_db) as conn:
        keys = {role: create_key(conn, role, f"conversion {role}")[1] for role in ("viewer", "operator", "ingest")}
        first, last, since, until, team = conn.execute(
            "SELECT min(id), max(id), min(occurred_at), max(occurred_at) + interval '1 second', "
            "(SELECT min(id) FROM teams) FROM alerts").fetchone()
        conn.execute("INSERT INTO snapshots (alert_id, jpeg) VALUES (%s, %s)", [first, b"\xff\xd8 the first frame"])
        conn.commit()
    with TestClient(create_app(DatabaseSettings(database_url=old_db))) as client:  # positions and audit rows
        r = client.post(f"/patrols/{team}/positions", json={"lon": 100.99, "lat": 36.9},
                        headers=auth(keys["operator"]))
        assert r.status_code in (200, 201), r.text
    before = answers(old_db, keys, [first, last], since, until)
    with psycopg.connect(old_db) as conn:
        counted = conn.execute(COUNTS).fetchone()
        assert counted[0] > 500 and counted[3] >= 1 and counted[4] > 0 and counted[6] == 2

        assert migrate(conn) == ["0017_monthly_partitions.sql"]
        assert conn.execute(COUNTS).fetchone() == counted
        # each row sits in its month's partition, none in a default one
        for table in TABLES:
            assert conn.execute(f"SELECT count(*) FROM {table}_default").fetchone()[0] == 0, table
        assert conn.execute("SELECT count(DISTINCT tableoid) FROM alerts").fetchone()[0] == 2
        assert conn.execute("SELECT count(*) FROM alert_keys").fetchone()[0] == counted[0]
        audit_rows = conn.execute("SELECT count(*) FROM audit_log").fetchone()[0]
    after = answers(old_db, keys, [first, last], since, until)
    assert after.keys() == before.keys()
    for query in before:
        assert after[query] == before[query], query

    with TestClient(create_app(DatabaseSettings(database_url=old_db))) as client:
        # ids go on; a key of the history is still a repeat
        with psycopg.connect(old_db) as conn:
            source, event_id = conn.execute("SELECT source, event_id FROM alerts WHERE id = %s", [last]).fetchone()
            assert conn.execute("SELECT count(*) FROM audit_log").fetchone()[0] >= audit_rows
        r = post(client, keys, alert(source=source, event_id=event_id))
        assert r.status_code == 200 and r.json()["alert_id"] == last
        r = post(client, keys, alert())
        assert r.status_code == 201 and r.json()["alert_id"] > last
