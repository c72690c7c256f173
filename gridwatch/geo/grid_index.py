"""Which grid holds a point, answered from memory.

PostGIS is the source of truth; each process keeps a read-only `GridIndex` of one boundary
version and `LiveIndex` swaps in a new one when the version changes (in any process).

Border rule: of the grids covering a point, the lowest code wins, exactly as
the SQL function `grid_at`. Most points never reach a polygon test: a raster of the
county says which cells lie wholly inside one grid (or outside all); only points in cells
that a border crosses are tested against the polygons.
"""

import logging
import math
import threading
from dataclasses import dataclass

import cv2
import numpy as np
import psycopg
import shapely

from gridwatch.db.changes import Changes
from gridwatch.errors import Unavailable
from gridwatch.geo.crs import WGS84, metres_between, to_metric, transformer, utm_epsg

log = logging.getLogger(__name__)

# Raster cells along the longer side of the extent (≈ 50 m cells for a county).
RASTER_SIDE = 2048
# cv2 draws with fixed-point coordinates: 8 fractional bits.
_SHIFT = 8
_MIXED = -2

# The current grids, lowest code first (index order is the border rule), with the
# version read in the same statement so they agree.
# Imports NOTIFY this channel (gridwatch.geo.boundaries).
CHANNEL = "boundaries"
_LOAD_SQL = ("SELECT code, name, village_code, township_code, ST_AsBinary(geom), boundary_version() "
             "FROM grids ORDER BY code")


@dataclass(frozen=True)
class Nearest:
    code: str
    distance_m: float


