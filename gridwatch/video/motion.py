"""Motion that is worth an alert, in a camera's frames (OpenCV).

Each frame is scaled down, turned grey, blurred and has the privacy masks blacked out (a
masked area can never move); a MOG2 background model marks what changed; the changes are
opened, dilated and cut into boxes, kept if their area is plausible. A change over most of
the frame (lights, the IR switch, a shaking camera) is no object: the frame is skipped and
the background relearnt. A box becomes an object only after it has been seen in
PERSIST_FRAMES consecutive frames, and an object raises one alert per cooldown, not one per
frame (grouping then joins repeats into one incident).
"""

from dataclasses import dataclass, field

import cv2
import numpy as np

# Alert type of a detection outside every zone.
DEFAULT_TYPE = "motion"


@dataclass(frozen=True)
class MotionSettings:
    width: int = 320  # the width frames are scaled to before anything else
    blur: int = 5
    var_threshold: float = 25.0
    history: int = 300
    min_area: float = 0.0008  # of the frame
    max_area: float = 0.25
    whole_frame: float = 0.35  # this much of the frame changing at once is not an object
    persist_frames: int = 3
    cooldown_s: float = 30.0
    forget_frames: int = 10  # an object unseen this long is gone


@dataclass
class Detection:
    """An object worth an alert: its box in full-size pixels and the alert type of its zone."""

    track: int
    box: tuple[int, int, int, int]
    type: str
    zone: str | None
    first_seen: float
    at: float


@dataclass
class _Track:
    id: int
    box: np.ndarray  # x1, y1, x2, y2 in full-size pixels
    hits: int = 1
    missed: int = 0
    first_seen: float = 0.0
    last_alert: float | None = None


@dataclass
class Zone:
    name: str
    type: str
    polygon: np.ndarray  # pixels of the full-size frame


def polygon_pixels(relative: list[list[float]], size: tuple[int, int]) -> np.ndarray:
    return np.round(np.asarray(relative, dtype=float) * np.array(size, dtype=float)).astype(np.int32)


def mask_frame(frame: np.ndarray, masks: list[np.ndarray]) -> np.ndarray:
    """A copy of the frame with every privacy mask (pixel polygons) blacked out."""
    out = frame.copy()
    if masks:
        cv2.fillPoly(out, masks, (0, 0, 0) if out.ndim == 3 else 0)
    return out


