"""The video fleet: stream URLs kept whole but shown masked; leases claimed with SKIP LOCKED,
fenced on every alert; three real fleet processes share twelve looped streams, each stream
runs once, a killed host's streams move to the others, Ctrl-C gives leases back."""

import os
import signal
import subprocess
import time
from collections import defaultdict
from pathlib import Path

import cv2
import httpx
import numpy as np
import psycopg
import pytest
from conftest import GRIDWATCH, Server, auth, free_port

from gridwatch.alerts.cameras import create_camera
from gridwatch.api.auth import create_key
from gridwatch.errors import BadInput
from gridwatch.video.fleet import allowed_file
from gridwatch.video.leases import FleetSettings, Report, heartbeat

SITE = (101.005, 36.895)
STREAMS = 12
LEASE_S = 20  # the default is 60 s; the test's hosts give up a dead host's streams sooner
W, H, FPS = 320, 240, 10


def clip(path: Path, seed: int) -> str:
    """A still, noisy scene that an object crosses once: looped, one alert per pass."""
    rng = np.random.default_rng(seed)
    base = cv2.GaussianBlur(rng.integers(60, 190, (H, W, 3), dtype=np.uint8), (7, 7), 0)
    out = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), FPS, (W, H))
    for k in range(60):
        frame = base.copy()
        if 10 <= k <= 50:
            x = 40 + (k - 10) * 6
            frame[150:200, x:x + 24] = (30, 30, 200)
        out.write(frame)
    out.release()
    return f"file://{path}"


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("streams")


@pytest.fixture(scope="module")
def streamed(db_url, clips) -> list[str]:
    folder = clips
    ids = [f"FLEET-{i:02d}" for i in range(STREAMS)]
    with psycopg.connect(db_url) as conn:
        for i, cid in enumerate(ids):
            create_camera(conn, {"id": cid, "name": f"fleet {i}", "lon": SITE[0] + i * 1e-4, "lat": SITE[1],
                                 "heading_deg": 90, "fov_deg": 60, "range_m": 100,
                                 "stream_url": clip(folder / f"{cid}.avi", i)})
    return ids


@pytest.fixture(scope="module")
def video(db_url) -> dict[str, tuple[int, str]]:
    """Two fleet keys: the fleet's, and another one's."""
    with psycopg.connect(db_url) as conn:
        return {"fleet": create_key(conn, "video", "test fleet"), "other": create_key(conn, "video", "other fleet")}


@pytest.fixture(scope="module")
def video_key(video) -> str:
    return video["fleet"][1]


def _free_all(db_url: str) -> None:
    with psycopg.connect(db_url) as conn:
        conn.execute("UPDATE video_leases SET host = NULL, key_id = NULL, expires_at = NULL")
        conn.execute("DELETE FROM video_hosts")


