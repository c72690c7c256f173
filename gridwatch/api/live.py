"""The live feed behind GET /incidents/stream.

Each server worker holds one LISTEN connection; the database announces every new or
changed incident (a trigger on `incidents`), so clients see changes made by any worker
or process. Notifications are coalesced for a quarter second and enriched with one query,
then fanned out to this worker's subscribers.
"""

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import orjson
import psycopg
from starlette.requests import Request

from gridwatch.alerts.incidents import FEATURE_SQL

log = logging.getLogger(__name__)
COALESCE_S = 0.25
KEEPALIVE_S = 15.0
QUEUE_SIZE = 10_000
BULK_LIMIT = 500


class LiveFeed:
    def __init__(self, url: str) -> None:
        self.url = url
        self.subscribers: set[asyncio.Queue] = set()
        self._pending: set[int] = set()
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

    async def events(self, request: Request) -> AsyncIterator[str]:
        """The SSE stream of one client, until it disconnects."""
        queue: asyncio.Queue = asyncio.Queue(QUEUE_SIZE)
        self.subscribers.add(queue)
        try:
            yield "retry: 3000\n\n"
            while not await request.is_disconnected():
                try:
                    feature = await asyncio.wait_for(queue.get(), KEEPALIVE_S)
                except TimeoutError:
                    yield ": keep-alive\n\n"
                    continue
                yield f"id: {feature['id']}\nevent: incident\ndata: {orjson.dumps(feature).decode()}\n\n"
        finally:
            self.subscribers.discard(queue)

    async def _run(self) -> None:
        backoff = 0.5
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(self.url, autocommit=True) as listen, \
                        await psycopg.AsyncConnection.connect(self.url, autocommit=True) as query:
                    await listen.execute("LISTEN incidents")
                    backoff = 0.5
                    while True:
                        async for note in listen.notifies(timeout=COALESCE_S):
                            message = orjson.loads(note.payload)
                            if message["op"] == "bulk":
                                self._bulk_since = self._bulk_since or datetime.now(UTC) - timedelta(seconds=5)
                            else:
                                self._pending.add(message["id"])
                        if self._pending or self._bulk_since:
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
        if not self.subscribers:
            return
        # after a bulk change, the latest BULK_LIMIT changed incidents stand for all of them
        cur = await conn.execute(f"SELECT {FEATURE_SQL}::text FROM incidents i WHERE i.id = ANY(%(ids)s) "
                                 f"OR i.id IN (SELECT id FROM incidents WHERE updated_at >= %(since)s "
                                 f"ORDER BY updated_at DESC LIMIT {BULK_LIMIT})",
                                 {"ids": ids, "now": datetime.now(UTC), "since": since or datetime.max.replace(
                                     tzinfo=UTC)})
        for (text,) in await cur.fetchall():
            feature = orjson.loads(text)
            for queue in list(self.subscribers):
                if queue.full():
                    continue  # a client this far behind reloads; the others must not wait for it
                queue.put_nowait(feature)
