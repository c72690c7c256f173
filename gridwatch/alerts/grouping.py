"""Grouping repeats into incidents: an alert joins an open incident of its type
if it comes from a camera whose alerts already joined it, or lies within 200 m of it in
the same grid, inside the type's window around the incident's first-to-last-seen span.
Otherwise it starts one.

Like Frigate's review items: one incident per real-world happening, its count and
last-seen time updated, instead of a stream of duplicates.
"""

import bisect
from dataclasses import dataclass, field
from datetime import datetime, timedelta

JOIN_RADIUS_M = 200.0
# Degrees that hold 200 m in any direction up to 50° N (a degree of longitude is
# still 71 km there).
NEAR_DEG = 0.0035
OPEN = ("new", "dispatched", "acknowledged", "on_scene")

# Open incidents that alerts of these types, in this time span, may join (call under the
# type locks). A large batch, which touches most cameras and grids, takes every open
# incident of its types seen lately, by (type, last_seen). A few alerts look up, each, the
# incidents of its type that its camera joined (GIN on camera_ids) and those in its grid
# near its point (type, grid, last_seen): a handful of index probes, where scanning every
# recent incident of the types cost milliseconds. Python checks the rules exactly.
_OPEN_RECENT = """status IN ('new', 'dispatched', 'acknowledged', 'on_scene')
  AND i.last_seen >= %(since)s AND i.first_seen <= %(until)s"""
_COLUMNS = """SELECT i.id, i.type, i.camera_ids, i.grid_code, ST_X(i.geom), ST_Y(i.geom), i.first_seen, i.last_seen,
       i.alert_count, i.team_id, i.team_reason"""
CANDIDATES_BULK_SQL = f"{_COLUMNS} FROM incidents i WHERE i.type = ANY(%(types)b) AND {_OPEN_RECENT}"
CANDIDATES_SQL = f"""{_COLUMNS}
FROM incidents i
WHERE i.camera_ids && %(cameras)b::text[] AND {_OPEN_RECENT} AND EXISTS (
    SELECT 1 FROM unnest(%(point_types)b::text[], %(point_cameras)b::text[]) p(type, camera)
    WHERE p.type = i.type AND p.camera = ANY(i.camera_ids))
UNION
{_COLUMNS}
FROM unnest(%(point_types)b::text[], %(point_grids)b::text[], %(lons)b::float8[], %(lats)b::float8[])
     p(type, grid, lon, lat)
JOIN incidents i ON i.type = p.type AND i.grid_code = p.grid
WHERE {_OPEN_RECENT} AND abs(ST_X(i.geom) - p.lon) < %(near)s AND abs(ST_Y(i.geom) - p.lat) < %(near)s
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


def candidates_query(points: list[AlertPoint], windows: dict[str, timedelta], bulk: bool) -> tuple[str, dict]:
    """The query for the open incidents these points could join, and its parameters:
    CANDIDATES_BULK_SQL for a large batch, else CANDIDATES_SQL (see above)."""
    widest = max(windows[p.type] for p in points)
    span = {"since": min(p.occurred_at for p in points) - widest,
            "until": max(p.occurred_at for p in points) + widest}
    if bulk:
        return CANDIDATES_BULK_SQL, {"types": sorted({p.type for p in points}), **span}
    # a box of NEAR_DEG around each point prefilters the 200 m rule (checked in metres later)
    return CANDIDATES_SQL, {**span, "cameras": sorted({p.camera_id for p in points}),
                            "point_types": [p.type for p in points], "point_cameras": [p.camera_id for p in points],
                            "point_grids": [p.grid_code for p in points], "lons": [p.lon for p in points],
                            "lats": [p.lat for p in points], "near": NEAR_DEG}


def candidates_from_rows(rows: list[tuple], to_metric) -> list[Group]:
    if not rows:
        return []
    xs, ys = to_metric.transform([r[4] for r in rows], [r[5] for r in rows])
    return [Group(typ, set(cams), grid, lon, lat, float(x), float(y), first, last, count, id=iid, team_id=team,
                  team_reason=reason)
            for (iid, typ, cams, grid, lon, lat, first, last, count, team, reason), x, y in zip(rows, xs, ys,
                                                                                             strict=True)]


def assign(points: list[AlertPoint], candidates: list[Group], windows: dict[str, timedelta]) -> list[Group]:
    """The group of each point, in order; new groups are created as needed. Points are
    taken in time order so a later repeat finds the incident an earlier one started, and
    a group whose window has closed before the current point is dropped from the lookups
    (no later point can join it): a long batch costs linear, not quadratic, time."""
    by_camera: dict[tuple[str, str], list[Group]] = {}
    by_grid: dict[tuple[str, str], list[Group]] = {}
    for g in sorted(candidates, key=_start):
        for cam in g.cameras:
            by_camera.setdefault((g.type, cam), []).append(g)
        by_grid.setdefault((g.type, g.grid_code), []).append(g)
    out: list[Group | None] = [None] * len(points)
    for i in sorted(range(len(points)), key=lambda k: points[k].occurred_at):
        p = points[i]
        window = windows[p.type]
        group = _latest(_open(by_camera, (p.type, p.camera_id), p.occurred_at, window))
        if group is None:
            group = _latest([g for g in _open(by_grid, (p.type, p.grid_code), p.occurred_at, window)
                             if (g.x - p.x) ** 2 + (g.y - p.y) ** 2 <= JOIN_RADIUS_M ** 2])
        if group is None:
            group = Group(p.type, set(), p.grid_code, p.lon, p.lat, p.x, p.y, p.occurred_at, p.occurred_at,
                          count=0)
            bisect.insort(by_grid.setdefault((p.type, p.grid_code), []), group, key=_start)
        if p.camera_id not in group.cameras:
            group.cameras.add(p.camera_id)
            group.new_cameras.add(p.camera_id)
            bisect.insort(by_camera.setdefault((p.type, p.camera_id), []), group, key=_start)
        group.count += 1
        if p.occurred_at < group.first_seen:
            group.first_seen = p.occurred_at
        if p.occurred_at > group.last_seen:
            group.last_seen = p.occurred_at
        if group.id is not None:
            group.joined += 1
        out[i] = group
    return out


def _start(g: Group) -> datetime:
    return g.first_seen


def _open(index: dict[tuple[str, str], list[Group]], key: tuple[str, str], when: datetime,
          window: timedelta) -> list[Group]:
    """The groups under `key` whose window holds `when`. Lists are kept in order of first
    sighting: closed groups at the front are dropped for good, and the scan stops at the
    first group that opens after `when`."""
    groups = index.get(key)
    if not groups:
        return []
    closed = 0
    while closed < len(groups) and groups[closed].last_seen + window < when:
        closed += 1
    if closed:
        del groups[:closed]
    out = []
    for g in groups:
        if g.first_seen - window > when:
            break
        if g.last_seen + window >= when:
            out.append(g)
    return out


def _latest(groups: list[Group]) -> Group | None:
    """Of the groups a point may join (all accept it), the one seen last."""
    return max(groups, key=_last, default=None)


def _last(g: Group) -> datetime:
    return g.last_seen
