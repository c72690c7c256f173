-- Grouping asks for the open incidents of a type seen lately (the type's
-- window around first-to-last seen); cameras, grids and distance are then checked on
-- those few rows. The GIN index on camera_ids matched every open incident of a camera,
-- however old, and grew slower with each one.
DROP INDEX incidents_open_cameras_idx;
DROP INDEX incidents_open_grid_idx;
CREATE INDEX incidents_open_recent_idx ON incidents (type, last_seen)
    WHERE status IN ('new', 'dispatched', 'acknowledged', 'on_scene');

-- Ingest writes each alert's incident in the same transaction that creates or locks it,
-- and incidents are never deleted: the per-row foreign-key check (a lookup in incidents
-- for every alert copied) bought nothing and cost a third of the COPY.
ALTER TABLE alerts DROP CONSTRAINT alerts_incident_id_fkey;
