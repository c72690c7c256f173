"""The map pages (HTML, viewer role). A browser signs in once at /login (where a page asked
for without a key sends it), which keeps the key in an HttpOnly cookie; EventSource and
page loads then carry it."""

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import HTMLResponse, RedirectResponse, Response

from gridwatch.api.deps import Grids, SignedIn
from gridwatch.api.errors import page_visit
from gridwatch.api.reads import must_see
from gridwatch.api.schemas import COMMON, HTML, PROBLEM, PROBLEM_REF, SIGN_IN_FIRST, problems
from gridwatch.config import api_settings
from gridwatch.errors import BadInput, Forbidden, Unauthorized
from gridwatch.maps import form, pages
from gridwatch.stats.counts import bounded

router = APIRouter(tags=["maps"], responses=COMMON)
SIGNED_IN = {303: {"description": "signed in: to the page asked for (a team key: /field); `Location` names it"}}
# A page's form asked for what the server refuses: the page again with the reason, for a person; problem+json
# for a script.
REFUSED_FORM = {422: {"description": "the form asked for what the server refuses: for a browser (Accept: "
                                     "text/html) the page with the reason by the form, for a script problem+json",
                      "content": {**HTML, PROBLEM: {"schema": PROBLEM_REF}}}}
COOKIE = "gridwatch_key"
NEXT = r"^/(maps(/.*)?|field|ogc([/?].*)?)$"  # only our own pages: never a redirect off the site
FIELD = "/field"


@router.get("/login", response_class=HTMLResponse, summary="Sign in (browsers): a form for an API key; "
            "with ?key= it signs in at once",
            responses={**SIGNED_IN, **problems(401, 403, s401="?key= is unknown, revoked or expired",
                                               s403="?key= has a role that has no pages (ingest)")})
async def login_form(request: Request, key: Annotated[str | None, Query(min_length=8)] = None,
                     next: Annotated[str, Query(pattern=NEXT)] = "/maps/") -> Response:
    """Where a browser without a key is sent. `?key=` signs in at once (a link, e.g. the
    demo's); the form posts the key so that it stays out of the address bar and history."""
    if key is None:
        return HTMLResponse(pages.sign_in_page(next))
    return await _sign_in(request, key, next)


@router.post("/login", response_class=HTMLResponse,
             summary="Sign in (browsers): keep the key in an HttpOnly cookie; then go to the page asked for",
             responses={**SIGNED_IN,
                        401: {"description": "no key, or an unknown, revoked or expired one: the form again, saying "
                                             "so", "content": HTML},
                        403: {"description": "a key whose role has no pages (ingest): the form again, saying so",
                              "content": HTML}})
async def login(request: Request, key: Annotated[str, Form()] = "",
                next: Annotated[str, Form(pattern=NEXT)] = "/maps/") -> Response:
    try:
        return await _sign_in(request, key.strip(), next)
    except (Unauthorized, Forbidden) as exc:  # the form again, saying what was wrong
        return HTMLResponse(pages.sign_in_page(next, exc.detail), status_code=exc.status)


async def _sign_in(request: Request, key: str, next: str) -> Response:
    if not key:
        raise Unauthorized("paste an API key (create one with `gridwatch keys create --role viewer --name NAME`)")
    principal = await request.app.state.keys.check(key)
    if principal.role == "team":  # a team's phone: its own page, whatever was asked for
        next = FIELD
    elif not principal.at_least("viewer"):
        raise Forbidden(f"the maps need role viewer or above (a team's phone: role team); key {principal.name!r} "
                        f"has role {principal.role}")
    elif next == FIELD:
        next = "/maps/"
    response = RedirectResponse(next, status_code=303)
    keep_s = 12 * 3600
    if principal.expires_at is not None:
        keep_s = min(keep_s, int((principal.expires_at - datetime.now(UTC)).total_seconds()))
    # Secure over HTTPS, also where a trusted proxy ended it (`serve --forwarded-allow-ips`)
    response.set_cookie(COOKIE, key, httponly=True, samesite="strict", max_age=keep_s,
                        secure=request.url.scheme == "https")
    return response


@router.post("/logout", summary="Sign out (browsers): forget the key's cookie; then the sign-in form",
             status_code=303, response_class=Response,
             responses={303: {"description": "the cookie is deleted; `Location: /login`"}})
