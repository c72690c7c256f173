-- Monthly partitions (issue 15): alerts by occurred_at, GPS pings and the audit log by at, a
-- UTC month a partition, so that retention drops a month whole instead of deleting its rows.
-- Plain SQL, no extension (pg_partman would be one more package on a closed network, and is
-- missing from most managed PostgreSQL): ensure_partitions() makes the coming months (run
-- here, by `gridwatch db migrate` and hourly by the server), and a DEFAULT partition takes rows
-- outside them (an alert's time is the camera's; a replayed history is in the past), which the
-- next ensure_partitions() moves into a partition of their own month.

-- The month partitions of a table with their bounds [lo, hi); not the default partition.
CREATE FUNCTION month_partitions(parent regclass) RETURNS TABLE (part regclass, lo timestamptz, hi timestamptz)
LANGUAGE sql STABLE AS $$
    SELECT c.oid::regclass, b[1]::timestamptz, b[2]::timestamptz
    FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid,
         regexp_match(pg_get_expr(c.relpartbound, c.oid), $re$FROM \('([^']+)'\) TO \('([^']+)'\)$re$) b
    WHERE i.inhparent = parent AND b IS NOT NULL
    ORDER BY 2
$$;

-- Makes the UTC month holding `month` a partition of `parent` (partitioned by `col`), unless
-- it is one; that month's rows waiting in the default partition move into it. The new table is
-- filled while still a plain table and then attached: attaching locks the parent less than
-- CREATE TABLE ... PARTITION OF (ingest goes on), and the moved rows are not announced again
-- by the parent's triggers. A partition grants the server no more than its parent does: the
-- audit log's stay append-only (0012), although default privileges grant DELETE on new tables.
CREATE FUNCTION add_month_partition(parent regclass, col text, month timestamptz) RETURNS boolean
LANGUAGE plpgsql SET TimeZone = 'UTC' AS $$
DECLARE
    lo timestamptz := date_trunc('month', month);
    hi timestamptz := date_trunc('month', month) + interval '1 month';
    name text := format('%s_p%s', parent::text, to_char(lo, 'YYYY_MM'));
    dflt regclass := to_regclass(parent::text || '_default');
    privilege text;
BEGIN
    IF to_regclass(name) IS NOT NULL THEN
        RETURN false;
    END IF;
    EXECUTE format('CREATE TABLE %I (LIKE %s INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING STORAGE)',
                   name, parent);
    IF dflt IS NOT NULL THEN
        -- the default partition is ours until the month is attached: a row of the month stored in
        -- it between the copy and the delete would be lost, and one after the delete would fail
        -- the attach. Taken whole at once (a weaker lock raised later could deadlock with ingest).
        EXECUTE format('LOCK TABLE %s IN ACCESS EXCLUSIVE MODE', dflt);
        EXECUTE format('INSERT INTO %I SELECT * FROM %s WHERE %I >= $1 AND %I < $2', name, dflt, col, col)
            USING lo, hi;
        EXECUTE format('DELETE FROM %s WHERE %I >= $1 AND %I < $2', dflt, col, col) USING lo, hi;
    END IF;
    EXECUTE format('ALTER TABLE %s ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)', parent, name, lo, hi);
    FOREACH privilege IN ARRAY ARRAY['UPDATE', 'DELETE', 'TRUNCATE'] LOOP
        IF NOT has_table_privilege('gridwatch_app', parent, privilege) THEN
            EXECUTE format('REVOKE %s ON %I FROM gridwatch_app', privilege, name);
        END IF;
    END LOOP;
    RETURN true;
END $$;
REVOKE ALL ON FUNCTION add_month_partition(regclass, text, timestamptz) FROM PUBLIC;

-- add_month_partition, a month at a time: one month that cannot be made now (its default
-- partition held by a long transaction past lock_timeout, say) is left for the next run and
-- does not stop the others.
CREATE FUNCTION add_month_or_warn(parent regclass, col text, month timestamptz) RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
    RETURN add_month_partition(parent, col, month);
EXCEPTION WHEN lock_not_available OR deadlock_detected OR check_violation THEN
    RAISE WARNING 'the % partition of % is left for the next run: %', to_char(month, 'YYYY-MM'), parent, SQLERRM;
    RETURN false;
