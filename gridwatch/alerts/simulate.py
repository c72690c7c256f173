"""A realistic feed of camera alerts: hot spots, repeats of one happening, resent events,
and the odd bad message. `Feed` makes the alerts (the demo's 30 days of history use it
too); `simulate` posts them to a running server at a steady rate.
"""

import asyncio
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import httpx
import numpy as np

# What each kind of place tends to raise (weights).
CONTEXT_TYPES = {
    "railway": {"railway_intrusion": 5, "livestock_on_road": 3, "fire_smoke": 1},
    "road": {"traffic_accident": 4, "road_obstruction": 4, "livestock_on_road": 3, "fire_smoke": 1},
    "pasture": {"livestock_on_road": 4, "fire_smoke": 3, "flood_water": 2, "illegal_dumping": 1},
    "town": {"traffic_accident": 3, "sewer_overflow": 3, "fire_smoke": 2, "illegal_dumping": 3, "road_obstruction": 2,
             "fallen_person": 1, "flood_water": 1},
}
# Alerts per hour of the day, relative (night is quiet).
HOURLY = np.array([2, 1, 1, 1, 1, 2, 4, 7, 9, 9, 8, 8, 9, 9, 8, 8, 9, 10, 10, 9, 7, 5, 4, 3], dtype=float)


def context(camera_name: str) -> str:
    name = camera_name.lower()
    if name.startswith("railway"):
        return "railway"
    if name.startswith("pasture"):
        return "pasture"
    if " km " in name:
        return "road"
    return "town"


