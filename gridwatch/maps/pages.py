"""The map pages the command room reads at a glance (folium), built from the same domain
functions as the API. Every text that comes from data is escaped before it reaches HTML."""

from dataclasses import dataclass
from datetime import datetime, timedelta

import folium
import orjson
import psycopg
import shapely
from branca.element import MacroElement
from folium.plugins import HeatMap, HeatMapWithTime
from jinja2 import Template

from gridwatch.alerts.cameras import camera_collection
from gridwatch.alerts.grouping import OPEN
from gridwatch.alerts.incidents import incident_collection
from gridwatch.alerts.patrols import team_features
from gridwatch.alerts.queries import alert_collection
from gridwatch.geo.boundaries import feature, feature_collection
from gridwatch.geo.grid_index import GridIndex
from gridwatch.maps.base import add_outlines, esc, legend, new_map
from gridwatch.stats.counts import Window, grid_counts, heat_cells
from gridwatch.stats.hotspots import hotspots

DEADLINE_COLOURS = [("#1a9850", "on time"), ("#fc8d59", "due within the hour"), ("#d7301f", "overdue")]
OPEN_RAMP = [(0, "#ffffff", "none"), (1, "#fee5d9", "1"), (2, "#fcae91", "2-3"), (4, "#fb6a4a", "4-6"),
             (7, "#cb181d", "7 or more")]
TEAM_COLOURS = {"available": "#2b83ba", "busy": "#7b3294", "off_duty": "#9a9a9a"}
UNASSIGNED_COLOUR = "#000000"
# Alerts outside every grid this recent are shown in the command room (the dispatcher's queue).
UNASSIGNED_WINDOW = timedelta(hours=24)
HOTSPOT_BINS = [(3, "#d7191c", "hot, 99 %"), (2, "#fc8d59", "hot, 95 %"), (1, "#fee090", "hot, 90 %"),
                (0, "#ffffff", "not significant"), (-1, "#e0f3f8", "cold, 90 %"), (-2, "#91bfdb", "cold, 95 %"),
                (-3, "#4575b4", "cold, 99 %")]
INCIDENT_RAMP = [(0, "#ffffff"), (1, "#fff5eb"), (5, "#fdd0a2"), (20, "#fd8d3c"), (50, "#d94801"), (100, "#7f2704")]


@dataclass(frozen=True)
class Base:
    """What a page needs from the settings."""

    tile_url: str | None = None
    attribution: str = ""
    live: bool = True  # served: follow /incidents/stream; saved to a file: no


def _collection(data: bytes) -> list[dict]:
    return orjson.loads(data)["features"]


def _boundaries(conn: psycopg.Connection) -> tuple[list[dict], list[dict], list[dict]]:
    townships = _collection(feature_collection(conn, "township", limit=10_000))
    villages = _collection(feature_collection(conn, "village", limit=10_000))
    grids = _collection(feature_collection(conn, "grid", limit=10_000))
    return townships, villages, grids


def _names(features: list[dict]) -> dict[str, str]:
    return {f["properties"]["code"]: f["properties"]["name"] for f in features}


def _grid_features(grids: list[dict], villages: dict[str, str], townships: dict[str, str], extra=None) -> dict:
    """Grids with escaped, display-ready properties (and per-code extras)."""
    out = []
    for f in grids:
        p = f["properties"]
        props = {"code": p["code"], "name": esc(p["name"]), "village": esc(villages.get(p["village_code"], "")),
                 "township": esc(townships.get(p["township_code"], ""))}
        props.update((extra or {}).get(p["code"], {}))
        out.append({"type": "Feature", "geometry": f["geometry"], "properties": props})
    return {"type": "FeatureCollection", "features": out}


def _ramp(value: float, ramp) -> str:
    colour = ramp[0][1]
    for threshold, c, *_ in ramp:
        if value >= threshold:
            colour = c
    return colour


def _bounds(features: list[dict]) -> tuple[float, float, float, float]:
    return tuple(float(v) for v in shapely.total_bounds([shapely.geometry.shape(f["geometry"]) for f in features]))