async def logout(request: Request) -> Response:
    """For the command room's shared screens: the next person signs in with their own key."""
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE, httponly=True, samesite="strict", secure=request.url.scheme == "https")
    return response


def _base() -> pages.Base:
    settings = api_settings()
    return pages.Base(tile_url=settings.tile_url, attribution=settings.tile_attribution, timezone=settings.timezone)


async def _page(request: Request, build, replica: bool = False) -> HTMLResponse:
    """The page `build(conn)` makes: its HTML, or (HTML, status). With `replica`, read from
    the read replica if there is one (reads.py). The live pages (the command room, a team's
    phone) are not: their stream resumes from the time the page was read, and the changes
    a lagging replica lacks at that time would never be shown."""
    reads = request.app.state.reads
    lsn = must_see(request)

    def run() -> str | tuple[str, int]:
        with (reads.reading(request.app.state.pool, lsn) if replica and reads
              else request.app.state.pool.connection()) as conn:
            return build(conn)

    page = await run_in_threadpool(run)
    html, status = page if isinstance(page, tuple) else (page, 200)
    return HTMLResponse(html, status_code=status)


@router.get("/field", response_class=HTMLResponse, summary="A team's phone: its assignments with the next "
            "step of each, its position and duty, reports from the field; live", responses=SIGN_IN_FIRST)
async def field(request: Request, principal: SignedIn) -> HTMLResponse:
    return await _page(request, lambda conn: pages.field_page(conn, principal.team_id, datetime.now(UTC), _base()))


@router.get("/maps", include_in_schema=False)
async def maps_root() -> Response:
    return RedirectResponse("/maps/", status_code=308)


@router.get("/maps/", response_class=HTMLResponse,
            summary="The command room: open incidents by deadline state, grids, cameras, teams, the queue and the "
                    "actions the key's role may take; live", responses=SIGN_IN_FIRST)
async def command_room(request: Request, principal: SignedIn) -> HTMLResponse:
    return await _page(request, lambda conn: pages.command_room(conn, datetime.now(UTC), _base(), principal))


def _filtered_page(request: Request, since: str | None, until: str | None, type: str | None,
                   township: str | None, build) -> Response:
    """A page with the window, type and township form. What the form asked for and the
    server refuses comes back to a person as the page (the last 30 days) with the reason next
    to the form (422); to a script as problem+json."""
    asked = {"since": since, "until": until, "type": type, "township": township}

    def run(conn) -> tuple[str, int]:
        types, townships = form.choices(conn)
        now = datetime.now(UTC)
        try:
            window = form.window(conn, since, until, type, township, api_settings().timezone, now)
            return build(conn, window, types, townships, None, None), 200
        except BadInput as exc:
            if not page_visit(request):
                raise
            return build(conn, bounded(None, None, None, None, now), types, townships, exc.detail, asked), 422

    return run


@router.get("/maps/heatmap", response_class=HTMLResponse, responses={**SIGN_IN_FIRST, **REFUSED_FORM},
            summary="Heat of alerts, incidents per grid, Gi* hot spots; a form for window, type, township")
async def heatmap(request: Request, index: Grids, since: str | None = None, until: str | None = None,
                  type: str | None = None, township: str | None = None) -> HTMLResponse:
    def build(conn, window, types, townships, error, asked) -> str:
        return pages.heatmap_page(conn, index, window, datetime.now(UTC), _base(),
                                  types, townships, error=error, asked=asked)

    return await _page(request, _filtered_page(request, since, until, type, township, build), replica=True)


@router.get("/maps/timelapse", response_class=HTMLResponse, responses={**SIGN_IN_FIRST, **REFUSED_FORM},
            summary="The heat of each day of the window, as a film; the heat map's form")
async def timelapse(request: Request, index: Grids, since: str | None = None, until: str | None = None,
                    type: str | None = None, township: str | None = None) -> HTMLResponse:
    def build(conn, window, types, townships, error, asked) -> str:
        return pages.timelapse_page(conn, index, window, _base(), types, townships,
                                    error=error, asked=asked)

    return await _page(request, _filtered_page(request, since, until, type, township, build), replica=True)


@router.get("/maps/grids/{code}", response_class=HTMLResponse, responses={**SIGN_IN_FIRST, **problems(404)},
            summary="One grid: its cameras, its teams, its recent incidents")
async def grid(request: Request, code: str) -> HTMLResponse:
    return await _page(request, lambda conn: pages.grid_page(conn, code, datetime.now(UTC), _base()), replica=True)
