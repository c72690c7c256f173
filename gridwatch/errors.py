"""Domain errors. The API maps them to RFC 9457 problem+json, the CLI to exit codes."""

from typing import Any


class GridwatchError(Exception):
    """Base class: `status` is the HTTP status, `exit_code` the CLI's."""

    status = 500
    title = "Internal error"
    exit_code = 1

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        # Extension members of the problem document (RFC 9457 §3.2), e.g. a list of errors.
        self.extra = extra


class BadInput(GridwatchError):
    """The caller sent something we cannot use; the message says what and how to fix it."""

    status = 422
    title = "Invalid input"
    exit_code = 2

    @classmethod
    def listing(cls, items: list[dict], suffix: str = "") -> "BadInput":
        """One refusal for many {field, message} items: the first five in the detail, all
        of them in `errors`."""
        more = f" (and {len(items) - 5} more)" if len(items) > 5 else ""
        return cls("; ".join(f"{e['field']}: {e['message']}" for e in items[:5]) + more + suffix, errors=items)


class Unsupported(GridwatchError):
    """Asked in a form the API does not serve (a CRS, an output format, a tile beyond the
    tile grid): 400, and the detail lists what is supported."""

    status = 400
    title = "Bad Request"
    exit_code = 2


class NotFound(GridwatchError):
    status = 404
    title = "Not Found"
    exit_code = 2


class Conflict(GridwatchError):
    status = 409
    title = "Conflict"
    exit_code = 2


class TooLarge(GridwatchError):
    status = 413
    title = "Request too large"
    exit_code = 2


class Unauthorized(GridwatchError):
    status = 401
    title = "Unauthorized"
    exit_code = 2


class Forbidden(GridwatchError):
    status = 403
    title = "Forbidden"
    exit_code = 2


class TooManyRequests(GridwatchError):
    """A key sent more requests than its rate allows; `retry_after` says when to try again."""

    status = 429
    title = "Too many requests"
    exit_code = 1


class Unavailable(GridwatchError):
    """The database (or another service we need) cannot answer now; retrying may help."""

    status = 503
    title = "Service unavailable"
    exit_code = 1


class Busy(Unavailable):
    """Every database connection is in use: the server is busy, not down; retry shortly."""

    title = "Busy"


class Unreachable(Unavailable):
    """A database server cannot be reached at all (not merely busy); the detail says what still
    works meanwhile."""

    title = "Database unreachable"
