"""API keys with roles.

Keys are 256-bit random tokens shown once; only their SHA-256 is stored. Verified keys
are cached for a few seconds so a request costs no database round trip; a revocation is
announced by the database, so a revoked key stops working at once in every process.
"""

import hashlib
import logging
import re
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import psycopg
from fastapi import Request
from psycopg_pool import ConnectionPool
from starlette.concurrency import run_in_threadpool

from gridwatch.errors import BadInput, Forbidden, NotFound, Unauthorized, Unreachable

log = logging.getLogger(__name__)

# Ordered roles: each may do what the ones before it may. Three stand apart: `ingest`
# (cameras: post alerts and nothing else), `team` (one team's phone: its own assignments
# and the actions on them, its own positions and duty, field reports) and `video` (a video
# fleet host: it claims camera streams, reads them whole, posts their alerts under its lease).
ROLES = ("viewer", "operator", "dispatcher", "admin")
ALL_ROLES = (*ROLES, "ingest", "team", "video")
CACHE_TTL_S = 10.0
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
_PREFIX = "gw_"


@dataclass(frozen=True)
class Principal:
    key_id: int
    name: str
    role: str
    team_id: str | None = None  # a team key's team
    expires_at: datetime | None = None

    def at_least(self, role: str) -> bool:
        return self.role in ROLES and ROLES.index(self.role) >= ROLES.index(role)

    def own_team(self, team_id: str) -> None:
        """Raises Forbidden unless this is a team key of `team_id` (or any other role,
        which the route's role check has judged already)."""
        if self.role == "team" and self.team_id != team_id:
            raise Forbidden(f"key {self.name!r} acts for team {self.team_id}, not {team_id}")


def actor(principal: Principal) -> str:
    """How the history names who did something: the key's name and role."""
    return f"{principal.name} ({principal.role})"


