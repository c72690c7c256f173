"""`gridwatch video fleet`: one host of the video fleet.

It claims up to `slots` camera streams from the server (leases, see gridwatch/video/leases.py),
runs one detector per stream in its own process, and sends a heartbeat every few seconds that
renews its leases and reports each stream's frame rate, last frame and error. The heartbeat's
answer is the truth about what the host holds: a detector whose lease is missing from it stops,
one whose lease is new starts. Alerts go to POST /video/alerts with the lease's fencing token;
the server refuses a stale one, and the detector then stops at once.

A detector also stops when its host is gone (killed, so no heartbeat can stop it), and the host
stops them all once its leases must have run out without a heartbeat getting through. On
Ctrl-C (or SIGTERM) the host stops its detectors and gives its leases back.
"""

import logging
import multiprocessing as mp
import os
import queue
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

import httpx

from gridwatch.errors import BadInput, GridwatchError
from gridwatch.video.detect import MAX_BACKOFF_S, CameraVideo, HttpSink, detect

log = logging.getLogger(__name__)
# How often a detector tells its host how its stream goes.
REPORT_S = 2.0
# A detector that ended because the server refused its lease token.
LEASE_LOST = 3
# Heartbeats that may fail before the first one gets through, before the host gives up.
FIRST_TRIES = 3


class LeaseLost(GridwatchError):
    """The server refused the lease's token: another host runs this camera now."""


class LeaseSink(HttpSink):
    """Alerts of one leased stream: each carries the lease's fencing token."""

    alerts_path = "/video/alerts"

    def __init__(self, url: str, key: str, lease: dict) -> None:
        super().__init__(url, key)
        self.lease = lease
        self.alert_headers = {**self.alert_headers, "Lease-Token": str(lease["token"])}

    def camera(self, camera_id: str) -> CameraVideo:
        return CameraVideo(camera_id, self.lease["zones"], self.lease["privacy_masks"])

    def refused(self, r: httpx.Response) -> None:
        if r.status_code == 409:
            raise LeaseLost(r.json().get("detail", "the lease is stale"))
        super().refused(r)


def allowed_file(stream_url: str, files: Path | None) -> Path | None:
    """The local file a file:// stream names, if this host serves files from that folder;
    raises BadInput otherwise. None for a network stream. Without --files a host opens no
    local file: whoever may set a camera's stream (an admin of the server) must not thereby
    read what else lies on the fleet's machines."""
    if not stream_url.lower().startswith("file:"):
        return None
    if files is None:
        raise BadInput("file:// streams are off on this host; start it with --files DIR (the folder of the clips)")
    path = Path(unquote(urlsplit(stream_url).path)).resolve()
    if not path.is_relative_to(files.resolve()):
        raise BadInput(f"{path} is outside this host's --files folder {files}")
    return path


def _watch(server: str, key: str, lease: dict, files: Path | None, reports: mp.Queue, stopping: mp.Event,
           host_pid: int) -> None:
    """A detector process: one leased stream until the lease is lost, the host says stop, or
    the host is gone. Exits with LEASE_LOST when the server refused the token."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the host, which stops us in order
    _quiet_logs()
    camera_id, token = lease["camera_id"], lease["token"]
    frames, window_start, window_frames, last_frame = 0, time.monotonic(), 0, None
    error: str | None = None

    def report(fps: float | None) -> None:
        try:
            reports.put_nowait((camera_id, token, fps, frames, last_frame, error))
        except queue.Full:
            pass

    def on_frame(_at: float) -> None:
        nonlocal frames, window_start, window_frames, last_frame, error
        frames, window_frames, last_frame, error = frames + 1, window_frames + 1, time.monotonic(), None
        elapsed = time.monotonic() - window_start
        if elapsed >= REPORT_S:
            report(window_frames / elapsed)
            window_start, window_frames = time.monotonic(), 0

    def stop() -> bool:
        return stopping.is_set() or os.getppid() != host_pid

    sink, backoff = LeaseSink(server, key, lease), 1.0
    while not stop():
        try:
            allowed_file(lease["stream_url"], files)
            detect(lease["stream_url"], camera_id, sink, stop=stop, on_frame=on_frame,
                   run_id=f"lease{token}-{int(time.time())}")
            backoff = 1.0
        except LeaseLost as exc:
            log.warning("%s: %s", camera_id, exc.detail)
            os._exit(LEASE_LOST)
        except (GridwatchError, httpx.HTTPError, OSError) as exc:
            # the stream cannot be opened, or the server cannot be reached: say so, try again
            error = str(getattr(exc, "detail", exc))[:500]
            log.warning("%s: %s; again in %.0f s", camera_id, error, backoff)
            report(0.0)
            if stopping.wait(backoff):
                break
            backoff = min(backoff * 2, MAX_BACKOFF_S)


def _quiet_logs() -> None:
    """Warnings and what the fleet says; not a line per request."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)


