"""Patrol teams: registry, status, GPS pings, and which team should go."""

from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal

import orjson
from fastapi import APIRouter, Query
from pydantic import AwareDatetime, Field, model_validator
from starlette.responses import Response

from gridwatch.alerts import incidents, patrols
from gridwatch.alerts.retention import RetentionSettings
from gridwatch.api import schemas
from gridwatch.api.body import Body
from gridwatch.api.deps import Conn, ReadConn, Registry, SignedIn, json_response
from gridwatch.api.schemas import COMMON, GEOJSON, WRITE, GeoJSONResponse, problems

router = APIRouter(tags=["patrols"], responses=COMMON)
NO_SUCH = problems(404)
Lon = Annotated[float, Field(ge=-180, le=180)]
Lat = Annotated[float, Field(ge=-90, le=90)]


class TeamIn(Body):
    id: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.:-]{1,64}$")]
    name: Annotated[str, Field(min_length=1, max_length=200)]
    kind: Literal["foot", "motorcycle", "car"]
    members: Annotated[int, Field(gt=0, le=500, description="head count; no names are kept")]
    volunteer: bool = False
    base: tuple[Lon, Lat]
    township_code: str | None = None
    status: Literal["available", "busy", "off_duty"] = "available"
    grids: list[str] = []


class TeamPatch(Body):
    name: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    township_code: str | None = Field(None, description="where the team works (and may report from the field)")
    kind: Literal["foot", "motorcycle", "car"] | None = None
    members: Annotated[int, Field(gt=0, le=500)] | None = None
    base: tuple[Lon, Lat] | None = None
    status: Literal["available", "busy", "off_duty"] | None = None
    grids: list[str] | None = None


class DutyIn(Body):
    on_duty: bool


class Ping(Body):
    lon: Lon
    lat: Lat
    at: AwareDatetime | None = Field(None, description="the fix time (default: when received)")


class Pings(Body):
    """Several pings ({positions: [...]}), or one ({lon, lat, at}) taken as a list of one, so
    errors name the same fields either way."""

    positions: Annotated[list[Ping], Field(min_length=1, max_length=10_000)]

    @model_validator(mode="before")
    @classmethod
    def _one(cls, data):
        return {"positions": [data]} if isinstance(data, dict) and "positions" not in data else data


def _now() -> datetime:
    return datetime.now(UTC)


@router.get("/patrols", summary="Teams as GeoJSON: where they are (fresh GPS, else base) and their status",
            response_class=GeoJSONResponse, response_model=schemas.TeamCollection)
def list_teams(conn: ReadConn, status: Literal["available", "busy", "off_duty"] | None = None,
               township: str | None = None) -> Response:
    features = patrols.team_features(conn, _now(), status=status, township=township)
    return Response(orjson.dumps({"type": "FeatureCollection", "numberMatched": len(features), "features": features}),
                    media_type=GEOJSON)


@router.get("/patrols/recommend", summary="Teams ranked for an incident or a point, with ETA and reason",
            response_model=schemas.Recommendation, responses=NO_SUCH)
def recommend(conn: Conn, incident: int | None = None,
              lon: Annotated[float | None, Query(ge=-180, le=180)] = None,
              lat: Annotated[float | None, Query(ge=-90, le=90)] = None,
              limit: Annotated[int, Query(ge=1, le=100)] = 10) -> Response:
    return json_response(patrols.recommend(conn, _now(), incident, lon, lat, limit))


@router.get("/patrols/{team_id}", summary="One team (a team key: its own)", response_class=GeoJSONResponse,
            response_model=schemas.TeamFeature, responses=NO_SUCH)
def get_team(team_id: str, conn: Conn, principal: SignedIn
             ) -> Response:
    principal.own_team(team_id)
    return Response(orjson.dumps(patrols.team_feature(conn, team_id, _now())), media_type=GEOJSON)


@router.get("/patrols/{team_id}/assignments", summary="A team's assignments with their incidents as GeoJSON "
            "(a team key: its own)", response_class=GeoJSONResponse, response_model=schemas.AssignmentCollection,
            responses=NO_SUCH)
def team_assignments(team_id: str, conn: Conn, principal: SignedIn,
                     open: Annotated[bool | None, Query(description="true: those in hand; false: those ended")] = None,
                     since: Annotated[AwareDatetime | None, Query(description="only those ended (or, if open, "
                                                                              "dispatched) since then")] = None
                     ) -> Response:
    principal.own_team(team_id)
    return Response(incidents.assignment_collection(conn, team_id, _now(), open, since), media_type=GEOJSON)


@router.post("/patrols/{team_id}/duty", summary="A team goes on or off duty (off duty: it cannot be dispatched)",
             response_class=GeoJSONResponse, response_model=schemas.TeamFeature, responses={**NO_SUCH, **WRITE})
def set_duty(team_id: str, body: DutyIn, conn: Conn, registry: Registry, principal: SignedIn) -> Response:
    principal.own_team(team_id)
    patrols.set_duty(conn, team_id, body.on_duty, _now())
    registry.forget_teams()
    return Response(orjson.dumps(patrols.team_feature(conn, team_id, _now())), media_type=GEOJSON)


@router.post("/patrols", status_code=201, summary="Register a team (head count, kind, base, grids)",
             response_class=GeoJSONResponse, response_model=schemas.TeamFeature, responses=WRITE)
def create_team(team: TeamIn, conn: Conn, registry: Registry) -> Response:
    patrols.create_team(conn, team.model_dump())
    registry.forget_teams()
    return Response(orjson.dumps(patrols.team_feature(conn, team.id, _now())), status_code=201, media_type=GEOJSON)


@router.patch("/patrols/{team_id}", summary="Change a team (status: available, busy, off_duty)",
              response_class=GeoJSONResponse, response_model=schemas.TeamFeature, responses={**NO_SUCH, **WRITE})
def update_team(team_id: str, changes: TeamPatch, conn: Conn, registry: Registry) -> Response:
    patrols.update_team(conn, team_id, changes.model_dump(exclude_none=True))
    # this worker at once; the others when the database tells them
    registry.forget_teams()
    return Response(orjson.dumps(patrols.team_feature(conn, team_id, _now())), media_type=GEOJSON)


@router.post("/patrols/{team_id}/positions", summary="GPS pings of an on-duty team (one, or {positions: [...]}; "
             "a team key: its own)", status_code=201, response_model=schemas.PositionsStored,
             responses={**NO_SUCH, **WRITE})
def add_positions(team_id: str, body: Pings, conn: Conn, principal: SignedIn) -> Response:
    principal.own_team(team_id)
    now = _now()
    pings = body.positions
    keep = timedelta(hours=RetentionSettings().positions_hours)
    stored = patrols.add_positions(conn, team_id, [(p.at or now, p.lon, p.lat) for p in pings], now, keep)
    return json_response({"team_id": team_id, "received": len(pings), "stored": stored}, 201)
