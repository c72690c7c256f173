"""An ideal pinhole camera over flat ground: the independent oracle for calibration and
placement tests (what pixel sees which lon/lat)."""

import math
from dataclasses import dataclass

import numpy as np
from pyproj import Transformer

TO_M = Transformer.from_crs("EPSG:4326", "EPSG:32647", always_xy=True)
TO_LL = Transformer.from_crs("EPSG:32647", "EPSG:4326", always_xy=True)


@dataclass
class Pinhole:
    lon: float
    lat: float
    heading_deg: float
    height_m: float = 8.0
    tilt_deg: float = 20.0
    hfov_deg: float = 70.0
    width: int = 1920
    height: int = 1080

    def _axes(self):
        t, p = math.radians(self.heading_deg), math.radians(self.tilt_deg)
        forward = np.array([math.sin(t) * math.cos(p), math.cos(t) * math.cos(p), -math.sin(p)])
        right = np.array([math.cos(t), -math.sin(t), 0.0])
        down = -np.cross(right, forward)
        return forward, right, down

    @property
    def focal(self) -> float:
        return (self.width / 2) / math.tan(math.radians(self.hfov_deg) / 2)

    def pixel(self, lon: float, lat: float) -> tuple[float, float]:
        """Where the ground point appears in the image."""
        x0, y0 = TO_M.transform(self.lon, self.lat)
        x, y = TO_M.transform(lon, lat)
        d = np.array([x - x0, y - y0, -self.height_m])
        forward, right, down = self._axes()
        z = d @ forward
        return (self.width / 2 + self.focal * (d @ right) / z, self.height / 2 + self.focal * (d @ down) / z)

    def ground(self, u: float, v: float) -> tuple[float, float]:
        """The lon/lat a pixel (below the horizon) looks at."""
        forward, right, down = self._axes()
        ray = forward * self.focal + right * (u - self.width / 2) + down * (v - self.height / 2)
        t = self.height_m / -ray[2]
        x0, y0 = TO_M.transform(self.lon, self.lat)
        return TO_LL.transform(x0 + t * ray[0], y0 + t * ray[1])

    def calibration(self, pixels: list[tuple[float, float]]) -> dict:
        """A PUT /cameras/{id}/calibration body from these pixels."""
        points = []
        for u, v in pixels:
            lon, lat = self.ground(u, v)
            points.append({"pixel": [u, v], "lon": lon, "lat": lat})
        return {"frame_size": [self.width, self.height], "points": points}


GOOD_PIXELS = [(300, 700), (1600, 700), (960, 800), (400, 1000), (1500, 1000), (960, 1060)]


def metres(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    x1, y1 = TO_M.transform(lon1, lat1)
    x2, y2 = TO_M.transform(lon2, lat2)
    return math.hypot(x2 - x1, y2 - y1)
