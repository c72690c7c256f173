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
    """Delete what is older than its retention; returns how many rows of each went."""
    settings = settings or RetentionSettings()
    done = {}
    with conn.transaction():
        done["alerts"] = conn.execute("DELETE FROM alerts WHERE occurred_at < %s",
                                      [now - timedelta(days=settings.alerts_days)]).rowcount
        done["incident_photos"] = conn.execute("DELETE FROM incident_photos WHERE taken_at < %s",
                                               [now - timedelta(days=settings.alerts_days)]).rowcount
        done["team_positions"] = conn.execute("DELETE FROM team_positions WHERE at < %s",
                                              [now - timedelta(hours=settings.positions_hours)]).rowcount
        done["audit_log"] = conn.execute("DELETE FROM audit_log WHERE at < %s",
                                         [now - timedelta(days=settings.audit_days)]).rowcount
    return done
