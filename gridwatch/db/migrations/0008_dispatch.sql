-- The dispatch loop: a team's work as assignments (team status follows them), keys bound to
-- one team, incidents reported from the field, per-type auto-dispatch, and the unassigned
-- queue acted on (an alert placed in a grid by hand, or dismissed with a reason).

-- A team sent to an incident, with the times of each step; cleared when the work ends
-- for this team (the incident resolved, closed, cancelled, a false alarm, or reassigned).
CREATE TABLE assignments (
    id              bigserial PRIMARY KEY,
    incident_id     bigint NOT NULL REFERENCES incidents (id) ON DELETE CASCADE,
    team_id         text NOT NULL REFERENCES teams (id),
    dispatched_at   timestamptz NOT NULL,
    dispatched_by   text NOT NULL,
    acknowledged_at timestamptz,
    on_scene_at     timestamptz,
    cleared_at      timestamptz,
    cleared_why     text CHECK (cleared_why IN ('resolved', 'closed', 'false_alarm', 'cancelled', 'reassigned')),
    CHECK ((cleared_at IS NULL) = (cleared_why IS NULL))
);
-- One open assignment per incident: a second dispatch reassigns, two at once cannot both win.
CREATE UNIQUE INDEX assignments_open_incident_idx ON assignments (incident_id) WHERE cleared_at IS NULL;
CREATE INDEX assignments_open_team_idx ON assignments (team_id) WHERE cleared_at IS NULL;
CREATE INDEX assignments_team_idx ON assignments (team_id, dispatched_at);
CREATE INDEX assignments_incident_idx ON assignments (incident_id);

-- Incidents before this migration: the last dispatch of each becomes its assignment, with
-- the times its history holds.
INSERT INTO assignments (incident_id, team_id, dispatched_at, dispatched_by, acknowledged_at, on_scene_at,
                         cleared_at, cleared_why)
SELECT i.id, i.team_id, d.at, d.actor,
       (SELECT min(e.at) FROM incident_events e WHERE e.incident_id = i.id AND e.action = 'acknowledge'
          AND e.at >= d.at),
       (SELECT min(e.at) FROM incident_events e WHERE e.incident_id = i.id AND e.action = 'on_scene'
          AND e.at >= d.at),
       CASE WHEN i.status IN ('new', 'dispatched', 'acknowledged', 'on_scene') THEN NULL
            ELSE coalesce(i.resolved_at, i.closed_at, i.updated_at) END,
       CASE WHEN i.status IN ('new', 'dispatched', 'acknowledged', 'on_scene') THEN NULL
            WHEN i.status IN ('resolved', 'closed') THEN 'resolved'
            ELSE i.status END
FROM incidents i
JOIN LATERAL (SELECT e.at, e.actor FROM incident_events e
              WHERE e.incident_id = i.id AND e.action = 'dispatch' ORDER BY e.at DESC, e.id DESC LIMIT 1) d ON true
WHERE i.team_id IS NOT NULL AND i.status <> 'new';
UPDATE teams t SET status = 'busy', updated_at = now()
WHERE t.status = 'available' AND EXISTS (SELECT 1 FROM assignments a WHERE a.team_id = t.id AND a.cleared_at IS NULL);

-- Where an incident came from: a camera's alerts, or a report from the field (a grid worker
-- relaying a resident's complaint, a patrol that saw it); a team's report names the team, which
-- may then read it and add photos as if it were sent there.
ALTER TABLE incidents
    ADD COLUMN origin text NOT NULL DEFAULT 'camera' CHECK (origin IN ('camera', 'field')),
    ADD COLUMN reported_by_team text REFERENCES teams (id);

-- Types whose new incidents go to the recommended team at once, without waiting for a dispatcher.
ALTER TABLE alert_types ADD COLUMN auto_dispatch boolean NOT NULL DEFAULT false;
UPDATE alert_types SET auto_dispatch = true WHERE type = 'fire_smoke';

-- A `team` key acts for one team: its assignments, its positions, reports from its township.
ALTER TABLE api_keys ADD COLUMN team_id text REFERENCES teams (id);
ALTER TABLE api_keys DROP CONSTRAINT api_keys_role_check;
ALTER TABLE api_keys ADD CONSTRAINT api_keys_role_check
    CHECK (role IN ('viewer', 'operator', 'dispatcher', 'admin', 'ingest', 'team'));
ALTER TABLE api_keys ADD CONSTRAINT api_keys_team_check CHECK ((role = 'team') = (team_id IS NOT NULL));

-- The unassigned queue, worked: a dispatcher places an alert in a grid (it then joins or opens
-- an incident as any alert does) or dismisses it with a reason. Who and when are kept.
ALTER TABLE alerts
    ADD COLUMN queue_action text CHECK (queue_action IN ('assigned', 'dismissed')),
    ADD COLUMN queue_actor  text,
    ADD COLUMN queue_at     timestamptz,
    ADD COLUMN queue_note   text;

-- Photos a team takes on the scene (JPEG, re-encoded without metadata), numbered per incident.
CREATE TABLE incident_photos (
    incident_id bigint NOT NULL REFERENCES incidents (id) ON DELETE CASCADE,
    n           integer NOT NULL,
    taken_at    timestamptz NOT NULL,
    actor       text NOT NULL,
    jpeg        bytea NOT NULL,
    PRIMARY KEY (incident_id, n)
);
