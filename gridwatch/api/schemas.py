"""What the API answers, declared once for the OpenAPI document.

Routes send bytes built in SQL or by orjson (for speed) and FastAPI passes a returned
`Response` through as it is: these models describe those bytes, they never build or check
them at run time. Each field says what the code really sends (the SQL in gridwatch/alerts,
gridwatch/geo/boundaries.py and gridwatch/stats, and the builders there); the models are
closed (`additionalProperties: false`) except where data brings its own fields (a boundary
file's properties, an alert's `extra`), so a field sent but not declared fails the contract
tests (tests/test_api_contract.py, tests/test_fuzz.py).

Errors are RFC 9457 problem+json, the `Problem` schema that gridwatch.api.access adds to the
document; `problems(...)` declares the statuses a route can give.
"""

from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.fields import FieldInfo
from starlette.responses import JSONResponse

from gridwatch.video.leases import StreamState

GEOJSON = "application/geo+json"
PROBLEM = "application/problem+json"
PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}  # gridwatch.api.access.PROBLEM_SCHEMA


class GeoJSONResponse(JSONResponse):
    """The media type routes that send GeoJSON declare (`response_class=`); they send their
    own bytes, so this class only names the type in the document."""

    media_type = GEOJSON


class Out(BaseModel):
    """A closed answer: every field it may hold is declared."""

    model_config = ConfigDict(extra="forbid")


def _no_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)


def sometimes(description: str | None = None) -> FieldInfo:
    """A member that is left out when it has no value (never sent as null)."""
    return Field(None, description=description, json_schema_extra=_no_default)


# -- errors -----------------------------------------------------------------------------------

_ERRORS = {
    400: "asked in a form that is not served (a CRS, an output format, a query parameter): the detail lists "
         "what is supported",
    404: "no such resource; the detail names what was asked for",
    409: "a conflict: the state does not allow this, or it exists already (the detail says which, and what "
         "would be allowed), or another change to the same incident or team was made at the same moment (try "
         "again)",
    413: "the body is larger than the server's limit, or than this route takes",
    422: "invalid input: the detail names each bad field and what is wrong (`errors` lists them as field, "
         "message, input); also a path or query that is not UTF-8 text, or holds a control character",
    503: "the database is unavailable, or the query took too long; retry after the Retry-After seconds",
}


def problems(*statuses: int, **described: str) -> dict[int | str, dict[str, Any]]:
    """`responses=` for error statuses, each answered as problem+json; a description given
    as `s404="..."` replaces the generic one (and is needed for a status without one)."""
    return {status: {"description": described.get(f"s{status}") or _ERRORS[status],
                     "content": {PROBLEM: {"schema": PROBLEM_REF}}} for status in statuses}


# Every route of the API's routers: invalid input (including a path or query that is not plain
# text, refused before routing), and the database away or too slow.
COMMON = problems(422, 503)
# A request with a body: its size is bounded before it is read.
WRITE = problems(409, 413)


def jpeg(description: str) -> dict[str, Any]:
    """A JPEG body or answer."""
    return {"description": description, "content": {"image/jpeg": {"schema": {"type": "string",
                                                                              "format": "binary"}}}}


HTML = {"text/html": {"schema": {"type": "string"}}}
# A page asked for by a browser without a key: the sign-in form, then back.
SIGN_IN_FIRST = {303: {"description": "a browser (Accept: text/html) without a key is sent to the sign-in form, "
                                      "`Location: /login?next=...`; a script gets 401"}}

# -- GeoJSON geometries -------------------------------------------------------------------------

Position = Annotated[list[float], Field(min_length=2, max_length=2, description="[lon, lat], WGS 84, 7 decimals")]
LonLat = Annotated[float, Field(description="WGS 84 degrees, 7 decimals")]


class Point(Out):
    type: Literal["Point"]
    coordinates: Position


class Polygon(Out):
    type: Literal["Polygon"]
    coordinates: Annotated[list[list[Position]], Field(description="rings: the outer one first")]


class MultiPolygon(Out):
    type: Literal["MultiPolygon"]
    coordinates: Annotated[list[list[list[Position]]], Field(description="polygons, each a list of rings")]


