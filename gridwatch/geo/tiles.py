"""Mapbox vector tiles of grids, cameras, open incidents and alert heat, built by PostGIS
(ST_AsMVT) for web maps and GIS tools.

Each tile's envelope (with its buffer) is transformed to lon/lat once, and rows are selected by
it against the stored lon/lat geometry, so the GiST index is used; ST_AsMVTGeom then clips
each to the tile (what lies only in the envelope's corners comes out empty and is left out).
Grids keep their Web Mercator outline in a generated column, so their polygons are never
transformed per request; cameras and incidents are points, cheap to transform. The SQL is put
together from the fixed names below; the tile's z/x/y and the window are parameters.
"""

from dataclasses import dataclass

import psycopg
from psycopg import sql

from gridwatch.alerts.incidents import FINISHED
from gridwatch.stats.counts import Window, window_sql

MAX_ZOOM = 22
EXTENT = 4096  # MVT coordinates per tile side
BUFFER = 64  # beyond the tile's edge, so lines and points at the border are drawn whole
HEAT_CELLS = 64  # heat cells per tile side: about 4 screen pixels at 256 px a tile


@dataclass(frozen=True)
class Layer:
    name: str
    table: str
    properties: tuple[str, ...]  # SQL expressions, "expression AS name" where computed
    where: str = "true"
    mercator: str = "ST_Transform(s.geom, 3857)"  # the geometry in Web Mercator (stored for grids)


LAYERS: dict[str, Layer] = {layer.name: layer for layer in [
    Layer("grids", "grids", ("code", "name", "village_code", "township_code"), mercator="s.geom_3857"),
    Layer("cameras", "cameras", ("id", "name", "heading_deg", "fov_deg", "range_m", "active")),
    Layer("incidents", "incidents", ("id", "type", "status", "grid_code", "township_code", "alert_count",
                                     "first_seen::text AS first_seen", "contact_state", "resolve_state"),
          where=f"status NOT IN ({', '.join(repr(s) for s in FINISHED)})"),
]}
HEAT = "heat"
NAMES = (*LAYERS, HEAT)

_BOUNDS = f"""
bounds AS (
    SELECT ST_TileEnvelope(%(z)s, %(x)s, %(y)s) AS merc,
           ST_Transform(ST_TileEnvelope(%(z)s, %(x)s, %(y)s, margin => {BUFFER / EXTENT}), 4326) AS geo
)"""


def in_range(z: int, x: int, y: int) -> bool:
    return 0 <= z <= MAX_ZOOM and 0 <= x < 2**z and 0 <= y < 2**z


def tile(conn: psycopg.Connection, name: str, z: int, x: int, y: int, window: Window | None = None) -> bytes:
    """One tile of one layer (empty bytes when nothing lies in it). `window` selects the
    alerts of the heat layer."""
    params: dict = {"z": z, "x": x, "y": y}
    if name == HEAT:
        assert window is not None
        params |= {"since": window.since, "until": window.until, "type": window.type, "township": window.township,
                   "cells": HEAT_CELLS}
    return bytes(conn.execute(query(name), params).fetchone()[0] or b"")


def query(name: str) -> sql.Composable:
    """The SQL of a layer's tile, with the parameters z, x, y (and the window's for heat)."""
    if name == HEAT:
        return sql.SQL(_HEAT_SQL)
    layer = LAYERS[name]
    return sql.SQL("""
        WITH {bounds}
        SELECT ST_AsMVT(t, {name}, {extent}, 'geom') FROM (
            SELECT {properties},
                   ST_AsMVTGeom({mercator}, bounds.merc, {extent}, {buffer}, true) AS geom
            FROM {table} s, bounds
            WHERE s.geom && bounds.geo AND {where}
        ) t WHERE geom IS NOT NULL""").format(
        bounds=sql.SQL(_BOUNDS), name=sql.Literal(layer.name), extent=sql.Literal(EXTENT),
        buffer=sql.Literal(BUFFER), table=sql.Identifier(layer.table), where=sql.SQL(layer.where),
        mercator=sql.SQL(layer.mercator),
        properties=sql.SQL(", ").join(sql.SQL(p) for p in layer.properties))


# Alerts of the window counted in square cells of the tile (HEAT_CELLS per side), each cell a
# polygon with its count: the heat map at any zoom, from one query.
_HEAT_SQL = f"""
WITH {_BOUNDS},
size AS (SELECT (ST_XMax(merc) - ST_XMin(merc)) / %(cells)s AS m, ST_XMin(merc) AS x0, ST_YMin(merc) AS y0
         FROM bounds),
cells AS (
    SELECT floor((ST_X(p) - size.x0) / size.m) AS i, floor((ST_Y(p) - size.y0) / size.m) AS j, count(*) AS alerts
    FROM (SELECT ST_Transform(a.geom, 3857) AS p FROM alerts a, bounds
          WHERE {window_sql('a', 'occurred_at')} AND a.geom && bounds.geo) pts, size
    GROUP BY 1, 2
)
SELECT ST_AsMVT(t, 'heat', {EXTENT}, 'geom') FROM (
    SELECT cells.alerts,
           ST_AsMVTGeom(ST_MakeEnvelope(size.x0 + cells.i * size.m, size.y0 + cells.j * size.m,
                                        size.x0 + (cells.i + 1) * size.m, size.y0 + (cells.j + 1) * size.m, 3857),
                        bounds.merc, {EXTENT}, 0, true) AS geom
    FROM cells, size, bounds
) t WHERE geom IS NOT NULL"""
