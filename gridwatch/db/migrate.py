"""Numbered SQL migrations in `migrations/`, each applied once and recorded."""

from collections.abc import Callable
from importlib.resources import files
from pathlib import Path

import psycopg

from gridwatch.db import partitions

MIGRATIONS_DIR = Path(str(files("gridwatch.db"))) / "migrations"
# Any constant: serialises concurrent `migrate` calls (several workers starting at once).
_LOCK_ID = 0x67726964


def pending(conn: psycopg.Connection, until: int | None = None) -> list[Path]:
    """Migration files not yet recorded in `schema_migrations`, in order (up to number `until`)."""
    conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations ("
                 " version int PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())")
    done = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
    files = sorted(MIGRATIONS_DIR.glob("[0-9][0-9][0-9][0-9]_*.sql"))
    return [f for f in files if int(f.name[:4]) not in done and (until is None or int(f.name[:4]) <= until)]


def migrate(conn: psycopg.Connection, progress: Callable[[str], None] = lambda _m: None,
            until: int | None = None) -> list[str]:
    """Apply pending migrations, each in its own transaction; returns their names.

    `until` stops after that number: a database as an older release left it, for testing
    the conversion of its data by the migrations after it. A fully migrated database then
    gets the coming months' partitions (gridwatch.db.partitions), so that a `migrate` also
    tops them up on a server that has not run for a while."""
    applied = []
    conn.execute("SELECT pg_advisory_lock(%s)", [_LOCK_ID])
    try:
        conn.commit()
        for path in pending(conn, until):
            progress(f"applying {path.name}")
            with conn.transaction():
                conn.execute(path.read_text())
                conn.execute("INSERT INTO schema_migrations (version, name) VALUES (%s, %s)",
                             [int(path.name[:4]), path.stem])
            applied.append(path.name)
        if until is None:
            made = partitions.ensure(conn)
            if made:
                progress(f"{made} monthly partition(s) made")
        conn.commit()
    finally:
        conn.execute("SELECT pg_advisory_unlock(%s)", [_LOCK_ID])
        conn.commit()
    return applied
