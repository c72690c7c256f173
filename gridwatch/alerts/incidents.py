"""Incidents: the dispatcher's actions as a checked state machine (every change an event
row), and incidents read back as GeoJSON with their deadlines, alerts and history.

    new → dispatched → acknowledged → on_scene → resolved → closed
    (and false_alarm, cancelled; dispatch again to reassign)
"""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import psycopg

from gridwatch.alerts import assignments
from gridwatch.alerts.dispatch import TeamBoard
from gridwatch.alerts.grouping import OPEN
from gridwatch.errors import BadInput, Conflict, Forbidden, NotFound

FEEDBACK_WITHIN = timedelta(days=1)
# Where an incident's life ends: nothing more is done, nothing more is due.
FINISHED = ("closed", "false_alarm", "cancelled")
STATUSES = (*OPEN, "resolved", *FINISHED)
# Where an incident comes from: a camera's alerts, or a report from the field.
ORIGINS = ("camera", "field")


@dataclass(frozen=True)
class Action:
    allowed_from: tuple[str, ...]
    to: str
    role: str  # the least role that may take it
    note_required: bool = False
    team: bool = False  # a team key may take it on its own assignment
    # besides the status: feedback is given once, and before closing (the pages offer it so too)
    feedback_given: bool | None = None


ACTIONS = {
    "dispatch": Action(("new", "dispatched", "acknowledged"), "dispatched", "dispatcher"),
    "acknowledge": Action(("dispatched",), "acknowledged", "operator", team=True),
    "on_scene": Action(("dispatched", "acknowledged"), "on_scene", "operator", team=True),
    "resolve": Action(("on_scene",), "resolved", "operator", note_required=True, team=True),
    "feedback": Action(("resolved",), "resolved", "operator", note_required=True, team=True, feedback_given=False),
    "close": Action(("resolved",), "closed", "dispatcher", feedback_given=True),
    "false_alarm": Action(OPEN, "false_alarm", "dispatcher", note_required=True),
    "cancel": Action(("new", "dispatched", "acknowledged"), "cancelled", "dispatcher"),
}

# An incident's deadline state as of %(now)s: a pending deadline already past is missed.
_STATE = "CASE WHEN i.{d}_state = 'pending' AND i.{d}_due < %(now)s THEN 'missed' ELSE i.{d}_state END"
OVERDUE_SQL = """(
    (i.status IN ('new', 'dispatched', 'acknowledged', 'on_scene')
        AND ((i.contacted_at IS NULL AND i.contact_due < %(now)s) OR i.resolve_due < %(now)s))
    OR (i.status = 'resolved' AND i.feedback_at IS NULL AND i.feedback_due < %(now)s)
    OR EXISTS (SELECT 1 FROM incident_departments d WHERE d.incident_id = i.id AND d.reported_at IS NULL
               AND d.due_at < %(now)s AND i.status NOT IN ('closed', 'false_alarm', 'cancelled')))"""

# The incident's (alias i) next deadline still to meet, if any: contact or resolution while it
# is open, feedback once resolved, a whistled department's report until it is finished.
NEXT_DUE_SQL = """least(
    CASE WHEN i.status IN ('new', 'dispatched', 'acknowledged', 'on_scene') AND i.contacted_at IS NULL
         THEN i.contact_due END,
    CASE WHEN i.status IN ('new', 'dispatched', 'acknowledged', 'on_scene') THEN i.resolve_due END,
    CASE WHEN i.status = 'resolved' AND i.feedback_at IS NULL THEN i.feedback_due END,
    (SELECT min(d.due_at) FROM incident_departments d WHERE d.incident_id = i.id AND d.reported_at IS NULL
        AND i.status NOT IN ('closed', 'false_alarm', 'cancelled')))"""

