"""Retention: alerts with their snapshots, photos from the scene, team positions and the
audit log are kept only as long as configured, then removed.

Alerts, positions and the audit log are partitioned by month (migration 0017): a month
wholly past its retention is dropped whole, which costs the same for ten rows or ten
million and leaves nothing for VACUUM; rows past retention in the month the cutoff falls in
(and in a default partition) are deleted row by row, so the configured age holds to the
hour, as it did before the partitions."""

import logging
from datetime import datetime, timedelta

import psycopg
from psycopg import sql
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

log = logging.getLogger(__name__)

# Dropping a month locks its table for a moment; it waits at most this long for readers and
# writers to let go, else it is left for the next round (rather than queueing everyone behind it).
LOCK_WAIT = "5s"
# Retention runs in the background; a month's drop (its keys and snapshots deleted first), or a
# catch-up after a long stop, may take longer than a request is allowed to.
STATEMENT_TIMEOUT = "15min"


class RetentionSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GRIDWATCH_RETENTION_")

    alerts_days: int = Field(365, ge=1)  # snapshots go with their alert; photos from the scene as old go too
    positions_hours: int = Field(24, ge=1)  # on-duty GPS pings serve dispatch only
    audit_days: int = Field(365, ge=1)


_MONTHS_BEFORE_SQL = "SELECT part::text, lo, hi FROM month_partitions(%s::regclass) WHERE hi <= %s ORDER BY lo"
# A month of alerts holds evidence while any of its alerts belongs to an incident with activity
# within the retention period: then only its other alerts go, row by row, and the month later.
_EVIDENCE_SQL = """
SELECT EXISTS (SELECT 1 FROM alerts a JOIN incidents i ON i.id = a.incident_id
               WHERE a.occurred_at >= %(lo)s AND a.occurred_at < %(hi)s AND i.updated_at >= %(before)s)
"""
_MONTH_COUNT_SQL = {"alerts": "SELECT count(*) FROM alerts WHERE occurred_at >= %(lo)s AND occurred_at < %(hi)s",
                    "team_positions": "SELECT count(*) FROM team_positions WHERE at >= %(lo)s AND at < %(hi)s"}
# What lives with a month of alerts outside its partition: the keys and the snapshots.
_MONTH_KEYS_SQL = "DELETE FROM alert_keys WHERE occurred_at >= %(lo)s AND occurred_at < %(hi)s"
_MONTH_SNAPSHOTS_SQL = "DELETE FROM snapshots WHERE alert_occurred_at >= %(lo)s AND alert_occurred_at < %(hi)s"
# The rows past retention that no dropped month took (triggers take alert keys and snapshots along).
_ALERTS_SQL = ("DELETE FROM alerts a WHERE a.occurred_at < %(before)s AND NOT EXISTS ("
               " SELECT 1 FROM incidents i WHERE i.id = a.incident_id AND i.updated_at >= %(before)s)")
_PHOTOS_SQL = ("DELETE FROM incident_photos p WHERE p.taken_at < %(before)s AND NOT EXISTS ("
               " SELECT 1 FROM incidents i WHERE i.id = p.incident_id AND i.updated_at >= %(before)s)")
_POSITIONS_SQL = "DELETE FROM team_positions WHERE at < %(before)s"


def purge(conn: psycopg.Connection, now: datetime, settings: RetentionSettings | None = None) -> dict[str, int]:
    """Remove what is older than its retention; returns how many rows of each went.

    An incident keeps its evidence (alerts, their snapshots, photos) for as long as it is
    worked on: these go only when they are old and their incident has seen no activity
    within the retention period either. The incident itself stays, with its counts and
    history. Audit rows go through purge_audit(), the one way the server may remove them."""
    settings = settings or RetentionSettings()
    evidence = now - timedelta(days=settings.alerts_days)
    positions = now - timedelta(hours=settings.positions_hours)
    done = {"alerts": purge_alerts(conn, evidence)}
    with conn.transaction():
        _background(conn)
        done["incident_photos"] = conn.execute(_PHOTOS_SQL, {"before": evidence}).rowcount
    done["team_positions"] = _drop_months(conn, "team_positions", positions)
    with conn.transaction():
        _background(conn)
        done["team_positions"] += conn.execute(_POSITIONS_SQL, {"before": positions}).rowcount
    with conn.transaction():
        _background(conn)
        done["audit_log"] = conn.execute("SELECT purge_audit(%s)",
                                         [now - timedelta(days=settings.audit_days)]).fetchone()[0]
    return done


def purge_alerts(conn: psycopg.Connection, before: datetime) -> int:
    """Remove alerts that occurred before `before` (with their keys and snapshots), except the
    evidence of incidents with activity since; returns how many went. Months wholly before it
    without such evidence are dropped, each in its own transaction; the rest is deleted."""
    gone = _drop_months(conn, "alerts", before)
    with conn.transaction():
        _background(conn)
        return gone + conn.execute(_ALERTS_SQL, {"before": before}).rowcount


def _drop_months(conn: psycopg.Connection, table: str, before: datetime) -> int:
    """Drop the months of `table` that end by `before` (for alerts, those holding no evidence of
    an active incident); returns the rows they held. A month whose table stays locked longer
    than LOCK_WAIT is left for the next round; its rows are still deleted by the caller."""
    gone = 0
    with conn.transaction():  # each month's drop is a transaction of its own, not a part of this one
        expired = conn.execute(_MONTHS_BEFORE_SQL, [table, before]).fetchall()
    for part, lo, hi in expired:
        month = {"lo": lo, "hi": hi, "before": before}
        try:
            with conn.transaction():
                _background(conn)
                # one process at a time: two that drop the same month would deadlock on its lock
                conn.execute("SELECT pg_advisory_xact_lock(hashtext('gridwatch.retention'))")
                # the month is ours from here: an alert of it stored meanwhile would be dropped
                # while its key, deleted before it came, stayed behind
                conn.execute(sql.SQL("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE").format(sql.Identifier(part)))
                if table == "alerts" and conn.execute(_EVIDENCE_SQL, month).fetchone()[0]:
                    continue
                n = conn.execute(_MONTH_COUNT_SQL[table], month).fetchone()[0]
                if table == "alerts":
                    conn.execute(_MONTH_SNAPSHOTS_SQL, month)
                    conn.execute(_MONTH_KEYS_SQL, month)
                if conn.execute("SELECT drop_month_partition(%s::regclass, %s)", [table, lo]).fetchone()[0]:
                    gone += n
        except psycopg.errors.LockNotAvailable:
            log.warning("retention: %s of %s is in use; it is dropped in a later round", table, lo.date())
    return gone


def _background(conn: psycopg.Connection) -> None:
    """Time limits of retention's transactions: short waits for locks, long statements."""
    conn.execute(f"SET LOCAL lock_timeout = '{LOCK_WAIT}'")
    conn.execute(f"SET LOCAL statement_timeout = '{STATEMENT_TIMEOUT}'")
