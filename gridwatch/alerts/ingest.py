"""From alert to placed, matched, grouped, assigned incident, in one transaction.

The same pipeline serves one alert (POST /alerts, MQTT) and ten thousand (POST
/alerts/batch): check everything first (all or nothing), place, find the grid, group
into incidents under locks, choose teams for new incidents, then write. The
database is asked in a few pipelined round trips whatever the number of alerts, and the
alerts are written with COPY. A repeated (source, event_id) returns the first result and
writes nothing.
"""

import hashlib
import struct
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

import numpy as np
import orjson
import psycopg

from gridwatch.alerts import assignments
from gridwatch.alerts.cameras import Camera
from gridwatch.alerts.dispatch import BOARD_SQL, TeamBoard
from gridwatch.alerts.grouping import (
    AlertPoint,
    Group,
    assign,
    candidates_from_rows,
    candidates_query,
)
from gridwatch.alerts.model import AlertIn
from gridwatch.alerts.registry import Registry
from gridwatch.alerts.types import auto_dispatched, type_windows
from gridwatch.errors import BadInput
from gridwatch.geo.crs import metres_between
from gridwatch.geo.grid_index import GridIndex

# An alert from further in the future than this is a wrong clock, not an event.
MAX_FUTURE = timedelta(minutes=5)
CONTACT_WITHIN = timedelta(hours=1)
RESOLVE_WITHIN = timedelta(days=3)
# An alert further than this from every grid has no real position (no fix, or lon/lat swapped).
NO_FIX_M = 50_000.0
# A homography answer further than this from the camera is not believed.
PLACE_SLACK_M = 200.0

# Grouping locks. Two alerts that could join one incident share their type and either a
# camera or a grid, so a small ingest locks (type, camera) and (type, grid), in one global
# order (no deadlocks), under a shared lock on the type; a large batch takes the type's
# lock exclusively instead (thousands of fine locks would exhaust the lock table).
# (a lock function is volatile, so it runs after the sort: in order)
_TYPE_LOCKS_SHARED_SQL = ("SELECT pg_advisory_xact_lock_shared(hashtext('gridwatch.incident.' || t)) "
                          "FROM unnest(%b::text[]) t ORDER BY t")
_TYPE_LOCKS_SQL = ("SELECT pg_advisory_xact_lock(hashtext('gridwatch.incident.' || t)) "
                   "FROM unnest(%b::text[]) t ORDER BY t")
_KEY_LOCKS_SQL = "SELECT pg_advisory_xact_lock(k) FROM unnest(%b::int[]) k ORDER BY k"
FINE_LOCKS_UP_TO = 200
# Repeats are found by their key in alert_keys (unique across the months alerts are
# partitioned by; triggers write it in the statement that writes the alerts), then the alert
# in its month's partition by (id, occurred_at).
_EXISTING_SQL = """
SELECT k.source, k.event_id, a.id, ST_X(a.geom), ST_Y(a.geom), a.position_method, a.grid_code, a.incident_id,
       a.team_id, a.team_reason, a.boundary_version
FROM alert_keys k JOIN unnest(%b::text[], %b::text[]) u(source, event_id)
  ON k.source = u.source AND k.event_id = u.event_id
JOIN alerts a ON a.id = k.alert_id AND a.occurred_at = k.occurred_at
"""
# Removes the keys among these whose alert no longer exists.
_ORPHAN_KEYS_SQL = """
DELETE FROM alert_keys k USING unnest(%s::text[], %s::text[]) u(source, event_id)
WHERE k.source = u.source AND k.event_id = u.event_id
  AND NOT EXISTS (SELECT 1 FROM alerts a WHERE a.id = k.alert_id AND a.occurred_at = k.occurred_at)
"""
# Ids for the alerts and for as many incidents as they could start (unused ones are skipped).
_IDS_SQL = ("SELECT array(SELECT nextval('alerts_id_seq') FROM generate_series(1, %s)), "
            "array(SELECT nextval('incidents_id_seq') FROM generate_series(1, %s))")
