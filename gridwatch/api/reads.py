"""Reads from a streaming replica (GRIDWATCH_READ_DATABASE_URL), writes to the primary.

Maps, statistics and lists read from the replica (`ReadConn` in deps.py); single items,
everything that writes, and the answer of a write (made in the write's own transaction) use
the primary. A replica replays the primary's WAL a little later, so a caller who has just
written could read the world from before its write. To prevent that, after every write
answered 2xx the primary's WAL position is remembered for the caller's key; that key's
reads go to the replica only once it has replayed that far (`pg_last_wal_replay_lsn()`,
asked only while it may still be behind), else to the primary. A key that has not written
reads the replica as it is.

The position is kept in the process that answered the write, and also handed to the
client in a cookie (`gridwatch_wrote`), so that with several workers a browser or any client
that keeps cookies reads its writes from whichever worker answers next; a client that keeps
no cookies is protected by the worker that answered its write (clients usually keep their
connection to one worker open). A forged cookie can only send its holder's reads to the
primary.

Nobody reads from a replica further behind than GRIDWATCH_READ_MAX_LAG_S (30 s): every
second the primary's WAL position is sampled, and every read must see at least the position
the primary had that long ago (a floor under each key's own). A stalled or paused replica thus
sends reads to the primary until it has caught up, and /health says it is behind.

An unreachable replica sends every read to the primary (logged when it goes and comes
back). An unreachable primary leaves reads on the replica, even a writer's that the replica
has not caught up with: slightly old data beats none; writes are refused (503).
"""

import logging
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg_pool import PoolTimeout
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from gridwatch.db import WatchedPool
from gridwatch.errors import Unreachable

log = logging.getLogger(__name__)
# How long a write's position is kept if the replica never gets there (paused, say); the
# entry goes as soon as the replica has replayed it.
KEEP_S = 300.0
MAX_WRITERS = 10_000
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
COOKIE = "gridwatch_wrote"
# Keys of machines that write but never read lists: no position is kept for them.
MACHINE_ROLES = ("ingest", "video")
# WAL positions as byte offsets, comparable across the primary and its replicas: how far the
# primary has written, and how far it has inserted (a write's commit included even with
# synchronous_commit off).
PRIMARY_LSN = "SELECT (pg_current_wal_lsn() - '0/0')::bigint"
WRITTEN_LSN = "SELECT (pg_current_wal_insert_lsn() - '0/0')::bigint"
REPLAYED_LSN = "SELECT (pg_last_wal_replay_lsn() - '0/0')::bigint"


