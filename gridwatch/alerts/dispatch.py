"""Which team should go (DESIGN §6): the available team responsible for the grid, else the
nearest available team by ETA. Every choice carries a reason a dispatcher can read.

Distances are great-circle metres times a detour factor (no road network yet); ETA is that
over the speed of the team's kind.
"""

from dataclasses import dataclass, replace
from datetime import datetime

import numpy as np
import psycopg

from gridwatch.alerts.patrols import POSITION_FRESH

SPEED_KMH = {"foot": 5.0, "motorcycle": 40.0, "car": 60.0}
# Roads wind: a straight line underestimates the way by about this much.
DETOUR = 1.3
EARTH_RADIUS_M = 6_371_000.0

# Every team, its status, latest ping and grids.
BOARD_SQL = """
SELECT t.id, t.name, t.kind, t.status, ST_X(t.base), ST_Y(t.base), l.at, ST_X(l.geom), ST_Y(l.geom),
       coalesce(g.grids, '{}')
FROM teams t
LEFT JOIN LATERAL (SELECT at, geom FROM team_positions p WHERE p.team_id = t.id ORDER BY at DESC LIMIT 1) l ON true
LEFT JOIN (SELECT team_id, array_agg(grid_code) AS grids FROM team_grids GROUP BY team_id) g ON g.team_id = t.id
ORDER BY t.id
"""


@dataclass(frozen=True)
class Candidate:
    team_id: str
    name: str
    kind: str
    responsible: bool
    distance_m: float
    eta_min: float
    position: str  # "gps" or "base"
    reason: str

    def as_dict(self) -> dict:
        return {"team_id": self.team_id, "name": self.name, "kind": self.kind, "responsible": self.responsible,
                "distance_m": round(self.distance_m), "eta_min": round(self.eta_min, 1),
                "position": self.position, "reason": self.reason}


class TeamBoard:
    """Every team with its status and where it is now, loaded once per ingest or request."""

    def __init__(self, rows: list[tuple], now: datetime) -> None:
        self.now = now
        self.ids = [r[0] for r in rows]
        self.names = [r[1] for r in rows]
        self.kinds = [r[2] for r in rows]
        self.status = np.array([r[3] for r in rows], dtype=object)
        fresh = np.array([r[6] is not None and now - r[6] <= POSITION_FRESH for r in rows], dtype=bool)
        self.gps_age_min = [(now - r[6]).total_seconds() / 60 if r[6] is not None else None for r in rows]
        self.fresh = fresh
        self.lon = np.array([r[7] if f else r[4] for r, f in zip(rows, fresh, strict=True)], dtype=float)
        self.lat = np.array([r[8] if f else r[5] for r, f in zip(rows, fresh, strict=True)], dtype=float)
        self.speed_mpm = np.array([SPEED_KMH[k] * 1000 / 60 for k in self.kinds])
        self.responsible_for: dict[str, set[int]] = {}
        for i, r in enumerate(rows):
            for grid in r[9]:
                self.responsible_for.setdefault(grid, set()).add(i)

    @classmethod
    def load(cls, conn: psycopg.Connection, now: datetime) -> "TeamBoard":
        return cls(conn.execute(BOARD_SQL).fetchall(), now)

    def recommend(self, lon: float, lat: float, grid_code: str | None, limit: int = 10
                  ) -> tuple[list[Candidate], str | None]:
        """Available teams, best first: responsible for the grid, then by ETA. With none
        available, an empty list and the reason why."""
        available = np.flatnonzero(self.status == "available")
        if not len(available):
            return [], self.none_reason()
        distance = _haversine_m(lon, lat, self.lon[available], self.lat[available]) * DETOUR
        eta = distance / self.speed_mpm[available]
        responsible = self.responsible_for.get(grid_code, set())
        is_responsible = np.array([i in responsible for i in available])
        order = np.lexsort((eta, ~is_responsible))[:limit]
        candidates = [Candidate(self.ids[i], self.names[i], self.kinds[i], bool(is_responsible[k]),
                                float(distance[k]), float(eta[k]), "gps" if self.fresh[i] else "base",
                                self._reason(i, bool(is_responsible[k]), grid_code, distance[k], eta[k]))
                      for k, i in ((int(k), int(available[k])) for k in order)]
        if responsible and not candidates[0].responsible:
            others = ", ".join(sorted(f"{self.ids[i]} is {self.status[i].replace('_', ' ')}" for i in responsible))
            candidates[0] = replace(candidates[0], reason=f"{candidates[0].reason}; the responsible team cannot go "
                                                          f"({others})")
        return candidates, None

    def best(self, lon: float, lat: float, grid_code: str | None) -> Candidate | None:
        candidates, _ = self.recommend(lon, lat, grid_code, limit=1)
        return candidates[0] if candidates else None

    def none_reason(self) -> str:
        if not self.ids:
            return "no teams are registered"
        busy = int((self.status == "busy").sum())
        off = int((self.status == "off_duty").sum())
        return f"no team is available ({busy} busy, {off} off duty)"

    def _reason(self, i: int, responsible: bool, grid_code: str | None, distance: float, eta: float) -> str:
        head = f"responsible for grid {grid_code} and available" if responsible else "nearest available team"
        age = self.gps_age_min[i]
        if self.fresh[i]:
            where = f"GPS {age:.0f} min ago"
        elif age is None:
            where = "no GPS yet, from its base"
        else:
            where = f"last GPS {age:.0f} min ago is stale, from its base"
        return f"{head}: {distance / 1000:.1f} km, about {eta:.0f} min by {self.kinds[i]} ({where})"


def _haversine_m(lon: float, lat: float, lons: np.ndarray, lats: np.ndarray) -> np.ndarray:
    phi1, phi2 = np.radians(lat), np.radians(lats)
    dphi = phi2 - phi1
    dlmb = np.radians(lons - lon)
    a = np.sin(dphi / 2) ** 2 + np.cos(phi1) * np.cos(phi2) * np.sin(dlmb / 2) ** 2
    return 2 * EARTH_RADIUS_M * np.arcsin(np.sqrt(a))
