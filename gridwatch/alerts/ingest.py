"""From alert to placed, matched, grouped, assigned incident, in one transaction.

The same pipeline serves one alert (POST /alerts, MQTT) and ten thousand (POST
/alerts/batch): validate everything first (all or nothing), place, find the grid, group
into incidents under per-type locks, choose teams for new incidents, then write with COPY.
A repeated (source, event_id) returns the first result and writes nothing.
"""

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

import numpy as np
import orjson
import psycopg

from gridwatch.alerts.cameras import Camera, load_cameras
from gridwatch.alerts.dispatch import TeamBoard
from gridwatch.alerts.grouping import AlertPoint, Group, assign, load_candidates
from gridwatch.alerts.model import AlertIn
from gridwatch.errors import BadInput
from gridwatch.geo.grid_index import GridIndex

# An alert from further in the future than this is a wrong clock, not an event.
MAX_FUTURE = timedelta(minutes=5)
CONTACT_WITHIN = timedelta(hours=1)
RESOLVE_WITHIN = timedelta(days=3)
# A homography answer further than this from the camera is not believed.
PLACE_SLACK_M = 200.0

_EXISTING_SQL = """
SELECT a.source, a.event_id, a.id, ST_X(a.geom), ST_Y(a.geom), a.position_method, a.grid_code, a.incident_id,
       a.team_id, a.team_reason, a.boundary_version
FROM alerts a JOIN unnest(%s::text[], %s::text[]) k(source, event_id)
  ON a.source = k.source AND a.event_id = k.event_id
"""
_ALERT_COLUMNS = ("id, source, event_id, camera_id, type, score, occurred_at, received_at, updated_at, box, "
                  "frame_size, geom, position_method, grid_code, township_code, county_code, incident_id, team_id, "
                  "team_reason, boundary_version, extra")
_INCIDENT_COLUMNS = ("id, type, status, grid_code, township_code, county_code, camera_ids, geom, alert_count, "
                     "first_seen, last_seen, team_id, team_reason, created_at, updated_at, contact_due, resolve_due")
