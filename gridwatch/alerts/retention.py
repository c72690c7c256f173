"""Retention: alerts with their snapshots, photos from the scene, team positions and the
audit log are kept only as long as configured, then deleted."""

from datetime import datetime, timedelta

import psycopg
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class RetentionSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GRIDWATCH_RETENTION_")

    alerts_days: int = Field(365, ge=1)  # snapshots go with their alert; photos from the scene as old go too
    positions_hours: int = Field(24, ge=1)  # on-duty GPS pings serve dispatch only
    audit_days: int = Field(365, ge=1)


def purge(conn: psycopg.Connection, now: datetime, settings: RetentionSettings | None = None) -> dict[str, int]:
    """Delete what is older than its retention; returns how many rows of each went.

    An incident keeps its evidence (alerts, their snapshots, photos) for as long as it is
    worked on: these go only when they are old and their incident has seen no activity
    within the retention period either. The incident itself stays, with its counts and
    history. Audit rows go through purge_audit(), the one way the server may delete them."""
    settings = settings or RetentionSettings()
    evidence = now - timedelta(days=settings.alerts_days)
    done = {}
    with conn.transaction():
        done["alerts"] = conn.execute(
            "DELETE FROM alerts a WHERE a.occurred_at < %(before)s AND NOT EXISTS ("
            " SELECT 1 FROM incidents i WHERE i.id = a.incident_id AND i.updated_at >= %(before)s)",
            {"before": evidence}).rowcount
        done["incident_photos"] = conn.execute(
            "DELETE FROM incident_photos p WHERE p.taken_at < %(before)s AND NOT EXISTS ("
            " SELECT 1 FROM incidents i WHERE i.id = p.incident_id AND i.updated_at >= %(before)s)",
            {"before": evidence}).rowcount
        done["team_positions"] = conn.execute("DELETE FROM team_positions WHERE at < %s",
                                              [now - timedelta(hours=settings.positions_hours)]).rowcount
        done["audit_log"] = conn.execute("SELECT purge_audit(%s)",
                                         [now - timedelta(days=settings.audit_days)]).fetchone()[0]
    return done