# -- boundaries -----------------------------------------------------------------------------

class _Unit(BaseModel):
    # open: the boundary file's own properties come first, ours replace any of the same name
    model_config = ConfigDict(extra="allow")

    code: Annotated[str, Field(description="the statistical division code")]
    name: str
    area_m2: Annotated[float, Field(description="area in m², in the data's UTM zone")]


class GridProperties(_Unit):
    """A grid's properties, with whatever else its boundary file gave it."""

    code: Annotated[str, Field(description="15 digits: the village's code and a 3-digit number")]
    village_code: Annotated[str, Field(description="12 digits")]
    township_code: Annotated[str, Field(description="9 digits")]


class VillageProperties(_Unit):
    """A village's or community's properties, with whatever else its boundary file gave it."""

    code: Annotated[str, Field(description="12 digits")]
    kind: Literal["village", "community"]
    township_code: Annotated[str, Field(description="9 digits")]


class TownshipProperties(_Unit):
    """A township's properties, with whatever else its boundary file gave it."""

    code: Annotated[str, Field(description="9 digits")]
    county_code: Annotated[str, Field(description="6 digits")]


class GridFeature(Out):
    """A grid as a GeoJSON Feature (in a collection)."""

    type: Literal["Feature"]
    id: Annotated[str, Field(description="the grid's code")]
    properties: GridProperties
    geometry: MultiPolygon


class VillageFeature(Out):
    """A village or community as a GeoJSON Feature (in a collection)."""

    type: Literal["Feature"]
    id: Annotated[str, Field(description="the village's code")]
    properties: VillageProperties
    geometry: MultiPolygon


class TownshipFeature(Out):
    """A township as a GeoJSON Feature (in a collection)."""

    type: Literal["Feature"]
    id: Annotated[str, Field(description="the township's code")]
    properties: TownshipProperties
    geometry: MultiPolygon


BoundaryVersion = Annotated[int, Field(description="the boundary version the answer was read from (0: none loaded)")]


class Grid(GridFeature):
    """One grid, with the boundary version as a foreign member."""

    boundary_version: BoundaryVersion


class Village(VillageFeature):
    """One village or community, with the boundary version as a foreign member."""

    boundary_version: BoundaryVersion


class Township(TownshipFeature):
    """One township, with the boundary version as a foreign member."""

    boundary_version: BoundaryVersion


NumberMatched = Annotated[int, Field(description="how many match the filters, over all pages")]
NumberReturned = Annotated[int, Field(description="how many are in this page")]


class GridCollection(Out):
    type: Literal["FeatureCollection"]
    numberMatched: NumberMatched
    numberReturned: NumberReturned
    boundary_version: BoundaryVersion
    features: Annotated[list[GridFeature], Field(description="by code")]


class VillageCollection(Out):
    type: Literal["FeatureCollection"]
    numberMatched: NumberMatched
    numberReturned: NumberReturned
    boundary_version: BoundaryVersion
    features: Annotated[list[VillageFeature], Field(description="by code")]


class TownshipCollection(Out):
    type: Literal["FeatureCollection"]
    numberMatched: NumberMatched
    numberReturned: NumberReturned
    boundary_version: BoundaryVersion
    features: Annotated[list[TownshipFeature], Field(description="by code")]


class GridAt(Out):
    """The grid holding a point, from the in-memory index."""

    lon: float
    lat: float
    code: Annotated[str, Field(description="the grid's code")]
    name: str
    village_code: str
    township_code: str
    boundary_version: Annotated[int, Field(description="the boundary version of the index that answered")]


class NearestGrid(Out):
    code: str
    distance_m: Annotated[float, Field(description="metres on the sphere, to 0.1 m")]


class LookupItem(Out):
    code: Annotated[str | None, Field(description="the grid holding the point; null outside every grid")]
    nearest: NearestGrid | None = sometimes("only for a point outside every grid: the nearest grid (null when no "
                                            "grids are loaded)")


class LookupResult(Out):
    boundary_version: int
    count: Annotated[int, Field(description="points asked for")]
    matched: Annotated[int, Field(description="points inside a grid")]
    results: Annotated[list[LookupItem], Field(description="one per point, in the order sent")]


