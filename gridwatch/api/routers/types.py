"""Alert types: their labels, grouping windows, departments, and which are dispatched at once."""

from typing import Annotated

import psycopg
from fastapi import APIRouter, Depends
from pydantic import StrictBool
from starlette.responses import Response

from gridwatch.alerts.types import set_auto_dispatch, type_list
from gridwatch.api.auth import require
from gridwatch.api.body import Body
from gridwatch.api.deps import db, json_response

router = APIRouter(tags=["alert types"])
Conn = Annotated[psycopg.Connection, Depends(db)]


class TypePatch(Body):
    auto_dispatch: StrictBool


@router.get("/alert-types", summary="Alert types with their grouping windows, default departments and "
            "whether new incidents go to the recommended team at once", dependencies=[Depends(require("viewer"))])
def list_types(conn: Conn) -> Response:
    return json_response({"types": type_list(conn)})


@router.patch("/alert-types/{type_}", summary="Dispatch this type's new incidents at once (auto-dispatch), or not",
              dependencies=[Depends(require("admin"))])
def patch_type(type_: str, body: TypePatch, conn: Conn) -> Response:
    return json_response(set_auto_dispatch(conn, type_, body.auto_dispatch))
