"""The feature collections gridwatch publishes to GIS tools (OGC API Features): what each one
is, its id, geometry, time, properties and the properties it can be filtered on, and the
queries that page through it.

Features are written as GeoJSON by PostGIS itself, one text per feature, so a page of 10,000
is never parsed and rebuilt in Python. The SQL is put together from the fixed names below,
never from request values, which are always parameters.
"""

from dataclasses import dataclass, field
from datetime import datetime

import psycopg
from psycopg import sql

BBox = tuple[float, float, float, float]
# Decimal places of lon/lat in the GeoJSON: 7 is about 1 cm.
PRECISION = 7


@dataclass(frozen=True)
class Collection:
    id: str
    title: str
    description: str
    table: str
    key: str  # the feature id's column
    key_type: type  # str or int: how an id in a path is read
    geometry_type: str
    properties: tuple[str, ...]  # columns; "expression AS name" for computed ones
    # name -> JSON Schema type of the properties a request may filter on by equality
    queryables: dict[str, str] = field(default_factory=dict)
    time: str | None = None  # the column `datetime` selects on
    where: str = "true"  # which rows the collection holds

    def property_names(self) -> list[str]:
        return [p.rsplit(" AS ", 1)[-1] for p in self.properties]


# The boundaries in lon/lat (WGS 84), as stored; the events are places and times, never people.
COLLECTIONS: dict[str, Collection] = {c.id: c for c in [
    Collection("townships", "Townships", "The county's townships (9-digit division codes).", "townships", "code", str,
               "MultiPolygon", ("code", "name", "county_code", "area_m2"), {"county_code": "string"}),
    Collection("villages", "Villages and communities", "Villages and communities (12-digit codes), each in one "
               "township.", "villages", "code", str, "MultiPolygon",
               ("code", "name", "kind", "township_code", "county_code", "area_m2"),
               {"kind": "string", "township_code": "string"}),
    Collection("grids", "Governance grids", "The governance grids (15-digit codes), each in one village or "
               "community.", "grids", "code", str, "MultiPolygon",
               ("code", "name", "village_code", "township_code", "county_code", "area_m2"),
               {"village_code": "string", "township_code": "string"}),
    Collection("cameras", "Cameras", "Cameras with their heading, field of view and range.", "cameras", "id", str,
               "Point", ("id", "name", "heading_deg", "fov_deg", "range_m", "active",
                         "homography IS NOT NULL AS calibrated"), {"active": "boolean"}),
    Collection("incidents", "Incidents", "Incidents (repeated alerts grouped, and field reports) with their "
               "1-3-1 deadlines; datetime selects on first_seen.", "incidents", "id", int, "Point",
               ("id", "type", "status", "origin", "grid_code", "township_code", "alert_count", "first_seen",
                "last_seen", "team_id", "contact_due", "resolve_due", "feedback_due", "contact_state",
                "resolve_state", "feedback_state", "escalation_level"),
               {"type": "string", "status": "string", "grid_code": "string", "township_code": "string",
                "origin": "string"}, time="first_seen"),
    Collection("alerts", "Camera alerts", "Alerts as placed on the ground; datetime selects on occurred_at.",
               "alerts", "id", int, "Point",
               ("id", "source", "camera_id", "type", "score", "occurred_at", "position_method", "grid_code",
                "township_code", "incident_id"),
               {"type": "string", "camera_id": "string", "grid_code": "string", "township_code": "string"},
               time="occurred_at"),
]}


# The boundary collections: what GRIDWATCH_OGC_PUBLIC_BOUNDARIES may open to readers without a key.
BOUNDARY_COLLECTIONS = ("townships", "villages", "grids")


@dataclass(frozen=True)
class Query:
    """What a request selects from a collection: all of it by default."""

    bbox: BBox | None = None
    since: datetime | None = None  # inclusive
    until: datetime | None = None  # inclusive, as OGC intervals are
    equals: dict[str, str | bool] = field(default_factory=dict)  # queryable -> value


