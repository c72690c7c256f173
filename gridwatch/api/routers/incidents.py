"""Incidents: listing, detail, the dispatcher's actions, whistled departments, live feed."""

from datetime import UTC, datetime, timedelta
from enum import Enum
from typing import Annotated, Literal

import psycopg
from fastapi import APIRouter, Depends, Query, Request
from pydantic import Field, StrictBool
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response, StreamingResponse

from gridwatch.alerts import assignments, deadlines, photos, queue
from gridwatch.alerts.incidents import ACTIONS, ORIGINS, STATUSES, act, incident_collection, incident_detail
from gridwatch.api import schemas
from gridwatch.api.auth import Principal, actor
from gridwatch.api.body import Body
from gridwatch.api.deps import Conn, Grids, ReadConn, SignedIn, json_response
from gridwatch.api.params import Page, TimeWindow, page_query, type_query, window_query
from gridwatch.api.schemas import COMMON, GEOJSON, WRITE, GeoJSONResponse, jpeg, problems
from gridwatch.errors import BadInput, Forbidden

router = APIRouter(tags=["incidents"], responses=COMMON)
NO_SUCH = problems(404)
Action = Enum("Action", {name: name.replace("_", "-") for name in ACTIONS}, type=str)


class ActionIn(Body):
    note: Annotated[str, Field(max_length=4000)] | None = None
    team_id: Annotated[str, Field(max_length=64)] | None = Field(
        None, description="dispatch only: the team to send (default: the recommended one)")
    override: StrictBool = Field(False, description="dispatch only: send a busy team all the same (a second "
                                                    "assignment)")
    confirm: StrictBool = Field(False, description="close only: close although whistled departments have not "
                                                   "reported")


class FieldReportIn(Body):
    type: Annotated[str, Field(description="an alert type, e.g. sewer_overflow")]
    lon: Annotated[float, Field(ge=-180, le=180)]
    lat: Annotated[float, Field(ge=-90, le=90)]
    note: Annotated[str, Field(min_length=1, max_length=4000, description="what was found")]


class WhistleIn(Body):
    departments: list[str] | None = Field(None, description="department codes (default: those of the type)")
    hours: Annotated[float, Field(gt=0, le=24 * 30)] = 24
    note: Annotated[str, Field(max_length=4000)] | None = None


class ReportIn(Body):
    note: Annotated[str, Field(min_length=1, max_length=4000)]


def _now() -> datetime:
    return datetime.now(UTC)


@router.get("/incidents/stream", summary="Server-Sent Events: every new or changed incident, unassigned alert and "
            "team (a team key: its own team and the incidents it is sent to)", response_class=StreamingResponse,
            responses={200: {"description": "an endless stream of events (`event: incident`, `unassigned`, `team`; "
                                            "`data:` one JSON object)",
                             "content": {"text/event-stream": {"schema": {"type": "string"}}}}})
async def stream(request: Request, principal: SignedIn,
                 last_event_id: Annotated[str | None, Query(
        alias="lastEventId", description="resume after this event id, as the Last-Event-ID header does (which "
                                         "wins); a page passes the time its data was read")] = None
                 ) -> StreamingResponse:
    """`event: incident` with the incident as in the list (a GeoJSON Feature), its change
    time as the event id; `event: unassigned` (an alert outside every grid) and `event:
    team` (a team as /patrols has it) as they come. A comment every 15 s keeps proxies from
    closing the stream."""
    resume = request.headers.get("last-event-id") or last_event_id
    keys = request.app.state.keys
    return StreamingResponse(request.app.state.live.events(request, resume, principal.team_id,
                                                           lambda: principal.key_id not in keys.revoked),
                             media_type="text/event-stream", headers={"Cache-Control": "no-cache",
                                                                       "X-Accel-Buffering": "no"})


@router.post("/incidents", status_code=201, summary="Report an incident from the field (origin: field): placed "
             "in its grid, with deadlines and a team like any other (a team key: inside its township)",
             response_class=GeoJSONResponse, response_model=schemas.IncidentDetail,
             responses={201: {"headers": {"Location": {"description": "/incidents/{id}",
                                                       "schema": {"type": "string"}}}}, **WRITE})
def report_incident(body: FieldReportIn, conn: Conn, index: Grids, principal: SignedIn) -> Response:
    placed = queue.report(conn, body.type, body.lon, body.lat, body.note, actor(principal),
                          index, _now(), principal.team_id)
    return Response(incident_detail(conn, placed.incident_id, _now()), status_code=201, media_type=GEOJSON,
                    headers={"Location": f"/incidents/{placed.incident_id}"})


@router.get("/incidents", summary="Incidents as GeoJSON, latest activity (or the most urgent deadline) first",
            response_class=GeoJSONResponse, response_model=schemas.IncidentCollection)
def list_incidents(conn: ReadConn, window: Annotated[TimeWindow, Depends(window_query)],
                   page: Annotated[Page, Depends(page_query)],
                   status: Annotated[str | None, Query(description="comma-separated, e.g. new,dispatched")] = None,
                   grid: str | None = None, township: str | None = None,
                   type: Annotated[str | None, Depends(type_query)] = None,
                   overdue: Annotated[bool | None, Query(description="only (or, false: no) late ones")] = None,
                   origin: Annotated[Literal[ORIGINS] | None,
                                     Query(description="camera (from alerts) or field (reported by a team)")] = None,
                   sort: Annotated[Literal["last_seen", "due"], Query(
                       description="last_seen: newest activity first; due: the most urgent deadline first")
                   ] = "last_seen") -> Response:
    statuses = _statuses(status)
    body = incident_collection(conn, _now(), filters={"status": statuses, "grid": grid, "township": township,
                                                      "type": type, "since": window.since, "until": window.until,
                                                      "origin": origin},
                               overdue=overdue, limit=page.limit, offset=page.offset, sort=sort)
    return Response(body, media_type=GEOJSON)


