-- Vector tiles are drawn in Web Mercator: each grid's outline is kept there too, computed by
-- PostgreSQL from geom (the lon/lat source of truth), so a tile transforms only its envelope,
-- never the polygons (about 40 % of a grid tile's time; gridwatch/geo/tiles.py).
ALTER TABLE grids ADD COLUMN geom_3857 geometry(MultiPolygon, 3857)
    GENERATED ALWAYS AS (ST_Transform(geom, 3857)) STORED;