END $$;
REVOKE ALL ON FUNCTION add_month_or_warn(regclass, text, timestamptz) FROM PUBLIC;

-- The partitions of this month and the next `months_ahead`, and of every month (back to
-- `months_back` before this one) whose rows wait in a default partition; returns how many were made. The server (gridwatch_app, which owns no
-- table) calls it hourly, hence SECURITY DEFINER; one caller at a time.
-- A month's move waits up to lock_timeout for its default partition, then is left for the next run.
CREATE FUNCTION ensure_partitions(months_ahead integer DEFAULT 3, months_back integer DEFAULT 24) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp SET TimeZone = 'UTC' SET lock_timeout = '5s'
AS $$
DECLARE
    t record;
    m timestamptz;
    made integer := 0;
BEGIN
    IF months_ahead NOT BETWEEN 0 AND 120 OR months_back NOT BETWEEN 0 AND 1200 THEN
        RAISE EXCEPTION 'months_ahead must be 0..120 and months_back 0..1200, not % and %', months_ahead, months_back
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext('gridwatch.partitions'));
    FOR t IN SELECT * FROM (VALUES ('alerts'::regclass, 'occurred_at'), ('team_positions'::regclass, 'at'),
                                   ('audit_log'::regclass, 'at')) v(parent, col) LOOP
        FOR m IN SELECT generate_series(date_trunc('month', now()),
                                        date_trunc('month', now()) + make_interval(months => months_ahead),
                                        interval '1 month') LOOP
            made := made + add_month_or_warn(t.parent, t.col, m)::integer;
        END LOOP;
        -- a month further back than months_back keeps its rows in the default partition (retention
        -- deletes them row by row): a camera key posting alerts dated over many past years must not
        -- make a partition for each of their months
        FOR m IN EXECUTE format('SELECT DISTINCT date_trunc(''month'', %I) FROM %s WHERE %I >= $1', t.col,
                                t.parent::text || '_default', t.col)
                 USING date_trunc('month', now()) - make_interval(months => months_back)
        LOOP
            made := made + add_month_or_warn(t.parent, t.col, m)::integer;
        END LOOP;
    END LOOP;
    RETURN made;
