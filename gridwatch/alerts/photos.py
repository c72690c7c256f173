"""Photos a team takes on the scene, stored with the incident like a camera's snapshot.

A phone's JPEG carries metadata (GPS position, device, owner, time) that says more about
the person holding it than about the incident: every photo is decoded and encoded anew
(gridwatch.jpeg), which keeps the pixels (turned upright as the phone meant) and nothing
else, and is scaled down to a size a command room needs.
"""

from datetime import datetime

import psycopg

from gridwatch import jpeg
from gridwatch.alerts import assignments
from gridwatch.errors import Forbidden, NotFound, TooLarge

MAX_UPLOAD_BYTES = 6 * 1024 * 1024  # under the server's body limit, with a clearer message
MAX_SIDE_PX = 1600


def clean_jpeg(data: bytes) -> bytes:
    """The photo re-encoded: upright, at most MAX_SIDE_PX on its longer side, no metadata.
    Raises TooLarge, or BadInput for what is not a whole JPEG of a sensible size."""
    if len(data) > MAX_UPLOAD_BYTES:
        raise TooLarge(f"the photo is {len(data):,} bytes; at most {MAX_UPLOAD_BYTES:,}")
    return jpeg.write(jpeg.read(data, MAX_SIDE_PX))


def check_may_add(conn: psycopg.Connection, incident_id: int, team_id: str | None) -> None:
    """Raises NotFound for no such incident, Forbidden for a team (`team_id`) not working
    on it: checked before a photo is decoded, which takes memory and time."""
    if conn.execute("SELECT 1 FROM incidents WHERE id = %s", [incident_id]).fetchone() is None:
        raise NotFound(f"no incident {incident_id}")
    if team_id is not None and not assignments.concerns(conn, team_id, incident_id, working=True):
        raise Forbidden(f"incident {incident_id} is not assigned to team {team_id}")


def add_photo(conn: psycopg.Connection, incident_id: int, jpeg: bytes, actor: str, now: datetime) -> int:
    """Store a cleaned photo with the incident; returns its number (1, 2, ...)."""
    with conn.transaction():
        if conn.execute("SELECT 1 FROM incidents WHERE id = %s FOR UPDATE", [incident_id]).fetchone() is None:
            raise NotFound(f"no incident {incident_id}")
        n = conn.execute("INSERT INTO incident_photos (incident_id, n, taken_at, actor, jpeg) "
                         "SELECT %s, coalesce(max(n), 0) + 1, %s, %s, %s FROM incident_photos WHERE incident_id = %s "
                         "RETURNING n", [incident_id, now, actor, jpeg, incident_id]).fetchone()[0]
        conn.execute("INSERT INTO incident_events (incident_id, at, actor, action, from_status, to_status, note) "
                     "SELECT id, %s, %s, 'photo', status, status, %s FROM incidents WHERE id = %s",
                     [now, actor, f"photo {n}", incident_id])
        conn.execute("UPDATE incidents SET updated_at = %s WHERE id = %s", [now, incident_id])
    return n


def photo(conn: psycopg.Connection, incident_id: int, n: int) -> bytes:
    row = conn.execute("SELECT jpeg FROM incident_photos WHERE incident_id = %s AND n = %s", [incident_id, n]
                       ).fetchone()
    if row is None:
        raise NotFound(f"incident {incident_id} has no photo {n}")
    return bytes(row[0])
