"""The unassigned queue worked by hand, and incidents reported from the field.

An alert outside every grid (a camera on the county's edge, a position a little off) waits
in the queue until a dispatcher places it in a grid, where it joins or opens an incident by
the same rules as any alert, or dismisses it with a reason. A grid worker or patrol reports
what it finds on the spot (a resident's complaint, a blocked drain): an incident of origin
`field`, placed in its grid, with deadlines and a team like any other.
"""

from dataclasses import dataclass
from datetime import datetime

import numpy as np
import psycopg

from gridwatch.alerts.grouping import AlertPoint, Group, assign, candidates_from_rows, candidates_query
from gridwatch.alerts.ingest import join_incidents, lock_for_grouping, open_incident
from gridwatch.alerts.types import known_type, type_windows
from gridwatch.errors import BadInput, Conflict, Forbidden, NotFound
from gridwatch.geo.grid_index import GridIndex

_ALERT_SQL = """SELECT a.type, a.camera_id, a.occurred_at, ST_X(a.geom), ST_Y(a.geom), a.grid_code, a.queue_action,
       a.queue_actor FROM alerts a WHERE a.id = %s FOR UPDATE"""


@dataclass(frozen=True)
class Placed:
    """Where an incident opened or joined by hand stands: what the API answers."""

    incident_id: int
    grid_code: str
    township_code: str
    team_id: str | None
    team_reason: str | None
    joined: bool


def _waiting(conn: psycopg.Connection, alert_id: int) -> tuple:
    row = conn.execute(_ALERT_SQL, [alert_id]).fetchone()
    if row is None:
        raise NotFound(f"no alert {alert_id}")
    if row[6] is not None:
        raise Conflict(f"alert {alert_id} was {row[6]} already, by {row[7]}")
    if row[5] is not None:
        raise Conflict(f"alert {alert_id} is in grid {row[5]} already; only alerts outside every grid wait here")
    return row


def assign_to_grid(conn: psycopg.Connection, alert_id: int, grid_code: str, actor: str, index: GridIndex,
                   now: datetime) -> Placed:
    """Place a waiting alert in `grid_code`: it joins an open incident there (same camera,
    or within 200 m in that grid, inside the type's window) or opens one with the
    recommended team. Raises NotFound, BadInput (unknown grid), Conflict (not waiting)."""
    with conn.transaction():
        type_, camera, occurred_at, lon, lat, *_ = _waiting(conn, alert_id)
        row = index.row_of.get(grid_code)
        if row is None:
            raise BadInput(f"grid_code: no grid {grid_code!r} (GET /grids lists them)")
        x, y = index.to_metric.transform(lon, lat)
        point = AlertPoint(type_, camera, grid_code, occurred_at, lon, lat, float(x), float(y))
        lock_for_grouping(conn, [point])
        windows = type_windows(conn)
        # only incidents in the grid the dispatcher chose (the same-camera rule would join one elsewhere)
        candidates = [g for g in candidates_from_rows(conn.execute(*candidates_query([point], windows, bulk=False)
                                                                   ).fetchall(), index.to_metric)
                      if g.grid_code == grid_code]
        [group] = assign([point], candidates, windows)
        joined = group.id is not None
        note = f"alert {alert_id} placed in grid {grid_code} by {actor}"
        if joined:
            join_incidents(conn, [group], now)
            conn.execute("INSERT INTO incident_events (incident_id, at, actor, action, from_status, to_status, "
                         "team_id, note) SELECT id, %s, %s, 'alert_placed', status, status, team_id, %s "
                         "FROM incidents WHERE id = %s", [now, actor, note, group.id])
        else:
            open_incident(conn, group, index, now, "camera", actor, note)
        township = index.township_codes[row]
        conn.execute("UPDATE alerts SET grid_code = %s, township_code = %s, county_code = left(%s, 6), "
                     "incident_id = %s, team_id = %s, team_reason = %s, queue_action = 'assigned', "
                     "queue_actor = %s, queue_at = %s, queue_note = %s, updated_at = %s WHERE id = %s",
                     [grid_code, township, grid_code, group.id, group.team_id, group.team_reason, actor, now, note,
                      now, alert_id])
    return Placed(group.id, grid_code, township, group.team_id, group.team_reason, joined)


def dismiss(conn: psycopg.Connection, alert_id: int, reason: str, actor: str, now: datetime) -> None:
    """Take a waiting alert out of the queue with a reason (kept, with who and when).
    Raises NotFound, BadInput (no reason), Conflict (not waiting)."""
    reason = (reason or "").strip()
    if not reason:
        raise BadInput("reason: say why the alert needs nothing (e.g. 'a lorry's headlights on the lens')")
    with conn.transaction():
        _waiting(conn, alert_id)
        conn.execute("UPDATE alerts SET queue_action = 'dismissed', queue_actor = %s, queue_at = %s, "
                     "queue_note = %s, updated_at = %s WHERE id = %s", [actor, now, reason, now, alert_id])


def report(conn: psycopg.Connection, type_: str, lon: float, lat: float, note: str, actor: str, index: GridIndex,
           now: datetime, team_id: str | None = None) -> Placed:
    """Open an incident reported from the field at (lon, lat), by an operator or by the
    team `team_id`, which reports inside its own township only. Raises BadInput (unknown
    type, no note, a point outside every grid), Forbidden (outside the team's township, or
    a team that has none)."""
    if not type_:
        raise BadInput("type: say what was found (an alert type, e.g. sewer_overflow)")
    known_type(conn, type_)
    note = (note or "").strip()
    if not note:
        raise BadInput("note: say what was found, e.g. 'sewage flowing into the street from a blocked drain'")
    row = int(index.match(np.array([lon]), np.array([lat]))[0])
    if row < 0:
        [near], [metres] = index.nearest(np.array([lon]), np.array([lat]))
        raise BadInput(f"lon, lat: outside every grid (nearest is {index.codes[near]}, {metres:,.0f} m away); "
                       f"tap a point inside the grid")
    grid, grid_township = index.codes[row], index.township_codes[row]
    if team_id is not None:
        township = conn.execute("SELECT township_code FROM teams WHERE id = %s", [team_id]).fetchone()[0]
        if township is None:
            raise Forbidden(f"team {team_id} has no township to report in; an administrator sets one "
                            f"(PATCH /patrols/{team_id})")
        if grid_township != township:
            raise Forbidden(f"the point is in township {grid_township}; team {team_id} reports in township "
                            f"{township}")
    x, y = index.to_metric.transform(lon, lat)
    group = Group(type_, set(), grid, lon, lat, float(x), float(y), now, now, count=0)
    with conn.transaction():
        open_incident(conn, group, index, now, "field", actor, note, team_id)
    return Placed(group.id, grid, grid_township, group.team_id, group.team_reason, False)
