"""Query parameters shared by routers: small typed dependencies that return domain values."""

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, Query
from pydantic import AwareDatetime

from gridwatch.alerts.types import known_type
from gridwatch.api.deps import ReadConn
from gridwatch.errors import BadInput
from gridwatch.geo.boundaries import known_township
from gridwatch.stats.counts import Window, bounded

BBox = tuple[float, float, float, float]
MAX_LIMIT = 10_000


def bbox_query(bbox: Annotated[str | None, Query(description="minx,miny,maxx,maxy in lon/lat (EPSG:4326)",
                                                 examples=["100.9,36.85,101.05,36.95"])] = None) -> BBox | None:
    if bbox is None:
        return None
    parts = bbox.split(",")
    try:
        minx, miny, maxx, maxy = (float(p) for p in parts)
    except ValueError:
        raise BadInput(f"bbox: expected four numbers minx,miny,maxx,maxy, got {bbox!r}") from None
    if not (-180 <= minx <= 180 and -180 <= maxx <= 180 and -90 <= miny <= 90 and -90 <= maxy <= 90):
        raise BadInput(f"bbox: {bbox} is outside lon -180..180, lat -90..90 (lon first)")
    if minx > maxx or miny > maxy:
        raise BadInput(f"bbox: minx must be ≤ maxx and miny ≤ maxy, got {bbox}")
    return minx, miny, maxx, maxy


@dataclass(frozen=True)
class Page:
    limit: int
    offset: int


def page_query(limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="at most 10,000")] = 100,
               offset: Annotated[int, Query(ge=0)] = 0) -> Page:
    return Page(limit, offset)


Lon = Annotated[float, Query(ge=-180, le=180, description="longitude, WGS 84")]
Lat = Annotated[float, Query(ge=-90, le=90, description="latitude, WGS 84")]


def lonlat_params(query) -> tuple[float, float]:
    """lon and lat from a query string, checked as `Lon` and `Lat` are, for endpoints that
    parse their own parameters."""
    values = []
    for name, limit in (("lon", 180), ("lat", 90)):
        raw = query.get(name)
        if raw is None:
            raise BadInput(f"{name}: Field required", errors=[{"field": name, "message": "Field required"}])
        try:
            value = float(raw)
        except ValueError:
            value = float("nan")
        if not -limit <= value <= limit:
            message = f"must be a number from -{limit} to {limit}"
            if name == "lat" and -90 <= values[0] <= 90 and -180 <= value <= 180:
                message += "; lon and lat look swapped (lon comes first)"
            raise BadInput(f"{name}: {message} (got {raw!r})",
                           errors=[{"field": name, "message": message, "input": raw}])
        values.append(value)
    return values[0], values[1]


@dataclass(frozen=True)
class TimeWindow:
    since: datetime | None
    until: datetime | None


def window_query(
    since: Annotated[AwareDatetime | None, Query(description="ISO 8601 with zone; from (inclusive)")] = None,
    until: Annotated[AwareDatetime | None, Query(description="ISO 8601 with zone; to (exclusive)")] = None,
) -> TimeWindow:
    if since is not None and until is not None and since >= until:
        raise BadInput(f"since ({since.isoformat()}) must be before until ({until.isoformat()})")
    return TimeWindow(since, until)


def type_query(conn: ReadConn,
               type: Annotated[str | None, Query(description="alert type, e.g. fire_smoke")] = None) -> str | None:
    """The alert type filter, refused if no such type (rather than an empty answer)."""
    return known_type(conn, type)


def stats_window(conn: ReadConn,
                 time: Annotated[TimeWindow, Depends(window_query)],
                 type: Annotated[str | None, Depends(type_query)] = None,
                 township: Annotated[str | None, Query(description="township code")] = None) -> Window:
    """The window (default: the last 30 days; at most 366), type and township asked for."""
    return bounded(time.since, time.until, type, known_township(conn, township), datetime.now(UTC))


StatsWindow = Annotated[Window, Depends(stats_window)]
