"""Grids, villages and townships: listing, one by code, and which grid holds a point."""

from typing import Annotated

import numpy as np
import orjson
from fastapi import APIRouter, Depends, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from gridwatch.api import schemas
from gridwatch.api.deps import Conn, Grids, ReadConn, json_response
from gridwatch.api.errors import problem
from gridwatch.api.params import BBox, Page, bbox_query, lonlat_params, page_query
from gridwatch.api.schemas import COMMON, GEOJSON, GeoJSONResponse, problems
from gridwatch.errors import BadInput
from gridwatch.geo.boundaries import feature, feature_collection
from gridwatch.geo.grid_index import GridIndex

MAX_LOOKUP_POINTS = 100_000

router = APIRouter(tags=["grids"], responses=COMMON)
NO_SUCH = problems(404)


# /grids/at is the hottest path: it parses lon/lat and finds the index itself, because
# FastAPI's per-request dependency solving costs more than the lookup (bench/lookup.sh).
@router.get("/grids/at", summary="The grid holding a point (404 with the nearest grid if none)",
            response_model=schemas.GridAt,
            responses=problems(404, s404="no grid holds the point: `nearest` names the nearest grid (code, name, "
                                         "distance_m) and `boundary_version` the boundaries asked"),
                openapi_extra={"parameters": [
                    {"name": "lon", "in": "query", "required": True, "schema": {"type": "number", "minimum": -180,
                                                                                 "maximum": 180}},
                    {"name": "lat", "in": "query", "required": True, "schema": {"type": "number", "minimum": -90,
                                                                                 "maximum": 90}}]})
async def grid_at(request: Request) -> Response:
    lon, lat = lonlat_params(request.query_params)
    index: GridIndex = request.app.state.grid_index.index
    row = index.grid_at(lon, lat)
    if row < 0:
        # Answered, not raised: a quarter of a county's bounding box lies outside it, and
        # this path is as hot as the hit path.
        near = index.nearest_one(lon, lat)
        if near is None:
            return problem(404, f"no grid holds ({lon}, {lat}): no grids are loaded", title="Not Found",
                           boundary_version=index.version)
        name = index.names[index.row_of[near.code]]
        return problem(404, f"no grid holds ({lon}, {lat}); the nearest is {near.code} ({name}), "
                            f"{near.distance_m:,.1f} m away", title="Not Found",
                       nearest={"code": near.code, "name": name, "distance_m": near.distance_m},
                       boundary_version=index.version)
    return json_response({"lon": lon, "lat": lat, "code": index.codes[row], "name": index.names[row],
                  "village_code": index.village_codes[row], "township_code": index.township_codes[row],
                  "boundary_version": index.version})


def _lookup(index: GridIndex, body: bytes) -> dict:
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadInput(f"the body is not JSON: {exc}") from None
    points = doc.get("points") if isinstance(doc, dict) else None
    if not isinstance(points, list):
        raise BadInput('the body must be {"points": [[lon, lat], ...]}')
    if len(points) > MAX_LOOKUP_POINTS:
        raise BadInput(f"{len(points):,} points: at most {MAX_LOOKUP_POINTS:,} per request; split the request")
    try:
        xy = np.asarray(points, dtype=np.float64).reshape(len(points), 2)
    except (ValueError, TypeError):
        bad = next((i for i, p in enumerate(points) if not (isinstance(p, list) and len(p) == 2 and all(
            isinstance(v, int | float) and not isinstance(v, bool) for v in p))), 0)
        raise BadInput(f"points[{bad}]: expected [lon, lat] numbers, got {points[bad]!r}") from None
    bad = np.flatnonzero(~((np.abs(xy[:, 0]) <= 180) & (np.abs(xy[:, 1]) <= 90)))
    if len(bad):
        raise BadInput(f"points[{bad[0]}]: {xy[bad[0]].tolist()} is outside lon -180..180, lat -90..90 "
                       f"(lon first); {len(bad)} point(s) out of range")
    rows = index.match(xy[:, 0], xy[:, 1])
    results: list[dict] = [{"code": c} for c in index.codes[np.maximum(rows, 0)]] if len(index) else \
        [{"code": None} for _ in rows]
    missing = np.flatnonzero(rows < 0)
    if len(missing):
        near_rows, meters = index.nearest(xy[missing, 0], xy[missing, 1])
        for i, r, m in zip(missing, near_rows, meters, strict=True):
            results[i] = {"code": None, "nearest": {"code": index.codes[r], "distance_m": round(float(m), 1)}
                          if r >= 0 else None}
    return {"boundary_version": index.version, "count": len(rows), "matched": int((rows >= 0).sum()),
            "results": results}


