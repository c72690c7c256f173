"""Admin: boundary upload (the API twin of `gridwatch grids import`)."""

import tempfile
from pathlib import Path
from typing import Annotated

import orjson
from fastapi import APIRouter, File, Query, UploadFile
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from gridwatch.api.deps import Conn
from gridwatch.errors import BadInput
from gridwatch.geo.boundaries import import_boundaries

router = APIRouter(tags=["admin"])


@router.post("/admin/boundaries", summary="Import a boundary file (GeoJSON, GeoPackage, zipped Shapefile)")
async def upload_boundaries(
    file: Annotated[UploadFile, File(description="the boundary file")],
    conn: Conn,
    crs: Annotated[str | None, Query(description="source CRS if the file has none, e.g. EPSG:4490")] = None,
    gcj02: Annotated[bool, Query(description="coordinates are GCJ-02")] = False,
    dry_run: Annotated[bool, Query(description="check and report only")] = False,
) -> Response:
    """201 with the report when stored, 200 for a clean dry run, 422 problem+json listing
    every error otherwise (nothing changes)."""
    suffix = Path(file.filename or "upload").suffix[:10]
    with tempfile.TemporaryDirectory(prefix="gridwatch-upload-") as tmp:
        path = Path(tmp) / f"upload{suffix}"
        path.write_bytes(await file.read())
        report = await run_in_threadpool(import_boundaries, conn, path, crs=crs, gcj02=gcj02, dry_run=dry_run,
                                         source=file.filename or "upload")
    body = report.as_dict()
    if not report.ok:
        raise BadInput(f"import refused, nothing changed: {len(report.errors)} error(s): "
                       + "; ".join(str(p) for p in report.errors[:3]), report=body)
    return Response(orjson.dumps(body), status_code=200 if dry_run else 201, media_type="application/json")
