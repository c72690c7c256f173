"""Alerts read back as GeoJSON, including the unassigned queue (alerts outside every grid that
no dispatcher has placed in a grid or dismissed yet), each with its nearest grid."""

from datetime import datetime

import psycopg

from gridwatch.errors import NotFound

# One alert (alias a) as a GeoJSON Feature.
FEATURE_SQL = """json_build_object('type', 'Feature', 'id', a.id, 'geometry', ST_AsGeoJSON(a.geom, 7)::json,
    'properties', json_build_object('alert_id', a.id, 'source', a.source, 'event_id', a.event_id,
        'camera_id', a.camera_id, 'type', a.type, 'score', a.score, 'occurred_at', a.occurred_at,
        'received_at', a.received_at, 'ended_at', a.ended_at, 'box', a.box, 'frame_size', a.frame_size,
        'lon', round(ST_X(a.geom)::numeric, 7), 'lat', round(ST_Y(a.geom)::numeric, 7),
        'position_method', a.position_method, 'grid_code', a.grid_code, 'township_code', a.township_code,
        'incident_id', a.incident_id, 'team_id', a.team_id, 'team_reason', a.team_reason,
        'boundary_version', a.boundary_version, 'extra', a.extra,
        'nearest_grid_code', CASE WHEN a.grid_code IS NULL
            THEN (SELECT g.code FROM grids g ORDER BY g.geom <-> a.geom, g.code LIMIT 1) END,
        'queue_action', a.queue_action, 'queue_actor', a.queue_actor, 'queue_at', a.queue_at,
        'queue_note', a.queue_note))"""
_FILTERS = {"camera": "a.camera_id = %(camera)s", "grid": "a.grid_code = %(grid)s",
            "township": "a.township_code = %(township)s", "type": "a.type = %(type)s",
            "incident": "a.incident_id = %(incident)s"}


def alert_collection(conn: psycopg.Connection, *, bbox=None, since: datetime | None = None,
                     until: datetime | None = None, unassigned: bool = False, filters: dict, limit: int = 100,
                     offset: int = 0) -> bytes:
    """Alerts as a GeoJSON FeatureCollection, newest first."""
    where = [_FILTERS[k] for k, v in filters.items() if v is not None]
    params = {**filters, "limit": limit, "offset": offset, "since": since, "until": until}
    if bbox is not None:
        where.append("ST_Intersects(a.geom, ST_MakeEnvelope(%(minx)s, %(miny)s, %(maxx)s, %(maxy)s, 4326))")
        params.update(zip(("minx", "miny", "maxx", "maxy"), bbox, strict=True))
    if since is not None:
        where.append("a.occurred_at >= %(since)s")
    if until is not None:
        where.append("a.occurred_at < %(until)s")
    if unassigned:  # what is still to be done: neither placed in a grid nor dismissed
        where.append("a.grid_code IS NULL AND a.queue_action IS NULL")
    cond = " AND ".join(where) or "true"
    sql = (f"WITH page AS (SELECT * FROM alerts a WHERE {cond} ORDER BY a.occurred_at DESC, a.id DESC "
           f"LIMIT %(limit)s OFFSET %(offset)s) "
           f"SELECT json_build_object('type', 'FeatureCollection', "
           f"'numberMatched', (SELECT count(*) FROM alerts a WHERE {cond}), "
           f"'numberReturned', (SELECT count(*) FROM page), "
           f"'features', coalesce((SELECT json_agg({FEATURE_SQL} ORDER BY a.occurred_at DESC, a.id DESC) "
           f"FROM page a), '[]'::json))::text")
    return conn.execute(sql, params).fetchone()[0].encode()


def alert_feature(conn: psycopg.Connection, alert_id: int) -> bytes:
    row = conn.execute(f"SELECT {FEATURE_SQL}::text FROM alerts a WHERE a.id = %s", [alert_id]).fetchone()
    if row is None:
        raise NotFound(f"no alert {alert_id}")
    return row[0].encode()
