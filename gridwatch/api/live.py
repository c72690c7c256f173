"""The live feed behind GET /incidents/stream.

Each server worker holds one LISTEN connection; the database announces every new or
changed incident (a trigger on `incidents`), so clients see changes made by any worker
or process. Notifications are coalesced for a quarter second and enriched with one query,
then fanned out to this worker's subscribers.

Each event's id is the incident's change time (microseconds since the epoch). A browser
that lost the stream reconnects by itself and sends the last id it saw (Last-Event-ID):
it first gets what changed since then, so a command room never stays stale after a
dropped connection. A page opens the stream with the time its data was read
(?lastEventId=), so nothing falls between drawing the page and the stream starting.

Alerts outside every grid (the unassigned queue) are announced too, as `unassigned`
events without an id (again when a dispatcher places one in a grid or dismisses it: its
`queue_action` says so), and teams whose status or position changed, as `team` events (the
team as GeoJSON, as /patrols has it): they are shown as they come, not replayed.

A team key's stream holds its own team's events and the incidents it is or was sent to
(so it sees one reassigned away) or reported, nothing else.
"""

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import orjson
import psycopg
from starlette.requests import Request

from gridwatch.alerts.incidents import FEATURE_SQL
from gridwatch.alerts.patrols import features_query
from gridwatch.alerts.queries import FEATURE_SQL as ALERT_FEATURE_SQL

log = logging.getLogger(__name__)
COALESCE_S = 0.25
KEEPALIVE_S = 15.0
QUEUE_SIZE = 10_000
BULK_LIMIT = 500
# Commits land out of order by up to a request's duration: a resuming client is sent the
# changes from this long before its last event too (a repeat only redraws an incident).
RESUME_MARGIN = timedelta(seconds=5)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# The incidents named, and the latest BULK_LIMIT changed since %(since)s, as features with
# their change times and the teams that may hear of them (sent there, or reported it);
# oldest change first, so a client's last event id is its latest.
_CHANGED_SQL = f"""SELECT {FEATURE_SQL}::text, i.updated_at,
       array(SELECT DISTINCT a.team_id FROM assignments a WHERE a.incident_id = i.id) || i.reported_by_team
FROM incidents i
WHERE i.id = ANY(%(ids)s)
   OR i.id IN (SELECT id FROM incidents WHERE updated_at >= %(since)s ORDER BY updated_at DESC LIMIT {BULK_LIMIT})
ORDER BY i.updated_at, i.id"""
# The unassigned alerts named (the latest BULK_LIMIT of them), oldest first.
_UNASSIGNED_SQL = f"""SELECT {ALERT_FEATURE_SQL}::text FROM alerts a
WHERE a.id IN (SELECT unnest(%(ids)s::bigint[]) ORDER BY 1 DESC LIMIT {BULK_LIMIT}) ORDER BY a.id"""


@dataclass(frozen=True)
class _Event:
    """An SSE event and the teams whose streams may carry it (none: only the command rooms')."""

    text: str
    teams: tuple[str | None, ...] = ()


@dataclass(eq=False)
class _Subscriber:
    queue: asyncio.Queue
    team_id: str | None = None  # a team key's stream: only what concerns its team

    def wants(self, event: _Event) -> bool:
        return self.team_id is None or self.team_id in event.teams


