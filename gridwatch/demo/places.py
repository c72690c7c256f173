"""Cameras and patrol teams of the demo county: invented, deterministic, plausible.

Cameras are dense in the two towns, strung along the railway and the main roads, sparse in
the pastures; some are calibrated from a virtual pinhole camera (8 m up, looking down the
road), through the same fitting code as PUT /cameras/{id}/calibration. Teams: one team of
grid workers per grid (180 grid workers in all, kept as head counts, not names), and
22 patrol teams, among them the Agatu volunteer motorcycle patrol of Jintan township.
"""

import math
from collections.abc import Callable

import numpy as np
import psycopg
import shapely

from gridwatch.alerts.cameras import calibrate_camera, create_camera
from gridwatch.alerts.patrols import create_team
from gridwatch.geo.crs import WGS84, transformer
from gridwatch.geo.grid_index import GridIndex

SEED = 632223
FRAME = (1920, 1080)
# Synthetic lines (lon, lat), shaped like the county's real railway and roads.
RAILWAY = [(101.285, 36.900), (101.150, 36.905), (101.050, 36.890), (100.995, 36.886), (100.930, 36.915),
           (100.850, 36.960), (100.750, 37.000), (100.620, 37.050), (100.500, 37.080), (100.400, 37.105)]
ROADS = {
    "G315": [(101.290, 36.880), (101.130, 36.880), (101.000, 36.890), (100.930, 36.930), (100.840, 36.975),
             (100.700, 37.020), (100.550, 37.070), (100.400, 37.110)],
    "S204": [(100.900, 36.970), (100.880, 37.100), (100.850, 37.250), (100.800, 37.400), (100.720, 37.520)],
    "Lakeshore Rd": [(100.990, 36.890), (100.850, 36.860), (100.700, 36.840), (100.550, 36.860), (100.420, 36.880)],
    "Jintan Rd": [(101.000, 36.900), (101.100, 36.950), (101.200, 37.030)],
}
# cameras in the communities of each town
TOWN_CAMERAS = {"632223100": 150, "632223101": 100}
TOWNSHIP_NAMES = {"632223100": "Sanjiaocheng", "632223101": "Xihai", "632223200": "Jintan",
                  "632223201": "Halejing", "632223202": "Qinghaihu", "632223203": "Ganzihe"}


def seed_cameras(conn: psycopg.Connection, index: GridIndex, progress: Callable[[str], None]) -> int:
    """About 500 cameras; returns how many were stored."""
    rng = np.random.default_rng(SEED)
    to_m = transformer(WGS84, "EPSG:32647")
    to_ll = transformer("EPSG:32647", WGS84)
    cameras = []

    def add(lon, lat, name, heading, fov, range_m):
        if index.grid_at(lon, lat) >= 0:
            cameras.append({"id": f"CAM-{len(cameras) + 1:04d}", "name": name, "lon": round(float(lon), 7),
                            "lat": round(float(lat), 7), "heading_deg": float(heading) % 360, "fov_deg": fov,
                            "range_m": range_m, "county_code": "632223"})

    villages = {r[0]: (r[1], shapely.from_wkb(r[2])) for r in conn.execute(
        "SELECT code, name, ST_AsBinary(geom) FROM villages WHERE kind = 'community'")}
    for township, count in TOWN_CAMERAS.items():
        communities = [(name, geom) for code, (name, geom) in sorted(villages.items()) if code.startswith(township)]
        for k in range(count):
            name, geom = communities[k % len(communities)]
            minx, miny, maxx, maxy = geom.bounds
            while True:
                lon, lat = rng.uniform(minx, maxx), rng.uniform(miny, maxy)
                if geom.contains(shapely.Point(lon, lat)):
                    break
            add(lon, lat, f"{name} street camera {k // len(communities) + 1}", rng.uniform(0, 360),
                float(rng.choice([60, 75, 90])), float(rng.choice([80, 120, 160])))
    for line_name, points, spacing, fov, range_m in [("Railway", RAILWAY, 800.0, 50.0, 400.0),
                                                     *[(n, p, 1900.0, 60.0, 300.0) for n, p in ROADS.items()]]:
        xy = np.column_stack(to_m.transform(*np.array(points).T))
        line = shapely.LineString(xy)
        for km, d in enumerate(np.arange(spacing / 2, line.length, spacing)):
            here, ahead = line.interpolate(d), line.interpolate(min(d + 10, line.length))
            bearing = math.degrees(math.atan2(ahead.x - here.x, ahead.y - here.y))
            side = 25 if km % 2 else -25  # on alternate sides, looking along the line
            x = here.x + side * math.cos(math.radians(bearing))
            y = here.y - side * math.sin(math.radians(bearing))
            lon, lat = to_ll.transform(x, y)
            add(lon, lat, f"{line_name} km {d / 1000:.1f}", bearing + (180 if km % 4 >= 2 else 0), fov, range_m)
    pasture = [c for c in index.codes if c[6:9] in ("201", "202", "203")]
    for k in range(50):
        geom = index.geoms[index.row_of[pasture[k % len(pasture)]]]
        point = geom.representative_point()
        add(point.x + rng.normal(0, 0.004), point.y + rng.normal(0, 0.004), f"Pasture camera {k + 1}",
            rng.uniform(0, 360), 90.0, 800.0)
    for camera in cameras:
        create_camera(conn, camera)
    calibrated = 0
    for camera in cameras[::8]:
        pixels, ground = _virtual_view(camera, rng)
        calibrate_camera(conn, camera["id"], FRAME, pixels, ground)
        calibrated += 1
    progress(f"{len(cameras)} cameras ({calibrated} calibrated)")
    return len(cameras)


