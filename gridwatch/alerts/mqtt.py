"""Frigate's MQTT events (`frigate/events`) into the alert pipeline.

A Frigate event is a lifecycle: `new`, then `update`s, then `end`, all keyed by
`after.id`. `new` goes through ingest like any alert (source "frigate"); `update` and `end`
update that alert and its incident, never adding one. A message that cannot be used is
logged with the reason and skipped; the listener keeps going, and reconnects (with a
persistent session, so the broker keeps QoS 1 messages meanwhile) when the broker restarts.

Frigate labels objects; gridwatch raises hazards. A label maps to an alert type (fire,
smoke, livestock) or, for people and vehicles, only through the zone it stands in (a zone
named after a type, or `railway` / `river_bank`): no alert is raised for a person merely
seen by a camera.
"""

import logging
import socket
import time
from collections.abc import Callable, Collection
from datetime import UTC, datetime

import orjson
import paho.mqtt.client as mqtt
import psycopg
from pydantic import ValidationError

from gridwatch.alerts.ingest import ingest
from gridwatch.alerts.model import AlertIn
from gridwatch.alerts.registry import Registry
from gridwatch.alerts.types import type_windows
from gridwatch.errors import BadInput
from gridwatch.geo.grid_index import LiveIndex

log = logging.getLogger(__name__)

SOURCE = "frigate"
LABEL_TYPES = {"fire": "fire_smoke", "smoke": "fire_smoke", "cow": "livestock_on_road", "horse": "livestock_on_road",
               "sheep": "livestock_on_road", "goat": "livestock_on_road", "yak": "livestock_on_road"}
ZONE_TYPES = {"railway": "railway_intrusion", "rail": "railway_intrusion", "tracks": "railway_intrusion",
              "river": "flood_water", "river_bank": "flood_water", "road": "road_obstruction"}
# Everything on the railway line is an intrusion, whatever it is.
OVERRIDING_ZONES = {"railway_intrusion"}


class Skip(Exception):
    """A message that cannot become an alert; the text says why."""


def to_alert(payload: bytes, known_types: Collection[str]) -> tuple[str, AlertIn, datetime | None]:
    """(kind, alert, ended_at) of a Frigate event message; raises Skip with the reason."""
    try:
        message = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise Skip(f"not JSON ({exc})") from None
    if not isinstance(message, dict) or not isinstance(message.get("after"), dict):
        raise Skip("no 'after' object: not a frigate/events message")
    kind, after = message.get("type"), message["after"]
    if kind not in ("new", "update", "end"):
        raise Skip(f"type {kind!r} is not new, update or end")
    missing = [k for k in ("id", "camera", "label", "start_time") if after.get(k) in (None, "")]
    if missing:
        raise Skip(f"after.{missing[0]} is missing")
    alert_type = hazard_type(str(after["label"]), after.get("current_zones") or after.get("entered_zones") or [],
                             known_types)
    if alert_type is None:
        raise Skip(f"a {after['label']} outside any hazard zone is not an alert")
    try:
        alert = AlertIn(source=SOURCE, event_id=str(after["id"]), camera_id=str(after["camera"]), type=alert_type,
                        score=float(after.get("top_score") or after.get("score") or 0.0),
                        occurred_at=datetime.fromtimestamp(float(after["start_time"]), UTC),
                        box=after.get("box"), label=after["label"], zones=after.get("current_zones"))
    except ValidationError as exc:
        first = exc.errors()[0]
        raise Skip(f"{'.'.join(map(str, first['loc'])) or 'event'}: {first['msg']}") from None
    except (TypeError, ValueError) as exc:
        raise Skip(f"bad field: {exc}") from None
    ended = after.get("end_time")
    return kind, alert, datetime.fromtimestamp(float(ended), UTC) if ended else None


def hazard_type(label: str, zones: list[str], known_types: Collection[str]) -> str | None:
    """The alert type of a detection: its zone's type if the zone names one, else its label's."""
    zone_types = [z if z in known_types else ZONE_TYPES.get(z) for z in zones]
    zone_types = [t for t in zone_types if t]
    overriding = [t for t in zone_types if t in OVERRIDING_ZONES]
    if overriding:
        return overriding[0]
    return LABEL_TYPES.get(label) or (zone_types[0] if zone_types else None)


