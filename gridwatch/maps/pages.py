"""The map pages the command room reads at a glance: folium draws the maps; each page's
function gathers its data from the same domain functions as the API and hands it to the
page's template (templates/), whose scripts (static/) draw what is live."""

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import folium
import orjson
import psycopg
import shapely
from folium.plugins import HeatMap, HeatMapWithTime

from gridwatch.alerts.cameras import camera_collection
from gridwatch.alerts.grouping import OPEN
from gridwatch.alerts.incidents import incident_collection
from gridwatch.alerts.patrols import team_feature, team_features
from gridwatch.alerts.queries import alert_collection
from gridwatch.api.auth import Principal
from gridwatch.config import api_settings
from gridwatch.errors import BadInput
from gridwatch.geo.boundaries import feature, feature_collection
from gridwatch.geo.grid_index import GridIndex
from gridwatch.maps.base import add_outlines, esc, layer, local_time, new_map, render, render_page
from gridwatch.maps.vocab import (
    DEADLINE_STATES,
    HEAT_GRADIENT,
    HOTSPOT_BINS,
    INCIDENT_RAMP,
    OPEN_RAMP,
    SHOWN_WHEN_OVERDUE,
    TEAM_COLOURS,
    UNASSIGNED_COLOUR,
    ramp_colour,
    vocab,
)
from gridwatch.stats.counts import Window, daily_heat_cells, grid_counts, heat_cells
from gridwatch.stats.hotspots import hotspots
from gridwatch.video.leases import FleetSettings, fleet

# The time-lapse draws a frame a day: at most this many.
FILM_DAYS = timedelta(days=92)
# While on duty with /field open, a phone sends its position this often (for dispatch only).
PING_EVERY_S = 30
# Alerts outside every grid this recent are shown in the command room (the dispatcher's queue).
UNASSIGNED_WINDOW = timedelta(hours=24)


@dataclass(frozen=True)
class Base:
    """What a page needs from the settings."""

    tile_url: str | None = None
    attribution: str = ""
    live: bool = True  # served: follow /incidents/stream; saved to a file: no
    # the county's clock: times on the pages are local
    timezone: str = field(default_factory=lambda: api_settings().timezone)


def _collection(data: bytes) -> list[dict]:
    return orjson.loads(data)["features"]


def _boundaries(conn: psycopg.Connection) -> tuple[list[dict], list[dict], list[dict]]:
    townships = _collection(feature_collection(conn, "township", limit=10_000))
    villages = _collection(feature_collection(conn, "village", limit=10_000))
    grids = _collection(feature_collection(conn, "grid", limit=10_000))
    return townships, villages, grids


def _names(features: list[dict]) -> dict[str, str]:
    return {f["properties"]["code"]: f["properties"]["name"] for f in features}


def _grid_features(grids: list[dict], villages: dict[str, str], townships: dict[str, str], extra=None,
                   escape: bool = True) -> dict:
    """Grids with display-ready properties (and per-code extras); escaped for folium's
    tooltips, which put them in HTML as they are, unless our own scripts show them."""
    text = esc if escape else (lambda v: v)
    out = []
    for f in grids:
        p = f["properties"]
        props = {"code": p["code"], "name": text(p["name"]), "village": text(villages.get(p["village_code"], "")),
                 "township": text(townships.get(p["township_code"], ""))}
        props.update((extra or {}).get(p["code"], {}))
        out.append({"type": "Feature", "geometry": f["geometry"], "properties": props})
    return {"type": "FeatureCollection", "features": out}


def _bounds(features: list[dict]) -> tuple[float, float, float, float]:
    return tuple(float(v) for v in shapely.total_bounds([shapely.geometry.shape(f["geometry"]) for f in features]))


def _base_map(base: Base, fit: list[dict], townships: list[dict], villages: list[dict]):
    """A map fitted to `fit`, with the base map (outlines when there are no tiles) and the
    layers the page's control lists so far."""
    m = new_map(_bounds(fit), base.tile_url, base.attribution)
    layers = [] if base.tile_url else [layer(add_outlines(m, townships, villages))]
    return m, layers


