-- Vector tiles of open incidents (gridwatch/geo/tiles.py) select them by the tile's envelope:
-- a GiST index on where the open ones are, partial so that the closed history costs nothing.
CREATE INDEX incidents_open_geom_idx ON incidents USING gist (geom)
    WHERE status NOT IN ('closed', 'false_alarm', 'cancelled');
