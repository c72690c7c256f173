"""Counts the command room reads: per grid, heat cells, per day and hour, 1-3-1 compliance.
All aggregated in PostGIS, filtered by a window [since, until), type and township."""

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import psycopg
import shapely

from gridwatch.alerts.incidents import OVERDUE_SQL
from gridwatch.alerts.model import EARLIEST
from gridwatch.errors import BadInput
from gridwatch.geo.grid_index import GridIndex

MAX_CELLS = 100_000
# Cells along the longer side of the extent when no size is asked for.
DEFAULT_CELLS_ACROSS = 250


@dataclass(frozen=True)
class Window:
    since: datetime
    until: datetime
    type: str | None = None
    township: str | None = None

    def as_dict(self) -> dict:
        return {"since": self.since.isoformat(), "until": self.until.isoformat(), "type": self.type,
                "township": self.township}

    def params(self) -> dict:
        return {"since": self.since, "until": self.until, "type": self.type, "township": self.township}


DEFAULT_DAYS = 30
# Every statistic (and page) reads a bounded window: a century of alerts is not one request's work.
MAX_WINDOW = timedelta(days=366)


def bounded(since: datetime | None, until: datetime | None, type_: str | None, township: str | None,
            now: datetime) -> Window:
    """The window asked for (by default the last DEFAULT_DAYS days to now); refused if
    longer than MAX_WINDOW, back to front, or reaching before anything was stored."""
    for name, when in (("since", since), ("until", until)):
        if when is not None and when < EARLIEST:
            raise BadInput(f"{name}: {when.isoformat()} is before {EARLIEST.year}, when gridwatch's records begin",
                           errors=[{"field": name, "message": f"before {EARLIEST.year}", "input": when.isoformat()}])
        if when is not None and when > now + MAX_WINDOW:
            raise BadInput(f"{name}: {when.isoformat()} is more than {MAX_WINDOW.days} days ahead; nothing is "
                           f"recorded there yet",
                           errors=[{"field": name, "message": "too far ahead", "input": when.isoformat()}])
    until = until or now
    since = since or until - timedelta(days=DEFAULT_DAYS)
    if since >= until:
        raise BadInput(f"since must be before until (since {since.isoformat()}, until {until.isoformat()})")
    if until - since > MAX_WINDOW:
        raise BadInput(f"since, until: at most {MAX_WINDOW.days} days at a time; this window is "
                       f"{(until - since).days:,} days")
    return Window(since, until, type_, township)


def window_sql(alias: str, time_column: str) -> str:
    """SQL filtering rows of `alias` to the window, type and township (named parameters)."""
    return (f"{alias}.{time_column} >= %(since)s AND {alias}.{time_column} < %(until)s "
            f"AND (%(type)s::text IS NULL OR {alias}.type = %(type)s) "
            f"AND (%(township)s::text IS NULL OR {alias}.township_code = %(township)s)")


_GRIDS_SQL = f"""
WITH inc AS (
    SELECT grid_code, count(*) AS incidents,
           count(*) FILTER (WHERE status IN ('new', 'dispatched', 'acknowledged', 'on_scene')) AS open,
           count(*) FILTER (WHERE {OVERDUE_SQL}) AS overdue
    FROM incidents i WHERE {window_sql('i', 'first_seen')} GROUP BY grid_code
), al AS (
    SELECT grid_code, count(*) AS alerts FROM alerts a WHERE {window_sql('a', 'occurred_at')} GROUP BY grid_code
)
SELECT g.code, g.name, g.village_code, g.township_code, g.area_m2, coalesce(al.alerts, 0),
       coalesce(inc.incidents, 0), coalesce(inc.open, 0), coalesce(inc.overdue, 0)
FROM grids g LEFT JOIN inc ON inc.grid_code = g.code LEFT JOIN al ON al.grid_code = g.code
WHERE %(township)s::text IS NULL OR g.township_code = %(township)s
ORDER BY g.code
"""