_UPDATE_INCIDENTS_SQL = """
UPDATE incidents i SET alert_count = i.alert_count + u.n, first_seen = least(i.first_seen, u.first_seen),
       last_seen = greatest(i.last_seen, u.last_seen), updated_at = %s,
       camera_ids = i.camera_ids || array_remove(string_to_array(u.cameras, ','), '')
FROM unnest(%s::bigint[], %s::int[], %s::timestamptz[], %s::timestamptz[], %s::text[])
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
           check_future: bool = True) -> list[AlertResult]:
    """Store the alerts (all or nothing) and return one result per alert, in order.

    Raises BadInput naming every bad alert: unknown or inactive camera, unknown type,
    a time in the future. `check_future=False` is for replaying history."""
    if not alerts:
        return []
    windows = _windows(conn)
    cameras = load_cameras(conn, sorted({a.camera_id for a in alerts}))
    _check(alerts, cameras, windows, now if check_future else None)
    for attempt in range(3):
        try:
            with conn.transaction():
                return _ingest(conn, alerts, cameras, windows, index, now)
        except psycopg.errors.UniqueViolation:
            # Another request stored one of these (source, event_id) between our read and
            # write: the next round finds it and answers it as a repeat.
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def _windows(conn: psycopg.Connection) -> dict[str, timedelta]:
    return {t: timedelta(seconds=s) for t, s in conn.execute("SELECT type, window_s FROM alert_types")}


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
        items = [{"field": f if single else f"[{i}].{f}", "message": m} for i, f, m in errors]
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in items[:5])
        more = f" (and {len(items) - 5} more)" if len(items) > 5 else ""
        raise BadInput(detail + more + ("" if single else "; nothing was stored"), errors=items)


def _ingest(conn, alerts, cameras, windows, index: GridIndex, now: datetime) -> list[AlertResult]:
    # Per-type locks: two alerts that could join one incident share a type, so grouping
    # never races with itself; different types proceed in parallel.
    for typ in sorted({a.type for a in alerts}):
        conn.execute("SELECT pg_advisory_xact_lock(hashtext('gridwatch.incident.' || %s))", [typ])
    results: list[AlertResult | None] = [None] * len(alerts)
    keys = [(a.source, a.event_id) for a in alerts]
    stored = {(r[0], r[1]): r[2:] for r in conn.execute(_EXISTING_SQL, [[k[0] for k in keys], [k[1] for k in keys]])}
    first_of: dict[tuple[str, str], int] = {}
    fresh = []
    for i, key in enumerate(keys):
        if key in stored:
            results[i] = AlertResult(*stored[key], repeat=True)
        elif key in first_of:
            continue  # answered below, as a repeat of the first in this batch
        else:
            first_of[key] = i
            fresh.append(i)
    if fresh:
        new = [alerts[i] for i in fresh]
        for i, result in zip(fresh, _store(conn, new, cameras, windows, index, now), strict=True):
            results[i] = result
    for i, key in enumerate(keys):
        if results[i] is None:
            first = results[first_of[key]]
            results[i] = replace(first, repeat=True)
    return results


def _store(conn, alerts: list[AlertIn], cameras, windows, index: GridIndex, now: datetime) -> list[AlertResult]:
    lon, lat, method = place(alerts, cameras)
    rows = index.match(lon, lat)
    inside = rows >= 0
    grid = np.where(inside, index.codes[np.maximum(rows, 0)] if len(index) else None, None)
    township = np.where(inside, index.township_codes[np.maximum(rows, 0)] if len(index) else None, None)
    x, y = (index.to_metric.transform(lon, lat) if len(index) else (lon, lat))
    lons, lats, xs, ys = lon.tolist(), lat.tolist(), np.asarray(x).tolist(), np.asarray(y).tolist()
    points = [AlertPoint(a.type, a.camera_id, grid[i], a.occurred_at, lons[i], lats[i], xs[i], ys[i])
              for i, a in enumerate(alerts) if inside[i]]
    placed = np.flatnonzero(inside)
    groups = assign(points, load_candidates(conn, points, windows, index.to_metric), windows) if points else []
    group_of: dict[int, Group] = {int(placed[k]): g for k, g in enumerate(groups)}
    new_groups = list({id(g): g for g in groups if g.id is None}.values())
    if new_groups:
        _create_incidents(conn, new_groups, index, now)
    _update_incidents(conn, [g for g in {id(g): g for g in groups}.values() if g.joined], now)

    outside_reason = _outside_reasons(index, lon, lat, inside)
    ids = [r[0] for r in conn.execute("SELECT nextval('alerts_id_seq') FROM generate_series(1, %s)", [len(alerts)])]
    results = []
    lines = []
    for i, a in enumerate(alerts):
        g = group_of.get(i)
        team_id, reason = (g.team_id, g.team_reason) if g else (None, outside_reason.get(i))
        results.append(AlertResult(ids[i], lons[i], lats[i], method[i], grid[i], g.id if g else None,
                                   team_id, reason, index.version))
        lines.append(_copy_line((ids[i], a.source, a.event_id, a.camera_id, a.type, a.score, a.occurred_at, now, now,
                                 _array(a.box), _array(a.frame_size), f"SRID=4326;POINT({lons[i]!r} {lats[i]!r})",
                                 method[i], grid[i], township[i], grid[i][:6] if grid[i] else None,
                                 g.id if g else None, team_id, reason, index.version,
                                 orjson.dumps(a.extra).decode() if a.extra else None)))
    with conn.cursor().copy(f"COPY alerts ({_ALERT_COLUMNS}) FROM STDIN") as copy:
        copy.write("".join(lines))
    return results


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
        near = _metres(camera.lon, camera.lat, glon, glat) <= camera.range_m + PLACE_SLACK_M
        for k, i in enumerate(idx):
            if valid[k] and near[k]:
                lon[i], lat[i], method[i] = glon[k], glat[k], "homography"
    assert len(method) == n
    return lon, lat, method


def _metres(lon: float, lat: float, lons: np.ndarray, lats: np.ndarray) -> np.ndarray:
    kx = 111_320.0 * np.cos(np.radians(lat))
    return np.hypot((lons - lon) * kx, (lats - lat) * 110_540.0)


def _outside_reasons(index: GridIndex, lon, lat, inside) -> dict[int, str]:
    outside = np.flatnonzero(~inside)
    if not len(outside) or not len(index):
        return {int(i): "outside every grid (no grids loaded); in the unassigned queue" for i in outside}
    rows, meters = index.nearest(lon[outside], lat[outside])
    return {int(i): f"outside every grid: nearest is {index.codes[r]} ({index.names[r]}), {m:,.0f} m away; "
                    f"in the unassigned queue" for i, r, m in zip(outside, rows, meters, strict=True)}


def _create_incidents(conn, groups: list[Group], index: GridIndex, now: datetime) -> None:
    """Insert new incidents with their team (the dispatcher may change it) and events."""
    board = TeamBoard.load(conn, now)
    ids = [r[0] for r in conn.execute("SELECT nextval('incidents_id_seq') FROM generate_series(1, %s)",
                                      [len(groups)])]
    incident_lines, event_lines = [], []
    for g, iid in zip(groups, ids, strict=True):
        g.id = iid
        best = board.best(g.lon, g.lat, g.grid_code)
        g.team_id, g.team_reason = (best.team_id, best.reason) if best else (None, board.none_reason())
        status = "dispatched" if g.team_id else "new"
        township = index.township_codes[index.row_of[g.grid_code]]
        incident_lines.append(_copy_line((iid, g.type, status, g.grid_code, township, g.grid_code[:6],
                                          _array(sorted(g.cameras)),
                                          f"SRID=4326;POINT({g.lon!r} {g.lat!r})", g.count, g.first_seen,
                                          g.last_seen, g.team_id, g.team_reason, now, now, now + CONTACT_WITHIN,
                                          now + RESOLVE_WITHIN)))
        event_lines.append(_copy_line((iid, now, "system", "created", None, "new", None, None)))
        if g.team_id:
            event_lines.append(_copy_line((iid, now, "system", "dispatch", "new", "dispatched", g.team_id,
                                           g.team_reason)))
    with conn.cursor().copy(f"COPY incidents ({_INCIDENT_COLUMNS}) FROM STDIN") as copy:
        copy.write("".join(incident_lines))
    with conn.cursor().copy("COPY incident_events (incident_id, at, actor, action, from_status, to_status, "
                            "team_id, note) FROM STDIN") as copy:
        copy.write("".join(event_lines))


def _update_incidents(conn, groups: list[Group], now: datetime) -> None:
    if groups:
        conn.execute(_UPDATE_INCIDENTS_SQL, [now, [g.id for g in groups], [g.joined for g in groups],
                                             [g.first_seen for g in groups], [g.last_seen for g in groups],
                                             [",".join(sorted(g.new_cameras)) for g in groups]])


def _array(values) -> str | None:
    """A PostgreSQL array literal of numbers or of plain identifiers (camera ids)."""
    return None if values is None else "{" + ",".join(v if isinstance(v, str) else repr(v) for v in values) + "}"


_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _copy_line(values: tuple) -> str:
    """One row of COPY text format."""
    out = []
    for v in values:
        if v is None:
            out.append("\\N")
        elif isinstance(v, str):
            out.append(v.translate(_ESCAPES))
        elif isinstance(v, datetime):
            out.append(v.isoformat())
        else:
            out.append(str(v))
    return "\t".join(out) + "\n"
