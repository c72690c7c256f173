"""OGC API - Features (Part 1 Core, with Part 3's queryables as query parameters) under /ogc,
so QGIS, ArcGIS and GDAL add gridwatch as a layer source. The same keys, roles and audit as
the rest of the API: GDAL sends the key from a header file (GDAL_HTTP_HEADER_FILE), QGIS
with an authentication configuration. Every document is JSON, or with f=html a page
(gridwatch.maps.ogc). The collections are gridwatch.geo.collections."""

import re
from datetime import UTC, datetime, time
from typing import Annotated
from urllib.parse import urlencode

import orjson
from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import Response

from gridwatch.api import schemas
from gridwatch.api.deps import Conn, ReadConn
from gridwatch.api.params import MAX_LIMIT, BBox, bbox_query
from gridwatch.api.schemas import COMMON, GEOJSON, GeoJSONResponse, OpenAPIResponse, SchemaResponse, problems
from gridwatch.errors import BadInput, NotFound, Unsupported
from gridwatch.geo import collections
from gridwatch.geo.collections import BOUNDARY_COLLECTIONS, COLLECTIONS, Collection
from gridwatch.maps import ogc as ogc_pages

router = APIRouter(prefix="/ogc", tags=["ogc"], responses={**COMMON, **problems(400)})

CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables-query-parameters",
]
# FastAPI writes OpenAPI 3.1, so the OAS 3.0 conformance class is not claimed.
OPENAPI = OpenAPIResponse.media_type + ";version=3.1"
# The query parameters every items request may hold; a collection's queryables come on top.
ITEMS_PARAMETERS = {"f", "bbox", "bbox-crs", "limit", "offset", "datetime"}
DEFAULT_LIMIT = 10
# RFC 3339: a date, or a date-time (T or a space; Z or an offset), nothing else ISO 8601 allows.
RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}(?P<time>[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?(?P<zone>[Zz]|[+-]\d{2}:\d{2})?)?")

Format = Annotated[str | None, Query(description="json, or html (a page; also what a browser asking for HTML "
                                                  "gets)")]
HTML = {"text/html": {"schema": {"type": "string"}}}


# Answers depend on the key that asked (and their links on the Host it named): never kept by
# a shared cache.
PRIVATE = {"Cache-Control": "private, no-cache"}


def _json(body: dict, media_type: str = "application/json") -> Response:
    return Response(orjson.dumps(body), media_type=media_type, headers=PRIVATE)


def _root(request: Request) -> str:
    """Where clients reach the server: GRIDWATCH_PUBLIC_URL, else what the request says."""
    return request.app.state.public_url or str(request.base_url).rstrip("/")


def _base(request: Request) -> str:
    return _root(request) + "/ogc"


def _html(request: Request, f: str | None) -> bool:
    """Is a page asked for (f=html, or no f and a browser's Accept), rather than JSON?"""
    if f in ("json", "geojson"):
        return False
    if f == "html":
        return True
    if f is None:
        return request.headers.get("accept", "").startswith("text/html")
    raise Unsupported(f"f: {f!r} is not served; supported: json, html")


def _page(html: str) -> Response:
    return Response(html, media_type="text/html; charset=utf-8", headers=PRIVATE)


def _collection(collection_id: str) -> Collection:
    c = COLLECTIONS.get(collection_id)
    if c is None:
        raise NotFound(f"no collection {collection_id!r}; the collections are {', '.join(COLLECTIONS)}")
    return c


def _link(href: str, rel: str, type_: str, title: str) -> dict:
    return {"href": href, "rel": rel, "type": type_, "title": title}


@router.get("", summary="OGC API Features landing page", response_model=schemas.OgcLandingPage,
            responses={200: {"content": HTML}})
def landing(request: Request, f: Format = None) -> Response:
    base = _base(request)
    doc = {"title": "gridwatch", "description": "The county's governance grids, cameras, incidents and alerts "
           "as OGC API Features.", "links": [
                      _link(base, "self", "application/json", "this document"),
                      _link(f"{base}/api", "service-desc", OPENAPI, "the API definition"),
                      _link(_root(request) + "/docs", "service-doc", "text/html", "the API documentation"),
                      _link(f"{base}/conformance", "conformance", "application/json", "conformance classes"),
                      _link(f"{base}/collections", "data", "application/json", "the collections")]}
    if _html(request, f):
        return _page(ogc_pages.page(base, "OGC API Features", doc["links"], description=doc["description"]))
    return _json(doc)


@router.get("/conformance", summary="The conformance classes served", response_model=schemas.OgcConformance,
            responses={200: {"content": HTML}})
def conformance(request: Request, f: Format = None) -> Response:
    if _html(request, f):
        return _page(ogc_pages.page(_base(request), "Conformance", [], columns=["conformance class"],
                                    rows=[[(c, None)] for c in CONFORMANCE]))
    return _json({"conformsTo": CONFORMANCE})


@router.get("/api", summary="The OpenAPI definition of /ogc", response_model=schemas.OgcApiDocument,
            response_class=OpenAPIResponse)
def api_definition(request: Request, f: Format = None) -> Response:
    if f not in (None, "json"):
        raise Unsupported(f"f: {f!r} is not served here; supported: json (the API's pages are /docs)")
    document = dict(request.app.openapi())
    document["paths"] = {p: v for p, v in document["paths"].items() if p.startswith("/ogc")}
    return _json(document, OPENAPI)


def _collection_info(conn, c: Collection, base: str) -> dict:
    box, (start, end) = collections.extent(conn, c)
    extent: dict = {}
    if box:
        extent["spatial"] = {"bbox": [list(box)], "crs": CRS84}
    if c.time:
        extent["temporal"] = {"interval": [[start.isoformat() if start else None, end.isoformat() if end else None]],
                              "trs": "http://www.opengis.net/def/uom/ISO-8601/0/Gregorian"}
    href = f"{base}/collections/{c.id}"
    return {"id": c.id, "title": c.title, "description": c.description, "itemType": "feature", "crs": [CRS84],
            **({"extent": extent} if extent else {}),
            "links": [_link(href, "self", "application/json", c.title),
                      _link(f"{href}/items", "items", GEOJSON, f"{c.title}: the features"),
                      _link(f"{href}/queryables", "http://www.opengis.net/def/rel/ogc/1.0/queryables",
                            "application/schema+json", f"{c.title}: what may be filtered on")]}


@router.get("/collections", summary="The feature collections", response_model=schemas.OgcCollections,
            responses={200: {"content": HTML}})
def list_collections(request: Request, conn: ReadConn, f: Format = None) -> Response:
    html = _html(request, f)
    base = _base(request)
    # a reader without a key (GRIDWATCH_OGC_PUBLIC_BOUNDARIES) is shown only what it may read
    shown = COLLECTIONS.values() if getattr(request.state, "principal", None) else \
        [COLLECTIONS[c] for c in BOUNDARY_COLLECTIONS]
    doc = {"links": [_link(f"{base}/collections", "self", "application/json", "the collections")],
           "collections": [_collection_info(conn, c, base) for c in shown]}
    if html:
        return _page(ogc_pages.page(base, "Collections", doc["links"], columns=["id", "title", "description"],
                                    rows=ogc_pages.collections_rows(doc["collections"])))
    return _json(doc)


@router.get("/collections/{collection_id}", summary="One feature collection", response_model=schemas.OgcCollection,
            responses={**problems(404), 200: {"content": HTML}})
def get_collection(request: Request, collection_id: str, conn: ReadConn, f: Format = None) -> Response:
    html = _html(request, f)
    base = _base(request)
    doc = _collection_info(conn, _collection(collection_id), base)
    if html:
        box = doc.get("extent", {}).get("spatial", {}).get("bbox", [None])[0]
        span = doc.get("extent", {}).get("temporal", {}).get("interval", [None])[0]
        meta = "; ".join(filter(None, [box and "lon/lat extent " + ", ".join(f"{v:.5f}" for v in box),
                                       span and f"from {span[0] or '…'} to {span[1] or '…'}"]))
        return _page(ogc_pages.page(base, doc["title"], doc["links"], [("Collections", f"{base}/collections")],
                                    description=doc["description"], meta=meta))
    return _json(doc)


@router.get("/collections/{collection_id}/queryables", summary="The properties a collection's items may be "
            "filtered on (by equality, as query parameters)", response_model=schemas.OgcQueryables,
            response_class=SchemaResponse, responses={**problems(404), 200: {"content": HTML}})
def queryables(request: Request, collection_id: str, f: Format = None) -> Response:
    html = _html(request, f)
    c = _collection(collection_id)
    if html:
        base = _base(request)
        return _page(ogc_pages.page(base, f"{c.title}: queryables", [], [
            ("Collections", f"{base}/collections"), (c.title, f"{base}/collections/{c.id}")],
            description="Each filters the items by equality, e.g. ?name=value.", columns=["property", "type"],
            rows=[[(name, None), (t, None)] for name, t in c.queryables.items()]))
    return _json({"$schema": "https://json-schema.org/draft/2019-09/schema",
                  "$id": f"{_base(request)}/collections/{c.id}/queryables", "type": "object",
                  "title": c.title, "properties": {name: {"type": t} for name, t in c.queryables.items()}},
                 "application/schema+json")


def interval(value: str | None) -> tuple[datetime | None, datetime | None]:
    """`datetime` as OGC writes it: an instant, or an interval `start/end` where either end
    may be `..` (open); a date alone means that whole day (UTC)."""
    if value is None:
        return None, None
    parts = value.split("/")
    if len(parts) > 2:
        raise BadInput(f"datetime: expected an instant or start/end, got {value!r}")
    if len(parts) == 1:
        if value in ("..", ""):
            raise BadInput("datetime: an instant cannot be open (`..`); write start/.. or ../end")
        return _instant(value, end=False), _instant(value, end=True)
    start, end = _instant(parts[0], end=False), _instant(parts[1], end=True)
    if start and end and start > end:
        raise BadInput(f"datetime: the interval {value!r} ends before it starts")
    return start, end


def _instant(text: str, end: bool) -> datetime | None:
    if text in ("..", ""):
        return None
    form = RFC3339.fullmatch(text)
    if form and not form["time"]:  # a date: the day's first (or, closing an interval, last) moment, UTC
        try:
            return datetime.combine(datetime.fromisoformat(text).date(), time.max if end else time.min, UTC)
        except ValueError:
            form = None
    if form and not form["zone"]:
        raise BadInput(f"datetime: {text!r} has no time zone; add Z or an offset such as +08:00")
    try:
        if form:
            return datetime.fromisoformat(text.upper())
    except ValueError:
        pass
    raise BadInput(f"datetime: {text!r} is not an RFC 3339 date-time (e.g. 2026-11-27T08:00:00Z) "
                   f"or date (2026-11-27)")


def _equals(request: Request, c: Collection) -> dict[str, str | bool]:
    equals: dict[str, str | bool] = {}
    for name, value in request.query_params.items():
        if name in ITEMS_PARAMETERS:
            continue
        kind = c.queryables.get(name)
        if kind is None:
            known = ", ".join(sorted(ITEMS_PARAMETERS | set(c.queryables)))
            raise Unsupported(f"unknown query parameter {name!r}; {c.id} takes {known}")
        if kind == "boolean":
            if value not in ("true", "false"):
                raise BadInput(f"{name}: expected true or false, got {value!r}")
            equals[name] = value == "true"
        else:
            equals[name] = value
    return equals


@router.get("/collections/{collection_id}/items", summary="A collection's features, a page at a time",
            response_class=GeoJSONResponse, response_model=schemas.OgcFeatureCollection,
            responses={**problems(404), 200: {"content": HTML}})
def get_items(request: Request, collection_id: str, conn: ReadConn,
              bbox: Annotated[BBox | None, Depends(bbox_query)],
              limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="at most 10,000")] = DEFAULT_LIMIT,
              offset: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
              datetime_: Annotated[str | None, Query(alias="datetime", description=(
                  "an instant or an interval start/end (`..` open), RFC 3339; alerts and incidents only"))] = None,
              bbox_crs: Annotated[str | None, Query(alias="bbox-crs", description=f"only {CRS84}")] = None,
              f: Format = None) -> Response:
    """Besides the standard parameters, each of the collection's queryables (see its
    /queryables) selects features whose property equals the value, e.g. `status=new`."""
    html = _html(request, f)
    c = _collection(collection_id)
    if bbox_crs not in (None, CRS84):
        raise Unsupported(f"bbox-crs: {bbox_crs!r} is not supported; supported: {CRS84}")
    since, until = interval(datetime_)
    if datetime_ is not None and c.time is None:
        raise BadInput(f"datetime: {c.id} has no time; datetime applies to "
                       f"{', '.join(k for k, v in COLLECTIONS.items() if v.time)}")
    query = collections.Query(bbox=bbox, since=since, until=until, equals=_equals(request, c))
    features, matched = collections.items(conn, c, query, limit, offset)
    here = f"{_base(request)}/collections/{c.id}/items"
    params = {k: v for k, v in request.query_params.items() if k != "f"}  # the links name the JSON
    links = [_link(f"{here}?{urlencode(params)}", "self", GEOJSON, "this page"),
             _link(f"{_base(request)}/collections/{c.id}", "collection", "application/json", c.title)]
    if offset + len(features) < matched:
        links.append(_link(f"{here}?{urlencode({**params, 'offset': offset + limit, 'limit': limit})}", "next",
                           GEOJSON, "the next page"))
    if offset > 0:  # from beyond the end, back to the last page
        back = max(0, min(offset, matched) - limit)
        links.append(_link(f"{here}?{urlencode({**params, 'offset': back, 'limit': limit})}",
                           "prev", GEOJSON, "the previous page"))
    head = orjson.dumps({"type": "FeatureCollection", "numberMatched": matched, "numberReturned": len(features),
                         "timeStamp": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
                         "links": links})
    body = head[:-1] + b',"features":[' + ",".join(features).encode() + b"]}"
    if html:
        doc = orjson.loads(body)
        base = _base(request)
        names = [n for n in c.property_names() if n != c.key]  # the id has its own column
        shown = f"features {offset + 1:,}–{offset + len(features):,} of {matched:,}" if features else \
            f"no features from {offset + 1:,} on ({matched:,} in all)"
        filters = ", ".join(f"{k}={v}" for k, v in params.items() if k not in ("limit", "offset"))
        return _page(ogc_pages.page(
            base, f"{c.title}: {shown}", links, [("Collections", f"{base}/collections"),
                                                  (c.title, f"{base}/collections/{c.id}")],
            meta=f"selected by {filters}" if filters else "", columns=["id", *names],
            rows=ogc_pages.feature_rows(doc["features"], names, here), geojson=doc))
    return Response(body, media_type=GEOJSON, headers=PRIVATE)


