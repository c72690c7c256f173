"""Patrol teams: who answers for which grids, where they are based, whether they are
available, and their on-duty position pings (kept for dispatch only, then purged).

A team is a head count, a kind (foot, motorcycle, car) and a status; gridwatch keeps no
register of the people in it.
"""

from datetime import datetime, timedelta

import orjson
import psycopg

from gridwatch.errors import BadInput, Conflict, NotFound

# A ping older than this no longer says where the team is; its base does.
POSITION_FRESH = timedelta(minutes=30)

# Teams as GeoJSON: the point is the latest fresh ping, else the base.
_FEATURES_SQL = """
WITH latest AS (
    SELECT DISTINCT ON (team_id) team_id, at, geom FROM team_positions
    WHERE at >= %(fresh_after)s ORDER BY team_id, at DESC
), page AS (
    SELECT t.*, l.at AS position_at, coalesce(l.geom, t.base) AS here,
           (SELECT coalesce(array_agg(grid_code ORDER BY grid_code), '{}') FROM team_grids g
             WHERE g.team_id = t.id) AS grids
    FROM teams t LEFT JOIN latest l ON l.team_id = t.id
    WHERE $where ORDER BY t.id LIMIT %(limit)s OFFSET %(offset)s
)
SELECT coalesce(json_agg(json_build_object('type', 'Feature', 'id', p.id,
    'geometry', ST_AsGeoJSON(p.here, 7)::json,
    'properties', json_build_object('id', p.id, 'name', p.name, 'kind', p.kind, 'members', p.members,
        'volunteer', p.volunteer, 'status', p.status, 'township_code', p.township_code, 'grids', p.grids,
        'position', CASE WHEN p.position_at IS NULL THEN 'base' ELSE 'gps' END, 'position_at', p.position_at,
        'busy_with', (SELECT coalesce(array_agg(a.incident_id ORDER BY a.dispatched_at), '{}') FROM assignments a
                      WHERE a.team_id = p.id AND a.cleared_at IS NULL),
        'base', json_build_array(round(ST_X(p.base)::numeric, 7), round(ST_Y(p.base)::numeric, 7))))
    ORDER BY p.id), '[]'::json)::text
FROM page p
"""


def team_features(conn: psycopg.Connection, now: datetime, *, team_id: str | None = None,
                  status: str | None = None, township: str | None = None, limit: int = 1000,
                  offset: int = 0) -> list:
    """Teams as GeoJSON features (at their fresh GPS position, else their base), by id."""
    sql, params = features_query(now, team_ids=[team_id] if team_id else None, status=status, township=township,
                                 limit=limit, offset=offset)
    return orjson.loads(conn.execute(sql, params).fetchone()[0])


def features_query(now: datetime, *, team_ids: list[str] | None = None, status: str | None = None,
                   township: str | None = None, limit: int = 1000, offset: int = 0) -> tuple[str, dict]:
    """The query for team_features and its parameters (the live feed runs it on its own
    connection): one row, a JSON array of features."""
    where, params = ["true"], {"fresh_after": now - POSITION_FRESH, "limit": limit, "offset": offset}
    for condition, key, value in (("t.id = ANY(%(team_ids)s)", "team_ids", team_ids),
                                  ("t.status = %(status)s", "status", status),
                                  ("t.township_code = %(township)s", "township", township)):
        if value is not None:
            where.append(condition)
            params[key] = value
    return _FEATURES_SQL.replace("$where", " AND ".join(where)), params


def team_feature(conn: psycopg.Connection, team_id: str, now: datetime) -> dict:
    features = team_features(conn, now, team_id=team_id)
    if not features:
        raise NotFound(f"no team {team_id!r}")
    return features[0]


def _check_township(conn: psycopg.Connection, code: str | None) -> None:
    if code is not None and conn.execute("SELECT 1 FROM townships WHERE code = %s", [code]).fetchone() is None:
        raise BadInput(f"township_code: no township {code!r} (GET /townships lists them)")


def create_team(conn: psycopg.Connection, team: dict) -> None:
    _check_township(conn, team.get("township_code"))
    try:
        conn.execute("INSERT INTO teams (id, name, kind, members, volunteer, base, township_code, county_code, status) "
                     "VALUES (%s, %s, %s, %s, %s, ST_SetSRID(ST_MakePoint(%s, %s), 4326), %s, %s, %s)",
                     [team["id"], team["name"], team["kind"], team["members"], team.get("volunteer", False),
                      team["base"][0], team["base"][1], team.get("township_code"), team.get("county_code"),
                      team.get("status", "available")])
    except psycopg.errors.UniqueViolation:
        raise Conflict(f"team {team['id']!r} exists already") from None
    set_grids(conn, team["id"], team.get("grids", []))


