"""Boundary import: the demo set goes in cleanly; every kind of bad file is refused with a
clear message, and the stored boundaries stay exactly as they were."""

import copy
import json
import os
import subprocess
import zipfile

import geopandas as gpd
import numpy as np
import prcoords
import pytest
import shapely
from conftest import BOUNDARIES, GRIDWATCH, auth
from shapely.geometry import mapping, shape

from gridwatch.geo.boundaries import import_boundaries
from gridwatch.geo.boundary_checks import region_named

GRIDS = json.loads((BOUNDARIES / "grids.geojson").read_text())


def snapshot(conn) -> tuple:
    """Everything an import could change, in a comparable form."""
    return conn.execute(
        "SELECT boundary_version(),"
        " (SELECT md5(string_agg(code || name || ST_AsEWKB(geom)::text, ',' ORDER BY code)) FROM grids),"
        " (SELECT md5(string_agg(code || name || ST_AsEWKB(geom)::text, ',' ORDER BY code)) FROM villages),"
        " (SELECT md5(string_agg(code || name || ST_AsEWKB(geom)::text, ',' ORDER BY code)) FROM townships)"
    ).fetchone()


def grids_doc() -> dict:
    return copy.deepcopy(GRIDS)


def write(tmp_path, doc: dict, name: str = "grids.geojson"):
    path = tmp_path / name
    path.write_text(json.dumps(doc))
    return path