_ALERT_COLUMNS = ("id, source, event_id, camera_id, type, score, occurred_at, received_at, updated_at, box, "
                  "frame_size, geom, position_method, grid_code, township_code, county_code, incident_id, team_id, "
                  "team_reason, boundary_version, extra, key_id")
# The writes take their rows as one JSON array of objects: orjson writes it in a few
# microseconds and PostgreSQL reads it in C, where binding one array per column cost
# more than the statements themselves.
# New incidents, each with its 'created' event; those of auto-dispatched types (status
# 'dispatched') also with their 'dispatch' event and their team's assignment. The team of
# any other is a suggestion until a dispatcher sends it.
_CREATE_INCIDENTS_SQL = """
WITH new AS MATERIALIZED (
    SELECT * FROM json_to_recordset(%(rows)s::json)
         AS u(id bigint, type text, status text, origin text, grid_code text, township_code text, cameras text[],
              lon float8, lat float8, alert_count int, first_seen timestamptz, last_seen timestamptz, team_id text,
              team_reason text, note text, reported_by_team text)
), incident AS (
    INSERT INTO incidents (id, type, status, origin, reported_by_team, grid_code, township_code, county_code,
                           camera_ids, geom, alert_count, first_seen, last_seen, team_id, team_reason, created_at,
                           updated_at, contact_due, resolve_due)
    SELECT id, type, status, origin, reported_by_team, grid_code, township_code, left(grid_code, 6), cameras,
           ST_SetSRID(ST_MakePoint(lon, lat), 4326), alert_count, first_seen, last_seen, team_id, team_reason,
           %(now)s, %(now)s, %(now)s + %(contact)s, %(now)s + %(resolve)s
    FROM new
), events AS (
    INSERT INTO incident_events (incident_id, at, actor, action, from_status, to_status, team_id, note)
    SELECT id, %(now)s, actor, action, from_status, to_status, team, note FROM (
        SELECT id, 1 AS k, %(actor)s AS actor, 'created' AS action, NULL AS from_status, 'new' AS to_status,
               NULL AS team, note FROM new
        UNION ALL
        SELECT id, 2, 'auto-dispatch', 'dispatch', 'new', 'dispatched', team_id, team_reason
        FROM new WHERE status = 'dispatched'
    ) e ORDER BY id, k
), assigned AS (
    INSERT INTO assignments (incident_id, team_id, dispatched_at, dispatched_by)
    SELECT id, team_id, %(now)s, 'auto-dispatch' FROM new WHERE status = 'dispatched'
)
SELECT count(*) FROM new
"""
# A few alerts in one statement, so they travel in the pipeline (a batch uses COPY).
_INSERT_ALERTS_SQL = f"""
INSERT INTO alerts ({_ALERT_COLUMNS})
SELECT id, source, event_id, camera_id, type, score, occurred_at, %(now)s, %(now)s, box, frame_size,
       ST_SetSRID(ST_MakePoint(lon, lat), 4326), method, grid, township, left(grid, 6), incident, team, reason,
       version, extra, key_id
FROM json_to_recordset(%(rows)s::json)
  AS u(id bigint, source text, event_id text, camera_id text, type text, score real, occurred_at timestamptz,
       box real[], frame_size int[], lon float8, lat float8, method text, grid text, township text, incident bigint,
       team text, reason text, version int, extra jsonb, key_id bigint)
"""
# (unnest, not JSON: the planner takes unnest for a few rows and looks each incident up
# by its key; for json_to_recordset it guesses a hundred and scans the table.)
_UPDATE_INCIDENTS_SQL = """
UPDATE incidents i SET alert_count = i.alert_count + u.n, first_seen = least(i.first_seen, u.first_seen),
       last_seen = greatest(i.last_seen, u.last_seen), updated_at = %s,
       camera_ids = i.camera_ids || array_remove(string_to_array(u.cameras, ','), '')
FROM unnest(%b::bigint[], %b::int[], %b::timestamptz[], %b::timestamptz[], %b::text[])
     u(id, n, first_seen, last_seen, cameras)
WHERE i.id = u.id
"""