@router.get("/collections/{collection_id}/items/{feature_id}", summary="One feature",
            response_class=GeoJSONResponse, response_model=schemas.OgcFeature,
            responses={**problems(404), 200: {"content": HTML}})
def get_item(request: Request, collection_id: str, feature_id: str, conn: Conn, f: Format = None) -> Response:
    html = _html(request, f)
    c = _collection(collection_id)
    fid: str | int = feature_id
    if c.key_type is int:
        if not re.fullmatch(r"[1-9][0-9]{0,17}", feature_id):  # one spelling of each id, within bigint
            raise NotFound(f"no feature {feature_id!r} in {c.id}: its ids are whole numbers")
        fid = int(feature_id)
    text = collections.item(conn, c, fid)
    if text is None:
        raise NotFound(f"no feature {feature_id!r} in {c.id}")
    here = f"{_base(request)}/collections/{c.id}"
    links = [_link(f"{here}/items/{feature_id}", "self", GEOJSON, "this feature"),
             _link(here, "collection", "application/json", c.title)]
    if html:
        feature = orjson.loads(text)
        base = _base(request)
        return _page(ogc_pages.page(base, f"{c.title}: {feature_id}", links, [
            ("Collections", f"{base}/collections"), (c.title, here), ("features", f"{here}/items")],
            columns=["property", "value"], rows=[[(k, None), (v, None)] for k, v in feature["properties"].items()],
            geojson=feature))
    return Response(text[:-1] + ',"links":' + orjson.dumps(links).decode() + "}", media_type=GEOJSON,
                    headers=PRIVATE)