def cli_import(db_url: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([GRIDWATCH, "grids", "import", *map(str, args)], capture_output=True, text=True,
                          env={"GRIDWATCH_DATABASE_URL": db_url, "PATH": "/usr/bin:/bin"}, timeout=120)


def feature_of(doc: dict, code: str) -> dict:
    return next(f for f in doc["features"] if f["properties"]["code"] == code)


def neighbours(doc: dict) -> tuple[dict, dict]:
    """Two grids that share a border."""
    geoms = {f["properties"]["code"]: shape(f["geometry"]) for f in doc["features"]}
    codes = sorted(geoms)
    for a in codes:
        for b in codes:
            if a < b and geoms[a].intersection(geoms[b]).length > 0:
                return feature_of(doc, a), feature_of(doc, b)
    raise AssertionError("no neighbours")


# -- the demo set ------------------------------------------------------------------------


def test_demo_county_imports_cleanly(conn):
    assert conn.execute("SELECT count(*) FROM townships").fetchone()[0] == 6
    kinds = dict(conn.execute("SELECT kind, count(*) FROM villages GROUP BY kind").fetchall())
    assert kinds == {"village": 29, "community": 7}
    assert conn.execute("SELECT count(*) FROM grids").fetchone()[0] == 127
    assert conn.execute("SELECT count(*) FROM grids WHERE code LIKE village_code || '___'"
                        " AND village_code LIKE township_code || '___'").fetchone()[0] == 127
    assert conn.execute("SELECT bool_and((props->>'synthetic')::bool) FROM grids").fetchone()[0]
    assert conn.execute("SELECT boundary_version()").fetchone()[0] == 1


def test_reimport_replaces_the_set_and_bumps_the_version(conn, tmp_path):
    doc = grids_doc()
    renamed = doc["features"][0]["properties"]
    renamed["name"] = "Renamed Grid"
    before = snapshot(conn)[0]
    report = import_boundaries(conn, write(tmp_path, doc))
    assert report.ok and report.version == before + 1
    assert report.changes["grid"] == {"added": 0, "removed": 0, "reshaped": 0, "renamed": 1,
                                      "moved_to_another_parent": 0}
    assert conn.execute("SELECT name FROM grids WHERE code = %s", [renamed["code"]]).fetchone()[0] == "Renamed Grid"
    # villages and townships were not in the file: kept as they were
    assert conn.execute("SELECT count(*) FROM villages").fetchone()[0] == 36


def test_dry_run_reports_and_writes_nothing(conn, db_url, tmp_path):
    doc = grids_doc()
    doc["features"][0]["properties"]["name"] = "Dry Run Grid"
    before = snapshot(conn)
    result = cli_import(db_url, write(tmp_path, doc), "--dry-run")
    assert result.returncode == 0, result.stderr
    assert "dry run: no errors" in result.stderr and "nothing written" in result.stderr
    assert snapshot(conn) == before


def test_export_then_import_round_trips(conn, db_url, tmp_path):
    for name in ("all.gpkg", "all.geojson"):
        out = tmp_path / name
        done = subprocess.run([GRIDWATCH, "grids", "export", str(out)], capture_output=True, text=True,
                              env={"GRIDWATCH_DATABASE_URL": db_url, "PATH": "/usr/bin:/bin"})
        assert done.returncode == 0, done.stderr
        report = import_boundaries(conn, out, dry_run=True)
        assert report.ok, report.errors
        assert report.counts == {"township": 6, "village": 36, "grid": 127}
        assert all(c == {"added": 0, "removed": 0, "reshaped": 0, "renamed": 0, "moved_to_another_parent": 0}
                   for c in report.changes.values())


def test_zipped_shapefile_imports(conn, tmp_path):
    frame = gpd.read_file(BOUNDARIES / "grids.geojson")
    shp_dir = tmp_path / "shp"
    shp_dir.mkdir()
    frame.to_file(shp_dir / "grids.shp")
    archive = tmp_path / "grids.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for part in shp_dir.iterdir():
            zf.write(part, part.name)
    report = import_boundaries(conn, archive, dry_run=True)
    assert report.ok, report.errors
    assert report.counts["grid"] == 127
    assert report.changes["grid"]["added"] == 0 and report.changes["grid"]["removed"] == 0


def test_declared_web_mercator_is_reprojected(conn, tmp_path):
    frame = gpd.read_file(BOUNDARIES / "grids.geojson").to_crs(3857)
    path = tmp_path / "grids_3857.gpkg"
    frame.to_file(path, layer="grids")
    report = import_boundaries(conn, path, dry_run=True)
    assert report.ok, report.errors
    assert report.changes["grid"]["removed"] == 0


def test_gcj02_coordinates_are_converted_back_to_wgs84(conn, tmp_path):
    doc = grids_doc()
    doc["features"] = doc["features"][:1]
    original = shape(doc["features"][0]["geometry"])
    shifted = shapely.transform(original, lambda c: np.array([prcoords.wgs_gcj((y, x))[::-1] for x, y in c]))
    doc["features"][0]["geometry"] = mapping(shifted)
    path = write(tmp_path, doc)
    assert shapely.hausdorff_distance(original, shifted) > 0.001  # GCJ-02 moves it 100+ m here
    report = import_boundaries(conn, path, gcj02=True, dry_run=True)
    assert not any("invalid" in str(p) for p in report.errors)
    from gridwatch.geo.boundary_files import read_boundaries

    back = read_boundaries(path, gcj02=True).features[0].geom
    assert shapely.hausdorff_distance(original, back) < 1e-5  # about a metre


# -- bad input: a clear error, nothing changed -----------------------------------------------


def bowtie_grid(tmp_path):
    doc = grids_doc()
    f = doc["features"][5]
    c = shape(f["geometry"]).representative_point()
    d = 0.001
    f["geometry"] = {"type": "Polygon", "coordinates": [[[c.x - d, c.y - d], [c.x + d, c.y + d], [c.x + d, c.y - d],
                                                         [c.x - d, c.y + d], [c.x - d, c.y - d]]]}
    return write(tmp_path, doc), [f["properties"]["code"], "invalid ring", "Self-intersection", "2 pieces"]


def overlapping_grids(tmp_path):
    doc = grids_doc()
    a, b = neighbours(doc)
    a["geometry"] = mapping(shape(a["geometry"]).union(shape(b["geometry"]).buffer(-0.0005)))
    return write(tmp_path, doc), [a["properties"]["code"], b["properties"]["code"], "overlap by", "m²"]


def web_mercator_without_crs(tmp_path):
    frame = gpd.read_file(BOUNDARIES / "grids.geojson").to_crs(3857)
    doc = json.loads(frame.to_json(drop_id=True))
    doc.pop("crs", None)
    return write(tmp_path, doc), ["outside lon/lat range", "metres", "--crs"]


def swapped_lon_lat(tmp_path):
    doc = grids_doc()
    for f in doc["features"]:
        f["geometry"] = mapping(shapely.transform(shape(f["geometry"]), lambda c: c[:, ::-1]))
    return write(tmp_path, doc), ["outside lon/lat range", "swapped", "[lon, lat]"]


def two_point_ring(tmp_path):
    doc = grids_doc()
    f = doc["features"][3]
    f["geometry"] = {"type": "Polygon", "coordinates": [[[100.99, 36.9], [100.991, 36.9]]]}
    return write(tmp_path, doc), [f["properties"]["code"], "at least 4 positions"]


def empty_collection(tmp_path):
    return write(tmp_path, {"type": "FeatureCollection", "features": []}), ["no features", "empty"]


def png_renamed(tmp_path):
    path = tmp_path / "grids.geojson"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(200))
    return path, ["PNG image", "not geodata"]


