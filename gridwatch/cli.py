"""The `gridwatch` command line. Exit codes: 0 ok, 2 bad input, 1 other failure."""

import json
from datetime import UTC, datetime
from functools import wraps
from pathlib import Path
from typing import Annotated

import httpx
import psycopg
import pydantic
import typer

from gridwatch import __version__
from gridwatch.errors import GridwatchError

app = typer.Typer(no_args_is_help=True, pretty_exceptions_enable=False)


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"gridwatch {__version__}")
        raise typer.Exit()


@app.callback()
def main(_version: Annotated[bool, typer.Option("--version", callback=_show_version, is_eager=True,
                                                help="Say which version this is, and exit")] = False) -> None:
    """gridwatch: governance grids, camera alerts and the teams that act on them."""
db_app = typer.Typer(help="The database: gridwatch's embedded PostGIS, or GRIDWATCH_DATABASE_URL.",
                     no_args_is_help=True)
app.add_typer(db_app, name="db")


def say(message: str) -> None:
    """Progress for long commands, on stderr so stdout stays machine-readable."""
    typer.echo(message, err=True)


def command(typer_app: typer.Typer, *args, **kwargs):
    """Register a command whose domain errors end as one line and the right exit code."""

    def decorate(fn):
        @wraps(fn)
        def run(*a, **kw):
            try:
                return fn(*a, **kw)
            except GridwatchError as exc:
                typer.echo(f"error: {exc.detail}", err=True)
                raise typer.Exit(exc.exit_code) from None
            except httpx.HTTPError as exc:
                where = getattr(getattr(exc, "request", None), "url", "the server")
                typer.echo(f"error: cannot reach {where}: {exc} (is the server running? check --url)", err=True)
                raise typer.Exit(1) from None
            except pydantic.ValidationError as exc:  # a setting or option that cannot be used
                what = "; ".join((f"{'.'.join(map(str, e['loc']))}: " if e["loc"] else "") +
                                 e["msg"].removeprefix("Value error, ") for e in exc.errors())
                typer.echo(f"error: {what}", err=True)
                raise typer.Exit(2) from None
            except psycopg.OperationalError as exc:
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                typer.echo(f"error: database unavailable: {first} (is it running? `gridwatch db start`)", err=True)
                raise typer.Exit(1) from None

        # the listing's one line: the docstring's first sentence, unwrapped
        first = " ".join((fn.__doc__ or "").split()).split(". ")[0].rstrip(".")
        return typer_app.command(*args, short_help=first, **kwargs)(run)

    return decorate


# -- db ----------------------------------------------------------------------------------


@command(db_app, "start")
def db_start() -> None:
    """Start gridwatch's own PostGIS cluster in GRIDWATCH_HOME (initialised on first use)."""
    from gridwatch.config import database_settings
    from gridwatch.db import embedded_cluster

    if database_settings().database_url:
        say("GRIDWATCH_DATABASE_URL is set: using that server, nothing to start")
        return
    url = embedded_cluster(progress=say).start()
    say(f"PostgreSQL is running: {url}")


@command(db_app, "stop")
def db_stop() -> None:
    """Stop the embedded cluster (fast shutdown: open transactions roll back)."""
    from gridwatch.db import embedded_cluster

    if not embedded_cluster(progress=say).stop():
        say("the embedded PostgreSQL was not running")


@command(db_app, "status")
def db_status() -> None:
    """Print where the database is and whether it runs, as JSON."""
    from gridwatch.config import database_settings
    from gridwatch.db import embedded_cluster

    settings = database_settings()
    if settings.database_url:
        status = {"external": True, "url": settings.database_url}
    else:
        status = {"external": False, **embedded_cluster().status()}
    typer.echo(json.dumps(status, indent=2))


