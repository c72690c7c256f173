"""The video fleet's two costs, measured here, and the cores a county of 500 cameras needs.

1. Detectors: frames/s per detector process and per core with 1, 4 and 8 streams at once,
   each a process running gridwatch's detector (`gridwatch.video.detect.detect`, decoding
   included) on a 720p H.264 clip read as fast as it decodes. The baseline, in the same run:
   OpenCV's MOG2 on the full-size frames, one process.
2. Leases: the statements per second the server sees per 1,000 cameras, from 20 hosts of 50
   slots renewing their leases at the default heartbeat (every 15 s), with the time each
   heartbeat takes in PostgreSQL.

    .venv/bin/python bench/fleet.py [--seconds 20]
"""

import argparse
import math
import multiprocessing as mp
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import cv2
import psycopg
from common import DB, fresh_database, record
from psycopg.conninfo import make_conninfo
from video import frames_per_second, make_clip

from gridwatch.api.auth import create_key
from gridwatch.video.detect import CameraVideo, detect
from gridwatch.video.leases import FleetSettings, Report, heartbeat

FPS = 25  # a camera's stream
COUNTY = 500  # cameras in a county with full coverage
HOSTS, SLOTS = 20, 50  # 1,000 cameras


class _Counting:
    """Frames seen, alerts dropped: the detector's own cost, no server in the way."""

    def camera(self, camera_id: str) -> CameraVideo:
        return CameraVideo(camera_id)

    def emit(self, alert, jpeg) -> dict:
        return {}


def _detector(clip: str, seconds: float, out: mp.Queue) -> None:
    """One detector process: the clip again and again until `seconds` have passed."""
    cv2.setNumThreads(1)
    frames, started = 0, time.perf_counter()

    def count(_at: float) -> None:
        nonlocal frames
        frames += 1

    while time.perf_counter() - started < seconds:
        detect(clip, "BENCH", _Counting(), on_frame=count, stop=lambda: time.perf_counter() - started >= seconds)
    out.put(frames / (time.perf_counter() - started))


def detectors(clip: str, streams: int, seconds: float) -> list[float]:
    """Frames/s of each of `streams` detector processes running at once."""
    context = mp.get_context("spawn")
    out = context.Queue()
    processes = [context.Process(target=_detector, args=(clip, seconds, out)) for _ in range(streams)]
    for p in processes:
        p.start()
    rates = [out.get(timeout=seconds + 120) for _ in processes]
    for p in processes:
        p.join()
    return rates


def lease_traffic(url: str, beats: int) -> tuple[float, list[float]]:
    """Statements per heartbeat and each heartbeat's time (ms), 20 hosts holding 50 leases."""
    settings = FleetSettings()
    with psycopg.connect(url) as conn:
        conn.execute("INSERT INTO cameras (id, name, geom, heading_deg, fov_deg, range_m, view, stream_url) "
                     "SELECT 'FLEET-' || i, 'bench ' || i, ST_Point(101 + i * 1e-5, 36.9, 4326), 0, 60, 100, "
                     "ST_Buffer(ST_Point(101 + i * 1e-5, 36.9, 4326), 0.0005, 4), "
                     "'rtsp://bench:secret@10.0.0.1/' || i FROM generate_series(1, %s) i", [HOSTS * SLOTS])
        key_id = create_key(conn, "video", "bench fleet")[0]
        conn.commit()
    counted = _CountingConnection.connect(url, autocommit=True)
    held = {f"host-{h}": heartbeat(counted, key_id, f"host-{h}", SLOTS, [], settings) for h in range(HOSTS)}
    assert sum(len(v) for v in held.values()) == HOSTS * SLOTS
    counted.statements, times = 0, []
    for _ in range(beats):
        for host, leases in held.items():
            reports = [Report(x["camera_id"], x["token"], 25.0, 1000, 0.04, None) for x in leases]
            started = time.perf_counter()
            held[host] = heartbeat(counted, key_id, host, SLOTS, reports, settings)
            times.append((time.perf_counter() - started) * 1000)
    statements = counted.statements / (beats * HOSTS)
    counted.close()
    return statements, times


class _CountingConnection(psycopg.Connection):
    statements = 0

    def execute(self, *args, **kwargs):
        self.statements += 1
        return super().execute(*args, **kwargs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=20.0, help="how long each detector run lasts")
    args = parser.parse_args()
    if shutil.which("ffmpeg") is None:
        raise SystemExit("ffmpeg is missing: apt-get install ffmpeg (it encodes the H.264 test clip)")
    cores = len(os.sched_getaffinity(0))
    figures: dict = {"cores": cores}
    with tempfile.TemporaryDirectory() as tmp:
        clip = Path(tmp) / "720p.mp4"
        print("encoding a 750-frame 720p H.264 clip")
        make_clip(clip, 1280, 720, 750)
        cv2.setNumThreads(1)
        mog2 = cv2.createBackgroundSubtractorMOG2(history=300, varThreshold=25, detectShadows=False)
        baseline, _ = frames_per_second(clip, lambda frame, _i: mog2.apply(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)))
        print(f"baseline, OpenCV MOG2 on full-size frames, one process: {baseline:.0f} frames/s")
        figures["mog2_fps"] = round(baseline)
        for streams in (1, 4, 8):
            rates = detectors(str(clip), streams, args.seconds)
            total = sum(rates)
            per_core = total / min(streams, cores)
            print(f"{streams} stream(s): {statistics.mean(rates):5.0f} frames/s per detector process, "
                  f"{total:5.0f} in all, {per_core:5.0f} per core"
                  + (f" (ratio to the baseline {rates[0] / baseline:.2f}x)" if streams == 1 else ""))
            figures[f"streams{streams}_process_fps"] = round(statistics.mean(rates))
            figures[f"streams{streams}_core_fps"] = round(per_core)
        figures["ratio"] = round(figures["streams1_process_fps"] / baseline, 2)

    url = fresh_database()
    statements, times = lease_traffic(url, beats=5)
    heartbeat_s = FleetSettings().heartbeat_s
    per_second = HOSTS * statements / heartbeat_s
    times.sort()
    print(f"leases: {statements:.1f} statements (and BEGIN, COMMIT) per heartbeat of a host holding {SLOTS}; "
          f"{HOSTS} hosts every "
          f"{heartbeat_s:.0f} s = {per_second:.1f} statements/s per 1,000 cameras; a heartbeat takes "
          f"{statistics.median(times):.1f} ms (p99 {times[int(len(times) * 0.99) - 1]:.1f} ms)")
    figures.update(lease_statements_per_s_per_1000=round(per_second, 1),
                   heartbeat_ms_p50=round(statistics.median(times), 2))

    # one stream alone lets FFmpeg's decoder threads use every core: the per-core figure is the
    # one with every core busy, as on a host running a stream per slot
    per_core = max(figures[f"streams{n}_core_fps"] for n in (4, 8))
    need = math.ceil(COUNTY * FPS / per_core)
    print(f"a county of {COUNTY} cameras at {FPS} frames/s (720p): {COUNTY * FPS:,} frames/s to decode and "
          f"analyse = {need} cores at {per_core} frames/s per core (e.g. {math.ceil(need / 8)} hosts of 8 cores)")
    figures["county_500_cores"] = need
    record("fleet", **figures)
    with psycopg.connect(make_conninfo(url, dbname="postgres"), autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")


if __name__ == "__main__":
    main()
