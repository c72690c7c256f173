"""Cameras: the registry (admin writes) and calibration."""

from typing import Annotated, Literal

import numpy as np
import orjson
from fastapi import APIRouter, Depends, Query
from pydantic import Field
from starlette.responses import Response

from gridwatch.alerts import cameras
from gridwatch.api import schemas
from gridwatch.api.body import Body
from gridwatch.api.deps import Conn, ReadConn, Registry
from gridwatch.api.params import BBox, Page, bbox_query, page_query
from gridwatch.api.schemas import COMMON, GEOJSON, WRITE, GeoJSONResponse, problems

router = APIRouter(tags=["cameras"], responses=COMMON)
NO_SUCH = problems(404)
Id = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.:-]{1,64}$")]


Relative = Annotated[float, Field(ge=0, le=1)]
Polygon = Annotated[list[tuple[Relative, Relative]], Field(min_length=3, max_length=100,
                                                           description="image points, relative 0-1")]


class ZoneIn(Body):
    name: Annotated[str, Field(min_length=1, max_length=64)]
    type: Annotated[str, Field(min_length=1, max_length=64, description="the alert type detections here raise")]
    polygon: Polygon


StreamUrl = Annotated[str, Field(max_length=2000, pattern=r"(?i)^(rtsps?|https?|file)://[!-~]+$",
                                 description="the camera's video stream for the fleet: rtsp://, http(s):// or "
                                             "file://, printable ASCII (anything else percent-encoded); it may "
                                             "hold a password, which answers show as ***")]


class CameraIn(Body):
    id: Id
    name: Annotated[str, Field(min_length=1, max_length=200)]
    lon: Annotated[float, Field(ge=-180, le=180)]
    lat: Annotated[float, Field(ge=-90, le=90)]
    heading_deg: Annotated[float, Field(ge=0, lt=360, description="clockwise from north")]
    fov_deg: Annotated[float, Field(gt=0, le=360)]
    range_m: Annotated[float, Field(gt=0, le=20_000)]
    active: bool = True
    zones: Annotated[list[ZoneIn], Field(max_length=50)] = []
    privacy_masks: Annotated[list[Polygon], Field(max_length=50, description="blacked out before detection and in "
                                                                             "every snapshot")] = []
    stream_url: StreamUrl | None = None


class CameraPatch(Body):
    name: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    lon: Annotated[float, Field(ge=-180, le=180)] | None = None
    lat: Annotated[float, Field(ge=-90, le=90)] | None = None
    heading_deg: Annotated[float, Field(ge=0, lt=360)] | None = None
    fov_deg: Annotated[float, Field(gt=0, le=360)] | None = None
    range_m: Annotated[float, Field(gt=0, le=20_000)] | None = None
    active: bool | None = None
    zones: Annotated[list[ZoneIn], Field(max_length=50)] | None = None
    privacy_masks: Annotated[list[Polygon], Field(max_length=50, description="blacked out before detection "
                                                                             "and in every snapshot")] | None = None
    stream_url: StreamUrl | Literal[""] | None = Field(None, description="the stream; null or \"\" removes it")


class GroundPoint(Body):
    pixel: tuple[float, float]
    lon: Annotated[float, Field(ge=-180, le=180)]
    lat: Annotated[float, Field(ge=-90, le=90)]


class CalibrationIn(Body):
    frame_size: tuple[Annotated[int, Field(gt=0, le=20_000)], Annotated[int, Field(gt=0, le=20_000)]]
    points: list[GroundPoint]


@router.get("/cameras", summary="Cameras as GeoJSON (positions, or view sectors with view=true)",
            response_class=GeoJSONResponse, response_model=schemas.CameraCollection)
def list_cameras(conn: ReadConn, bbox: Annotated[BBox | None, Depends(bbox_query)],
                 page: Annotated[Page, Depends(page_query)],
                 grid: str | None = None, township: str | None = None, active: bool | None = None,
                 view: Annotated[bool, Query(description="geometry = the view sector")] = False) -> Response:
    body = cameras.camera_collection(conn, bbox=bbox, filters={"grid": grid, "township": township, "active": active},
                                     view=view, limit=page.limit, offset=page.offset)
    return Response(body, media_type=GEOJSON)