class GridIndex:
    """The grids of one boundary version; `match` maps arrays of lon/lat to grid rows."""

    def __init__(self, version: int, codes: list[str], names: list[str], village_codes: list[str],
                 township_codes: list[str], geoms: np.ndarray) -> None:
        order = np.argsort(codes, kind="stable")
        self.version = version
        self.codes = np.array(codes, dtype=object)[order]
        self.names = np.array(names, dtype=object)[order]
        self.village_codes = np.array(village_codes, dtype=object)[order]
        self.township_codes = np.array(township_codes, dtype=object)[order]
        self.geoms = np.asarray(geoms, dtype=object)[order]
        self.row_of = {code: i for i, code in enumerate(self.codes)}
        self.tree = shapely.STRtree(self.geoms)
        shapely.prepare(self.geoms)
        if len(self.geoms):
            centre = shapely.union_all(shapely.centroid(self.geoms)).centroid
            self.epsg = utm_epsg(centre.x, centre.y)
            self.metric_tree = shapely.STRtree(to_metric(self.geoms, self.epsg))
            self.to_metric = transformer(WGS84, f"EPSG:{self.epsg}")
        self._build_raster()

    @classmethod
    def load(cls, conn: psycopg.Connection) -> "GridIndex":
        rows = conn.execute(_LOAD_SQL).fetchall()
        if not rows:
            version = conn.execute("SELECT boundary_version()").fetchone()[0]
            return cls(version, [], [], [], [], np.array([], dtype=object))
        codes, names, villages, townships, wkbs, versions = zip(*rows, strict=True)
        return cls(versions[0], list(codes), list(names), list(villages), list(townships),
                   shapely.from_wkb(np.array(wkbs, dtype=object)))

    def __len__(self) -> int:
        return len(self.codes)

    def _build_raster(self) -> None:
        if not len(self.geoms):
            self.raster = np.full((1, 1), -1, dtype=np.int32)
            self.x0 = self.y0 = 0.0
            self.dx = self.dy = 1.0
            return
        minx, miny, maxx, maxy = shapely.total_bounds(self.geoms)
        cell = max(maxx - minx, maxy - miny) / RASTER_SIDE
        # Two cells of margin, so every point of the extent falls in a cell with neighbours.
        self.x0, self.y0, self.dx, self.dy = minx - 2 * cell, miny - 2 * cell, cell, cell
        width = int(np.ceil((maxx - minx) / cell)) + 4
        height = int(np.ceil((maxy - miny) / cell)) + 4
        labels = np.zeros((height, width), dtype=np.int32)
        borders = np.zeros((height, width), dtype=np.uint8)
        scale = 1 << _SHIFT
        for row, geom in enumerate(self.geoms):
            for poly in shapely.get_parts(geom):
                rings = [poly.exterior, *poly.interiors]
                pts = [np.round(((np.asarray(r.coords) - (self.x0, self.y0)) / (self.dx, self.dy) - 0.5) * scale)
                       .astype(np.int32) for r in rings]
                # fillPoly leaves holes untouched, so an enclosed grid drawn earlier survives.
                cv2.fillPoly(labels, pts, row + 1, lineType=cv2.LINE_8, shift=_SHIFT)
                # Any cell a border passes through has its centre within 0.71 px of it.
                cv2.polylines(borders, pts, True, 1, thickness=3, lineType=cv2.LINE_8, shift=_SHIFT)
        self.raster = labels - 1
        self.raster[borders.astype(bool)] = _MIXED

    def match(self, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
        """Row of the grid holding each point (see `codes`), -1 where no grid does."""
        lon = np.asarray(lon, dtype=np.float64)
        lat = np.asarray(lat, dtype=np.float64)
        col = np.floor((lon - self.x0) / self.dx)
        row = np.floor((lat - self.y0) / self.dy)
        h, w = self.raster.shape
        inside = (col >= 0) & (col < w) & (row >= 0) & (row < h)
        out = np.full(lon.shape, -1, dtype=np.int64)
        out[inside] = self.raster[row[inside].astype(np.intp), col[inside].astype(np.intp)]
        mixed = np.flatnonzero(out == _MIXED)
        if len(mixed):
            out[mixed] = self._exact(lon[mixed], lat[mixed])
        return out

    def _exact(self, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
        """Polygon tests for points near borders; lowest row (= lowest code) wins."""
        points = shapely.points(lon, lat)
        pt_idx, grid_idx = self.tree.query(points, predicate="covered_by")
        out = np.full(len(points), np.iinfo(np.int64).max, dtype=np.int64)
        np.minimum.at(out, pt_idx, grid_idx)
        out[out == np.iinfo(np.int64).max] = -1
        return out

    def nearest(self, lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Row of the nearest grid and the distance to it in metres, for points outside all grids."""
        if not len(self.codes):
            return np.full(len(lon), -1), np.full(len(lon), np.nan)
        lon, lat = np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)
        x, y = self.to_metric.transform(lon, lat)
        near = np.isfinite(x) & np.isfinite(y)
        rows = np.full(len(x), -1, dtype=np.int64)
        meters = np.full(len(x), np.nan)
        if near.any():
            (pt_idx, grid_idx), dist = self.metric_tree.query_nearest(
                shapely.points(x[near], y[near]), return_distance=True, all_matches=False)
            rows[np.flatnonzero(near)[pt_idx]] = grid_idx
            meters[np.flatnonzero(near)[pt_idx]] = dist
        for i in np.flatnonzero(~near):
            rows[i], meters[i] = self._far(lon[i], lat[i])
        return rows, meters

    def _far(self, lon: float, lat: float) -> tuple[int, float]:
        """The nearest grid of a point the metric CRS cannot hold (half a world away, as a
        device without a position fix reports 0, 0): found in degrees, the way measured on the
        sphere."""
        point = shapely.Point(lon, lat)
        row = int(self.tree.query_nearest(point, all_matches=False)[0])
        to = shapely.shortest_line(point, self.geoms[row]).coords[-1]
        return row, float(metres_between(lon, lat, to[0], to[1]))

    def grid_at(self, lon: float, lat: float) -> int:
        """Row of the grid holding one point, or -1: `match` for one point, without the
        cost of building arrays (this answers every single-point request)."""
        col = math.floor((lon - self.x0) / self.dx)
        row = math.floor((lat - self.y0) / self.dy)
        h, w = self.raster.shape
        if not (0 <= col < w and 0 <= row < h):
            return -1
        label = int(self.raster[row, col])
        if label != _MIXED:
            return label
        hits = self.tree.query(shapely.Point(lon, lat), predicate="covered_by")
        return int(hits.min()) if len(hits) else -1

    def nearest_one(self, lon: float, lat: float) -> Nearest | None:
        """`nearest` for one point, with scalar calls (a quarter of the single lookups)."""
        if not len(self.codes):
            return None
        x, y = self.to_metric.transform(lon, lat)
        if not (math.isfinite(x) and math.isfinite(y)):
            row, metres = self._far(lon, lat)
            return Nearest(self.codes[row], round(metres, 1))
        # for one geometry, query_nearest gives the tree indices alone (not input/tree pairs)
        rows, meters = self.metric_tree.query_nearest(shapely.Point(x, y), return_distance=True, all_matches=False)
        return Nearest(self.codes[rows[0]], round(float(meters[0]), 1))


class LiveIndex:
    """The current `GridIndex` of a process, reloaded when the boundary version changes:
    at once on the import's NOTIFY, and on every poll of `Changes` in case one was missed."""

    def __init__(self, changes: Changes) -> None:
        self._index: GridIndex | None = None
        self._lock = threading.Lock()
        changes.subscribe(CHANNEL, self.refresh)
        try:
            with psycopg.connect(changes.url, connect_timeout=5) as conn:
                self.refresh(conn)
        except psycopg.Error as exc:
            log.warning("grid index not loaded at start-up: %s", exc)

    @property
    def index(self) -> GridIndex:
        index = self._index
        if index is None:
            raise Unavailable("the grid index is not loaded yet: the database has not answered since start-up")
        return index

    @property
    def version(self) -> int | None:
        """The loaded boundary version, None before the first load."""
        return self._index.version if self._index is not None else None

    def refresh(self, conn: psycopg.Connection) -> bool:
        """Load the index if the stored version differs from ours; True if it did."""
        version = conn.execute("SELECT boundary_version()").fetchone()[0]
        if self._index is not None and self._index.version == version:
            return False
        with self._lock:
            index = GridIndex.load(conn)
            self._index = index
        log.info("grid index: boundary version %s, %s grids", index.version, len(index))
        return True
