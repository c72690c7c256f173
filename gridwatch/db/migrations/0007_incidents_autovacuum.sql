-- Incidents are updated with every alert that joins one, and ingest plans its lookups
-- from their statistics: analyze and vacuum them after a few hundred changes, not after
-- a fifth of the table has changed (PostgreSQL's default), so a database that filled up
-- in the last minute is not planned as if it were empty.
ALTER TABLE incidents SET (autovacuum_analyze_threshold = 200, autovacuum_analyze_scale_factor = 0.02,
                           autovacuum_vacuum_threshold = 500, autovacuum_vacuum_scale_factor = 0.02);