def command_room(conn: psycopg.Connection, now: datetime, base: Base, me: Principal | None = None) -> str:
    """/maps/: grids shaded by open incidents, open incidents (and resolved ones whose
    feedback is overdue) by deadline state, cameras with their view sectors, teams by
    status, the unassigned queue; live. With `me` (the signed-in key), the side panel
    offers the actions its role may take."""
    townships, villages, grids = _boundaries(conn)
    m, layers = _base_map(base, townships or grids, townships, villages)
    grid_layer = folium.GeoJson(
        _grid_features(grids, _names(villages), _names(townships), escape=False), name="Grids (open incidents)",
        style_function=lambda _f: {"fillColor": "#ffffff", "fillOpacity": 0.05, "color": "#555", "weight": 0.8,
                                   "className": "gw-grid"},
        highlight_function=lambda _f: {"weight": 2.5, "color": "#000"})
    grid_layer.add_to(m)

    cameras = folium.FeatureGroup(name="Cameras and their views", show=False)
    sectors = _collection(camera_collection(conn, view=True, filters={"active": True}, limit=10_000))
    folium.GeoJson({"type": "FeatureCollection", "features": sectors}, name="Camera views", interactive=False,
                   style_function=lambda _f: {"color": "#3a78b5", "weight": 0.5, "fillOpacity": 0.12}
                   ).add_to(cameras)
    points = _collection(camera_collection(conn, filters={"active": True}, limit=10_000))
    folium.GeoJson({"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": f["geometry"],
         "properties": {"id": esc(f["id"]), "name": esc(f["properties"]["name"]),
                        "calibrated": "yes" if f["properties"]["calibrated"] else "no"}} for f in points]},
        name="Cameras", marker=folium.CircleMarker(radius=3, color="#1f4e79", fill=True, fill_opacity=1),
        tooltip=folium.GeoJsonTooltip(fields=["name", "id", "calibrated"], aliases=["Camera", "Id", "Calibrated"])
    ).add_to(cameras)
    cameras.add_to(m)

    teams = team_features(conn, now)
    team_layer = folium.GeoJson({"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": f["geometry"],
         "properties": {"id": f["properties"]["id"],
                        "team": esc(f"{f['properties']['name']} ({f['properties']['id']})"),
                        "status": f["properties"]["status"], "kind": f["properties"]["kind"],
                        "members": f["properties"]["members"], "position": f["properties"]["position"]}}
        for f in teams]},
        name="Patrol teams", show=True,
        marker=folium.CircleMarker(radius=4, weight=2, color="#fff", fill=True, fill_opacity=1),
        style_function=lambda f: {"fillColor": TEAM_COLOURS.get(f["properties"]["status"], "#999"),
                                  "className": "gw-team"},
        tooltip=folium.GeoJsonTooltip(fields=["team", "status", "kind", "members", "position"],
                                      aliases=["Team", "Status", "Kind", "People", "Position from"]))
    team_layer.add_to(m)

    # the unassigned queue: recent alerts outside every grid, which no incident or team holds,
    # each with the nearest grid and how far
    unassigned = folium.FeatureGroup(name="Unassigned alerts (24 h)")
    unassigned.add_to(m)
    queued = _collection(alert_collection(conn, since=now - UNASSIGNED_WINDOW, unassigned=True, filters={},
                                          limit=1_000))

    incidents = folium.FeatureGroup(name="Open incidents")
    incidents.add_to(m)
    drawn = _collection(incident_collection(conn, now, filters={"status": list(OPEN)}, limit=10_000)) + \
        _collection(incident_collection(conn, now, filters={"status": list(SHOWN_WHEN_OVERDUE)}, overdue=True,
                                        limit=10_000))
    late = [f for f in drawn if f["properties"]["overdue"]]
    counts = {"open": sum(f["properties"]["status"] in OPEN for f in drawn), "overdue": len(late),
              "feedback": sum(f["properties"]["status"] not in OPEN for f in late), "unassigned": len(queued)}
    data = {
        "vocab": vocab(),
        "layers": layers + [layer(grid_layer), layer(cameras), layer(team_layer), layer(unassigned),
                            layer(incidents, "Incidents (open, or feedback overdue)")],
        "layers_by_role": {"grids": grid_layer.get_name(), "incidents": incidents.get_name(),
                           "queue": unassigned.get_name(), "teams": team_layer.get_name()},
        "incidents": drawn,
        "queued": queued,
        "teams": [{"id": t["properties"]["id"], "name": t["properties"]["name"]} for t in teams],
        "me": {"name": me.name, "role": me.role} if me else None,
        "townships": [[f["properties"]["code"], f["properties"]["name"]] for f in townships],
        "types": [{"type": t, "label": label, "departments": deps} for t, label, deps in
                  conn.execute("SELECT type, label, departments FROM alert_types ORDER BY type")],
        "departments": conn.execute("SELECT code, name FROM departments ORDER BY code").fetchall(),
        "live": base.live,
        "fleet": fleet(conn, FleetSettings()),
        # the stream's event ids are change times in microseconds: start from `now`, before
        # the incidents were read
        "since": int(now.timestamp() * 1_000_000),
    }
    legend = [
        {"title": "Incidents", "layer": incidents.get_name(), "rows": [(c, label) for _, c, label in DEADLINE_STATES]},
        {"title": "Grids: open incidents", "layer": grid_layer.get_name(),
         "rows": [(c, label) for _, c, label in OPEN_RAMP]},
        {"title": "Patrol teams", "layer": team_layer.get_name(),
         "rows": [(c, s.replace("_", " ")) for s, c in TEAM_COLOURS.items()]},
        {"title": "Alerts outside every grid", "layer": unassigned.get_name(),
         "rows": [(UNASSIGNED_COLOUR, "unassigned, last 24 h")]},
    ]
    status = "connecting" if base.live else f"saved {local_time(now, base.timezone)}"
    return render_page(m, "command_room.html", base.timezone, data, legend=legend, counts=counts, status=status,
                       live=base.live)