@dataclass
class Feed:
    """Makes alerts in the wire format from a list of camera features."""

    cameras: list[dict]
    seed: int = 7
    rng: np.random.Generator = field(init=False)
    recent: list[dict] = field(default_factory=list)  # happenings of the last minutes

    def __post_init__(self) -> None:
        self.rng = np.random.default_rng(self.seed)
        n = len(self.cameras)
        # Trouble clusters where people are: cameras within 3 km of the two densest spots
        # carry about half the alerts, so neighbouring grids run hot together.
        xy = np.array([c["geometry"]["coordinates"] for c in self.cameras], dtype=float)
        km = np.hypot((xy[:, None, 0] - xy[None, :, 0]) * 89.0, (xy[:, None, 1] - xy[None, :, 1]) * 111.0)
        density = (km < 3.0).sum(axis=1)
        first = int(np.argmax(density))
        second = int(np.argmax(np.where(km[first] > 10.0, density, -1)))
        near = (km[first] < 3.0) | (km[second] < 3.0)
        weights = np.ones(n)
        weights[near] = max(1.0, (n - near.sum()) / max(near.sum(), 1))
        self.weights = weights / weights.sum()

    def alert(self, when: datetime) -> dict:
        """One alert at `when`: a third are repeats of a happening of the last 10 minutes
        (same camera and type, a new event), as when a camera keeps seeing the same fire."""
        self.recent = [r for r in self.recent if when - r["at"] <= timedelta(minutes=10)]
        if self.recent and self.rng.random() < 0.35:
            base = self.recent[int(self.rng.integers(len(self.recent)))]
            return self._make(base["camera"], base["type"], when)
        camera = self.cameras[int(self.rng.choice(len(self.cameras), p=self.weights))]
        types = CONTEXT_TYPES[context(camera["properties"]["name"])]
        kind = str(self.rng.choice(list(types), p=np.array(list(types.values())) / sum(types.values())))
        self.recent.append({"camera": camera, "type": kind, "at": when})
        return self._make(camera, kind, when)

    def _make(self, camera: dict, kind: str, when: datetime) -> dict:
        props = camera["properties"]
        alert = {"source": "simulator", "event_id": uuid.uuid4().hex, "camera_id": camera["id"], "type": kind,
                 "score": round(float(self.rng.uniform(0.45, 0.99)), 3), "occurred_at": when.isoformat()}
        if props.get("calibrated") and props.get("frame_size"):
            w, h = props["frame_size"]
            x = float(self.rng.uniform(0.2, 0.8)) * w
            y = float(self.rng.uniform(0.62, 0.97)) * h
            alert.update(box=[round(x - 40, 1), round(y - 120, 1), round(x + 40, 1), round(y, 1)], frame_size=[w, h])
        return alert

    def history(self, start: datetime, end: datetime, per_day: float) -> list[dict]:
        """Alerts between start and end following the day's rhythm; each happening is
        seen again a few times over the next minutes, as cameras do."""
        hours = int((end - start).total_seconds() // 3600)
        out = []
        for h in range(hours):
            t0 = start + timedelta(hours=h)
            n = self.rng.poisson(per_day * HOURLY[t0.hour] / HOURLY.sum() * 0.6)
            for s in np.sort(self.rng.uniform(0, 3600, n)):
                first = t0 + timedelta(seconds=float(s))
                base = self.alert(first)
                out.append(base)
                camera = next(c for c in self.cameras if c["id"] == base["camera_id"])
                for k in range(int(self.rng.geometric(0.55)) - 1):
                    when = first + timedelta(minutes=float(self.rng.uniform(1, 6)) * (k + 1))
                    if when < end:
                        out.append(self._make(camera, base["type"], when))
        return sorted(out, key=lambda a: a["occurred_at"])

    def spoil(self, alert: dict) -> dict:
        """The odd bad message real cameras send: no timezone, or an impossible score."""
        bad = dict(alert)
        if self.rng.random() < 0.5:
            bad["occurred_at"] = bad["occurred_at"][:19]
        else:
            bad["score"] = 1.7
        return bad


@dataclass
class Stats:
    sent: int = 0
    created: int = 0
    repeated: int = 0
    refused: int = 0
    failed: int = 0
    latencies_ms: list[float] = field(default_factory=list)

    def summary(self) -> str:
        lat = np.array(self.latencies_ms) if self.latencies_ms else np.zeros(1)
        return (f"sent {self.sent}: {self.created} created, {self.repeated} repeats (200), {self.refused} refused "
                f"(422, on purpose), {self.failed} failed; latency p50 {np.percentile(lat, 50):.1f} ms, "
                f"p99 {np.percentile(lat, 99):.1f} ms")


async def simulate(url: str, key: str, rate: float, duration: float, seed: int = 7, progress=print) -> Stats:
    """Post a realistic feed to a running server at `rate` alerts/s for `duration` s."""
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=30) as client:
        r = await client.get("/cameras", params={"limit": 10_000, "active": "true"})
        if r.status_code != 200:
            raise RuntimeError(f"cannot list cameras with this key ({r.status_code}): {r.text[:200]}")
        feed = Feed(r.json()["features"], seed=seed)
        stats = Stats()
        sent: list[dict] = []
        tasks = set()
        start = time.monotonic()
        n_total = int(rate * duration)
        for i in range(n_total):
            await asyncio.sleep(max(0.0, start + i / rate - time.monotonic()))
            alert = feed.alert(datetime.now(UTC))
            roll = feed.rng.random()
            if roll < 0.01:
                alert = feed.spoil(alert)
            elif roll < 0.03 and sent:
                alert = sent[int(feed.rng.integers(len(sent)))]  # a camera resending an event
            sent = (sent + [alert])[-100:]
            task = asyncio.create_task(_post(client, alert, stats))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            if i and i % max(1, int(rate * 5)) == 0:
                progress(f"{i}/{n_total} sent")
        await asyncio.gather(*tasks)
    return stats


async def _post(client: httpx.AsyncClient, alert: dict, stats: Stats) -> None:
    started = time.perf_counter()
    stats.sent += 1
    try:
        r = await client.post("/alerts", json=alert)
    except httpx.HTTPError:
        stats.failed += 1
        return
    stats.latencies_ms.append((time.perf_counter() - started) * 1000)
    if r.status_code == 201:
        stats.created += 1
    elif r.status_code == 200:
        stats.repeated += 1
    elif r.status_code == 422:
        stats.refused += 1
    else:
        stats.failed += 1
