-- The server works as role gridwatch_app (its pool sets the role on each connection): it may
-- read and change what it serves, and add audit rows, but never change or delete one. Old audit
-- rows go only through purge_audit(), which runs with the owner's rights and leaves the last day.
DO $$
BEGIN
    CREATE ROLE gridwatch_app NOLOGIN;
EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;  -- one role per cluster, made once
END $$;
GRANT gridwatch_app TO CURRENT_USER;

GRANT USAGE ON SCHEMA public TO gridwatch_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO gridwatch_app;
GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA public TO gridwatch_app;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO gridwatch_app;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO gridwatch_app;
REVOKE UPDATE, DELETE, TRUNCATE ON audit_log FROM gridwatch_app;

CREATE FUNCTION purge_audit(before timestamptz) RETURNS bigint
LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp AS $$
    WITH gone AS (DELETE FROM audit_log WHERE at < least(before, now() - interval '1 day') RETURNING 1)
    SELECT count(*) FROM gone
$$;
REVOKE ALL ON FUNCTION purge_audit(timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION purge_audit(timestamptz) TO gridwatch_app;

-- The audit log is read by key, role, path, status and time (GET /admin/audit).
CREATE INDEX audit_log_key_idx ON audit_log (key_id, at);
