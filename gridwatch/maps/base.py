"""What every map page shares: folium pointed at gridwatch's own copies of Leaflet and its
plugins (never a CDN), the base map (configured tiles, else township and village outlines
with labels on a plain background), legends, and inlining for pages saved to a file."""

import base64
import html
import re
from pathlib import Path

import folium
import shapely
from folium.plugins import HeatMap, HeatMapWithTime

from gridwatch.maps.assets import VENDOR

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

PLAIN_BACKGROUND = "#eef0ea"
PAGE_CSS = f"""
<link rel="icon" href="data:,">
<style>
  .leaflet-container {{ background: {PLAIN_BACKGROUND}; font: 13px/1.4 system-ui, sans-serif; }}
  .gw-legend {{ position: fixed; bottom: 50px; left: 12px; z-index: 1000; background: #fff; padding: 8px 10px;
               border-radius: 4px; box-shadow: 0 1px 4px rgba(0,0,0,.3); font: 12px/1.5 system-ui, sans-serif; }}
  .gw-legend i {{ display: inline-block; width: 12px; height: 12px; margin-right: 6px; vertical-align: -1px;
                 border: 1px solid #555; }}
  .gw-legend b {{ display: block; margin: 4px 0 2px; }}
  .gw-legend b:first-child {{ margin-top: 0; }}
  .gw-label {{ font: 600 12px system-ui, sans-serif; color: #333; text-shadow: 0 0 3px #fff, 0 0 3px #fff;
              white-space: nowrap; }}
  .gw-label.town {{ font-size: 14px; color: #111; }}
  .gw-panel {{ position: fixed; top: 10px; left: 54px; z-index: 1000; background: #fff; padding: 6px 10px;
              border-radius: 4px; box-shadow: 0 1px 4px rgba(0,0,0,.3); font: 12px system-ui, sans-serif; }}
  .gw-panel h1 {{ font-size: 15px; margin: 0 0 4px; }}
</style>
"""


def esc(value) -> str:
    """Text from data, made safe to put in HTML (a grid named <img ...> shows as text)."""
    return html.escape("" if value is None else str(value), quote=True)


def new_map(bounds: tuple[float, float, float, float], tile_url: str | None, attribution: str = "") -> folium.Map:
    """A map fitted to bounds (minx, miny, maxx, maxy) with the configured tiles, or none."""
    minx, miny, maxx, maxy = bounds
    m = folium.Map(location=[(miny + maxy) / 2, (minx + maxx) / 2], zoom_start=10, tiles=None,
                   control_scale=True)
    if tile_url:
        folium.TileLayer(tiles=tile_url, attr=attribution or "tiles", name="Base map").add_to(m)
    m.fit_bounds([[miny, minx], [maxy, maxx]])
    m.get_root().header.add_child(folium.Element(PAGE_CSS))
    return m


def add_outlines(m: folium.Map, townships: list[dict], villages: list[dict]) -> None:
    """Township and village borders with their names: the base map when there are no tiles."""
    group = folium.FeatureGroup(name="Townships and villages", control=True)
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
            html=f'<div class="gw-label{" town" if town else ""}">{esc(feature["properties"]["name"])}</div>',
            icon_size=(160, 20), icon_anchor=(80, 10)), interactive=False).add_to(group)
    group.add_to(m)


def legend(m: folium.Map, sections: list[tuple[str, list[tuple[str, str]]]]) -> None:
    """One fixed legend box: sections of (colour, label) rows under a title."""
    body = "".join(f"<b>{esc(title)}</b>" + "".join(f'<div><i style="background:{colour}"></i>{esc(label)}</div>'
                                                    for colour, label in rows)
                   for title, rows in sections)
    m.get_root().html.add_child(folium.Element(f'<div class="gw-legend">{body}</div>'))


_ASSET = re.compile(r'<(script|link)([^>]*?)(?:src|href)="' + re.escape(STATIC) + r'/([^"]+)"([^>]*)>(?:</script>)?')
_CSS_URL = re.compile(r"url\(['\"]?([^'\")]+)['\"]?\)")
_TYPES = {".png": "image/png", ".woff": "font/woff", ".woff2": "font/woff2", ".ttf": "font/ttf",
          ".svg": "image/svg+xml", ".eot": "application/vnd.ms-fontobject"}


def inline_assets(page: str) -> str:
    """The page with every local script and stylesheet written into it (and the images
    and fonts those refer to as data: URLs): a file that opens with no server, no network."""

    def replace(match: re.Match) -> str:
        path = VENDOR / match.group(3)
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
