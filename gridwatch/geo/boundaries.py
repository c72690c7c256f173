"""The stored boundary set: importing a file into it (checked, atomic, versioned) and
reading townships, villages and grids back as GeoJSON."""

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import orjson
import psycopg
import shapely

from gridwatch.errors import BadInput, NotFound
from gridwatch.geo.boundary_checks import CheckResult, Existing, Problem, Unit, check
from gridwatch.geo.boundary_files import LEVELS, read_boundaries
from gridwatch.geo.grid_index import CHANNEL

TABLES = {"township": "townships", "village": "villages", "grid": "grids"}

# The stored units, for the levels an import keeps: code, parent code, kind, name, WKB.
_EXISTING_SQL = {
    "township": "SELECT code, NULL, NULL, name, ST_AsBinary(geom) FROM townships",
    "village": "SELECT code, township_code, kind, name, ST_AsBinary(geom) FROM villages",
    "grid": "SELECT code, village_code, NULL, name, ST_AsBinary(geom) FROM grids",
}
_COPY_SQL = {
    "township": "COPY townships (code, name, county_code, area_m2, props, geom) FROM STDIN",
    "village": "COPY villages (code, name, kind, township_code, county_code, area_m2, props, geom) FROM STDIN",
    "grid": "COPY grids (code, name, village_code, township_code, county_code, area_m2, props, geom) FROM STDIN",
}


@dataclass
class ImportReport:
    """What an import found and did; `version` is set once it has been stored."""

    source: str
    dry_run: bool
    errors: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    changes: dict[str, dict[str, int]] = field(default_factory=dict)
    version: int | None = None

    @property
    def ok(self) -> bool:
        return not self.errors

    def as_dict(self) -> dict:
        return {"source": self.source, "dry_run": self.dry_run, "ok": self.ok, "version": self.version,
                "counts": self.counts, "changes": self.changes,
                "errors": [p.as_dict() for p in self.errors], "warnings": [p.as_dict() for p in self.warnings]}


def current_version(conn: psycopg.Connection) -> int:
    return conn.execute("SELECT boundary_version()").fetchone()[0]


def township_names(conn: psycopg.Connection) -> dict[str, str]:
    """Township code → name, in code order."""
    return dict(conn.execute("SELECT code, name FROM townships ORDER BY code").fetchall())


def known_township(conn: psycopg.Connection, code: str | None) -> str | None:
    """`code` if there is such a township, None if none was given (or empty, as a form's
    "all townships" sends it); refused otherwise, as a filter on a misspelt code would
    quietly match nothing."""
    if not code:
        return None
    if conn.execute("SELECT 1 FROM townships WHERE code = %s", [code]).fetchone() is None:
        raise BadInput(f"township: no township {code!r}; GET /townships lists them",
                       errors=[{"field": "township", "message": "unknown township", "input": code}])
    return code