class BoundaryProblem(Out):
    """One error or warning of a boundary import; members without a value are left out."""

    message: str
    codes: list[str] = sometimes("the units concerned (the first ones, when many)")
    area_m2: float = sometimes("the area of an overlap or gap, m²")
    lon: float = sometimes("where, roughly")
    lat: float = sometimes()


class LevelChanges(Out):
    added: int
    removed: int
    reshaped: int
    renamed: int
    moved_to_another_parent: int


class ImportReport(Out):
    """What a boundary import found and did."""

    source: Annotated[str, Field(description="the uploaded file's name")]
    dry_run: bool
    ok: Annotated[bool, Field(description="no errors (stored, unless a dry run)")]
    version: Annotated[int | None, Field(description="the new boundary version; null for a dry run")]
    counts: Annotated[dict[str, int], Field(description="features read per level: township, village, grid")]
    changes: Annotated[dict[str, LevelChanges], Field(description="per level the file holds, against what is "
                                                                  "stored")]
    errors: list[BoundaryProblem]
    warnings: Annotated[list[BoundaryProblem], Field(description="imported all the same: repaired rings, gaps")]


# -- cameras --------------------------------------------------------------------------------

Relative = Annotated[list[float], Field(min_length=2, max_length=2, description="[x, y] in the image, relative 0-1")]


class CameraZone(Out):
    name: str
    type: Annotated[str, Field(description="the alert type a detection in this zone raises")]
    polygon: list[Relative]


Zones = Annotated[list[CameraZone], Field(description="image zones mapping detections to alert types")]
Masks = Annotated[list[list[Relative]], Field(description="polygons blacked out before detection and in every "
                                                          "snapshot")]
FrameSize = Annotated[list[int], Field(min_length=2, max_length=2, description="[width, height] in pixels")]


class CameraProperties(Out):
    id: str
    name: str
    lon: LonLat
    lat: LonLat
    heading_deg: Annotated[float, Field(description="clockwise from north")]
    fov_deg: float
    range_m: float
    grid_code: Annotated[str | None, Field(description="the grid holding the camera, from the current "
                                                       "boundaries; null outside every grid")]
    active: Annotated[bool, Field(description="false once deactivated (cameras are never deleted)")]
    calibrated: Annotated[bool, Field(description="has an image → ground homography")]
    calibration_error_m: Annotated[float | None, Field(description="RMS error of the calibration, m")]
    frame_size: Annotated[FrameSize | None, Field(description="the calibrated frame size")]
    zones: Zones
    privacy_masks: Masks
    stream_url: Annotated[str | None, Field(description="the video stream, its secrets masked as ***; whole "
                                                        "only to admin, from GET /cameras/{id}/stream")]


class CameraFeature(Out):
    """A camera as a GeoJSON Feature: at its position, or (`view=true` in a list) its view sector."""

    type: Literal["Feature"]
    id: str
    geometry: Annotated[Point | Polygon, Field(discriminator="type")]
    properties: CameraProperties


class CameraCollection(Out):
    type: Literal["FeatureCollection"]
    numberMatched: NumberMatched
    numberReturned: NumberReturned
    features: Annotated[list[CameraFeature], Field(description="by id")]


class CameraVideo(Out):
    """What a video detector needs of a camera."""

    camera_id: str
    zones: Zones
    privacy_masks: Masks
    frame_size: Annotated[FrameSize | None, Field(description="the calibrated frame size, if calibrated")]


class CameraStream(Out):
    camera_id: str
    stream_url: Annotated[str | None, Field(description="the stream, whole (with its password)")]


class CalibrationResult(Out):
    camera_id: str
    frame_size: FrameSize
    error_m: Annotated[float, Field(description="RMS ground error over the inliers, m")]
    point_errors_m: Annotated[list[float], Field(description="each pair's ground error, m, in the order sent")]
    inliers: Annotated[list[bool], Field(description="which pairs agree with the fitted plane")]
    epsg: Annotated[int, Field(description="the metric CRS (UTM zone) the homography maps to")]


