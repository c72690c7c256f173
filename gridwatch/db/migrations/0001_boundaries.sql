-- Administrative boundaries: county → township → village/community → grid.
CREATE EXTENSION IF NOT EXISTS postgis;

-- One row per accepted boundary import; the current set is the highest version.
CREATE TABLE boundary_versions (
    version     integer PRIMARY KEY,
    imported_at timestamptz NOT NULL DEFAULT now(),
    source      text NOT NULL,
    townships   integer NOT NULL,
    villages    integer NOT NULL,
    grids       integer NOT NULL,
    report      jsonb NOT NULL DEFAULT '{}'
);

CREATE TABLE townships (
    code        text PRIMARY KEY CHECK (code ~ '^[0-9]{9}$'),
    name        text NOT NULL,
    county_code text NOT NULL,
    area_m2     double precision NOT NULL,
    props       jsonb NOT NULL DEFAULT '{}',
    geom        geometry(MultiPolygon, 4326) NOT NULL
);

CREATE TABLE villages (
    code          text PRIMARY KEY CHECK (code ~ '^[0-9]{12}$'),
    name          text NOT NULL,
    kind          text NOT NULL CHECK (kind IN ('village', 'community')),
    township_code text NOT NULL REFERENCES townships (code) DEFERRABLE INITIALLY DEFERRED,
    county_code   text NOT NULL,
    area_m2       double precision NOT NULL,
    props         jsonb NOT NULL DEFAULT '{}',
    geom          geometry(MultiPolygon, 4326) NOT NULL
);

CREATE TABLE grids (
    code          text PRIMARY KEY CHECK (code ~ '^[0-9]{15}$'),
    name          text NOT NULL,
    village_code  text NOT NULL REFERENCES villages (code) DEFERRABLE INITIALLY DEFERRED,
    township_code text NOT NULL REFERENCES townships (code) DEFERRABLE INITIALLY DEFERRED,
    county_code   text NOT NULL,
    area_m2       double precision NOT NULL,
    props         jsonb NOT NULL DEFAULT '{}',
    geom          geometry(MultiPolygon, 4326) NOT NULL
);

CREATE INDEX townships_geom_idx ON townships USING gist (geom);
CREATE INDEX villages_geom_idx ON villages USING gist (geom);
CREATE INDEX villages_township_idx ON villages (township_code);
CREATE INDEX grids_geom_idx ON grids USING gist (geom);
CREATE INDEX grids_village_idx ON grids (village_code);
CREATE INDEX grids_township_idx ON grids (township_code);

-- The grid holding a point. Border rule: of the grids covering the point,
-- the lowest code wins, the same rule as the in-memory index in gridwatch.geo.grid_index.
CREATE FUNCTION grid_at(pt geometry) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT code FROM grids WHERE ST_Covers(geom, pt) ORDER BY code LIMIT 1
$$;

CREATE FUNCTION boundary_version() RETURNS integer
LANGUAGE sql STABLE AS $$
    SELECT coalesce(max(version), 0) FROM boundary_versions
$$;