def zip_without_shp(tmp_path):
    path = tmp_path / "grids.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("grids.dbf", b"\x03" + bytes(40))
        zf.writestr("readme.txt", "no shapes here")
    return path, ["no .shp", ".shx", ".dbf"]


def duplicate_codes(tmp_path):
    doc = grids_doc()
    dup = copy.deepcopy(doc["features"][10])
    doc["features"].append(dup)
    return write(tmp_path, doc), [dup["properties"]["code"], "appears 2 times"]


def unknown_village(tmp_path):
    doc = grids_doc()
    doc["features"][0]["properties"]["code"] = "632223100999001"
    doc["features"][0]["properties"]["village_code"] = "632223100999"
    return write(tmp_path, doc), ["632223100999", "unknown"]


BAD_FILES = [bowtie_grid, overlapping_grids, web_mercator_without_crs, swapped_lon_lat, two_point_ring,
             empty_collection, png_renamed, zip_without_shp, duplicate_codes, unknown_village]


@pytest.mark.parametrize("make_bad", BAD_FILES, ids=[f.__name__ for f in BAD_FILES])
def test_bad_file_is_refused_and_nothing_changes(make_bad, conn, db_url, tmp_path):
    path, expected = make_bad(tmp_path)
    before = snapshot(conn)
    result = cli_import(db_url, path)
    assert result.returncode == 2, result.stderr
    for words in expected:
        assert words in result.stderr, (words, result.stderr)
    assert "Traceback" not in result.stderr
    assert snapshot(conn) == before


def scaled(doc: dict, factor: float) -> dict:
    for f in doc["features"]:
        f["geometry"] = mapping(shapely.transform(shape(f["geometry"]), lambda c: c * factor))
    return doc


def test_one_problem_of_every_feature_is_said_once_with_both_likely_causes(db_url, tmp_path):
    """Lon/lat times 10^5 look like metres too: the message names both, once for 127 grids."""
    result = cli_import(db_url, write(tmp_path, scaled(grids_doc(), 1e5)))
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 2, result.stderr  # the problem, and "import refused"
    assert errors[0].startswith("error: 127 features: coordinates outside lon/lat range")
    assert "--crs EPSG:NNNN" in errors[0] and "lon/lat times 10^5" in errors[0] and "divide them" in errors[0]
    assert "(the first: 632223" in errors[0]


def test_a_crs_that_would_move_the_county_far_is_refused_unless_forced(conn, db_url, tmp_path):
    """Following the hint with EPSG:3857 for scaled lon/lat gives coordinates that pass every
    other check: only where they land says they are wrong."""
    path = write(tmp_path, scaled(grids_doc(), 1e5))
    before = snapshot(conn)
    result = cli_import(db_url, path, "--crs", "EPSG:3857", "--dry-run")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "127 grids would move more than 5 km from where they are stored" in result.stderr, result.stderr
    assert "pass --force if that is right" in result.stderr
    result = cli_import(db_url, path, "--crs", "EPSG:3857", "--dry-run", "--force")
    assert result.returncode == 0, result.stderr
    assert "warning: 127 grids would move" in result.stderr
    assert snapshot(conn) == before


@pytest.mark.parametrize("shift, region", [
    ((-90.0, 0.0), "county 632223"),  # out of China altogether
    ((-1.5, 0.0), "county 632223"),  # still in Qinghai, but out of Haiyan County
])
def test_units_outside_the_region_their_codes_name_are_refused_unless_forced(conn, tmp_path, shift, region):
    doc = grids_doc()
    for f in doc["features"]:
        f["geometry"] = mapping(shapely.transform(shape(f["geometry"]), lambda c: c + list(shift)))
    report = import_boundaries(conn, write(tmp_path, doc), dry_run=True)
    assert not report.ok, report.errors
    problem = next(e for e in report.errors if "127 grids lie outside the region their codes name" in str(e))
    assert f"outside {region})" in str(problem) and "--force" in str(problem)
    report = import_boundaries(conn, write(tmp_path, doc), dry_run=True, force=True)
    assert report.ok and any("outside the region their codes name" in str(w) for w in report.warnings)


