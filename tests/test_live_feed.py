"""GET /incidents/stream: Server-Sent Events that reach every client, whichever of several
server workers it is connected to, whoever made the change."""

import queue
import threading
import time
import uuid
from datetime import UTC, datetime

import httpx
import orjson
import psycopg
from conftest import Server, auth


def listen(url: str, key: str, out: queue.Queue, stop: threading.Event) -> None:
    try:
        _listen(url, key, out, stop)
    except httpx.HTTPError:
        if not stop.is_set():  # the server going away at the end of the test is expected
            raise


def _listen(url: str, key: str, out: queue.Queue, stop: threading.Event) -> None:
    with httpx.Client(timeout=httpx.Timeout(5, read=30)) as client, \
            client.stream("GET", url + "/incidents/stream", headers=auth(key)) as response:
        out.put(("status", response.status_code, response.headers.get("content-type")))
        event = None
        for line in response.iter_lines():
            if stop.is_set():
                return
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: ") and event == "incident":
                out.put(("incident", orjson.loads(line[6:])))


def wait_for(out: queue.Queue, match, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            item = out.get(timeout=max(0.01, deadline - time.monotonic()))
        except queue.Empty:
            break
        if item[0] == "incident" and match(item[1]):
            return item[1]
    raise AssertionError("no matching event")


def test_every_client_on_every_worker_sees_every_change(db_url, keys):
    server = Server(db_url, workers=2).start()
    stop = threading.Event()
    streams = [queue.Queue() for _ in range(6)]
    threads = [threading.Thread(target=listen, args=(server.url, keys["viewer"], q, stop), daemon=True)
               for q in streams]
    try:
        for t in threads:
            t.start()
        for q in streams:
            assert q.get(timeout=10) == ("status", 200, "text/event-stream; charset=utf-8")
        time.sleep(0.5)
        alert = {"source": "live", "event_id": uuid.uuid4().hex, "camera_id": "CAM-0005", "type": "fire_smoke",
                 "score": 0.9, "occurred_at": datetime.now(UTC).isoformat()}
        posted = httpx.post(server.url + "/alerts", json=alert, headers=auth(keys["ingest"])).json()
        iid = posted["incident_id"]
        for q in streams:
            feature = wait_for(q, lambda f: f["id"] == iid)
            assert feature["properties"]["status"] == "dispatched" and feature["geometry"]["type"] == "Point"
        # a change made outside the server processes reaches them through the database
        with psycopg.connect(db_url) as conn:
            conn.execute("UPDATE incidents SET status = 'acknowledged', contacted_at = now() WHERE id = %s", [iid])
        for q in streams:
            wait_for(q, lambda f: f["id"] == iid and f["properties"]["status"] == "acknowledged")
    finally:
        stop.set()
        server.stop()


def test_stream_needs_a_key(client):
    assert client.get("/incidents/stream").status_code == 401
