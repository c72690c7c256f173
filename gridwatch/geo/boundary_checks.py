"""Checks on a boundary import: codes, hierarchy, invalid rings, overlaps, gaps, and where
the units lie.

Errors block the import; warnings (repaired rings, gaps) are reported and let it through.
Areas are in m², computed in the UTM zone of the data. One problem shared by many features
(a whole file in the wrong CRS, say) is reported once, with the count and the first codes.
A file read in the wrong CRS can still look clean, so units that would move far from where
they are stored, or land outside the county (else prefecture, province, China) their
statistical division codes name, are refused unless forced.
"""

import json
import re
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from functools import cache
from importlib.resources import files

import numpy as np
import shapely
from shapely.validation import explain_validity

from gridwatch.geo.boundary_files import LEVELS, Feature, ReadResult
from gridwatch.geo.crs import metres_between, to_metric, utm_epsg

CODE_DIGITS = {"township": 9, "village": 12, "grid": 15}
PARENT = {"village": "township", "grid": "village"}
# Smaller overlaps and gaps are rounding in the source coordinates, not real disagreements.
TOLERANCE_M2 = 1.0
# A redrawn boundary moves its unit's centre by metres, a wrong CRS by hundreds of kilometres.
MOVE_LIMIT_M = 5_000.0
# How far outside the lon/lat extent of the region its code names a unit may lie: boundaries
# are redrawn, and the extents come from GCJ-02 outlines (see data/boundaries/make_regions.py).
REGION_MARGIN_DEG = 0.1
# A problem shared by this many features or more is reported once.
GROUP_AT = 4


@dataclass
class Problem:
    message: str
    codes: list[str] = field(default_factory=list)
    area_m2: float | None = None
    lon: float | None = None
    lat: float | None = None

    def as_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v not in (None, [])}

    def __str__(self) -> str:
        where = f" near ({self.lon:.5f}, {self.lat:.5f})" if self.lon is not None else ""
        return f"{self.message}{where}"


@dataclass
class Unit:
    """One checked township, village or grid, ready to store."""

    level: str
    code: str
    name: str
    parent: str | None  # township code of a village, village code of a grid
    kind: str | None  # village|community, villages only
    props: dict
    geom: shapely.MultiPolygon
    area_m2: float = 0.0


@dataclass
class Existing:
    """What is stored now, for the levels an import leaves alone."""

    units: dict[str, list[Unit]] = field(default_factory=lambda: {level: [] for level in LEVELS})


@dataclass
class CheckResult:
    units: dict[str, list[Unit]]  # the levels this import replaces
    errors: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)


def check(read: ReadResult, existing: Existing, force: bool = False) -> CheckResult:
    """Check what was read against itself and against the stored levels it keeps; `force`
    lets units move far or lie outside the region their codes name (reported as warnings instead)."""
    result = CheckResult(units={})
    result.errors += [Problem(m) for m in read.errors]
    result.warnings += [Problem(m) for m in read.warnings]
    for level in LEVELS:
        features = [f for f in read.features if f.level == level]
        if features:
            result.units[level] = _units(level, features, result)
    final = {level: result.units.get(level, existing.units[level]) for level in LEVELS}
    all_geoms = [u.geom for units in final.values() for u in units]
    if not all_geoms:
        result.errors = _grouped(result.errors)
        return result
    _check_place(result, existing, force)
    centre = shapely.union_all(shapely.centroid(all_geoms)).centroid
    epsg = utm_epsg(centre.x, centre.y)
    for units in final.values():
        if units:
            for unit, area in zip(units, shapely.area(to_metric(np.array([u.geom for u in units]), epsg)),
                                  strict=True):
                unit.area_m2 = float(area)
    _check_parents(final, set(result.units), result)
    for level in result.units:
        _check_overlaps(level, final[level], epsg, result)
    for child in ("grid", "village"):
        parent = PARENT[child]
        if child in result.units or parent in result.units:
            _check_cover(final[parent], final[child], child, epsg, result)
    result.errors, result.warnings = _grouped(result.errors), _grouped(result.warnings)
    return result


