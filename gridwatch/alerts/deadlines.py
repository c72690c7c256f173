"""The county's 1-3-1 promise: contact within 1 hour, resolved within 3 days, feedback
within 1 day of resolving. `check_deadlines` marks what ran late and escalates it: a
missed contact or feedback goes to the township, a missed resolution or an unreported
whistled department to the county. A township may "whistle" departments, each of which
must report by its deadline.
"""

from datetime import datetime, timedelta

import psycopg

from gridwatch.alerts.incidents import FINISHED
from gridwatch.errors import BadInput, Conflict, NotFound

LEVELS = ("grid", "township", "county")
DEFAULT_REPORT_WITHIN = timedelta(hours=24)

# Each rule: the deadline it checks, and the update that marks it missed and escalates.
_RULES = [
    ("contact", """UPDATE incidents SET contact_state = 'missed', escalation_level = greatest(escalation_level, 1),
        updated_at = %(now)s
        WHERE contact_state = 'pending' AND contacted_at IS NULL AND contact_due < %(now)s
          AND status IN ('new', 'dispatched', 'acknowledged', 'on_scene')
        RETURNING id, status, contact_due, escalation_level"""),
    ("resolve", """UPDATE incidents SET resolve_state = 'missed', escalation_level = 2, updated_at = %(now)s
        WHERE resolve_state = 'pending' AND resolve_due < %(now)s
          AND status IN ('new', 'dispatched', 'acknowledged', 'on_scene')
        RETURNING id, status, resolve_due, escalation_level"""),
    ("feedback", """UPDATE incidents SET feedback_state = 'missed',
        escalation_level = greatest(escalation_level, 1), updated_at = %(now)s
        WHERE feedback_state = 'pending' AND feedback_due < %(now)s AND feedback_at IS NULL AND status = 'resolved'
        RETURNING id, status, feedback_due, escalation_level"""),
]
_DEPARTMENTS_SQL = """
WITH late AS (
    UPDATE incident_departments d SET state = 'missed'
    FROM incidents i
    WHERE d.incident_id = i.id AND d.state = 'pending' AND d.reported_at IS NULL AND d.due_at < %(now)s
      AND i.status NOT IN ('closed', 'false_alarm', 'cancelled')
    RETURNING d.incident_id, d.department, d.due_at
), raised AS (
    UPDATE incidents i SET escalation_level = 2, updated_at = %(now)s
    FROM (SELECT DISTINCT incident_id FROM late) l WHERE i.id = l.incident_id
    RETURNING i.id, i.status
)
SELECT late.incident_id, raised.status, late.due_at, late.department
FROM late JOIN raised ON raised.id = late.incident_id
"""
_WHAT = {"contact": "contact within 1 hour", "resolve": "resolution within 3 days",
         "feedback": "feedback within 1 day of resolving"}


def check_deadlines(conn: psycopg.Connection, now: datetime) -> list[dict]:
    """Mark missed deadlines and escalate, once per deadline; returns what it escalated.
    Safe to run from several processes: only one runs the check at a time."""
    escalated = []
    with conn.transaction():
        if not conn.execute("SELECT pg_try_advisory_xact_lock(hashtext('gridwatch.deadlines'))").fetchone()[0]:
            return []
        for deadline, sql in _RULES:
            for iid, status, due, level in conn.execute(sql, {"now": now}).fetchall():
                note = f"{_WHAT[deadline]} missed (due {due.isoformat()}): escalated to {LEVELS[level]}"
                escalated.append({"incident_id": iid, "deadline": deadline, "level": LEVELS[level], "note": note})
                _event(conn, iid, now, "escalate", status, note)
        for iid, status, due, department in conn.execute(_DEPARTMENTS_SQL, {"now": now}).fetchall():
            note = f"{department} did not report by {due.isoformat()}: escalated to county"
            escalated.append({"incident_id": iid, "deadline": f"report:{department}", "level": "county",
                              "note": note})
            _event(conn, iid, now, "escalate", status, note)
    return escalated


def whistle(conn: psycopg.Connection, incident_id: int, departments: list[str] | None, actor: str, now: datetime,
            within: timedelta = DEFAULT_REPORT_WITHIN, note: str | None = None) -> list[str]:
    """The township whistles departments to an incident (default: those of its type);
    each must report within `within`. Returns the departments newly whistled."""
    row = conn.execute("SELECT i.status, t.departments FROM incidents i JOIN alert_types t ON t.type = i.type "
                       "WHERE i.id = %s FOR UPDATE OF i", [incident_id]).fetchone()
    if row is None:
        raise NotFound(f"no incident {incident_id}")
    status, defaults = row
    if status in FINISHED:
        raise Conflict(f"the incident is {status}; there is nothing to whistle for", incident_status=status)
    wanted = departments or list(defaults)
    if not wanted:
        raise BadInput("departments: name at least one (this type has no default departments)")
    known = {r[0] for r in conn.execute("SELECT code FROM departments WHERE code = ANY(%s)", [wanted])}
    unknown = sorted(set(wanted) - known)
    if unknown:
        all_codes = [r[0] for r in conn.execute("SELECT code FROM departments ORDER BY code")]
        raise BadInput(f"departments: unknown {', '.join(unknown)}; known: {', '.join(all_codes)}")
    if within <= timedelta(0):
        raise BadInput("hours: the report deadline must be in the future")
    added = [r[0] for r in conn.execute(
        "INSERT INTO incident_departments (incident_id, department, whistled_at, due_at) "
        "SELECT %s, d, %s, %s FROM unnest(%s::text[]) d ON CONFLICT DO NOTHING RETURNING department",
        [incident_id, now, now + within, sorted(set(wanted))])]
    if added:
        conn.execute("UPDATE incidents SET escalation_level = greatest(escalation_level, 1), updated_at = %s "
                     "WHERE id = %s", [now, incident_id])
        _event(conn, incident_id, now, "whistle", status,
               f"{actor} whistled {', '.join(added)} (report within {within.total_seconds() / 3600:g} h)"
               + (f": {note}" if note else ""), actor=actor)
    return added


def report(conn: psycopg.Connection, incident_id: int, department: str, note: str, actor: str,
           now: datetime) -> str:
    """A whistled department reports; returns whether it was on time ('met' or 'missed')."""
    if not (note or "").strip():
        raise BadInput("note: a report says what the department did")
    row = conn.execute("SELECT d.due_at, d.reported_at, i.status FROM incident_departments d "
                       "JOIN incidents i ON i.id = d.incident_id WHERE d.incident_id = %s AND d.department = %s "
                       "FOR UPDATE OF d", [incident_id, department]).fetchone()
    if row is None:
        raise NotFound(f"department {department!r} was not whistled for incident {incident_id}")
    due, reported_at, status = row
    if reported_at is not None:
        raise Conflict(f"{department} already reported at {reported_at.isoformat()}")
    state = "met" if now <= due else "missed"
    conn.execute("UPDATE incident_departments SET reported_at = %s, report = %s, state = %s "
                 "WHERE incident_id = %s AND department = %s", [now, note.strip(), state, incident_id, department])
    conn.execute("UPDATE incidents SET updated_at = %s WHERE id = %s", [now, incident_id])
    _event(conn, incident_id, now, "report", status, f"{department} reported ({state}): {note.strip()}", actor=actor)
    return state


def _event(conn, incident_id: int, at: datetime, action: str, status: str, note: str, actor: str = "system") -> None:
    conn.execute("INSERT INTO incident_events (incident_id, at, actor, action, from_status, to_status, note) "
                 "VALUES (%s, %s, %s, %s, %s, %s, %s)", [incident_id, at, actor, action, status, status, note])