@dataclass
class MotionDetector:
    frame_size: tuple[int, int]  # (width, height) of the camera's frames
    privacy_masks: list[list[list[float]]] = field(default_factory=list)  # relative polygons
    zones: list[dict] = field(default_factory=list)  # {"name", "type", "polygon" (relative)}
    settings: MotionSettings = field(default_factory=MotionSettings)

    def __post_init__(self) -> None:
        w, h = self.frame_size
        s = self.settings
        self.scale = s.width / w
        self.small = (s.width, max(1, round(h * self.scale)))
        self.masks = [polygon_pixels(m, self.frame_size) for m in self.privacy_masks]
        small_masks = [polygon_pixels(m, self.small) for m in self.privacy_masks]
        self.keep = np.full((self.small[1], self.small[0]), 255, dtype=np.uint8)
        if small_masks:
            cv2.fillPoly(self.keep, small_masks, 0)
        self.zone_list = [Zone(z["name"], z["type"], polygon_pixels(z["polygon"], self.frame_size))
                          for z in self.zones]
        self.model = cv2.createBackgroundSubtractorMOG2(history=s.history, varThreshold=s.var_threshold,
                                                        detectShadows=False)
        self.kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3))
        self.tracks: list[_Track] = []
        self.next_id = 1
        self.relearn = False

    def process(self, frame: np.ndarray, at: float) -> list[Detection]:
        """Feed one full-size BGR frame taken at `at` (seconds); returns the detections
        that should raise an alert now."""
        s = self.settings
        grey = cv2.cvtColor(cv2.resize(frame, self.small, interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2GRAY)
        grey = cv2.GaussianBlur(grey, (s.blur, s.blur), 0)
        grey = cv2.bitwise_and(grey, self.keep)
        moving = self.model.apply(grey, learningRate=1.0 if self.relearn else -1)
        if self.relearn:
            self.relearn = False
            return []
        moving = cv2.bitwise_and(moving, self.keep)
        if cv2.countNonZero(moving) > s.whole_frame * moving.size:
            # lights, infrared switching, shaking: learn the new scene instead
            self.relearn = True
            self.tracks.clear()
            return []
        moving = cv2.morphologyEx(moving, cv2.MORPH_OPEN, self.kernel)
        moving = cv2.dilate(moving, self.kernel, iterations=2)
        contours, _ = cv2.findContours(moving, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        area = moving.size
        boxes = []
        for contour in contours:
            x, y, w, h = cv2.boundingRect(contour)
            if s.min_area * area <= w * h <= s.max_area * area:
                boxes.append(np.array([x, y, x + w, y + h], dtype=float) / self.scale)
        return self._track(boxes, at)

    def _track(self, boxes: list[np.ndarray], at: float) -> list[Detection]:
        s = self.settings
        unmatched = list(range(len(boxes)))
        for track in self.tracks:
            best, best_score = None, 0.0
            for k in unmatched:
                score = _closeness(track.box, boxes[k])
                if score > best_score:
                    best, best_score = k, score
            if best is not None:
                track.box, track.hits, track.missed = boxes[best], track.hits + 1, 0
                unmatched.remove(best)
            else:
                track.missed += 1
        for k in unmatched:
            self.tracks.append(_Track(self.next_id, boxes[k], first_seen=at))
            self.next_id += 1
        self.tracks = [t for t in self.tracks if t.missed <= s.forget_frames]
        out = []
        for t in self.tracks:
            ready = t.missed == 0 and t.hits >= s.persist_frames
            if ready and (t.last_alert is None or at - t.last_alert >= s.cooldown_s):
                t.last_alert = at
                w, h = self.frame_size
                x1, y1, x2, y2 = (int(round(v)) for v in t.box)
                box = (max(0, x1), max(0, y1), min(w, x2), min(h, y2))
                zone = self.zone_of(box)
                out.append(Detection(t.id, box, zone.type if zone else DEFAULT_TYPE, zone.name if zone else None,
                                     t.first_seen, at))
        return out

    def zone_of(self, box: tuple[int, int, int, int]) -> Zone | None:
        """The zone holding the box's bottom-centre, where the object touches the ground."""
        point = ((box[0] + box[2]) / 2, box[3])
        for zone in self.zone_list:
            if cv2.pointPolygonTest(zone.polygon.reshape(-1, 1, 2).astype(np.float32), point, False) >= 0:
                return zone
        return None

    def snapshot(self, frame: np.ndarray, box: tuple[int, int, int, int], quality: int = 80) -> bytes:
        """The frame as a JPEG, privacy masks blacked out and the box drawn."""
        image = mask_frame(frame, self.masks)
        cv2.rectangle(image, box[:2], box[2:], (0, 0, 255), 2)
        ok, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
        if not ok:
            raise RuntimeError("could not encode the snapshot")
        return jpeg.tobytes()


def _closeness(a: np.ndarray, b: np.ndarray) -> float:
    """How likely box b is where box a went: overlap, else nearness within a box's size
    (a small object moving fast may not overlap itself from one frame to the next); 0 if
    neither."""
    x1, y1 = max(a[0], b[0]), max(a[1], b[1])
    x2, y2 = min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, x2 - x1) * max(0.0, y2 - y1)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    if union > 0 and inter / union > 0.1:
        return 1.0 + inter / union
    reach = max(a[2] - a[0], a[3] - a[1], b[2] - b[0], b[3] - b[1])
    gap = np.hypot((a[0] + a[2] - b[0] - b[2]) / 2, (a[1] + a[3] - b[1] - b[3]) / 2)
    return max(0.0, 1.0 - gap / reach) if reach > 0 else 0.0