def test_stream_url_is_masked_everywhere_but_for_admin_and_the_fleet(client, keys, video_key):
    secret = "rtsp://viewer:s3cr%40t@10.1.2.3:554/Streaming/Channels/101?token=abc123&channel=1"
    body = {"id": "MASKED-1", "name": "gate", "lon": SITE[0], "lat": SITE[1], "heading_deg": 0, "fov_deg": 60,
            "range_m": 80, "stream_url": secret}
    made = client.post("/cameras", json=body, headers=auth(keys["admin"]))
    assert made.status_code == 201, made.text
    shown = made.json()["properties"]["stream_url"]
    assert shown == "rtsp://viewer:***@10.1.2.3:554/Streaming/Channels/101?token=***&channel=1"
    for path in ("/cameras/MASKED-1", "/cameras?limit=1000", "/ogc/collections/cameras/items/MASKED-1"):
        r = client.get(path, headers=auth(keys["viewer"]))
        assert r.status_code == 200 and "s3cr" not in r.text and "abc123" not in r.text, path
    whole = client.get("/cameras/MASKED-1/stream", headers=auth(keys["admin"]))
    assert whole.status_code == 200 and whole.json()["stream_url"] == secret
    for key in (keys["operator"], video_key):  # a fleet host gets the streams it holds, in their leases
        assert client.get("/cameras/MASKED-1/stream", headers=auth(key)).status_code == 403
    for url, shown in (("rtsp://TOKEN123@10.0.0.9/live", "rtsp://***@10.0.0.9/live"),
                       ("rtsp://admin:ab/cd@10.0.0.9/s", "rtsp://admin:***@10.0.0.9/s"),
                       ("https://cam.example/x.m3u8?api-key=K1&X-Amz-Signature=S1&q=1",
                        "https://cam.example/x.m3u8?api-key=***&X-Amz-Signature=***&q=1"),
                       ("rtsp://10.0.0.9:554/ch1", "rtsp://10.0.0.9:554/ch1")):
        r = client.patch("/cameras/MASKED-1", json={"stream_url": url}, headers=auth(keys["admin"]))
        assert r.status_code == 200 and r.json()["properties"]["stream_url"] == shown, r.text
    client.patch("/cameras/MASKED-1", json={"stream_url": secret}, headers=auth(keys["admin"]))
    for bad in ("ftp://x/y", "rtsp://cam 1/stream", "javascript:alert(1)", "rtsp://" + "x" * 2000):
        r = client.patch("/cameras/MASKED-1", json={"stream_url": bad}, headers=auth(keys["admin"]))
        assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json", bad
    assert client.get("/cameras/MASKED-1/stream", headers=auth(keys["admin"])).json()["stream_url"] == secret
    for removed in ("", None):  # either removes the stream
        client.patch("/cameras/MASKED-1", json={"stream_url": secret}, headers=auth(keys["admin"]))
        gone = client.patch("/cameras/MASKED-1", json={"stream_url": removed}, headers=auth(keys["admin"]))
        assert gone.status_code == 200 and gone.json()["properties"]["stream_url"] is None, removed
    kept = client.patch("/cameras/MASKED-1", json={"name": "gate 2"}, headers=auth(keys["admin"]))
    assert kept.json()["properties"]["stream_url"] is None and kept.json()["properties"]["name"] == "gate 2"


def test_hosts_claiming_at_once_skip_each_others_cameras(db_url, streamed, video):
    """A claim in progress holds its rows; a second host claiming meanwhile neither waits for
    it nor gets any of them (FOR UPDATE SKIP LOCKED)."""
    settings = FleetSettings(lease_s=LEASE_S)
    with psycopg.connect(db_url, autocommit=True) as first, psycopg.connect(db_url, autocommit=True) as second:
        first.execute("SET lock_timeout = '5s'")
        with first.transaction():
            mine = heartbeat(first, video["fleet"][0], "claim-a", 6, [], settings)
            # still inside the first claim's transaction: its rows are locked
            started = time.monotonic()
            second.execute("SET lock_timeout = '2s'")
            theirs = heartbeat(second, video["fleet"][0], "claim-b", 6, [], settings)
            assert time.monotonic() - started < 1.5
        assert len(mine) == 6 and len(theirs) == 6
        assert not {lease["camera_id"] for lease in mine} & {lease["camera_id"] for lease in theirs}
        assert len({lease["token"] for lease in mine + theirs}) == 12
        # renewing keeps the same token; giving a stale token renews nothing
        again = heartbeat(second, video["fleet"][0], "claim-b", 6, [Report(x["camera_id"], x["token"])
                                                                    for x in theirs], settings)
        assert [(x["camera_id"], x["token"]) for x in again] == [(x["camera_id"], x["token"]) for x in theirs]
    _free_all(db_url)