# -- alerts ---------------------------------------------------------------------------------

PositionMethod = Annotated[Literal["reported", "homography", "camera"], Field(
    description="how the alert was placed: its own lon/lat, the camera's homography, or the camera's position")]


class AlertResult(Out):
    """An alert as the pipeline placed, matched, grouped and assigned it."""

    alert_id: int
    lon: LonLat
    lat: LonLat
    position_method: PositionMethod
    grid_code: Annotated[str | None, Field(description="null: outside every grid, in the unassigned queue")]
    incident_id: Annotated[int | None, Field(description="the incident it opened or joined; null outside every "
                                                         "grid")]
    team_id: Annotated[str | None, Field(description="the incident's team (suggested, or sent)")]
    team_reason: Annotated[str | None, Field(description="why that team, or why none (outside every grid: the "
                                                         "nearest grid and its distance)")]
    boundary_version: int
    repeat: Annotated[bool, Field(description="a (source, event_id) stored before: its first result")]


class BatchResult(Out):
    count: int
    created: int
    repeated: int
    results: Annotated[list[AlertResult], Field(description="one per alert, in the order sent")]


class AlertProperties(Out):
    alert_id: int
    source: str
    event_id: str
    camera_id: str
    type: str
    score: Annotated[float, Field(ge=0, le=1)]
    occurred_at: datetime
    received_at: datetime
    ended_at: datetime | None
    box: Annotated[list[float] | None, Field(description="[x1, y1, x2, y2] in pixels, as sent")]
    frame_size: Annotated[FrameSize | None, Field(description="as sent")]
    lon: LonLat
    lat: LonLat
    position_method: PositionMethod
    grid_code: str | None
    township_code: str | None
    incident_id: int | None
    team_id: str | None
    team_reason: str | None
    boundary_version: int
    extra: Annotated[dict[str, Any] | None, Field(description="the fields sent that the wire format does not "
                                                              "know, kept as sent")]
    nearest_grid_code: Annotated[str | None, Field(description="outside every grid: the nearest grid")]
    queue_action: Annotated[Literal["assigned", "dismissed"] | None, Field(
        description="how the unassigned queue dealt with it, if it did")]
    queue_actor: str | None
    queue_at: datetime | None
    queue_note: Annotated[str | None, Field(description="the grid it was placed in, or why it was dismissed")]


class AlertFeature(Out):
    type: Literal["Feature"]
    id: Annotated[int, Field(description="the alert's id")]
    geometry: Point
    properties: AlertProperties


class AlertCollection(Out):
    type: Literal["FeatureCollection"]
    numberMatched: NumberMatched
    numberReturned: NumberReturned
    features: Annotated[list[AlertFeature], Field(description="newest first")]


class AlertPlaced(Out):
    """An alert of the unassigned queue placed in a grid by hand."""

    alert_id: int
    incident_id: int
    grid_code: str
    township_code: str
    team_id: str | None
    team_reason: str | None
    joined: Annotated[bool, Field(description="joined an open incident (else opened one)")]


class AlertType(Out):
    type: str
    label: str
    window_s: Annotated[int, Field(description="repeats within this many seconds join one incident")]
    departments: Annotated[list[str], Field(description="the departments whistled by default")]
    auto_dispatch: Annotated[bool, Field(description="new incidents go to the recommended team at once")]


class AlertTypes(Out):
    types: Annotated[list[AlertType], Field(description="by type")]


# -- incidents ------------------------------------------------------------------------------

Status = Literal["new", "dispatched", "acknowledged", "on_scene", "resolved", "closed", "false_alarm", "cancelled"]
DeadlineState = Annotated[Literal["pending", "met", "missed"], Field(
    description="missed: a pending deadline already past")]