PROPERTIES_SQL = f"""json_build_object('id', i.id, 'type', i.type, 'status', i.status, 'origin', i.origin,
    'grid_code', i.grid_code, 'township_code', i.township_code, 'camera_ids', i.camera_ids,
    'lon', round(ST_X(i.geom)::numeric, 7), 'lat', round(ST_Y(i.geom)::numeric, 7),
    'alert_count', i.alert_count, 'first_seen', i.first_seen, 'last_seen', i.last_seen,
    'team_id', i.team_id, 'team_reason', i.team_reason, 'team_suggested', i.status = 'new' AND i.team_id IS NOT NULL,
    'created_at', i.created_at,
    'contact_due', i.contact_due, 'contacted_at', i.contacted_at, 'contact_state', {_STATE.format(d="contact")},
    'resolve_due', i.resolve_due, 'resolved_at', i.resolved_at, 'resolve_state', {_STATE.format(d="resolve")},
    'feedback_due', i.feedback_due, 'feedback_at', i.feedback_at,
    'feedback_state', CASE WHEN i.feedback_due IS NULL THEN 'pending' ELSE {_STATE.format(d="feedback")} END,
    'closed_at', i.closed_at, 'escalation_level', i.escalation_level,
    'escalated_to', (ARRAY['grid', 'township', 'county'])[i.escalation_level + 1],
    'next_due', {NEXT_DUE_SQL}, 'overdue', {OVERDUE_SQL})"""

# One incident (alias i) as in the list: a GeoJSON Feature; takes %(now)s.
FEATURE_SQL = f"""json_build_object('type', 'Feature', 'id', i.id, 'geometry', ST_AsGeoJSON(i.geom, 7)::json,
    'properties', {PROPERTIES_SQL})"""

# The names of an incident's (alias i) grid, village and township, and its team's name.
_NAMES_SQL = """jsonb_build_object(
    'grid_name', (SELECT g.name FROM grids g WHERE g.code = i.grid_code),
    'village_code', left(i.grid_code, 12),
    'village_name', (SELECT v.name FROM villages v WHERE v.code = left(i.grid_code, 12)),
    'township_name', (SELECT t.name FROM townships t WHERE t.code = i.township_code),
    'team_name', (SELECT t.name FROM teams t WHERE t.id = i.team_id))"""

_DETAIL_SQL = f"""SELECT json_build_object('type', 'Feature', 'id', i.id,
    'geometry', ST_AsGeoJSON(i.geom, 7)::json,
    'properties', ({PROPERTIES_SQL})::jsonb || {_NAMES_SQL} || jsonb_build_object(
        'alerts', (SELECT coalesce(json_agg(json_build_object('alert_id', a.id, 'source', a.source,
                'event_id', a.event_id, 'camera_id', a.camera_id, 'score', a.score, 'occurred_at', a.occurred_at,
                'lon', round(ST_X(a.geom)::numeric, 7), 'lat', round(ST_Y(a.geom)::numeric, 7),
                'position_method', a.position_method,
                'snapshot', EXISTS (SELECT 1 FROM snapshots s WHERE s.alert_id = a.id)) ORDER BY a.occurred_at DESC),
                '[]')
            FROM (SELECT * FROM alerts WHERE incident_id = i.id ORDER BY occurred_at DESC LIMIT 200) a),
        'history', (SELECT coalesce(json_agg(json_build_object('at', e.at, 'actor', e.actor, 'action', e.action,
                'from', e.from_status, 'to', e.to_status, 'team_id', e.team_id, 'note', e.note)
                ORDER BY e.at, e.id), '[]') FROM incident_events e WHERE e.incident_id = i.id),
        'departments', (SELECT coalesce(json_agg(json_build_object('department', d.department, 'name', dep.name,
                'whistled_at', d.whistled_at, 'due_at', d.due_at, 'reported_at', d.reported_at,
                'report', d.report,
                'state', CASE WHEN d.state = 'pending' AND d.due_at < %(now)s THEN 'missed' ELSE d.state END)
                ORDER BY d.department), '[]')
            FROM incident_departments d JOIN departments dep ON dep.code = d.department
            WHERE d.incident_id = i.id),
        'assignments', (SELECT coalesce(json_agg(json_build_object('team_id', a.team_id, 'team_name', t.name,
                'dispatched_at', a.dispatched_at, 'dispatched_by', a.dispatched_by,
                'acknowledged_at', a.acknowledged_at, 'on_scene_at', a.on_scene_at, 'cleared_at', a.cleared_at,
                'cleared_why', a.cleared_why) ORDER BY a.dispatched_at, a.id), '[]')
            FROM assignments a JOIN teams t ON t.id = a.team_id WHERE a.incident_id = i.id),
        'photos', (SELECT coalesce(json_agg(json_build_object('n', p.n, 'taken_at', p.taken_at, 'actor', p.actor,
                'href', '/incidents/' || i.id || '/photos/' || p.n) ORDER BY p.n), '[]')
            FROM incident_photos p WHERE p.incident_id = i.id)))::text
FROM incidents i WHERE i.id = %(id)s"""

