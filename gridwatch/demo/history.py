"""Thirty days of demo history, replayed in time order through the real pipeline: alerts
are ingested in 10-minute slices, each new incident gets a plausible life (acknowledged,
on scene, resolved, feedback, closed; sometimes late, sometimes a false alarm), and the
1-3-1 check runs every simulated hour. What would happen after now is left undone, so the
present has open and overdue incidents, as a real county does.
"""

import heapq
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import numpy as np
import orjson
import psycopg

from gridwatch.alerts.cameras import camera_collection
from gridwatch.alerts.deadlines import check_deadlines
from gridwatch.alerts.incidents import act
from gridwatch.alerts.ingest import ingest
from gridwatch.alerts.model import AlertIn
from gridwatch.alerts.simulate import Feed
from gridwatch.alerts.types import auto_dispatched
from gridwatch.errors import GridwatchError
from gridwatch.geo.grid_index import GridIndex

SLICE = timedelta(minutes=10)
PER_DAY = 400
DISPATCHER = "demo dispatcher (dispatcher)"
OPERATOR = "demo operator (operator)"
NOTES = {
    "fire_smoke": "fire put out; no one hurt", "flood_water": "water pumped away, drain cleared",
    "sewer_overflow": "blockage cleared by the sanitation crew", "traffic_accident": "vehicles moved, road open",
    "road_obstruction": "road cleared", "railway_intrusion": "line cleared, railway informed",
    "livestock_on_road": "herd moved off the road, herder told", "illegal_dumping": "waste removed",
    "fallen_person": "person helped home", "motion": "checked, nothing found",
}


def load_history(conn: psycopg.Connection, index: GridIndex, days: int, progress: Callable[[str], None],
                 now: datetime | None = None, seed: int = 30) -> int:
    """Replay `days` days up to `now`; returns the number of alerts stored."""
    end = (now or datetime.now(UTC)).replace(second=0, microsecond=0)
    end -= timedelta(minutes=end.minute % 10)
    start = end - timedelta(days=days)
    cameras = orjson.loads(camera_collection(conn, filters={"active": True}, limit=10_000))["features"]
    feed = Feed(cameras, seed=seed)
    rng = np.random.default_rng(seed)
    alerts = [AlertIn.model_validate(a) for a in feed.history(start, end, PER_DAY)]
    auto = auto_dispatched(conn)
    plans: list[tuple[datetime, int, int, str, str, str | None, str | None]] = []
    seen: set[int] = set()
    stored = 0
    k = 0
    t = start
    while t < end:
        t_end = t + SLICE
        while plans and plans[0][0] < t_end:
            when, _, iid, action, actor, note, team = heapq.heappop(plans)
            try:
                # the demo dispatcher sends the suggested team even when it is busy elsewhere
                act(conn, iid, action, actor, when, note=note, team_id=team, override=True)
            except GridwatchError:
                pass  # e.g. no team could be dispatched: its life stops here
        batch = []
        while k < len(alerts) and alerts[k].occurred_at < t_end:
            batch.append(alerts[k])
            k += 1
        if batch:
            for alert, result in zip(batch, ingest(conn, batch, index, t_end, check_future=False), strict=True):
                if result.incident_id and result.incident_id not in seen:
                    seen.add(result.incident_id)
                    for plan in _life(result.incident_id, alert.type, t_end, result.team_id, alert.type in auto, rng):
                        heapq.heappush(plans, plan)
            stored += len(batch)
        if t_end.minute == 0:
            check_deadlines(conn, t_end)
        if t_end.hour == 0 and t_end.minute == 0:
            conn.commit()
            progress(f"history: up to {t_end.date()}, {stored} alerts and {len(seen)} incidents so far")
        t = t_end
    conn.commit()
    return stored


def _life(iid: int, kind: str, created: datetime, team: str | None, dispatched: bool,
          rng: np.random.Generator) -> list[tuple]:
    """When each step of this incident's life happens (some of them late); the suggested
    `team` is sent unless the incident was `dispatched` at once."""
    steps = []
    t = created
    seq = iter(range(10))

    def step(after_min: float, action: str, actor: str, note: str | None = None, sent: str | None = None) -> None:
        nonlocal t
        t = t + timedelta(minutes=float(after_min))
        steps.append((t, iid * 10 + next(seq), iid, action, actor, note, sent))

    if not dispatched:
        step(rng.uniform(5, 40), "dispatch", DISPATCHER, sent=team)
    if rng.random() < 0.06:
        step(rng.uniform(10, 40), "false_alarm", DISPATCHER, "checked on camera: a reflection, nothing there")
        return steps
    step(rng.lognormal(3.0, 0.6) if rng.random() > 0.1 else rng.uniform(65, 180), "acknowledge", OPERATOR)
    step(rng.uniform(10, 90), "on_scene", OPERATOR)
    # most are put right on the spot within an hour or two (the team is busy until then); a few
    # wait for a department for days, some past the 3-day deadline
    step(rng.lognormal(4.3, 0.8) if rng.random() > 0.05 else rng.uniform(4, 90) * 60, "resolve", OPERATOR,
         NOTES.get(kind, "handled"))
    step(rng.uniform(2, 20) * 60 if rng.random() > 0.15 else rng.uniform(25, 48) * 60, "feedback", OPERATOR,
         "told the people who reported it what was done")
    step(rng.uniform(30, 360), "close", DISPATCHER)
    return steps