def test_the_region_a_code_names_is_its_county_else_prefecture_province_or_china():
    assert region_named("632223100001001")[0] == "county 632223"
    assert region_named("632299100001001")[0] == "prefecture 632200"  # a county code our extents do not know
    assert region_named("639999100")[0] == "province 630000"
    assert region_named("999999100")[0] == "China"
    lon_min, lat_min, lon_max, lat_max = region_named("632223")[1]
    assert 100 < lon_min < 100.5 and 101 < lon_max < 101.5 and 36.5 < lat_min < 37 and 37.3 < lat_max < 37.8


def test_a_dry_run_that_renames_a_grid_says_so(db_url, tmp_path):
    doc = grids_doc()
    doc["features"][0]["properties"]["name"] = "Renamed grid"
    result = cli_import(db_url, write(tmp_path, doc), "--dry-run")
    assert result.returncode == 0, result.stderr
    assert "grids: 0 added, 0 removed, 0 reshaped, 1 renamed" in result.stdout + result.stderr


def test_overlap_report_names_codes_area_and_place(conn, tmp_path):
    path, _ = overlapping_grids(tmp_path)
    report = import_boundaries(conn, path)
    assert not report.ok and report.version is None
    overlap = next(p for p in report.errors if "overlap" in p.message)
    assert len(overlap.codes) == 2 and overlap.area_m2 > 1000
    assert 100 < overlap.lon < 102 and 36 < overlap.lat < 38


def test_repairable_ring_is_repaired_and_reported(conn, tmp_path):
    doc = grids_doc()
    f = doc["features"][7]
    ring = f["geometry"]["coordinates"][0]
    # a spike: out to a point and straight back along the same line
    spike = [ring[0], [ring[0][0] + 1e-6, ring[0][1]], ring[0]]
    f["geometry"]["coordinates"][0] = spike + ring[1:]
    report = import_boundaries(conn, write(tmp_path, doc), dry_run=True)
    assert report.ok, report.errors
    assert any("repaired with make_valid" in p.message and f["properties"]["code"] in p.codes
               for p in report.warnings)


def test_gap_is_reported_with_area_and_codes(conn, tmp_path):
    doc = grids_doc()
    victim = doc["features"][20]
    doc["features"].remove(victim)
    report = import_boundaries(conn, write(tmp_path, doc), dry_run=True)
    gap = next(p for p in report.warnings if p.message.startswith("gap of"))
    area = shapely.area(gpd.GeoSeries([shape(victim["geometry"])], crs=4326).to_crs(32647).iloc[0])
    assert gap.area_m2 == pytest.approx(area, rel=0.01)
    assert gap.codes  # the grids around the gap


def test_api_upload_refuses_bad_file_with_problem_details(client, keys, conn, tmp_path):
    path, _ = overlapping_grids(tmp_path)
    before = snapshot(conn)
    response = client.post("/admin/boundaries", headers=auth(keys["admin"]),
                           files={"file": ("grids.geojson", path.read_bytes(), "application/geo+json")})
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert "overlap" in body["detail"] and body["report"]["errors"]
    assert snapshot(conn) == before


def test_a_damaged_zip_is_refused_with_a_reason(client, keys, conn, tmp_path):
    archive = tmp_path / "grids.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("grids.geojson", json.dumps(GRIDS))
    before = snapshot(conn)
    for damaged in (archive.read_bytes()[:-30], b"PK\x03\x04" + os.urandom(2000)):
        response = client.post("/admin/boundaries", headers=auth(keys["admin"]),
                               files={"file": ("grids.zip", damaged, "application/zip")})
        assert response.status_code == 422, response.text
        assert "zip" in response.json()["detail"]
    assert snapshot(conn) == before


def test_api_upload_needs_admin(client, keys, tmp_path):
    response = client.post("/admin/boundaries", headers=auth(keys["dispatcher"]),
                           files={"file": ("grids.geojson", json.dumps(GRIDS).encode(), "application/geo+json")})
    assert response.status_code == 403
    assert "admin" in response.json()["detail"]


def test_api_upload_stores_good_file(client, keys, conn):
    before = snapshot(conn)[0]
    response = client.post("/admin/boundaries", headers=auth(keys["admin"]),
                           files={"file": ("grids.geojson", json.dumps(GRIDS).encode(), "application/geo+json")})
    assert response.status_code == 201, response.text
    assert response.json()["version"] == before + 1
