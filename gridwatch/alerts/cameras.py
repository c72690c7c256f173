"""The camera registry: position, view sector, calibration. Cameras are deactivated, never
deleted, because their alerts keep pointing at them."""

from dataclasses import dataclass

import numpy as np
import orjson
import psycopg

from gridwatch.alerts.types import type_windows
from gridwatch.errors import BadInput, Conflict, NotFound
from gridwatch.geo.camera_view import Calibration, Homography, fit_homography, view_sector
from gridwatch.geo.crs import WGS84, transformer

# Camera columns as one GeoJSON Feature; the grid comes from grid_at() so it always
# follows the current boundaries. `geometry` is the position, or the view sector.
_FEATURE = """json_build_object('type', 'Feature', 'id', c.id,
    'geometry', ST_AsGeoJSON({geometry}, 7)::json,
    'properties', json_build_object('id', c.id, 'name', c.name, 'lon', round(ST_X(c.geom)::numeric, 7),
        'lat', round(ST_Y(c.geom)::numeric, 7), 'heading_deg', c.heading_deg, 'fov_deg', c.fov_deg,
        'range_m', c.range_m, 'grid_code', grid_at(c.geom), 'active', c.active,
        'calibrated', c.homography IS NOT NULL, 'calibration_error_m', c.calibration_error_m,
        'frame_size', c.frame_size, 'zones', c.zones, 'privacy_masks', c.privacy_masks,
        'stream_url', masked_url(c.stream_url)))"""
_FILTERS = {"grid": "grid_at(c.geom) = %s", "township": "left(grid_at(c.geom), 9) = %s", "active": "c.active = %s"}


@dataclass
class Camera:
    """What ingest needs to know about a camera."""

    id: str
    lon: float
    lat: float
    range_m: float
    active: bool
    homography: Homography | None


def camera_collection(conn: psycopg.Connection, *, bbox=None, filters: dict | None = None, view: bool = False,
                      limit: int = 100, offset: int = 0) -> bytes:
    """Cameras as a GeoJSON FeatureCollection (points, or view sectors with view=True)."""
    where, params = ["true"], []
    if bbox is not None:
        where.append(f"ST_Intersects({'c.view' if view else 'c.geom'}, ST_MakeEnvelope(%s, %s, %s, %s, 4326))")
        params += list(bbox)
    for key, value in (filters or {}).items():
        if value is not None:
            where.append(_FILTERS[key])
            params.append(value)
    cond = " AND ".join(where)
    feature = _FEATURE.format(geometry="c.view" if view else "c.geom")
    sql = (f"WITH page AS (SELECT * FROM cameras c WHERE {cond} ORDER BY c.id LIMIT %s OFFSET %s) "
           f"SELECT json_build_object('type', 'FeatureCollection', "
           f"'numberMatched', (SELECT count(*) FROM cameras c WHERE {cond}), "
           f"'numberReturned', (SELECT count(*) FROM page), "
           f"'features', coalesce((SELECT json_agg({feature} ORDER BY c.id) FROM page c), '[]'::json))::text")
    return conn.execute(sql, [*params, limit, offset, *params]).fetchone()[0].encode()


def camera_feature(conn: psycopg.Connection, camera_id: str) -> bytes:
    row = conn.execute(f"SELECT {_FEATURE.format(geometry='c.geom')}::text FROM cameras c WHERE c.id = %s",
                       [camera_id]).fetchone()
    if row is None:
        raise NotFound(f"no camera {camera_id!r}")
    return row[0].encode()


def create_camera(conn: psycopg.Connection, fields: dict) -> None:
    """Insert a camera, with its zones and privacy masks if given; raises Conflict if the
    id is taken, BadInput for a zone of an unknown alert type."""
    sector = view_sector(fields["lon"], fields["lat"], fields["heading_deg"], fields["fov_deg"], fields["range_m"])
    try:
        conn.execute("INSERT INTO cameras (id, name, county_code, geom, heading_deg, fov_deg, range_m, view, active, "
                     "stream_url) VALUES (%s, %s, %s, ST_SetSRID(ST_MakePoint(%s, %s), 4326), %s, %s, %s, "
                     "ST_GeomFromWKB(%s, 4326), %s, %s)",
                     [fields["id"], fields["name"], fields.get("county_code"), fields["lon"], fields["lat"],
                      fields["heading_deg"], fields["fov_deg"], fields["range_m"], sector.wkb,
                      fields.get("active", True), fields.get("stream_url") or None])
    except psycopg.errors.UniqueViolation:
        raise Conflict(f"camera {fields['id']!r} exists already; PATCH /cameras/{fields['id']} changes it") from None
    if fields.get("zones") or fields.get("privacy_masks"):
        set_video(conn, fields["id"], fields.get("zones"), fields.get("privacy_masks"))