@dataclass
class _Detector:
    lease: dict
    process: mp.Process
    stopping: mp.Event
    report: tuple | None = None  # the detector's last (camera, token, fps, frames, last frame (monotonic), error)


class Fleet:
    """One fleet host: leases from the server, a detector process per leased stream."""

    def __init__(self, server: str, key: str, slots: int, name: str, files: Path | None = None,
                 progress: Callable[[str], None] = lambda _m: None) -> None:
        self.server, self.key, self.slots, self.name, self.progress = server.rstrip("/"), key, slots, name, progress
        self.files = files
        # the detectors say what matters through our log; OpenCV's and FFmpeg's own lines go
        os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")
        os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
        self.http = httpx.Client(base_url=self.server, headers={"Authorization": f"Bearer {key}"}, timeout=10)
        self.context = mp.get_context("spawn")
        self.reports: mp.Queue = self.context.Queue(maxsize=10_000)
        self.detectors: dict[str, _Detector] = {}
        # leases whose detector crashed: still reported (so still renewed), started again at
        # the next heartbeat rather than at once, so a stream that crashes its detector does
        # not spin
        self.idle: dict[str, dict] = {}

    def run(self, stop: Callable[[], bool]) -> None:
        """Heartbeat and keep the detectors in step with the leases until `stop()`; then stop
        them all and give the leases back."""
        _quiet_logs()
        next_beat, interval, lease_s, renewed, joined, failures = 0.0, 2.0, 60.0, time.monotonic(), False, 0
        try:
            while not stop():
                self._drain()
                self._reap()
                now = time.monotonic()
                if now >= next_beat:
                    try:
                        answer = self._heartbeat()
                    except BadInput:
                        raise  # the key or the request is wrong: no retry helps
                    except (httpx.HTTPError, GridwatchError) as exc:
                        failures += 1
                        if not joined and failures >= FIRST_TRIES:
                            raise GridwatchError(f"no heartbeat got through to {self.server} in {failures} tries: "
                                                 f"{getattr(exc, 'detail', exc)}; is the server running, and is "
                                                 f"--server its address?") from None
                        self.progress(f"heartbeat failed: {getattr(exc, 'detail', exc)}")
                        if self.detectors and now - renewed > lease_s:
                            self.progress("no heartbeat got through for a lease's time: the leases are gone; "
                                          "stopping every detector")
                            self._keep([])
                    else:
                        renewed, interval, lease_s, joined = now, answer["heartbeat_s"], answer["lease_s"], True
                        self._keep(answer["leases"])
                    next_beat = now + interval
                time.sleep(0.2)
        finally:
            held = [(cid, d.lease["token"]) for cid, d in self.detectors.items()]
            held += [(cid, lease["token"]) for cid, lease in self.idle.items()]
            self._keep([], leaving=True)
            if joined:
                self._release(held)

    def _heartbeat(self) -> dict:
        streams, now = [], time.monotonic()
        for cid, d in self.detectors.items():
            _, token, fps, frames, last, error = d.report or (cid, d.lease["token"], None, None, None, None)
            streams.append({"camera_id": cid, "token": token, "fps": None if fps is None else round(fps, 2),
                            "frames": frames, "error": error,
                            "frame_age_s": None if last is None else round(max(0.0, now - last), 2)})
        streams += [{"camera_id": cid, "token": lease["token"], "error": "the detector ended; starting it again"}
                    for cid, lease in self.idle.items()]
        r = self.http.post("/video/leases", json={"host": self.name, "slots": self.slots, "streams": streams})
        if r.status_code == 404:
            raise BadInput(f"{self.server} answered 404 to POST /video/leases: is --server the gridwatch server's "
                           f"address (without a path)?")
        if r.status_code in (401, 403, 409, 422):
            detail = r.json().get("detail", r.text) if r.headers.get("content-type", "").endswith("json") else r.text
            raise BadInput(f"the server refused this host ({r.status_code}): {detail[:300]}"
                           + ("; --key must be a `video` key" if r.status_code in (401, 403) else ""))
        if r.status_code != 200:
            raise GridwatchError(f"the server answered {r.status_code}: {r.text[:300]}")
        return r.json()

    def _keep(self, leases: list[dict], leaving: bool = False) -> None:
        """Stop the detectors whose lease is gone (or changed), start those of new leases."""
        wanted = {lease["camera_id"]: lease for lease in leases}
        self.idle = {}
        for cid, d in list(self.detectors.items()):
            lease = wanted.get(cid)
            if lease is None or (lease["token"], lease["stream_url"]) != (d.lease["token"], d.lease["stream_url"]):
                self._stop(cid)
                why = "the host is leaving" if leaving else f"lease {d.lease['token']} " + \
                    ("gone" if lease is None else "changed")
                self.progress(f"{cid}: stopped ({why})")
        for cid, lease in wanted.items():
            if cid not in self.detectors:
                self._start(lease)
                self.progress(f"{cid}: started (lease {lease['token']})")

    def _start(self, lease: dict) -> None:
        stopping = self.context.Event()
        process = self.context.Process(target=_watch, name=f"detector {lease['camera_id']}", daemon=True,
                                       args=(self.server, self.key, lease, self.files, self.reports, stopping,
                                             os.getpid()))
        process.start()
        self.detectors[lease["camera_id"]] = _Detector(lease, process, stopping)

    def _stop(self, camera_id: str) -> None:
        d = self.detectors.pop(camera_id)
        d.stopping.set()
        d.process.join(5)
        if d.process.is_alive():
            d.process.kill()
            d.process.join()

    def _drain(self) -> None:
        """Take in the detectors' reports (each keeps only its latest)."""
        while True:
            try:
                report = self.reports.get_nowait()
            except queue.Empty:
                return
            d = self.detectors.get(report[0])
            if d is not None and d.lease["token"] == report[1]:
                d.report = report

    def _reap(self) -> None:
        """A detector that ended on its own: its lease was refused (dropped now; the next
        heartbeat confirms), or it crashed (started again at the next heartbeat)."""
        for cid, d in list(self.detectors.items()):
            if d.process.is_alive():
                continue
            code = d.process.exitcode
            self.detectors.pop(cid)
            if code == LEASE_LOST:
                self.progress(f"{cid}: the server refused lease {d.lease['token']}; another host runs it")
            else:
                self.progress(f"{cid}: the detector ended (exit {code}); starting it again")
                self.idle[cid] = d.lease

    def _release(self, held: list[tuple[str, int]]) -> None:
        """Give the leases back, and leave the fleet."""
        try:
            r = self.http.post("/video/leases/release", json={
                "host": self.name, "leases": [{"camera_id": c, "token": t} for c, t in held]})
            self.progress(f"gave back {len(r.json().get('released', []))} lease(s)" if r.status_code == 200 else
                          f"could not give the leases back ({r.status_code}); they expire on their own")
        except httpx.HTTPError as exc:
            self.progress(f"could not give the leases back ({exc}); they expire on their own")
