"""The pages' filter form (window, type, township), read from what a form or a link sends
and checked the same way for the server's pages and `gridwatch map heatmap`."""

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import psycopg

from gridwatch.alerts.types import known_type, type_windows
from gridwatch.errors import BadInput
from gridwatch.geo.boundaries import known_township, township_names
from gridwatch.stats.counts import Window, bounded


def choices(conn: psycopg.Connection) -> tuple[list[str], dict[str, str]]:
    """What the form offers: the alert types, and the townships by code."""
    return sorted(type_windows(conn)), township_names(conn)


def window(conn: psycopg.Connection, since: str | None, until: str | None, type_: str | None, township: str | None,
           timezone: str, now: datetime) -> Window:
    """The window a form asked for: plain dates (a form sends them) are days of the
    county's calendar, `until` inclusive; ISO times with a zone (links) as they are."""
    return bounded(_when("since", since, False, timezone), _when("until", until, True, timezone),
                   known_type(conn, type_), known_township(conn, township), now)


def _when(name: str, value: str | None, end: bool, timezone: str) -> datetime | None:
    if not value:
        return None
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise BadInput(f"{name}: {value!r} is not a date (YYYY-MM-DD) or an ISO time") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=ZoneInfo(timezone))
        if end and len(value) == 10 and when.year < 9999:
            when += timedelta(days=1)
    return when
