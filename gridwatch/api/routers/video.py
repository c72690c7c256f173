"""The video fleet: hosts claim and renew camera streams (`gridwatch video fleet`), post the
alerts of the streams they hold with the lease's fencing token, and GET /video/fleet shows who
runs what."""

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Header
from pydantic import Field
from starlette.responses import Response

from gridwatch.alerts.ingest import ingest
from gridwatch.alerts.model import AlertIn
from gridwatch.api import schemas
from gridwatch.api.body import Body
from gridwatch.api.deps import Conn, Grids, Registry, SignedIn, json_response
from gridwatch.api.schemas import COMMON, WRITE, problems
from gridwatch.video import leases
from gridwatch.video.leases import FleetSettings, Report

router = APIRouter(tags=["video fleet"], responses=COMMON)
HostName = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.:-]{1,64}$", description="the host, as the fleet names it")]
CameraId = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.:-]{1,64}$")]
Token = Annotated[int, Field(ge=1, description="the lease's fencing token")]


class StreamReport(Body):
    camera_id: CameraId
    token: Token
    fps: Annotated[float, Field(ge=0, le=1000, description="frames read per second, lately")] | None = None
    frames: Annotated[int, Field(ge=0)] | None = None
    frame_age_s: Annotated[float, Field(ge=0, le=366 * 86400, description="seconds since the stream's last "
                                                                           "frame, by the host's clock")] | None = None
    error: Annotated[str, Field(max_length=500, description="the stream's last error, if it is failing")] | None \
        = None


class HeartbeatIn(Body):
    host: HostName
    slots: Annotated[int, Field(ge=1, le=256, description="how many streams the host can run")]
    streams: Annotated[list[StreamReport], Field(max_length=256, description="the leases the host holds, "
                                                                             "with how their streams go")] = []


class LeaseRef(Body):
    camera_id: CameraId
    token: Token


class ReleaseIn(Body):
    host: HostName
    leases: Annotated[list[LeaseRef], Field(max_length=256)]


def _settings() -> FleetSettings:
    return FleetSettings()


@router.post("/video/leases", response_model=schemas.Leases,
             summary="A fleet host's heartbeat: renew its leases, report its streams, claim up to its share",
             responses={**WRITE, **problems(409, s409="the host name belongs to a live host of another video key")})
def heartbeat(body: HeartbeatIn, conn: Conn, principal: SignedIn) -> Response:
    """Answers every lease the host holds afterwards; a lease it reported that is missing was
    lost (taken over after expiring, or its camera deactivated) and its detector must stop."""
    settings = _settings()
    reports = [Report(**s.model_dump()) for s in body.streams]
    held = leases.heartbeat(conn, principal.key_id, body.host, body.slots, reports, settings)
    return json_response({"lease_s": settings.lease_s, "heartbeat_s": settings.heartbeat_s, "leases": held})


@router.post("/video/leases/release", response_model=schemas.Released, responses=WRITE,
             summary="Give leases back at once (a fleet host stopping)")
def release(body: ReleaseIn, conn: Conn, principal: SignedIn) -> Response:
    freed = leases.release(conn, principal.key_id, body.host, [(lease.camera_id, lease.token) for lease in body.leases])
    return json_response({"released": freed})


@router.post("/video/alerts", status_code=201, response_model=schemas.AlertResult,
             responses={200: {"model": schemas.AlertResult, "description": "a repeat of a stored (source, "
                                                                          "event_id): its first result"},
                        **WRITE, **problems(409, s409="the lease token is not the camera's current one: "
                                                      "the camera was claimed by another host; stop")},
             summary="An alert from a fleet detector, stored only under the camera's current lease")
def post_alert(alert: AlertIn, conn: Conn, index: Grids, registry: Registry, principal: SignedIn,
               lease_token: Annotated[int, Header(ge=1, description="the fencing token of the camera's lease")]
               ) -> Response:
    """The lease stays locked until the alert is committed, so a takeover cannot slip in
    between the check and the write."""
    leases.fence(conn, alert.camera_id, lease_token, principal.key_id)
    [result] = ingest(conn, [alert.posted_by(principal.key_id)], index, datetime.now(UTC), registry=registry)
    return json_response(result.as_dict(), 200 if result.repeat else 201)


@router.get("/video/fleet", response_model=schemas.Fleet,
            summary="The fleet: each host with its streams, each streamed camera with its state")
def fleet(conn: Conn) -> Response:
    return json_response(leases.fleet(conn, _settings()))