def _statuses(status: str | None) -> list[str] | None:
    """The status filter as a list; a misspelt status is refused, not matched against nothing."""
    if not status:
        return None
    statuses = [s.strip() for s in status.split(",")]
    unknown = [s for s in statuses if s not in STATUSES]
    if unknown:
        raise BadInput(f"status: unknown {', '.join(map(repr, unknown))}; one or more (comma-separated) of "
                       f"{', '.join(STATUSES)}", errors=[{"field": "status", "message": "unknown status",
                                                          "input": u} for u in unknown])
    return statuses


@router.get("/incidents/{incident_id}", summary="One incident with its alerts, history, departments, assignments "
            "and photos (a team key: those it was sent to)", response_class=GeoJSONResponse,
            response_model=schemas.IncidentDetail, responses=NO_SUCH)
def get_incident(incident_id: int, conn: Conn, principal: SignedIn) -> Response:
    own_incident(conn, principal, incident_id)
    return Response(incident_detail(conn, incident_id, _now()), media_type=GEOJSON)


def own_incident(conn: psycopg.Connection, principal: Principal, incident_id: int) -> None:
    """A team key reads only the incidents its team was sent to (403 otherwise)."""
    if principal.role == "team" and not assignments.concerns(conn, principal.team_id, incident_id):
        raise Forbidden(f"incident {incident_id} was never assigned to (or reported by) team {principal.team_id}")


@router.post("/incidents/{incident_id}/photos", status_code=201, response_model=schemas.PhotoStored,
             responses={**NO_SUCH, **problems(413)},
             summary="A photo from the scene (JPEG body; re-encoded without its metadata, at most 1600 px)",
             openapi_extra={"requestBody": {"required": True, "content": {"image/jpeg": {"schema": {
                 "type": "string", "format": "binary", "description": "a JPEG of at most 6 MB"}}}}})
async def add_photo(incident_id: int, request: Request, principal: SignedIn) -> Response:
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != "image/jpeg":
        raise BadInput("send the photo as the body, with Content-Type: image/jpeg")
    body = await request.body()

    def store() -> int:
        with request.app.state.pool.connection() as conn:
            photos.check_may_add(conn, incident_id, principal.team_id)
        jpeg = photos.clean_jpeg(body)
        with request.app.state.pool.connection() as conn:
            return photos.add_photo(conn, incident_id, jpeg, actor(principal), _now())

    n = await run_in_threadpool(store)
    href = f"/incidents/{incident_id}/photos/{n}"
    return json_response({"incident_id": incident_id, "n": n, "href": href}, 201)


@router.get("/incidents/{incident_id}/photos/{n}", response_class=Response, summary="A photo from the scene",
            responses={200: jpeg("the photo, re-encoded"), **NO_SUCH})
def get_photo(incident_id: int, n: int, conn: Conn, principal: SignedIn) -> Response:
    own_incident(conn, principal, incident_id)
    return Response(photos.photo(conn, incident_id, n), media_type="image/jpeg",
                    headers={"Cache-Control": "private, max-age=3600"})


@router.post("/incidents/{incident_id}/whistle", summary="The township whistles departments; each must report",
             response_class=GeoJSONResponse, response_model=schemas.IncidentDetail,
             responses={200: {"headers": {"X-Whistled": {"description": "the departments added, comma-separated",
                                                         "schema": {"type": "string"}}}}, **NO_SUCH, **WRITE})
def whistle(incident_id: int, body: WhistleIn, conn: Conn, principal: SignedIn) -> Response:
    added = deadlines.whistle(conn, incident_id, body.departments, actor(principal), _now(),
                              timedelta(hours=body.hours), body.note)
    return Response(incident_detail(conn, incident_id, _now()), media_type=GEOJSON,
                    headers={"X-Whistled": ",".join(added)})


@router.post("/incidents/{incident_id}/departments/{department}/report", response_class=GeoJSONResponse,
             response_model=schemas.IncidentDetail, responses={**NO_SUCH, **WRITE},
             summary="A whistled department reports what it did")
def department_report(incident_id: int, department: str, body: ReportIn, conn: Conn, principal: SignedIn) -> Response:
    deadlines.report(conn, incident_id, department, body.note, actor(principal), _now())
    return Response(incident_detail(conn, incident_id, _now()), media_type=GEOJSON)


@router.post("/incidents/{incident_id}/{action}", response_class=GeoJSONResponse,
             response_model=schemas.IncidentDetail, responses={**NO_SUCH, **WRITE},
             summary="dispatch (or reassign), acknowledge, on-scene, resolve, feedback, close, false-alarm, cancel")
async def incident_action(incident_id: int, action: Action, request: Request,
                          principal: SignedIn, body: ActionIn | None = None
                          ) -> Response:
    """409 with the allowed actions when the incident's state does not permit this one."""
    name = action.name
    needed = ACTIONS[name].role
    if principal.role != "team" and not principal.at_least(needed):
        raise Forbidden(f"{action.value} needs role {needed} or above; key {principal.name!r} has {principal.role}")
    body = body or ActionIn()

    def run() -> bytes:
        with request.app.state.pool.connection() as conn:
            act(conn, incident_id, name, actor(principal), note=body.note, team_id=body.team_id,
                override=body.override, confirm=body.confirm, as_team=principal.team_id)
            return incident_detail(conn, incident_id, _now())

    return Response(await run_in_threadpool(run), media_type=GEOJSON)

