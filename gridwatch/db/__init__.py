"""Database access: where the database is, connections and the pool (plain psycopg 3)."""

import psycopg
from psycopg_pool import ConnectionPool

from gridwatch.config import DatabaseSettings, database_settings
from gridwatch.db.cluster import Cluster, Replica


def embedded_cluster(settings: DatabaseSettings | None = None, progress=None) -> Cluster:
    settings = settings or database_settings()
    return Cluster(settings.home, pg_user=settings.pg_user, progress=progress)


def embedded_replica(settings: DatabaseSettings | None = None, progress=None) -> Replica:
    """The embedded cluster's read replica (`gridwatch db replica start`)."""
    return Replica(embedded_cluster(settings, progress), progress)


def database_url(settings: DatabaseSettings | None = None) -> str:
    """`GRIDWATCH_DATABASE_URL` if set, else the embedded cluster's URL."""
    settings = settings or database_settings()
    if settings.database_url:
        return settings.database_url
    return embedded_cluster(settings).url()


APP_ROLE = "gridwatch_app"


def _options(settings: DatabaseSettings) -> str:
    # A slow query ends with an error the API turns into 503, not a hung worker.
    return f"-c statement_timeout={settings.statement_timeout_ms} -c timezone=UTC"


def connect(url: str | None = None, settings: DatabaseSettings | None = None, **kwargs) -> psycopg.Connection:
    """One connection with gridwatch's session settings."""
    settings = settings or database_settings()
    return psycopg.connect(url or database_url(settings), options=_options(settings), **kwargs)


def open_pool(url: str | None = None, settings: DatabaseSettings | None = None) -> ConnectionPool:
    """A pool for the API, working as APP_ROLE; it opens lazily so the server starts even
    while the database is down."""
    settings = settings or database_settings()
    pool = ConnectionPool(
        url or database_url(settings),
        min_size=settings.pool_min,
        max_size=settings.pool_max,
        # the server's role: it may add audit rows but not change or delete them (migration 0012)
        kwargs={"options": _options(settings) + f" -c role={APP_ROLE}"},
        timeout=2.0,
        open=False,
    )
    pool.open(wait=False)
    return pool


def server_facts(conn: psycopg.Connection) -> tuple[str, int]:
    """(PostGIS version, boundary version): what /health reports of the database."""
    return conn.execute("SELECT postgis_lib_version(), boundary_version()").fetchone()