END $$;
REVOKE ALL ON FUNCTION ensure_partitions(integer, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ensure_partitions(integer, integer) TO gridwatch_app;

-- Autovacuum analyzes each partition but never a partitioned table as a whole, whose statistics
-- the planner uses for the parent and PostGIS's ST_EstimatedExtent for the OGC extent of alerts
-- (gridwatch/geo/collections.py): without them that extent is read from every alert. The server
-- refreshes them hourly, with the coming months (ANALYZE samples a bounded number of rows).
CREATE FUNCTION analyze_partitioned() RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    ANALYZE alerts, team_positions, audit_log;
END $$;
REVOKE ALL ON FUNCTION analyze_partitioned() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION analyze_partitioned() TO gridwatch_app;

-- Retention (gridwatch/alerts/retention.py) drops a month of alerts or GPS pings whole; the
-- server owns no table, so it asks this function. It may delete those rows anyway; the audit log
-- is not dropped here but by purge_audit(), which keeps the last day.
CREATE FUNCTION drop_month_partition(parent regclass, month timestamptz) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    p regclass;
BEGIN
    IF parent NOT IN ('alerts'::regclass, 'team_positions'::regclass) THEN
        RAISE EXCEPTION 'only months of alerts and team_positions are dropped this way, not of %', parent
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    SELECT m.part INTO p FROM month_partitions(parent) m WHERE m.lo = month;
    IF p IS NULL THEN
        RETURN false;  -- another process dropped it first
    END IF;
    EXECUTE format('DROP TABLE %s', p);
    RETURN true;
END $$;
REVOKE ALL ON FUNCTION drop_month_partition(regclass, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION drop_month_partition(regclass, timestamptz) TO gridwatch_app;

-- The conversion, in place: each table is renamed, its partitioned successor made with the same
-- columns, defaults and checks, given a partition for every month its rows fall in, filled by
-- INSERT ... SELECT, and indexed once full (faster than keeping indexes up while loading); the
-- id sequences pass to the new tables, so ids go on. On a fresh install the tables are empty.
ALTER TABLE alerts RENAME TO alerts_unpartitioned;
ALTER TABLE team_positions RENAME TO team_positions_unpartitioned;
ALTER TABLE audit_log RENAME TO audit_log_unpartitioned;

CREATE TABLE alerts (LIKE alerts_unpartitioned INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING STORAGE)
    PARTITION BY RANGE (occurred_at);
CREATE TABLE team_positions (LIKE team_positions_unpartitioned INCLUDING DEFAULTS INCLUDING CONSTRAINTS)
    PARTITION BY RANGE (at);
CREATE TABLE audit_log (LIKE audit_log_unpartitioned INCLUDING DEFAULTS INCLUDING CONSTRAINTS)
    PARTITION BY RANGE (at);
ALTER SEQUENCE alerts_id_seq OWNED BY alerts.id;
ALTER SEQUENCE audit_log_id_seq OWNED BY audit_log.id;

GRANT SELECT, INSERT, UPDATE, DELETE ON alerts, team_positions TO gridwatch_app;
GRANT SELECT, INSERT ON audit_log TO gridwatch_app;
REVOKE UPDATE, DELETE, TRUNCATE ON audit_log FROM gridwatch_app;

CREATE TABLE alerts_default PARTITION OF alerts DEFAULT;
CREATE TABLE team_positions_default PARTITION OF team_positions DEFAULT;
CREATE TABLE audit_log_default PARTITION OF audit_log DEFAULT;
REVOKE UPDATE, DELETE, TRUNCATE ON audit_log_default FROM gridwatch_app;

SELECT add_month_partition('alerts', 'occurred_at', m)
FROM (SELECT DISTINCT date_trunc('month', occurred_at, 'UTC') FROM alerts_unpartitioned) d(m);
SELECT add_month_partition('team_positions', 'at', m)
FROM (SELECT DISTINCT date_trunc('month', at, 'UTC') FROM team_positions_unpartitioned) d(m);
SELECT add_month_partition('audit_log', 'at', m)
FROM (SELECT DISTINCT date_trunc('month', at, 'UTC') FROM audit_log_unpartitioned) d(m);
SELECT ensure_partitions();

INSERT INTO alerts SELECT * FROM alerts_unpartitioned;
INSERT INTO team_positions SELECT * FROM team_positions_unpartitioned;
INSERT INTO audit_log SELECT * FROM audit_log_unpartitioned;

-- An idempotency key is unique across every month: a unique index on a partitioned table must
-- hold the partition key, and the same (source, event_id) sent again may carry another time.
-- So each key is kept once more in this narrow table, unpartitioned, with its alert: a repeat is
-- found (or refused by the primary key) here. Triggers keep it equal to alerts, whoever writes
-- them (the COPY of a batch, a multi-row INSERT, a test or bench loading rows): written in the
-- same statement as the alerts, deleted with them. Retention removes the keys of a month it
-- drops by their time (BRIN: keys arrive about in time order, and the index costs ingest little).
CREATE TABLE alert_keys (
    source      text NOT NULL,
    event_id    text NOT NULL,
    alert_id    bigint NOT NULL,
    occurred_at timestamptz NOT NULL
);
INSERT INTO alert_keys (source, event_id, alert_id, occurred_at)
SELECT source, event_id, id, occurred_at FROM alerts_unpartitioned;
ALTER TABLE alert_keys ADD PRIMARY KEY (source, event_id);
CREATE INDEX alert_keys_occurred_idx ON alert_keys USING brin (occurred_at);
GRANT SELECT, INSERT, UPDATE, DELETE ON alert_keys TO gridwatch_app;

-- A snapshot goes with its alert, but a foreign key to a partitioned table holds a month's
-- partition until every row referring to it is gone (and detached, checked, before a drop):
-- instead the snapshot keeps its alert's time, retention deletes a dropped month's snapshots
-- by it, and the trigger below those of alerts deleted row by row.
ALTER TABLE snapshots DROP CONSTRAINT snapshots_alert_id_fkey;
ALTER TABLE snapshots ADD COLUMN alert_occurred_at timestamptz;
UPDATE snapshots s SET alert_occurred_at = a.occurred_at FROM alerts_unpartitioned a WHERE a.id = s.alert_id;
ALTER TABLE snapshots ALTER COLUMN alert_occurred_at SET NOT NULL;
CREATE INDEX snapshots_alert_occurred_idx ON snapshots (alert_occurred_at);

DROP TABLE alerts_unpartitioned;
DROP TABLE team_positions_unpartitioned;
DROP TABLE audit_log_unpartitioned;

ALTER TABLE alerts ADD PRIMARY KEY (id, occurred_at);
CREATE INDEX alerts_occurred_idx ON alerts (occurred_at);
CREATE INDEX alerts_incident_idx ON alerts (incident_id);
CREATE INDEX alerts_unassigned_idx ON alerts (occurred_at) WHERE grid_code IS NULL;

ALTER TABLE team_positions ADD PRIMARY KEY (team_id, at);
ALTER TABLE team_positions ADD FOREIGN KEY (team_id) REFERENCES teams (id) ON DELETE CASCADE;

ALTER TABLE audit_log ADD PRIMARY KEY (id, at);
ALTER TABLE audit_log ADD FOREIGN KEY (key_id) REFERENCES api_keys (id);
CREATE INDEX audit_log_at_idx ON audit_log (at);
CREATE INDEX audit_log_key_idx ON audit_log (key_id, at);

-- The triggers of the old tables (0007, 0009), and those that keep alert_keys and snapshots.
CREATE TRIGGER alerts_unassigned AFTER INSERT ON alerts FOR EACH ROW WHEN (NEW.grid_code IS NULL)
    EXECUTE FUNCTION notify_unassigned();
CREATE TRIGGER alerts_queue_worked AFTER UPDATE OF queue_action ON alerts FOR EACH ROW
    WHEN (NEW.queue_action IS NOT NULL) EXECUTE FUNCTION notify_unassigned();
CREATE TRIGGER team_positions_added AFTER INSERT ON team_positions FOR EACH ROW
    EXECUTE FUNCTION notify_team_position();

CREATE FUNCTION alerts_keys_added() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO alert_keys (source, event_id, alert_id, occurred_at) SELECT source, event_id, id, occurred_at FROM added;
    RETURN NULL;
END $$;

CREATE FUNCTION alerts_removed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM alert_keys k USING gone g WHERE k.source = g.source AND k.event_id = g.event_id;
    DELETE FROM snapshots s USING gone g WHERE s.alert_id = g.id;
    RETURN NULL;
END $$;

CREATE FUNCTION alerts_truncated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    TRUNCATE alert_keys, snapshots;
    RETURN NULL;
END $$;

CREATE TRIGGER alerts_keys_added AFTER INSERT ON alerts REFERENCING NEW TABLE AS added
    FOR EACH STATEMENT EXECUTE FUNCTION alerts_keys_added();
CREATE TRIGGER alerts_removed AFTER DELETE ON alerts REFERENCING OLD TABLE AS gone
    FOR EACH STATEMENT EXECUTE FUNCTION alerts_removed();
CREATE TRIGGER alerts_truncated AFTER TRUNCATE ON alerts FOR EACH STATEMENT EXECUTE FUNCTION alerts_truncated();

-- The new tables' statistics, before the first query plans without them.
SELECT analyze_partitioned();
ANALYZE alert_keys, snapshots;

-- The audit log is removed by month too; the contract of 0012 stands: with the owner's rights,
-- never the last day's rows, whatever it is asked.
CREATE OR REPLACE FUNCTION purge_audit(before timestamptz) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    cutoff timestamptz := least(before, now() - interval '1 day');
    m record;
    n bigint;
    gone bigint := 0;
BEGIN
    FOR m IN SELECT * FROM month_partitions('audit_log') WHERE hi <= cutoff LOOP
        EXECUTE format('SELECT count(*) FROM %s', m.part) INTO n;
        EXECUTE format('DROP TABLE %s', m.part);
        gone := gone + n;
    END LOOP;
    DELETE FROM audit_log WHERE at < cutoff;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN gone + n;
END $$;
