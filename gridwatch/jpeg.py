"""JPEG in and out, for what phones and cameras send. The picture's size is read from its
header before anything is decoded (a few kilobytes can claim a size whose decoding takes
gigabytes), it is decoded at reduced size where that still leaves enough, one at a time per
process, and it is written anew: the pixels alone, without what a device writes into a JPEG
(its position, the device, the owner, the time)."""

import threading

import cv2
import numpy as np

from gridwatch.errors import BadInput

# A phone's camera makes up to 50 MP; a header claiming more is no photo.
MAX_PIXELS = 50_000_000
MAX_ASPECT = 20  # even a panorama is not longer than this to one
QUALITY = 85
# Decoding takes the memory of the whole picture: one at a time per process.
_decoding = threading.Semaphore(1)
# Start-of-frame markers, which carry the picture's size (not DHT C4, JPG C8, DAC CC).
_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
_REDUCED = {1: cv2.IMREAD_COLOR, 2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4,
            8: cv2.IMREAD_REDUCED_COLOR_8}


def size(data: bytes) -> tuple[int, int] | None:
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


def require_jpeg(data: bytes) -> None:
    """Raises BadInput unless the data starts as a JPEG does (what a PNG or a text is not)."""
    if not data.startswith(b"\xff\xd8\xff"):
        raise BadInput("the body must be a JPEG picture (Content-Type: image/jpeg)")


def checked_size(data: bytes) -> tuple[int, int]:
    """(width, height) of a whole JPEG of a sensible size, from its header alone (cheap: say
    what is wrong before anything is decoded). Raises BadInput."""
    require_jpeg(data)
    if not data.rstrip(b"\x00").endswith(b"\xff\xd9"):
        raise BadInput("the picture is cut short (no end of image); send it again")
    claimed = size(data)
    if claimed is None or min(claimed) < 1:
        raise BadInput("the picture has no readable size; take it again")
    width, height = claimed
    if width * height > MAX_PIXELS:
        raise BadInput(f"the picture claims {width}×{height} pixels; at most {MAX_PIXELS // 1_000_000} MP")
    if max(claimed) > MAX_ASPECT * min(claimed):
        raise BadInput(f"the picture claims {width}×{height} pixels, which is no picture's shape; take it again")
    return claimed


def read(data: bytes, max_side: int) -> np.ndarray:
    """The picture (BGR), upright as the device meant, at most `max_side` pixels on its longer
    side. Raises BadInput for what is not a whole JPEG of a sensible size."""
    claimed = checked_size(data)
    # decoded at 1/2, 1/4 or 1/8 where that still leaves max_side: less memory, the same result
    reduce = next(f for f in (8, 4, 2, 1) if f == 1 or max(claimed) // f >= max_side)
    with _decoding:
        try:
            image = cv2.imdecode(np.frombuffer(data, np.uint8), _REDUCED[reduce])  # applies the EXIF orientation
        except cv2.error:
            image = None
    if image is None:
        raise BadInput("the picture could not be read as a JPEG; take it again")
    h, w = image.shape[:2]
    scale = max_side / max(h, w)
    if scale < 1:
        image = cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    return image


def write(image: np.ndarray) -> bytes:
    """The picture as a new JPEG: its pixels and nothing else."""
    ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, QUALITY])
    if not ok:
        raise BadInput("the picture could not be stored as a JPEG; take it again")
    return encoded.tobytes()