class IncidentProperties(Out):
    id: int
    type: str
    status: Status
    origin: Annotated[Literal["camera", "field"], Field(description="from alerts, or reported from the field")]
    grid_code: str
    township_code: str
    camera_ids: Annotated[list[str], Field(description="the cameras whose alerts joined")]
    lon: LonLat
    lat: LonLat
    alert_count: int
    first_seen: datetime
    last_seen: datetime
    team_id: str | None
    team_reason: str | None
    team_suggested: Annotated[bool, Field(description="the team is a suggestion: not sent yet")]
    created_at: datetime
    contact_due: Annotated[datetime, Field(description="1-3-1: contact within 1 hour")]
    contacted_at: datetime | None
    contact_state: DeadlineState
    resolve_due: Annotated[datetime, Field(description="1-3-1: resolved within 3 days")]
    resolved_at: datetime | None
    resolve_state: DeadlineState
    feedback_due: Annotated[datetime | None, Field(description="1-3-1: feedback within a day of resolving")]
    feedback_at: datetime | None
    feedback_state: DeadlineState
    closed_at: datetime | None
    escalation_level: Annotated[int, Field(ge=0, le=2)]
    escalated_to: Literal["grid", "township", "county"]
    next_due: Annotated[datetime | None, Field(description="the next deadline still to meet, if any")]
    overdue: bool


class _Names(Out):
    grid_name: Annotated[str | None, Field(description="null if the grid is gone from the boundaries")]
    village_code: str
    village_name: str | None
    township_name: str | None
    team_name: str | None


class IncidentAlert(Out):
    alert_id: int
    source: str
    event_id: str
    camera_id: str
    score: float
    occurred_at: datetime
    lon: LonLat
    lat: LonLat
    position_method: PositionMethod
    snapshot: Annotated[bool, Field(description="GET /alerts/{alert_id}/snapshot has one")]


class IncidentEvent(Out):
    at: datetime
    actor: Annotated[str, Field(description="the key's name and role, or system, auto-dispatch, ...")]
    action: Annotated[str, Field(description="created, dispatch, acknowledge, whistle, photo, escalate, ...")]
    from_: Annotated[str | None, Field(alias="from")]
    to: str | None
    team_id: str | None
    note: str | None


class IncidentDepartment(Out):
    department: str
    name: str
    whistled_at: datetime
    due_at: datetime
    reported_at: datetime | None
    report: str | None
    state: DeadlineState


AssignmentCleared = Literal["resolved", "closed", "false_alarm", "cancelled", "reassigned"]


class IncidentAssignment(Out):
    team_id: str
    team_name: str
    dispatched_at: datetime
    dispatched_by: str
    acknowledged_at: datetime | None
    on_scene_at: datetime | None
    cleared_at: datetime | None
    cleared_why: AssignmentCleared | None


class IncidentPhoto(Out):
    n: int
    taken_at: datetime
    actor: str
    href: Annotated[str, Field(description="/incidents/{id}/photos/{n}")]


class IncidentFeature(Out):
    """An incident as a GeoJSON Feature, as listed."""

    type: Literal["Feature"]
    id: Annotated[int, Field(description="the incident's id")]
    geometry: Point
    properties: IncidentProperties


class IncidentCollection(Out):
    type: Literal["FeatureCollection"]
    numberMatched: NumberMatched
    numberReturned: NumberReturned
    features: list[IncidentFeature]


class IncidentDetailProperties(IncidentProperties, _Names):
    alerts: Annotated[list[IncidentAlert], Field(description="the latest 200, newest first")]
    history: Annotated[list[IncidentEvent], Field(description="every change, oldest first")]
    departments: Annotated[list[IncidentDepartment], Field(description="whistled departments")]
    assignments: Annotated[list[IncidentAssignment], Field(description="each dispatch, oldest first")]
    photos: list[IncidentPhoto]


class IncidentDetail(Out):
    """One incident with its alerts, history, departments, assignments and photos."""

    type: Literal["Feature"]
    id: int
    geometry: Point
    properties: IncidentDetailProperties


class AssignmentTimes(Out):
    dispatched_at: datetime
    dispatched_by: str
    acknowledged_at: datetime | None
    on_scene_at: datetime | None
    cleared_at: datetime | None
    cleared_why: AssignmentCleared | None


class AssignedIncidentProperties(IncidentProperties, _Names):
    assignment: Annotated[AssignmentTimes, Field(description="this team's assignment to the incident")]


