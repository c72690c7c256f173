"""What every request passes through before routing: a bounded body, and a path and query
that are plain UTF-8 text without control characters (a NUL or a line break there is an
attack or a bug, never a grid code)."""

import re
from urllib.parse import unquote_to_bytes

from starlette.exceptions import HTTPException

from gridwatch.api.errors import problem

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class BodyLimit:
    """Refuses bodies above the limit with 413 before they are read into memory, whether
    the size is announced (Content-Length) or not (chunked)."""

    def __init__(self, app, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            return await _answer(send, 413, _too_large(self.max_bytes))
        seen = 0

        async def counted():
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:
                raise BodyTooLarge(self.max_bytes)
            return message

        try:
            return await self.app(scope, counted, send)
        except BodyTooLarge:  # raised outside a route (a route's own is answered by the handlers)
            return await _answer(send, 413, _too_large(self.max_bytes))


class BodyTooLarge(HTTPException):
    """An HTTPException, so that FastAPI, reading a body for a model, passes it on as it is
    (any other error there becomes a 400) and the handlers answer 413."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(413, _too_large(max_bytes))


def _too_large(max_bytes: int) -> str:
    return f"the body is larger than {max_bytes:,} bytes; send less per request"


class PlainText:
    """Refuses (422) a path or query value that is not UTF-8, or holds control characters."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            reason = _not_plain("path", scope.get("raw_path") or scope["path"].encode()) or \
                _not_plain("query", scope.get("query_string", b""))
            if reason:
                return await _answer(send, 422, reason)
        return await self.app(scope, receive, send)


def _not_plain(where: str, raw: bytes) -> str | None:
    try:
        text = unquote_to_bytes(raw.replace(b"+", b" ")).decode()
    except UnicodeDecodeError:
        return f"the {where} is not UTF-8 text; percent-encode text as UTF-8"
    if _CONTROL.search(text):
        return f"the {where} holds a control character (a NUL, a line break or the like); remove it"
    return None


async def _answer(send, status: int, detail: str) -> None:
    response = problem(status, detail, title="Invalid input" if status == 422 else None)
    await send({"type": "http.response.start", "status": status, "headers": response.raw_headers})
    await send({"type": "http.response.body", "body": response.body})