@dataclass(frozen=True)
class AlertResult:
    alert_id: int
    lon: float
    lat: float
    position_method: str
    grid_code: str | None
    incident_id: int | None
    team_id: str | None
    team_reason: str | None
    boundary_version: int
    repeat: bool = False

    def as_dict(self) -> dict:
        return {"alert_id": self.alert_id, "lon": round(self.lon, 7), "lat": round(self.lat, 7),
                "position_method": self.position_method, "grid_code": self.grid_code,
                "incident_id": self.incident_id, "team_id": self.team_id, "team_reason": self.team_reason,
                "boundary_version": self.boundary_version, "repeat": self.repeat}


def ingest(conn: psycopg.Connection, alerts: list[AlertIn], index: GridIndex, now: datetime,
           check_future: bool = True, registry: Registry | None = None) -> list[AlertResult]:
    """Store the alerts (all or nothing) and return one result per alert, in order.

    Raises BadInput naming every bad alert: unknown or inactive camera, unknown type,
    a time in the future. `check_future=False` is for replaying history; `registry`
    caches cameras and teams between calls (see gridwatch.alerts.registry)."""
    if not alerts:
        return []
    registry = registry or Registry()
    windows = type_windows(conn)
    cameras = registry.cameras(conn, sorted({a.camera_id for a in alerts}))
    _check(alerts, cameras, windows, now if check_future else None)
    placed = _Placed.of(alerts, cameras, index)
    _check_fix(alerts, placed)
    # A large batch first assumes it holds no repeats (a lookup of every key costs more
    # than the COPY that would find one); the primary key of alert_keys refuses a repeat,
    # and the batch is done again, looking for them. Few alerts look first.
    look = len(alerts) <= FINE_LOCKS_UP_TO
    for attempt in range(3):
        try:
            return _ingest(conn, alerts, placed, windows, index, registry, now, look)
        except psycopg.errors.UniqueViolation:
            # A repeat, or another request stored one of these (source, event_id) between
            # our read and write: the next round finds it and answers it as a repeat.
            if attempt == 2:
                raise
            look = True
            # A key whose alert is gone (removed by hand, say) would refuse its alert for ever:
            # it goes, and the alert is stored anew.
            with conn.transaction():
                conn.execute(_ORPHAN_KEYS_SQL, [[a.source for a in alerts], [a.event_id for a in alerts]])
    raise AssertionError("unreachable")


def _check(alerts: list[AlertIn], cameras: dict[str, Camera], windows: dict, now: datetime | None) -> None:
    errors = []
    for i, a in enumerate(alerts):
        camera = cameras.get(a.camera_id)
        if camera is None:
            errors.append((i, "camera_id", f"unknown camera {a.camera_id!r}; register it with POST /cameras"))
        elif not camera.active:
            errors.append((i, "camera_id", f"camera {a.camera_id!r} is deactivated"))
        if a.type not in windows:
            errors.append((i, "type", f"unknown type {a.type!r}; one of {', '.join(sorted(windows))}"))
        if now is not None and a.occurred_at > now + MAX_FUTURE:
            errors.append((i, "occurred_at", f"{a.occurred_at.isoformat()} is more than 5 minutes in the future; "
                                             f"check the camera's clock"))
    if errors:
        single = len(alerts) == 1
        items = [{"field": f if single else f"[{i}].{f}", "message": m, "index": i} for i, f, m in errors]
        raise BadInput.listing(items, "" if single else "; nothing was stored")


