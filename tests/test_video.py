"""Motion detection on generated video with known ground truth: a moving object is found
and placed within 5 m of where the homography puts it; a flash and a still scene raise
nothing; a masked object raises nothing and is black in every snapshot; zones set types."""

import os
import subprocess
from datetime import UTC, datetime, timedelta

import cv2
import numpy as np
import psycopg
import pytest
from conftest import GRIDWATCH, Server, auth
from pinhole import Pinhole, metres

from gridwatch.alerts.cameras import calibrate_camera, create_camera, set_video
from gridwatch.alerts.retention import purge
from gridwatch.api.auth import create_key
from gridwatch.video.detect import DatabaseSink, detect

W, H, FPS = 640, 360, 25
SITE = (101.005, 36.895)
START = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)
MASK = [[0.0, 0.45], [0.35, 0.45], [0.35, 1.0], [0.0, 1.0]]
RAILWAY = [[0.0, 0.55], [1.0, 0.55], [1.0, 0.75], [0.0, 0.75]]


def background(rng) -> np.ndarray:
    base = cv2.GaussianBlur(rng.integers(60, 190, (H, W, 3), dtype=np.uint8), (7, 7), 0)
    return base


def write(path, frames) -> str:
    out = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), FPS, (W, H))
    for frame in frames:
        out.write(frame)
    out.release()
    return str(path)


