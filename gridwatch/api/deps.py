"""What routes share, declared once as typed dependencies: a route's signature says what it
uses (`conn: Conn`, `principal: SignedIn`, `index: Grids`, `registry: Registry`)."""

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import AbstractContextManager, asynccontextmanager, contextmanager
from typing import Annotated

import orjson
import psycopg
from fastapi import Depends, Request
from fastapi.concurrency import contextmanager_in_threadpool
from psycopg_pool import ConnectionPool
from starlette.responses import Response

from gridwatch.alerts import registry
from gridwatch.api.auth import Principal, signed_in
from gridwatch.api.reads import Reads, must_see
from gridwatch.errors import Busy
from gridwatch.geo.grid_index import GridIndex

# How long a request waits for a database connection before it is answered 503.
POOL_WAIT_S = 2.0


async def db(request: Request) -> AsyncIterator[psycopg.Connection]:
    """A pooled connection to the primary for the request; committed on success (before the
    answer is sent: `Conn`), rolled back on error.

    A request first waits for one of the pool's places without holding a thread: were it to
    wait in a worker thread, a burst of requests would take every thread while the requests
    that hold connections need one to finish, and all would time out together. After
    POOL_WAIT_S it is answered 503 (busy). A GET only reads: it runs in autocommit, so no
    transaction is opened and committed around it (a round trip less on every read)."""
    async with _gated(request.app.state.db_gate, _connection(request.app.state.pool, request.method == "GET")) \
            as conn:
        yield conn


async def read_db(request: Request) -> AsyncIterator[psycopg.Connection]:
    """A connection for a read of maps, statistics or a list, in autocommit: from the read
    replica when one is configured, reachable, and (for a key that has just written) has
    replayed that write; else from the primary, as `db`. The replica's pool has a gate of
    its own (see reads.py)."""
    reads: Reads | None = request.app.state.reads
    if reads is not None and not reads.replica.down:
        async with _gated(request.app.state.replica_gate, reads.replica_connection(must_see(request))) as conn:
            if conn is not None:
                yield conn
                return
    async with _gated(request.app.state.db_gate, _connection(request.app.state.pool, True)) as conn:
        yield conn


@asynccontextmanager
async def _gated(gate: asyncio.Semaphore, connection: AbstractContextManager) -> AsyncIterator:
    """`connection` entered in a worker thread once one of `gate`'s places is free."""
    try:
        await asyncio.wait_for(gate.acquire(), POOL_WAIT_S)
    except TimeoutError:
        raise Busy(f"every database connection of this server process was in use for {POOL_WAIT_S:g} s; "
                   f"retry shortly") from None
    try:
        async with contextmanager_in_threadpool(connection) as conn:
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
            if read and not (conn.closed or conn.broken):
                conn.autocommit = False  # as every other user of the pool expects it


def grid_index(request: Request) -> GridIndex:
    """The grid index of the boundaries now loaded (it follows every import)."""
    return request.app.state.grid_index.index


def camera_registry(request: Request) -> registry.Registry:
    """Cameras and teams as ingest and dispatch read them, cached between changes."""
    return request.app.state.registry


# scope="function": the connection is committed and handed back before the answer is sent, so
# a write is answered only once it is durable, and a commit that fails is the answer
Conn = Annotated[psycopg.Connection, Depends(db, scope="function")]
# maps, statistics and lists: the read replica when there is one (reads.py)
ReadConn = Annotated[psycopg.Connection, Depends(read_db, scope="function")]
SignedIn = Annotated[Principal, Depends(signed_in)]
Grids = Annotated[GridIndex, Depends(grid_index)]
Registry = Annotated[registry.Registry, Depends(camera_registry)]


def json_response(body, status: int = 200) -> Response:
    """JSON through orjson (fast, and numpy-safe once values are plain)."""
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")
