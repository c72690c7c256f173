"""Grouping repeats into incidents (DESIGN §6): an alert joins an open incident of its type
if it comes from a camera whose alerts already joined it, or lies within 200 m of it in
the same grid, inside the type's window around the incident's first-to-last-seen span.
Otherwise it starts one.

Like Frigate's review items: one incident per real-world happening, its count and
last-seen time updated, instead of a stream of duplicates.
"""

from dataclasses import dataclass, field
from datetime import datetime, timedelta

import psycopg

JOIN_RADIUS_M = 200.0
OPEN = ("new", "dispatched", "acknowledged", "on_scene")

# Open incidents that alerts of these types, cameras and grids, in this time span, may join.
_CANDIDATES_SQL = """
SELECT id, type, camera_ids, grid_code, ST_X(geom), ST_Y(geom), first_seen, last_seen, alert_count,
       team_id, team_reason
FROM incidents
WHERE status IN ('new', 'dispatched', 'acknowledged', 'on_scene') AND type = ANY(%s)
  AND last_seen >= %s AND first_seen <= %s AND (camera_ids && %s::text[] OR grid_code = ANY(%s))
"""


@dataclass
class Group:
    """An incident as grouping sees it: an existing one (id set) or one to create."""

    type: str
    cameras: set[str]
    grid_code: str
    lon: float
    lat: float
    x: float  # metres, for the 200 m rule
    y: float
    first_seen: datetime
    last_seen: datetime
    count: int
    id: int | None = None
    team_id: str | None = None
    team_reason: str | None = None
    joined: int = 0  # alerts this ingest adds to an existing incident
    new_cameras: set[str] = field(default_factory=set)
    alerts: list[int] = field(default_factory=list)

    def accepts(self, when: datetime, window: timedelta) -> bool:
        return self.first_seen - window <= when <= self.last_seen + window


@dataclass
class AlertPoint:
    """What grouping needs of one placed alert."""

    type: str
    camera_id: str
    grid_code: str
    occurred_at: datetime
    lon: float
    lat: float
    x: float
    y: float


def load_candidates(conn: psycopg.Connection, points: list[AlertPoint], windows: dict[str, timedelta],
                    to_metric) -> list[Group]:
    """Open incidents the points could join (call under the type locks)."""
    if not points:
        return []
    widest = max(windows[p.type] for p in points)
    rows = conn.execute(_CANDIDATES_SQL, [sorted({p.type for p in points}),
                                          min(p.occurred_at for p in points) - widest,
                                          max(p.occurred_at for p in points) + widest,
                                          sorted({p.camera_id for p in points}),
                                          sorted({p.grid_code for p in points})]).fetchall()
    groups = []
    for iid, typ, cams, grid, lon, lat, first, last, count, team, reason in rows:
        x, y = to_metric.transform(lon, lat)
        groups.append(Group(typ, set(cams), grid, lon, lat, x, y, first, last, count, id=iid, team_id=team,
                            team_reason=reason))
    return groups


def assign(points: list[AlertPoint], candidates: list[Group], windows: dict[str, timedelta]) -> list[Group]:
    """The group of each point, in order; new groups are created as needed. Points are
    taken in time order so a later repeat finds the incident an earlier one started."""
    by_camera: dict[tuple[str, str], list[Group]] = {}
    by_grid: dict[tuple[str, str], list[Group]] = {}
    for g in candidates:
        for cam in g.cameras:
            by_camera.setdefault((g.type, cam), []).append(g)
        by_grid.setdefault((g.type, g.grid_code), []).append(g)
    out: list[Group | None] = [None] * len(points)
    for i in sorted(range(len(points)), key=lambda k: points[k].occurred_at):
        p = points[i]
        window = windows[p.type]
        group = _latest(g for g in by_camera.get((p.type, p.camera_id), ()) if g.accepts(p.occurred_at, window))
        if group is None:
            group = _latest(g for g in by_grid.get((p.type, p.grid_code), ())
                            if g.accepts(p.occurred_at, window)
                            and (g.x - p.x) ** 2 + (g.y - p.y) ** 2 <= JOIN_RADIUS_M ** 2)
        if group is None:
            group = Group(p.type, set(), p.grid_code, p.lon, p.lat, p.x, p.y, p.occurred_at, p.occurred_at,
                          count=0)
            by_grid.setdefault((p.type, p.grid_code), []).append(group)
        if p.camera_id not in group.cameras:
            group.cameras.add(p.camera_id)
            group.new_cameras.add(p.camera_id)
            by_camera.setdefault((p.type, p.camera_id), []).append(group)
        group.count += 1
        group.first_seen = min(group.first_seen, p.occurred_at)
        group.last_seen = max(group.last_seen, p.occurred_at)
        if group.id is not None:
            group.joined += 1
        group.alerts.append(i)
        out[i] = group
    return out


def _latest(groups) -> Group | None:
    return max(groups, key=lambda g: g.last_seen, default=None)
