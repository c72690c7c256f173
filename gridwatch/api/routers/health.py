"""GET /health: which version runs, is the database reachable, which PostGIS, which boundary
version, are the map assets installed, is the audit log keeping up, and (with a read
replica) whether it answers and how far behind the primary it is."""

import orjson
import psycopg
from fastapi import APIRouter, Request
from psycopg_pool import PoolTimeout
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from gridwatch import __version__
from gridwatch.api import schemas
from gridwatch.api.reads import PRIMARY_LSN, Reads
from gridwatch.api.schemas import problems
from gridwatch.db import server_facts
from gridwatch.errors import Unreachable
from gridwatch.maps.assets import present as assets_present

router = APIRouter(tags=["health"])
DOWN = (psycopg.Error, PoolTimeout, Unreachable)
# The replica's replay position, and how long ago it replayed the transaction it last did.
_REPLAY = ("SELECT (pg_last_wal_replay_lsn() - '0/0')::bigint, "
           "extract(epoch FROM now() - pg_last_xact_replay_timestamp())::float8")


def _probe(request: Request) -> dict:
    with request.app.state.pool.connection(timeout=2.0) as conn:
        postgis, version = server_facts(conn)
        lsn = conn.execute(PRIMARY_LSN).fetchone()[0] if request.app.state.reads else None
    return {"status": "ok", "db": "ok", "postgis": postgis, "boundary_version": version, "lsn": lsn}


def _replica(reads: Reads, primary_lsn: int | None) -> dict:
    """The replica's state: ok, or behind (further than GRIDWATCH_READ_MAX_LAG_S: it serves no
    reads), or unavailable. Its lag is the WAL it has yet to replay, and the age of the last
    transaction it replayed only while that is more than none: an idle primary writes no
    transactions, so that age grows while the replica lacks nothing. Unknown (left out)
    while the primary cannot be asked."""
    try:
        with reads.replica.connection(timeout=2.0) as conn:
            replayed, age = conn.execute(_REPLAY).fetchone()
    except DOWN as exc:
        return {"status": f"unavailable: {type(exc).__name__}"}
    if replayed is None:  # not a standby: the read URL names a primary, which lags nothing
        return {"status": "ok", "lag_s": 0.0, "lag_bytes": 0}
    reads.replayed = max(reads.replayed, replayed)
    if primary_lsn is None:
        return {"status": "ok"}
    lag_bytes = max(0, primary_lsn - replayed)
    return {"status": "behind" if reads.behind else "ok", "lag_s": round(max(age or 0.0, 0.0), 3) if lag_bytes else 0.0,
            "lag_bytes": lag_bytes}


@router.get("/health", summary="Service and database health (no key needed)", response_model=schemas.Health,
            responses={503: {"model": schemas.Health, "description": "the database is down (and no read replica "
                                                                     "answers): `status` unavailable"},
                       **problems(422)})
async def health(request: Request) -> Response:
    """`degraded` (200) while the server still answers but not all of it: the primary is
    down and the read replica serves the reads, or the replica is down and the primary
    serves them."""
    try:
        body = await run_in_threadpool(_probe, request)
    except DOWN as exc:
        body = {"status": "unavailable", "db": f"unavailable: {type(exc).__name__}", "lsn": None}
    primary_lsn = body.pop("lsn")
    reads: Reads | None = request.app.state.reads
    if reads is not None:
        body["replica"] = await run_in_threadpool(_replica, reads, primary_lsn)
        if (body["status"] == "ok") != (body["replica"]["status"] == "ok"):
            body["status"] = "degraded"
    body["version"] = __version__
    body["assets"] = "ok" if assets_present() else "missing"
    body["index_version"] = request.app.state.grid_index.version
    body.update(request.app.state.audit.state())
    return Response(orjson.dumps(body), status_code=503 if body["status"] == "unavailable" else 200,
                    media_type="application/json")