class LiveIncidents(MacroElement):
    """Open incidents as markers coloured by deadline state; grids shaded by how many are
    open; the unassigned queue; all kept current from /incidents/stream without a reload."""

    _template = Template("""
{% macro script(this, kwargs) %}
(function () {
  var layer = {{ this.layer }}, grids = {{ this.grids }}, queue = {{ this.queue }};
  var OPEN = {new: 1, dispatched: 1, acknowledged: 1, on_scene: 1};
  var COLOURS = {overdue: "#d7301f", soon: "#fc8d59", ontime: "#1a9850"};
  var RAMP = {{ this.ramp|tojson }};
  var markers = {};
  function esc(s) {
    return String(s == null ? "" : s).replace(/[&<>"']/g, function (c) {
      return {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c];
    });
  }
  function state(p) {
    if (p.overdue) return "overdue";
    var dues = [];
    if (!p.contacted_at) dues.push(Date.parse(p.contact_due));
    if (!p.resolved_at) dues.push(Date.parse(p.resolve_due));
    var next = Math.min.apply(null, dues);
    return next - Date.now() < 3600e3 ? "soon" : "ontime";
  }
  function fill(n) {
    var c = RAMP[0][1];
    RAMP.forEach(function (r) { if (n >= r[0]) c = r[1]; });
    return c;
  }
  function restyle() {
    var counts = {};
    Object.keys(markers).forEach(function (k) {
      var g = markers[k].grid; counts[g] = (counts[g] || 0) + 1;
    });
    grids.setStyle(function (f) {
      var n = counts[f.properties.code] || 0;
      return {fillColor: fill(n), fillOpacity: n ? 0.6 : 0.05, color: "#555", weight: 0.8};
    });
    var el = document.getElementById("gw-open-count");
    if (el) el.textContent = Object.keys(markers).length;
  }
  function show(f) {
    var p = f.properties, old = markers[p.id];
    if (old) { layer.removeLayer(old.marker); delete markers[p.id]; }
    if (OPEN[p.status]) {
      var s = state(p);
      var m = L.circleMarker([p.lat, p.lon], {radius: 5 + Math.min(7, p.alert_count), color: "#222", weight: 1,
                                               fillColor: COLOURS[s], fillOpacity: 0.9,
                                               className: "gw-incident gw-" + s});
      m.bindTooltip(esc(p.type) + " · " + esc(p.status) + " · " + esc(p.alert_count) + " alert(s)");
      m.bindPopup("<b>Incident " + esc(p.id) + "</b>: " + esc(p.type) + "<br>status " + esc(p.status) +
                  "<br>grid " + esc(p.grid_code) + "<br>team " + esc(p.team_id) + "<br>first seen " +
                  esc(p.first_seen) + "<br>contact due " + esc(p.contact_due) + "<br>resolve due " +
                  esc(p.resolve_due) + "<br>escalated to " + esc(p.escalated_to));
      m.addTo(layer);
      markers[p.id] = {marker: m, grid: p.grid_code};
    }
  }
  {{ this.features|tojson }}.forEach(show);
  restyle();
  // the unassigned queue: alerts as the API gives them (from the page, or from the stream)
  function tip(l) {
    var p = l.feature.properties;
    l.bindTooltip("<b>Unassigned alert</b>: " + esc(p.type) + "<br>camera " + esc(p.camera_id) + "<br>at " +
                  esc(String(p.occurred_at).slice(0, 16).replace("T", " ")) + " UTC<br>" + esc(p.team_reason));
  }
  function queued(f) {
    var c = f.geometry.coordinates;
    var m = L.circleMarker([c[1], c[0]], {radius: 5, weight: 2, color: "#fff", fillColor: "{{ this.colour }}",
                                          fillOpacity: 1, className: "gw-unassigned"});
    m.feature = f;
    tip(m);
    queue.addLayer(m);
    var el = document.getElementById("gw-unassigned-count");
    if (el) el.textContent = queue.getLayers().length;
  }
  {{ this.queued|tojson }}.forEach(queued);
  {% if this.live %}
  if (window.EventSource && location.protocol.indexOf("http") === 0) {
    var status = document.getElementById("gw-live");
    var source = new EventSource("/incidents/stream?lastEventId={{ this.since }}");
    source.onopen = function () { if (status) status.textContent = "live"; };
    source.onerror = function () { if (status) status.textContent = "reconnecting"; };
    source.addEventListener("incident", function (e) { show(JSON.parse(e.data)); restyle(); });
    source.addEventListener("unassigned", function (e) { queued(JSON.parse(e.data)); });
  }
  {% endif %}
})();
{% endmacro %}
""")

    def __init__(self, layer: folium.FeatureGroup, grids: folium.GeoJson, features: list[dict],
                 queue: folium.FeatureGroup, queued: list[dict], live: bool, read_at: datetime) -> None:
        super().__init__()
        self._name = "LiveIncidents"
        self.queue = queue.get_name()
        self.queued = queued
        self.colour = UNASSIGNED_COLOUR
        # the stream's event ids are change times in microseconds: start from `read_at`, before
        # `features` were read
        self.since = int(read_at.timestamp() * 1_000_000)
        self.layer = layer.get_name()
        self.grids = grids.get_name()
        self.features = features
        self.ramp = [[t, c] for t, c, _ in OPEN_RAMP]
        self.live = live