_FILTERS = {
    "grid": "i.grid_code = %(grid)s",
    "township": "i.township_code = %(township)s",
    "type": "i.type = %(type)s",
    "since": "i.first_seen >= %(since)s",
    "until": "i.first_seen < %(until)s",
    "status": "i.status = ANY(%(status)s)",
    "origin": "i.origin = %(origin)s",
}


# How a list is ordered: newest activity first, or the most urgent deadline first (none last).
ORDERS = {"last_seen": "i.last_seen DESC, i.id DESC", "due": f"{NEXT_DUE_SQL} ASC NULLS LAST, i.id"}


def incident_collection(conn: psycopg.Connection, now: datetime, *, filters: dict, overdue: bool | None = None,
                        limit: int = 100, offset: int = 0, sort: str = "last_seen") -> bytes:
    """Incidents as a GeoJSON FeatureCollection, in the order `sort` names (ORDERS)."""
    where = [_FILTERS[k] for k, v in filters.items() if v is not None]
    if overdue is not None:
        where.append(OVERDUE_SQL if overdue else f"NOT {OVERDUE_SQL}")
    cond = " AND ".join(where) or "true"
    params = {**filters, "now": now, "limit": limit, "offset": offset}
    order = ORDERS[sort]
    sql = (f"WITH page AS (SELECT * FROM incidents i WHERE {cond} ORDER BY {order} "
           f"LIMIT %(limit)s OFFSET %(offset)s) "
           f"SELECT json_build_object('type', 'FeatureCollection', "
           f"'numberMatched', (SELECT count(*) FROM incidents i WHERE {cond}), "
           f"'numberReturned', (SELECT count(*) FROM page), "
           f"'features', coalesce((SELECT json_agg({FEATURE_SQL} ORDER BY {order}) "
           f"FROM page i), '[]'::json))::text")
    return conn.execute(sql, params).fetchone()[0].encode()


def incident_detail(conn: psycopg.Connection, incident_id: int, now: datetime) -> bytes:
    """One incident with its alerts (latest 200), history and whistled departments."""
    row = conn.execute(_DETAIL_SQL, {"id": incident_id, "now": now}).fetchone()
    if row is None:
        raise NotFound(f"no incident {incident_id}")
    return row[0].encode()


# A team's assignments (alias a), newest first, each with its incident as a GeoJSON Feature.
_ASSIGNMENTS_SQL = f"""SELECT json_build_object('type', 'FeatureCollection', 'team_id', %(team)s::text,
    'features', coalesce(json_agg(json_build_object('type', 'Feature', 'id', i.id,
        'geometry', ST_AsGeoJSON(i.geom, 7)::json,
        'properties', ({PROPERTIES_SQL})::jsonb || {_NAMES_SQL} || jsonb_build_object('assignment', json_build_object(
            'dispatched_at', a.dispatched_at, 'dispatched_by', a.dispatched_by, 'acknowledged_at', a.acknowledged_at,
            'on_scene_at', a.on_scene_at, 'cleared_at', a.cleared_at, 'cleared_why', a.cleared_why)))
        ORDER BY a.dispatched_at DESC, a.id DESC), '[]'))::text
FROM assignments a JOIN incidents i ON i.id = a.incident_id
WHERE a.team_id = %(team)s AND (%(open)s::boolean IS NULL OR (a.cleared_at IS NULL) = %(open)s)
  AND (%(since)s::timestamptz IS NULL OR coalesce(a.cleared_at, a.dispatched_at) >= %(since)s)"""


def assignment_collection(conn: psycopg.Connection, team_id: str, now: datetime, open_: bool | None = None,
                          since: datetime | None = None) -> bytes:
    """A team's assignments (open or cleared ones only, or both; ended since a time) with
    their incidents, as a GeoJSON FeatureCollection; each feature's `assignment` holds
    the times of each step. Raises NotFound for an unknown team."""
    if conn.execute("SELECT 1 FROM teams WHERE id = %s", [team_id]).fetchone() is None:
        raise NotFound(f"no team {team_id!r}")
    return conn.execute(_ASSIGNMENTS_SQL, {"team": team_id, "now": now, "open": open_, "since": since}
                        ).fetchone()[0].encode()


