"""Who may call what: one table of every route and the roles it lets in.

The table is the single source. `Guard` applies it to every request before the route
runs (so a key is checked before a body is read, and a refusal costs no parsing); the
OpenAPI document and the README's access table are written from it; and the server
refuses to start if any route is missing from it, so no route is public by mistake.

A route that lets team keys in still checks, on the data, that a team key asks only for
its own team (`Principal.own_team`); an incident action checks the action's own role.
"""

import re
from collections.abc import Iterator
from dataclasses import dataclass

import psycopg
from psycopg_pool import PoolTimeout
from starlette.requests import Request
from starlette.routing import BaseRoute, Mount

from gridwatch.api.auth import ALL_ROLES, ROLES, authenticate
from gridwatch.api.errors import refusal, unavailable
from gridwatch.errors import Forbidden, GridwatchError, TooManyRequests
from gridwatch.geo.collections import BOUNDARY_COLLECTIONS

Rule = frozenset[str]  # the roles let in; empty: public, no key needed


def from_(role: str) -> Rule:
    """`role` and every role above it (viewer < operator < dispatcher < admin)."""
    return frozenset(ROLES[ROLES.index(role):])


PUBLIC: Rule = frozenset()
VIEWER, OPERATOR, DISPATCHER, ADMIN = (from_(r) for r in ROLES)
INGEST: Rule = frozenset({"ingest"})  # a camera or detector: posts alerts and snapshots
TEAM: Rule = frozenset({"team"})  # one team's phone
VIDEO: Rule = frozenset({"video"})  # a video fleet host: leases (with the streams it holds), their alerts

ACCESS: dict[str, Rule] = {
    # public: health, the API's description, signing in, the pages' static files
    "GET /health": PUBLIC,
    "GET /openapi.json": PUBLIC,
    "GET /docs": PUBLIC,
    "GET /": PUBLIC,
    "GET /login": PUBLIC,
    "POST /login": PUBLIC,
    "POST /logout": PUBLIC,
    "GET /maps/static/{path}": PUBLIC,
    "GET /maps/app/{path}": PUBLIC,
    # places
    "GET /grids/at": VIEWER,
    "POST /grids/lookup": VIEWER,
    "GET /grids": VIEWER,
    "GET /grids/{code}": VIEWER,
    "GET /villages": VIEWER,
    "GET /villages/{code}": VIEWER,
    "GET /townships": VIEWER,
    "GET /townships/{code}": VIEWER,
    "POST /admin/boundaries": ADMIN,
    "GET /admin/audit": ADMIN,
    # cameras
    "GET /cameras": VIEWER,
    "GET /cameras/{camera_id}": VIEWER,
    "POST /cameras": ADMIN,
    "PATCH /cameras/{camera_id}": ADMIN,
    "GET /cameras/{camera_id}/video": VIEWER | INGEST | VIDEO,
    "GET /cameras/{camera_id}/stream": ADMIN,
    "DELETE /cameras/{camera_id}": ADMIN,
    "PUT /cameras/{camera_id}/calibration": ADMIN,
    # alerts
    "POST /alerts": OPERATOR | INGEST,
    "POST /alerts/batch": OPERATOR | INGEST,
    "GET /alerts": VIEWER,
    "GET /alerts/{alert_id}": VIEWER,
    "POST /alerts/{alert_id}/assign": OPERATOR,
    "POST /alerts/{alert_id}/dismiss": OPERATOR,
    "PUT /alerts/{alert_id}/snapshot": OPERATOR | INGEST | VIDEO,
    "GET /alerts/{alert_id}/snapshot": VIEWER,
    "GET /alert-types": VIEWER,
    "PATCH /alert-types/{type_}": ADMIN,
    # incidents (an action also needs the action's own role: dispatch, close, false-alarm
    # and cancel are a dispatcher's; a team key may take only its own steps)
    "GET /incidents": VIEWER,
    "GET /incidents/stream": VIEWER | TEAM,
    "POST /incidents": OPERATOR | TEAM,
    "GET /incidents/{incident_id}": VIEWER | TEAM,
    "POST /incidents/{incident_id}/photos": OPERATOR | TEAM,
    "GET /incidents/{incident_id}/photos/{n}": VIEWER | TEAM,
    "POST /incidents/{incident_id}/whistle": DISPATCHER,
    "POST /incidents/{incident_id}/departments/{department}/report": OPERATOR,
    "POST /incidents/{incident_id}/{action}": OPERATOR | TEAM,
    # teams
    "GET /patrols": VIEWER,
    "GET /patrols/recommend": VIEWER,
    "POST /patrols": ADMIN,
    "GET /patrols/{team_id}": VIEWER | TEAM,
    "PATCH /patrols/{team_id}": DISPATCHER,
    "GET /patrols/{team_id}/assignments": VIEWER | TEAM,
    "POST /patrols/{team_id}/duty": DISPATCHER | TEAM,
    "POST /patrols/{team_id}/positions": OPERATOR | TEAM,
    # the video fleet
    "POST /video/leases": VIDEO,
    "POST /video/leases/release": VIDEO,
    "POST /video/alerts": VIDEO,
    "GET /video/fleet": VIEWER,
    # statistics and pages
    "GET /stats/grids": VIEWER,
    "GET /stats/heat": VIEWER,
    "GET /stats/hotspots": VIEWER,
    "GET /stats/timeline": VIEWER,
    "GET /stats/deadlines": VIEWER,
    "GET /stats/response": VIEWER,
    "GET /maps": VIEWER,
    "GET /maps/": VIEWER,
    "GET /maps/heatmap": VIEWER,
    "GET /maps/timelapse": VIEWER,
    "GET /maps/grids/{code}": VIEWER,
    "GET /field": TEAM,
    # OGC API Features, for GIS tools
    "GET /ogc": VIEWER,
    "GET /ogc/conformance": VIEWER,
    "GET /ogc/api": VIEWER,
    "GET /ogc/collections": VIEWER,
    "GET /ogc/collections/{collection_id}": VIEWER,
    "GET /ogc/collections/{collection_id}/queryables": VIEWER,
    "GET /ogc/collections/{collection_id}/items": VIEWER,
    "GET /ogc/collections/{collection_id}/items/{feature_id}": VIEWER,
    "GET /tiles/{layer}/{z}/{x}/{y}.mvt": VIEWER,
}