class AssignedIncidentFeature(Out):
    type: Literal["Feature"]
    id: int
    geometry: Point
    properties: AssignedIncidentProperties


class AssignmentCollection(Out):
    """A team's assignments, newest first, each with its incident."""

    type: Literal["FeatureCollection"]
    team_id: str
    features: list[AssignedIncidentFeature]


class PhotoStored(Out):
    incident_id: int
    n: int
    href: str


# -- teams ----------------------------------------------------------------------------------

TeamKind = Literal["foot", "motorcycle", "car"]


class TeamProperties(Out):
    id: str
    name: str
    kind: TeamKind
    members: Annotated[int, Field(description="head count; no names are kept")]
    volunteer: bool
    status: Literal["available", "busy", "off_duty"]
    township_code: str | None
    grids: Annotated[list[str], Field(description="the grids it answers for")]
    position: Annotated[Literal["gps", "base"], Field(description="where the point is from: a GPS ping of the "
                                                                  "last 30 min, else the team's base")]
    position_at: Annotated[datetime | None, Field(description="the ping's time")]
    busy_with: Annotated[list[int], Field(description="the incidents of its open assignments")]
    base: Position


class TeamFeature(Out):
    type: Literal["Feature"]
    id: str
    geometry: Point
    properties: TeamProperties


class TeamCollection(Out):
    type: Literal["FeatureCollection"]
    numberMatched: NumberMatched
    features: Annotated[list[TeamFeature], Field(description="by id")]


class Candidate(Out):
    team_id: str
    name: str
    kind: TeamKind
    status: Literal["available", "busy"]
    busy_with: list[int]
    needs_override: Annotated[bool, Field(description="busy: sending it needs override (a second assignment)")]
    responsible: Annotated[bool, Field(description="answers for the grid")]
    distance_m: int
    eta_min: float
    position: Literal["gps", "base"]
    reason: str


class Recommendation(Out):
    incident_id: int | None
    lon: float
    lat: float
    grid_code: str | None
    candidates: Annotated[list[Candidate], Field(description="available ones first (responsible, then by ETA), "
                                                             "then busy ones")]
    none_available: Annotated[str | None, Field(description="why no team is available, if none is")]


class PositionsStored(Out):
    team_id: str
    received: int
    stored: Annotated[int, Field(description="new ones (a repeated time keeps the first)")]


# -- statistics -----------------------------------------------------------------------------

class _Window(Out):
    since: Annotated[datetime, Field(description="the window's start (inclusive)")]
    until: Annotated[datetime, Field(description="the window's end (exclusive)")]
    type: Annotated[str | None, Field(description="the alert type filter")]
    township: Annotated[str | None, Field(description="the township filter")]


class GridCount(Out):
    code: str
    name: str
    village_code: str
    township_code: str
    area_km2: float
    alerts: int
    incidents: int
    open: int
    overdue: int
    incidents_per_km2: float | None


class GridStats(_Window):
    grids: list[GridCount]


class HeatStats(_Window):
    cell_m: Annotated[float, Field(description="the cells' side, m")]
    cells: Annotated[int, Field(description="cells holding alerts")]
    alerts: int
    max: Annotated[int, Field(description="the most alerts in one cell")]
    bbox: Annotated[list[float], Field(min_length=4, max_length=4, description="minx, miny, maxx, maxy")]
    data: Annotated[list[Annotated[list[float], Field(min_length=3, max_length=3)]],
                    Field(description="[lat, lon, count] at each cell's centre")]


class HotspotMetadata(Out):
    method: str
    variable: str
    weights: str
    significance: str
    bins: str
    esda: Annotated[str, Field(description="library version")]
    libpysal: Annotated[str, Field(description="library version")]
    computed_at: datetime
    boundary_version: int


class Hotspot(Out):
    code: str
    name: str
    incidents: int
    z: float
    p: float
    bin: Annotated[int, Field(ge=-3, le=3, description="cold (−) or hot (+) at 90/95/99 %, 0 not significant")]


class HotspotStats(_Window):
    metadata: HotspotMetadata
    grids: list[Hotspot]


class Day(Out):
    day: date
    alerts: int
    incidents: int


