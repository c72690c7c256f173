"""Alert ingest (cameras, NVRs, the simulator) and reading alerts back."""

from dataclasses import asdict
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from pydantic import Field, TypeAdapter, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from gridwatch.alerts import queue, snapshots
from gridwatch.alerts.ingest import ingest
from gridwatch.alerts.model import MAX_BATCH, AlertIn
from gridwatch.alerts.queries import alert_collection, alert_feature
from gridwatch.api import schemas
from gridwatch.api.auth import actor
from gridwatch.api.body import Body
from gridwatch.api.deps import Conn, Grids, ReadConn, Registry, SignedIn, json_response
from gridwatch.api.errors import validation_items
from gridwatch.api.params import BBox, Page, TimeWindow, bbox_query, page_query, type_query, window_query
from gridwatch.api.schemas import COMMON, GEOJSON, WRITE, GeoJSONResponse, jpeg, problems
from gridwatch.errors import BadInput

router = APIRouter(tags=["alerts"], responses=COMMON)
NO_SUCH = problems(404)
_batch = TypeAdapter(Annotated[list[AlertIn], Field(max_length=MAX_BATCH)])


@router.post("/alerts", summary="One alert → placed, matched, grouped, assigned (201; 200 for a repeat)",
             status_code=201, response_model=schemas.AlertResult,
             responses={200: {"model": schemas.AlertResult, "description": "a repeat of a stored (source, event_id): "
                                                                          "its first result"}, **WRITE})
async def post_alert(alert: AlertIn, request: Request, principal: SignedIn) -> Response:
    """Answered once the alert is committed (alerts arriving together share the commit)."""
    result = await request.app.state.ingest_queue.submit(alert.posted_by(principal.key_id))
    return json_response(result.as_dict(), 200 if result.repeat else 201)


@router.post("/alerts/batch", summary="Up to 10,000 alerts, all or nothing (a JSON array)",
             status_code=201, response_model=schemas.BatchResult,
             responses={200: {"model": schemas.BatchResult, "description": "every alert a repeat"}, **WRITE},
             openapi_extra={"requestBody": {"required": True, "content": {"application/json": {
                 "schema": {"type": "array", "maxItems": MAX_BATCH, "items": {"$ref": "#/components/schemas/AlertIn"}}
             }}}})
async def post_batch(request: Request, index: Grids, registry: Registry, principal: SignedIn) -> Response:
    """Every alert is checked first; if any is bad, the answer lists each bad one (by
    index) and nothing is stored. Repeats of stored (source, event_id) pairs are answered
    with their first result."""
    body = await request.body()
    return await run_in_threadpool(_batch_ingest, request, body, index, registry, principal.key_id)


def _batch_ingest(request: Request, body: bytes, index, registry, key_id: int) -> Response:
    try:
        alerts = [a.posted_by(key_id) for a in _batch.validate_json(body)]  # parsed and checked in Rust
    except ValidationError as exc:
        raise _refusal(exc) from None
    with request.app.state.pool.connection() as conn:
        results = ingest(conn, alerts, index, datetime.now(UTC), registry=registry)
    repeated = sum(r.repeat for r in results)
    return json_response({"count": len(results), "created": len(results) - repeated, "repeated": repeated,
                  "results": [r.as_dict() for r in results]}, 200 if repeated == len(results) else 201)


def _refusal(exc: ValidationError) -> BadInput:
    """What is wrong with a batch: the body as a whole, else each bad alert by index."""
    errors = exc.errors()
    whole = {e["type"]: e for e in errors if not e["loc"]}
    if "json_invalid" in whole:
        return BadInput(f"the body is not JSON: {whole['json_invalid']['ctx']['error']}")
    if whole:
        if "too_long" in whole:
            return BadInput(f"{whole['too_long']['ctx']['actual_length']:,} alerts: at most {MAX_BATCH:,} per batch; "
                            f"split it")
        return BadInput("the body must be a JSON array of alerts")
    return BadInput.listing(validation_items(errors), "; nothing was stored")


@router.get("/alerts", summary="Alerts as GeoJSON; unassigned=true is the queue of alerts outside every grid",
            response_class=GeoJSONResponse, response_model=schemas.AlertCollection)