def grid_counts(conn: psycopg.Connection, window: Window, now: datetime) -> list[dict]:
    """Per grid: alerts, incidents, open and overdue incidents, incidents per km²."""
    rows = conn.execute(_GRIDS_SQL, {**window.params(), "now": now}).fetchall()
    return [{"code": code, "name": name, "village_code": village, "township_code": township,
             "area_km2": round(area / 1e6, 3), "alerts": alerts, "incidents": incidents, "open": open_,
             "overdue": overdue, "incidents_per_km2": round(incidents / (area / 1e6), 3) if area else None}
            for code, name, village, township, area, alerts, incidents, open_, overdue in rows]


_HEAT_SQL = f"""
SELECT floor((ST_X(a.geom) - %(x0)s) / %(dx)s)::int AS i, floor((ST_Y(a.geom) - %(y0)s) / %(dy)s)::int AS j,
       count(*) AS n
FROM alerts a
WHERE {window_sql('a', 'occurred_at')}
  AND ST_X(a.geom) >= %(x0)s AND ST_X(a.geom) < %(x1)s AND ST_Y(a.geom) >= %(y0)s AND ST_Y(a.geom) < %(y1)s
GROUP BY 1, 2
"""
# The same cells, each local day apart: the time-lapse's frames in one query.
_DAILY_HEAT_SQL = f"""
SELECT (a.occurred_at AT TIME ZONE %(tz)s)::date AS day,
       floor((ST_X(a.geom) - %(x0)s) / %(dx)s)::int AS i, floor((ST_Y(a.geom) - %(y0)s) / %(dy)s)::int AS j,
       count(*) AS n
FROM alerts a
WHERE {window_sql('a', 'occurred_at')}
  AND ST_X(a.geom) >= %(x0)s AND ST_X(a.geom) < %(x1)s AND ST_Y(a.geom) >= %(y0)s AND ST_Y(a.geom) < %(y1)s
GROUP BY 1, 2, 3
"""


@dataclass(frozen=True)
class Cells:
    """A regular grid of cells over the county (or a township), sized in metres."""

    cell_m: float
    x0: float
    y0: float
    x1: float
    y1: float
    dx: float
    dy: float

    @classmethod
    def over(cls, index: GridIndex, township: str | None, cell_m: float | None = None) -> "Cells":
        geoms = index.geoms if township is None else index.geoms[index.township_codes == township]
        if not len(geoms):
            raise BadInput(f"township: no grids in township {township!r}")
        x0, y0, x1, y1 = (float(v) for v in shapely.total_bounds(geoms))
        metres_per_deg_x = 111_320.0 * float(np.cos(np.radians((y0 + y1) / 2)))
        metres_per_deg_y = 110_540.0
        across_m = max((x1 - x0) * metres_per_deg_x, (y1 - y0) * metres_per_deg_y)
        if cell_m is None:
            cell_m = max(50.0, float(round(across_m / DEFAULT_CELLS_ACROSS, -1)))
        dx, dy = cell_m / metres_per_deg_x, cell_m / metres_per_deg_y
        # counted in metres and as floats: a cell of a few metres or less makes more cells than
        # an int holds (or a width of 0 degrees), and is refused, not divided by
        cells = float(np.ceil((x1 - x0) * metres_per_deg_x / cell_m) * np.ceil((y1 - y0) * metres_per_deg_y / cell_m))
        if not cells <= MAX_CELLS:
            smallest = np.sqrt((x1 - x0) * metres_per_deg_x * (y1 - y0) * metres_per_deg_y / MAX_CELLS)
            many = f"{cells:,.0f}" if cells < 1e18 else "countless"
            raise BadInput(f"cell_m: {cell_m:g} m makes {many} cells over this extent; at most {MAX_CELLS:,}: "
                           f"use cell_m ≥ {np.ceil(smallest):.0f}")
        return cls(cell_m, x0, y0, x1, y1, dx, dy)

    def params(self) -> dict:
        return {"x0": self.x0, "y0": self.y0, "x1": self.x1, "y1": self.y1, "dx": self.dx, "dy": self.dy}

    def centre(self, i: int, j: int) -> list[float]:
        """[lat, lon] of cell (i, j)'s centre."""
        return [round(self.y0 + (j + 0.5) * self.dy, 6), round(self.x0 + (i + 0.5) * self.dx, 6)]