@dataclass
class _Placed:
    """Where each alert is and which grid holds it (computed before any write)."""

    lon: list[float]
    lat: list[float]
    method: list[str]
    grid: list[str | None]
    township: list[str | None]
    points: list[AlertPoint | None]  # None outside every grid
    outside_reason: dict[int, str]
    outside_m: dict[int, float]  # how far the nearest grid is

    @classmethod
    def of(cls, alerts: list[AlertIn], cameras: dict[str, Camera], index: GridIndex) -> "_Placed":
        lon, lat, method = place(alerts, cameras)
        rows = index.match(lon, lat)
        inside = rows >= 0
        safe = np.maximum(rows, 0)
        grid = [index.codes[r] if ok else None for r, ok in zip(safe, inside, strict=True)] if len(index) else \
            [None] * len(alerts)
        township = [index.township_codes[r] if ok else None for r, ok in zip(safe, inside, strict=True)] \
            if len(index) else [None] * len(alerts)
        x, y = index.to_metric.transform(lon, lat) if len(index) else (lon, lat)
        lons, lats, xs, ys = lon.tolist(), lat.tolist(), np.asarray(x).tolist(), np.asarray(y).tolist()
        points = [AlertPoint(a.type, a.camera_id, grid[i], a.occurred_at, lons[i], lats[i], xs[i], ys[i])
                  if inside[i] else None for i, a in enumerate(alerts)]
        return cls(lons, lats, method, grid, township, points, *_outside_reasons(index, lon, lat, inside))


def _ingest(conn, alerts: list[AlertIn], placed: _Placed, windows, index: GridIndex, registry: Registry,
            now: datetime, look: bool) -> list[AlertResult]:
    """Two round trips for a few alerts, the commit riding with the second; a large batch
    writes its alerts by COPY, which cannot travel in a pipeline."""
    if len(alerts) <= FINE_LOCKS_UP_TO:
        with conn.pipeline() as pipeline, conn.transaction():
            results, rows = _group(conn, pipeline, alerts, placed, windows, index, registry, now, look)
            if rows:
                conn.execute(_INSERT_ALERTS_SQL, {"now": now, "rows": _alert_json(rows)})
    else:
        with conn.transaction():
            with conn.pipeline() as pipeline:
                results, rows = _group(conn, pipeline, alerts, placed, windows, index, registry, now, look)
                # packed while the server writes the incidents
                copy_rows = list(_alert_rows(rows, now))
            if copy_rows:
                with conn.cursor().copy(f"COPY alerts ({_ALERT_COLUMNS}) FROM STDIN (FORMAT BINARY)") as copy:
                    copy.set_types(_COPY_TYPES)
                    for values in copy_rows:
                        copy.write_row(values)
    return results


def _group(conn, pipeline, alerts: list[AlertIn], placed: _Placed, windows, index: GridIndex, registry: Registry,
           now: datetime, look: bool) -> tuple[list[AlertResult], list[tuple[AlertIn, AlertResult, str | None]]]:
    """Lock, find repeats (if `look`), group, create and update incidents; returns every
    result and the new alerts still to write."""
    keys = [(a.source, a.event_id) for a in alerts]
    points = [p for p in placed.points if p is not None]
    board_rows = registry.board_rows()
    # Round trip 1: the grouping locks, the alerts already stored, the open incidents
    # these alerts may join, the teams (unless cached), ids for what may be written.
    if points:
        lock_for_grouping(conn, points)
    # planned for each call: a plan cached while alerts was small would keep scanning it whole
    existing_cur = conn.execute(_EXISTING_SQL, [[k[0] for k in keys], [k[1] for k in keys]], prepare=False) \
        if look else None
    candidates_cur = conn.execute(*candidates_query(points, windows, bulk=len(points) > FINE_LOCKS_UP_TO)) \
        if points else None
    board_cur = conn.execute(BOARD_SQL) if points and board_rows is None else None
    ids_cur = conn.execute(_IDS_SQL, [len(alerts), len(points)])
    pipeline.sync()
    stored = {(r[0], r[1]): r[2:] for r in existing_cur.fetchall()} if existing_cur else {}
    alert_ids, incident_ids = ids_cur.fetchone()
    results: list[AlertResult | None] = [None] * len(alerts)
    first_of: dict[tuple[str, str], int] = {}
    fresh = []
    for i, key in enumerate(keys):
        if key in stored:
            results[i] = AlertResult(*stored[key], repeat=True)
        elif key not in first_of:
            first_of[key] = i
            fresh.append(i)
    group_of: dict[int, Group] = {}
    fresh_points = [placed.points[i] for i in fresh if placed.points[i] is not None]
    if fresh_points:
        groups = assign(fresh_points, candidates_from_rows(candidates_cur.fetchall(), index.to_metric), windows)
        group_of = dict(zip((i for i in fresh if placed.points[i] is not None), groups, strict=True))
        board = registry.board(board_rows if board_rows is not None else board_cur.fetchall(), now)
        unique = list({id(g): g for g in groups}.values())
        new = [g for g in unique if g.id is None]
        for g, iid in zip(new, incident_ids, strict=False):
            g.id = iid
        # Round trip 2: joined incidents, new incidents with their team and events (in this
        # order: incidents are locked before teams, as a dispatcher's action locks them).
        join_incidents(conn, [g for g in unique if g.joined], now)
        if new:
            _create_incidents(conn, new, index, board, now, auto_dispatched(conn))
    rows = []
    for i in fresh:
        g = group_of.get(i)
        team_id, reason = (g.team_id, g.team_reason) if g else (None, placed.outside_reason.get(i))
        results[i] = AlertResult(alert_ids[i], placed.lon[i], placed.lat[i], placed.method[i], placed.grid[i],
                                 g.id if g else None, team_id, reason, index.version)
        rows.append((alerts[i], results[i], placed.township[i]))
    for i, key in enumerate(keys):
        if results[i] is None:  # the same event twice in one batch: a repeat of the first
            results[i] = replace(results[first_of[key]], repeat=True)
    return results, rows


