"""Photos a team takes on the scene, stored with the incident like a camera's snapshot.

A phone's JPEG carries metadata (GPS position, device, owner, time) that says more about
the person holding it than about the incident: every photo is decoded and encoded anew,
which keeps the pixels (turned upright as the phone meant) and nothing else, and is
scaled down to a size a command room needs.
"""

import threading
from datetime import datetime

import cv2
import numpy as np
import psycopg

from gridwatch.errors import BadInput, NotFound, TooLarge

MAX_UPLOAD_BYTES = 6 * 1024 * 1024
# A phone's camera makes up to 50 MP; a header claiming more is no photo (a few kilobytes can
# claim a size whose decoding would take gigabytes).
MAX_PIXELS = 50_000_000
MAX_ASPECT = 20  # even a panorama is not longer than this to one
MAX_SIDE_PX = 1600
QUALITY = 85
# Decoding takes the memory of the whole picture: one at a time per process.
_decoding = threading.Semaphore(1)
# Start-of-frame markers, which carry the picture's size (not DHT C4, JPG C8, DAC CC).
_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def jpeg_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a JPEG's frame header, read without decoding; None if there is none."""
    i = 2
    while i + 9 < len(data):
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        length = int.from_bytes(data[i + 2:i + 4], "big")
        if marker in _SOF:
            return int.from_bytes(data[i + 7:i + 9], "big"), int.from_bytes(data[i + 5:i + 7], "big")
        i += 2 + length
    return None


def clean_jpeg(data: bytes) -> bytes:
    """The photo re-encoded: upright, at most MAX_SIDE_PX on its longer side, no metadata.
    Raises TooLarge, or BadInput for what is not a whole JPEG of a sensible size."""
    if len(data) > MAX_UPLOAD_BYTES:
        raise TooLarge(f"the photo is {len(data):,} bytes; at most {MAX_UPLOAD_BYTES:,}")
    if not data.startswith(b"\xff\xd8\xff"):
        raise BadInput("the body must be a JPEG photo (Content-Type: image/jpeg)")
    if not data.rstrip(b"\x00").endswith(b"\xff\xd9"):
        raise BadInput("the photo is cut short (no end of image); send it again")
    size = jpeg_size(data)
    if size is None or min(size) < 1:
        raise BadInput("the photo has no readable size; take it again")
    if size[0] * size[1] > MAX_PIXELS:
        raise BadInput(f"the photo claims {size[0]}×{size[1]} pixels; at most {MAX_PIXELS // 1_000_000} MP")
    if max(size) > MAX_ASPECT * min(size):
        raise BadInput(f"the photo claims {size[0]}×{size[1]} pixels, which is no photo's shape; take it again")
    # decode at 1/2, 1/4 or 1/8 of the size where that still leaves MAX_SIDE_PX: less memory, same result
    reduce = next(f for f in (8, 4, 2, 1) if f == 1 or max(size) // f >= MAX_SIDE_PX)
    flags = {1: cv2.IMREAD_COLOR, 2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4,
             8: cv2.IMREAD_REDUCED_COLOR_8}[reduce]
    with _decoding:
        try:
            image = cv2.imdecode(np.frombuffer(data, np.uint8), flags)  # applies the EXIF orientation
        except cv2.error:
            image = None
    if image is None:
        raise BadInput("the photo could not be read as a JPEG; take it again")
    height, width = image.shape[:2]
    scale = MAX_SIDE_PX / max(height, width)
    if scale < 1:
        image = cv2.resize(image, (max(1, round(width * scale)), max(1, round(height * scale))),
                           interpolation=cv2.INTER_AREA)
    ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, QUALITY])
    if not ok:
        raise BadInput("the photo could not be stored as a JPEG; take it again")
    return encoded.tobytes()


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