@dataclass(frozen=True)
class ShownWindow:
    """A stats window as a person reads it: the first and the last day (inclusive) on the
    county's calendar."""

    first_day: str
    last_day: str
    type: str | None
    township: str | None
    township_name: str | None

    @classmethod
    def of(cls, window: Window, timezone: str, township_names: dict[str, str]) -> "ShownWindow":
        zone = ZoneInfo(timezone)
        # `until` is exclusive: the last day shown is the one its previous instant falls on
        last = (window.until - timedelta(microseconds=1)).astimezone(zone).date()
        return cls(window.since.astimezone(zone).date().isoformat(), last.isoformat(), window.type,
                   window.township, township_names.get(window.township) if window.township else None)


def _form(shown: ShownWindow, types: list[str], township_names: dict[str, str], error: str | None,
          asked: dict | None) -> dict:
    """The filter form's fields: what was asked when it was refused (to correct it), else
    the window shown."""
    values = {"since": shown.first_day, "until": shown.last_day, "type": shown.type, "township": shown.township}
    if error and asked:
        values.update({k: v or "" for k, v in asked.items()})
    return {**values, "types": types, "townships": township_names, "error": error}


def heatmap_page(conn: psycopg.Connection, index: GridIndex, window: Window, now: datetime, base: Base,
                 types: list[str], township_names: dict[str, str], *, error: str | None = None,
                 asked: dict | None = None) -> str:
    """/maps/heatmap: heat of alerts (PostGIS cells), incidents per grid, Gi* hot spots,
    and a form for the window, type and township (with `error`, what was wrong with the
    `asked` one, next to it)."""
    townships, villages, grids = _boundaries(conn)
    if window.township:
        grids = [g for g in grids if g["properties"]["township_code"] == window.township]
    m, layers = _base_map(base, grids or townships, townships, villages)
    counts = {g["code"]: g for g in grid_counts(conn, window, now)}
    spots = {g["code"]: g for g in hotspots(conn, window, index, now)["grids"]}
    extra = {code: {"incidents": c["incidents"], "alerts": c["alerts"], "per_km2": c["incidents_per_km2"],
                    "gi_bin": spots.get(code, {}).get("bin", 0), "gi_z": spots.get(code, {}).get("z", 0.0)}
             for code, c in counts.items()}
    data = _grid_features(grids, _names(villages), _names(townships), extra)
    per_grid = folium.GeoJson(
        data, name="Incidents per grid",
        style_function=lambda f: {"fillColor": ramp_colour(f["properties"].get("incidents", 0), INCIDENT_RAMP),
                                  "fillOpacity": 0.55, "color": "#666", "weight": 0.6, "className": "gw-grid"},
        tooltip=folium.GeoJsonTooltip(fields=["name", "code", "incidents", "alerts", "per_km2"],
                                      aliases=["Grid", "Code", "Incidents", "Alerts", "Incidents/km²"]))
    per_grid.add_to(m)
    colours = {b: c for b, c, _ in HOTSPOT_BINS}
    spots_layer = folium.GeoJson(
        data, name="Hot spots (Gi*)", show=False,
        style_function=lambda f: {"fillColor": colours[f["properties"].get("gi_bin", 0)],
                                  "fillOpacity": 0.0 if f["properties"].get("gi_bin", 0) == 0 else 0.7,
                                  "color": "#444", "weight": 0.5, "className": "gw-hotspot"},
        tooltip=folium.GeoJsonTooltip(fields=["name", "gi_z", "gi_bin", "incidents"],
                                      aliases=["Grid", "Gi* z", "Bin", "Incidents"]))
    spots_layer.add_to(m)
    heat = heat_cells(conn, window, index)
    heat_layer = HeatMap(heat["data"], name="Alert heat", min_opacity=0.35, radius=16, blur=14, max_zoom=13,
                         gradient=HEAT_GRADIENT)
    heat_layer.add_to(m)
    legend = [
        {"title": "Incidents per grid", "layer": per_grid.get_name(),
         "rows": [(c, f"{t} or more") for t, c in INCIDENT_RAMP]},
        {"title": "Hot spots (Gi*, FDR)", "layer": spots_layer.get_name(),
         "rows": [(c, label) for _, c, label in HOTSPOT_BINS]},
        {"title": "Alert heat", "layer": heat_layer.get_name(), "gradient": list(HEAT_GRADIENT.values()),
         "gradient_label": f"few → many alerts ({heat['cell_m']:g} m cells)"},
    ]
    shown = ShownWindow.of(window, base.timezone, township_names)
    form = _form(shown, types, township_names, error, asked) if base.live else None
    return render_page(m, "heatmap.html", base.timezone,
                       {"layers": layers + [layer(per_grid), layer(spots_layer), layer(heat_layer)]},
                       legend=legend, window=shown, alerts=heat["alerts"], form=form)