def join_incidents(conn, groups: list[Group], now: datetime) -> None:
    """Send the update of existing incidents that alerts joined (counts, times, cameras)."""
    if groups:
        conn.execute(_UPDATE_INCIDENTS_SQL, [now, [g.id for g in groups], [g.joined for g in groups],
                                             [g.first_seen for g in groups], [g.last_seen for g in groups],
                                             [",".join(sorted(g.new_cameras)) for g in groups]])


def open_incident(conn, group: Group, index: GridIndex, now: datetime, origin: str, actor: str,
                  note: str | None = None, reported_by_team: str | None = None) -> None:
    """Create one incident by hand (a field report, an alert placed in a grid by a
    dispatcher) as ingest creates them: deadlines, the recommended team, auto-dispatch."""
    group.id = conn.execute("SELECT nextval('incidents_id_seq')").fetchone()[0]
    _create_incidents(conn, [group], index, TeamBoard.load(conn, now), now, auto_dispatched(conn), origin, actor,
                      note, reported_by_team)


def lock_for_grouping(conn, points: list[AlertPoint]) -> None:
    """Take (or send, in a pipeline) the grouping locks of these points (see FINE_LOCKS_UP_TO)."""
    types = sorted({p.type for p in points})
    if len(points) > FINE_LOCKS_UP_TO:
        conn.execute(_TYPE_LOCKS_SQL, [types])
        return
    conn.execute(_TYPE_LOCKS_SHARED_SQL, [types])
    names = {f"{p.type}/camera/{p.camera_id}" for p in points} | {f"{p.type}/grid/{p.grid_code}" for p in points}
    conn.execute(_KEY_LOCKS_SQL, [sorted(_hash32(n) for n in names)])


def _hash32(name: str) -> int:
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=4).digest(), "big", signed=True)


def _alert_json(rows: list[tuple[AlertIn, AlertResult, str | None]]) -> str:
    """The `rows` of _INSERT_ALERTS_SQL."""
    return _json([{"id": r.alert_id, "source": a.source, "event_id": a.event_id, "camera_id": a.camera_id,
                   "type": a.type, "score": a.score, "occurred_at": a.occurred_at, "box": a.box,
                   "frame_size": a.frame_size, "lon": r.lon, "lat": r.lat, "method": r.position_method,
                   "grid": r.grid_code, "township": t, "incident": r.incident_id, "team": r.team_id,
                   "reason": r.team_reason, "version": r.boundary_version, "extra": a.extra, "key_id": a.key_id}
                  for a, r, t in rows])