class LiveFeed:
    def __init__(self, url: str) -> None:
        self.url = url
        self.subscribers: set[_Subscriber] = set()
        self._pending: set[int] = set()
        self._unassigned: set[int] = set()  # alerts outside every grid, not yet published
        self._teams: set[str] = set()  # teams whose status or position changed
        self._bulk_since: datetime | None = None  # a big batch changed incidents after this
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="live-feed")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass

    async def events(self, request: Request, last_event_id: str | None = None, team_id: str | None = None,
                     allowed: Callable[[], bool] = lambda: True) -> AsyncIterator[str]:
        """The SSE stream of one client (a team key's: `team_id`), until it disconnects or
        is no longer `allowed` (its key revoked); first what changed since `last_event_id`,
        if given."""
        queue: asyncio.Queue = asyncio.Queue(QUEUE_SIZE)
        subscriber = _Subscriber(queue, team_id)
        self.subscribers.add(subscriber)  # before the catch-up: nothing falls between the two
        try:
            yield "retry: 3000\n\n"
            since = _event_time(last_event_id)
            if since is not None:
                async with await psycopg.AsyncConnection.connect(self.url, autocommit=True) as conn:
                    cur = await conn.execute(_CHANGED_SQL, {"ids": [], "since": since - RESUME_MARGIN,
                                                            "now": datetime.now(UTC)})
                    for text, changed, teams in await cur.fetchall():
                        event = _incident_event(text, changed, teams)
                        if subscriber.wants(event):
                            yield event.text
            while not await request.is_disconnected():
                try:
                    event = await asyncio.wait_for(queue.get(), KEEPALIVE_S)
                except TimeoutError:
                    event = ": keep-alive\n\n"
                if not allowed():
                    return
                yield event
        finally:
            self.subscribers.discard(subscriber)

    async def _run(self) -> None:
        backoff = 0.5
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(self.url, autocommit=True) as listen, \
                        await psycopg.AsyncConnection.connect(self.url, autocommit=True) as query:
                    await listen.execute("LISTEN incidents")
                    await listen.execute("LISTEN unassigned")
                    await listen.execute("LISTEN team")
                    backoff = 0.5
                    while True:
                        async for note in listen.notifies(timeout=COALESCE_S):
                            if note.channel == "unassigned":
                                self._unassigned.add(int(note.payload))
                                continue
                            if note.channel == "team":
                                self._teams.add(note.payload)
                                continue
                            message = orjson.loads(note.payload)
                            if message["op"] == "bulk":
                                self._bulk_since = self._bulk_since or datetime.now(UTC) - timedelta(seconds=5)
                            else:
                                self._pending.add(message["id"])
                        if self._pending or self._bulk_since or self._unassigned or self._teams:
                            await self._publish(query)
            except asyncio.CancelledError:
                raise
            except psycopg.Error as exc:
                log.warning("live feed: %s; reconnecting in %.1f s", exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)

    async def _publish(self, conn: psycopg.AsyncConnection) -> None:
        ids, self._pending = sorted(self._pending), set()
        since, self._bulk_since = self._bulk_since, None
        unassigned, self._unassigned = list(self._unassigned), set()
        teams, self._teams = sorted(self._teams), set()
        if not self.subscribers:
            return
        now = datetime.now(UTC)
        events: list[_Event] = []
        if ids or since:
            # after a bulk change, the latest BULK_LIMIT changed incidents stand for all of them
            cur = await conn.execute(_CHANGED_SQL, {"ids": ids, "now": now,
                                                    "since": since or datetime.max.replace(tzinfo=UTC)})
            events += [_incident_event(text, changed, teams) for text, changed, teams in await cur.fetchall()]
        if unassigned:
            cur = await conn.execute(_UNASSIGNED_SQL, {"ids": unassigned})
            events += [_Event(f"event: unassigned\ndata: {_one_line(text)}\n\n") for (text,) in await cur.fetchall()]
        if teams:
            cur = await conn.execute(*features_query(now, team_ids=teams))
            events += [_Event(f"event: team\ndata: {orjson.dumps(f).decode()}\n\n", (f["id"],))
                       for f in orjson.loads((await cur.fetchone())[0])]
        for event in events:
            for subscriber in list(self.subscribers):
                if subscriber.queue.full() or not subscriber.wants(event):
                    continue  # a client this far behind reloads; the others must not wait for it
                subscriber.queue.put_nowait(event.text)


def _incident_event(text: str, changed: datetime, teams: list[str | None]) -> _Event:
    """One SSE event: the incident as a GeoJSON Feature, its change time as the id; the
    teams sent to it (or that reported it) may hear of it, a team merely suggested may not."""
    return _Event(f"id: {(changed - _EPOCH) // timedelta(microseconds=1)}\nevent: incident\n"
                  f"data: {_one_line(text)}\n\n", tuple(teams))


def _one_line(text: str) -> str:
    """JSON from PostgreSQL, compact and on one line (an SSE data line ends at a newline)."""
    return orjson.dumps(orjson.loads(text)).decode()


def _event_time(last_event_id: str | None) -> datetime | None:
    """The change time a reconnecting client last saw (None if absent or not ours)."""
    if not last_event_id or not (last_event_id.isascii() and last_event_id.isdigit()) or len(last_event_id) > 20:
        return None
    try:
        return _EPOCH + timedelta(microseconds=int(last_event_id))
    except OverflowError:
        return None
