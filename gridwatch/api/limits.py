"""Per-key request rates: one key cannot take the server from everyone else.

A token bucket per API key, in each server process (with N workers a key may reach N times
the rate; a proxy in front can hold a global limit). Camera ingest keys get their own,
higher rate: one NVR posts for many cameras.
"""

import time

from gridwatch.api.auth import Principal

BURST_S = 2.0  # a key may send this many seconds' worth of requests at once


class RateLimits:
    def __init__(self, per_s: float, ingest_per_s: float) -> None:
        self.per_s = per_s
        self.ingest_per_s = ingest_per_s
        self._buckets: dict[int, tuple[float, float]] = {}  # key id → (tokens, when counted)

    def rate(self, principal: Principal) -> float:
        return self.ingest_per_s if principal.role == "ingest" else self.per_s

    def wait_s(self, principal: Principal) -> float:
        """0 if the request may go now (and it is counted), else how long until it may. Runs
        on the event loop only, so it needs no lock."""
        rate = self.rate(principal)
        now = time.monotonic()
        tokens, then = self._buckets.get(principal.key_id, (rate * BURST_S, now))
        tokens = min(rate * BURST_S, tokens + (now - then) * rate)
        if tokens < 1:
            self._buckets[principal.key_id] = (tokens, now)
            return (1 - tokens) / rate
        if len(self._buckets) > 100_000:  # keys are few; this bounds memory all the same
            self._buckets.clear()
        self._buckets[principal.key_id] = (tokens - 1, now)
        return 0.0
