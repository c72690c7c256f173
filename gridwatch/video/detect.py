"""`gridwatch video detect`: a camera's video (a file, or an RTSP/HTTP stream through
OpenCV's FFmpeg backend) → motion detections → alerts placed through the camera's
homography, with a masked snapshot each. Alerts go straight into the database through the
normal pipeline, or to a running server (`--post URL`) with an ingest key.
"""

import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import urlsplit

import cv2
import httpx
import psycopg

from gridwatch.alerts import snapshots
from gridwatch.alerts.ingest import ingest
from gridwatch.alerts.model import AlertIn
from gridwatch.alerts.registry import Registry
from gridwatch.errors import BadInput, GridwatchError
from gridwatch.geo.grid_index import GridIndex
from gridwatch.video.motion import Detection, MotionDetector, MotionSettings

log = logging.getLogger(__name__)
SOURCE_PREFIX = "gridwatch-video"
MAX_BACKOFF_S = 30.0


@dataclass
class CameraVideo:
    """The camera's video settings: zones and privacy masks, relative 0-1."""

    id: str
    zones: list[dict] = field(default_factory=list)
    privacy_masks: list[list[list[float]]] = field(default_factory=list)


class DatabaseSink:
    """Alerts through the pipeline in this process, snapshots stored beside them."""

    def __init__(self, conn: psycopg.Connection) -> None:
        self.conn = conn
        self.index = GridIndex.load(conn)
        self.registry = Registry()

    def camera(self, camera_id: str) -> CameraVideo:
        row = self.conn.execute("SELECT zones, privacy_masks FROM cameras WHERE id = %s", [camera_id]).fetchone()
        if row is None:
            raise BadInput(f"--camera {camera_id!r}: no such camera; register it first (POST /cameras)")
        return CameraVideo(camera_id, row[0], row[1])

    def emit(self, alert: AlertIn, jpeg: bytes) -> dict:
        [result] = ingest(self.conn, [alert], self.index, datetime.now(UTC), check_future=False,
                          registry=self.registry)
        if not result.repeat:
            snapshots.store(self.conn, result.alert_id, jpeg)
        self.conn.commit()
        return result.as_dict()


class HttpSink:
    """Alerts to a running server, as a camera would send them."""

    # where alerts go, and what else each one's request carries (the fleet's lease token)
    alerts_path = "/alerts"

    def __init__(self, url: str, key: str) -> None:
        self.http = httpx.Client(base_url=url.rstrip("/"), headers={"Authorization": f"Bearer {key}"}, timeout=30)
        self.alert_headers = {"Content-Type": "application/json"}

    def camera(self, camera_id: str) -> CameraVideo:
        r = self.http.get(f"/cameras/{camera_id}/video")
        if r.status_code != 200:
            raise BadInput(f"cannot read camera {camera_id!r} from the server ({r.status_code}): "
                           f"{r.json().get('detail', r.text)[:200]}")
        body = r.json()
        return CameraVideo(camera_id, body["zones"], body["privacy_masks"])

    def emit(self, alert: AlertIn, jpeg: bytes) -> dict:
        r = self.http.post(self.alerts_path, content=alert.model_dump_json(exclude_none=True),
                           headers=self.alert_headers)
        self.refused(r)
        result = r.json()
        if r.status_code == 201:
            s = self.http.put(f"/alerts/{result['alert_id']}/snapshot", content=jpeg,
                              headers={"Content-Type": "image/jpeg"})
            if s.status_code not in (200, 201):
                log.warning("snapshot of alert %s not stored: %s", result["alert_id"], s.text[:200])
        return result

    def refused(self, r: httpx.Response) -> None:
        """Raise if the server did not store the alert (nor had it already)."""
        if r.status_code not in (200, 201):
            raise GridwatchError(f"the server refused an alert ({r.status_code}): {r.text[:300]}")


def is_stream(source: str) -> bool:
    return "://" in source


def detect(source: str, camera_id: str, sink, start: datetime | None = None,
           settings: MotionSettings | None = None, progress: Callable[[str], None] = lambda _m: None,
           stop: Callable[[], bool] = lambda: False, run_id: str | None = None,
           on_frame: Callable[[float], None] = lambda _at: None) -> list[dict]:
    """Watch the video until it ends (a file) or `stop()` (a stream); returns the alerts
    raised. A dropped stream is reopened with growing waits. A file given as a file:// URL is
    a stream too (a looped clip, as tests and demos use): read at its own frame rate and
    started over at its end. `on_frame(at)` is called for every frame read."""
    camera = sink.camera(camera_id)
    capture = _open(source)
    fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
    total = int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
    streaming = is_stream(source)
    # a looped file is read in real time, as a camera would send it
    paced = streaming and total > 0
    # a file's time is its start plus frame / fps; a stream's is the wall clock
    start = start or datetime.now(UTC)
    detector, raised, frame_no, backoff = None, [], 0, 1.0
    # the same video from the same start gives the same event ids: running it again repeats nothing
    run_id = run_id or f"{hashlib.sha1(source.encode()).hexdigest()[:8]}-{int(start.timestamp())}"
    opened = time.monotonic()
    while not stop():
        ok, frame = capture.read()
        if not ok:
            if not streaming:
                break
            capture.release()
            if paced and frame_no > 0:  # the clip's end: start over
                capture, opened, frame_no = _open(source, must=False), time.monotonic(), 0
                continue
            log.warning("%s: the stream dropped; reopening in %.0f s", where(source), backoff)
            time.sleep(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF_S)
            capture, opened, frame_no = _open(source, must=False), time.monotonic(), 0
            continue
        backoff = 1.0
        if paced:
            time.sleep(max(0.0, opened + frame_no / fps - time.monotonic()))
        if detector is None:
            size = (frame.shape[1], frame.shape[0])
            detector = MotionDetector(size, camera.privacy_masks, camera.zones, settings or MotionSettings())
        at = time.time() if streaming else start.timestamp() + frame_no / fps
        on_frame(at)
        for found in detector.process(frame, at):
            alert = _alert(camera_id, found, detector.frame_size, run_id)
            raised.append(sink.emit(alert, detector.snapshot(frame, found.box)))
        frame_no += 1
        if total and not streaming and frame_no % 500 == 0:
            progress(f"{frame_no}/{total} frames, {len(raised)} alert(s)")
    capture.release()
    return raised


def _open(source: str, must: bool = True) -> cv2.VideoCapture:
    capture = cv2.VideoCapture(source, cv2.CAP_FFMPEG)
    if must and not capture.isOpened():
        raise BadInput(f"cannot open {where(source)}: not a video file or stream OpenCV's FFmpeg can read"
                       + (", or the file does not exist" if not is_stream(source) or source.startswith("file:")
                          else ", or it cannot be reached"))
    return capture


def where(source: str) -> str:
    """A source as messages and logs name it: a stream by its scheme, host and port only (its
    user part, path and query may hold secrets), a file by its path."""
    if not is_stream(source) or source.startswith("file:"):
        return repr(source)
    parts = urlsplit(source)
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        port = ""
    return f"the {parts.scheme} stream at {parts.hostname or '?'}{port}"


def _alert(camera_id: str, found: Detection, frame_size: tuple[int, int], run_id: str) -> AlertIn:
    when = datetime.fromtimestamp(found.at, UTC)
    return AlertIn(source=f"{SOURCE_PREFIX}:{camera_id}", event_id=f"{run_id}-{found.track}-{int(found.at)}",
                   camera_id=camera_id, type=found.type, score=0.6, occurred_at=when, box=found.box,
                   frame_size=frame_size, zone=found.zone)