def update_camera(conn: psycopg.Connection, camera_id: str, changes: dict) -> None:
    """Change some fields of a camera; the view sector follows. Moving a calibrated
    camera drops its calibration, which no longer holds. A `stream_url` of "" removes the
    stream."""
    row = conn.execute("SELECT ST_X(geom), ST_Y(geom), heading_deg, fov_deg, range_m FROM cameras WHERE id = %s "
                       "FOR UPDATE", [camera_id]).fetchone()
    if row is None:
        raise NotFound(f"no camera {camera_id!r}")
    current = dict(zip(("lon", "lat", "heading_deg", "fov_deg", "range_m"), row, strict=True))
    merged = {**current, **{k: v for k, v in changes.items() if k in current}}
    sector = view_sector(merged["lon"], merged["lat"], merged["heading_deg"], merged["fov_deg"], merged["range_m"])
    moved = any(k in changes and changes[k] != current[k] for k in ("lon", "lat", "heading_deg"))
    if "zones" in changes or "privacy_masks" in changes:
        set_video(conn, camera_id, changes.get("zones"), changes.get("privacy_masks"))
    conn.execute("UPDATE cameras SET name = coalesce(%s, name), active = coalesce(%s, active), "
                 "geom = ST_SetSRID(ST_MakePoint(%s, %s), 4326), heading_deg = %s, fov_deg = %s, range_m = %s, "
                 "view = ST_GeomFromWKB(%s, 4326), updated_at = now(), "
                 "homography = CASE WHEN %s THEN NULL ELSE homography END, "
                 "calibration_error_m = CASE WHEN %s THEN NULL ELSE calibration_error_m END, "
                 "stream_url = CASE WHEN %s THEN %s ELSE stream_url END "
                 "WHERE id = %s",
                 [changes.get("name"), changes.get("active"), merged["lon"], merged["lat"], merged["heading_deg"],
                  merged["fov_deg"], merged["range_m"], sector.wkb, moved, moved, "stream_url" in changes,
                  changes.get("stream_url") or None, camera_id])


def set_video(conn: psycopg.Connection, camera_id: str, zones: list[dict] | None,
              masks: list[list[list[float]]] | None) -> None:
    """Replace the camera's zones and/or privacy masks; zone types must be alert types."""
    if zones is not None:
        known = type_windows(conn)
        unknown = sorted({z["type"] for z in zones} - known.keys())
        if unknown:
            raise BadInput(f"zones: unknown alert type(s) {', '.join(unknown)}; one of {', '.join(sorted(known))}")
    conn.execute("UPDATE cameras SET zones = coalesce(%s::jsonb, zones), "
                 "privacy_masks = coalesce(%s::jsonb, privacy_masks), updated_at = now() WHERE id = %s",
                 [None if zones is None else orjson.dumps(zones).decode(),
                  None if masks is None else orjson.dumps(masks).decode(), camera_id])


def camera_video(conn: psycopg.Connection, camera_id: str) -> dict:
    """What a video detector needs of a camera."""
    row = conn.execute("SELECT zones, privacy_masks, frame_size FROM cameras WHERE id = %s", [camera_id]).fetchone()
    if row is None:
        raise NotFound(f"no camera {camera_id!r}")
    return {"camera_id": camera_id, "zones": row[0], "privacy_masks": row[1], "frame_size": row[2]}


def camera_stream(conn: psycopg.Connection, camera_id: str) -> dict:
    """The camera's stream URL whole, password and all (for admin and the video fleet)."""
    row = conn.execute("SELECT stream_url FROM cameras WHERE id = %s", [camera_id]).fetchone()
    if row is None:
        raise NotFound(f"no camera {camera_id!r}")
    return {"camera_id": camera_id, "stream_url": row[0]}


def calibrate_camera(conn: psycopg.Connection, camera_id: str, frame_size: tuple[int, int],
                     pixels: np.ndarray, lonlat: np.ndarray) -> Calibration:
    """Fit and store the camera's image → ground homography; raises BadInput, NotFound."""
    row = conn.execute("SELECT ST_X(geom), ST_Y(geom), range_m FROM cameras WHERE id = %s", [camera_id]).fetchone()
    if row is None:
        raise NotFound(f"no camera {camera_id!r}")
    calibration = fit_homography(frame_size, pixels, lonlat)
    h = calibration.homography
    lon, lat, range_m = row
    to_metric = transformer(WGS84, f"EPSG:{h.epsg}")
    cx, cy = to_metric.transform(lon, lat)
    gx, gy = to_metric.transform(np.asarray(lonlat)[:, 0], np.asarray(lonlat)[:, 1])
    far = float(np.max(np.hypot(gx - cx, gy - cy)))
    if far > 3 * range_m + 500:
        raise BadInput(f"a ground point is {far:,.0f} m from camera {camera_id}, far beyond its "
                       f"{range_m:,.0f} m range: check the camera's position or the points")
    conn.execute("UPDATE cameras SET homography = %s, homography_epsg = %s, frame_size = %s, "
                 "calibration_error_m = %s, calibrated_at = now(), updated_at = now() WHERE id = %s",
                 [list(h.matrix), h.epsg, list(h.frame_size), calibration.error_m, camera_id])
    return calibration


# What ingest needs of each camera (named, or all).
_INGEST_COLUMNS = "id, ST_X(geom), ST_Y(geom), range_m, active, homography, homography_epsg, frame_size"
CAMERAS_SQL = f"SELECT {_INGEST_COLUMNS} FROM cameras WHERE id = ANY(%s)"
ALL_CAMERAS_SQL = f"SELECT {_INGEST_COLUMNS} FROM cameras"


def cameras_from_rows(rows: list[tuple]) -> dict[str, Camera]:
    cameras = {}
    for cid, lon, lat, range_m, active, matrix, epsg, frame in rows:
        homography = Homography(tuple(matrix), epsg, (frame[0], frame[1])) if matrix else None
        cameras[cid] = Camera(cid, lon, lat, range_m, active, homography)
    return cameras
