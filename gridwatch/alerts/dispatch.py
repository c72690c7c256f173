"""Which team should go: the available team responsible for the grid, else the nearest
available team by ETA. Every choice carries a reason a dispatcher can read. Busy teams
are listed after every available one, saying what they are busy with; off-duty teams never.

Distances are great-circle metres times a detour factor (no road network yet); ETA is that
over the speed of the team's kind.
"""

from dataclasses import dataclass, replace
from datetime import datetime

import numpy as np
import psycopg

from gridwatch.alerts.patrols import POSITION_FRESH
from gridwatch.geo.crs import metres_between

SPEED_KMH = {"foot": 5.0, "motorcycle": 40.0, "car": 60.0}
# Roads wind: a straight line underestimates the way by about this much.
DETOUR = 1.3

# Every team, its status, latest ping, grids and the incidents it is working on.
BOARD_SQL = """
SELECT t.id, t.name, t.kind, t.status, ST_X(t.base), ST_Y(t.base), l.at, ST_X(l.geom), ST_Y(l.geom),
       coalesce(g.grids, '{}'), coalesce(w.incidents, '{}')
FROM teams t
LEFT JOIN LATERAL (SELECT at, geom FROM team_positions p WHERE p.team_id = t.id ORDER BY at DESC LIMIT 1) l ON true
LEFT JOIN (SELECT team_id, array_agg(grid_code) AS grids FROM team_grids GROUP BY team_id) g ON g.team_id = t.id
LEFT JOIN (SELECT team_id, array_agg(incident_id ORDER BY dispatched_at) AS incidents FROM assignments
           WHERE cleared_at IS NULL GROUP BY team_id) w ON w.team_id = t.id
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
    status: str = "available"
    busy_with: tuple[int, ...] = ()  # the incidents it is working on

    def as_dict(self) -> dict:
        return {"team_id": self.team_id, "name": self.name, "kind": self.kind, "status": self.status,
                "busy_with": list(self.busy_with), "needs_override": self.status != "available",
                "responsible": self.responsible,
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
        self.busy_with = [tuple(r[10]) for r in rows]
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
        """Teams best first: the available ones (responsible for the grid, then by ETA),
        then the busy ones in the same order; the first `limit`, and the teams responsible
        for the grid wherever they rank (a dispatcher may want to send them all the same).
        With none available, also the reason why."""
        candidates: list[Candidate] = []
        for status in ("available", "busy"):
            teams = np.flatnonzero(self.status == status)
            if not len(teams):
                continue
            distance, eta, responsible = self._measure(np.array([lon]), np.array([lat]), [grid_code], teams)
            order = np.lexsort((eta[0], ~responsible[0]))
            candidates += [self._candidate(int(teams[k]), bool(responsible[0, k]), grid_code, distance[0, k],
                                           eta[0, k]) for k in order]
        shown = candidates[:limit] + [c for c in candidates[limit:] if c.responsible]
        if not shown or shown[0].status != "available":
            return shown, self.none_reason()
        shown[0] = self._note_responsible(shown[0], grid_code)
        return shown, None

    def best(self, lon: float, lat: float, grid_code: str | None, taken: frozenset[str] = frozenset()
             ) -> Candidate | None:
        return self.best_many([lon], [lat], [grid_code], taken)[0]

    def best_many(self, lons: list[float], lats: list[float], grids: list[str | None],
                  taken: frozenset[str] = frozenset()) -> list[Candidate | None]:
        """The first recommendation for each of many places at once (a batch's new
        incidents), leaving out the teams `taken` (sent elsewhere meanwhile)."""
        available = np.flatnonzero(self.status == "available")
        if taken:
            available = np.array([i for i in available if self.ids[i] not in taken], dtype=int)
        if not len(available):
            return [None] * len(lons)
        distance, eta, responsible = self._measure(np.asarray(lons, float), np.asarray(lats, float), grids,
                                                   available)
        # responsible teams first: push the others back by more than any ETA
        pick = np.argmin(eta + np.where(responsible, 0.0, 1e12), axis=1)
        rows = np.arange(len(lons))
        return [self._note_responsible(self._candidate(int(available[k]), bool(responsible[r, k]), grid,
                                                       distance[r, k], eta[r, k]), grid)
                for r, k, grid in zip(rows, pick, grids, strict=True)]

    def _measure(self, lons: np.ndarray, lats: np.ndarray, grids: list[str | None], available: np.ndarray):
        """Distance (m), ETA (min) and responsibility of each available team for each place."""
        distance = metres_between(lons[:, None], lats[:, None], self.lon[available][None, :],
                                self.lat[available][None, :]) * DETOUR
        eta = distance / self.speed_mpm[available][None, :]
        masks: dict[str | None, np.ndarray] = {}
        for grid in set(grids):
            teams = self.responsible_for.get(grid, set())
            masks[grid] = np.array([i in teams for i in available], dtype=bool)
        responsible = np.vstack([masks[g] for g in grids]) if grids else np.zeros((0, len(available)), bool)
        return distance, eta, responsible

    def _candidate(self, i: int, responsible: bool, grid_code: str | None, distance: float, eta: float) -> Candidate:
        return Candidate(self.ids[i], self.names[i], self.kinds[i], responsible, float(distance), float(eta),
                         "gps" if self.fresh[i] else "base", self._reason(i, responsible, grid_code, distance, eta),
                         self.status[i], self.busy_with[i])

    def _note_responsible(self, chosen: Candidate, grid_code: str | None) -> Candidate:
        """Say why the responsible team is not the one going."""
        responsible = self.responsible_for.get(grid_code, set())
        if chosen.responsible or not responsible:
            return chosen
        others = ", ".join(sorted(f"{self.ids[i]} is {self.status[i].replace('_', ' ')}" for i in responsible))
        return replace(chosen, reason=f"{chosen.reason}; the responsible team cannot go ({others})")

    def none_reason(self) -> str:
        if not self.ids:
            return "no teams are registered"
        busy = int((self.status == "busy").sum())
        off = int((self.status == "off_duty").sum())
        return f"no team is available ({busy} busy, {off} off duty)"

    def _reason(self, i: int, responsible: bool, grid_code: str | None, distance: float, eta: float) -> str:
        if self.status[i] == "busy":
            working = f" with incident {', '.join(map(str, self.busy_with[i]))}" if self.busy_with[i] else ""
            head = f"busy{working}" + (f"; responsible for grid {grid_code}" if responsible else "")
        else:
            head = f"responsible for grid {grid_code} and available" if responsible else "nearest available team"
        age = self.gps_age_min[i]
        if self.fresh[i]:
            where = f"GPS {age:.0f} min ago"
        elif age is None:
            where = "no GPS yet, from its base"
        else:
            where = f"last GPS {age:.0f} min ago is stale, from its base"
        return f"{head}: {distance / 1000:.1f} km, about {eta:.0f} min by {self.kinds[i]} ({where})"