def command_room(conn: psycopg.Connection, now: datetime, base: Base) -> str:
    """/maps/: grids shaded by open incidents, open incidents by deadline state, cameras
    with their view sectors, teams by status; live."""
    townships, villages, grids = _boundaries(conn)
    m = new_map(_bounds(townships or grids), base.tile_url, base.attribution)
    if not base.tile_url:
        add_outlines(m, townships, villages)
    grid_layer = folium.GeoJson(
        _grid_features(grids, _names(villages), _names(townships)), name="Grids (open incidents)",
        style_function=lambda _f: {"fillColor": "#ffffff", "fillOpacity": 0.05, "color": "#555", "weight": 0.8,
                                   "className": "gw-grid"},
        highlight_function=lambda _f: {"weight": 2.5, "color": "#000"},
        tooltip=folium.GeoJsonTooltip(fields=["name", "code", "village", "township"],
                                      aliases=["Grid", "Code", "Village", "Township"]))
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
    folium.GeoJson({"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": f["geometry"],
         "properties": {"name": esc(f["properties"]["name"]), "status": f["properties"]["status"],
                        "kind": f["properties"]["kind"], "members": f["properties"]["members"],
                        "position": f["properties"]["position"]}} for f in teams]},
        name="Patrol teams", show=True,
        marker=folium.CircleMarker(radius=4, weight=2, color="#fff", fill=True, fill_opacity=1),
        style_function=lambda f: {"fillColor": TEAM_COLOURS.get(f["properties"]["status"], "#999"),
                                  "className": "gw-team"},
        tooltip=folium.GeoJsonTooltip(fields=["name", "status", "kind", "members", "position"],
                                      aliases=["Team", "Status", "Kind", "People", "Position from"])
    ).add_to(m)

    # the unassigned queue: recent alerts outside every grid, which no incident or team holds,
    # each with the nearest grid and how far
    unassigned = folium.FeatureGroup(name="Unassigned alerts (24 h)")
    unassigned.add_to(m)
    queued = _collection(alert_collection(conn, since=now - UNASSIGNED_WINDOW, unassigned=True, filters={},
                                          limit=1_000))

    incidents = folium.FeatureGroup(name="Open incidents")
    incidents.add_to(m)
    open_now = _collection(incident_collection(conn, now, filters={"status": list(OPEN)}, limit=10_000))
    m.add_child(LiveIncidents(incidents, grid_layer, open_now, unassigned, queued, base.live, now))
    folium.LayerControl(collapsed=False).add_to(m)
    legend(m, [("Open incidents", DEADLINE_COLOURS),
               ("Grids: open incidents", [(c, label) for _, c, label in OPEN_RAMP]),
               ("Patrol teams", [(c, s.replace("_", " ")) for s, c in TEAM_COLOURS.items()]),
               ("Alerts outside every grid", [(UNASSIGNED_COLOUR, "unassigned, last 24 h")])])
    status = "connecting" if base.live else f"saved {now:%Y-%m-%d %H:%M} UTC"
    sign_out = ' · <form method="post" action="/logout" style="display:inline"><button>sign out</button></form>' \
        if base.live else ""
    m.get_root().html.add_child(folium.Element(
        f'<div class="gw-panel"><h1>gridwatch · command room</h1><span id="gw-open-count">{len(open_now)}</span> '
        f'open incidents · <span id="gw-unassigned-count">{len(queued)}</span> unassigned alerts '
        f'(24 h) · <span id="gw-live">{status}</span>{sign_out}</div>'))
    return m.get_root().render()


