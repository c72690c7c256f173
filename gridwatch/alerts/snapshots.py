"""An alert's snapshot: the frame a camera saw, kept with the alert as evidence.

Whatever a sender uploads is decoded and encoded anew (gridwatch.jpeg), so no metadata
(EXIF with GPS, device) survives, and the camera's privacy masks are blacked out here,
by the server, whether or not the sender applied them.
"""

import psycopg

from gridwatch import jpeg
from gridwatch.errors import Forbidden, NotFound, TooLarge
from gridwatch.video.motion import mask_frame, polygon_pixels

MAX_UPLOAD_BYTES = 2 * 1024 * 1024
MAX_SIDE_PX = 1920


def store(conn: psycopg.Connection, alert_id: int, data: bytes) -> None:
    """Store (or replace) the alert's snapshot as given: for frames the server made itself.

    The snapshot keeps its alert's time: retention deletes a month's snapshots by it when it
    drops the month's alerts (migration 0017)."""
    stored = conn.execute("INSERT INTO snapshots (alert_id, alert_occurred_at, jpeg) "
                          "SELECT id, occurred_at, %s FROM alerts WHERE id = %s ON CONFLICT (alert_id) DO UPDATE "
                          "SET jpeg = excluded.jpeg, taken_at = now()", [data, alert_id]).rowcount
    if not stored:
        raise NotFound(f"no alert {alert_id}")


def masks_of(conn: psycopg.Connection, alert_id: int, sender: int | None = None) -> list:
    """The privacy masks of the camera that raised the alert (none for an alert without
    one). With `sender` (an ingest key's id), Forbidden unless that key posted the alert."""
    row = conn.execute("SELECT coalesce(c.privacy_masks, '[]'::jsonb), a.key_id FROM alerts a "
                       "LEFT JOIN cameras c ON c.id = a.camera_id WHERE a.id = %s", [alert_id]).fetchone()
    if row is None:
        raise NotFound(f"no alert {alert_id}")
    if sender is not None and row[1] != sender:
        raise Forbidden(f"alert {alert_id} was posted by another key; a camera's key sends the snapshots of its "
                        f"own alerts only")
    return row[0]


def check_upload(data: bytes) -> None:
    """Raises TooLarge, or BadInput for what does not even start as a JPEG: before anything
    is looked up or decoded."""
    if len(data) > MAX_UPLOAD_BYTES:
        raise TooLarge(f"the snapshot is {len(data):,} bytes; at most {MAX_UPLOAD_BYTES:,}")
    jpeg.require_jpeg(data)


def cleaned(data: bytes, masks: list) -> bytes:
    """An uploaded snapshot re-encoded, masked, without metadata; raises BadInput for what
    is not a whole JPEG of a sensible size."""
    check_upload(data)
    image = jpeg.read(data, MAX_SIDE_PX)
    size = (image.shape[1], image.shape[0])
    return jpeg.write(mask_frame(image, [polygon_pixels(m, size) for m in masks]))


def snapshot(conn: psycopg.Connection, alert_id: int) -> bytes:
    row = conn.execute("SELECT jpeg FROM snapshots WHERE alert_id = %s", [alert_id]).fetchone()
    if row is None:
        raise NotFound(f"no snapshot for alert {alert_id}")
    return bytes(row[0])
