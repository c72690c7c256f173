"""What a process caches (the grid index, cameras, teams) follows the database through one
LISTEN connection: triggers NOTIFY a channel when those tables change, and subscribers
are called for their channel, and every `poll_s` seconds in case a notification was lost
while the connection was down.
"""

import logging
import threading
from collections.abc import Callable

import psycopg

log = logging.getLogger(__name__)

Callback = Callable[[psycopg.Connection], None]


class Changes:
    def __init__(self, url: str, poll_s: float = 5.0) -> None:
        self.url = url
        self.poll_s = poll_s
        self._subscribers: dict[str, list[Callback]] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def subscribe(self, channel: str, callback: Callback) -> None:
        """Call `callback(conn)` when `channel` is notified, and on every poll."""
        self._subscribers.setdefault(channel, []).append(callback)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._watch, name="db-changes", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _call(self, conn: psycopg.Connection, channels) -> None:
        for channel in channels:
            for callback in self._subscribers.get(channel, ()):
                try:
                    callback(conn)
                except psycopg.Error:
                    raise
                except Exception:  # one subscriber's bug must not stop the others
                    log.exception("change subscriber for %s failed", channel)

    def _watch(self) -> None:
        backoff = 0.5
        while not self._stop.is_set():
            try:
                with psycopg.connect(self.url, autocommit=True, connect_timeout=5) as conn:
                    for channel in self._subscribers:
                        conn.execute(f"LISTEN {channel}")
                    self._call(conn, list(self._subscribers))
                    backoff = 0.5
                    while not self._stop.is_set():
                        notified = {n.channel for n in conn.notifies(timeout=self.poll_s, stop_after=1)}
                        self._call(conn, notified or list(self._subscribers))
            except psycopg.Error as exc:
                log.warning("change watcher: %s; retrying in %.1f s", exc, backoff)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 10.0)