@command(db_app, "url")
def db_url(replica: Annotated[bool, typer.Option("--replica", help="the read replica's URL instead "
                                                                 "(`gridwatch db replica start`)")] = False) -> None:
    """Print the database URL (for psql, QGIS or GDAL)."""
    from gridwatch.db import database_url, embedded_replica

    typer.echo(_replica_of_embedded(embedded_replica).url() if replica else database_url())


@command(db_app, "migrate")
def db_migrate() -> None:
    """Apply the SQL migrations not yet applied (each once, recorded in schema_migrations)."""
    from gridwatch.db import connect
    from gridwatch.db.migrate import migrate

    with connect() as conn:
        applied = migrate(conn, progress=say)
    say(f"{len(applied)} migration(s) applied" if applied else "database is up to date")


replica_app = typer.Typer(help="A streaming read replica of the embedded cluster, for tests and demos: serve with "
                               "GRIDWATCH_READ_DATABASE_URL set to its URL.", no_args_is_help=True)
db_app.add_typer(replica_app, name="replica")


def _replica_of_embedded(make):
    """The embedded cluster's replica; with GRIDWATCH_DATABASE_URL there is none to manage."""
    from gridwatch.config import database_settings
    from gridwatch.errors import BadInput

    if database_settings().database_url:
        raise BadInput("GRIDWATCH_DATABASE_URL is set: `gridwatch db replica` copies gridwatch's embedded cluster "
                       "only; make a replica of that server with its own tools and set GRIDWATCH_READ_DATABASE_URL")
    return make(progress=say)


@command(replica_app, "start")
def replica_start(fresh: Annotated[bool, typer.Option("--fresh", help="discard the copy `stop` kept and copy "
                                                                      "the cluster again")] = False) -> None:
    """Copy the running embedded cluster (pg_basebackup -R) and run the copy as a streaming replica on
    another loopback port; prints its URL. A stopped replica is started again from its copy, which
    catches up by streaming."""
    from gridwatch.db import embedded_replica

    url = _replica_of_embedded(embedded_replica).start(fresh=fresh)
    say(f"the read replica is streaming; serve with GRIDWATCH_READ_DATABASE_URL='{url}'")
    typer.echo(url)


@command(replica_app, "stop")
def replica_stop() -> None:
    """Stop the read replica (fast shutdown); its copy is kept for the next `start`."""
    from gridwatch.db import embedded_replica

    if not _replica_of_embedded(embedded_replica).stop():
        say("the read replica was not running")


@command(replica_app, "status")
def replica_status() -> None:
    """Print where the read replica is, whether it runs and whether it streams from the primary, as JSON."""
    from gridwatch.db import embedded_replica

    typer.echo(json.dumps(_replica_of_embedded(embedded_replica).status(), indent=2))


# -- grids --------------------------------------------------------------------------------

grids_app = typer.Typer(help="Boundaries: import and export townships, villages and grids.", no_args_is_help=True)
app.add_typer(grids_app, name="grids")


