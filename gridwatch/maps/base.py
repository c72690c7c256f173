"""What every map page shares: folium pointed at gridwatch's own copies of Leaflet and its
plugins (never a CDN), the base map (configured tiles, else township and village outlines
with labels on a plain background), legends, and inlining for pages saved to a file."""

import base64
import hashlib
import html
import re
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo

import folium
import shapely
from folium.plugins import HeatMap, HeatMapWithTime
from jinja2 import ChoiceLoader, Environment, FileSystemLoader
from markupsafe import Markup

from gridwatch.maps.assets import HERE, VENDOR
from gridwatch.maps.assets import present as assets_present

STATIC = "/maps/static"

# folium's defaults point at CDNs; a command room on a closed network reaches none.
folium.Map.default_js = [("leaflet", f"{STATIC}/leaflet/leaflet.js")]
folium.Map.default_css = [("leaflet_css", f"{STATIC}/leaflet/leaflet.css")]
HeatMap.default_js = [("leaflet-heat.js", f"{STATIC}/leaflet.heat/leaflet-heat.js")]
HeatMapWithTime.default_js = [
    ("jquery", f"{STATIC}/jquery/jquery.min.js"),  # the plugin's template uses $
    ("iso8601", f"{STATIC}/iso8601/iso8601.js"),
    ("leaflet.timedimension.min.js", f"{STATIC}/timedimension/leaflet.timedimension.min.js"),
    ("heatmap.min.js", f"{STATIC}/heatmap.js/heatmap.min.js"),
    ("leaflet-heatmap.js", f"{STATIC}/heatmap.js/leaflet-heatmap.js"),
]
HeatMapWithTime.default_css = [("leaflet.timedimension.control.css",
                                f"{STATIC}/timedimension/leaflet.timedimension.control.css")]

# Our own scripts and styles (static/) and the pages' templates (templates/).
APP = "/maps/app"
APP_DIR = HERE / "static"
TEMPLATES = HERE / "templates"


@lru_cache
def _version(name: str) -> str:
    return hashlib.sha256((APP_DIR / name).read_bytes()).hexdigest()[:10]


def app_url(name: str) -> str:
    """Where the browser gets one of our static files; the query changes with the file, so a
    cached old copy is never used."""
    return f"{APP}/{name}?v={_version(name)}"


def local_time(value: str | datetime | None, timezone: str) -> str:
    """A time on the county's clock, to the minute: "27 Nov 14:05"."""
    if not value:
        return ""
    when = datetime.fromisoformat(value) if isinstance(value, str) else value
    local = when.astimezone(ZoneInfo(timezone))
    return f"{local.day} {local:%b %H:%M}"


@lru_cache
def templates(timezone: str) -> Environment:
    """The pages' templates, escaping everything they are given unless it is marked safe."""
    env = Environment(loader=ChoiceLoader([FileSystemLoader(TEMPLATES)]), autoescape=True,
                      trim_blocks=False, lstrip_blocks=False)
    env.globals["app_url"] = app_url
    env.globals["assets_missing"] = lambda: not assets_present()
    env.filters["local_time"] = lambda value: local_time(value, timezone)
    return env


def render(template: str, timezone: str = "UTC", **context) -> str:
    """A template of templates/ rendered with `context`."""
    return templates(timezone).get_template(template).render(**context)


def render_page(m: folium.Map, template: str, timezone: str, data: dict, **context) -> str:
    """A map page: folium's map (its head, its div and its script) inside `template`, with
    `data` (and the time zone) for the page's scripts as one JSON block."""
    root = m.get_root()
    for child in root._children.values():
        child.render()
    folium_parts = {part: Markup(getattr(root, part).render()) for part in ("header", "html", "script")}
    return render(template, timezone, folium=folium_parts,
                  data={"map": m.get_name(), "timezone": timezone, **data}, **context)


