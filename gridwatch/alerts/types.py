"""Alert types (fire_smoke, flooding, ...) and their grouping windows, from alert_types.

Types change only with a migration, so a process reads them at most once a minute."""

import time
from datetime import timedelta

import psycopg

from gridwatch.errors import BadInput

TTL_S = 60.0
_cache: tuple[float, dict[str, timedelta]] | None = None  # (read at, windows)


def type_windows(conn: psycopg.Connection) -> dict[str, timedelta]:
    """Every alert type and its grouping window (DESIGN §6)."""
    global _cache
    if _cache is None or time.monotonic() - _cache[0] > TTL_S:
        _cache = (time.monotonic(),
                  {t: timedelta(seconds=s) for t, s in conn.execute("SELECT type, window_s FROM alert_types")})
    return _cache[1]


def known_type(conn: psycopg.Connection, type_: str | None) -> str | None:
    """`type_` itself if it is an alert type, None if not given (or empty, as a form's "all
    types" sends it); refused otherwise: a filter on a misspelt type would quietly match
    nothing."""
    if not type_:
        return None
    if type_ not in type_windows(conn):
        raise BadInput(f"type: unknown alert type {type_!r}; one of {', '.join(sorted(type_windows(conn)))}",
                       errors=[{"field": "type", "message": "unknown alert type", "input": type_}])
    return type_