def import_boundaries(conn: psycopg.Connection, path: Path, *, crs: str | None = None, gcj02: bool = False,
                      dry_run: bool = False, force: bool = False, source: str | None = None,
                      progress: Callable[[str], None] = lambda _m: None) -> ImportReport:
    """Read, check and (unless dry_run or any error) store a boundary file in one
    transaction, replacing each level the file holds. Raises BadInput for input that is
    not geodata; every other problem is in the report. `force` lets units move far from
    where they are stored, or lie outside the region their codes name."""
    source = source or str(path)
    progress(f"reading {source}")
    read = read_boundaries(path, crs=crs, gcj02=gcj02, display_name=None if source == str(path) else source)
    report = ImportReport(source=source, dry_run=dry_run,
                          counts={level: sum(f.level == level for f in read.features) for level in LEVELS})
    with conn.transaction():
        # One import at a time; lookups (plain reads) go on meanwhile and see the old set.
        conn.execute("LOCK TABLE boundary_versions IN EXCLUSIVE MODE")
        existing = _existing(conn)
        progress(f"checking {len(read.features)} features (codes, rings, overlaps, gaps)")
        checked = check(read, existing, force)
        report.errors, report.warnings = checked.errors, checked.warnings
        report.changes = _changes(existing, checked)
        if not report.ok or dry_run:
            return report
        progress("storing")
        for level in reversed(LEVELS):
            if level in checked.units:
                conn.execute(f"DELETE FROM {TABLES[level]}")
        for level in LEVELS:
            if level in checked.units:
                _copy(conn, level, checked.units[level])
        final = {level: len(checked.units.get(level, existing.units[level])) for level in LEVELS}
        report.version = current_version(conn) + 1
        conn.execute("INSERT INTO boundary_versions (version, source, townships, villages, grids, report) "
                     "VALUES (%s, %s, %s, %s, %s, %s)",
                     [report.version, source, final["township"], final["village"], final["grid"],
                      orjson.dumps(report.as_dict()).decode()])
        conn.execute("SELECT pg_notify(%s, %s)", [CHANNEL, str(report.version)])
    progress(f"boundary version {report.version}: {final['township']} townships, {final['village']} villages, "
             f"{final['grid']} grids")
    return report


def _existing(conn: psycopg.Connection) -> Existing:
    existing = Existing()
    for level, sql in _EXISTING_SQL.items():
        for code, parent, kind, name, wkb in conn.execute(sql):
            existing.units[level].append(Unit(level=level, code=code, name=name, parent=parent, kind=kind,
                                              props={}, geom=shapely.from_wkb(wkb)))
    return existing


def _changes(existing: Existing, checked: CheckResult) -> dict[str, dict[str, int]]:
    changes = {}
    for level, units in checked.units.items():
        old = {u.code: u for u in existing.units[level]}
        new = {u.code: u for u in units}
        kept = new.keys() & old.keys()
        changes[level] = {
            "added": len(new.keys() - old.keys()),
            "removed": len(old.keys() - new.keys()),
            "reshaped": sum(not shapely.equals_exact(old[c].geom, new[c].geom, 1e-9) for c in kept),
            "renamed": sum(old[c].name != new[c].name for c in kept),
            "moved_to_another_parent": sum(old[c].parent != new[c].parent for c in kept),
        }
    return changes


def _copy(conn: psycopg.Connection, level: str, units: list[Unit]) -> None:
    geoms = shapely.to_wkb(shapely.set_srid([u.geom for u in units], 4326), hex=True, include_srid=True)
    with conn.cursor().copy(_COPY_SQL[level]) as copy:
        for unit, geom in zip(units, geoms, strict=True):
            props = orjson.dumps(unit.props).decode()
            if level == "township":
                copy.write_row([unit.code, unit.name, unit.code[:6], unit.area_m2, props, geom])
            elif level == "village":
                copy.write_row([unit.code, unit.name, unit.kind, unit.parent, unit.code[:6], unit.area_m2, props,
                                geom])
            else:
                copy.write_row([unit.code, unit.name, unit.parent, unit.code[:9], unit.code[:6], unit.area_m2,
                                props, geom])


# -- reading back as GeoJSON ----------------------------------------------------------------

_PROPERTIES = {
    "township": "'code', code, 'name', name, 'county_code', county_code, 'area_m2', round(area_m2::numeric, 1)",
    "village": "'code', code, 'name', name, 'kind', kind, 'township_code', township_code, "
               "'area_m2', round(area_m2::numeric, 1)",
    "grid": "'code', code, 'name', name, 'village_code', village_code, 'township_code', township_code, "
            "'area_m2', round(area_m2::numeric, 1)",
}
_FILTERS = {"township": "township_code", "village": "village_code", "kind": "kind"}


