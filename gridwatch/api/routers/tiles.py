"""Vector tiles (Mapbox Vector Tile) of grids, cameras, open incidents and alert heat, for web
maps and GIS tools: `/tiles/{layer}/{z}/{x}/{y}.mvt`, with an ETag (a repeat answers 304) and
a short private cache time. The tiles are built in PostGIS (gridwatch.geo.tiles)."""

import hashlib
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request
from pydantic import AwareDatetime
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from gridwatch.alerts.types import known_type
from gridwatch.api.deps import ReadConn
from gridwatch.api.schemas import COMMON, problems
from gridwatch.errors import NotFound, Unsupported
from gridwatch.geo import tiles
from gridwatch.geo.boundaries import known_township
from gridwatch.stats.counts import bounded

router = APIRouter(tags=["tiles"], responses={**COMMON, **problems(400, 404)})
MVT = "application/vnd.mapbox-vector-tile"
# Boundaries and cameras change rarely; incidents and heat while you look.
MAX_AGE = {"grids": 300, "cameras": 60, "incidents": 5, tiles.HEAT: 30}


@router.get("/tiles/{layer}/{z}/{x}/{y}.mvt", summary="A vector tile of one layer (grids, cameras, incidents: the "
            "open ones, heat: alerts counted in cells, for since/until/type/township like /stats/heat)",
            responses={200: {"description": "the tile (empty when nothing lies in it)",
                             "content": {MVT: {"schema": {"type": "string", "format": "binary"}}}},
                       304: {"description": "the tile is the one the If-None-Match ETag names"}},
            response_class=Response)
async def get_tile(request: Request, layer: str, z: int, x: int, y: int, conn: ReadConn,
                   since: Annotated[AwareDatetime | None, Query(description="heat: from (inclusive)")] = None,
                   until: Annotated[AwareDatetime | None, Query(description="heat: to (exclusive)")] = None,
                   type: Annotated[str | None, Query(description="heat: alert type")] = None,
                   township: Annotated[str | None, Query(description="heat: township code")] = None) -> Response:
    if layer not in tiles.NAMES:
        raise NotFound(f"no tile layer {layer!r}; the layers are {', '.join(tiles.NAMES)}")
    if not tiles.in_range(z, x, y):
        raise Unsupported(f"no tile {z}/{x}/{y}: z runs 0..{tiles.MAX_ZOOM}, and x and y 0..2^z - 1")

    def build() -> bytes:
        # the window is read only for heat: the other layers' tiles are the hot path
        window = bounded(since, until, known_type(conn, type), known_township(conn, township), datetime.now(UTC)) \
            if layer == tiles.HEAT else None
        return tiles.tile(conn, layer, z, x, y, window)

    body = await run_in_threadpool(build)
    etag = '"' + hashlib.blake2b(body, digest_size=12).hexdigest() + '"'
    headers = {"ETag": etag, "Cache-Control": f"private, max-age={MAX_AGE[layer]}"}
    asked = {tag.strip().removeprefix("W/") for tag in request.headers.get("if-none-match", "").split(",")}
    if etag in asked or "*" in asked:
        return Response(status_code=304, headers=headers)
    return Response(body, media_type=MVT, headers=headers)