def _check_place(result: CheckResult, existing: Existing, force: bool) -> None:
    """Units that lie outside the region their codes name, or move far from where they are
    stored: an error (a warning if forced), as a wrong --crs or a scaled file can still pass
    every other check."""
    report = result.warnings if force else result.errors
    unless = "" if force else "; pass --force if that is right"
    for level, units in result.units.items():
        centres = shapely.centroid(np.array([u.geom for u in units]))
        lons, lats = shapely.get_x(centres), shapely.get_y(centres)
        outside = [i for i, u in enumerate(units) if not _within(region_named(u.code)[1], lons[i], lats[i])]
        if outside:
            first = units[outside[0]]
            report.append(Problem(f"{len(outside)} {level}s lie outside the region their codes name ({first.code} "
                                  f"is near ({lons[outside[0]]:.4f}, {lats[outside[0]]:.4f}), outside "
                                  f"{region_named(first.code)[0]}): the CRS is likely wrong (check --crs and "
                                  f"--gcj02){unless}", codes=[units[i].code for i in outside[:20]]))
        stored = {u.code: u.geom for u in existing.units[level]}
        kept = np.array([u.code in stored for u in units])
        if not kept.any():
            continue
        codes = [u.code for u in units if u.code in stored]
        before = shapely.centroid(np.array([stored[c] for c in codes]))
        distances = metres_between(shapely.get_x(before), shapely.get_y(before), lons[kept], lats[kept])
        far = distances > MOVE_LIMIT_M
        if far.any():
            worst = int(np.argmax(distances))
            report.append(Problem(f"{int(far.sum())} {level}s would move more than {MOVE_LIMIT_M / 1000:g} km from "
                                  f"where they are stored ({codes[worst]} by {distances[worst] / 1000:,.0f} km): "
                                  f"the CRS is likely wrong (check --crs and --gcj02){unless}",
                                  codes=[c for c, f in zip(codes, far, strict=True) if f][:20]))


def region_named(code: str) -> tuple[str, tuple[float, float, float, float]]:
    """The smallest region a division code names whose extent is known, and that extent: its
    county (first 6 digits), else its prefecture, else its province, else China."""
    regions = _regions()
    for key, kind in ((code[:6], "county"), (code[:4] + "00", "prefecture"), (code[:2] + "0000", "province")):
        if key in regions:
            return f"{kind} {key}", regions[key]
    return "China", regions["100000"]


@cache
def _regions() -> dict[str, tuple[float, float, float, float]]:
    return {code: tuple(box) for code, box in
            json.loads(files("gridwatch.geo").joinpath("regions.json").read_text()).items()}


def _within(box: tuple[float, float, float, float], lon: float, lat: float) -> bool:
    m = REGION_MARGIN_DEG
    return box[0] - m <= lon <= box[2] + m and box[1] - m <= lat <= box[3] + m


def _grouped(problems: list[Problem]) -> list[Problem]:
    """Problems of single features that say the same thing, GROUP_AT or more of them, as one."""
    shared: dict[str, list[Problem]] = defaultdict(list)
    for p in problems:
        who, sep, what = p.message.partition("): ")
        if sep and " #" in who:
            shared[what].append(p)
    out = []
    for p in problems:
        what = p.message.partition("): ")[2]
        group = shared.get(what, [])
        if len(group) < GROUP_AT:
            out.append(p)
        elif group[0] is p:
            codes = [c for q in group for c in q.codes]
            first = ", ".join(codes[:5]) if codes else group[0].message.partition("): ")[0] + ")"
            out.append(Problem(f"{len(group)} features: {what} (the first: {first})", codes=codes[:20],
                               lon=p.lon, lat=p.lat))
    return out