def _where(c: Collection, q: Query) -> tuple[sql.Composable, list]:
    parts, params = [sql.SQL(c.where)], []
    if q.bbox:
        parts.append(sql.SQL("ST_Intersects(geom, ST_MakeEnvelope(%s, %s, %s, %s, 4326))"))
        params += list(q.bbox)
    if c.time and q.since:
        parts.append(sql.SQL("{} >= %s").format(sql.Identifier(c.time)))
        params.append(q.since)
    if c.time and q.until:
        parts.append(sql.SQL("{} <= %s").format(sql.Identifier(c.time)))
        params.append(q.until)
    for name, value in q.equals.items():
        parts.append(sql.SQL("{} = %s").format(sql.Identifier(name)))
        params.append(value)
    return sql.SQL(" AND ").join(parts), params


def _feature(c: Collection) -> sql.Composable:
    props = sql.SQL(", ").join(sql.SQL("{}, {}").format(sql.Literal(name), sql.SQL(expr.rsplit(" AS ", 1)[0]))
                               for name, expr in zip(c.property_names(), c.properties, strict=True))
    return sql.SQL("json_build_object('type', 'Feature', 'id', {key}, 'geometry', "
                   "ST_AsGeoJSON(geom, {precision})::json, 'properties', json_build_object({props}))::text").format(
        key=sql.Identifier(c.key), precision=sql.Literal(PRECISION), props=props)


def items(conn: psycopg.Connection, c: Collection, q: Query, limit: int, offset: int) -> tuple[list[str], int]:
    """One page of the collection's features (GeoJSON texts, in id order) and how many match."""
    where, params = _where(c, q)
    rows = conn.execute(sql.SQL("SELECT {feature} FROM {table} WHERE {where} ORDER BY {key} LIMIT %s OFFSET %s")
                        .format(feature=_feature(c), table=sql.Identifier(c.table), where=where,
                                key=sql.Identifier(c.key)), [*params, limit, offset]).fetchall()
    if offset == 0 and len(rows) < limit:
        matched = len(rows)
    else:
        matched = conn.execute(sql.SQL("SELECT count(*) FROM {table} WHERE {where}")
                               .format(table=sql.Identifier(c.table), where=where), params).fetchone()[0]
    return [r[0] for r in rows], matched


def item(conn: psycopg.Connection, c: Collection, fid: str | int) -> str | None:
    """One feature as GeoJSON text, or None."""
    row = conn.execute(sql.SQL("SELECT {feature} FROM {table} WHERE {where} AND {key} = %s")
                       .format(feature=_feature(c), table=sql.Identifier(c.table), where=sql.SQL(c.where),
                               key=sql.Identifier(c.key)), [fid]).fetchone()
    return row[0] if row else None


def extent(conn: psycopg.Connection, c: Collection) -> tuple[BBox | None, tuple[datetime | None, datetime | None]]:
    """The collection's lon/lat bounding box and time span (None when it is empty). The events
    (alerts, incidents) grow to millions of rows: their box is PostgreSQL's estimate from its
    statistics (exact only while there are none), and their span comes from the time index."""
    def over_rows(aggregate: str) -> sql.Composable:
        return sql.SQL("(SELECT {aggregate} FROM {table} WHERE {where})").format(
            aggregate=sql.SQL(aggregate), table=sql.Identifier(c.table), where=sql.SQL(c.where))

    box_sql = over_rows("ST_Extent(geom)")
    if c.time:
        box_sql = sql.SQL("coalesce(ST_EstimatedExtent('public', {name}, 'geom'), {exact})").format(
            name=sql.Literal(c.table), exact=box_sql)
    span = [over_rows(f"{f}({c.time})") if c.time else sql.SQL("NULL") for f in ("min", "max")]
    box, start, end = conn.execute(sql.SQL("SELECT {box}::box2d::text, {start}, {end}").format(
        box=box_sql, start=span[0], end=span[1])).fetchone()
    if box is None:
        return None, (start, end)
    (minx, miny), (maxx, maxy) = (map(float, corner.split()) for corner in box[4:-1].split(","))
    return (minx, miny, maxx, maxy), (start, end)
