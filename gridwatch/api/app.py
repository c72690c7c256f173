"""The FastAPI application factory: `uvicorn --factory gridwatch.api.app:create_app`."""

import asyncio
import gc
import logging
import time
from contextlib import asynccontextmanager
from datetime import UTC, datetime

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from starlette.concurrency import run_in_threadpool
from starlette.responses import HTMLResponse, RedirectResponse
from starlette.staticfiles import StaticFiles

from gridwatch import __version__
from gridwatch.alerts.deadlines import check_deadlines
from gridwatch.alerts.registry import Registry
from gridwatch.alerts.retention import purge
from gridwatch.api import access, errors
from gridwatch.api.audit import Audit, AuditLog
from gridwatch.api.auth import KeyStore
from gridwatch.api.ingest_queue import IngestQueue
from gridwatch.api.limits import RateLimits
from gridwatch.api.live import LiveFeed
from gridwatch.api.middleware import BodyLimit, PlainText
from gridwatch.api.reads import Reads, ReadYourWrites
from gridwatch.api.routers import (
    admin,
    alerts,
    cameras,
    grids,
    health,
    incidents,
    maps,
    ogc,
    patrols,
    stats,
    tiles,
    types,
    video,
)
from gridwatch.config import ApiSettings, DatabaseSettings, api_settings, database_settings
from gridwatch.db import database_url, open_pool, partitions
from gridwatch.db.changes import Changes
from gridwatch.geo.grid_index import LiveIndex
from gridwatch.maps.assets import VENDOR
from gridwatch.maps.assets import present as assets_present
from gridwatch.maps.base import APP, APP_DIR, STATIC, render

log = logging.getLogger("gridwatch")


async def _housekeeping(app: FastAPI, every_s: float) -> None:
    """The 1-3-1 check, in every worker (a database lock lets one run at a time), and once an
    hour the coming months' partitions and the retention purge."""

    def check() -> list[dict]:
        with app.state.pool.connection() as conn:
            return check_deadlines(conn, datetime.now(UTC))

    def retain() -> dict:
        with app.state.pool.connection() as conn:
            made = partitions.ensure(conn)  # the coming months, before retention drops the old
            return {"partitions_made": made, **purge(conn, datetime.now(UTC))}

    last_purge = 0.0
    while True:
        await asyncio.sleep(every_s)
        try:
            for escalation in await run_in_threadpool(check):
                log.info("incident %s: %s", escalation["incident_id"], escalation["note"])
            if time.monotonic() - last_purge > 3600:
                last_purge = time.monotonic()
                log.info("retention: %s", await run_in_threadpool(retain))
        except Exception as exc:  # the database may be down; try again next round
            log.warning("housekeeping failed: %s", exc)


async def _sample_wal(reads: Reads) -> None:
    """The primary's WAL position every second, so reads never come from a replica further
    behind than the set maximum (gridwatch.api.reads)."""
    while True:
        await asyncio.sleep(1.0)
        try:
            await run_in_threadpool(reads.sample)
        except Exception:  # the primary is down: reads go on from the replica as it is
            pass


