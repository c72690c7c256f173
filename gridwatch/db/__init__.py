"""Database access: where the database is, connections and the pool (plain psycopg 3)."""

import logging
import select
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

from gridwatch.config import DatabaseSettings, database_settings
from gridwatch.db.cluster import Cluster, Replica
from gridwatch.errors import Unreachable

log = logging.getLogger(__name__)
# While a server is unreachable, how often one caller looks again whether it is back.
RETRY_S = 1.0


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


class WatchedPool(ConnectionPool):
    """A pool that knows when its server cannot be reached.

    With its server gone, a pool keeps reconnecting in the background and every caller
    waits the pool's whole timeout before failing: with a read replica serving reads, each
    one would first wait seconds for the dead primary (to check a key, say). So when a
    connection breaks, or none comes in time, one direct connection attempt tells a dead
    server from a busy one (a busy one stays PoolTimeout: 503 Busy). A dead one marks the
    pool down: callers are refused at once with `Unreachable` (its detail: `down_detail`),
    but for one caller a second, who looks whether the server is back."""

    def __init__(self, conninfo: str, *, down_detail: str, **kwargs) -> None:
        super().__init__(conninfo, **kwargs)
        self.down_detail = down_detail
        self.down_since: float | None = None  # monotonic time it was found unreachable
        self._next_look = 0.0
        self._lock = threading.Lock()

    @property
    def down(self) -> bool:
        """Unreachable when last tried, and not yet time to look again."""
        return self.down_since is not None and time.monotonic() < self._next_look

    @contextmanager
    def connection(self, timeout: float | None = None) -> Iterator[psycopg.Connection]:
        if self.down_since is not None and not self._back():
            raise Unreachable(self.down_detail)
        conn: psycopg.Connection | None = None
        try:
            with super().connection(timeout) as conn:
                yield conn
        except PoolTimeout as exc:
            if conn is None and not self.reachable(exc):
                raise Unreachable(self.down_detail) from exc
            raise
        except psycopg.OperationalError as exc:  # a statement timeout is one too, on a live connection
            if conn is not None and conn.broken and not self.reachable(exc):
                raise Unreachable(self.down_detail) from exc
            raise

    def _back(self) -> bool:
        """While down: False at once, but for one caller a second, who connects to see."""
        with self._lock:
            if time.monotonic() < self._next_look:
                return False
            self._next_look = time.monotonic() + RETRY_S
        return self.reachable()

    def reachable(self, failure: Exception | None = None) -> bool:
        """Whether a connection to the server can be made now (marks the pool down or up)."""
        try:
            psycopg.connect(self.conninfo, connect_timeout=2, **self.kwargs).close()
        except psycopg.Error as exc:
            if self.down_since is None:
                log.warning("%s database unreachable (%s): %s", self.name,
                            str(failure or exc).strip().splitlines()[0], self.down_detail)
                self.down_since = time.monotonic()
            self._next_look = time.monotonic() + RETRY_S
            return False
        if self.down_since is not None:
            log.warning("%s database reachable again after %.0f s", self.name, time.monotonic() - self.down_since)
            self.down_since = None
        return True


def _open(conn: psycopg.Connection) -> None:
    """The pool's check of a connection before handing it out, without a round trip: an idle
    connection has nothing to read unless its server closed it (shut down, or the session
    was ended). Such a one is closed, and the pool takes another, so that a request does not
    fail on a connection that died while it sat in the pool. (poll, not select: a busy
    server's descriptors pass select's limit of 1024.)"""
    waiting = select.poll()
    waiting.register(conn.fileno(), select.POLLIN)
    if waiting.poll(0):
        conn.close()
        raise psycopg.OperationalError("the server closed this pooled connection")


def open_pool(url: str | None = None, settings: DatabaseSettings | None = None, name: str = "primary",
              down_detail: str = "the database cannot be reached; retry shortly") -> WatchedPool:
    """A pool for the API, working as APP_ROLE; it opens lazily so the server starts even
    while the database is down. `name` and `down_detail` say, in the log and to a caller
    refused while the server is unreachable, which database it is and what that means."""
    settings = settings or database_settings()
    pool = WatchedPool(
        url or database_url(settings),
        down_detail=down_detail,
        name=name,
        min_size=settings.pool_min,
        max_size=settings.pool_max,
        # the server's role: it may add audit rows but not change or delete them (migration 0012)
        kwargs={"options": _options(settings) + f" -c role={APP_ROLE}"},
        timeout=2.0,
        check=_open,
        open=False,
    )
    pool.open(wait=False)
    return pool


def server_facts(conn: psycopg.Connection) -> tuple[str, int]:
    """(PostGIS version, boundary version): what /health reports of the database."""
    return conn.execute("SELECT postgis_lib_version(), boundary_version()").fetchone()
