"""Motion detection speed on one core, decoding included: a generated H.264 clip (3,000
frames at 720p, then at 1080p; Debian's ffmpeg encodes it, as real cameras send H.264)
through gridwatch's detector, against OpenCV's MOG2 on the full-size frames (the
baseline). Target: >= 150 frames/s at 720p (six 25 fps cameras per core).

    .venv/bin/python bench/video.py [--frames N]
"""

import argparse
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import cv2
from common import record

from gridwatch.video.motion import MotionDetector


def make_clip(path: Path, width: int, height: int, frames: int) -> None:
    """A still scene with sensor noise and two objects crossing it, encoded with libx264 at
    a camera's bitrate (about 3 Mbit/s at 720p)."""
    seconds = frames / 25 + 1
    bitrate = f"{width * height * 25 // 7_680_000 + 1}M"
    graph = (f"gradients=s={width}x{height}:r=25:d={seconds}:speed=0.0001,noise=alls=3:allf=t[bg];"
             f"color=c=0xc03030:s={width // 20}x{height // 6}:r=25:d={seconds}[a];"
             f"color=c=0x303030:s={width // 30}x{height // 10}:r=25:d={seconds}[b];"
             f"[bg][a]overlay=x='mod(t*{width // 8}\\,{width - 80})':y={height * 2 // 3}[ab];"
             f"[ab][b]overlay=x='{width} - mod(t*{width // 12}\\,{width - 60})':y={height // 3}")
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-filter_complex", graph, "-frames:v", str(frames),
                    "-c:v", "libx264", "-preset", "veryfast", "-b:v", bitrate, "-maxrate", bitrate,
                    "-bufsize", bitrate, "-pix_fmt", "yuv420p", str(path)], check=True)


def frames_per_second(path: Path, work) -> tuple[float, int]:
    capture = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    n = 0
    start = time.perf_counter()
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        work(frame, n)
        n += 1
    elapsed = time.perf_counter() - start
    capture.release()
    return n / elapsed, n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=3000)
    args = parser.parse_args()
    if shutil.which("ffmpeg") is None:
        raise SystemExit("ffmpeg is missing: apt-get install ffmpeg (it encodes the H.264 test clip)")
    cores = os.sched_getaffinity(0)
    figures = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, (w, h) in (("720p", (1280, 720)), ("1080p", (1920, 1080))):
            clip = Path(tmp) / f"{name}.mp4"
            print(f"encoding a {args.frames}-frame {name} H.264 clip")
            os.sched_setaffinity(0, cores)
            make_clip(clip, w, h, args.frames)
            os.sched_setaffinity(0, {min(cores)})  # one core, decoding included
            cv2.setNumThreads(1)
            detector = MotionDetector((w, h))
            alerts = []
            ours, n = frames_per_second(clip, lambda frame, i, d=detector, a=alerts: a.extend(d.process(frame, i / 25)))
            mog2 = cv2.createBackgroundSubtractorMOG2(history=300, varThreshold=25, detectShadows=False)
            baseline, _ = frames_per_second(
                clip, lambda frame, _i, m=mog2: m.apply(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)))
            print(f"{name}: ours {ours:6.0f} frames/s, full-size MOG2 {baseline:6.0f} frames/s, "
                  f"ratio {ours / baseline:.1f}x ({n} frames, {len(alerts)} alerts)")
            figures[name] = {"ours_fps": round(ours), "mog2_fps": round(baseline), "ratio": round(ours / baseline, 2),
                             "frames": n}
    print("target: >= 150 frames/s at 720p on one core")
    record("video", **{f"{k}_{m}": v for k, f in figures.items() for m, v in f.items()})


if __name__ == "__main__":
    main()