def heat_cells(conn: psycopg.Connection, window: Window, index: GridIndex, cell_m: float | None = None) -> dict:
    """Alert counts on a regular grid of cells over the county (or the township), never
    the raw points: [[lat, lon, count], ...] at cell centres, with the cell size."""
    cells = Cells.over(index, window.township, cell_m)
    rows = conn.execute(_HEAT_SQL, {**window.params(), **cells.params()}).fetchall()
    data = [[*cells.centre(i, j), n] for i, j, n in rows]
    return {"cell_m": cells.cell_m, "cells": len(data), "alerts": int(sum(r[2] for r in rows)),
            "max": max((r[2] for r in rows), default=0), "bbox": [cells.x0, cells.y0, cells.x1, cells.y1],
            "data": data}


def daily_heat_cells(conn: psycopg.Connection, window: Window, index: GridIndex, tz: str) -> dict[date, list]:
    """heat_cells' data for each local day of the window (days without alerts too), in one query."""
    cells = Cells.over(index, window.township)
    zone = ZoneInfo(tz)
    day, last = window.since.astimezone(zone).date(), (window.until - timedelta(microseconds=1)).astimezone(zone).date()
    days: dict[date, list] = {}
    while day <= last:
        days[day] = []
        day += timedelta(days=1)
    for day, i, j, n in conn.execute(_DAILY_HEAT_SQL, {**window.params(), **cells.params(), "tz": tz}):
        days.setdefault(day, []).append([*cells.centre(i, j), n])
    return days


_DAYS_SQL = f"""
SELECT (a.occurred_at AT TIME ZONE %(tz)s)::date AS day, count(*) FROM alerts a
WHERE {window_sql('a', 'occurred_at')} GROUP BY 1 ORDER BY 1
"""
_INCIDENT_DAYS_SQL = f"""
SELECT (i.first_seen AT TIME ZONE %(tz)s)::date AS day, count(*) FROM incidents i
WHERE {window_sql('i', 'first_seen')} GROUP BY 1 ORDER BY 1
"""
_WEEK_SQL = f"""
SELECT extract(isodow FROM a.occurred_at AT TIME ZONE %(tz)s)::int,
       extract(hour FROM a.occurred_at AT TIME ZONE %(tz)s)::int, count(*)
FROM alerts a WHERE {window_sql('a', 'occurred_at')} GROUP BY 1, 2
"""


