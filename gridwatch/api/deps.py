"""Dependencies routers share."""

from collections.abc import Iterator

import orjson
import psycopg
from fastapi import Request
from starlette.responses import Response


def db(request: Request) -> Iterator[psycopg.Connection]:
    """A pooled connection for the request; committed on success, rolled back on error."""
    with request.app.state.pool.connection() as conn:
        yield conn


def json_response(body, status: int = 200) -> Response:
    """JSON through orjson (fast, and numpy-safe once values are plain)."""
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")
