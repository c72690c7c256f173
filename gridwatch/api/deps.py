"""What routes share, declared once as typed dependencies: a route's signature says what it
uses (`conn: Conn`, `principal: SignedIn`, `index: Grids`, `registry: Registry`)."""

from collections.abc import Iterator
from typing import Annotated

import orjson
import psycopg
from fastapi import Depends, Request
from starlette.responses import Response

from gridwatch.alerts import registry
from gridwatch.api.auth import Principal, signed_in
from gridwatch.geo.grid_index import GridIndex


def db(request: Request) -> Iterator[psycopg.Connection]:
    """A pooled connection for the request; committed on success, rolled back on error. A GET
    only reads: it runs in autocommit, so no transaction is opened and committed around it
    (a round trip less on every read); the connection goes back to the pool as it came."""
    read = request.method == "GET"
    with request.app.state.pool.connection() as conn:
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