# Folium writes a tooltip's HTML into a JavaScript template literal, where a backtick ends
# the literal and `${...}` runs: they (and the backslash, which would start an escape) go
# in as character references, which HTML shows as the characters themselves.
_LITERAL = str.maketrans({"`": "&#96;", "$": "&#36;", "\\": "&#92;"})


def esc(value) -> str:
    """Text from data, made safe to put in HTML, also where folium puts that HTML inside a
    JavaScript template literal (a team named `${alert(1)}` shows as text)."""
    return html.escape("" if value is None else str(value), quote=True).translate(_LITERAL)


def new_map(bounds: tuple[float, float, float, float], tile_url: str | None, attribution: str = "") -> folium.Map:
    """A map fitted to bounds (minx, miny, maxx, maxy) with the configured tiles, or none."""
    minx, miny, maxx, maxy = bounds
    m = folium.Map(location=[(miny + maxy) / 2, (minx + maxx) / 2], zoom_start=10, tiles=None,
                   control_scale=True)
    if tile_url:
        folium.TileLayer(tiles=tile_url, attr=attribution or "tiles", name="Base map").add_to(m)
    m.fit_bounds([[miny, minx], [maxy, maxx]])
    return m


def add_outlines(m: folium.Map, townships: list[dict], villages: list[dict]) -> folium.FeatureGroup:
    """Township and village borders with their names: the base map when there are no tiles."""
    group = folium.FeatureGroup(name="Townships and villages")
    folium.GeoJson({"type": "FeatureCollection", "features": villages}, name="Villages",
                   style_function=lambda _f: {"color": "#7a7a7a", "weight": 1, "fill": False, "dashArray": "3 3"},
                   interactive=False).add_to(group)
    folium.GeoJson({"type": "FeatureCollection", "features": townships}, name="Townships",
                   style_function=lambda _f: {"color": "#333", "weight": 2.5, "fill": False},
                   interactive=False).add_to(group)
    for feature in townships:
        point = shapely.geometry.shape(feature["geometry"]).representative_point()
        town = feature["properties"]["name"].endswith("Town")
        folium.Marker([point.y, point.x], icon=folium.DivIcon(
            html=render("_label.html", name=feature["properties"]["name"], town=town),
            icon_size=(160, 20), icon_anchor=(80, 10)), interactive=False).add_to(group)
    group.add_to(m)
    return group


def layer(layer: folium.map.Layer, name: str | None = None) -> dict:
    """A layer for the page's layer control (gw.js draws it): its label and its variable."""
    return {"name": name or layer.layer_name, "id": layer.get_name()}


_ASSET = re.compile(r'<(script|link)([^>]*?)(?:src|href)="(' + re.escape(STATIC) + "|" + re.escape(APP) +
                    r')/([^"?]+)(?:\?[^"]*)?"([^>]*)>(?:</script>)?')
_CSS_URL = re.compile(r"url\(['\"]?([^'\")]+)['\"]?\)")
_TYPES = {".png": "image/png", ".woff": "font/woff", ".woff2": "font/woff2", ".ttf": "font/ttf",
          ".svg": "image/svg+xml", ".eot": "application/vnd.ms-fontobject"}


def inline_assets(page: str) -> str:
    """The page with every local script and stylesheet written into it (and the images
    and fonts those refer to as data: URLs): a file that opens with no server, no network."""

    def replace(match: re.Match) -> str:
        path = (VENDOR if match.group(3) == STATIC else APP_DIR) / match.group(4)
        text = path.read_text()
        if match.group(1) == "script":
            return f"<script>{text}</script>"
        return f"<style>{_CSS_URL.sub(lambda u: _data_url(path.parent, u.group(1)), text)}</style>"

    return _ASSET.sub(replace, page)


def _data_url(folder: Path, ref: str) -> str:
    if ref.startswith("data:"):
        return f"url({ref})"
    target = (folder / ref.split("?")[0].split("#")[0]).resolve()
    if not target.is_file():
        return f"url({ref})"
    kind = _TYPES.get(target.suffix, "application/octet-stream")
    return f"url(data:{kind};base64,{base64.b64encode(target.read_bytes()).decode()})"