def act(conn: psycopg.Connection, incident_id: int, action: str, actor: str, now: datetime | None = None,
        note: str | None = None, team_id: str | None = None, override: bool = False, confirm: bool = False,
        as_team: str | None = None) -> dict:
    """Take a dispatcher's (or a team's) action; returns the incident's new status and team.

    `now` defaults to the clock once the incident is locked, so the times of one incident's
    changes are in the order they were made. `override` lets a busy team take a second
    assignment; `confirm` closes an incident
    whose whistled departments have not all reported; `as_team` is a team key's team, which
    may act only on the incident it is assigned to. Raises NotFound, Forbidden (another
    team's incident), BadInput (missing note, unknown team), Conflict (a transition the
    state machine does not allow, saying which are; an off-duty or busy team; a close
    that needs confirming)."""
    spec = ACTIONS[action]
    note = (note or "").strip() or None
    row = conn.execute("SELECT status, team_id, contacted_at, contact_due, resolve_due, feedback_due, feedback_at, "
                       "grid_code, ST_X(geom), ST_Y(geom), contact_state, resolve_state, feedback_state "
                       "FROM incidents WHERE id = %s FOR UPDATE", [incident_id]).fetchone()
    if row is None:
        raise NotFound(f"no incident {incident_id}")
    status, current_team, contacted_at, contact_due, resolve_due, feedback_due, feedback_at, grid, lon, lat = row[:10]
    stored = dict(zip(("contact", "resolve", "feedback"), row[10:], strict=True))
    now = now or datetime.now(UTC)
    if as_team is not None:
        _check_own(conn, incident_id, action, as_team)

    def state(deadline: str, due: datetime) -> str:
        # once the deadline check has marked it missed, doing it later does not undo that
        return "missed" if stored[deadline] == "missed" or now > due else "met"

    if status not in spec.allowed_from:
        allowed = [a for a, s in ACTIONS.items() if status in s.allowed_from and (as_team is None or s.team)]
        raise Conflict(f"cannot {action.replace('_', ' ')} an incident that is {status}; "
                       f"allowed now: {', '.join(allowed) or 'nothing (it is finished)'}",
                       incident_status=status, allowed=allowed)
    if spec.note_required and note is None:
        raise BadInput(f"{action.replace('_', ' ')} needs a note saying what was done")
    sets: dict[str, object] = {"status": spec.to, "updated_at": now}
    reason = None
    if action == "dispatch":
        team_id, reason = _choose_team(conn, incident_id, team_id, lon, lat, grid, now, actor, override)
        sets.update(team_id=team_id, team_reason=reason)
    if action in ("acknowledge", "on_scene") and contacted_at is None:
        sets.update(contacted_at=now, contact_state=state("contact", contact_due))
    if action == "resolve":
        sets.update(resolved_at=now, resolve_state=state("resolve", resolve_due), feedback_due=now + FEEDBACK_WITHIN)
    if spec.feedback_given is False and feedback_at is not None:
        raise Conflict(f"feedback was already given at {feedback_at.isoformat()}", incident_status=status)
    if spec.feedback_given and feedback_at is None:
        raise Conflict("give feedback first (1-3-1: within a day of resolving), then close", incident_status=status,
                       allowed=["feedback"])
    if action == "feedback":
        sets.update(feedback_at=now, feedback_state=state("feedback", feedback_due))
    if action == "close":
        note = _confirm_unreported(conn, incident_id, confirm, actor, note)
    if action in ("close", "false_alarm", "cancel"):
        sets["closed_at"] = now
    columns = ", ".join(f"{k} = %({k})s" for k in sets)
    conn.execute(f"UPDATE incidents SET {columns} WHERE id = %(id)s", {**sets, "id": incident_id})
    if action == "dispatch":
        assignments.start(conn, incident_id, team_id, actor, now)
    else:
        assignments.step(conn, incident_id, action, now)
    conn.execute("INSERT INTO incident_events (incident_id, at, actor, action, from_status, to_status, team_id, note) "
                 "VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                 [incident_id, now, actor, action, status, spec.to, sets.get("team_id", current_team),
                  note or reason])
    return {"id": incident_id, "status": spec.to, "team_id": sets.get("team_id", current_team),
            "team_reason": reason}


