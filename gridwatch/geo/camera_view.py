"""What a camera sees on the ground: its view sector, and the image → ground homography
fitted from pixel ↔ lon/lat pairs. Pure geometry; no database.

Homographies map image pixels to metres in the UTM zone of the camera (a ground plane), so
errors are in metres and the fit is well conditioned.
"""

from dataclasses import dataclass

import cv2
import numpy as np
import shapely

from gridwatch.errors import BadInput
from gridwatch.geo.crs import WGS84, transformer, utm_epsg

# A fit whose points miss by more than this (RMS, metres) is refused: the pairs disagree.
MAX_ERROR_M = 5.0
# RANSAC: a pair further than this from the fitted plane is an outlier.
RANSAC_THRESHOLD_M = 2.0


def view_sector(lon: float, lat: float, heading_deg: float, fov_deg: float, range_m: float) -> shapely.Polygon:
    """The ground a camera covers: a circular sector from its position, `heading_deg`
    clockwise from north, `fov_deg` wide, `range_m` deep (a disc for fov 360)."""
    epsg = utm_epsg(lon, lat)
    x0, y0 = transformer(WGS84, f"EPSG:{epsg}").transform(lon, lat)
    steps = max(8, int(fov_deg / 5))
    bearings = np.radians(np.linspace(heading_deg - fov_deg / 2, heading_deg + fov_deg / 2, steps + 1))
    xs, ys = x0 + range_m * np.sin(bearings), y0 + range_m * np.cos(bearings)
    ring = np.column_stack([xs, ys]) if fov_deg >= 360 else np.vstack([[x0, y0], np.column_stack([xs, ys])])
    back = transformer(f"EPSG:{epsg}", WGS84)
    lons, lats = back.transform(ring[:, 0], ring[:, 1])
    return shapely.Polygon(np.column_stack([lons, lats]))


@dataclass(frozen=True)
class Homography:
    """Image pixels → metres in EPSG `epsg`; `matrix` is the 3×3 (row-major 9 floats)."""

    matrix: tuple[float, ...]
    epsg: int
    frame_size: tuple[int, int]

    def to_lonlat(self, u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Ground lon/lat of pixels, and whether each lies below the horizon (valid)."""
        h = np.asarray(self.matrix, dtype=np.float64).reshape(3, 3)
        pts = np.vstack([np.asarray(u, float), np.asarray(v, float), np.ones(np.size(u))])
        x, y, w = h @ pts
        valid = w > 1e-12
        w = np.where(valid, w, 1.0)
        lon, lat = transformer(f"EPSG:{self.epsg}", WGS84).transform(x / w, y / w)
        return np.asarray(lon), np.asarray(lat), valid


@dataclass(frozen=True)
class Calibration:
    homography: Homography
    error_m: float  # RMS over the inliers
    point_errors_m: list[float]
    inliers: list[bool]


def fit_homography(frame_size: tuple[int, int], pixels: np.ndarray, lonlat: np.ndarray,
                   max_error_m: float = MAX_ERROR_M) -> Calibration:
    """Fit image → ground from ≥ 4 pixel ↔ lon/lat pairs (RANSAC when more than 4).

    Raises BadInput, saying why, for fewer than 4 pairs, pixels outside the frame,
    repeated or collinear points, a degenerate fit, or an error above `max_error_m`."""
    pixels = np.asarray(pixels, dtype=np.float64).reshape(-1, 2)
    lonlat = np.asarray(lonlat, dtype=np.float64).reshape(-1, 2)
    n = len(pixels)
    if n < 4:
        raise BadInput(f"calibration needs at least 4 pixel ↔ ground pairs, got {n}")
    w, h = frame_size
    outside = np.flatnonzero((pixels[:, 0] < 0) | (pixels[:, 0] > w) | (pixels[:, 1] < 0) | (pixels[:, 1] > h))
    if len(outside):
        raise BadInput(f"points[{outside[0]}]: pixel {pixels[outside[0]].tolist()} is outside the "
                       f"{w}×{h} frame")
    if ((np.abs(lonlat[:, 0]) > 180) | (np.abs(lonlat[:, 1]) > 90)).any():
        raise BadInput("a ground point is outside lon -180..180, lat -90..90")
    epsg = utm_epsg(*lonlat.mean(axis=0))
    x, y = transformer(WGS84, f"EPSG:{epsg}").transform(lonlat[:, 0], lonlat[:, 1])
    ground = np.column_stack([x, y])
    _check_spread(pixels, "pixel", "image", 1.0)
    _check_spread(ground, "ground", "ground the camera sees", 0.5)
    method = cv2.RANSAC if n > 4 else 0
    # Fit around a local origin: UTM coordinates in the millions cost the fit its precision.
    origin = ground.mean(axis=0)
    local, mask = cv2.findHomography(pixels, ground - origin, method, RANSAC_THRESHOLD_M)
    if local is None or not np.isfinite(local).all() or abs(np.linalg.det(local)) < 1e-12:
        raise BadInput("these pairs do not define a ground plane (degenerate homography): spread the points "
                       "over the image and the ground")
    matrix = np.array([[1, 0, origin[0]], [0, 1, origin[1]], [0, 0, 1]]) @ local
    inliers = mask.ravel().astype(bool) if mask is not None else np.ones(n, bool)
    if inliers.sum() < 4:
        raise BadInput(f"only {int(inliers.sum())} of {n} pairs agree with one ground plane; at least 4 must")
    # Scale so that w > 0 at the calibration points: then "w > 0" means "below the horizon".
    centre = matrix @ np.array([*pixels.mean(axis=0), 1.0])
    matrix = matrix / (np.linalg.norm(matrix) * np.sign(centre[2]))
    homography = Homography(tuple(float(v) for v in matrix.ravel()), epsg, (int(w), int(h)))
    px = np.column_stack([pixels, np.ones(n)]) @ np.asarray(homography.matrix).reshape(3, 3).T
    projected = px[:, :2] / px[:, 2:3]
    errors = np.linalg.norm(projected - ground, axis=1)
    rms = float(np.sqrt(np.mean(errors[inliers] ** 2)))
    if (px[:, 2] <= 0).any() or rms > max_error_m:
        worst = int(np.argmax(errors))
        raise BadInput(f"the pairs do not fit one ground plane: error {rms:.1f} m RMS (limit {max_error_m} m); "
                       f"points[{worst}] is off by {errors[worst]:.1f} m. Check that pixel and lon/lat match")
    return Calibration(homography, round(rms, 3), [round(float(e), 3) for e in errors], inliers.tolist())


def _check_spread(points: np.ndarray, what: str, where: str, min_gap: float) -> None:
    """Refuse repeated points and points on one line: they cannot fix a plane."""
    for i in range(len(points)):
        d = np.linalg.norm(points[i + 1:] - points[i], axis=1)
        if (d < min_gap).any():
            j = i + 1 + int(np.argmax(d < min_gap))
            raise BadInput(f"points[{i}] and points[{j}] have the same {what} position; each pair must be distinct")
    centred = points - points.mean(axis=0)
    sv = np.linalg.svd(centred, compute_uv=False)
    if sv[1] < 1e-3 * sv[0]:
        raise BadInput(f"the {what} points lie on one line; spread them over the {where}")
    if len(points) == 4:
        # four pairs fix a homography only if no three of them are on one line
        for skip in range(4):
            a, b, c = np.delete(points, skip, axis=0)
            area = abs((b - a)[0] * (c - a)[1] - (b - a)[1] * (c - a)[0])
            if area < 1e-3 * sv[0] ** 2:
                raise BadInput(f"three of the four {what} points lie on one line; move one, or add pairs")