def timelapse_page(conn: psycopg.Connection, index: GridIndex, window: Window, base: Base, types: list[str],
                   township_names: dict[str, str], *, error: str | None = None, asked: dict | None = None) -> str:
    """/maps/timelapse: the heat of each day of the window (on the county's calendar),
    played as a film, with the heat map's form."""
    if window.until - window.since > FILM_DAYS:
        raise BadInput(f"since, until: the time-lapse shows at most {FILM_DAYS.days} days (a frame a day); "
                       f"this window is {(window.until - window.since).days:,} days")
    townships, villages, _ = _boundaries(conn)
    m, layers = _base_map(base, townships, townships, villages)
    frames, labels = [], []
    for day, data in daily_heat_cells(conn, window, index, base.timezone).items():
        top = max((n for _, _, n in data), default=1)
        frames.append([[lat, lon, n / top] for lat, lon, n in data])
        labels.append(day.isoformat())
    film = HeatMapWithTime(frames, index=labels, name="Alerts by day", radius=18, auto_play=False, max_opacity=0.8,
                           position="bottomright", gradient=HEAT_GRADIENT)
    film.add_to(m)
    legend = [{"title": "Alerts by day", "layer": film.get_name(), "gradient": list(HEAT_GRADIENT.values()),
               "gradient_label": "few → the day's most"}]
    shown = ShownWindow.of(window, base.timezone, township_names)
    return render_page(m, "timelapse.html", base.timezone, {"layers": layers + [layer(film)]}, legend=legend,
                       window=shown, days=len(labels),
                       form=_form(shown, types, township_names, error, asked))