def heatmap_page(conn: psycopg.Connection, index: GridIndex, window: Window, now: datetime, base: Base,
                 types: list[str], township_names: dict[str, str]) -> str:
    """/maps/heatmap: heat of alerts (PostGIS cells), incidents per grid, Gi* hot spots,
    and a form for the window, type and township."""
    townships, villages, grids = _boundaries(conn)
    if window.township:
        grids = [g for g in grids if g["properties"]["township_code"] == window.township]
    m = new_map(_bounds(grids or townships), base.tile_url, base.attribution)
    if not base.tile_url:
        add_outlines(m, townships, villages)
    counts = {g["code"]: g for g in grid_counts(conn, window, now)}
    spots = {g["code"]: g for g in hotspots(conn, window, index, now)["grids"]}
    extra = {code: {"incidents": c["incidents"], "alerts": c["alerts"], "per_km2": c["incidents_per_km2"],
                    "gi_bin": spots.get(code, {}).get("bin", 0), "gi_z": spots.get(code, {}).get("z", 0.0)}
             for code, c in counts.items()}
    data = _grid_features(grids, _names(villages), _names(townships), extra)
    folium.GeoJson(data, name="Incidents per grid",
                   style_function=lambda f: {"fillColor": _ramp(f["properties"].get("incidents", 0), INCIDENT_RAMP),
                                             "fillOpacity": 0.55, "color": "#666", "weight": 0.6,
                                             "className": "gw-grid"},
                   tooltip=folium.GeoJsonTooltip(fields=["name", "code", "incidents", "alerts", "per_km2"],
                                                 aliases=["Grid", "Code", "Incidents", "Alerts", "Incidents/km²"])
                   ).add_to(m)
    colours = {b: c for b, c, _ in HOTSPOT_BINS}
    folium.GeoJson(data, name="Hot spots (Gi*)", show=False,
                   style_function=lambda f: {"fillColor": colours[f["properties"].get("gi_bin", 0)],
                                             "fillOpacity": 0.0 if f["properties"].get("gi_bin", 0) == 0 else 0.7,
                                             "color": "#444", "weight": 0.5, "className": "gw-hotspot"},
                   tooltip=folium.GeoJsonTooltip(fields=["name", "gi_z", "gi_bin", "incidents"],
                                                 aliases=["Grid", "Gi* z", "Bin", "Incidents"])).add_to(m)
    heat = heat_cells(conn, window, index)
    HeatMap(heat["data"], name="Alert heat", min_opacity=0.35, radius=16, blur=14,
            max_zoom=13).add_to(m)
    folium.LayerControl(collapsed=False).add_to(m)
    legend(m, [("Incidents per grid", [(c, f"{t} or more") for t, c in INCIDENT_RAMP]),
               ("Hot spots (Gi*, FDR)", [(c, label) for _, c, label in HOTSPOT_BINS])])
    m.get_root().html.add_child(folium.Element(_form(window, types, township_names, base.live, heat)))
    return m.get_root().render()


def _form(window: Window, types: list[str], township_names: dict[str, str], live: bool, heat: dict) -> str:
    head = (f"<h1>gridwatch · heat map</h1>{heat['alerts']:,} alerts, {esc(window.since.date())} to "
            f"{esc(window.until.date())}{' · ' + esc(window.type) if window.type else ''}")
    if not live:
        return f'<div class="gw-panel">{head}</div>'
    type_options = "".join(f'<option value="{esc(t)}"{" selected" if t == window.type else ""}>{esc(t)}</option>'
                           for t in types)
    township_options = "".join(
        f'<option value="{esc(c)}"{" selected" if c == window.township else ""}>{esc(n)}</option>'
        for c, n in township_names.items())
    return f"""<div class="gw-panel">{head}
<form method="get" style="margin-top:4px">
 <label>from <input type="date" name="since" value="{window.since.date()}"></label>
 <label>to <input type="date" name="until" value="{window.until.date()}"></label>
 <select name="type"><option value="">all types</option>{type_options}</select>
 <select name="township"><option value="">whole county</option>{township_options}</select>
 <button>show</button></form></div>"""


