"""The audit log: one row per authenticated request (who, when, method, path, status; never
the body or the query), written in batches from a thread so that auditing adds no database
round trip to a request, and read back by admins (GET /admin/audit, `gridwatch audit`).

Whatever a request holds, its row is stored: the path is cut to a readable length and any
character a text column cannot hold is written as an escape. A batch the database refuses
is written row by row, so one row never holds up the others; while the database cannot be
written at all the rows wait (and /health says so), and if so many wait that memory is at
risk the oldest are let go and the loss itself is written to the log once it can be.
"""

import logging
import re
import threading
import time
from collections import deque
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

from gridwatch.api.auth import Principal
from gridwatch.errors import Unreachable

log = logging.getLogger(__name__)

MAX_PATH = 2000
MAX_WAITING = 500_000  # rows kept while the database cannot be written (about 100 MB)
BEHIND_AFTER_S = 10.0  # rows waiting longer than this: /health says "behind"
_COPY = "COPY audit_log (at, key_id, role, method, path, status, ms) FROM STDIN"
Row = tuple[datetime, int | None, str, str, str, int, float]
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f\ud800-\udfff]")


def printable(text: str) -> str:
    """`text` with what a text column cannot hold (NUL, lone surrogates) and other control
    characters written as escapes (\\x00, \\ud800), cut to MAX_PATH characters."""
    cut = len(text) - MAX_PATH
    out = _UNPRINTABLE.sub(lambda m: ascii(m[0])[1:-1], text[:MAX_PATH])  # in C: every request passes here
    return out + (f"… ({cut:,} more characters)" if cut > 0 else "")


class AuditLog:
    def __init__(self, pool: ConnectionPool, flush_s: float = 1.0, max_waiting: int = MAX_WAITING) -> None:
        self.pool = pool
        self.flush_s = flush_s
        self.max_waiting = max_waiting
        self._rows: deque[Row] = deque()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="audit-log", daemon=True)
        self.lost = 0  # rows let go since the last write that recorded the loss
        self.lost_total = 0
        self.failing_since: float | None = None

    def start(self) -> None:
        self._thread.start()

    def record(self, principal: Principal, method: str, path: str, status: int, ms: float) -> None:
        row = (datetime.now(UTC), principal.key_id, principal.role, printable(method)[:16], printable(path), status,
               round(ms, 2))
        with self._lock:
            self._rows.append(row)
            if len(self._rows) > self.max_waiting:  # the database has been away for long: the oldest go, counted
                self._rows.popleft()
                self.lost += 1
                self.lost_total += 1

    def state(self) -> dict[str, Any]:
        """For /health: "ok", or "behind" with how many rows wait (and how many were lost)."""
        with self._lock:
            waiting = len(self._rows)
            oldest = self._rows[0][0] if waiting else None
        behind = self.failing_since is not None or (
            oldest is not None and (datetime.now(UTC) - oldest).total_seconds() > BEHIND_AFTER_S)
        state: dict[str, Any] = {"audit": "behind" if behind else "ok", "audit_waiting": waiting}
        if self.lost_total:
            state["audit_lost"] = self.lost_total
        return state

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.flush()

    def flush(self) -> None:
        with self._lock:
            rows, lost = list(self._rows), self.lost
            self._rows.clear()
            self.lost = 0
        note = [(datetime.now(UTC), None, "system", "-",
                 f"({lost:,} audit rows were let go while the database could not be written)", 0, 0.0)] if lost else []
        if not rows and not note:
            return
        try:
            self._write(rows + note)
        except (psycopg.OperationalError, PoolTimeout, Unreachable) as exc:  # the database is away: the rows wait
            if self.failing_since is None:
                self.failing_since = time.monotonic()
                log.warning("audit log cannot be written (%s); %d rows wait", exc, len(rows))
            self._put_back(rows, lost)
            return
        except psycopg.Error:  # one row the database refuses must not hold up the others
            log.exception("an audit batch was refused; writing its rows one by one")
            for row in rows + note:
                self._write_alone(row)
        self.failing_since = None

    def _put_back(self, rows: list[Row], lost: int) -> None:
        with self._lock:
            self._rows.extendleft(reversed(rows))
            over = max(0, len(self._rows) - self.max_waiting)
            for _ in range(over):
                self._rows.popleft()
            self.lost += lost + over
            self.lost_total += over

    def _write_alone(self, row: Row) -> None:
        try:
            self._write([row])
        except psycopg.Error:
            log.exception("audit row refused; stored in ASCII instead: %r", row)
            self._write([(*row[:4], ascii(row[4])[:MAX_PATH], *row[5:])])

    def _write(self, rows: list[Row]) -> None:
        with self.pool.connection() as conn, conn.cursor().copy(_COPY) as copy:
            for row in rows:
                copy.write_row(row)

    def _run(self) -> None:
        while not self._stop.wait(self.flush_s):
            try:
                self.flush()
            except Exception:  # never let the writer die: the next round tries again
                log.exception("audit flush failed")


def read(conn: psycopg.Connection, *, key: int | None = None, role: str | None = None, path: str | None = None,
         status: int | None = None, since: datetime | None = None, until: datetime | None = None,
         limit: int = 100, offset: int = 0) -> dict:
    """Audit rows, newest first, with the key's name; `path` is a prefix."""
    where = ("(%(key)s::bigint IS NULL OR a.key_id = %(key)s) AND (%(role)s::text IS NULL OR a.role = %(role)s) "
             "AND (%(path)s::text IS NULL OR starts_with(a.path, %(path)s)) "
             "AND (%(status)s::int IS NULL OR a.status = %(status)s) "
             "AND (%(since)s::timestamptz IS NULL OR a.at >= %(since)s) "
             "AND (%(until)s::timestamptz IS NULL OR a.at < %(until)s)")
    params = {"key": key, "role": role, "path": path, "status": status, "since": since, "until": until,
              "limit": limit, "offset": offset}
    rows = conn.execute(f"SELECT a.id, a.at, a.key_id, k.name, a.role, a.method, a.path, a.status, a.ms "
                        f"FROM audit_log a LEFT JOIN api_keys k ON k.id = a.key_id WHERE {where} "
                        f"ORDER BY a.at DESC, a.id DESC LIMIT %(limit)s OFFSET %(offset)s", params).fetchall()
    return {"rows": [{"id": r[0], "at": r[1].isoformat(), "key_id": r[2], "key_name": r[3], "role": r[4],
                      "method": r[5], "path": r[6], "status": r[7], "ms": r[8]} for r in rows],
            "limit": limit, "offset": offset}


class Audit:
    """ASGI middleware: one audit row per authenticated request, with the status sent."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = time.perf_counter()
        status = 500

        async def capture(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, capture)
        finally:
            principal = scope.get("state", {}).get("principal")
            audit: AuditLog | None = getattr(scope["app"].state, "audit", None)
            if principal is not None and audit is not None:
                audit.record(principal, scope["method"], scope["path"], status,
                             (time.perf_counter() - started) * 1000)