def _feature_sql(level: str) -> str:
    # One GeoJSON Feature per row of t; props (e.g. synthetic) first, our columns win.
    return (f"json_build_object('type', 'Feature', 'id', t.code, "
            f"'properties', t.props || jsonb_build_object({_PROPERTIES[level]}), "
            f"'geometry', ST_AsGeoJSON(t.geom, 7)::json)")


def feature_collection(conn: psycopg.Connection, level: str, *, bbox: tuple[float, float, float, float] | None = None,
                       filters: dict[str, str] | None = None, limit: int = 100, offset: int = 0) -> bytes:
    """A GeoJSON FeatureCollection of one level, ordered by code, built in PostGIS."""
    where, params = ["true"], []
    if bbox is not None:
        where.append("ST_Intersects(geom, ST_MakeEnvelope(%s, %s, %s, %s, 4326))")
        params += list(bbox)
    for key, value in (filters or {}).items():
        if value is not None:
            where.append(f"{_FILTERS[key]} = %s")
            params.append(value)
    cond = " AND ".join(where)
    table = TABLES[level]
    sql = (f"WITH page AS (SELECT * FROM {table} WHERE {cond} ORDER BY code LIMIT %s OFFSET %s) "
           f"SELECT json_build_object('type', 'FeatureCollection', "
           f"'numberMatched', (SELECT count(*) FROM {table} WHERE {cond}), "
           f"'numberReturned', (SELECT count(*) FROM page), 'boundary_version', boundary_version(), "
           f"'features', coalesce((SELECT json_agg({_feature_sql(level)} ORDER BY t.code) FROM page t), "
           f"'[]'::json))::text")
    return conn.execute(sql, [*params, limit, offset, *params]).fetchone()[0].encode()


def feature(conn: psycopg.Connection, level: str, code: str) -> bytes:
    """One township, village or grid as a GeoJSON Feature (with the boundary version as a
    foreign member); raises NotFound."""
    sql = (f"SELECT (({_feature_sql(level)})::jsonb || jsonb_build_object('boundary_version', "
           f"boundary_version()))::text FROM {TABLES[level]} t WHERE t.code = %s")
    row = conn.execute(sql, [code]).fetchone()
    if row is None:
        raise NotFound(f"no {level} with code {code}")
    return row[0].encode()


# The stored units with every property `import_boundaries` reads back.
_EXPORT_SQL = {
    "township": "SELECT code, name, NULL AS kind, NULL AS township_code, NULL AS village_code, props, "
                "ST_AsBinary(geom) FROM townships ORDER BY code",
    "village": "SELECT code, name, kind, township_code, NULL, props, ST_AsBinary(geom) FROM villages ORDER BY code",
    "grid": "SELECT code, name, NULL, township_code, village_code, props, ST_AsBinary(geom) FROM grids ORDER BY code",
}


def export_boundaries(conn: psycopg.Connection, path: Path) -> int:
    """Write every level to GeoJSON (one file, a 'level' property) or GeoPackage (a layer
    per level); returns the number of features. The file imports back unchanged."""
    import geopandas as gpd
    import pandas as pd

    frames = {}
    for level, sql in _EXPORT_SQL.items():
        rows = conn.execute(sql).fetchall()
        records = [{"level": level, "code": code, "name": name, "kind": kind, "township_code": township,
                    "village_code": village, **(props or {})}
                   for code, name, kind, township, village, props, _ in rows]
        geoms = shapely.from_wkb([r[-1] for r in rows]) if rows else []
        frames[level] = gpd.GeoDataFrame(pd.DataFrame.from_records(records), geometry=list(geoms), crs=4326)
    if path.suffix.lower() == ".gpkg":
        path.unlink(missing_ok=True)
        for level, frame in frames.items():
            frame.drop(columns="level").dropna(axis=1, how="all").to_file(path, layer=TABLES[level],
                                                                          driver="GPKG")
    else:
        pd.concat(frames.values(), ignore_index=True).to_file(path, driver="GeoJSON")
    return sum(len(f) for f in frames.values())