def timelapse_page(conn: psycopg.Connection, index: GridIndex, window: Window, base: Base) -> str:
    """/maps/timelapse: the heat of each day of the window, played as a film."""
    townships, villages, _ = _boundaries(conn)
    m = new_map(_bounds(townships), base.tile_url, base.attribution)
    if not base.tile_url:
        add_outlines(m, townships, villages)
    frames, labels = [], []
    day = window.since.replace(hour=0, minute=0, second=0, microsecond=0)
    while day < window.until:
        cells = heat_cells(conn, Window(day, day + timedelta(days=1), window.type, window.township), index)
        top = max(cells["max"], 1)
        frames.append([[lat, lon, n / top] for lat, lon, n in cells["data"]])
        labels.append(day.date().isoformat())
        day += timedelta(days=1)
    HeatMapWithTime(frames, index=labels, name="Alerts by day", radius=18, auto_play=False, max_opacity=0.8,
                    position="bottomright").add_to(m)
    m.get_root().html.add_child(folium.Element(
        f'<div class="gw-panel"><h1>gridwatch · time-lapse</h1>{len(labels)} days of alerts</div>'))
    return m.get_root().render()


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
        folium.CircleMarker([lat, lon], radius=6, color="#333", weight=1, fill=True, fill_opacity=0.9,
                            fill_color=TEAM_COLOURS.get(t["properties"]["status"], "#999"),
                            tooltip=f'{esc(t["properties"]["name"])} ({esc(t["properties"]["status"])})').add_to(m)
    recent = _collection(incident_collection(conn, now, filters={"grid": code, "since": now - timedelta(days=30)},
                                             limit=200))
    for f in recent:
        q = f["properties"]
        folium.CircleMarker([q["lat"], q["lon"]], radius=5, color="#222", weight=1, fill=True, fill_opacity=0.85,
                            fill_color="#d7301f" if q["overdue"] else "#fc8d59" if q["status"] in OPEN else "#bbb",
                            tooltip=f'{esc(q["type"])} · {esc(q["status"])} · {esc(q["first_seen"][:16])}').add_to(m)
    rows = "".join(f'<tr><td>{esc(f["properties"]["first_seen"][:16])}</td><td>{esc(f["properties"]["type"])}</td>'
                   f'<td>{esc(f["properties"]["status"])}</td></tr>' for f in recent[:15])
    m.get_root().html.add_child(folium.Element(
        f'<div class="gw-panel"><h1>{esc(p["name"])} ({esc(code)})</h1>{len(sectors)} cameras · {len(teams)} teams '
        f'· {len(recent)} incidents in 30 days<table style="margin-top:4px;font-size:11px">{rows}</table></div>'))
    return m.get_root().render()


def sign_in_page(next_page: str, error: str | None = None) -> str:
    """/login: a form for an API key, posted (so the key stays out of the address bar), then
    back to `next_page`. Plain HTML, nothing to load."""
    message = f'<p class="error" role="alert">{esc(error)}</p>' if error else ""
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>gridwatch · sign in</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
 body {{ font: 14px system-ui, sans-serif; background: #eef1f4; margin: 0; }}
 form {{ max-width: 26em; margin: 12vh auto; background: #fff; padding: 18px 22px; border-radius: 6px;
        box-shadow: 0 1px 4px rgba(0,0,0,.3); }}
 h1 {{ font-size: 18px; margin: 0 0 10px; }}
 input[type=password] {{ width: 100%; box-sizing: border-box; padding: 6px; margin: 6px 0 10px; }}
 .error {{ color: #b00020; }}
 .hint {{ color: #555; font-size: 12px; }}
</style></head>
<body><form method="post" action="/login">
<h1>gridwatch · command room</h1>{message}
<label for="key">API key</label>
<input type="password" id="key" name="key" autocomplete="current-password" required autofocus>
<input type="hidden" name="next" value="{esc(next_page)}">
<button>Sign in</button>
<p class="hint">A key with role viewer or above; an administrator creates one with
<code>gridwatch keys create --role viewer --name NAME</code>. This browser keeps it until you sign out
or it expires.</p>
</form></body></html>"""
