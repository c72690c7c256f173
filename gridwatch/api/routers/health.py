"""GET /health: which version runs, is the database reachable, which PostGIS, which boundary
version, are the map assets installed, is the audit log keeping up."""

import orjson
import psycopg
from fastapi import APIRouter, Request
from psycopg_pool import PoolTimeout
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from gridwatch import __version__
from gridwatch.api import schemas
from gridwatch.api.schemas import problems
from gridwatch.db import server_facts
from gridwatch.maps.assets import present as assets_present

router = APIRouter(tags=["health"])


def _probe(request: Request) -> dict:
    with request.app.state.pool.connection(timeout=2.0) as conn:
        postgis, version = server_facts(conn)
    return {"status": "ok", "db": "ok", "postgis": postgis, "boundary_version": version}


@router.get("/health", summary="Service and database health (no key needed)", response_model=schemas.Health,
            responses={503: {"model": schemas.Health, "description": "the database is down: `status` unavailable"},
                       **problems(422)})
async def health(request: Request) -> Response:
    try:
        body, status = await run_in_threadpool(_probe, request), 200
    except (psycopg.Error, PoolTimeout) as exc:
        body, status = {"status": "unavailable", "db": f"unavailable: {type(exc).__name__}"}, 503
    body["version"] = __version__
    body["assets"] = "ok" if assets_present() else "missing"
    body["index_version"] = request.app.state.grid_index.version
    body.update(request.app.state.audit.state())
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")
