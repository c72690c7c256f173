"""Coordinate reference systems: everything is stored in EPSG:4326; distances and areas
are computed in the UTM zone of the data (EPSG:32647 for the demo county)."""

from functools import lru_cache

import numpy as np
import prcoords
import shapely
from pyproj import CRS, Transformer

WGS84 = "EPSG:4326"


def utm_epsg(lon: float, lat: float) -> int:
    """EPSG code of the UTM zone holding (lon, lat): metres with little distortion there."""
    zone = int((lon + 180) // 6) % 60 + 1
    return (32600 if lat >= 0 else 32700) + zone


@lru_cache(maxsize=32)
def transformer(src: str, dst: str) -> Transformer:
    """A cached transformer in lon/lat (x, y) order: building one costs milliseconds."""
    return Transformer.from_crs(CRS.from_user_input(src), CRS.from_user_input(dst), always_xy=True)


def transform(geoms, src: str, dst: str):
    """Geometries (one or an array) from `src` to `dst`, vectorised."""
    if CRS.from_user_input(src) == CRS.from_user_input(dst):
        return geoms
    tr = transformer(src, dst)
    return shapely.transform(geoms, lambda c: np.column_stack(tr.transform(c[:, 0], c[:, 1])))


def to_metric(geoms, epsg: int):
    """WGS 84 geometries into the metric CRS `epsg` (a UTM zone)."""
    return transform(geoms, WGS84, f"EPSG:{epsg}")


EARTH_RADIUS_M = 6_371_000.0


def metres_between(lon, lat, lons, lats) -> np.ndarray:
    """Great-circle distance in metres (broadcasting), for ETAs and sanity checks where
    a metre either way does not matter."""
    phi1, phi2 = np.radians(lat), np.radians(lats)
    a = np.sin((phi2 - phi1) / 2) ** 2 + np.cos(phi1) * np.cos(phi2) * np.sin(np.radians(lons - lon) / 2) ** 2
    return 2 * EARTH_RADIUS_M * np.arcsin(np.sqrt(a))


def gcj02_to_wgs84(geoms):
    """GCJ-02 (the offset of most Chinese web maps, 300-600 m) back to WGS 84, to ~1 cm."""

    def convert(coords: np.ndarray) -> np.ndarray:
        return np.array([prcoords.gcj_wgs_bored((lat, lon))[::-1] for lon, lat in coords]).reshape(-1, 2)

    return shapely.transform(geoms, convert)