class WeekdayHour(Out):
    weekdays: list[str]
    counts: Annotated[list[list[int]], Field(description="7 rows (Monday first) of 24 hourly counts")]


class TimelineStats(_Window):
    timezone: str
    days: Annotated[list[Day], Field(description="local days holding alerts or incidents")]
    weekday_hour: WeekdayHour


class Compliance(Out):
    key: Annotated[str, Field(description="the township's code, or the team's id")]
    incidents: int
    contact_met: Annotated[float | None, Field(description="share of decided deadlines met, 0-1")]
    resolve_met: float | None
    feedback_met: float | None
    median_contact_min: float | None
    median_resolve_h: float | None
    median_feedback_h: float | None


class DeadlineStats(_Window):
    townships: list[Compliance]
    teams: list[Compliance]


class StepTimes(Out):
    count: Annotated[int, Field(description="assignments that reached the step")]
    median: float | None
    p90: float | None


class ResponseGroup(Out):
    township_code: Annotated[str | None, Field(description="null with team_kind null: all together")]
    team_kind: TeamKind | None
    assignments: int
    acknowledged: StepTimes
    on_scene: StepTimes
    resolved: StepTimes


class ResponseStats(_Window):
    unit: Literal["minutes after dispatch"]
    groups: list[ResponseGroup]


# -- video fleet ----------------------------------------------------------------------------

class Lease(Out):
    camera_id: str
    token: Annotated[int, Field(description="the fencing token: send it as Lease-Token with each alert")]
    stream_url: Annotated[str, Field(description="the stream, whole (with its password)")]
    zones: Zones
    privacy_masks: Masks
    expires_at: Annotated[datetime, Field(description="renew before this, or the lease goes to another host")]


class Leases(Out):
    lease_s: Annotated[float, Field(description="how long a lease lasts without a heartbeat")]
    heartbeat_s: Annotated[float, Field(description="how often a host should send its heartbeat")]
    leases: Annotated[list[Lease], Field(description="every lease the host holds now, by camera")]


class Released(Out):
    released: Annotated[list[str], Field(description="the cameras freed (a lease taken over meanwhile is not)")]


class FleetHost(Out):
    name: str
    slots: int
    live: Annotated[bool, Field(description="false: no heartbeat within a lease's time; its streams went "
                                            "to other hosts")]
    started_at: datetime
    seen_at: datetime
    cameras: Annotated[list[str], Field(description="the streams it runs")]
    fps: Annotated[float, Field(description="frames per second over its streams")]


class FleetCamera(Out):
    camera_id: str
    name: str
    state: Annotated[StreamState, Field(description="running; starting (just claimed); stalled (held, but no "
                                                        "frame, or no heartbeat, for two heartbeats); "
                                                        "no_detector (no host runs it)")]
    host: str | None
    fps: float | None
    frames: int | None
    last_frame_at: datetime | None
    frame_age_s: Annotated[float | None, Field(description="seconds since the last frame")]
    error: Annotated[str | None, Field(description="the stream's last error (a password in it masked)")]
    claimed_at: datetime | None
    renewed_at: datetime | None
    expires_at: datetime | None


class Fleet(Out):
    lease_s: float
    heartbeat_s: float
    hosts: Annotated[list[FleetHost], Field(description="hosts seen within a day, by name")]
    cameras: Annotated[list[FleetCamera], Field(description="every active camera with a stream, by id")]
    states: Annotated[dict[StreamState, int], Field(description="how many cameras are in each state")]


# -- service --------------------------------------------------------------------------------

class ReplicaHealth(Out):
    status: Annotated[str, Field(description="ok; behind (further behind the primary than "
                                             "GRIDWATCH_READ_MAX_LAG_S: reads go to the primary until it catches "
                                             "up); or unavailable: and the error's kind (reads then go to the "
                                             "primary)")]
    lag_s: float = sometimes("while the replica has WAL yet to replay: how long ago the primary committed the last "
                             "transaction it has replayed; 0 when it has replayed everything (left out while the "
                             "primary is down)")
    lag_bytes: int = sometimes("bytes of WAL the replica has yet to replay (left out while the primary is down)")