def _virtual_view(camera: dict, rng: np.random.Generator, height_m: float = 8.0) -> tuple[np.ndarray, np.ndarray]:
    """Six pixel ↔ lon/lat pairs seen by a pinhole camera `height_m` up, looking along its
    heading at the ground half its range away."""
    w, h = FRAME
    to_m = transformer(WGS84, "EPSG:32647")
    to_ll = transformer("EPSG:32647", WGS84)
    x0, y0 = to_m.transform(camera["lon"], camera["lat"])
    theta = math.radians(camera["heading_deg"])
    tilt = math.atan2(height_m, camera["range_m"] / 2)
    focal = (w / 2) / math.tan(math.radians(min(camera["fov_deg"], 120)) / 2)
    forward = np.array([math.sin(theta) * math.cos(tilt), math.cos(theta) * math.cos(tilt), -math.sin(tilt)])
    right = np.array([math.cos(theta), -math.sin(theta), 0.0])
    up = np.cross(right, forward)
    pixels = np.array([[u * w, v * h] for u, v in ((0.15, 0.6), (0.85, 0.6), (0.5, 0.7), (0.2, 0.92),
                                                   (0.8, 0.92), (0.5, 0.98))])
    pixels += rng.uniform(-3, 3, pixels.shape)
    rays = forward * focal + np.outer(pixels[:, 0] - w / 2, right) - np.outer(pixels[:, 1] - h / 2, up)
    t = height_m / -rays[:, 2]
    lon, lat = to_ll.transform(x0 + t * rays[:, 0], y0 + t * rays[:, 1])
    return pixels, np.column_stack([lon, lat])


def seed_teams(conn: psycopg.Connection, index: GridIndex, progress: Callable[[str], None]) -> int:
    """127 grid-worker teams (180 people in all) and 22 patrol teams; returns the count."""
    rng = np.random.default_rng(SEED + 1)
    pairs = set(rng.choice(len(index.codes), size=180 - len(index.codes), replace=False).tolist())
    teams = []
    for row, code in enumerate(index.codes):
        base = index.geoms[row].representative_point()
        teams.append({"id": f"GW-{code}", "name": f"{index.names[row]} grid workers", "kind": "foot",
                      "members": 2 if row in pairs else 1, "base": (base.x, base.y),
                      "township_code": code[:9], "grids": [code]})
    villages = {code: (name, shapely.from_wkb(wkb)) for code, name, wkb in conn.execute(
        "SELECT code, name, ST_AsBinary(geom) FROM villages ORDER BY code")}

    def grids_of(prefix: str) -> list[str]:
        return [c for c in index.codes if c.startswith(prefix)]

    def centre(code: str) -> tuple[float, float]:
        p = villages[code][1].representative_point()
        return p.x, p.y

    agatu = "632223200200"
    teams.append({"id": "AGATU-MOTO", "name": "Agatu volunteer motorcycle patrol", "kind": "motorcycle",
                  "members": 6, "volunteer": True, "base": centre(agatu), "township_code": "632223200",
                  "grids": grids_of(agatu)})
    for township, name in TOWNSHIP_NAMES.items():
        if township == "632223200":
            continue
        seat = next(code for code in sorted(villages) if code.startswith(township))
        teams.append({"id": f"{name.upper()}-MOTO", "name": f"{name} township motorcycle patrol",
                      "kind": "motorcycle", "members": 4, "base": centre(seat), "township_code": township,
                      "grids": grids_of(township)})
    for township in TOWNSHIP_NAMES:
        for code in [c for c in sorted(villages) if c.startswith(township) and villages[c][0].endswith("Village")][:2]:
            teams.append({"id": f"FOOT-{code}", "name": f"{villages[code][0]} foot patrol", "kind": "foot",
                          "members": 3, "volunteer": True, "base": centre(code), "township_code": township,
                          "grids": grids_of(code)})
    for k, (where, township) in enumerate([("632223100001", "632223100"), ("632223100003", "632223100"),
                                           ("632223101002", "632223101"), ("632223203200", "632223203")]):
        teams.append({"id": f"POLICE-{k + 1}", "name": f"Police car {k + 1} ({villages[where][0]})", "kind": "car",
                      "members": 2, "base": centre(where), "township_code": township, "grids": []})
    teams.append({"id": "LAKESHORE-MOTO", "name": "Qinghaihu lakeshore motorcycle patrol", "kind": "motorcycle",
                  "members": 3, "volunteer": True, "base": centre("632223202200"), "township_code": "632223202",
                  "grids": grids_of("632223202200") + grids_of("632223202202")})
    teams.append({"id": "RAIL-PATROL", "name": "Railway line patrol", "kind": "car", "members": 2,
                  "base": RAILWAY[3], "township_code": "632223100", "grids": []})
    # one in eight off duty; busy comes from the work they are sent to
    statuses = rng.choice(["available"] * 7 + ["off_duty"], len(teams))
    for team, status in zip(teams, statuses, strict=True):
        team["status"] = "available" if team["id"] == "AGATU-MOTO" else str(status)
        create_team(conn, team)
    patrols = len(teams) - len(index.codes)
    progress(f"{len(teams)} teams: {len(index.codes)} of grid workers "
             f"({sum(t['members'] for t in teams[:len(index.codes)])} people), {patrols} patrols")
    return len(teams)
