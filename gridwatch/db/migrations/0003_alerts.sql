-- Cameras, patrol teams, alerts, incidents and their 1-3-1 deadlines.
-- county_code is on every big table so it can become the distribution key.

-- Departments a township can "whistle", and the alert types with their grouping window.
CREATE TABLE departments (
    code text PRIMARY KEY,
    name text NOT NULL
);

CREATE TABLE alert_types (
    type        text PRIMARY KEY,
    label       text NOT NULL,
    window_s    integer NOT NULL DEFAULT 600 CHECK (window_s > 0),
    departments text[] NOT NULL DEFAULT '{}'
);

INSERT INTO departments (code, name) VALUES
    ('emergency_management', 'Emergency management bureau'),
    ('fire_rescue', 'Fire and rescue brigade'),
    ('water_resources', 'Water resources bureau'),
    ('housing_construction', 'Housing and construction bureau'),
    ('traffic_police', 'Traffic police'),
    ('transport', 'Transport bureau'),
    ('railway_police', 'Railway police'),
    ('agriculture_husbandry', 'Agriculture and animal husbandry bureau'),
    ('ecology_environment', 'Ecology and environment bureau'),
    ('health', 'Health commission');

INSERT INTO alert_types (type, label, window_s, departments) VALUES
    ('fire_smoke', 'Fire or smoke', 900, '{fire_rescue,emergency_management}'),
    ('flood_water', 'Flooding', 1800, '{water_resources,emergency_management}'),
    ('sewer_overflow', 'Sewer backing up', 1800, '{housing_construction}'),
    ('traffic_accident', 'Road crash', 600, '{traffic_police,health}'),
    ('road_obstruction', 'Blocked road', 1200, '{transport}'),
    ('railway_intrusion', 'Person or livestock on the railway', 300, '{railway_police}'),
    ('livestock_on_road', 'Livestock on the road', 600, '{agriculture_husbandry,traffic_police}'),
    ('illegal_dumping', 'Illegal dumping', 3600, '{ecology_environment}'),
    ('fallen_person', 'Person down (needs help)', 300, '{health}'),
    ('motion', 'Motion', 600, '{}');

CREATE TABLE cameras (
    id            text PRIMARY KEY CHECK (id ~ '^[A-Za-z0-9_.:-]{1,64}$'),
    name          text NOT NULL,
    county_code   text,
    geom          geometry(Point, 4326) NOT NULL,
    heading_deg   double precision NOT NULL CHECK (heading_deg >= 0 AND heading_deg < 360),
    fov_deg       double precision NOT NULL CHECK (fov_deg > 0 AND fov_deg <= 360),
    range_m       double precision NOT NULL CHECK (range_m > 0 AND range_m <= 20000),
    view          geometry(Polygon, 4326) NOT NULL,
    active        boolean NOT NULL DEFAULT true,
    -- image → metres in EPSG homography_epsg, 3×3 row-major; NULL until calibrated
    homography    double precision[],
    homography_epsg integer,
    frame_size    integer[],
    calibration_error_m double precision,
    calibrated_at timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX cameras_geom_idx ON cameras USING gist (geom);

CREATE TABLE teams (
    id            text PRIMARY KEY CHECK (id ~ '^[A-Za-z0-9_.:-]{1,64}$'),
    name          text NOT NULL,
    kind          text NOT NULL CHECK (kind IN ('foot', 'motorcycle', 'car')),
    -- a head count: gridwatch keeps no register of the people in a team
    members       integer NOT NULL CHECK (members > 0),
    volunteer     boolean NOT NULL DEFAULT false,
    base          geometry(Point, 4326) NOT NULL,
    township_code text,
    county_code   text,
    status        text NOT NULL DEFAULT 'available' CHECK (status IN ('available', 'busy', 'off_duty')),
    updated_at    timestamptz NOT NULL DEFAULT now()
);

-- The grids a team answers for.
CREATE TABLE team_grids (
    team_id   text NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    grid_code text NOT NULL,
    PRIMARY KEY (team_id, grid_code)
);
CREATE INDEX team_grids_grid_idx ON team_grids (grid_code);

-- On-duty position pings of a team's device; for dispatch only, purged by retention.
CREATE TABLE team_positions (
    team_id text NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    at      timestamptz NOT NULL,
    geom    geometry(Point, 4326) NOT NULL,
    PRIMARY KEY (team_id, at)
);

CREATE TABLE incidents (
    id               bigserial PRIMARY KEY,
    type             text NOT NULL,
    status           text NOT NULL DEFAULT 'new' CHECK (status IN
                     ('new', 'dispatched', 'acknowledged', 'on_scene', 'resolved', 'closed', 'false_alarm',
                      'cancelled')),
    grid_code        text NOT NULL,
    township_code    text NOT NULL,
    county_code      text NOT NULL,
    -- the cameras whose alerts joined; a repeat from any of them joins again
    camera_ids       text[] NOT NULL,
    geom             geometry(Point, 4326) NOT NULL,
    alert_count      integer NOT NULL DEFAULT 1,
    first_seen       timestamptz NOT NULL,
    last_seen        timestamptz NOT NULL,
    team_id          text REFERENCES teams (id),
    team_reason      text,
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL,
    -- 1-3-1: contact within 1 h, resolved within 3 days, feedback within 1 day of resolution
    contact_due      timestamptz NOT NULL,
    contacted_at     timestamptz,
    resolve_due      timestamptz NOT NULL,
    resolved_at      timestamptz,
    feedback_due     timestamptz,
    feedback_at      timestamptz,
    closed_at        timestamptz,
    contact_state    text NOT NULL DEFAULT 'pending' CHECK (contact_state IN ('pending', 'met', 'missed')),
    resolve_state    text NOT NULL DEFAULT 'pending' CHECK (resolve_state IN ('pending', 'met', 'missed')),
    feedback_state   text NOT NULL DEFAULT 'pending' CHECK (feedback_state IN ('pending', 'met', 'missed')),
    -- 0 grid, 1 township, 2 county
    escalation_level smallint NOT NULL DEFAULT 0 CHECK (escalation_level BETWEEN 0 AND 2)
);
-- Grouping looks for open incidents by camera and by grid.
CREATE INDEX incidents_open_cameras_idx ON incidents USING gin (camera_ids) WITH (fastupdate = off)
    WHERE status IN ('new', 'dispatched', 'acknowledged', 'on_scene');
CREATE INDEX incidents_open_grid_idx ON incidents (grid_code, type, last_seen)
    WHERE status IN ('new', 'dispatched', 'acknowledged', 'on_scene');
CREATE INDEX incidents_grid_idx ON incidents (grid_code, first_seen);
CREATE INDEX incidents_township_idx ON incidents (township_code, first_seen);
CREATE INDEX incidents_first_seen_idx ON incidents (first_seen);

-- Every change of an incident: who, when, what, from which status to which.
CREATE TABLE incident_events (
    id          bigserial PRIMARY KEY,
    incident_id bigint NOT NULL REFERENCES incidents (id) ON DELETE CASCADE,
    at          timestamptz NOT NULL,
    actor       text NOT NULL,
    action      text NOT NULL,
    from_status text,
    to_status   text,
    team_id     text,
    note        text
);
CREATE INDEX incident_events_incident_idx ON incident_events (incident_id, at);

-- Departments a township whistled for an incident; each must report by due_at.
CREATE TABLE incident_departments (
    incident_id bigint NOT NULL REFERENCES incidents (id) ON DELETE CASCADE,
    department  text NOT NULL REFERENCES departments (code),
    whistled_at timestamptz NOT NULL,
    due_at      timestamptz NOT NULL,
    reported_at timestamptz,
    report      text,
    state       text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'met', 'missed')),
    PRIMARY KEY (incident_id, department)
);

