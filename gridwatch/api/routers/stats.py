"""Statistics for the command room (viewer): per grid, heat cells, hot spots, timeline,
1-3-1 compliance. Window [since, until) defaults to the last 30 days."""

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query
from starlette.responses import Response

from gridwatch.api import schemas
from gridwatch.api.deps import Grids, ReadConn, json_response
from gridwatch.api.params import StatsWindow
from gridwatch.api.schemas import COMMON
from gridwatch.config import api_settings
from gridwatch.stats.counts import Window, compliance, grid_counts, heat_cells, response_times, timeline
from gridwatch.stats.hotspots import hotspots

router = APIRouter(tags=["stats"], responses=COMMON)




def _json(window: Window, body: dict) -> Response:
    return json_response({**window.as_dict(), **body})


@router.get("/stats/grids", summary="Per grid: alerts, incidents, open, overdue, incidents per km²",
            response_model=schemas.GridStats)
def stats_grids(conn: ReadConn, window: StatsWindow) -> Response:
    return _json(window, {"grids": grid_counts(conn, window, datetime.now(UTC))})


@router.get("/stats/heat", summary="Alert counts on regular cells (aggregated in PostGIS, never raw points)",
            response_model=schemas.HeatStats)
def stats_heat(conn: ReadConn, window: StatsWindow, index: Grids,
               cell_m: Annotated[float | None, Query(gt=0, le=100_000, description="cell size in metres "
                                                                                    "(default: from the extent)")]
               = None) -> Response:
    return _json(window, heat_cells(conn, window, index, cell_m))


@router.get("/stats/hotspots", summary="Getis-Ord Gi* hot and cold spots of incidents per grid (FDR-corrected)",
            response_model=schemas.HotspotStats)
def stats_hotspots(conn: ReadConn, index: Grids, window: StatsWindow) -> Response:
    # the request's one connection (the type filter holds it already): never a second from the pool
    return _json(window, hotspots(conn, window, index, datetime.now(UTC)))


@router.get("/stats/timeline", summary="Alerts and incidents per day; alerts per weekday × hour (local time)",
            response_model=schemas.TimelineStats)
def stats_timeline(conn: ReadConn, window: StatsWindow) -> Response:
    return _json(window, timeline(conn, window, api_settings().timezone))


@router.get("/stats/deadlines", summary="1-3-1 compliance per township and per team",
            response_model=schemas.DeadlineStats)
def stats_deadlines(conn: ReadConn, window: StatsWindow) -> Response:
    return _json(window, compliance(conn, window, datetime.now(UTC)))


@router.get("/stats/response", summary="Team response times from assignments: dispatch to acknowledged, on scene, "
                                       "resolved (median, 90th percentile) per township and team kind",
            response_model=schemas.ResponseStats)
def stats_response(conn: ReadConn, window: StatsWindow) -> Response:
    return _json(window, response_times(conn, window))