@router.get("/cameras/{camera_id}", summary="One camera as a GeoJSON Feature", response_class=GeoJSONResponse,
            response_model=schemas.CameraFeature, responses=NO_SUCH)
def get_camera(camera_id: str, conn: Conn) -> Response:
    return Response(cameras.camera_feature(conn, camera_id), media_type=GEOJSON)


@router.post("/cameras", status_code=201, summary="Register a camera (with its zones and privacy masks)",
             response_class=GeoJSONResponse, response_model=schemas.CameraFeature, responses=WRITE)
def create_camera(camera: CameraIn, conn: Conn, registry: Registry) -> Response:
    cameras.create_camera(conn, camera.model_dump())
    registry.forget_cameras()
    return Response(cameras.camera_feature(conn, camera.id), status_code=201, media_type=GEOJSON)


@router.patch("/cameras/{camera_id}", summary="Change a camera (moving or turning it drops its calibration)",
              response_class=GeoJSONResponse, response_model=schemas.CameraFeature, responses={**NO_SUCH, **WRITE})
def update_camera(camera_id: str, changes: CameraPatch, conn: Conn, registry: Registry) -> Response:
    """Moving or turning a calibrated camera drops its calibration."""
    fields = changes.model_dump(exclude_none=True)
    if "stream_url" in changes.model_fields_set:  # null removes the stream, as "" does
        fields["stream_url"] = changes.stream_url
    cameras.update_camera(conn, camera_id, fields)
    registry.forget_cameras()
    return Response(cameras.camera_feature(conn, camera_id), media_type=GEOJSON)


@router.get("/cameras/{camera_id}/video", summary="Zones and privacy masks, for a video detector",
            response_model=schemas.CameraVideo, responses=NO_SUCH)
def camera_video(camera_id: str, conn: Conn) -> Response:
    return Response(orjson.dumps(cameras.camera_video(conn, camera_id)), media_type="application/json")


@router.get("/cameras/{camera_id}/stream", summary="The camera's stream URL whole, password and all",
            response_model=schemas.CameraStream, responses=NO_SUCH)
def camera_stream(camera_id: str, conn: Conn) -> Response:
    return Response(orjson.dumps(cameras.camera_stream(conn, camera_id)), media_type="application/json")


@router.delete("/cameras/{camera_id}", response_class=GeoJSONResponse, response_model=schemas.CameraFeature,
               responses={**NO_SUCH, **WRITE},
               summary="Deactivate a camera (its alerts keep pointing at it, so it is never deleted)")
def deactivate_camera(camera_id: str, conn: Conn, registry: Registry) -> Response:
    cameras.update_camera(conn, camera_id, {"active": False})
    registry.forget_cameras()
    return Response(cameras.camera_feature(conn, camera_id), media_type=GEOJSON)


@router.put("/cameras/{camera_id}/calibration", response_model=schemas.CalibrationResult,
            responses={**NO_SUCH, **WRITE},
            summary="Fit the image → ground homography from ≥ 4 pixel ↔ lon/lat pairs")
def calibrate(camera_id: str, body: CalibrationIn, conn: Conn, registry: Registry) -> Response:
    pixels = np.array([p.pixel for p in body.points], dtype=float).reshape(-1, 2)
    lonlat = np.array([(p.lon, p.lat) for p in body.points], dtype=float).reshape(-1, 2)
    result = cameras.calibrate_camera(conn, camera_id, body.frame_size, pixels, lonlat)
    registry.forget_cameras()
    return Response(orjson.dumps({"camera_id": camera_id, "frame_size": list(body.frame_size),
                                  "error_m": result.error_m, "point_errors_m": result.point_errors_m,
                                  "inliers": result.inliers, "epsg": result.homography.epsg}),
                    media_type="application/json")
