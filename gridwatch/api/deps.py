"""Dependencies routers share."""

from collections.abc import Iterator

import psycopg
from fastapi import Request


def db(request: Request) -> Iterator[psycopg.Connection]:
    """A pooled connection for the request; committed on success, rolled back on error."""
    with request.app.state.pool.connection() as conn:
        yield conn
