"""The video fleet's leases, server side: which host runs which camera's stream.

A streamed camera has one lease row (migration 0016). A host's heartbeat renews the leases it
holds, reports each stream's frame rate, last frame and error, gives back what exceeds its fair
share (the streams in proportion to the live hosts' slots) and claims free or expired leases up
to that share: claims lock rows with FOR UPDATE SKIP LOCKED, so hosts claiming at once never
wait on, or take, the same camera. A host that stops heartbeating loses its leases when they
expire and the others take them. Each claim draws a new fencing token; an alert carries it and
is stored only while it is the camera's current token (`fence`, in the alert's transaction).
"""

import enum
import math
from dataclasses import dataclass
from datetime import datetime

import psycopg
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from gridwatch.errors import Conflict


class FleetSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GRIDWATCH_FLEET_")

    # A host that has not renewed its leases for this long loses them to the other hosts.
    lease_s: float = Field(60.0, ge=5, le=3600)

    @property
    def heartbeat_s(self) -> float:
        """How often hosts renew: four chances before a lease runs out."""
        return self.lease_s / 4


class StreamState(enum.StrEnum):
    """A streamed camera as the command room sees it."""

    RUNNING = "running"  # a host holds it and frames arrive
    STARTING = "starting"  # claimed within the last two heartbeats, no frame reported yet
    STALLED = "stalled"  # held, but no frame lately, or its host missed two heartbeats
    NO_DETECTOR = "no_detector"  # nobody runs it: no host, or its host's lease ran out


@dataclass(frozen=True)
class Report:
    """What a host says of one stream it holds. The last frame's age is by the host's own
    clock, so a host whose clock is off still shows its streams as they are."""

    camera_id: str
    token: int
    fps: float | None = None
    frames: int | None = None
    frame_age_s: float | None = None
    error: str | None = None


# The host joins (or is seen again); a live host's name stays its key's. Returns nothing when
# another key holds the name.
_UPSERT_HOST = """
INSERT INTO video_hosts (name, key_id, slots, started_at, seen_at) VALUES (%(host)s, %(key)s, %(slots)s, now(), now())
ON CONFLICT (name) DO UPDATE SET key_id = excluded.key_id, slots = excluded.slots, seen_at = excluded.seen_at,
    started_at = CASE WHEN video_hosts.key_id = excluded.key_id THEN video_hosts.started_at ELSE now() END
WHERE video_hosts.key_id = excluded.key_id OR video_hosts.seen_at < now() - %(ttl)s * interval '1 s'
RETURNING 1"""

# Renew the reported leases this host (and key) still holds by the same token, on active,
# streamed cameras; a password the error may quote is masked. Returns their ids.
_RENEW = """
UPDATE video_leases l SET renewed_at = now(), expires_at = now() + %(ttl)s * interval '1 s',
    fps = r.fps, frames = r.frames, last_frame_at = now() - r.age * interval '1 s',
    error = replace(r.error, c.stream_url, masked_url(c.stream_url))
FROM unnest(%(ids)s::text[], %(tokens)s::bigint[], %(fps)s::real[], %(frames)s::bigint[],
            %(ages)s::float8[], %(errors)s::text[]) AS r(camera_id, token, fps, frames, age, error),
     cameras c
WHERE l.camera_id = r.camera_id AND l.token = r.token AND l.host = %(host)s AND l.key_id = %(key)s
  AND c.id = l.camera_id AND c.active AND c.stream_url IS NOT NULL
RETURNING l.camera_id"""

# This host's fair share: the streams in proportion to its slots among the live hosts' slots.
_SHARE = """
SELECT (SELECT count(*) FROM video_leases l JOIN cameras c ON c.id = l.camera_id
        WHERE c.active AND c.stream_url IS NOT NULL),
       (SELECT coalesce(sum(slots), 0) FROM video_hosts WHERE seen_at > now() - %(ttl)s * interval '1 s')"""