def test_a_key_speaks_only_for_its_own_hosts_and_leases(client, db_url, streamed, video, keys):
    """Another video key cannot take a live host's name, renew or give back its leases, or post
    under its tokens; a host's report is stored masked, and by the age of its last frame."""
    mine, theirs = auth(video["fleet"][1]), auth(video["other"][1])
    clip_url = client.get(f"/cameras/{streamed[0]}/stream", headers=auth(keys["admin"])).json()["stream_url"]
    client.patch(f"/cameras/{streamed[0]}", json={"stream_url": "rtsp://op:hunter2@10.9.9.9/a?token=T0K"},
                 headers=auth(keys["admin"]))
    held = client.post("/video/leases", json={"host": "h1", "slots": 2}, headers=mine).json()["leases"]
    assert [x["camera_id"] for x in held] == streamed[:2] and "hunter2" in held[0]["stream_url"]
    refs = [{"camera_id": x["camera_id"], "token": x["token"]} for x in held]
    taken = client.post("/video/leases", json={"host": "h1", "slots": 2, "streams": refs}, headers=theirs)
    assert taken.status_code == 409 and "another video key" in taken.json()["detail"]
    # as a host of its own: the reported leases are not renewed, and its claims are of other cameras
    other = client.post("/video/leases", json={"host": "h2", "slots": 2, "streams": refs}, headers=theirs).json()
    assert not {x["camera_id"] for x in other["leases"]} & set(streamed[:2])
    for host in ("h1", "h2"):
        r = client.post("/video/leases/release", json={"host": host, "leases": refs}, headers=theirs)
        assert r.status_code == 200 and r.json() == {"released": []}
    alert = {"source": "s", "event_id": "hijack", "camera_id": streamed[0], "type": "motion", "score": 0.5,
             "occurred_at": "2026-12-05T10:00:00+00:00"}
    refused = client.post("/video/alerts", json=alert, headers={**theirs, "Lease-Token": str(refs[0]["token"])})
    assert refused.status_code == 409 and str(refs[0]["token"] + 1) not in refused.json()["detail"]
    report = [{**refs[0], "fps": 9.5, "frames": 100, "frame_age_s": 3.0,
               "error": "cannot open rtsp://op:hunter2@10.9.9.9/a?token=T0K: refused"}, {**refs[1], "fps": 10}]
    again = client.post("/video/leases", json={"host": "h1", "slots": 2, "streams": report}, headers=mine).json()
    assert [(x["camera_id"], x["token"]) for x in again["leases"]] == [(x["camera_id"], x["token"]) for x in held]
    fleet = client.get("/video/fleet", headers=auth(keys["viewer"]))
    assert "hunter2" not in fleet.text and "T0K" not in fleet.text
    shown = {c["camera_id"]: c for c in fleet.json()["cameras"]}
    # the second has reported no frame yet: just claimed, it is starting
    assert shown[streamed[0]]["state"] == "running" and shown[streamed[1]]["state"] == "starting"
    assert 3.0 <= shown[streamed[0]]["frame_age_s"] < 10 and shown[streamed[0]]["host"] == "h1"
    assert shown[streamed[0]]["error"] == "cannot open rtsp://op:***@10.9.9.9/a?token=***: refused"
    assert shown[streamed[5]]["state"] == "no_detector" and shown[streamed[5]]["fps"] is None
    for bad in ({"frame_age_s": -1}, {"frame_age_s": 1e12}, {"fps": float("inf")}):
        r = client.post("/video/leases", content=json_dumps({"host": "h1", "slots": 2,
                                                             "streams": [{**refs[0], **bad}]}),
                        headers={**mine, "Content-Type": "application/json"})
        assert r.status_code == 422, bad
    released = client.post("/video/leases/release", json={"host": "h1", "leases": refs}, headers=mine).json()
    assert released == {"released": streamed[:2]}
    client.patch(f"/cameras/{streamed[0]}", json={"stream_url": clip_url}, headers=auth(keys["admin"]))
    _free_all(db_url)


def json_dumps(body) -> str:
    import json

    return json.dumps(body, allow_nan=True)


def _fleet(url: str, key: str, name: str, files: Path) -> subprocess.Popen:
    return subprocess.Popen([GRIDWATCH, "video", "fleet", "--server", url, "--slots", "6", "--name", name,
                             "--files", str(files)],
                            env={**os.environ, "GRIDWATCH_KEY": key}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)


