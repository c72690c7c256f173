"""Alert types (fire_smoke, flooding, ...) with their grouping windows and whether their new
incidents are dispatched at once, from alert_types.

Types change only with a migration, so a process reads them at most once a minute."""

import time
from datetime import timedelta

import psycopg

from gridwatch.errors import BadInput

TTL_S = 60.0
_cache: tuple[float, dict[str, timedelta], frozenset[str]] | None = None  # (read at, windows, auto-dispatched)


def _types(conn: psycopg.Connection) -> tuple[float, dict[str, timedelta], frozenset[str]]:
    global _cache
    if _cache is None or time.monotonic() - _cache[0] > TTL_S:
        rows = conn.execute("SELECT type, window_s, auto_dispatch FROM alert_types").fetchall()
        _cache = (time.monotonic(), {t: timedelta(seconds=s) for t, s, _ in rows},
                  frozenset(t for t, _, auto in rows if auto))
    return _cache


def type_windows(conn: psycopg.Connection) -> dict[str, timedelta]:
    """Every alert type and its grouping window."""
    return _types(conn)[1]


def auto_dispatched(conn: psycopg.Connection) -> frozenset[str]:
    """The types whose new incidents go to the recommended team at once (say, fire)."""
    return _types(conn)[2]


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


def type_list(conn: psycopg.Connection) -> list[dict]:
    """Every alert type with its label, grouping window, default departments and whether its
    new incidents are dispatched at once."""
    rows = conn.execute("SELECT type, label, window_s, departments, auto_dispatch FROM alert_types ORDER BY type")
    return [{"type": t, "label": label, "window_s": window, "departments": deps, "auto_dispatch": auto}
            for t, label, window, deps, auto in rows]


def set_auto_dispatch(conn: psycopg.Connection, type_: str, on: bool) -> dict:
    """Dispatch the new incidents of `type_` at once (or not); returns the type. Other
    processes see it within TTL_S. Raises BadInput for an unknown type."""
    global _cache
    if conn.execute("UPDATE alert_types SET auto_dispatch = %s WHERE type = %s RETURNING type",
                    [on, type_]).fetchone() is None:
        known_type(conn, type_)
    _cache = None
    return next(t for t in type_list(conn) if t["type"] == type_)
