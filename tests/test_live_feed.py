"""GET /incidents/stream: Server-Sent Events that reach every client, whichever of several
server workers it is connected to, whoever made the change."""

import queue
import subprocess
import threading
import time
import uuid
from datetime import UTC, datetime

import httpx
import orjson
import psycopg
from conftest import GRIDWATCH, Server, auth

from gridwatch.api.auth import create_key


def listen(url: str, key: str, out: queue.Queue, stop: threading.Event) -> None:
    """Every event of the stream as (event, data), after ("status", code, content type), until `stop`."""
    try:
        with httpx.Client(timeout=httpx.Timeout(5, read=30)) as client, \
                client.stream("GET", url + "/incidents/stream", headers=auth(key)) as response:
            out.put(("status", response.status_code, response.headers.get("content-type")))
            event = None
            for line in response.iter_lines():
                if stop.is_set():
                    return
                if line.startswith("event: "):
                    event = line[7:]
                elif line.startswith("data: "):
                    out.put((event, orjson.loads(line[6:])))
    except httpx.HTTPError:
        if not stop.is_set():  # the server going away at the end of the test is expected
            raise


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


def events(url: str, key: str, last_event_id: str | None = None, read_s: float = 10.0, params: dict | None = None):
    """(id, feature) of each incident event until `read_s` passes without one."""
    headers = {**auth(key), **({"Last-Event-ID": last_event_id} if last_event_id else {})}
    with httpx.Client(timeout=httpx.Timeout(5, read=read_s)) as client, \
            client.stream("GET", url + "/incidents/stream", headers=headers, params=params) as response:
        assert response.status_code == 200
        event_id = None
        try:
            for line in response.iter_lines():
                if line.startswith("id: "):
                    event_id = line[4:]
                elif line.startswith("data: "):
                    yield event_id, orjson.loads(line[6:])
        except httpx.ReadTimeout:
            return


def test_a_client_that_reconnects_gets_what_it_missed(db_url, keys):
    server = Server(db_url).start()

    def post(camera: str) -> int:
        alert = {"source": "live", "event_id": uuid.uuid4().hex, "camera_id": camera, "type": "sewer_overflow",
                 "score": 0.8, "occurred_at": datetime.now(UTC).isoformat()}
        return httpx.post(server.url + "/alerts", json=alert, headers=auth(keys["ingest"])).json()["incident_id"]

    try:
        seen = events(server.url, keys["viewer"])
        threading.Timer(0.5, post, ["CAM-0011"]).start()
        last_id, first = next(seen)
        seen.close()  # the connection drops...
        watcher, stop = queue.Queue(), threading.Event()  # (another client, to know when it was announced)
        threading.Thread(target=listen, args=(server.url, keys["viewer"], watcher, stop), daemon=True).start()
        assert watcher.get(timeout=10)[1] == 200
        before_missed = datetime.now(UTC)
        missed = post("CAM-0311")  # ...and meanwhile an incident starts
        assert missed != first["id"]
        wait_for(watcher, lambda f: f["id"] == missed)
        stop.set()
        # a fresh client sees only what happens from now on
        assert missed not in [f["id"] for _, f in events(server.url, keys["viewer"], read_s=1.5)]
        # the browser reconnects with the last id it saw, and is sent what changed since
        resumed = [f["id"] for _, f in events(server.url, keys["viewer"], last_id, read_s=1.5)]
        assert missed in resumed and first["id"] in resumed
        assert resumed.index(first["id"]) < resumed.index(missed)  # in the order they changed
        # a page passes the time its data was read, as a query parameter (EventSource cannot set the header)
        page_read = {"lastEventId": str(int(before_missed.timestamp() * 1_000_000))}
        assert missed in [f["id"] for _, f in events(server.url, keys["viewer"], read_s=1.5, params=page_read)]
    finally:
        server.stop()


def test_alerts_outside_every_grid_are_announced(db_url, keys):
    server = Server(db_url).start()
    try:
        with httpx.Client(timeout=httpx.Timeout(5, read=10)) as client, \
                client.stream("GET", server.url + "/incidents/stream", headers=auth(keys["viewer"])) as response:
            alert = {"source": "live", "event_id": uuid.uuid4().hex, "camera_id": "CAM-0012", "type": "flood_water",
                     "score": 0.8, "occurred_at": datetime.now(UTC).isoformat(), "lon": 100.3, "lat": 36.95}
            out, event = [], None
            threading.Timer(0.5, lambda: out.append(httpx.post(server.url + "/alerts", json=alert,
                                                               headers=auth(keys["ingest"])).json())).start()
            for line in response.iter_lines():
                if line.startswith("event: "):
                    event = line[7:]
                elif line.startswith("data: ") and event == "unassigned":
                    feature = orjson.loads(line[6:])
                    break
        assert out and out[0]["grid_code"] is None and feature["id"] == out[0]["alert_id"]
        assert "nearest is" in feature["properties"]["team_reason"]
    finally:
        server.stop()


