"""Hot and cold spots of incidents per grid: Getis-Ord Gi* (PySAL esda), queen contiguity,
the grid itself included; bins -3..3 for cold/hot at 90/95/99 % confidence after
false-discovery-rate correction, as ArcGIS's Hot Spot Analysis does.

Gi* does not change when the weights are row-standardised (Getis & Ord 1995: the statistic
and its variance scale together), but esda's analytic variance is only right for weights
given as they are, so they are passed binary (`transform="B"`) with the self-weight on the
diagonal; the z-scores are those of the row-standardised Gi*."""

import threading
import warnings
from datetime import datetime

import esda
import libpysal
import numpy as np
import psycopg
from scipy.stats import norm

from gridwatch.geo.grid_index import GridIndex
from gridwatch.stats.counts import Window, window_sql

_COUNTS_SQL = f"SELECT grid_code, count(*) FROM incidents i WHERE {window_sql('i', 'first_seen')} GROUP BY 1"
# (boundary version, township) -> weights; built once per boundary version.
_weights: dict[tuple[int, str | None], libpysal.weights.W] = {}
_lock = threading.Lock()
LEVELS = ((0.10, 1), (0.05, 2), (0.01, 3))


def queen_weights(index: GridIndex, rows: np.ndarray, key: tuple[int, str | None]) -> libpysal.weights.W:
    with _lock:
        if key not in _weights:
            # weights of older boundary versions are no use any more
            for old in [k for k in _weights if k[0] != key[0]]:
                del _weights[old]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # islands are fine: Gi* includes the grid itself
                queen = libpysal.weights.Queen.from_iterable(list(index.geoms[rows]), ids=list(index.codes[rows]))
                _weights[key] = libpysal.weights.fill_diagonal(queen, 1.0)
        return _weights[key]


def gi_star(y: np.ndarray, w: libpysal.weights.W) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """z-scores, two-sided p-values and FDR-corrected bins (-3..3) of Gi* for counts y."""
    if len(y) < 3 or np.allclose(y, y[0]):
        zeros = np.zeros(len(y))
        return zeros, np.ones(len(y)), zeros.astype(int)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        g = esda.G_Local(y.astype(float), w, transform="B", star=None, permutations=0)
    z = np.asarray(g.Zs, dtype=float)
    p = 2 * norm.sf(np.abs(z))
    bins = np.zeros(len(y), dtype=int)
    for alpha, level in LEVELS:
        significant = p <= esda.fdr(p, alpha)
        bins[significant] = level * np.sign(z[significant]).astype(int)
    return z, p, bins


def hotspots(conn: psycopg.Connection, window: Window, index: GridIndex, now: datetime) -> dict:
    rows = np.arange(len(index)) if window.township is None else np.flatnonzero(
        index.township_codes == window.township)
    counts = dict(conn.execute(_COUNTS_SQL, window.params()).fetchall())
    y = np.array([counts.get(code, 0) for code in index.codes[rows]], dtype=float)
    w = queen_weights(index, rows, (index.version, window.township))
    z, p, bins = gi_star(y, w)
    return {
        "metadata": {"method": "Getis-Ord Gi*", "variable": "incidents per grid",
                     "weights": "queen contiguity, the grid itself included (Gi*); row-standardised Gi* "
                                "z-scores (computed with binary weights, which give the same)",
                     "significance": "two-sided, false discovery rate (esda.fdr) at 90/95/99 %",
                     "bins": "-3..3: cold or hot at 99/95/90 % confidence, 0 not significant",
                     "esda": esda.__version__, "libpysal": libpysal.__version__, "computed_at": now.isoformat(),
                     "boundary_version": index.version},
        "grids": [{"code": index.codes[r], "name": index.names[r], "incidents": int(y[k]),
                   "z": round(float(z[k]), 3), "p": round(float(p[k]), 5), "bin": int(bins[k])}
                  for k, r in enumerate(rows)],
    }
