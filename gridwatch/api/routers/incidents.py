"""Incidents: listing, detail, the dispatcher's actions, whistled departments, live feed."""

from datetime import UTC, datetime, timedelta
from enum import Enum
from typing import Annotated

import psycopg
from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response, StreamingResponse

from gridwatch.alerts import deadlines
from gridwatch.alerts.incidents import ACTIONS, STATUSES, act, incident_collection, incident_detail
from gridwatch.api.auth import Principal, authenticate, require
from gridwatch.api.deps import db
from gridwatch.api.params import Page, TimeWindow, page_query, type_query, window_query
from gridwatch.errors import BadInput, Forbidden

GEOJSON = "application/geo+json"
router = APIRouter(tags=["incidents"])
Conn = Annotated[psycopg.Connection, Depends(db)]
Action = Enum("Action", {name: name.replace("_", "-") for name in ACTIONS}, type=str)


class ActionIn(BaseModel):
    note: Annotated[str, Field(max_length=4000)] | None = None
    team_id: str | None = Field(None, description="dispatch only: the team to send (default: the recommended one)")


class WhistleIn(BaseModel):
    departments: list[str] | None = Field(None, description="department codes (default: those of the type)")
    hours: Annotated[float, Field(gt=0, le=24 * 30)] = 24
    note: Annotated[str, Field(max_length=4000)] | None = None


class ReportIn(BaseModel):
    note: Annotated[str, Field(min_length=1, max_length=4000)]


def _now() -> datetime:
    return datetime.now(UTC)


def actor(principal: Principal) -> str:
    return f"{principal.name} ({principal.role})"


@router.get("/incidents/stream", summary="Server-Sent Events: every new or changed incident",
            response_class=StreamingResponse, dependencies=[Depends(require("viewer"))])
async def stream(request: Request, last_event_id: Annotated[str | None, Query(
        alias="lastEventId", description="resume after this event id, as the Last-Event-ID header does (which "
                                         "wins); a page passes the time its data was read")] = None
                 ) -> StreamingResponse:
    """`event: incident` with the incident as in the list (a GeoJSON Feature), its change
    time as the event id; a comment every 15 s keeps proxies from closing the stream."""
    resume = request.headers.get("last-event-id") or last_event_id
    return StreamingResponse(request.app.state.live.events(request, resume), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


@router.get("/incidents", summary="Incidents as GeoJSON, latest activity first",
            dependencies=[Depends(require("viewer"))], response_class=Response)
def list_incidents(conn: Conn, window: Annotated[TimeWindow, Depends(window_query)],
                   page: Annotated[Page, Depends(page_query)],
                   status: Annotated[str | None, Query(description="comma-separated, e.g. new,dispatched")] = None,
                   grid: str | None = None, township: str | None = None,
                   type: Annotated[str | None, Depends(type_query)] = None,
                   overdue: Annotated[bool | None, Query(description="only (or, false: no) late ones")] = None
                   ) -> Response:
    statuses = _statuses(status)
    body = incident_collection(conn, _now(), filters={"status": statuses, "grid": grid, "township": township,
                                                      "type": type, "since": window.since, "until": window.until},
                               overdue=overdue, limit=page.limit, offset=page.offset)
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


@router.get("/incidents/{incident_id}", summary="One incident with its alerts, history and departments",
            dependencies=[Depends(require("viewer"))], response_class=Response)
def get_incident(incident_id: int, conn: Conn) -> Response:
    return Response(incident_detail(conn, incident_id, _now()), media_type=GEOJSON)


@router.post("/incidents/{incident_id}/whistle", summary="The township whistles departments; each must report",
             response_class=Response)
def whistle(incident_id: int, body: WhistleIn, conn: Conn,
            principal: Annotated[Principal, Depends(require("dispatcher"))]) -> Response:
    added = deadlines.whistle(conn, incident_id, body.departments, actor(principal), _now(),
                              timedelta(hours=body.hours), body.note)
    return Response(incident_detail(conn, incident_id, _now()), media_type=GEOJSON,
                    headers={"X-Whistled": ",".join(added)})


@router.post("/incidents/{incident_id}/departments/{department}/report", response_class=Response,
             summary="A whistled department reports what it did")
def department_report(incident_id: int, department: str, body: ReportIn, conn: Conn,
                      principal: Annotated[Principal, Depends(require("operator"))]) -> Response:
    deadlines.report(conn, incident_id, department, body.note, actor(principal), _now())
    return Response(incident_detail(conn, incident_id, _now()), media_type=GEOJSON)


@router.post("/incidents/{incident_id}/{action}", response_class=Response,
             summary="dispatch (or reassign), acknowledge, on-scene, resolve, feedback, close, false-alarm, cancel")
async def incident_action(incident_id: int, action: Action, request: Request, body: ActionIn | None = None
                          ) -> Response:
    """409 with the allowed actions when the incident's state does not permit this one."""
    name = action.name
    principal = await authenticate(request)
    needed = ACTIONS[name].role
    if not principal.at_least(needed):
        raise Forbidden(f"{action.value} needs role {needed} or above; key {principal.name!r} has {principal.role}")
    body = body or ActionIn()

    def run() -> bytes:
        with request.app.state.pool.connection() as conn:
            act(conn, incident_id, name, actor(principal), _now(), note=body.note, team_id=body.team_id)
            return incident_detail(conn, incident_id, _now())

    return Response(await run_in_threadpool(run), media_type=GEOJSON)