def drain(out: queue.Queue, until, timeout: float = 10.0) -> list:
    """Events from `out` up to and including the first for which `until(event, data)` holds."""
    seen, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            item = out.get(timeout=max(0.01, deadline - time.monotonic()))
        except queue.Empty:
            break
        seen.append(item)
        if until(*item):
            return seen
    raise AssertionError(f"no matching event in {seen[:20]}")


def test_teams_are_live_and_a_team_key_hears_only_its_own(db_url, keys):
    with psycopg.connect(db_url) as conn:
        team_key = create_key(conn, "team", "Agatu phone", "AGATU-MOTO")[1]
    server = Server(db_url).start()
    stop = threading.Event()
    room, phone = queue.Queue(), queue.Queue()
    for out, key in ((room, keys["viewer"]), (phone, team_key)):
        threading.Thread(target=listen, args=(server.url, key, out, stop), daemon=True).start()
        assert out.get(timeout=10)[:2] == ("status", 200)
    time.sleep(0.5)

    def incident(camera: str, lon: float) -> int:
        alert = {"source": "live", "event_id": uuid.uuid4().hex, "camera_id": camera, "type": "illegal_dumping",
                 "score": 0.8, "occurred_at": datetime.now(UTC).isoformat(), "lon": lon, "lat": 37.03}
        return httpx.post(server.url + "/alerts", json=alert, headers=auth(keys["ingest"])).json()["incident_id"]

    def dispatch(iid: int, team: str) -> None:
        r = httpx.post(f"{server.url}/incidents/{iid}/dispatch", json={"team_id": team, "override": True},
                       headers=auth(keys["dispatcher"]))
        assert r.status_code == 200, r.text

    try:
        theirs, mine = incident("CAM-0040", 101.23), incident("CAM-0041", 101.22)
        # suggested to the team, then cancelled: never sent, so never heard of on its phone
        passed_over = incident("CAM-0042", 101.2255)
        suggested = httpx.get(f"{server.url}/incidents/{passed_over}", headers=auth(keys["viewer"])).json()
        assert suggested["properties"]["team_id"] == "AGATU-MOTO" and suggested["properties"]["team_suggested"]
        httpx.post(f"{server.url}/incidents/{passed_over}/cancel", headers=auth(keys["dispatcher"]))
        dispatch(theirs, "POLICE-1")
        dispatch(mine, "AGATU-MOTO")
        # the command room: the team turns busy, live
        seen = drain(room, lambda e, d: e == "team" and d["id"] == "AGATU-MOTO"
                     and d["properties"]["status"] == "busy")
        assert seen[-1][1]["properties"]["busy_with"] == [mine]
        # ...and its position as the phone sends it
        httpx.post(server.url + "/patrols/AGATU-MOTO/positions", json={"lon": 101.221, "lat": 37.031},
                   headers=auth(team_key))
        drain(room, lambda e, d: e == "team" and d["id"] == "AGATU-MOTO" and d["properties"]["position"] == "gps")
        # the phone: its own incident and team, nothing of POLICE-1's
        heard = drain(phone, lambda e, d: e == "team" and d["properties"]["position"] == "gps")
        assert ("incident", mine) in [(e, d["id"]) for e, d in heard]
        assert all(d["id"] in (mine, "AGATU-MOTO") for _, d in heard), heard
        # reassigned away, the phone still hears of it (it leaves the team's list)
        dispatch(mine, "POLICE-2")
        drain(phone, lambda e, d: e == "incident" and d["id"] == mine and d["properties"]["team_id"] == "POLICE-2")
    finally:
        stop.set()
        server.stop()


def test_a_revoked_key_stops_at_once_and_its_stream_ends(db_url):
    with psycopg.connect(db_url) as conn:
        key_id, key = create_key(conn, "viewer", "a screen that was lost")
        _, ingest_key = create_key(conn, "ingest", "a camera")
    server = Server(db_url).start()
    stop, out = threading.Event(), queue.Queue()
    try:
        assert httpx.get(server.url + "/grids?limit=1", headers=auth(key)).status_code == 200  # now cached
        threading.Thread(target=listen, args=(server.url, key, out, stop), daemon=True).start()
        assert out.get(timeout=10)[:2] == ("status", 200)
        done = subprocess.run([GRIDWATCH, "keys", "revoke", str(key_id)], capture_output=True, text=True,
                              env={"GRIDWATCH_DATABASE_URL": db_url, "PATH": "/usr/bin:/bin"})
        assert done.returncode == 0, done.stderr
        deadline = time.monotonic() + 2
        while httpx.get(server.url + "/grids?limit=1", headers=auth(key)).status_code != 401:
            assert time.monotonic() < deadline, "the revoked key still works"
            time.sleep(0.1)
        # what happens next is not sent to it: the stream ends instead
        alert = {"source": "live", "event_id": uuid.uuid4().hex, "camera_id": "CAM-0013", "type": "flood_water",
                 "score": 0.8, "occurred_at": datetime.now(UTC).isoformat()}
        iid = httpx.post(server.url + "/alerts", json=alert, headers=auth(ingest_key)).json()["incident_id"]
        time.sleep(1.5)
        heard = []
        while not out.empty():
            heard.append(out.get())
        assert all(item[0] != "incident" or item[1]["id"] != iid for item in heard), heard
    finally:
        stop.set()
        server.stop()
