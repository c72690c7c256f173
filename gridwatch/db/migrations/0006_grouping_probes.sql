-- A few alerts find the open incidents they may join by index probes, each alert its own:
-- the incidents of its type that its camera joined, and those of its type in its grid.
-- Scanning every recent open incident of the types instead cost milliseconds per commit
-- once a few thousand were open. (A large batch still reads them all by (type, last_seen).)
CREATE INDEX incidents_open_cameras_idx ON incidents USING gin (camera_ids) WITH (fastupdate = off)
    WHERE status IN ('new', 'dispatched', 'acknowledged', 'on_scene');
CREATE INDEX incidents_open_grid_idx ON incidents (type, grid_code, last_seen)
    WHERE status IN ('new', 'dispatched', 'acknowledged', 'on_scene');
