"""Cameras and teams as ingest sees them.

A server worker or the MQTT listener keeps them in memory (`Registry.cached`), dropped
when the tables change (triggers NOTIFY `cameras` and `teams`, see gridwatch.db.changes)
and, for teams, at least every TEAMS_TTL_S because GPS pings change positions without
notice. Without a cache (`Registry()`), every ingest reads them afresh.
"""

import threading
import time
from datetime import datetime

import psycopg

from gridwatch.alerts.cameras import ALL_CAMERAS_SQL, CAMERAS_SQL, Camera, cameras_from_rows
from gridwatch.alerts.dispatch import TeamBoard
from gridwatch.db.changes import Changes

TEAMS_TTL_S = 2.0


class Registry:
    def __init__(self, cache: bool = False) -> None:
        self.cache = cache
        self._cameras: dict[str, Camera] | None = None
        self._board_rows: list[tuple] | None = None
        self._board: TeamBoard | None = None
        self._board_at = 0.0
        self._lock = threading.Lock()

    @classmethod
    def cached(cls, changes: Changes) -> "Registry":
        registry = cls(cache=True)
        changes.subscribe("cameras", lambda _conn: registry.forget_cameras())
        changes.subscribe("teams", lambda _conn: registry.forget_teams())
        return registry

    def forget_cameras(self) -> None:
        self._cameras = None

    def forget_teams(self) -> None:
        self._board_rows = self._board = None

    def cameras(self, conn: psycopg.Connection, ids: list[str]) -> dict[str, Camera]:
        """The cameras named that exist (a camera registered a moment ago elsewhere is
        looked up, not taken for unknown)."""
        if not self.cache:
            return cameras_from_rows(conn.execute(CAMERAS_SQL, [ids]).fetchall())
        known = self._cameras
        if known is None:
            known = cameras_from_rows(conn.execute(ALL_CAMERAS_SQL).fetchall())
            self._cameras = known
        missing = [i for i in ids if i not in known]
        if missing:
            found = cameras_from_rows(conn.execute(CAMERAS_SQL, [missing]).fetchall())
            with self._lock:
                known.update(found)
        return {i: known[i] for i in ids if i in known}

    def board_rows(self) -> list[tuple] | None:
        """Cached team rows if fresh enough, else None: the caller reads BOARD_SQL itself
        (in its pipeline) and hands the rows to `board`."""
        if self.cache and self._board_rows is not None and time.monotonic() - self._board_at < TEAMS_TTL_S:
            return self._board_rows
        return None

    def board(self, rows: list[tuple], now: datetime) -> TeamBoard:
        """The board of these rows; built once per fresh read of the rows (a board a
        couple of seconds old judges 30-minute-old positions the same way)."""
        if not self.cache:
            return TeamBoard(rows, now)
        board = self._board
        if rows is not self._board_rows or board is None:
            board = TeamBoard(rows, now)
            self._board_rows, self._board, self._board_at = rows, board, time.monotonic()
        return board

