"""Admin: boundary upload (the API twin of `gridwatch grids import`) and the audit log."""

import tempfile
from pathlib import Path
from typing import Annotated

import orjson
from fastapi import APIRouter, File, Query, UploadFile
from pydantic import AwareDatetime
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from gridwatch.api import audit, schemas
from gridwatch.api.auth import ALL_ROLES
from gridwatch.api.deps import Conn, json_response
from gridwatch.api.schemas import COMMON, WRITE, problems
from gridwatch.errors import BadInput
from gridwatch.geo.boundaries import import_boundaries

router = APIRouter(tags=["admin"], responses=COMMON)


@router.post("/admin/boundaries", summary="Import a boundary file (GeoJSON, GeoPackage, zipped Shapefile)",
             status_code=201, response_model=schemas.ImportReport,
             responses={200: {"model": schemas.ImportReport, "description": "a dry run, clean"}, **WRITE,
                        **problems(422, s422="refused, nothing changed: `report` holds the import report with every "
                                             "error; or invalid input")})
async def upload_boundaries(
    file: Annotated[UploadFile, File(description="the boundary file")],
    conn: Conn,
    crs: Annotated[str | None, Query(description="source CRS if the file has none, e.g. EPSG:4490")] = None,
    gcj02: Annotated[bool, Query(description="coordinates are GCJ-02")] = False,
    dry_run: Annotated[bool, Query(description="check and report only")] = False,
    force: Annotated[bool, Query(description="store units that move more than 5 km, or lie outside China")] = False,
) -> Response:
    """201 with the report when stored, 200 for a clean dry run, 422 problem+json listing
    every error otherwise (nothing changes)."""
    suffix = Path(file.filename or "upload").suffix[:10]
    with tempfile.TemporaryDirectory(prefix="gridwatch-upload-") as tmp:
        path = Path(tmp) / f"upload{suffix}"
        path.write_bytes(await file.read())
        report = await run_in_threadpool(import_boundaries, conn, path, crs=crs, gcj02=gcj02, dry_run=dry_run,
                                         force=force, source=file.filename or "upload")
    body = report.as_dict()
    if not report.ok:
        raise BadInput(f"import refused, nothing changed: {len(report.errors)} error(s): "
                       + "; ".join(str(p) for p in report.errors[:3]), report=body)
    return Response(orjson.dumps(body), status_code=200 if dry_run else 201, media_type="application/json")


@router.get("/admin/audit", summary="The audit log, newest first: who called what, when, and the answer's status",
            response_model=schemas.AuditPage)
def audit_log(conn: Conn, key: Annotated[int | None, Query(ge=1, le=2**62, description="a key's id")] = None,
              role: Annotated[str | None, Query(pattern="^(" + "|".join(ALL_ROLES) + "|system)$")] = None,
              path: Annotated[str | None, Query(max_length=2000, description="paths starting with this")] = None,
              status: Annotated[int | None, Query(ge=0, le=599)] = None,
              since: Annotated[AwareDatetime | None, Query(description="from (inclusive), ISO 8601 with zone")] = None,
              until: Annotated[AwareDatetime | None, Query(description="to (exclusive)")] = None,
              limit: Annotated[int, Query(ge=1, le=1000)] = 100,
              offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0) -> Response:
    return json_response(audit.read(conn, key=key, role=role, path=path, status=status, since=since, until=until,
                                    limit=limit, offset=offset))