# Free the given leases if this host (and key) still holds them by these tokens.
_RELEASE = """
UPDATE video_leases l SET host = NULL, key_id = NULL, expires_at = NULL, fps = NULL, frames = NULL,
    last_frame_at = NULL, error = NULL
FROM unnest(%(ids)s::text[], %(tokens)s::bigint[]) AS r(camera_id, token)
WHERE l.camera_id = r.camera_id AND l.token = r.token AND l.host = %(host)s AND l.key_id = %(key)s
RETURNING l.camera_id"""

# Claim up to n free or expired leases of active, streamed cameras, skipping rows another
# host is claiming; each claim draws a new fencing token.
_CLAIM = """
UPDATE video_leases l SET host = %(host)s, key_id = %(key)s, token = nextval('video_lease_tokens'),
    claimed_at = now(),
    renewed_at = now(), expires_at = now() + %(ttl)s * interval '1 s', fps = NULL, frames = NULL,
    last_frame_at = NULL, error = NULL
FROM (SELECT l.camera_id FROM video_leases l JOIN cameras c ON c.id = l.camera_id
      WHERE c.active AND c.stream_url IS NOT NULL AND (l.expires_at IS NULL OR l.expires_at < now())
      ORDER BY l.camera_id LIMIT %(n)s FOR UPDATE OF l SKIP LOCKED) AS free
WHERE l.camera_id = free.camera_id
RETURNING l.camera_id"""

# The leases a host holds now, with what its detectors need: the stream whole, zones and masks.
_HELD = """
SELECT l.camera_id, l.token, c.stream_url, c.zones, c.privacy_masks, l.expires_at
FROM video_leases l JOIN cameras c ON c.id = l.camera_id
WHERE l.camera_id = ANY(%s) ORDER BY l.camera_id"""

# The lease an alert names, locked against a claim until the alert's transaction ends.
_FENCE = "SELECT token, key_id FROM video_leases WHERE camera_id = %s FOR SHARE"

# Every streamed camera and every host seen within a day, for GET /video/fleet.
_CAMERAS = """
SELECT c.id, c.name, l.host, coalesce(l.expires_at > now(), false) AS held, l.claimed_at, l.renewed_at,
       l.expires_at, l.fps, l.frames, l.last_frame_at, l.error,
       extract(epoch FROM now() - l.last_frame_at)::float8 AS frame_age_s,
       extract(epoch FROM now() - l.renewed_at)::float8 AS silent_s,
       extract(epoch FROM now() - l.claimed_at)::float8 AS held_s
FROM cameras c JOIN video_leases l ON l.camera_id = c.id
WHERE c.stream_url IS NOT NULL AND c.active ORDER BY c.id"""
_HOSTS = """
SELECT name, slots, started_at, seen_at, seen_at > now() - %s * interval '1 s' AS live
FROM video_hosts WHERE seen_at > now() - interval '1 day' ORDER BY name"""


def heartbeat(conn: psycopg.Connection, key_id: int, host: str, slots: int, reports: list[Report],
              settings: FleetSettings) -> list[dict]:
    """Renew what `host` holds, give back what exceeds its share, claim up to its share;
    returns every lease it holds afterwards (camera, token, stream, zones, masks, expiry).

    A reported lease that is missing from the answer was lost (taken over after it expired, or
    its camera was deactivated or lost its stream): the host stops that detector. Raises
    Conflict when a live host of another key has this name: a key speaks only for its hosts."""
    ttl = settings.lease_s
    mine = {"host": host, "key": key_id}
    with conn.transaction():
        if conn.execute(_UPSERT_HOST, {**mine, "slots": slots, "ttl": ttl}).fetchone() is None:
            raise Conflict(f"host name {host!r} is in use by a live host of another video key; give this host "
                           f"another --name")
        held = [r[0] for r in conn.execute(_RENEW, {
            **mine, "ttl": ttl, "ids": [r.camera_id for r in reports], "tokens": [r.token for r in reports],
            "fps": [r.fps for r in reports], "frames": [r.frames for r in reports],
            "ages": [r.frame_age_s for r in reports], "errors": [r.error for r in reports]})]
        lost = [r for r in reports if r.camera_id not in held]  # free those of deactivated cameras
        conn.execute(_RELEASE, {**mine, "ids": [r.camera_id for r in lost], "tokens": [r.token for r in lost]})
        streams, live_slots = conn.execute(_SHARE, {"ttl": ttl}).fetchone()
        share = min(slots, math.ceil(streams * slots / max(live_slots, slots)))
        if len(held) > share:
            tokens = {r.camera_id: r.token for r in reports}
            extra = sorted(held)[share:]
            conn.execute(_RELEASE, {**mine, "ids": extra, "tokens": [tokens[c] for c in extra]})
            held = sorted(held)[:share]
        elif len(held) < share:
            held += [r[0] for r in conn.execute(_CLAIM, {**mine, "ttl": ttl, "n": share - len(held)})]
        rows = conn.execute(_HELD, [held]).fetchall()
    return [{"camera_id": cid, "token": token, "stream_url": url, "zones": zones, "privacy_masks": masks,
             "expires_at": expires.isoformat()} for cid, token, url, zones, masks, expires in rows]


