"""A team's work: one assignment per (team, incident) dispatch, with the time of each step
(dispatched, acknowledged, on scene, cleared). A team's status follows them: `busy` while
it holds an open assignment, `available` again when its last one is cleared; `off_duty`
is the team's own (or an admin's) choice and is left alone.

Callers hold the incident's row lock (incidents.act does), so two dispatches of one
incident run one after the other; the unique index on open assignments per incident is
the last word if anything else tries.
"""

from datetime import datetime

import psycopg

# Why an assignment ended, by the incident action that ended it.
CLEARED_BY = {"resolve": "resolved", "close": "closed", "false_alarm": "false_alarm", "cancel": "cancelled"}

# The incident's open assignment, if any: (id, team).
_OPEN_SQL = "SELECT id, team_id FROM assignments WHERE incident_id = %s AND cleared_at IS NULL"
# Other incidents a team is working on, oldest first.
BUSY_WITH_SQL = """SELECT coalesce(array_agg(incident_id ORDER BY dispatched_at), '{}') FROM assignments
WHERE team_id = %s AND cleared_at IS NULL AND incident_id <> %s"""
# Teams' status from their open assignments; off duty stays off duty, and an unchanged
# status is not written (no needless change notifications).
_REFRESH_SQL = """
UPDATE teams t SET status = s.status, updated_at = %(now)s
FROM (SELECT id, CASE WHEN EXISTS (SELECT 1 FROM assignments a WHERE a.team_id = x.id AND a.cleared_at IS NULL)
                      THEN 'busy' ELSE 'available' END AS status
      FROM unnest(%(teams)s::text[]) x(id)) s
WHERE t.id = s.id AND t.status <> 'off_duty' AND t.status <> s.status
"""


def open_assignment(conn: psycopg.Connection, incident_id: int) -> tuple[int, str] | None:
    """(assignment id, team) of the incident's open assignment, or None."""
    return conn.execute(_OPEN_SQL, [incident_id]).fetchone()


def start(conn: psycopg.Connection, incident_id: int, team_id: str, actor: str, now: datetime) -> None:
    """Send `team_id` to the incident; an open assignment of another team is cleared as
    reassigned (and that team's status follows)."""
    current = open_assignment(conn, incident_id)
    previous = None
    if current is not None:
        conn.execute("UPDATE assignments SET cleared_at = %s, cleared_why = 'reassigned' WHERE id = %s",
                     [now, current[0]])
        previous = current[1]
    conn.execute("INSERT INTO assignments (incident_id, team_id, dispatched_at, dispatched_by) VALUES (%s, %s, %s, %s)",
                 [incident_id, team_id, now, actor])
    refresh_status(conn, sorted({team_id, previous} - {None}), now)


def step(conn: psycopg.Connection, incident_id: int, action: str, now: datetime) -> None:
    """Record an acknowledge or on-scene on the open assignment (arriving counts as having
    acknowledged), or clear it when the incident's work ends."""
    if action == "acknowledge":
        conn.execute("UPDATE assignments SET acknowledged_at = coalesce(acknowledged_at, %s) "
                     "WHERE incident_id = %s AND cleared_at IS NULL", [now, incident_id])
    elif action == "on_scene":
        conn.execute("UPDATE assignments SET acknowledged_at = coalesce(acknowledged_at, %s), "
                     "on_scene_at = coalesce(on_scene_at, %s) WHERE incident_id = %s AND cleared_at IS NULL",
                     [now, now, incident_id])
    elif action in CLEARED_BY:
        teams = [r[0] for r in conn.execute(
            "UPDATE assignments SET cleared_at = %s, cleared_why = %s WHERE incident_id = %s AND cleared_at IS NULL "
            "RETURNING team_id", [now, CLEARED_BY[action], incident_id])]
        refresh_status(conn, teams, now)


def refresh_status(conn: psycopg.Connection, team_ids: list[str], now: datetime) -> None:
    """Set each team busy or available from its open assignments (off duty stays)."""
    if team_ids:
        conn.execute(_REFRESH_SQL, {"teams": sorted(team_ids), "now": now})


def holds(conn: psycopg.Connection, team_id: str, incident_id: int, cleared_ok: bool = False) -> bool:
    """Whether the team is assigned to the incident now; with `cleared_ok` also when its
    assignment ended with the incident's work (not when reassigned away)."""
    cond = "(cleared_at IS NULL OR cleared_why <> 'reassigned')" if cleared_ok else "cleared_at IS NULL"
    return conn.execute(f"SELECT EXISTS (SELECT 1 FROM assignments WHERE team_id = %s AND incident_id = %s "
                        f"AND {cond})", [team_id, incident_id]).fetchone()[0]


def concerns(conn: psycopg.Connection, team_id: str, incident_id: int, working: bool = False) -> bool:
    """Whether the incident is the team's business: it reported it from the field, or was sent
    there (ever, to read it; with `working`, to add to its record, not reassigned away)."""
    sent = "(a.cleared_at IS NULL OR a.cleared_why <> 'reassigned')" if working else "true"
    return conn.execute(f"SELECT EXISTS (SELECT 1 FROM assignments a WHERE a.team_id = %(team)s "
                        f"AND a.incident_id = %(id)s AND {sent}) OR EXISTS (SELECT 1 FROM incidents "
                        f"WHERE id = %(id)s AND reported_by_team = %(team)s)",
                        {"team": team_id, "id": incident_id}).fetchone()[0]