def update_team(conn: psycopg.Connection, team_id: str, changes: dict) -> None:
    base = changes.get("base")
    _check_township(conn, changes.get("township_code"))
    row = conn.execute("UPDATE teams SET name = coalesce(%s, name), kind = coalesce(%s, kind), "
                       "members = coalesce(%s, members), status = coalesce(%s, status), "
                       "township_code = coalesce(%s, township_code), "
                       "base = coalesce(ST_SetSRID(ST_MakePoint(%s, %s), 4326), base), updated_at = now() "
                       "WHERE id = %s RETURNING id",
                       [changes.get("name"), changes.get("kind"), changes.get("members"), changes.get("status"),
                        changes.get("township_code"), base[0] if base else None, base[1] if base else None,
                        team_id]).fetchone()
    if row is None:
        raise NotFound(f"no team {team_id!r}")
    if "grids" in changes and changes["grids"] is not None:
        set_grids(conn, team_id, changes["grids"])


def set_duty(conn: psycopg.Connection, team_id: str, on_duty: bool, now: datetime) -> str:
    """A team goes off duty, or back on duty (busy if it still holds an assignment, else
    available); returns its new status. Raises NotFound."""
    # locked first, so a dispatch committing meanwhile is seen by the status computed next
    if conn.execute("SELECT 1 FROM teams WHERE id = %s FOR UPDATE", [team_id]).fetchone() is None:
        raise NotFound(f"no team {team_id!r}")
    return conn.execute("UPDATE teams t SET status = CASE WHEN NOT %(on)s THEN 'off_duty' "
                        "WHEN EXISTS (SELECT 1 FROM assignments a WHERE a.team_id = t.id AND a.cleared_at IS NULL) "
                        "THEN 'busy' ELSE 'available' END, updated_at = %(now)s WHERE id = %(id)s RETURNING status",
                        {"on": on_duty, "now": now, "id": team_id}).fetchone()[0]


def set_grids(conn: psycopg.Connection, team_id: str, grids: list[str]) -> None:
    """Replace the grids a team answers for; every code must be a stored grid."""
    known = {r[0] for r in conn.execute("SELECT code FROM grids WHERE code = ANY(%s)", [grids])}
    unknown = sorted(set(grids) - known)
    if unknown:
        raise BadInput(f"unknown grid code(s): {', '.join(unknown[:5])}")
    conn.execute("DELETE FROM team_grids WHERE team_id = %s", [team_id])
    with conn.cursor().copy("COPY team_grids (team_id, grid_code) FROM STDIN") as copy:
        for code in sorted(set(grids)):
            copy.write_row((team_id, code))


def add_positions(conn: psycopg.Connection, team_id: str, pings: list[tuple[datetime, float, float]],
                  now: datetime, keep: timedelta) -> int:
    """Store GPS pings of an on-duty team (a repeated timestamp keeps the first); returns
    how many were new. Raises NotFound, Conflict (off duty: no position is kept), BadInput
    for pings from the future or older than `keep` (how long positions are kept at all)."""
    row = conn.execute("SELECT status FROM teams WHERE id = %s", [team_id]).fetchone()
    if row is None:
        raise NotFound(f"no team {team_id!r}")
    if row[0] == "off_duty":
        raise Conflict(f"team {team_id} is off duty: its position is not kept; go on duty first "
                       f"(POST /patrols/{team_id}/duty)")
    future = [i for i, (at, _, _) in enumerate(pings) if at > now + timedelta(minutes=5)]
    if future:
        raise BadInput(f"positions[{future[0]}]: 'at' is more than 5 minutes in the future; check the device clock")
    oldest = now - keep
    stale = [i for i, (at, _, _) in enumerate(pings) if at < oldest]
    if stale:
        raise BadInput(f"positions[{stale[0]}]: 'at' is older than the {keep.total_seconds() / 3600:g} h positions "
                       f"are kept; check the device clock")
    cur = conn.cursor()
    cur.executemany("INSERT INTO team_positions (team_id, at, geom) VALUES (%s, %s, "
                    "ST_SetSRID(ST_MakePoint(%s, %s), 4326)) ON CONFLICT DO NOTHING",
                    [(team_id, at, lon, lat) for at, lon, lat in pings], returning=False)
    return cur.rowcount


def recommend(conn: psycopg.Connection, now: datetime, incident: int | None, lon: float | None, lat: float | None,
              limit: int) -> dict:
    """Teams ranked for an incident (its place and grid) or a point (the grid holding it)."""
    from gridwatch.alerts.dispatch import TeamBoard  # dispatch reads teams through this module

    if incident is not None:
        row = conn.execute("SELECT ST_X(geom), ST_Y(geom), grid_code FROM incidents WHERE id = %s",
                           [incident]).fetchone()
        if row is None:
            raise NotFound(f"no incident {incident}")
        lon, lat, grid = row
    elif lon is None or lat is None:
        raise BadInput("give incident=ID, or lon= and lat=")
    else:
        grid = conn.execute("SELECT grid_at(ST_SetSRID(ST_MakePoint(%s, %s), 4326))", [lon, lat]).fetchone()[0]
    candidates, why_none = TeamBoard.load(conn, now).recommend(lon, lat, grid, limit=limit)
    return {"incident_id": incident, "lon": lon, "lat": lat, "grid_code": grid,
            "candidates": [c.as_dict() for c in candidates], "none_available": why_none}