def list_alerts(conn: ReadConn, window: Annotated[TimeWindow, Depends(window_query)],
                bbox: Annotated[BBox | None, Depends(bbox_query)], page: Annotated[Page, Depends(page_query)],
                camera: str | None = None, grid: str | None = None, township: str | None = None,
                type: Annotated[str | None, Depends(type_query)] = None, incident: int | None = None,
                unassigned: Annotated[bool, Query(description="only alerts outside every grid")] = False
                ) -> Response:
    body = alert_collection(conn, bbox=bbox, since=window.since, until=window.until, unassigned=unassigned,
                            filters={"camera": camera, "grid": grid, "township": township, "type": type,
                                     "incident": incident}, limit=page.limit, offset=page.offset)
    return Response(body, media_type=GEOJSON)


class AssignIn(Body):
    grid_code: Annotated[str, Field(description="the grid to place the alert in (the queue suggests the nearest)")]


class DismissIn(Body):
    reason: Annotated[str, Field(min_length=1, max_length=2000, description="why the alert needs nothing")]


@router.post("/alerts/{alert_id}/assign", summary="Place an alert of the unassigned queue in a grid: it joins or "
             "opens an incident there as any alert would", response_model=schemas.AlertPlaced,
             responses={**NO_SUCH, **WRITE})
def assign_alert(alert_id: int, body: AssignIn, conn: Conn, index: Grids, principal: SignedIn) -> Response:
    placed = queue.assign_to_grid(conn, alert_id, body.grid_code, actor(principal), index, datetime.now(UTC))
    return json_response({"alert_id": alert_id, **asdict(placed)})


@router.post("/alerts/{alert_id}/dismiss", summary="Take an alert out of the unassigned queue, with a reason",
             response_class=GeoJSONResponse, response_model=schemas.AlertFeature, responses={**NO_SUCH, **WRITE})
def dismiss_alert(alert_id: int, body: DismissIn, conn: Conn, principal: SignedIn) -> Response:
    queue.dismiss(conn, alert_id, body.reason, actor(principal), datetime.now(UTC))
    return Response(alert_feature(conn, alert_id), media_type=GEOJSON)


@router.get("/alerts/{alert_id}", summary="One alert as a GeoJSON Feature", response_class=GeoJSONResponse,
            response_model=schemas.AlertFeature, responses=NO_SUCH)
def get_alert(alert_id: int, conn: Conn) -> Response:
    return Response(alert_feature(conn, alert_id), media_type=GEOJSON)


@router.put("/alerts/{alert_id}/snapshot", summary="Store the alert's JPEG snapshot: re-encoded without its "
            "metadata, the camera's privacy masks applied here whatever the sender did",
            status_code=201, response_class=Response,
            responses={201: {"description": "stored (no body)"}, **NO_SUCH, **problems(413)},
            openapi_extra={"requestBody": {"required": True, "content": {"image/jpeg": {"schema": {
                "type": "string", "format": "binary", "description": "a JPEG of at most 2 MB"}}}}})
async def put_snapshot(alert_id: int, request: Request, principal: SignedIn) -> Response:
    """A camera's key (ingest, or a video fleet host) may send the snapshots of the alerts it
    posted, and no others."""
    body = await request.body()
    snapshots.check_upload(body)

    def store() -> None:
        with request.app.state.pool.connection() as conn:
            masks = snapshots.masks_of(conn, alert_id, None if principal.at_least("operator") else principal.key_id)
        jpeg = snapshots.cleaned(body, masks)  # decoding holds no connection
        with request.app.state.pool.connection() as conn:
            snapshots.store(conn, alert_id, jpeg)

    await run_in_threadpool(store)
    return Response(status_code=201)


@router.get("/alerts/{alert_id}/snapshot", summary="The alert's JPEG snapshot", response_class=Response,
            responses={200: jpeg("the snapshot, masks blacked out"), **NO_SUCH})
def get_snapshot(alert_id: int, conn: Conn) -> Response:
    return Response(snapshots.snapshot(conn, alert_id), media_type="image/jpeg",
                    headers={"Cache-Control": "private, max-age=3600"})