class Reads:
    """The primary's and the replica's pools, and what each key last wrote."""

    def __init__(self, primary: WatchedPool, replica: WatchedPool, max_lag_s: float) -> None:
        self.primary = primary
        self.replica = replica
        self.max_lag_s = max_lag_s
        self.replayed = 0  # the furthest the replica was seen to have replayed (it only moves on)
        # the primary's WAL positions of the last max_lag_s, oldest first (monotonic time, position),
        # and the newest one older than that: what every read must see
        self._positions: deque[tuple[float, int]] = deque()
        self.floor = 0
        self._written: dict[int, tuple[int, float]] = {}  # key id → (WAL position, keep until)
        self._lock = threading.Lock()

    def remember_write(self, key_id: int) -> int | None:
        """After a write by `key_id` is committed: where the primary's WAL ends now, its
        commit included (returned, None if unknown). Blocking; a failure only costs this
        write the guarantee, logged."""
        try:
            with self.primary.connection() as conn:
                lsn = conn.execute(WRITTEN_LSN).fetchone()[0]
        except (psycopg.Error, PoolTimeout, Unreachable) as exc:
            log.warning("the WAL position after a write by key %s is unknown (%s): its next reads may come from "
                        "the replica before it has the write", key_id, exc)
            return None
        now = time.monotonic()
        with self._lock:
            if len(self._written) >= MAX_WRITERS:
                self._written = {k: v for k, v in self._written.items() if v[1] > now and v[0] > self.replayed}
            self._written[key_id] = (max(lsn, self._written.get(key_id, (0, 0.0))[0]), now + KEEP_S)
        return lsn

    def sample(self) -> None:
        """Note where the primary's WAL is now (every second): reads must see at least where
        it was max_lag_s ago. Raises while the primary cannot be asked (the floor stays)."""
        with self.primary.connection() as conn:
            lsn = conn.execute(PRIMARY_LSN).fetchone()[0]
        now = time.monotonic()
        with self._lock:
            self._positions.append((now, lsn))
            while self._positions and self._positions[0][0] <= now - self.max_lag_s:
                self.floor = max(self.floor, self._positions.popleft()[1])

    @property
    def behind(self) -> bool:
        """The replica was last seen further behind than max_lag_s."""
        return self.floor > self.replayed

    def must_see(self, key_id: int | None, cookie: str | None) -> int | None:
        """The WAL position a read must see while the replica may lack it: the last write of
        the key `key_id` that this process answered, or of the client, as its cookie says, and
        at least where the primary was max_lag_s ago."""
        lsn = int(cookie) if cookie and cookie.isascii() and cookie.isdigit() and len(cookie) < 20 else 0
        lsn = max(lsn, self.floor)
        with self._lock:
            entry = self._written.get(key_id) if key_id is not None else None
            if entry is not None:
                if entry[0] <= self.replayed or entry[1] < time.monotonic():
                    del self._written[key_id]
                else:
                    lsn = max(lsn, entry[0])
        return lsn if lsn > self.replayed else None

    def _caught_up(self, conn: psycopg.Connection, lsn: int) -> bool:
        replayed = conn.execute(REPLAYED_LSN).fetchone()[0]
        if replayed is None:  # not a standby (the read URL names a primary): it holds what it holds
            return True
        self.replayed = max(self.replayed, replayed)
        return replayed >= lsn

    @contextmanager
    def replica_connection(self, lsn: int | None) -> Iterator[psycopg.Connection | None]:
        """A replica connection in autocommit for a read that must see the WAL position
        `lsn` (`must_see`); None when the read must go to the primary: the replica is
        unreachable, or it has not replayed that far while the primary is up."""
        serving = False
        try:
            with self.replica.connection() as conn:
                conn.autocommit = True
                try:
                    if lsn is None or self.primary.down_since is not None or self._caught_up(conn, lsn):
                        serving = True
                        yield conn
                        return
                finally:
                    if not (conn.closed or conn.broken):
                        conn.autocommit = False  # as every other user of the pool expects it
        except (Unreachable, psycopg.OperationalError, PoolTimeout) as exc:
            if serving:
                raise
            log.info("a read goes to the primary: the replica is not there (%s)", exc)
        yield None

    @contextmanager
    def reading(self, primary: WatchedPool, lsn: int | None) -> Iterator[psycopg.Connection]:
        """A connection for a read that must see `lsn`: from the replica when it may serve
        it, else from `primary` (in a transaction, as that pool hands it out)."""
        if not self.replica.down:
            with self.replica_connection(lsn) as conn:
                if conn is not None:
                    yield conn
                    return
        with primary.connection() as conn:
            yield conn


def must_see(request: Request) -> int | None:
    """The WAL position the request's read must see (None: any replica state will do)."""
    reads: Reads | None = request.app.state.reads
    if reads is None:
        return None
    principal = getattr(request.state, "principal", None)
    return reads.must_see(principal.key_id if principal else None, request.cookies.get(COOKIE))


class ReadYourWrites:
    """ASGI middleware: after a write by a key is answered 2xx, and before the answer leaves,
    remember the primary's WAL position for the key (`Reads.remember_write`) and hand it to
    the client in a cookie. A refused write (4xx) changed nothing: its transaction rolled
    back. Camera keys (`ingest`) and video fleet hosts (`video`) never read maps or lists, so
    their alerts and heartbeats cost no extra query."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send):
        reads: Reads | None = getattr(scope["app"].state, "reads", None) if scope["type"] == "http" else None
        if reads is None or scope["method"] in SAFE_METHODS:
            return await self.app(scope, receive, send)

        async def remember(message):
            if message["type"] == "http.response.start" and 200 <= message["status"] < 300:
                principal = scope.get("state", {}).get("principal")
                if principal is not None and principal.role not in MACHINE_ROLES:
                    lsn = await run_in_threadpool(reads.remember_write, principal.key_id)
                    if lsn is not None:
                        secure = "; Secure" if scope.get("scheme") == "https" else ""
                        cookie = f"{COOKIE}={lsn}; Max-Age={int(KEEP_S)}; Path=/; HttpOnly; SameSite=Strict{secure}"
                        message = {**message, "headers": [*message.get("headers", []),
                                                          (b"set-cookie", cookie.encode())]}
            await send(message)

        await self.app(scope, receive, remember)