def scene(rng, n: int, objects=(), flash_at: int | None = None):
    """Frames of a noisy still scene; objects are (first, last, x0, x1, bottom, w, h) moving
    left to right between frames first and last."""
    base = background(rng)
    for k in range(n):
        frame = base.astype(np.int16) + rng.normal(0, 3, base.shape).astype(np.int16)
        if flash_at is not None and k >= flash_at:
            frame += 90
        for first, last, x0, x1, bottom, w, h in objects:
            if first <= k <= last:
                x = int(x0 + (x1 - x0) * (k - first) / max(1, last - first))
                frame[bottom - h:bottom, x - w // 2:x + w // 2] = (30, 30, 200)
        yield np.clip(frame, 0, 255).astype(np.uint8)


def object_x(first, last, x0, x1, k) -> float:
    return x0 + (x1 - x0) * (k - first) / max(1, last - first)


@pytest.fixture(scope="module")
def camera(db_url):
    """A calibrated camera looking along a road, with a privacy mask and a railway zone."""
    cam = Pinhole(SITE[0], SITE[1], heading_deg=60, height_m=8, tilt_deg=25, hfov_deg=70, width=W, height=H)
    pixels = [(60, 200), (580, 200), (320, 260), (80, 340), (560, 340), (320, 355)]
    ground = np.array([cam.ground(u, v) for u, v in pixels])
    with psycopg.connect(db_url) as conn:
        create_camera(conn, {"id": "VID-1", "name": "video test", "lon": SITE[0], "lat": SITE[1], "heading_deg": 60,
                             "fov_deg": 70, "range_m": 200})
        calibrate_camera(conn, "VID-1", (W, H), np.array(pixels, float), ground)
        set_video(conn, "VID-1", [{"name": "railway", "type": "railway_intrusion", "polygon": RAILWAY}], [MASK])
    return cam


def run(db_url, path) -> list[dict]:
    with psycopg.connect(db_url) as conn:
        return detect(path, "VID-1", DatabaseSink(conn), start=START)


def test_moving_object_is_detected_once_and_placed_within_5_m(db_url, camera, tmp_path):
    rng = np.random.default_rng(1)
    move = (10, 90, 380, 600, 320, 24, 50)  # right half, bottom in the lower band (below the railway zone)
    raised = run(db_url, write(tmp_path / "move.avi", scene(rng, 100, [move])))
    assert len(raised) == 1, raised
    alert = raised[0]
    assert alert["position_method"] == "homography" and alert["grid_code"]
    with psycopg.connect(db_url) as conn:
        occurred, box = conn.execute("SELECT occurred_at, box FROM alerts WHERE id = %s",
                                     [alert["alert_id"]]).fetchone()
    k = round((occurred - START).total_seconds() * FPS)
    truth = camera.ground(object_x(*move[:4], k), move[4])
    assert metres(alert["lon"], alert["lat"], *truth) < 5.0
    assert box[2] > box[0] and abs(box[3] - move[4]) < 12


def test_flash_and_still_scene_raise_nothing(db_url, camera, tmp_path):
    rng = np.random.default_rng(2)
    assert run(db_url, write(tmp_path / "flash.avi", scene(rng, 100, flash_at=50))) == []
    assert run(db_url, write(tmp_path / "still.avi", scene(rng, 100))) == []


def test_masked_object_raises_nothing_and_is_black_in_every_snapshot(db_url, camera, tmp_path):
    rng = np.random.default_rng(3)
    hidden = (5, 95, 40, 190, 330, 24, 50)  # stays inside the mask
    seen = (40, 95, 420, 600, 230, 24, 50)  # outside: gives a snapshot to look at
    raised = run(db_url, write(tmp_path / "mask.avi", scene(rng, 100, [hidden, seen])))
    assert len(raised) == 1 and raised[0]["lon"] != SITE[0]
    with psycopg.connect(db_url) as conn:
        jpegs = [bytes(r[0]) for r in conn.execute(
            "SELECT s.jpeg FROM snapshots s JOIN alerts a ON a.id = s.alert_id WHERE a.camera_id = 'VID-1'")]
    assert jpegs
    x1, y1, x2, y2 = int(0.0 * W) + 4, int(0.45 * H) + 4, int(0.35 * W) - 4, H - 4
    for jpeg in jpegs:
        image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
        assert image.shape == (H, W, 3)
        assert image[y1:y2, x1:x2].max() < 20  # black, up to JPEG noise


def test_zone_sets_the_type(db_url, camera, tmp_path):
    rng = np.random.default_rng(4)
    on_rails = (5, 80, 400, 600, int(0.65 * H), 24, 50)  # bottom-centre inside the railway zone
    raised = run(db_url, write(tmp_path / "rail.avi", scene(rng, 90, [on_rails])))
    assert [a["incident_id"] is not None for a in raised] == [True]
    with psycopg.connect(db_url) as conn:
        kind, extra = conn.execute("SELECT type, extra FROM alerts WHERE id = %s",
                                   [raised[0]["alert_id"]]).fetchone()
    assert kind == "railway_intrusion" and extra["zone"] == "railway"


def test_post_mode_sends_alerts_and_snapshots_to_a_server(db_url, camera, keys, tmp_path):
    rng = np.random.default_rng(5)
    path = write(tmp_path / "post.avi", scene(rng, 100, [(10, 90, 380, 600, 300, 24, 50)]))
    server = Server(db_url).start()
    try:
        done = subprocess.run([GRIDWATCH, "video", "detect", path, "--camera", "VID-1", "--post", server.url,
                               "--start", (START + timedelta(hours=5)).isoformat()], capture_output=True, text=True,
                              env={"PATH": os.environ["PATH"], "GRIDWATCH_KEY": keys["ingest"]}, timeout=120)
        assert done.returncode == 0, done.stderr
        import httpx
        import orjson

        [alert] = [orjson.loads(line) for line in done.stdout.splitlines()]
        snap = httpx.get(f"{server.url}/alerts/{alert['alert_id']}/snapshot", headers=auth(keys["viewer"]))
        assert snap.status_code == 200 and snap.headers["content-type"] == "image/jpeg"
        assert snap.content[:3] == b"\xff\xd8\xff"
        missing = httpx.get(f"{server.url}/alerts/999999999/snapshot", headers=auth(keys["viewer"]))
        assert missing.status_code == 404
    finally:
        server.stop()


def test_bad_sources_and_settings_are_refused(client, keys, tmp_path):
    bogus = tmp_path / "not-a-video.avi"
    bogus.write_bytes(b"hello")
    done = subprocess.run([GRIDWATCH, "video", "detect", str(bogus), "--camera", "VID-1", "--post",
                           "http://127.0.0.1:9", "--key", "x"], capture_output=True, text=True, timeout=60)
    assert done.returncode in (1, 2) and done.stderr.strip().splitlines()[-1].startswith("error:")
    h = auth(keys["admin"])
    for body, words in (({"privacy_masks": [[[0.1, 0.1], [0.2, 0.2]]]}, "privacy_masks"),
                        ({"privacy_masks": [[[0.1, 0.1], [1.5, 0.2], [0.3, 0.4]]]}, "privacy_masks"),
                        ({"zones": [{"name": "x", "type": "ufo", "polygon": RAILWAY}]}, "unknown alert type")):
        r = client.patch("/cameras/VID-1", json=body, headers=h)
        assert r.status_code == 422 and words in r.json()["detail"], r.text
    video = client.get("/cameras/VID-1/video", headers=auth(keys["ingest"])).json()
    assert video["privacy_masks"] == [MASK] and video["zones"][0]["type"] == "railway_intrusion"


def test_retention_takes_snapshots_with_their_alerts(db_url, camera):
    with psycopg.connect(db_url) as conn:
        before = conn.execute("SELECT count(*) FROM snapshots").fetchone()[0]
        assert before > 0
        done = purge(conn, datetime.now(UTC) + timedelta(days=400))
        assert done["alerts"] > 0
        assert conn.execute("SELECT count(*) FROM snapshots").fetchone()[0] == 0


def test_a_dropped_stream_is_reopened(db_url, camera, tmp_path):
    """An HTTP stream that ends (the file is served, then the connection closes) is opened
    again with a wait, and the object is seen again on the second play."""
    import functools
    import http.server
    import threading
    import time

    rng = np.random.default_rng(6)
    write(tmp_path / "stream.avi", scene(rng, 60, [(5, 55, 380, 600, 320, 24, 50)]))
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    requests = []
    original = handler.func.log_message
    handler.func.log_message = lambda self, *a: requests.append(a)
    started = time.monotonic()
    try:
        with psycopg.connect(db_url) as conn:
            raised = detect(f"http://127.0.0.1:{httpd.server_address[1]}/stream.avi", "VID-1", DatabaseSink(conn),
                            stop=lambda: time.monotonic() - started > 5)
    finally:
        handler.func.log_message = original
        httpd.shutdown()
    assert len(requests) >= 2  # opened, dropped, opened again
    assert len(raised) >= 2


def test_snapshot_upload_refuses_what_is_not_a_jpeg(client, keys):
    h = auth(keys["ingest"])
    r = client.put("/alerts/1/snapshot", content=b"\x89PNG\r\n\x1a\n", headers={**h, "content-type": "image/png"})
    assert r.status_code == 422 and "JPEG" in r.json()["detail"]
    r = client.put("/alerts/999999999/snapshot", content=b"\xff\xd8\xff\xe0rest", headers={**h,
                                                                                        "content-type": "image/jpeg"})
    assert r.status_code == 404 and "999999999" in r.json()["detail"]


def test_an_uploaded_snapshot_is_masked_and_stripped_here(client, keys, db_url, camera):
    """Whatever the sender did, the server blacks out the camera's privacy masks and keeps no
    metadata (a camera's JPEG may carry its position and serial)."""
    alert = {"source": "snap", "event_id": "s-1", "camera_id": "VID-1", "type": "motion", "score": 0.5,
             "occurred_at": datetime.now(UTC).isoformat()}
    alert_id = client.post("/alerts", json=alert, headers=auth(keys["ingest"])).json()["alert_id"]
    white = cv2.imencode(".jpg", np.full((480, 640, 3), 255, np.uint8))[1].tobytes()
    exif = b"Exif\x00\x00MM\x00*\x00\x00\x00\x08" + b"GPS 36.9 serial CAM-SN-0042" * 4
    sent = white[:2] + b"\xff\xe1" + (len(exif) + 2).to_bytes(2, "big") + exif + white[2:]
    r = client.put(f"/alerts/{alert_id}/snapshot", content=sent,
                   headers={**auth(keys["ingest"]), "content-type": "image/jpeg"})
    assert r.status_code == 201, r.text
    stored = client.get(f"/alerts/{alert_id}/snapshot", headers=auth(keys["viewer"])).content
    assert b"CAM-SN-0042" not in stored and b"Exif" not in stored
    image = cv2.imdecode(np.frombuffer(stored, np.uint8), cv2.IMREAD_GRAYSCALE)
    assert image.shape == (480, 640)
    masked = image[int(0.5 * 480):, : int(0.3 * 640)]   # inside MASK (x 0-0.35, y 0.45-1)
    open_part = image[: int(0.4 * 480), int(0.5 * 640):]  # far from it
    assert masked.max() < 40 and open_part.min() > 200


def test_only_the_key_that_posted_an_alert_sends_its_snapshot(client, keys, db_url, camera):
    with psycopg.connect(db_url) as conn:
        _, other = create_key(conn, "ingest", "another camera's NVR")
    alert = {"source": "snap", "event_id": "own-1", "camera_id": "VID-1", "type": "motion", "score": 0.5,
             "occurred_at": datetime.now(UTC).isoformat()}
    alert_id = client.post("/alerts", json=alert, headers=auth(keys["ingest"])).json()["alert_id"]
    frame = cv2.imencode(".jpg", np.full((120, 160, 3), 200, np.uint8))[1].tobytes()
    r = client.put(f"/alerts/{alert_id}/snapshot", content=frame, headers={**auth(other), "content-type": "image/jpeg"})
    assert r.status_code == 403 and "posted by another key" in r.json()["detail"]
    assert client.get(f"/alerts/{alert_id}/snapshot", headers=auth(keys["viewer"])).status_code == 404
    for key in (keys["ingest"], keys["operator"]):
        r = client.put(f"/alerts/{alert_id}/snapshot", content=frame, headers={**auth(key),
                                                                               "content-type": "image/jpeg"})
        assert r.status_code == 201, r.text
    batch = [{**alert, "event_id": "own-2"}]
    [posted] = client.post("/alerts/batch", json=batch, headers=auth(other)).json()["results"]
    r = client.put(f"/alerts/{posted['alert_id']}/snapshot", content=frame,
                   headers={**auth(keys["ingest"]), "content-type": "image/jpeg"})
    assert r.status_code == 403
