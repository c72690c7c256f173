"""Settings, one class per concern, read from `GRIDWATCH_*` environment variables.

A wrong value fails when the settings are first read (start-up), naming the variable.
"""

from functools import lru_cache
from pathlib import Path

from pydantic import Field, FilePath, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class DatabaseSettings(BaseSettings):
    """Where the data lives: an external PostGIS, or the embedded cluster under `home`."""

    model_config = SettingsConfigDict(env_prefix="GRIDWATCH_")

    # None: run gridwatch's own cluster in `home`.
    database_url: str | None = None
    # A streaming replica for maps, statistics and lists (`gridwatch db replica start` makes one
    # of the embedded cluster); None: every read goes to the database above.
    read_database_url: str | None = None
    # A replica further behind the primary than this serves no reads (they go to the primary)
    # until it catches up: a replica that stalls must not show a world that stopped.
    read_max_lag_s: float = Field(30.0, gt=0)
    home: Path = Path("var")
    statement_timeout_ms: int = Field(5_000, ge=100)
    pool_min: int = Field(2, ge=1)
    pool_max: int = Field(10, ge=1)
    # The unprivileged account that runs the embedded cluster when gridwatch runs as root.
    pg_user: str = "postgres"


class ApiSettings(BaseSettings):
    """The HTTP server."""

    model_config = SettingsConfigDict(env_prefix="GRIDWATCH_")

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    workers: int = Field(1, ge=1)
    # Bodies above this are refused with 413 before they are parsed.
    max_body_bytes: int = Field(8 * 1024 * 1024, ge=1024)
    # How often a worker checks the boundary version if a notification was missed.
    boundary_poll_s: float = Field(5.0, gt=0)
    # How often the server checks the 1-3-1 deadlines and escalates.
    deadline_check_s: float = Field(60.0, gt=0)
    # The county's clock, for days and hours of the day in statistics.
    timezone: str = "Asia/Shanghai"
    # Base map tiles for the pages, e.g. a local tile server's {z}/{x}/{y} URL; none: outlines only.
    tile_url: str | None = None
    tile_attribution: str = ""
    # HTTPS: a certificate (chain) and its private key, PEM files. Phones give /field their
    # position only over HTTPS (or on loopback), so a county serving phones sets both, or puts
    # a TLS proxy in front.
    tls_cert: FilePath | None = None
    # Behind a reverse proxy that ends HTTPS: the proxies whose X-Forwarded-Proto/-For are
    # believed (so the sign-in cookie is marked Secure), comma-separated; "*" trusts any.
    forwarded_allow_ips: str = "127.0.0.1"
    # Requests a second one key may send (a burst of two seconds' worth at once), in each
    # worker; camera ingest keys have their own rate, as one NVR posts for many cameras.
    rate_per_s: float = Field(100.0, gt=0)
    # The address clients reach the server at, e.g. https://gridwatch.county.example: the links in
    # /ogc documents are made from it, not from the request's Host header (which the client
    # writes). Unset: from the request.
    public_url: str | None = None
    # The boundaries as OGC API Features (/ogc: townships, villages, grids) readable without a key.
    ogc_public_boundaries: bool = False
    ingest_rate_per_s: float = Field(2000.0, gt=0)
    tls_key: FilePath | None = None

    @model_validator(mode="after")
    def _both_or_neither(self) -> "ApiSettings":
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("GRIDWATCH_TLS_CERT and GRIDWATCH_TLS_KEY go together: set both, or neither")
        return self


@lru_cache
def database_settings() -> DatabaseSettings:
    return DatabaseSettings()


@lru_cache
def api_settings() -> ApiSettings:
    return ApiSettings()