def create_app(db: DatabaseSettings | None = None, api: ApiSettings | None = None) -> FastAPI:
    db = db or database_settings()
    api = api or api_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        url = database_url(db)
        replica = None
        if db.read_database_url:
            replica = open_pool(db.read_database_url, db, name="replica",
                                down_detail="the read replica cannot be reached; reads go to the primary")
        app.state.pool = open_pool(url, db, down_detail=(
            "the database cannot be reached, so nothing can be stored or changed now" +
            ("; maps, statistics and lists are still read from the read replica" if replica else "") +
            "; retry shortly"))
        app.state.db_gate = asyncio.Semaphore(db.pool_max)  # requests waiting for a connection: deps.db
        app.state.reads = Reads(app.state.pool, replica, db.read_max_lag_s) if replica else None
        app.state.replica_gate = asyncio.Semaphore(db.pool_max)  # the same for the replica: deps.read_db
        app.state.keys = KeyStore(app.state.pool, fallback=replica)
        app.state.audit = AuditLog(app.state.pool)
        app.state.audit.start()
        changes = Changes(url, poll_s=api.boundary_poll_s)
        changes.subscribe("keys", app.state.keys.forget_revoked)
        app.state.grid_index = LiveIndex(changes)
        app.state.registry = Registry.cached(changes)
        changes.start()
        app.state.live = LiveFeed(url)
        app.state.live.start()
        app.state.ingest_queue = IngestQueue(app.state.pool, app.state.grid_index, app.state.registry)
        app.state.ingest_queue.start()
        housekeeping = asyncio.create_task(_housekeeping(app, api.deadline_check_s), name="housekeeping")
        sampling = asyncio.create_task(_sample_wal(app.state.reads), name="wal") if replica else None
        # Everything loaded so far lives as long as the process: keep the collector from
        # walking it again, which otherwise shows as 10+ ms pauses in the tail latency.
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            housekeeping.cancel()
            if sampling is not None:
                sampling.cancel()
            await app.state.ingest_queue.stop()
            await app.state.live.stop()
            changes.stop()
            app.state.audit.stop()
            app.state.pool.close()
            if replica is not None:
                replica.close()

    app = FastAPI(title="gridwatch", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None,
                  description="Governance grids on a map; camera alerts routed to the teams that act on them. "
                              "Send `Authorization: Bearer <key>` on every call but /health and the docs.")
    errors.install(app)
    for router in (health.router, grids.router, cameras.router, alerts.router, incidents.router,
                   patrols.router, stats.router, types.router, maps.router, admin.router, ogc.router, tiles.router,
                   video.router):
        app.include_router(router)
    if not assets_present():
        log.warning("map assets are missing: pages will say so (install the wheel, or run `make assets`)")
    app.mount(STATIC, StaticFiles(directory=VENDOR, check_dir=False), name="map-assets")
    app.mount(APP, StaticFiles(directory=APP_DIR), name="map-app")

    @app.get("/", include_in_schema=False)
    async def front_door() -> RedirectResponse:
        """The address `make demo` prints: a browser lands in the command room (or signs in first)."""
        return RedirectResponse("/maps/", status_code=307)

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        """Swagger UI from our own copy, not a CDN: the docs open on a closed network too."""
        page = get_swagger_ui_html(openapi_url=app.openapi_url, title="gridwatch API",
                                   swagger_js_url=f"{STATIC}/swagger-ui/swagger-ui-bundle.js",
                                   swagger_css_url=f"{STATIC}/swagger-ui/swagger-ui.css",
                                   swagger_favicon_url=f"{STATIC}/swagger-ui/favicon-32x32.png",
                                   # no call to swagger.io; a key given to Authorize survives a reload
                                   swagger_ui_parameters={"validatorUrl": None, "persistAuthorization": True})
        if assets_present():
            return page
        body = page.body.decode().replace("<body>", "<body>" + render("_assets_missing.html"), 1)
        return HTMLResponse(body)

    app.state.access = dict(access.ACCESS)
    app.state.public_boundaries = api.ogc_public_boundaries
    app.state.public_url = api.public_url.rstrip("/") if api.public_url else None
    app.state.limits = RateLimits(api.rate_per_s, api.ingest_rate_per_s)
    described = app.openapi

    def openapi() -> dict:
        if app.openapi_schema is None:
            app.openapi_schema = access.describe(described(), app.state.access)
        return app.openapi_schema

    app.openapi = openapi
    # outermost last: the body limit, the audit row, the key and its rule, what a key wrote (reads.py), then
    # plain text
    # (after the key, so that what a signed-in caller tried is audited, escaped)
    app.add_middleware(PlainText)
    app.add_middleware(ReadYourWrites)  # inside the key check: it knows who wrote
    app.add_middleware(access.Guard)
    app.add_middleware(Audit)
    app.add_middleware(BodyLimit, max_bytes=api.max_body_bytes)
    return app