@router.post("/grids/lookup", summary="The grid of each of up to 100,000 points",
             response_model=schemas.LookupResult, responses=problems(413),
             openapi_extra={"requestBody": {"required": True, "content": {"application/json": {"schema": {
                 "type": "object", "required": ["points"], "properties": {"points": {
                     "type": "array", "maxItems": MAX_LOOKUP_POINTS, "description": "[lon, lat] pairs, WGS 84",
                     "items": {"type": "array", "minItems": 2, "maxItems": 2, "items": {"type": "number"}}}}},
                 "example": {"points": [[100.99, 36.9], [101.1, 36.95]]}}}}})
async def grids_lookup(request: Request, index: Grids) -> Response:
    """Body `{"points": [[lon, lat], ...]}`; results in the same order, `code` null with the
    nearest grid and its distance for points outside every grid."""
    body = await request.body()
    return json_response(await run_in_threadpool(_lookup, index, body))


@router.get("/grids", summary="Grids as GeoJSON", response_class=GeoJSONResponse,
            response_model=schemas.GridCollection)
def list_grids(conn: ReadConn, bbox: Annotated[BBox | None, Depends(bbox_query)],
               page: Annotated[Page, Depends(page_query)],
               village: Annotated[str | None, Query(description="village code")] = None,
               township: Annotated[str | None, Query(description="township code")] = None) -> Response:
    body = feature_collection(conn, "grid", bbox=bbox, filters={"village": village, "township": township},
                              limit=page.limit, offset=page.offset)
    return Response(body, media_type=GEOJSON)


@router.get("/grids/{code}", summary="One grid as a GeoJSON Feature", response_class=GeoJSONResponse,
            response_model=schemas.Grid, responses=NO_SUCH)
def get_grid(code: str, conn: Conn) -> Response:
    return Response(feature(conn, "grid", code), media_type=GEOJSON)


@router.get("/villages", summary="Villages and communities as GeoJSON", response_class=GeoJSONResponse,
            response_model=schemas.VillageCollection)
def list_villages(conn: ReadConn, bbox: Annotated[BBox | None, Depends(bbox_query)],
                  page: Annotated[Page, Depends(page_query)],
                  township: Annotated[str | None, Query(description="township code")] = None,
                  kind: Annotated[str | None, Query(pattern="^(village|community)$")] = None) -> Response:
    body = feature_collection(conn, "village", bbox=bbox, filters={"township": township, "kind": kind},
                              limit=page.limit, offset=page.offset)
    return Response(body, media_type=GEOJSON)


@router.get("/villages/{code}", summary="One village or community", response_class=GeoJSONResponse,
            response_model=schemas.Village, responses=NO_SUCH)
def get_village(code: str, conn: Conn) -> Response:
    return Response(feature(conn, "village", code), media_type=GEOJSON)


@router.get("/townships", summary="Townships as GeoJSON", response_class=GeoJSONResponse,
            response_model=schemas.TownshipCollection)
def list_townships(conn: ReadConn, bbox: Annotated[BBox | None, Depends(bbox_query)],
                   page: Annotated[Page, Depends(page_query)]) -> Response:
    body = feature_collection(conn, "township", bbox=bbox, limit=page.limit, offset=page.offset)
    return Response(body, media_type=GEOJSON)


@router.get("/townships/{code}", summary="One township", response_class=GeoJSONResponse,
            response_model=schemas.Township, responses=NO_SUCH)
def get_township(code: str, conn: Conn) -> Response:
    return Response(feature(conn, "township", code), media_type=GEOJSON)