def _detectors(pid: int) -> list[int]:
    """The detector processes a fleet host started (multiprocessing spawn children)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            status = (proc / "status").read_text()
            cmdline = (proc / "cmdline").read_bytes()
        except OSError:
            continue
        ppid = int(next(line.split()[1] for line in status.splitlines() if line.startswith("PPid:")))
        if ppid == pid and b"spawn_main" in cmdline:
            found.append(int(proc.name))
    return found


def _wait(what, predicate, timeout: float, every: float = 0.5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"not within {timeout:.0f} s: {what}")


def test_three_hosts_share_twelve_streams_and_take_over_from_a_killed_one(db_url, streamed, clips, keys,
                                                                          video_key):
    server = Server(db_url, env={"GRIDWATCH_FLEET_LEASE_S": str(LEASE_S)}).start()
    viewer = httpx.Client(base_url=server.url, headers=auth(keys["viewer"]), timeout=10)
    hosts = {name: _fleet(server.url, video_key, name, clips) for name in ("fleet-a", "fleet-b", "fleet-c")}
    try:
        def shared_evenly():
            fleet = viewer.get("/video/fleet").json()
            running = [c for c in fleet["cameras"] if c["camera_id"] in streamed and c["state"] == "running"]
            per_host = {h["name"]: len(h["cameras"]) for h in fleet["hosts"] if h["live"]}
            return fleet if len(running) == STREAMS and per_host == dict.fromkeys(hosts, 4) else None

        fleet = _wait("12 streams running, 4 on each host", shared_evenly, 90)
        # each stream runs exactly once: one host per camera, one detector process per stream
        owners = [c["host"] for c in fleet["cameras"] if c["camera_id"] in streamed]
        assert sorted(owners) == sorted([h for h in hosts for _ in range(4)])
        assert all(c["fps"] and c["fps"] > 5 for c in fleet["cameras"] if c["camera_id"] in streamed)
        assert {name: len(_detectors(p.pid)) for name, p in hosts.items()} == dict.fromkeys(hosts, 4)
        _wait("alerts from every stream", lambda: _alerts_by_camera(db_url).keys() >= set(streamed), 30)

        victim = "fleet-c"
        with psycopg.connect(db_url) as conn:
            stale = conn.execute("SELECT camera_id, token FROM video_leases WHERE host = %s ORDER BY camera_id "
                                 "LIMIT 1", [victim]).fetchone()
        orphans = _detectors(hosts[victim].pid)
        hosts[victim].kill()
        killed = time.monotonic()
        # its detectors notice their host is gone and stop, without waiting for the lease
        _wait("the killed host's detectors to stop", lambda: not any(Path(f"/proc/{p}").exists() and
                                                                    _alive(p) for p in orphans), 10, 0.2)

        def taken_over():
            fleet = viewer.get("/video/fleet").json()
            mine = [c for c in fleet["cameras"] if c["camera_id"] in streamed]
            return all(c["state"] == "running" and c["host"] in ("fleet-a", "fleet-b") for c in mine)

        _wait("the killed host's streams running on the others", taken_over, 90)
        took = time.monotonic() - killed
        assert took < LEASE_S + LEASE_S / 4 + 15, took
        assert {name: len(_detectors(hosts[name].pid)) for name in ("fleet-a", "fleet-b")} == \
            {"fleet-a": 6, "fleet-b": 6}

        # a post under the killed host's lease is refused, and stores nothing
        body = {"source": "gridwatch-video:stale", "event_id": "stale-1", "camera_id": stale[0],
                "type": "motion", "score": 0.6, "occurred_at": "2026-12-05T10:00:00+00:00"}
        r = httpx.post(f"{server.url}/video/alerts", json=body, headers={**auth(video_key),
                                                                          "Lease-Token": str(stale[1])})
        assert r.status_code == 409 and r.headers["content-type"] == "application/problem+json"
        assert "not camera" in r.json()["detail"] and "current lease" in r.json()["detail"]
        with psycopg.connect(db_url) as conn:
            assert conn.execute("SELECT count(*) FROM alerts WHERE event_id = 'stale-1'").fetchone()[0] == 0

        time.sleep(6)  # alerts from the new owners too
        # every alert a detector posted has its snapshot (stored before the alert's answer left)
        with psycopg.connect(db_url) as conn:
            alerts, snapped = conn.execute(
                "SELECT count(*), count(s.alert_id) FROM alerts a LEFT JOIN snapshots s ON s.alert_id = a.id "
                "WHERE a.camera_id LIKE 'FLEET-%%' AND a.received_at < now() - interval '2 s'").fetchone()
        assert alerts > STREAMS and snapped == alerts
        # no event was posted twice: per camera, one lease's alerts end before the next one's begin
        for camera, by_token in _alerts_by_camera(db_url).items():
            spans = sorted((min(times), max(times)) for times in by_token.values())
            for (_, end), (start, _) in zip(spans, spans[1:], strict=False):
                assert end < start, (camera, spans)

        # Ctrl-C: the host stops its detectors, gives its leases back and leaves the fleet
        hosts["fleet-a"].send_signal(signal.SIGINT)
        assert hosts["fleet-a"].wait(30) == 0, hosts["fleet-a"].stderr.read()[-2000:]
        fleet = viewer.get("/video/fleet").json()
        assert "fleet-a" not in [h["name"] for h in fleet["hosts"]]
        # the one host left runs what its slots allow; the rest show as having no detector
        def settled():
            fleet = viewer.get("/video/fleet").json()
            states = [c["state"] for c in fleet["cameras"] if c["camera_id"] in streamed]
            return states.count("running") == 6 and states.count("no_detector") == 6

        _wait("6 streams running on fleet-b, 6 without a detector", settled, LEASE_S)
    finally:
        for p in hosts.values():
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
        server.stop()


def _alive(pid: int) -> bool:
    try:
        state = next(line for line in Path(f"/proc/{pid}/status").read_text().splitlines()
                     if line.startswith("State:"))
    except (OSError, StopIteration):
        return False
    return "Z" not in state.split()[1]


def _alerts_by_camera(db_url: str) -> dict[str, dict[str, list]]:
    """Each streamed camera's alert times, by the lease that posted them."""
    found: dict[str, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    with psycopg.connect(db_url) as conn:
        for camera, event_id, at in conn.execute("SELECT camera_id, event_id, occurred_at FROM alerts "
                                                 "WHERE camera_id LIKE 'FLEET-%'"):
            found[camera][event_id.split("-", 1)[0]].append(at)
    return found


def test_fleet_alerts_need_the_lease_and_the_video_role(client, keys, video_key, streamed):
    body = {"source": "x", "event_id": "e1", "camera_id": streamed[0], "type": "motion", "score": 0.5,
            "occurred_at": "2026-12-05T10:00:00+00:00"}
    no_token = client.post("/video/alerts", json=body, headers=auth(video_key))
    assert no_token.status_code == 422 and "lease-token" in no_token.text.lower()
    assert client.post("/video/alerts", json=body, headers={**auth(keys["ingest"]), "Lease-Token": "1"}) \
        .status_code == 403
    assert client.post("/alerts", json=body, headers=auth(video_key)).status_code == 403
    unknown = client.post("/video/alerts", json={**body, "camera_id": "NOPE"},
                          headers={**auth(video_key), "Lease-Token": "1"})
    assert unknown.status_code == 409 and "no video lease" in unknown.json()["detail"]
    bad = client.post("/video/leases", json={"host": "bad host!", "slots": 0}, headers=auth(video_key))
    assert bad.status_code == 422 and {e["field"] for e in bad.json()["errors"]} >= {"host", "slots"}


def test_a_fleet_host_says_what_is_wrong_and_stops(keys, db_url, video_key):
    server = Server(db_url).start()
    try:
        for server_url, key, code, words in (
                (server.url, keys["ingest"], 2, "video` key"),
                (server.url + "/maps", video_key, 2, "is --server the gridwatch server's address"),
                (f"http://127.0.0.1:{free_port()}", video_key, 1, "no heartbeat got through")):
            done = subprocess.run([GRIDWATCH, "video", "fleet", "--server", server_url, "--name", "wrong"],
                                  env={**os.environ, "GRIDWATCH_KEY": key}, capture_output=True, text=True,
                                  timeout=60)
            assert done.returncode == code, done.stderr
            last = done.stderr.strip().splitlines()[-1]
            assert last.startswith("error:") and words in last, last
            assert "could not give the leases back" not in done.stderr
    finally:
        server.stop()


def test_a_host_opens_local_files_only_from_its_files_folder(tmp_path):
    clip = tmp_path / "clip.avi"
    assert allowed_file(f"file://{clip}", tmp_path) == clip
    assert allowed_file("rtsp://10.0.0.9/live", None) is None
    for url, files, words in (("file:///etc/shadow", None, "file:// streams are off"),
                              ("file:///etc/shadow", tmp_path, "outside this host's --files"),
                              (f"file://{tmp_path}/../../etc/shadow", tmp_path, "outside this host's --files")):
        with pytest.raises(BadInput, match=words):
            allowed_file(url, files)