def _json(rows: list[dict]) -> str:
    return orjson.dumps(rows).decode()


def _alert_rows(rows: list[tuple[AlertIn, AlertResult, str | None]], now: datetime):
    """Rows for binary COPY alerts, in _ALERT_COLUMNS order (see _COPY_TYPES)."""
    for a, r, township in rows:
        yield (r.alert_id, a.source, a.event_id, a.camera_id, a.type, a.score, a.occurred_at, now, now,
               a.box and _BOX.pack(*_BOX_HEAD, *_interleave(a.box)),
               a.frame_size and _FRAME.pack(*_FRAME_HEAD, *_interleave(a.frame_size)),
               _POINT.pack(*_POINT_HEAD, r.lon, r.lat), r.position_method,
               r.grid_code, township, r.grid_code[:6] if r.grid_code else None, r.incident_id, r.team_id,
               r.team_reason, r.boundary_version, a.extra, a.key_id)


# Binary COPY carries no type tags: each field is read by its column's own receive
# function. So the point goes as raw EWKB bytes (what geometry_recv reads: little-endian,
# point type with the SRID flag, the SRID, x, y), and the two small arrays in
# PostgreSQL's array wire format (header: 1 dimension, no nulls, element type oid, length,
# lower bound 1; then length-prefixed elements). Packed here, they cost a fraction of
# building shapely points or dumping Python lists.
_COPY_TYPES = ["int8", "text", "text", "text", "text", "float4", "timestamptz", "timestamptz", "timestamptz",
               "bytea", "bytea", "bytea", "text", "text", "text", "text", "int8", "text", "text", "int4", "jsonb",
               "int8"]
_POINT = struct.Struct("<BIIdd")
_POINT_HEAD = (1, 0x20000001, 4326)
_BOX = struct.Struct("!5i" + "if" * 4)
_BOX_HEAD = (1, 0, 700, 4, 1)  # float4
_FRAME = struct.Struct("!5i" + "ii" * 2)
_FRAME_HEAD = (1, 0, 23, 2, 1)  # int4


def _interleave(values) -> list:
    """Each element preceded by its byte length (4 for float4 and int4)."""
    return [x for v in values for x in (4, v)]