def release(conn: psycopg.Connection, key_id: int, host: str, leases: list[tuple[str, int]]) -> list[str]:
    """Give leases back at once (a host stopping), so other hosts need not wait for them to
    expire; returns the cameras freed. Leases already taken over, or held by another host or
    key, are left alone. The host leaves the fleet: the others' shares grow at once."""
    with conn.transaction():
        freed = [r[0] for r in conn.execute(_RELEASE, {"host": host, "key": key_id,
                                                       "ids": [c for c, _ in leases],
                                                       "tokens": [t for _, t in leases]})]
        conn.execute("DELETE FROM video_hosts WHERE name = %s AND key_id = %s", [host, key_id])
    return freed


def fence(conn: psycopg.Connection, camera_id: str, token: int, key_id: int) -> None:
    """Raise Conflict unless `token` is the camera's current lease and this key's. The lease
    row stays locked until the caller's transaction ends, so no claim can take the camera
    between this check and the alert's commit."""
    row = conn.execute(_FENCE, [camera_id]).fetchone()
    if row is None:
        raise Conflict(f"camera {camera_id!r} has no video lease: it has no stream_url, or does not exist")
    if tuple(row) != (token, key_id):
        raise Conflict(f"lease token {token} is not camera {camera_id!r}'s current lease: another host holds "
                       f"the camera now, or it was given back; this detector must stop")


def fleet(conn: psycopg.Connection, settings: FleetSettings) -> dict:
    """The fleet as the command room shows it: each host with its streams, and every streamed
    camera with its state (running, stalled, or no detector)."""
    cameras = []
    # A host reports every heartbeat: two missed, or a frame older than two, and the stream is
    # not running (a host killed without a word shows so long before its lease runs out).
    late = 2 * settings.heartbeat_s
    for (cid, name, host, held, claimed, renewed, expires, fps, frames, last_frame, error,
         age, silent, held_s) in conn.execute(_CAMERAS):
        if not held:  # what its last host said is no longer news
            state, host, claimed, renewed, expires, fps, frames, last_frame, error, age = \
                StreamState.NO_DETECTOR, *[None] * 9
        elif age is None and held_s <= late:
            state = StreamState.STARTING
        elif age is None or age > late or silent > late:
            state = StreamState.STALLED
        else:
            state = StreamState.RUNNING
        cameras.append({"camera_id": cid, "name": name, "state": state.value, "host": host, "fps": fps,
                        "frames": frames, "last_frame_at": _iso(last_frame),
                        "frame_age_s": None if age is None else round(age, 1), "error": error,
                        "claimed_at": _iso(claimed), "renewed_at": _iso(renewed), "expires_at": _iso(expires)})
    hosts = []
    for name, slots, started, seen, live in conn.execute(_HOSTS, [settings.lease_s]):
        mine = [c["camera_id"] for c in cameras if c["host"] == name]
        hosts.append({"name": name, "slots": slots, "live": live, "started_at": _iso(started),
                      "seen_at": _iso(seen), "cameras": mine,
                      "fps": round(sum(c["fps"] or 0 for c in cameras if c["host"] == name), 1)})
    return {"lease_s": settings.lease_s, "heartbeat_s": settings.heartbeat_s, "hosts": hosts, "cameras": cameras,
            "states": {s.value: sum(c["state"] == s.value for c in cameras) for s in StreamState}}


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None
