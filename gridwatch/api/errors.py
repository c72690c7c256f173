"""Every error as RFC 9457 problem+json, mapped in one place."""

import json
import logging
import math
from http import HTTPStatus
from urllib.parse import urlencode

import orjson
import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from psycopg_pool import PoolTimeout
from starlette.exceptions import HTTPException
from starlette.responses import RedirectResponse, Response

from gridwatch.errors import Busy, GridwatchError

log = logging.getLogger(__name__)

PROBLEM = "application/problem+json"


def problem(status: int, detail: str, title: str | None = None, headers: dict | None = None, **extra) -> Response:
    body = {"type": "about:blank", "title": title or HTTPStatus(status).phrase, "status": status,
            "detail": detail, **extra}
    try:
        content = orjson.dumps(body)
    except TypeError:  # text echoed from the request holds half a UTF-16 pair: the standard library escapes it
        content = json.dumps(body).encode()
    return Response(content, status_code=status, media_type=PROBLEM, headers=headers)


def _field(loc: tuple) -> str:
    # ("query", "lon") → "lon"; ("body", "points", 3) → "points[3]"
    parts = [str(p) for p in loc if p not in ("query", "body", "path", "header")]
    out = ""
    for p in parts:
        out += f"[{p}]" if p.isdigit() else (f".{p}" if out else p)
    return out or "request"


def validation_items(errors: list[dict]) -> list[dict]:
    """pydantic errors as {field, message, input} items, fields written as `points[3].lon`."""
    return [{"field": "body", "message": f"not JSON ({e.get('ctx', {}).get('error', 'cannot be decoded')})"}
            if e.get("type") == "json_invalid" else
            {"field": _field(tuple(e.get("loc", ()))), "message": "unknown field (misspelt?)"}
            if e.get("type") == "extra_forbidden" else
            {"field": _field(tuple(e.get("loc", ()))), "message": e.get("msg", "invalid").removeprefix("Value error, "),
             **({"input": e["input"]} if isinstance(e.get("input"), str | int | float) else {})}
            for e in errors]


def unreadable(exc: HTTPException) -> str:
    """What is wrong with a body the framework could not read."""
    if isinstance(exc.__cause__, UnicodeDecodeError):
        return "the body cannot be read: it is not UTF-8 text; send JSON as UTF-8"
    cause = f" ({exc.__cause__})" if exc.__cause__ is not None and str(exc.__cause__) else ""
    return f"the body cannot be read: {str(exc.detail).rstrip('.')}{cause}"


def page_visit(request: Request) -> bool:
    """A browser opening a map page (not a script, and not the page's own data requests)."""
    return request.method == "GET" and (request.url.path.startswith(("/maps", "/ogc")) or
                                        request.url.path == "/field") and \
        "text/html" in request.headers.get("accept", "")


def refusal(request: Request, exc: GridwatchError) -> Response:
    """The answer to a domain error: problem+json, or for a person at a browser who is not
    signed in, the sign-in form."""
    if exc.status == 401 and page_visit(request):
        page = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?{urlencode({'next': page})}", status_code=303)
    headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
    if exc.status == 503:
        headers = {"Retry-After": "5"}
    if exc.status == 429:
        headers = {"Retry-After": str(max(1, math.ceil(exc.extra.get("retry_after_s", 1))))}
    # extension members never override the standard ones (RFC 9457 §3.2)
    extra = {k: v for k, v in exc.extra.items() if k not in ("type", "title", "status", "detail", "headers")}
    return problem(exc.status, exc.detail, title=exc.title, headers=headers, **extra)


def unavailable(exc: Exception) -> Response:
    log.warning("database unavailable: %s", exc)
    return problem(503, "the database is unavailable; retry shortly", headers={"Retry-After": "5"})


def install(app: FastAPI) -> None:
    """Register the handlers that turn every failure into problem+json."""

    @app.exception_handler(GridwatchError)
    async def domain_error(request: Request, exc: GridwatchError) -> Response:
        return refusal(request, exc)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_request: Request, exc: RequestValidationError) -> Response:
        errors = validation_items(exc.errors())
        detail = "; ".join(f"{e['field']}: {e['message']}" + (f" (got {e['input']!r})" if "input" in e else "")
                           for e in errors)
        return problem(422, detail, title="Invalid input", errors=errors)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        if exc.status_code == 400:
            # The framework's answer to a body it cannot read (JSON that is not UTF-8 text, a
            # broken form): unreadable input is 422, as JSON that does not parse is. (gridwatch's
            # own 400, `Unsupported`, is a form it does not serve, e.g. a CRS.)
            return problem(422, unreadable(exc), title="Invalid input",
                           errors=[{"field": "body", "message": unreadable(exc)}])
        if exc.status_code == 404 and exc.detail == "Not Found":
            detail = f"no such path: {request.url.path}"
        elif exc.status_code == 405:
            detail = f"{request.method} is not allowed on {request.url.path}"
        else:
            detail = str(exc.detail)
        return problem(exc.status_code, detail, headers=getattr(exc, "headers", None))

    @app.exception_handler(psycopg.errors.QueryCanceled)
    async def too_slow(_request: Request, exc: Exception) -> Response:
        return problem(503, "the database query took too long and was cancelled; try a smaller request",
                       headers={"Retry-After": "5"})

    @app.exception_handler(psycopg.errors.DeadlockDetected)
    @app.exception_handler(psycopg.errors.SerializationFailure)
    async def collided(_request: Request, exc: Exception) -> Response:
        log.info("transaction rolled back: %s", exc)
        return problem(409, "another change to the same incident or team was made at the same moment, so this one "
                            "was not; try again")

    @app.exception_handler(psycopg.DataError)
    @app.exception_handler(UnicodeEncodeError)
    async def unstorable(_request: Request, exc: Exception) -> Response:
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        text = isinstance(exc, UnicodeEncodeError) or any(w in message for w in ("NUL", "Unicode", "UTF8"))
        reason = "text with a NUL character (\\u0000) or half of a UTF-16 pair" if text else message
        return problem(422, f"the request holds a value that cannot be stored or looked up: {reason}; remove it",
                       title="Invalid input")

    @app.exception_handler(psycopg.OperationalError)
    async def db_down(_request: Request, exc: Exception) -> Response:
        return unavailable(exc)

    @app.exception_handler(PoolTimeout)
    async def busy(request: Request, exc: Exception) -> Response:
        return refusal(request, Busy("every database connection of this server process was in use; retry shortly"))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem(500, "an unexpected error occurred; it has been logged")
