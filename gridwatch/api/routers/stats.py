"""Statistics for the command room (viewer): per grid, heat cells, hot spots, timeline,
1-3-1 compliance. Window [since, until) defaults to the last 30 days."""

from datetime import UTC, datetime, timedelta
from typing import Annotated

import psycopg
from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import Response

from gridwatch.api.auth import require
from gridwatch.api.deps import db, json_response
from gridwatch.api.params import TimeWindow, type_query, window_query
from gridwatch.config import api_settings
from gridwatch.errors import BadInput
from gridwatch.stats.counts import Window, compliance, grid_counts, heat_cells, response_times, timeline
from gridwatch.stats.hotspots import hotspots

router = APIRouter(tags=["stats"], dependencies=[Depends(require("viewer"))])
Conn = Annotated[psycopg.Connection, Depends(db)]
DEFAULT_DAYS = 30
# Every statistic (and page) reads a bounded window: a century of alerts is not one request's work.
MAX_WINDOW = timedelta(days=366)


def stats_window(time: Annotated[TimeWindow, Depends(window_query)],
                 type: Annotated[str | None, Depends(type_query)] = None,
                 township: Annotated[str | None, Query(description="township code")] = None) -> Window:
    until = time.until or datetime.now(UTC)
    since = time.since or until - timedelta(days=DEFAULT_DAYS)
    if until - since > MAX_WINDOW:
        raise BadInput(f"since, until: at most {MAX_WINDOW.days} days at a time; this window is "
                       f"{(until - since).days:,} days")
    return Window(since, until, type, township)


StatsWindow = Annotated[Window, Depends(stats_window)]


def _json(window: Window, body: dict) -> Response:
    return json_response({**window.as_dict(), **body})


@router.get("/stats/grids", summary="Per grid: alerts, incidents, open, overdue, incidents per km²")
def stats_grids(conn: Conn, window: StatsWindow) -> Response:
    return _json(window, {"grids": grid_counts(conn, window, datetime.now(UTC))})


@router.get("/stats/heat", summary="Alert counts on regular cells (aggregated in PostGIS, never raw points)")
def stats_heat(conn: Conn, window: StatsWindow, request: Request,
               cell_m: Annotated[float | None, Query(gt=0, le=100_000, description="cell size in metres "
                                                                                    "(default: from the extent)")]
               = None) -> Response:
    return _json(window, heat_cells(conn, window, request.app.state.grid_index.index, cell_m))


@router.get("/stats/hotspots", summary="Getis-Ord Gi* hot and cold spots of incidents per grid (FDR-corrected)")
def stats_hotspots(conn: Conn, request: Request, window: StatsWindow) -> Response:
    # the request's one connection (the type filter holds it already): never a second from the pool
    return _json(window, hotspots(conn, window, request.app.state.grid_index.index, datetime.now(UTC)))


@router.get("/stats/timeline", summary="Alerts and incidents per day; alerts per weekday × hour (local time)")
def stats_timeline(conn: Conn, window: StatsWindow) -> Response:
    return _json(window, timeline(conn, window, api_settings().timezone))


@router.get("/stats/deadlines", summary="1-3-1 compliance per township and per team")
def stats_deadlines(conn: Conn, window: StatsWindow) -> Response:
    return _json(window, compliance(conn, window, datetime.now(UTC)))


@router.get("/stats/response", summary="Team response times from assignments: dispatch to acknowledged, on scene, "
                                       "resolved (median, 90th percentile) per township and team kind")
def stats_response(conn: Conn, window: StatsWindow) -> Response:
    return _json(window, response_times(conn, window))