def _units(level: str, features: list[Feature], result: CheckResult) -> list[Unit]:
    units = []
    digits = CODE_DIGITS[level]
    counts = Counter(f.code for f in features if f.code)
    for code, n in counts.items():
        if n > 1:
            sources = ", ".join(f.source for f in features if f.code == code)
            result.errors.append(Problem(f"{level} code {code} appears {n} times ({sources}); codes must be unique",
                                         codes=[code]))
    for f in features:
        code = f.code
        who = f"{f.source} ({level} {code})" if code else f"{f.source} ({level})"
        if code is None:
            result.errors.append(Problem(f"{who}: no code; every {level} needs a 'code' property"))
            continue
        if not re.fullmatch(rf"[0-9]{{{digits}}}", code):
            result.errors.append(Problem(f"{who}: code must be {digits} digits (statistical division code"
                                         f"{' + 3-digit grid number' if level == 'grid' else ''})", codes=[code]))
            continue
        if f.error:
            result.errors.append(Problem(f"{who}: {f.error}", codes=[code]))
            continue
        geom = _polygonal(f.geom, who, code, result)
        if geom is None or counts[code] > 1:
            continue
        props = dict(f.props)
        for key in ("code", "name", "kind", "village_code", "township_code"):
            props.pop(key, None)
        units.append(Unit(level=level, code=code, name=str(f.props.get("name") or code),
                          parent=_parent_code(level, code, f.props, who, result),
                          kind=_kind(level, code, f.props), props=props, geom=geom))
    return units


def _polygonal(geom, who: str, code: str, result: CheckResult) -> shapely.MultiPolygon | None:
    """The feature as a valid MultiPolygon; invalid rings are repaired with make_valid and
    reported, unless the repair would cut the area into pieces (a bow-tie), which is an error."""
    if geom is None or geom.is_empty:
        result.errors.append(Problem(f"{who}: empty geometry", codes=[code]))
        return None
    if geom.geom_type not in ("Polygon", "MultiPolygon"):
        result.errors.append(Problem(f"{who}: is a {geom.geom_type}; boundaries must be polygons", codes=[code]))
        return None
    if geom.is_valid:
        return shapely.multipolygons(shapely.get_parts(geom))
    reason = explain_validity(geom)
    lon, lat = _location(reason)
    fixed = shapely.get_parts(shapely.make_valid(geom))
    parts = [p for part in fixed for p in shapely.get_parts(part) if p.geom_type == "Polygon"]
    if len(parts) > len(shapely.get_parts(geom)):
        result.errors.append(Problem(f"{who}: invalid ring ({reason.split('[')[0]}) that splits it into "
                                     f"{len(parts)} pieces; fix the ring in the source", codes=[code],
                                     lon=lon, lat=lat))
        return None
    result.warnings.append(Problem(f"{who}: invalid ring ({reason.split('[')[0]}) repaired with make_valid",
                                   codes=[code], lon=lon, lat=lat))
    return shapely.multipolygons(parts)


def _location(reason: str) -> tuple[float | None, float | None]:
    match = re.search(r"\[([-0-9.eE]+) ([-0-9.eE]+)\]", reason)
    return (float(match[1]), float(match[2])) if match else (None, None)


def _parent_code(level: str, code: str, props: dict, who: str, result: CheckResult) -> str | None:
    """A village's township and a grid's village are the leading digits of its code; an
    explicit property must agree with them."""
    if level == "township":
        return None
    key, digits = ("township_code", 9) if level == "village" else ("village_code", 12)
    given = props.get(key)
    if given not in (None, "") and str(given) != code[:digits]:
        result.errors.append(Problem(f"{who}: {key} {given} disagrees with the code's leading digits "
                                     f"{code[:digits]}", codes=[code]))
    return code[:digits]


def _kind(level: str, code: str, props: dict) -> str | None:
    if level != "village":
        return None
    kind = str(props.get("kind") or "").lower()
    if kind in ("village", "community"):
        return kind
    # Statistical codes: 001-199 are residents' committees (communities), 200-399 villages.
    return "community" if int(code[-3:]) < 200 else "village"