def _hash(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


def expiry(text: str, now: datetime | None = None) -> datetime:
    """When a key given `--expires TEXT` stops working: a span from now (`12h`, `90d`), or
    a time (a plain date is its midnight UTC)."""
    now = now or datetime.now(UTC)
    span = re.fullmatch(r"(\d{1,5})([hd])", text.strip())
    if span:
        return now + timedelta(**{"hours" if span[2] == "h" else "days": int(span[1])})
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise BadInput(f"--expires {text!r}: give a time (2027-03-31, 2027-03-31T18:00+08:00) or a span from now "
                       f"(12h, 7d)") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def create_key(conn: psycopg.Connection, role: str, name: str, team_id: str | None = None,
               expires_at: datetime | None = None) -> tuple[int, str]:
    """Store a new key (a `team` key for the team `team_id`; refused after `expires_at` if
    given); returns (id, key). The key itself is never stored."""
    if expires_at is not None and expires_at <= datetime.now(UTC):
        raise BadInput(f"the expiry {expires_at.isoformat()} has passed already; give a later one")
    if role not in ALL_ROLES:
        raise BadInput(f"role {role!r} is not one of {', '.join(ALL_ROLES)}")
    if not name.strip():
        raise BadInput("a key needs a name saying who or what holds it")
    if role == "team" and not team_id:
        raise BadInput("a team key is bound to one team: give --team ID (the ids are in GET /patrols)")
    if role != "team" and team_id:
        raise BadInput(f"--team is for team keys only; a {role} key is not bound to a team")
    if team_id and conn.execute("SELECT 1 FROM teams WHERE id = %s", [team_id]).fetchone() is None:
        raise BadInput(f"no team {team_id!r}; the ids are in GET /patrols")
    key = _PREFIX + secrets.token_urlsafe(32)
    key_id = conn.execute("INSERT INTO api_keys (name, role, team_id, key_hash, prefix, expires_at) "
                          "VALUES (%s, %s, %s, %s, %s, %s) RETURNING id",
                          [name.strip(), role, team_id, _hash(key), key[:8], expires_at]).fetchone()[0]
    conn.commit()
    return key_id, key


def list_keys(conn: psycopg.Connection) -> list[dict]:
    rows = conn.execute("SELECT id, name, role, team_id, prefix, created_at, expires_at, revoked_at FROM api_keys "
                        "ORDER BY id")
    return [{"id": r[0], "name": r[1], "role": r[2], "team_id": r[3], "prefix": r[4], "created_at": r[5].isoformat(),
             "expires_at": r[6] and r[6].isoformat(), "revoked_at": r[7] and r[7].isoformat()} for r in rows]


def revoke_key(conn: psycopg.Connection, key_id: int) -> None:
    if conn.execute("UPDATE api_keys SET revoked_at = now() WHERE id = %s AND revoked_at IS NULL RETURNING id",
                    [key_id]).fetchone() is None:
        raise NotFound(f"no active key with id {key_id}")
    conn.commit()


def key_valid(conn: psycopg.Connection, key: str) -> bool:
    return conn.execute("SELECT 1 FROM api_keys WHERE key_hash = %s AND revoked_at IS NULL "
                        "AND (expires_at IS NULL OR expires_at > now())", [_hash(key)]).fetchone() is not None


class KeyStore:
    """Verifies bearer keys against the database, with a short cache; a revocation (announced
    by the database, see `forget_revoked`) takes effect at once.

    Keys are read from the primary, which knows a key the moment it is made. While the
    primary cannot be reached they are read from `fallback` (the read replica), or every
    request would fail, reads too; an unknown key is then not cached, as it may have been
    made just before the primary went and not have reached the replica."""

    def __init__(self, pool: ConnectionPool, fallback: ConnectionPool | None = None) -> None:
        self.pool = pool
        self.fallback = fallback
        self._cache: dict[bytes, tuple[Principal | None, float]] = {}
        self.revoked: frozenset[int] = frozenset()

    def forget_revoked(self, conn: psycopg.Connection) -> None:
        """Learn which keys are revoked and drop them from the cache (called when a key is
        revoked anywhere, and every few seconds in case the news was missed)."""
        self.revoked = frozenset(r[0] for r in conn.execute("SELECT id FROM api_keys WHERE revoked_at IS NOT NULL"))
        for digest, (principal, _) in list(self._cache.items()):
            if principal is not None and principal.key_id in self.revoked:
                self._cache.pop(digest, None)

    def cached(self, key: str) -> tuple[bool, Principal | None]:
        """(True, principal-or-None) if the key was checked in the last few seconds."""
        hit = self._cache.get(_hash(key))
        if hit and hit[1] > time.monotonic():
            return True, hit[0]
        return False, None

    def verify(self, key: str) -> Principal | None:
        """Look the key up in the database (blocking) and cache the answer."""
        digest = _hash(key)
        now = time.monotonic()
        try:
            principal = _lookup(self.pool, digest)
        except Unreachable:
            if self.fallback is None:
                raise
            principal = _lookup(self.fallback, digest)
            if principal is None:
                return None
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[digest] = (principal, now + CACHE_TTL_S)
        return principal

    async def check(self, key: str) -> Principal:
        """The key's holder; raises Unauthorized for an unknown, revoked or expired key."""
        known, principal = self.cached(key)
        if not known:
            principal = await run_in_threadpool(self.verify, key)
        if principal is None or principal.key_id in self.revoked:
            raise Unauthorized("unknown or revoked API key")
        if principal.expires_at is not None and principal.expires_at <= datetime.now(UTC):
            raise Unauthorized(f"API key {principal.name!r} expired at {principal.expires_at.isoformat()}; "
                               f"ask an admin for a new one (`gridwatch keys create`)")
        return principal


def _lookup(pool: ConnectionPool, digest: bytes) -> Principal | None:
    with pool.connection() as conn:
        row = conn.execute("SELECT id, name, role, team_id, expires_at FROM api_keys "
                           "WHERE key_hash = %s AND revoked_at IS NULL", [digest]).fetchone()
    return Principal(*row) if row else None


async def authenticate(request: Request) -> Principal:
    """The caller, from `Authorization: Bearer <key>` (or the `gridwatch_key` cookie that
    `/login` sets for browsers); raises Unauthorized."""
    header = request.headers.get("authorization", "")
    scheme, _, key = header.partition(" ")
    if header and scheme.lower() != "bearer":
        raise Unauthorized("use `Authorization: Bearer <key>`")
    key = key.strip()
    if not key:
        key = request.cookies.get("gridwatch_key", "")
        if key and request.method not in SAFE_METHODS:
            _same_origin(request)
    if not key:
        raise Unauthorized("this needs an API key: send `Authorization: Bearer <key>` "
                           "(create one with `gridwatch keys create`)")
    principal = await request.app.state.keys.check(key)
    request.state.principal = principal
    return principal


def signed_in(request: Request) -> Principal:
    """The caller, as `access.Guard` authenticated it before the route ran."""
    return request.state.principal


def _same_origin(request: Request) -> None:
    """A write that a browser's cookie authenticates must come from one of our own pages:
    its Origin (or, failing that, its Referer) names this server. The cookie is
    SameSite=Strict already; this refuses what a browser that ignores it would let
    through. Scripts send Bearer keys and are not asked."""
    origin = request.headers.get("origin") or request.headers.get("referer")
    host = request.headers.get("host")
    sent = urlsplit(origin or "")
    if host is None or (sent.scheme, sent.netloc) != (request.url.scheme, host):
        raise Forbidden(f"a cross-site request from {origin or 'an unnamed origin'} was refused; act from "
                        f"gridwatch's own pages, or send `Authorization: Bearer <key>` from a script")
