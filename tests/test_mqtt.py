"""`gridwatch mqtt listen` against a real Mosquitto: Frigate's new/update/end become one
alert, bad messages are skipped with the reason, and a broker restart is survived."""

import os
import shutil
import subprocess
import time
import uuid
from datetime import UTC, datetime

import orjson
import paho.mqtt.client as mqtt
import psycopg
import pytest
from conftest import GRIDWATCH, free_port

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"


class Broker:
    def __init__(self, tmp_path) -> None:
        self.port = free_port()
        self.conf = tmp_path / "mosquitto.conf"
        self.conf.write_text(f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
        self.proc: subprocess.Popen | None = None

    def start(self) -> "Broker":
        self.proc = subprocess.Popen([MOSQUITTO, "-c", str(self.conf)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
                client.connect("127.0.0.1", self.port)
                client.disconnect()
                return self
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("mosquitto did not start")

    def stop(self) -> None:
        if self.proc:
            self.proc.terminate()
            self.proc.wait(timeout=10)

    def publish(self, payload: bytes | dict) -> None:
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        client.connect("127.0.0.1", self.port)
        client.loop_start()
        info = client.publish("frigate/events", payload if isinstance(payload, bytes) else orjson.dumps(payload),
                              qos=1)
        info.wait_for_publish(timeout=5)
        client.loop_stop()
        client.disconnect()


@pytest.fixture
def broker(tmp_path):
    if not os.path.exists(MOSQUITTO):
        pytest.fail("mosquitto is not installed: `make test` installs it (apt-get install mosquitto)")
    broker = Broker(tmp_path).start()
    yield broker
    broker.stop()


@pytest.fixture
def listener(broker, db_url, tmp_path):
    log = open(tmp_path / "listener.log", "w+")
    proc = subprocess.Popen([GRIDWATCH, "mqtt", "listen", "--broker", f"127.0.0.1:{broker.port}",
                             "--client-id", f"test-{uuid.uuid4().hex[:8]}"],
                            env={"PATH": os.environ["PATH"], "GRIDWATCH_DATABASE_URL": db_url},
                            stdout=log, stderr=subprocess.STDOUT)
    wait_for_log(log, "listening to frigate/events")
    yield proc, log
    proc.terminate()
    proc.wait(timeout=10)


def wait_for_log(log, text: str, timeout: float = 15.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        log.seek(0)
        content = log.read()
        if text in content:
            return content
        time.sleep(0.1)
    log.seek(0)
    raise AssertionError(f"{text!r} not in the listener's log:\n{log.read()[-3000:]}")


def frigate(kind: str, event_id: str, camera: str = "CAM-0010", label: str = "fire", score: float = 0.7,
            zones: list | None = None, end: float | None = None) -> dict:
    start = datetime.now(UTC).timestamp() - 5
    after = {"id": event_id, "camera": camera, "label": label, "sub_label": None, "score": score,
             "top_score": score, "start_time": start, "end_time": end, "frame_time": start + 1,
             "box": [900, 500, 1000, 900], "current_zones": zones or [], "entered_zones": zones or [],
             "false_positive": False, "has_snapshot": False, "stationary": False}
    return {"type": kind, "before": after, "after": after}


def alerts_of(db_url: str, event_id: str) -> list[tuple]:
    with psycopg.connect(db_url) as conn:
        return conn.execute("SELECT type, score, ended_at, incident_id FROM alerts WHERE source = 'frigate' "
                            "AND event_id = %s", [event_id]).fetchall()


def wait_rows(db_url, event_id, check, timeout=15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = alerts_of(db_url, event_id)
        if check(rows):
            return rows
        time.sleep(0.1)
    raise AssertionError(f"rows for {event_id}: {alerts_of(db_url, event_id)}")


def test_new_update_end_make_one_alert(broker, listener, db_url):
    event = f"{time.time():.3f}-fire"
    broker.publish(frigate("new", event, score=0.6))
    [(kind, score, ended, incident)] = wait_rows(db_url, event, lambda r: len(r) == 1)
    assert kind == "fire_smoke" and incident
    broker.publish(frigate("update", event, score=0.9))
    wait_rows(db_url, event, lambda r: r and r[0][1] == pytest.approx(0.9))
    broker.publish(frigate("end", event, score=0.8, end=datetime.now(UTC).timestamp()))
    rows = wait_rows(db_url, event, lambda r: r and r[0][2] is not None)
    assert len(rows) == 1 and rows[0][1] == pytest.approx(0.9) and rows[0][3] == incident


def test_bad_messages_are_skipped_and_the_listener_goes_on(broker, listener, db_url):
    _, log = listener
    broker.publish(b"{not json")
    wait_for_log(log, "skipped a frigate message: not JSON")
    broker.publish(frigate("new", "ev-unknown-cam", camera="CAM-NOPE"))
    wait_for_log(log, "unknown camera 'CAM-NOPE'")
    broker.publish(frigate("new", "ev-person", label="person"))
    wait_for_log(log, "a person outside any hazard zone is not an alert")
    broker.publish({"type": "new", "after": {"id": "x"}})
    wait_for_log(log, "after.camera is missing")
    event = f"{time.time():.3f}-rail"
    broker.publish(frigate("new", event, label="person", zones=["railway"]))
    [(kind, *_)] = wait_rows(db_url, event, lambda r: len(r) == 1)
    assert kind == "railway_intrusion"
    assert alerts_of(db_url, "ev-person") == [] and alerts_of(db_url, "ev-unknown-cam") == []


def test_listener_survives_a_broker_restart(broker, listener, db_url):
    proc, log = listener
    broker.stop()
    wait_for_log(log, "disconnected from the broker")
    broker.start()
    time.sleep(0.5)
    event = f"{time.time():.3f}-after-restart"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not alerts_of(db_url, event):
        broker.publish(frigate("new", event, label="cow"))  # QoS 1 and idempotent: resending is safe
        time.sleep(1.0)
    assert [r[0] for r in alerts_of(db_url, event)] == ["livestock_on_road"]
    assert proc.poll() is None