def timeline(conn: psycopg.Connection, window: Window, tz: str) -> dict:
    """Alerts and incidents per local day, and alerts per weekday (Monday first) × hour."""
    params = {**window.params(), "tz": tz}
    alerts = dict(conn.execute(_DAYS_SQL, params).fetchall())
    incidents = dict(conn.execute(_INCIDENT_DAYS_SQL, params).fetchall())
    days = sorted(set(alerts) | set(incidents))
    matrix = [[0] * 24 for _ in range(7)]
    for dow, hour, n in conn.execute(_WEEK_SQL, params):
        matrix[dow - 1][hour] = n
    return {"timezone": tz,
            "days": [{"day": d.isoformat(), "alerts": alerts.get(d, 0), "incidents": incidents.get(d, 0)}
                     for d in days],
            "weekday_hour": {"weekdays": ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"], "counts": matrix}}


def _compliance_sql(group: str) -> str:
    return f"""
SELECT {group} AS key, count(*) AS incidents,
       count(*) FILTER (WHERE contact_state = 'met'), count(*) FILTER (WHERE contact_state = 'missed'
           OR (contact_state = 'pending' AND contact_due < %(now)s)),
       count(*) FILTER (WHERE resolve_state = 'met'), count(*) FILTER (WHERE resolve_state = 'missed'
           OR (resolve_state = 'pending' AND resolve_due < %(now)s)),
       count(*) FILTER (WHERE feedback_state = 'met'), count(*) FILTER (WHERE feedback_state = 'missed'
           OR (feedback_state = 'pending' AND feedback_due < %(now)s)),
       percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM contacted_at - created_at) / 60),
       percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM resolved_at - created_at) / 3600),
       percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM feedback_at - resolved_at) / 3600)
FROM incidents i
WHERE {window_sql('i', 'first_seen')} AND status NOT IN ('false_alarm', 'cancelled') AND {group} IS NOT NULL
GROUP BY 1 ORDER BY 1
"""


def compliance(conn: psycopg.Connection, window: Window, now: datetime) -> dict:
    """1-3-1 per township and per team: share of deadlines met (of those decided) and the
    median minutes to contact, hours to resolve, hours to feedback."""
    params = {**window.params(), "now": now}

    def rows(group: str) -> list[dict]:
        out = []
        for key, n, cm, cx, rm, rx, fm, fx, contact, resolve, feedback in conn.execute(_compliance_sql(group), params):
            out.append({"key": key, "incidents": n,
                        "contact_met": _share(cm, cx), "resolve_met": _share(rm, rx), "feedback_met": _share(fm, fx),
                        "median_contact_min": _round(contact), "median_resolve_h": _round(resolve),
                        "median_feedback_h": _round(feedback)})
        return out

    return {"townships": rows("i.township_code"), "teams": rows("i.team_id")}


# Minutes from dispatch to each step of an assignment (resolved: the incident's resolution
# while this team held it), per township and team kind, and for all together.
_RESPONSE_SQL = f"""
WITH steps AS (
    SELECT i.township_code, t.kind,
           extract(epoch FROM a.acknowledged_at - a.dispatched_at) / 60 AS acknowledged,
           extract(epoch FROM a.on_scene_at - a.dispatched_at) / 60 AS on_scene,
           CASE WHEN a.cleared_why = 'resolved' THEN extract(epoch FROM i.resolved_at - a.dispatched_at) / 60
           END AS resolved
    FROM assignments a JOIN incidents i ON i.id = a.incident_id JOIN teams t ON t.id = a.team_id
    WHERE {window_sql('i', 'first_seen')}
)
SELECT township_code, kind, count(*),
       percentile_cont(ARRAY[0.5, 0.9]) WITHIN GROUP (ORDER BY acknowledged),
       percentile_cont(ARRAY[0.5, 0.9]) WITHIN GROUP (ORDER BY on_scene),
       percentile_cont(ARRAY[0.5, 0.9]) WITHIN GROUP (ORDER BY resolved),
       count(acknowledged), count(on_scene), count(resolved)
FROM steps GROUP BY GROUPING SETS ((township_code, kind), ()) ORDER BY 1 NULLS FIRST, 2
"""


def response_times(conn: psycopg.Connection, window: Window) -> dict:
    """Dispatch → acknowledged → on scene → resolved, from the teams' assignments: the
    median and 90th percentile in minutes per township and team kind (and over all, the
    row without either), with how many assignments reached each step."""
    out = []
    for township, kind, n, ack, scene, resolved, n_ack, n_scene, n_resolved in conn.execute(
            _RESPONSE_SQL, window.params()):
        out.append({"township_code": township, "team_kind": kind, "assignments": n,
                    **_percentiles("acknowledged", ack, n_ack), **_percentiles("on_scene", scene, n_scene),
                    **_percentiles("resolved", resolved, n_resolved)})
    return {"unit": "minutes after dispatch", "groups": out}


def _percentiles(step: str, values: list | None, n: int) -> dict:
    median, p90 = values if values else (None, None)
    return {step: {"count": n, "median": _round(median), "p90": _round(p90)}}


def _share(met: int, missed: int) -> float | None:
    return round(met / (met + missed), 3) if met + missed else None


def _round(value) -> float | None:
    return None if value is None else round(float(value), 1)