CREATE TABLE alerts (
    id               bigserial PRIMARY KEY,
    source           text NOT NULL,
    event_id         text NOT NULL,
    -- camera and type are checked by ingest (neither is ever deleted): no per-row FK lookups
    camera_id        text NOT NULL,
    type             text NOT NULL,
    score            real NOT NULL,
    occurred_at      timestamptz NOT NULL,
    received_at      timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL,
    ended_at         timestamptz,
    box              real[],
    frame_size       integer[],
    geom             geometry(Point, 4326) NOT NULL,
    position_method  text NOT NULL CHECK (position_method IN ('reported', 'homography', 'camera')),
    grid_code        text,
    township_code    text,
    county_code      text,
    incident_id      bigint REFERENCES incidents (id),
    team_id          text,
    team_reason      text,
    boundary_version integer NOT NULL,
    extra            jsonb,
    -- the idempotency key: a repeat returns the first result
    UNIQUE (source, event_id)
);
CREATE INDEX alerts_occurred_idx ON alerts (occurred_at);
CREATE INDEX alerts_incident_idx ON alerts (incident_id);
CREATE INDEX alerts_unassigned_idx ON alerts (occurred_at) WHERE grid_code IS NULL;

-- Every new or changed incident is announced, for the live feed of every server worker:
-- one notification per incident, or one "bulk" notification for a large statement.
CREATE FUNCTION notify_incidents() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    n integer;
BEGIN
    SELECT count(*) INTO n FROM changed;
    IF n <= 100 THEN
        PERFORM pg_notify('incidents', json_build_object('id', id, 'op', lower(TG_OP))::text) FROM changed;
    ELSE
        PERFORM pg_notify('incidents', json_build_object('op', 'bulk', 'count', n)::text);
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER incidents_inserted AFTER INSERT ON incidents REFERENCING NEW TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION notify_incidents();
CREATE TRIGGER incidents_updated AFTER UPDATE ON incidents REFERENCING NEW TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION notify_incidents();

-- Processes cache cameras and teams (gridwatch.db.changes): say when they change.
CREATE FUNCTION notify_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify(TG_ARGV[0], TG_TABLE_NAME);
    RETURN NULL;
END $$;

CREATE TRIGGER cameras_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON cameras
    FOR EACH STATEMENT EXECUTE FUNCTION notify_change('cameras');
CREATE TRIGGER teams_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON teams
    FOR EACH STATEMENT EXECUTE FUNCTION notify_change('teams');
CREATE TRIGGER team_grids_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON team_grids
    FOR EACH STATEMENT EXECUTE FUNCTION notify_change('teams');