def update_alert(conn: psycopg.Connection, alert: AlertIn, ended_at: datetime | None, seen: datetime) -> bool:
    """Apply an update/end to the stored alert and its incident; False if it is unknown."""
    with conn.transaction():
        # found by its key (alert_keys), then in its month's partition
        row = conn.execute("UPDATE alerts a SET score = greatest(a.score, %s), ended_at = coalesce(%s, a.ended_at), "
                           "updated_at = now() FROM alert_keys k WHERE k.source = %s AND k.event_id = %s "
                           "AND a.id = k.alert_id AND a.occurred_at = k.occurred_at RETURNING a.incident_id",
                           [alert.score, ended_at, alert.source, alert.event_id]).fetchone()
        if row is None:
            return False
        if row[0] is not None:
            conn.execute("UPDATE incidents SET last_seen = greatest(last_seen, %s), updated_at = now() "
                         "WHERE id = %s", [seen, row[0]])
    return True


class Listener:
    """Subscribes to Frigate's events and feeds the pipeline until stopped."""

    def __init__(self, host: str, port: int, topic: str, db_url: str, index: LiveIndex, registry: Registry,
                 client_id: str | None = None) -> None:
        self.host, self.port, self.topic = host, port, topic
        self.db_url = db_url
        self.index = index
        self.registry = registry
        self.conn: psycopg.Connection | None = None
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id or
                                  f"gridwatch-{socket.gethostname()}", clean_session=False)
        self.client.reconnect_delay_set(min_delay=1, max_delay=15)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message

    def run(self) -> None:
        self.client.connect_async(self.host, self.port, keepalive=30)
        self.client.loop_forever(retry_first_connection=True)

    def _on_connect(self, client, _userdata, _flags, reason, _props) -> None:
        if reason.is_failure:
            log.warning("broker %s:%s refused the connection: %s", self.host, self.port, reason)
            return
        client.subscribe(self.topic, qos=1)
        log.info("listening to %s on %s:%s", self.topic, self.host, self.port)

    def _on_disconnect(self, _client, _userdata, _flags, reason, _props) -> None:
        log.warning("disconnected from the broker (%s); reconnecting", reason)

    def _on_message(self, _client, _userdata, message: mqtt.MQTTMessage) -> None:
        try:
            self._with_db(lambda conn: self.handle(conn, message.payload))
        except Exception:  # a bug must not stop the listener: log it, skip the message
            log.exception("could not handle a frigate message")

    def handle(self, conn: psycopg.Connection, payload: bytes) -> None:
        try:
            kind, alert, ended = to_alert(payload, type_windows(conn))
            if kind != "new" and update_alert(conn, alert, ended, ended or datetime.now(UTC)):
                log.info("frigate %s %s: updated", kind, alert.event_id)
                return
            [result] = ingest(conn, [alert], self.index.index, datetime.now(UTC), registry=self.registry)
            if ended:
                update_alert(conn, alert, ended, ended)
            log.info("frigate %s %s: alert %s, incident %s", kind, alert.event_id, result.alert_id,
                     result.incident_id)
        except (Skip, BadInput) as exc:
            log.warning("skipped a frigate message: %s", getattr(exc, "detail", None) or exc)

    def _with_db(self, work: Callable[[psycopg.Connection], None]) -> None:
        """Run `work`, waiting out a database outage: the message is acknowledged only
        after it is stored, so none is lost."""
        delay = 0.5
        while True:
            try:
                if self.conn is None or self.conn.closed:
                    self.conn = psycopg.connect(self.db_url, autocommit=False)
                work(self.conn)
                self.conn.commit()
                return
            except psycopg.OperationalError as exc:
                log.warning("database unavailable (%s); retrying in %.1f s", str(exc).strip().splitlines()[0], delay)
                self.conn = None
                time.sleep(delay)
                delay = min(delay * 2, 10.0)