class Health(Out):
    status: Annotated[Literal["ok", "degraded", "unavailable"], Field(
        description="degraded: answering, but the primary or the read replica is down or behind (see db and "
                    "replica)")]
    version: Annotated[str, Field(description="the gridwatch version this server runs")]
    assets: Annotated[Literal["ok", "missing"], Field(description="missing: the map pages' scripts and styles "
                                                                   "are not installed, so pages draw no map")]
    db: Annotated[str, Field(description="ok, or unavailable: and the error's kind")]
    postgis: str = sometimes("the PostGIS version (with the database up)")
    boundary_version: int = sometimes("in the database (with the database up)")
    index_version: Annotated[int | None, Field(description="the boundary version this process has loaded")]
    audit: Annotated[Literal["ok", "behind"], Field(description="behind: audit rows wait to be written")]
    audit_waiting: int
    audit_lost: int = sometimes("audit rows let go since the start (only when some were)")
    replica: ReplicaHealth = sometimes("the read replica (only with GRIDWATCH_READ_DATABASE_URL set)")


class AuditRow(Out):
    id: int
    at: datetime
    key_id: int | None
    key_name: str | None
    role: str
    method: str
    path: Annotated[str, Field(description="control characters escaped, a long path cut")]
    status: int
    ms: float


class AuditPage(Out):
    rows: Annotated[list[AuditRow], Field(description="newest first")]
    limit: int
    offset: int


# -- OGC API Features (/ogc) ----------------------------------------------------------------------

class OpenAPIResponse(JSONResponse):
    """An OpenAPI document, as OGC API Common names it (routes send their own bytes)."""

    media_type = "application/vnd.oai.openapi+json"


class SchemaResponse(JSONResponse):
    """A JSON Schema (a collection's queryables)."""

    media_type = "application/schema+json"


class OgcApiDocument(BaseModel):
    """The OpenAPI document of the /ogc routes (OpenAPI 3.1, as /openapi.json)."""

    model_config = ConfigDict(extra="allow")
    openapi: str
    info: dict[str, Any]
    paths: dict[str, Any]


class OgcLink(Out):
    href: str
    rel: str
    type: str
    title: str


class OgcLandingPage(Out):
    title: str
    description: str
    links: list[OgcLink]


class OgcConformance(Out):
    conformsTo: list[str]  # noqa: N815 - the standard's name


class OgcSpatialExtent(Out):
    bbox: Annotated[list[Annotated[list[float], Field(min_length=4, max_length=4)]],
                    Field(description="minx, miny, maxx, maxy in lon/lat")]
    crs: str


class OgcTemporalExtent(Out):
    interval: list[Annotated[list[datetime | None], Field(min_length=2, max_length=2)]]
    trs: str


class OgcExtent(Out):
    spatial: OgcSpatialExtent = sometimes("absent while the collection is empty")
    temporal: OgcTemporalExtent = sometimes("alerts and incidents")


class OgcCollection(Out):
    id: str
    title: str
    description: str
    itemType: Literal["feature"]  # noqa: N815
    crs: list[str]
    extent: OgcExtent = sometimes()
    links: list[OgcLink]


class OgcCollections(Out):
    links: list[OgcLink]
    collections: list[OgcCollection]


class OgcQueryables(Out):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    schema_: Annotated[str, Field(alias="$schema")]
    id_: Annotated[str, Field(alias="$id")]
    type: Literal["object"]
    title: str
    properties: Annotated[dict[str, dict[str, str]], Field(description="name -> {type}")]


class OgcFeature(Out):
    type: Literal["Feature"]
    id: str | int
    geometry: Point | MultiPolygon
    properties: Annotated[dict[str, Any], Field(description="the collection's properties (see its description)")]
    links: list[OgcLink] = sometimes("with a single feature")


class OgcFeatureCollection(Out):
    type: Literal["FeatureCollection"]
    numberMatched: int  # noqa: N815
    numberReturned: int  # noqa: N815
    timeStamp: datetime  # noqa: N815
    links: list[OgcLink]
    features: list[OgcFeature]
