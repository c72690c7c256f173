"""What routes share, declared once as typed dependencies: a route's signature says what it
uses (`conn: Conn`, `principal: SignedIn`, `index: Grids`, `registry: Registry`)."""

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Annotated

import orjson
import psycopg
from fastapi import Depends, Request
from fastapi.concurrency import contextmanager_in_threadpool
from psycopg_pool import ConnectionPool
from starlette.responses import Response

from gridwatch.alerts import registry
from gridwatch.api.auth import Principal, signed_in
from gridwatch.errors import Busy
from gridwatch.geo.grid_index import GridIndex

# How long a request waits for a database connection before it is answered 503.
POOL_WAIT_S = 2.0


async def db(request: Request) -> AsyncIterator[psycopg.Connection]:
    """A pooled connection for the request; committed on success, rolled back on error.

    A request first waits for one of the pool's places without holding a thread: were it to
    wait in a worker thread, a burst of requests would take every thread while the requests
    that hold connections need one to finish, and all would time out together. After
    POOL_WAIT_S it is answered 503 (busy). A GET only reads: it runs in autocommit, so no
    transaction is opened and committed around it (a round trip less on every read)."""
    gate: asyncio.Semaphore = request.app.state.db_gate
    try:
        await asyncio.wait_for(gate.acquire(), POOL_WAIT_S)
    except TimeoutError:
        raise Busy(f"every database connection of this server process was in use for {POOL_WAIT_S:g} s; "
                   f"retry shortly") from None
    try:
        async with contextmanager_in_threadpool(_connection(request.app.state.pool, request.method == "GET")) \
                as conn:
            yield conn
    finally:
        gate.release()


@contextmanager
def _connection(pool: ConnectionPool, read: bool) -> Iterator[psycopg.Connection]:
    with pool.connection() as conn:
        conn.autocommit = read
        try:
            yield conn
        finally:
            if read and not conn.closed:
                conn.autocommit = False  # as every other user of the pool expects it


def grid_index(request: Request) -> GridIndex:
    """The grid index of the boundaries now loaded (it follows every import)."""
    return request.app.state.grid_index.index


def camera_registry(request: Request) -> registry.Registry:
    """Cameras and teams as ingest and dispatch read them, cached between changes."""
    return request.app.state.registry


Conn = Annotated[psycopg.Connection, Depends(db)]
SignedIn = Annotated[Principal, Depends(signed_in)]
Grids = Annotated[GridIndex, Depends(grid_index)]
Registry = Annotated[registry.Registry, Depends(camera_registry)]


def json_response(body, status: int = 200) -> Response:
    """JSON through orjson (fast, and numpy-safe once values are plain)."""
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")