def grid_page(conn: psycopg.Connection, code: str, now: datetime, base: Base) -> str:
    """/maps/grids/{code}: one grid with its cameras, its teams, and recent incidents."""
    grid = orjson.loads(feature(conn, "grid", code))
    m = new_map(_bounds([grid]), base.tile_url, base.attribution)
    p = grid["properties"]
    folium.GeoJson({"type": "Feature", "geometry": grid["geometry"],
                    "properties": {"name": esc(p["name"]), "code": esc(p["code"])}}, name="Grid",
                   style_function=lambda _f: {"color": "#b30000", "weight": 3, "fillOpacity": 0.05,
                                              "className": "gw-grid"},
                   tooltip=folium.GeoJsonTooltip(fields=["name", "code"], aliases=["Grid", "Code"])).add_to(m)
    sectors = _collection(camera_collection(conn, view=True, filters={"grid": code}, limit=10_000))
    if sectors:
        folium.GeoJson({"type": "FeatureCollection", "features": [
            {"type": "Feature", "geometry": f["geometry"], "properties": {"name": esc(f["properties"]["name"])}}
            for f in sectors]}, name="Cameras",
            style_function=lambda _f: {"color": "#3a78b5", "weight": 1, "fillOpacity": 0.15},
            tooltip=folium.GeoJsonTooltip(fields=["name"], aliases=["Camera"])).add_to(m)
    teams = [t for t in team_features(conn, now) if code in t["properties"]["grids"]]
    for t in teams:
        lon, lat = t["geometry"]["coordinates"]
        q = t["properties"]
        folium.CircleMarker([lat, lon], radius=6, color="#333", weight=1, fill=True, fill_opacity=0.9,
                            fill_color=TEAM_COLOURS.get(q["status"], "#999"),
                            tooltip=esc(f'{q["name"]} ({q["id"]}), {q["status"]}')).add_to(m)
    recent = _collection(incident_collection(conn, now, filters={"grid": code, "since": now - timedelta(days=30)},
                                             limit=200))
    colours = {k: c for k, c, _ in DEADLINE_STATES}
    for f in recent:
        q = f["properties"]
        folium.CircleMarker([q["lat"], q["lon"]], radius=5, color="#222", weight=1, fill=True, fill_opacity=0.85,
                            fill_color=colours["overdue"] if q["overdue"] else
                            colours["soon"] if q["status"] in OPEN else "#bbb",
                            tooltip=esc(f'{q["type"]} · {q["status"]} · {local_time(q["first_seen"], base.timezone)}')
                            ).add_to(m)
    return render_page(m, "grid.html", base.timezone, {}, grid=p, cameras=len(sectors), teams=len(teams),
                       incidents=[f["properties"] for f in recent])


def sign_in_page(next_page: str, error: str | None = None) -> str:
    """/login: a form for an API key, posted (so the key stays out of the address bar), then
    back to `next_page`."""
    return render("sign_in.html", next_page=next_page, error=error)


def field_page(conn: psycopg.Connection, team_id: str, now: datetime, base: Base) -> str:
    """/field: a team's phone. The page draws its assignments, which it reads from the API as
    any client would; here it gets the team, the outlines of its township (its small map's
    base, where a report may be placed) and the vocabularies."""
    team = team_feature(conn, team_id, now)
    township = team["properties"]["township_code"]
    outlines = {"type": "FeatureCollection", "features": []}
    if township:
        outlines["features"] = [orjson.loads(feature(conn, "township", township))] + _collection(
            feature_collection(conn, "grid", filters={"township": township}, limit=10_000))
    midnight = now.astimezone(ZoneInfo(base.timezone)).replace(hour=0, minute=0, second=0, microsecond=0)
    data = {
        "vocab": vocab(),
        "team": team,
        "on_duty": team["properties"]["status"] != "off_duty",
        "today": midnight.isoformat(),  # "done today" starts here, on the county's clock
        "outlines": outlines,
        "types": [{"type": t, "label": label} for t, label in
                  conn.execute("SELECT type, label FROM alert_types ORDER BY label")],
        "timezone": base.timezone,
        "live": base.live,
        "since": int(now.timestamp() * 1_000_000),
        "ping_every_s": PING_EVERY_S,
    }
    return render("field.html", base.timezone, data=data, team=team["properties"])
