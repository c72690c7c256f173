"""The committed demo county: 6 townships, 29 villages, 7 communities, 127 grids that tile
exactly, labelled synthetic, and regenerated deterministically by make_demo.py."""

import importlib.util
import json
import tomllib

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from conftest import BOUNDARIES, ROOT


def layer(name: str) -> gpd.GeoDataFrame:
    return gpd.read_file(BOUNDARIES / f"{name}.geojson").to_crs(32647)


def overlaps_m2(frame: gpd.GeoDataFrame) -> float:
    geoms = frame.geometry.values
    left, right = shapely.STRtree(geoms).query(geoms, predicate="intersects")
    keep = left < right
    return float(shapely.area(shapely.intersection(geoms[left[keep]], geoms[right[keep]])).sum())


def test_counts_codes_and_labels():
    townships, villages, grids = layer("townships"), layer("villages"), layer("grids")
    assert len(townships) == 6 and len(grids) == 127
    assert villages["kind"].value_counts().to_dict() == {"village": 29, "community": 7}
    assert set(villages[villages.kind == "community"].township_code) == {"632223100", "632223101"}
    for frame, digits in ((townships, 9), (villages, 12), (grids, 15)):
        assert frame["code"].str.fullmatch(rf"[0-9]{{{digits}}}").all() and frame["code"].is_unique
        assert frame["synthetic"].all()
    assert (grids.code.str[:12] == grids.village_code).all()
    raw = json.loads((BOUNDARIES / "grids.geojson").read_text())
    assert "crs" not in raw  # plain GeoJSON: EPSG:4326 lon/lat


def test_every_level_tiles_its_parent_exactly():
    townships, villages, grids = layer("townships"), layer("villages"), layer("grids")
    for frame in (townships, villages, grids):
        assert frame.is_valid.all()
        assert overlaps_m2(frame) < 1e-3
    for children, parents, key in ((grids, villages, "village_code"), (villages, townships, "township_code")):
        for code, group in children.groupby(key):
            parent = parents.loc[parents.code == code].geometry.iloc[0]
            assert shapely.symmetric_difference(group.union_all(), parent).area < 1.0, code
    county = townships.union_all()
    assert county.geom_type == "Polygon" and len(county.interiors) == 0
    assert 4300e6 < county.area < 4600e6  # Haiyan County is about 4,400 km²


def test_it_looks_like_a_county_not_a_checkerboard():
    villages, grids = layer("villages"), layer("grids")
    grids["area"] = grids.area
    villages["area"] = villages.area
    community_grids = grids[grids.village_code.isin(villages[villages.kind == "community"].code)]
    assert community_grids.area.median() < grids.area.median() / 5
    west = villages.township_code.isin(["632223201", "632223202", "632223203"]) & (villages.kind == "village")
    assert villages[west].area.median() > 2 * villages[~west & (villages.kind == "village")].area.median()
    # borders are surveyed-looking lines, not straight edges
    assert np.median(shapely.get_num_coordinates(grids.geometry.values)) > 60


def test_generator_is_deterministic_and_exact():
    spec = importlib.util.spec_from_file_location("make_demo", BOUNDARIES / "make_demo.py")
    make_demo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make_demo)
    county = layer("townships").union_all()
    first, second = make_demo.build(county), make_demo.build(county)
    assert json.dumps(first) == json.dumps(second)
    grids = gpd.GeoDataFrame.from_features(first["grids"], crs=4326).to_crs(32647)
    assert len(grids) == 127 and overlaps_m2(grids) < 1e-3
    # the output is rounded to 1e-7° (about 1 cm) along a 600 km outline
    assert grids.union_all().symmetric_difference(county).area < 50.0


def test_gridwatch_does_not_depend_on_the_generator_package():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert not any("cnmaps" in d for d in project["dependencies"])
    assert any("cnmaps" in d for d in project["optional-dependencies"]["demo-gen"])


@pytest.mark.parametrize("name", ["townships", "villages", "grids"])
def test_properties_follow_the_design(name):
    frame = gpd.read_file(BOUNDARIES / f"{name}.geojson")
    expected = {"township": {"code", "name"}, "village": {"code", "name", "kind", "township_code"},
                "grid": {"code", "name", "village_code", "township_code"}}[name.rstrip("s")]
    assert expected <= set(frame.columns)
    assert (frame["level"] == name.rstrip("s")).all()
    assert not pd.isna(frame["name"]).any()