@command(grids_app, "import")
def grids_import(
    path: Annotated[Path, typer.Argument(help="GeoJSON, GeoPackage, zipped Shapefile, or a folder of them")],
    crs: Annotated[str | None, typer.Option(help="Source CRS when the file has none or a wrong one, "
                                                 "e.g. EPSG:4490")] = None,
    gcj02: Annotated[bool, typer.Option("--gcj02", help="Coordinates are GCJ-02 (most Chinese web maps): "
                                                        "convert to WGS 84")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Check and report, write nothing")] = False,
    force: Annotated[bool, typer.Option("--force", help="Store units that move more than 5 km from where they "
                                                        "are, or lie outside the region their codes name "
                                                        "(refused otherwise)")] = False,
) -> None:
    """Check a boundary file (CRS, rings, overlaps, gaps, codes, hierarchy) and, if it has no
    errors, replace the stored levels it holds in one transaction. Features say their level
    ('township', 'village', 'grid') in a 'level' property, or by their file or layer name."""
    from gridwatch.db import connect
    from gridwatch.geo.boundaries import import_boundaries

    with connect() as conn:
        report = import_boundaries(conn, path, crs=crs, gcj02=gcj02, dry_run=dry_run, force=force, progress=say)
    for problem in report.warnings:
        typer.echo(f"warning: {problem}", err=True)
    for problem in report.errors:
        typer.echo(f"error: {problem}", err=True)
    changes = "; ".join(f"{level}s: {c['added']} added, {c['removed']} removed, {c['reshaped']} reshaped, "
                        f"{c['renamed']} renamed, {c['moved_to_another_parent']} moved to another parent"
                        for level, c in report.changes.items())
    if not report.ok:
        typer.echo(f"error: import refused, nothing changed: {len(report.errors)} error(s) in {path}; "
                   f"fix them and import again", err=True)
        raise typer.Exit(2)
    if dry_run:
        say(f"dry run: no errors, {len(report.warnings)} warning(s); would change {changes}; nothing written")
    else:
        say(f"imported {path}: boundary version {report.version} ({changes})")


@command(grids_app, "export")
def grids_export(path: Annotated[Path, typer.Argument(help="Output file: .geojson or .gpkg")]) -> None:
    """Write the stored townships, villages and grids to one file (GeoJSON with a 'level'
    property, or a GeoPackage with one layer per level) that `grids import` takes back."""
    from gridwatch.db import connect
    from gridwatch.geo.boundaries import export_boundaries

    with connect() as conn:
        n = export_boundaries(conn, path)
    say(f"wrote {n} features to {path}")


# -- keys ---------------------------------------------------------------------------------

keys_app = typer.Typer(help="API keys: create, list, revoke. Keys are stored hashed and shown once.",
                       no_args_is_help=True)
app.add_typer(keys_app, name="keys")


@command(keys_app, "create")
def keys_create(
    role: Annotated[str, typer.Option(help="viewer, operator, dispatcher, admin, ingest (cameras), video (a host "
                                           "of the video fleet), or team (one team's phone, with --team)")],
    name: Annotated[str, typer.Option(help="who or what holds the key, e.g. 'command room'")],
    team: Annotated[str | None, typer.Option(help="team keys: the team's id (GET /patrols lists them)")] = None,
    expires: Annotated[str | None, typer.Option(help="refuse the key after this: a time (2027-03-31, "
                                                     "2027-03-31T18:00+08:00) or a span from now (12h, 90d)")] = None,
) -> None:
    """Create a key and print it once on stdout (only its hash is stored)."""
    from gridwatch.api.auth import create_key, expiry
    from gridwatch.db import connect

    until = expiry(expires) if expires else None
    with connect() as conn:
        key_id, key = create_key(conn, role, name, team, until)
    bound = f", team {team}" if team else ""
    bound += f", expires {until.isoformat()}" if until else ""
    say(f"key {key_id} ({role}{bound}, {name!r}); store it now, it cannot be shown again:")
    typer.echo(key)


@command(keys_app, "list")
def keys_list() -> None:
    """List keys (id, name, role, team, first characters, expiry, revoked or not) as JSON."""
    from gridwatch.api.auth import list_keys
    from gridwatch.db import connect

    with connect() as conn:
        typer.echo(json.dumps(list_keys(conn), indent=2))


@command(keys_app, "revoke")
def keys_revoke(key_id: Annotated[int, typer.Argument(help="the id `keys list` shows")]) -> None:
    """Revoke a key: every server stops accepting it at once, and its open live streams end."""
    from gridwatch.api.auth import revoke_key
    from gridwatch.db import connect

    with connect() as conn:
        revoke_key(conn, key_id)
    say(f"key {key_id} revoked")


# -- serve --------------------------------------------------------------------------------


@command(app, "serve")
def serve(
    host: Annotated[str | None, typer.Option(help="address to listen on [GRIDWATCH_HOST, 127.0.0.1]")] = None,
    port: Annotated[int | None, typer.Option(help="port [GRIDWATCH_PORT, 8000]")] = None,
    workers: Annotated[int | None, typer.Option(help="worker processes [GRIDWATCH_WORKERS, 1]")] = None,
    tls_cert: Annotated[Path | None, typer.Option(help="HTTPS: the certificate, PEM [GRIDWATCH_TLS_CERT]")] = None,
    tls_key: Annotated[Path | None, typer.Option(help="HTTPS: its private key, PEM [GRIDWATCH_TLS_KEY]")] = None,
    forwarded_allow_ips: Annotated[str | None, typer.Option(
        help="behind a proxy that ends HTTPS: the proxy addresses whose X-Forwarded-Proto is believed "
             "[GRIDWATCH_FORWARDED_ALLOW_IPS, 127.0.0.1]")] = None,
) -> None:
    """Serve the API and the maps until Ctrl-C (the database must be running and migrated);
    over HTTPS with a certificate and key (phones give /field their position only so)."""
    import logging

    import uvicorn

    from gridwatch.config import api_settings
    from gridwatch.db import connect
    from gridwatch.db.migrate import pending

    settings = api_settings()
    if tls_cert or tls_key:
        # checked as the settings check the variables: both files, readable
        settings = settings.model_validate({**settings.model_dump(), "tls_cert": tls_cert, "tls_key": tls_key})
    with connect() as conn:
        if pending(conn):
            from gridwatch.errors import BadInput

            raise BadInput("the database needs migrations: run `gridwatch db migrate`")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    uvicorn.run("gridwatch.api.app:create_app", factory=True, host=host or settings.host,
                port=port or settings.port, workers=workers or settings.workers, log_level="info",
                access_log=False, timeout_graceful_shutdown=5,
                ssl_certfile=settings.tls_cert and str(settings.tls_cert),
                ssl_keyfile=settings.tls_key and str(settings.tls_key), proxy_headers=True,
                forwarded_allow_ips=forwarded_allow_ips or settings.forwarded_allow_ips)


# -- demo ---------------------------------------------------------------------------------

demo_app = typer.Typer(help="The synthetic demo county.", no_args_is_help=True)
app.add_typer(demo_app, name="demo")


@command(demo_app, "load")
def demo_load(days: Annotated[int, typer.Option(min=0, max=365, help="days of alert history to replay")] = 30) -> None:
    """Load what is missing of the demo county (boundaries, ~500 cameras, patrol teams,
    DAYS days of alerts and incidents replayed through the pipeline) and print the demo
    admin key (and a team key for a patrol's phone). Run again, it keeps what is there."""
    from gridwatch import demo
    from gridwatch.config import database_settings
    from gridwatch.db import connect
    from gridwatch.db.migrate import migrate

    home = database_settings().home.resolve()
    with connect() as conn:
        migrate(conn, progress=say)
        key = demo.load(conn, home, days=days, progress=say)
        phone = demo.team_key(conn, home, progress=say)
    say(f"a patrol's phone: sign in at /field with the {demo.DEMO_TEAM} team key {phone} "
        f"(kept in {home / 'demo-team.key'})")
    say("demo admin API key (send as `Authorization: Bearer <key>`):")
    typer.echo(key)


# -- sla ----------------------------------------------------------------------------------

sla_app = typer.Typer(help="The 1-3-1 deadlines: contact 1 h, resolve 3 days, feedback 1 day.", no_args_is_help=True)
app.add_typer(sla_app, name="sla")


@command(sla_app, "check")
def sla_check() -> None:
    """Mark missed deadlines and escalate them (grid → township → county); prints each
    escalation. The server does this every minute too; running both is safe."""
    from datetime import UTC, datetime

    from gridwatch.alerts.deadlines import check_deadlines
    from gridwatch.db import connect

    with connect() as conn:
        escalated = check_deadlines(conn, datetime.now(UTC))
    for e in escalated:
        typer.echo(f"incident {e['incident_id']}: {e['note']}")
    say(f"{len(escalated)} escalation(s)")


# -- mqtt ---------------------------------------------------------------------------------

mqtt_app = typer.Typer(help="Camera events over MQTT (Frigate's frigate/events).", no_args_is_help=True)
app.add_typer(mqtt_app, name="mqtt")


@command(mqtt_app, "listen")
def mqtt_listen(
    broker: Annotated[str, typer.Option(help="HOST:PORT of the MQTT broker")] = "127.0.0.1:1883",
    topic: Annotated[str, typer.Option(help="topic to subscribe to (QoS 1)")] = "frigate/events",
    client_id: Annotated[str | None, typer.Option(help="MQTT client id (the broker keeps its session)")] = None,
) -> None:
    """Feed Frigate events into the alert pipeline until Ctrl-C: `new` creates an alert,
    `update`/`end` update it. Bad messages are logged and skipped; broker restarts are
    survived (reconnect with a persistent session)."""
    import logging

    from gridwatch.alerts.mqtt import Listener
    from gridwatch.alerts.registry import Registry
    from gridwatch.config import api_settings
    from gridwatch.db import database_url
    from gridwatch.db.changes import Changes
    from gridwatch.geo.grid_index import LiveIndex

    host, _, port = broker.rpartition(":")
    if not host or not port.isdigit():
        from gridwatch.errors import BadInput

        raise BadInput(f"--broker {broker!r}: give HOST:PORT, e.g. 127.0.0.1:1883")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    url = database_url()
    changes = Changes(url, poll_s=api_settings().boundary_poll_s)
    index, registry = LiveIndex(changes), Registry.cached(changes)
    changes.start()
    try:
        Listener(host, int(port), topic, url, index, registry, client_id=client_id).run()
    except KeyboardInterrupt:
        say("stopped")


# -- alerts -------------------------------------------------------------------------------

alerts_app = typer.Typer(help="Camera alerts.", no_args_is_help=True)
app.add_typer(alerts_app, name="alerts")


@command(alerts_app, "simulate")
def alerts_simulate(
    rate: Annotated[float, typer.Option(min=0.1, max=5000, help="alerts per second")],
    duration: Annotated[float, typer.Option(min=1, help="seconds to run")],
    url: Annotated[str, typer.Option(help="the gridwatch server")] = "http://127.0.0.1:8000",
    key: Annotated[str | None, typer.Option(help="API key (operator or above) [GRIDWATCH_KEY, else the demo "
                                                 "admin key]", envvar="GRIDWATCH_KEY")] = None,
    seed: Annotated[int, typer.Option(help="random seed")] = 7,
) -> None:
    """Post a realistic feed to a running server: hot spots, repeats of one happening,
    cameras resending an event, and the odd bad message (refused with 422, on purpose)."""
    import asyncio

    from gridwatch.alerts.simulate import simulate
    from gridwatch.config import database_settings
    from gridwatch.errors import BadInput

    if key is None:
        key_file = database_settings().home / "demo-admin.key"
        if not key_file.exists():
            raise BadInput("no key: pass --key (or GRIDWATCH_KEY), or run `gridwatch demo load` first")
        key = key_file.read_text().strip()
    try:
        stats = asyncio.run(simulate(url, key, rate, duration, seed=seed, progress=say))
    except RuntimeError as exc:
        raise BadInput(f"cannot simulate against {url}: {exc}") from None
    typer.echo(stats.summary())


# -- map ----------------------------------------------------------------------------------

map_app = typer.Typer(help="Map pages written to files that open with no server and no network.",
                      no_args_is_help=True)
app.add_typer(map_app, name="map")


@command(map_app, "heatmap")
def map_heatmap(
    out: Annotated[Path, typer.Option(help="the HTML file to write")],
    since: Annotated[str | None, typer.Option(help="from (ISO 8601 with zone, or a date) [30 days ago]")] = None,
    until: Annotated[str | None, typer.Option(help="to, exclusive (ISO 8601 with zone, or a date) [now]")] = None,
    type: Annotated[str | None, typer.Option(help="alert type")] = None,
    township: Annotated[str | None, typer.Option(help="township code")] = None,
) -> None:
    """Write the heat map page (alert heat, incidents per grid, Gi* hot spots) to one HTML
    file with every script, style and image inside it."""
    from datetime import UTC, datetime

    from gridwatch.config import api_settings
    from gridwatch.db import connect
    from gridwatch.geo.grid_index import GridIndex
    from gridwatch.maps import form
    from gridwatch.maps.assets import present
    from gridwatch.maps.base import inline_assets
    from gridwatch.maps.pages import Base, heatmap_page

    if not present():
        raise GridwatchError("the map assets are missing: install gridwatch from its wheel, or run `make assets` "
                             "in a checkout")
    settings = api_settings()
    with connect() as conn:
        say("building the heat map")
        window = form.window(conn, since, until, type, township, settings.timezone, datetime.now(UTC))
        types, townships = form.choices(conn)
        page = heatmap_page(conn, GridIndex.load(conn), window, datetime.now(UTC),
                            Base(settings.tile_url, settings.tile_attribution, live=False), types, townships)
    out.write_text(inline_assets(page))
    say(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB)")


# -- audit --------------------------------------------------------------------------------


@command(app, "audit")
def audit_show(
    key: Annotated[int | None, typer.Option(help="a key's id (`keys list`)")] = None,
    role: Annotated[str | None, typer.Option(help="viewer, operator, dispatcher, admin, ingest, team or "
                                                           "video")] = None,
    path: Annotated[str | None, typer.Option(help="paths starting with this, e.g. /incidents")] = None,
    status: Annotated[int | None, typer.Option(help="the answer's HTTP status, e.g. 403")] = None,
    since: Annotated[datetime | None, typer.Option(help="from (ISO 8601; UTC if no zone)")] = None,
    limit: Annotated[int, typer.Option(min=1, max=100_000, help="at most this many rows")] = 100,
) -> None:
    """Print the audit log, newest first, one JSON object per line: who (key and role) called
    what (method and path; never the body or query), when, and the answer's status."""
    from gridwatch.api.audit import read
    from gridwatch.db import connect

    if since is not None and since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    with connect() as conn:
        for row in read(conn, key=key, role=role, path=path, status=status, since=since, limit=limit)["rows"]:
            typer.echo(json.dumps(row, ensure_ascii=False))


# -- retention ----------------------------------------------------------------------------

retention_app = typer.Typer(help="Keep alerts, snapshots, GPS pings and the audit log only as long as configured.",
                            no_args_is_help=True)
app.add_typer(retention_app, name="retention")


@command(retention_app, "purge")
def retention_purge() -> None:
    """Delete alerts (with their snapshots), team positions and audit rows older than
    GRIDWATCH_RETENTION_ALERTS_DAYS, _POSITIONS_HOURS and _AUDIT_DAYS: months wholly past
    it are dropped whole, the rest row by row. The server runs this every hour too."""
    from datetime import UTC, datetime

    from gridwatch.alerts.retention import purge
    from gridwatch.db import connect

    with connect() as conn:
        done = purge(conn, datetime.now(UTC))
    say(", ".join(f"{n} {what.replace('_', ' ')}" for what, n in done.items()) + " deleted")


# -- video --------------------------------------------------------------------------------

video_app = typer.Typer(help="Motion detection on camera video (OpenCV).", no_args_is_help=True)
app.add_typer(video_app, name="video")


@command(video_app, "detect")
def video_detect(
    source: Annotated[str, typer.Argument(help="a video file, or an rtsp:// or http:// stream")],
    camera: Annotated[str, typer.Option(help="the camera's id (its zones, masks and homography are used)")],
    post: Annotated[str | None, typer.Option(help="send alerts to this gridwatch server (with --key) instead of "
                                                  "writing to the database")] = None,
    key: Annotated[str | None, typer.Option(help="ingest key for --post", envvar="GRIDWATCH_KEY")] = None,
    start: Annotated[str | None, typer.Option(help="when a file's first frame was taken (ISO 8601 with zone) "
                                                   "[now]")] = None,
    snapshots: Annotated[Path | None, typer.Option(help="also write each snapshot JPEG to this folder")] = None,
) -> None:
    """Watch a camera's video for motion that is worth an alert: one alert per moving object
    per cooldown, placed through the camera's homography, typed by its zone, with a snapshot
    whose privacy masks are blacked out. A dropped stream is reopened with growing waits."""
    import logging
    from datetime import datetime

    from gridwatch.errors import BadInput
    from gridwatch.video.detect import DatabaseSink, HttpSink, detect

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    when = None
    if start:
        try:
            when = datetime.fromisoformat(start)
        except ValueError:
            raise BadInput(f"--start {start!r} is not an ISO 8601 time") from None
        if when.tzinfo is None:
            raise BadInput("--start needs a timezone, e.g. 2026-11-26T08:00:00+08:00")
    if post and not key:
        raise BadInput("--post needs an ingest key: --key or GRIDWATCH_KEY")
    if snapshots:
        snapshots.mkdir(parents=True, exist_ok=True)

    def run(sink) -> list[dict]:
        if snapshots:
            emit = sink.emit

            def keep(alert, jpeg):
                result = emit(alert, jpeg)
                (snapshots / f"alert-{result['alert_id']}.jpg").write_bytes(jpeg)
                return result

            sink.emit = keep
        return detect(source, camera, sink, start=when, progress=say)

    if post:
        raised = run(HttpSink(post, key))
    else:
        from gridwatch.db import connect

        with connect() as conn:
            raised = run(DatabaseSink(conn))
    for alert in raised:
        typer.echo(json.dumps(alert))
    say(f"{len(raised)} alert(s)")


@command(video_app, "fleet")
def video_fleet(
    server: Annotated[str, typer.Option(help="the gridwatch server, e.g. https://gridwatch.county.example")],
    key: Annotated[str, typer.Option(help="a `video` key (gridwatch keys create --role video)",
                                     envvar="GRIDWATCH_KEY")],
    slots: Annotated[int, typer.Option(min=1, max=256, help="how many streams this host runs at most (about six "
                                                            "25 frames/s 720p streams per core: bench/fleet.py)")] = 4,
    name: Annotated[str | None, typer.Option(help="this host's name in the fleet, one per running fleet "
                                                           "process [the machine's host name]")] = None,
    files: Annotated[Path | None, typer.Option(help="the folder file:// streams may be read from (looped clips, "
                                                    "for tests and demos); without it this host opens no local "
                                                    "file", exists=True, file_okay=False)] = None,
) -> None:
    """Run detectors for the server's camera streams on this host, sharing them with the other
    hosts of the fleet. Claims up to --slots streams (leases renewed by heartbeat), runs one
    detector process per stream, posts their alerts and snapshots under the lease, reopens
    dropped streams, and gives the leases back on Ctrl-C. A host that stops heartbeating loses
    its streams to the others once its leases expire."""
    import re
    import signal
    import socket

    from gridwatch.errors import BadInput
    from gridwatch.video.fleet import Fleet

    name = name or socket.gethostname()
    if not re.fullmatch(r"[A-Za-z0-9_.:-]{1,64}", name):
        raise BadInput(f"--name {name!r}: up to 64 letters, digits and _ . : -")
    if not server.startswith(("http://", "https://")):
        raise BadInput(f"--server {server!r}: give the server's http:// or https:// address")
    stopping = False

    def stop(_signum, _frame) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    say(f"fleet host {name}: up to {slots} stream(s) from {server}; Ctrl-C gives them back")
    Fleet(server, key, slots, name, files, progress=say).run(lambda: stopping)
    say(f"fleet host {name}: stopped")