@dataclass(frozen=True)
class Entry:
    """One route as the router matches it, with its rule."""

    key: str  # "GET /grids/{code}"
    pattern: re.Pattern
    methods: frozenset[str]
    rule: Rule


def _routes(routes: list[BaseRoute]) -> Iterator[BaseRoute]:
    """The app's routes in the order the router tries them (included routers opened)."""
    for route in routes:
        inner = getattr(route, "original_router", None)  # FastAPI's wrapper of an included router
        yield from _routes(inner.routes) if inner is not None else [route]


def table(routes: list[BaseRoute], access: dict[str, Rule]) -> list[Entry]:
    """Each route with its rule, in matching order; raises if a route has no rule, or a
    rule no route."""
    entries, missing = [], []
    for route in _routes(routes):
        methods = frozenset({"GET"}) if isinstance(route, Mount) else frozenset(route.methods or ()) - {"HEAD"}
        path = route.path + "/{path}" if isinstance(route, Mount) else route.path
        for method in sorted(methods):
            key = f"{method} {path}"
            if key not in access:
                missing.append(key)
            else:
                entries.append(Entry(key, route.path_regex, frozenset({method}), access[key]))
    stale = set(access) - {e.key for e in entries}
    if missing or stale:
        raise RuntimeError("the access table (gridwatch/api/access.py) must name every route exactly: "
                           + "; ".join(filter(None, [missing and f"no rule for {', '.join(missing)}",
                                                      stale and f"no route for {', '.join(sorted(stale))}"])))
    return entries


def rule_for(entries: list[Entry], method: str, path: str) -> Rule | None:
    """The rule of the route that will answer; None if none will (a 404 or 405 follows)."""
    method = "GET" if method == "HEAD" else method
    for entry in entries:
        if method in entry.methods and entry.pattern.match(path):
            return entry.rule
    return None


def allowed(rule: Rule) -> str:
    """The roles of a rule as a person reads them: `operator, dispatcher, admin, ingest`."""
    return ", ".join(r for r in ALL_ROLES if r in rule) or "public"


