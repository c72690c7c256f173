"""`gridwatch demo load`: the synthetic demo county, loaded once and reused."""

from collections.abc import Callable
from pathlib import Path

import psycopg

from gridwatch.api.auth import create_key, key_valid
from gridwatch.geo.boundaries import import_boundaries

BOUNDARIES = Path(__file__).resolve().parents[1] / "data" / "boundaries"


def load(conn: psycopg.Connection, home: Path, boundaries: Path = BOUNDARIES,
         progress: Callable[[str], None] = lambda _m: None) -> str:
    """Import the demo boundaries unless boundaries are already stored, and return the demo
    admin key (kept in `home/demo-admin.key`, made again only if it no longer works)."""
    grids = conn.execute("SELECT count(*) FROM grids").fetchone()[0]
    if grids:
        progress(f"boundaries already loaded ({grids} grids); keeping them")
    else:
        report = import_boundaries(conn, boundaries, progress=progress)
        if not report.ok:
            raise RuntimeError("the demo boundaries did not pass the checks: "
                               + "; ".join(str(p) for p in report.errors))
    return _admin_key(conn, home, progress)


def _admin_key(conn: psycopg.Connection, home: Path, progress: Callable[[str], None]) -> str:
    key_file = home / "demo-admin.key"
    if key_file.exists():
        key = key_file.read_text().strip()
        if key_valid(conn, key):
            return key
    _, key = create_key(conn, "admin", "demo admin")
    home.mkdir(parents=True, exist_ok=True)
    key_file.write_text(key + "\n")
    key_file.chmod(0o600)
    progress(f"created a demo admin key ({key_file})")
    return key