def _check_parents(final: dict[str, list[Unit]], replaced: set[str], result: CheckResult) -> None:
    for child, parent in PARENT.items():
        if child not in replaced and parent not in replaced:
            continue
        known = {u.code for u in final[parent]}
        missing: dict[str, list[str]] = {}
        for unit in final[child]:
            if unit.parent not in known:
                missing.setdefault(unit.parent, []).append(unit.code)
        for parent_code, codes in sorted(missing.items()):
            if child in replaced:
                msg = (f"{len(codes)} {child}(s) belong to {parent} {parent_code}, which is unknown: "
                       f"import that {parent} too (a feature with level '{parent}')")
            else:
                msg = (f"this import removes {parent} {parent_code}, but {len(codes)} stored {child}(s) "
                       f"still belong to it: import the {child}s too")
            result.errors.append(Problem(msg, codes=codes[:20]))


def _check_overlaps(level: str, units: list[Unit], epsg: int, result: CheckResult) -> None:
    """Units of one level must not overlap: a point has to belong to one grid."""
    if len(units) < 2:
        return
    metric = to_metric(np.array([u.geom for u in units]), epsg)
    tree = shapely.STRtree(metric)
    left, right = tree.query(metric, predicate="intersects")
    keep = left < right
    left, right = left[keep], right[keep]
    areas = shapely.area(shapely.intersection(metric[left], metric[right]))
    for i, j, area in zip(left, right, areas, strict=True):
        if area > TOLERANCE_M2:
            lon, lat = _lonlat(units[i].geom.intersection(units[j].geom))
            result.errors.append(Problem(f"{level}s {units[i].code} and {units[j].code} overlap by {area:,.0f} m²",
                                         codes=[units[i].code, units[j].code], area_m2=round(float(area), 1),
                                         lon=lon, lat=lat))


def _check_cover(parents: list[Unit], children: list[Unit], child: str, epsg: int, result: CheckResult) -> None:
    """Children should tile their parent: report gaps inside it and parts sticking out."""
    by_parent: dict[str, list[Unit]] = {}
    for unit in children:
        by_parent.setdefault(unit.parent, []).append(unit)
    for parent in parents:
        kids = by_parent.get(parent.code, [])
        if not kids:
            result.warnings.append(Problem(f"{PARENT[child]} {parent.code} has no {child}s", codes=[parent.code]))
            continue
        union = shapely.union_all([k.geom for k in kids])
        gap = parent.geom.difference(union)
        gap_area = float(shapely.area(to_metric(gap, epsg)))
        if gap_area > TOLERANCE_M2:
            near = [k.code for k in kids if k.geom.intersects(gap)]
            lon, lat = _lonlat(gap)
            result.warnings.append(Problem(f"gap of {gap_area:,.0f} m² in {PARENT[child]} {parent.code} not covered "
                                           f"by any {child}", codes=near, area_m2=round(gap_area, 1),
                                           lon=lon, lat=lat))
        outside = union.difference(parent.geom)
        out_area = float(shapely.area(to_metric(outside, epsg)))
        if out_area > TOLERANCE_M2:
            codes = [k.code for k in kids if float(shapely.area(to_metric(k.geom.difference(parent.geom), epsg)))
                     > TOLERANCE_M2]
            lon, lat = _lonlat(outside)
            result.warnings.append(Problem(f"{len(codes)} {child}(s) reach {out_area:,.0f} m² beyond their "
                                           f"{PARENT[child]} {parent.code}", codes=codes,
                                           area_m2=round(out_area, 1), lon=lon, lat=lat))


def _lonlat(geom) -> tuple[float | None, float | None]:
    if geom.is_empty:
        return None, None
    point = geom.representative_point()
    return round(point.x, 6), round(point.y, 6)