class Guard:
    """ASGI middleware: authenticates the caller and applies the route's rule before the
    route runs. The principal is left in the request's state for the route (`SignedIn`)
    and the audit log. The table is built when the server starts (the lifespan event), so
    a route added to the app without a rule stops it from starting."""

    def __init__(self, app) -> None:
        self.app = app
        self.entries: list[Entry] | None = None

    def _entries(self, app) -> list[Entry]:
        if self.entries is None:
            self.entries = table(app.router.routes, app.state.access)
        return self.entries

    async def __call__(self, scope, receive, send):
        if scope["type"] == "lifespan":
            self._entries(scope["app"])
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        rule = rule_for(self._entries(scope["app"]), scope.get("method", "GET"), scope["path"])
        if rule and not public_boundary(scope):
            request = Request(scope)
            try:
                principal = await authenticate(request)
                if principal.role not in rule:
                    raise Forbidden(f"this needs role {allowed(rule)}; key {principal.name!r} has role "
                                    f"{principal.role}")
                limits = scope["app"].state.limits
                wait = limits.wait_s(principal)
                if wait:
                    raise TooManyRequests(f"key {principal.name!r} sent more than {limits.rate(principal):g} requests "
                                          f"a second; wait {wait:.1f} s", retry_after_s=round(wait, 3))
            except GridwatchError as exc:
                return await refusal(request, exc)(scope, receive, send)
            except (psycopg.OperationalError, PoolTimeout) as exc:  # the key cannot be checked
                return await unavailable(exc)(scope, receive, send)
        return await self.app(scope, receive, send)


# With GRIDWATCH_OGC_PUBLIC_BOUNDARIES on, the boundaries' OGC collections, and the documents that
# lead to them, may be read without a key (another department's GIS, say); a request that does
# send a key is checked as always, and everything else still needs one.
PUBLIC_BOUNDARIES = re.compile(r"/ogc(/conformance|/api|/collections(/(" + "|".join(BOUNDARY_COLLECTIONS) +
                               r")(/queryables|/items(/[^/]+)?)?)?)?/?")


def public_boundary(scope) -> bool:
    """A keyless read of the boundaries that the setting opens to all."""
    if not scope["app"].state.public_boundaries or scope.get("method") not in ("GET", "HEAD"):
        return False
    request = Request(scope)
    return PUBLIC_BOUNDARIES.fullmatch(scope["path"]) is not None and "authorization" not in request.headers and \
        "gridwatch_key" not in request.cookies


def markdown(access: dict[str, Rule] = ACCESS) -> str:
    """The access table as the README shows it: one row per route, one column per role."""
    roles = ALL_ROLES
    lines = ["| Route | " + " | ".join(roles) + " | no key |", "|---|" + "---|" * (len(roles) + 1)]
    for key, rule in access.items():
        cells = ["✓" if role in rule or not rule else "" for role in roles] + ["✓" if not rule else ""]
        lines.append(f"| `{key}` | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


PROBLEM_SCHEMA = {
    "type": "object", "description": "RFC 9457 problem details",
    "required": ["type", "title", "status", "detail"],
    "properties": {"type": {"type": "string"}, "title": {"type": "string"}, "status": {"type": "integer"},
                   "detail": {"type": "string"},
                   "errors": {"type": "array", "items": {"type": "object", "properties": {
                       "field": {"type": "string"}, "message": {"type": "string"}}}}},
}


def describe(doc: dict, access: dict[str, Rule]) -> dict:
    """Write the table into an OpenAPI document: the bearer key scheme (Swagger UI's
    Authorize button), each operation's security and roles, and its 401 and 403."""
    components = doc.setdefault("components", {})
    components.setdefault("securitySchemes", {})["bearerKey"] = {
        "type": "http", "scheme": "bearer",
        "description": "an API key (`gridwatch keys create --role ROLE --name NAME`); browsers signed in at "
                       "/login send it in a cookie instead"}
    components.setdefault("schemas", {})["Problem"] = PROBLEM_SCHEMA
    problem = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
    for path, operations in doc.get("paths", {}).items():
        for method, operation in operations.items():
            rule = access.get(f"{method.upper()} {path}")
            if rule is None:
                continue
            if not rule:
                operation["security"] = []
                continue
            operation["security"] = [{"bearerKey": []}]
            operation["x-roles"] = [r for r in ALL_ROLES if r in rule]
            operation["description"] = (operation.get("description", "") + f"\n\nRoles: {allowed(rule)}.").strip()
            responses = operation.setdefault("responses", {})
            responses.setdefault("401", {"description": "no key, or an unknown, revoked or expired one",
                                         "content": problem})
            responses.setdefault("403", {"description": "the key's role may not do this", "content": problem})
            responses.setdefault("429", {"description": "the key sent more requests than its rate allows; wait as "
                                                        "Retry-After says", "content": problem})
    return doc