def _check_own(conn: psycopg.Connection, incident_id: int, action: str, team_id: str) -> None:
    """A team key acts on the incident it is assigned to: the open assignment, or for
    feedback the one that resolved it."""
    if not ACTIONS[action].team:
        raise Forbidden(f"{action.replace('_', ' ')} is the dispatcher's; a team key may "
                        f"{', '.join(a.replace('_', '-') for a, s in ACTIONS.items() if s.team)}")
    if not assignments.holds(conn, team_id, incident_id, cleared_ok=action == "feedback"):
        raise Forbidden(f"incident {incident_id} is not assigned to team {team_id}")


def _confirm_unreported(conn: psycopg.Connection, incident_id: int, confirm: bool, actor: str,
                        note: str | None) -> str | None:
    """Closing while whistled departments have not reported needs the dispatcher to say so;
    the history keeps who confirmed it. Returns the note to record."""
    unreported = [r[0] for r in conn.execute(
        "SELECT department FROM incident_departments WHERE incident_id = %s AND reported_at IS NULL "
        "ORDER BY department", [incident_id])]
    if not unreported:
        return note
    if not confirm:
        raise Conflict(f"{', '.join(unreported)} {'has' if len(unreported) == 1 else 'have'} not reported; "
                       f"send confirm: true to close all the same", unreported=unreported)
    said = f"closed with {', '.join(unreported)} not reported (confirmed by {actor})"
    return f"{said}: {note}" if note else said


def _choose_team(conn: psycopg.Connection, incident_id: int, team_id: str | None, lon: float, lat: float,
                 grid: str, now: datetime, actor: str, override: bool) -> tuple[str, str]:
    """The team to send and the reason: the named one, else the recommended one (the next
    best, if another dispatcher has just sent it elsewhere). An off-duty team is refused; a
    busy one only with `override` (a second assignment)."""
    current = assignments.open_assignment(conn, incident_id)
    if current is not None and current[1] == team_id:
        raise Conflict(f"incident {incident_id} is already dispatched to team {team_id}", team_id=team_id)
    if team_id is not None:
        status, busy_with = _lock_teams(conn, incident_id, team_id, current)
        if status is None:
            raise BadInput(f"team_id: no team {team_id!r}")
        reason = f"dispatched by {actor} (team was {status.replace('_', ' ')})"
    else:
        board, passed = TeamBoard.load(conn, now), set()
        while True:
            best = board.best(lon, lat, grid, frozenset(passed))
            if best is None:
                raise Conflict(f"no team to dispatch: {board.none_reason()}" +
                               (f" ({', '.join(sorted(passed))} just sent elsewhere)" if passed else "") +
                               "; name a busy team with override: true to give it a second assignment")
            status, busy_with = _lock_teams(conn, incident_id, best.team_id, current)
            if status == "available" and not busy_with:
                break
            passed.add(best.team_id)
        team_id, reason = best.team_id, f"{best.reason} (recommended, dispatched by {actor})"
    if status == "off_duty":
        raise Conflict(f"team {team_id} is off duty and cannot be dispatched; choose another team, or the team "
                       f"goes on duty first", team_status=status)
    if (busy_with or status == "busy") and not override:
        with_what = f" with incident {', '.join(map(str, busy_with))}" if busy_with else ""
        raise Conflict(f"team {team_id} is busy{with_what}; send override: true to give it a second assignment",
                       team_status=status, busy_with=busy_with)
    if busy_with:
        reason += f"; a second assignment, also on incident {', '.join(map(str, busy_with))}"
    return team_id, reason


def _lock_teams(conn: psycopg.Connection, incident_id: int, team_id: str, current: tuple[int, str] | None
                ) -> tuple[str | None, list[int]]:
    """Lock the team to send and the team it replaces (in id order: two dispatchers swapping
    teams between two incidents wait for each other instead of deadlocking); returns the
    team's status (None if there is no such team) and the other incidents it is on."""
    teams = sorted({team_id} | ({current[1]} if current else set()))
    rows = dict(conn.execute("SELECT id, status FROM teams WHERE id = ANY(%s) ORDER BY id FOR UPDATE",
                             [teams]).fetchall())
    busy_with = conn.execute(assignments.BUSY_WITH_SQL, [team_id, incident_id]).fetchone()[0] \
        if team_id in rows else []
    return rows.get(team_id), busy_with