def place(alerts: list[AlertIn], cameras: dict[str, Camera]) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Where each alert happened: reported lon/lat, else the homography of the box's
    bottom-centre (where the object touches the ground), else the camera."""
    n = len(alerts)
    lon = np.array([a.lon if a.lon is not None else cameras[a.camera_id].lon for a in alerts], dtype=float)
    lat = np.array([a.lat if a.lat is not None else cameras[a.camera_id].lat for a in alerts], dtype=float)
    method = ["reported" if a.lon is not None else "camera" for a in alerts]
    by_camera: dict[str, list[int]] = {}
    for i, a in enumerate(alerts):
        if a.lon is None and a.box is not None and cameras[a.camera_id].homography is not None:
            by_camera.setdefault(a.camera_id, []).append(i)
    for camera_id, idx in by_camera.items():
        camera = cameras[camera_id]
        h = camera.homography
        boxes = np.array([alerts[i].box for i in idx], dtype=float)
        # boxes sent at another resolution are scaled to the calibrated frame
        scale = np.array([[h.frame_size[0] / alerts[i].frame_size[0], h.frame_size[1] / alerts[i].frame_size[1]]
                          if alerts[i].frame_size else [1.0, 1.0] for i in idx])
        u = (boxes[:, 0] + boxes[:, 2]) / 2 * scale[:, 0]
        v = boxes[:, 3] * scale[:, 1]
        glon, glat, valid = h.to_lonlat(u, v)
        near = metres_between(camera.lon, camera.lat, glon, glat) <= camera.range_m + PLACE_SLACK_M
        for k, i in enumerate(idx):
            if valid[k] and near[k]:
                lon[i], lat[i], method[i] = glon[k], glat[k], "homography"
    assert len(method) == n
    return lon, lat, method


def _outside_reasons(index: GridIndex, lon, lat, inside) -> tuple[dict[int, str], dict[int, float]]:
    """For each alert outside every grid: why it waits in the queue, and how far its nearest grid is."""
    outside = np.flatnonzero(~inside)
    if not len(outside) or not len(index):
        return {int(i): "outside every grid (no grids loaded); in the unassigned queue" for i in outside}, {}
    rows, meters = index.nearest(lon[outside], lat[outside])
    return ({int(i): f"outside every grid: nearest is {index.codes[r]} ({index.names[r]}), {m:,.0f} m away; "
                     f"in the unassigned queue" for i, r, m in zip(outside, rows, meters, strict=True)},
            {int(i): float(m) for i, m in zip(outside, meters, strict=True)})


def _check_fix(alerts: list[AlertIn], placed: "_Placed") -> None:
    """Refuse alerts placed further from every grid than any camera of the county sees: a
    device without a position fix (it sends 0, 0), or lon/lat swapped. They would wait in the
    queue "thousands of km away" for ever."""
    far = sorted(i for i, m in placed.outside_m.items() if m > NO_FIX_M)
    if not far:
        return
    single = len(alerts) == 1
    field = "lon" if single else "[{}].lon"
    items = [{"field": field.format(i), "index": i,
              "message": f"({placed.lon[i]:.5f}, {placed.lat[i]:.5f}) is {placed.outside_m[i] / 1000:,.0f} km from "
                         f"the nearest grid: no position fix? Send the alert without lon/lat to place it at its "
                         f"camera"} for i in far]
    raise BadInput.listing(items, "" if single else "; nothing was stored")


def _create_incidents(conn, groups: list[Group], index: GridIndex, board: TeamBoard, now: datetime,
                      auto: frozenset[str], origin: str = "camera", actor: str = "system",
                      note: str | None = None, reported_by_team: str | None = None) -> None:
    """Send the insert of new incidents (ids already given), each with its recommended team:
    a suggestion, or for `auto` types an assignment made at once (one team per incident,
    so a team sent to one is not sent to the next)."""
    taken: dict[str, Group] = {}
    for g, best in zip(groups, board.best_many([g.lon for g in groups], [g.lat for g in groups],
                                               [g.grid_code for g in groups]), strict=True):
        if g.type in auto and best is not None:
            if best.team_id in taken:
                best = board.best(g.lon, g.lat, g.grid_code, frozenset(taken))
            if best is not None:
                taken[best.team_id] = g
        g.team_id, g.team_reason = (best.team_id, best.reason) if best else (None, board.none_reason())
    if taken:
        # The board is a moment old, and another request may be sending the same teams: lock
        # them (after the incidents this ingest joined, as dispatchers lock incident then team)
        # and send only those still available; the others' incidents keep them as suggestions.
        free = {r[0] for r in conn.execute("SELECT id FROM teams WHERE id = ANY(%s) AND status = 'available' "
                                           "ORDER BY id FOR UPDATE", [sorted(taken)])}
        for team in set(taken) - free:
            taken.pop(team).team_reason += "; not sent at once: the team was sent elsewhere a moment before"
    sent = {id(g) for g in taken.values()}
    conn.execute(_CREATE_INCIDENTS_SQL, {"rows": _json([
        {"id": g.id, "type": g.type, "status": "dispatched" if id(g) in sent else "new", "origin": origin,
         "grid_code": g.grid_code, "township_code": index.township_codes[index.row_of[g.grid_code]],
         "cameras": sorted(g.cameras), "lon": g.lon, "lat": g.lat, "alert_count": g.count,
         "first_seen": g.first_seen, "last_seen": g.last_seen, "team_id": g.team_id, "team_reason": g.team_reason,
         "note": note, "reported_by_team": reported_by_team} for g in groups]),
        "now": now, "contact": CONTACT_WITHIN, "resolve": RESOLVE_WITHIN, "actor": actor})
    if taken:
        assignments.refresh_status(conn, sorted(taken), now)
