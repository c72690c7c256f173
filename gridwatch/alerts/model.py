"""The alert wire format. Unknown fields are kept, in `extra`.

What the database would refuse is refused here, alert by alert, so that one bad alert
never fails the others it shares a transaction with: a NUL character anywhere, control
characters in identifiers, times before EARLIEST (a camera whose clock was never set
sends 1970). Identifiers are compared in Unicode's composed form (NFC), so one event sent
as "café" composed and decomposed is one event.
"""

import re
import unicodedata
from datetime import UTC, datetime
from typing import Annotated

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

# Nothing gridwatch stores happened before this: an older time is a camera's unset clock.
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
MAX_BATCH = 10_000
MAX_FRAME_PX = 100_000  # beyond any camera's frame
Pixel = Annotated[float, Field(ge=-MAX_FRAME_PX, le=MAX_FRAME_PX)]
Side = Annotated[int, Field(gt=0, le=MAX_FRAME_PX)]


# Checked with one regex search each (in C): every alert of a million-alert import passes here.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def _identifier(value: str) -> str:
    if _CONTROL.search(value):
        raise ValueError("control characters are not allowed here")
    if value.isascii():
        return value  # ASCII is NFC already
    _storable(value)
    return unicodedata.normalize("NFC", value)


def _plausible(value: datetime) -> datetime:
    if value < EARLIEST:
        raise ValueError(f"{value.isoformat()} is before {EARLIEST.year}: the camera's clock is not set")
    return value


def _storable(value, path: str = "") -> None:
    """Refuses what PostgreSQL cannot store in the kept fields: a NUL character, half of a
    UTF-16 pair (JSON may escape one alone), an integer beyond 64 bits."""
    if isinstance(value, str):
        if "\x00" in value:
            raise ValueError(f"{path or 'a field'} holds a NUL character (\\u0000)")
        if _SURROGATE.search(value):
            raise ValueError(f"{path or 'a field'} holds half of a UTF-16 surrogate pair, which is not text")
    elif isinstance(value, int) and not -2**63 <= value < 2**63:
        raise ValueError(f"{path or 'a field'}: {value} does not fit in 64 bits")
    elif isinstance(value, dict):
        for k, v in value.items():
            _storable(k, path)
            _storable(v, f"{path}.{k}" if path else str(k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _storable(v, f"{path}[{i}]")


Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200),
                 AfterValidator(_identifier)]
Code = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64),
                 AfterValidator(_identifier)]


class AlertIn(BaseModel):
    """One camera alert. Position: explicit lon/lat, else the ground under the bottom-centre
    of `box` (through the camera's homography), else the camera's own position."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"example": {
        "source": "nvr-01", "event_id": "1764130000.12-ab12cd", "camera_id": "CAM-0042", "type": "fire_smoke",
        "score": 0.87, "occurred_at": "2026-11-26T08:15:00+08:00", "box": [410, 220, 520, 400],
        "frame_size": [1920, 1080]}})

    source: Text
    event_id: Text
    camera_id: Code
    type: Code
    score: Annotated[float, Field(ge=0, le=1)]
    occurred_at: Annotated[AwareDatetime, AfterValidator(_plausible)]
    box: tuple[Pixel, Pixel, Pixel, Pixel] | None = None
    frame_size: tuple[Side, Side] | None = None
    lon: Annotated[float, Field(ge=-180, le=180)] | None = None
    lat: Annotated[float, Field(ge=-90, le=90)] | None = None
    # set by posted_by(); no default, as a private attribute with one costs pydantic about 4 µs
    # an alert to set up (a third of validating a batch)
    _key_id: int | None

    @model_validator(mode="after")
    def _consistent(self) -> "AlertIn":
        _storable(self.model_extra)
        if (self.lon is None) != (self.lat is None):
            raise ValueError("give both lon and lat, or neither")
        if self.box is not None:
            x1, y1, x2, y2 = self.box
            if x2 <= x1 or y2 <= y1:
                raise ValueError(f"box {list(self.box)} must be [x1, y1, x2, y2] with x2 > x1 and y2 > y1")
            if x1 < 0 or y1 < 0:
                raise ValueError(f"box {list(self.box)} is outside the frame (negative pixels)")
            if self.frame_size is not None and (x2 > self.frame_size[0] or y2 > self.frame_size[1]):
                raise ValueError(f"box {list(self.box)} is outside the {self.frame_size[0]}×{self.frame_size[1]} "
                                 f"frame")
        return self

    @property
    def key_id(self) -> int | None:
        """The API key that posted the alert (not part of the wire format): only it may send
        the alert's snapshot. None for the server's own detector and MQTT listener."""
        return getattr(self, "_key_id", None)

    def posted_by(self, key_id: int) -> "AlertIn":
        self._key_id = key_id
        return self

    @property
    def extra(self) -> dict | None:
        return self.model_extra or None
