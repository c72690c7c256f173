"""Alert types: their labels, grouping windows, departments, and which are dispatched at once."""

from fastapi import APIRouter
from pydantic import StrictBool
from starlette.responses import Response

from gridwatch.alerts.types import set_auto_dispatch, type_list
from gridwatch.api import schemas
from gridwatch.api.body import Body
from gridwatch.api.deps import Conn, ReadConn, json_response
from gridwatch.api.schemas import COMMON, WRITE

router = APIRouter(tags=["alert types"], responses=COMMON)


class TypePatch(Body):
    auto_dispatch: StrictBool


@router.get("/alert-types", summary="Alert types with their grouping windows, default departments and "
            "whether new incidents go to the recommended team at once", response_model=schemas.AlertTypes)
def list_types(conn: ReadConn) -> Response:
    return json_response({"types": type_list(conn)})


@router.patch("/alert-types/{type_}", summary="Dispatch this type's new incidents at once (auto-dispatch), or not",
              response_model=schemas.AlertType, responses=WRITE)
def patch_type(type_: str, body: TypePatch, conn: Conn) -> Response:
    return json_response(set_auto_dispatch(conn, type_, body.auto_dispatch))
