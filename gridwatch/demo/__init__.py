"""`gridwatch demo load`: the synthetic demo county, loaded once and reused."""

from collections.abc import Callable
from importlib.resources import files
from pathlib import Path

import psycopg

from gridwatch.api.auth import create_key, key_valid
from gridwatch.db import partitions
from gridwatch.demo.history import load_history
from gridwatch.demo.places import seed_cameras, seed_teams
from gridwatch.geo.boundaries import import_boundaries
from gridwatch.geo.grid_index import GridIndex

# The demo county's boundary files, inside the package (in a checkout, a link to data/boundaries).
BOUNDARIES = Path(str(files("gridwatch.demo"))) / "boundaries"


def load(conn: psycopg.Connection, home: Path, days: int = 30, boundaries: Path = BOUNDARIES,
         progress: Callable[[str], None] = lambda _m: None) -> str:
    """Load each part of the demo county that is missing (boundaries, cameras, teams,
    `days` days of alert history), and return the demo admin key (kept in
    `home/demo-admin.key`, made again only if it no longer works). What is there already
    is kept."""
    grids = conn.execute("SELECT count(*) FROM grids").fetchone()[0]
    if grids:
        progress(f"boundaries already loaded ({grids} grids); keeping them")
    else:
        report = import_boundaries(conn, boundaries, progress=progress)
        if not report.ok:
            raise RuntimeError("the demo boundaries did not pass the checks: "
                               + "; ".join(str(p) for p in report.errors))
    index = GridIndex.load(conn)
    with conn.transaction():
        if conn.execute("SELECT count(*) FROM cameras").fetchone()[0]:
            progress("cameras already loaded; keeping them")
        else:
            progress("placing cameras")
            seed_cameras(conn, index, progress)
        if conn.execute("SELECT count(*) FROM teams").fetchone()[0]:
            progress("patrol teams already loaded; keeping them")
        else:
            seed_teams(conn, index, progress)
    if conn.execute("SELECT EXISTS (SELECT 1 FROM alerts)").fetchone()[0]:
        progress("alert history already loaded; keeping it")
    elif days > 0:
        progress(f"replaying {days} days of alerts through the pipeline")
        n = load_history(conn, index, days, progress)
        progress(f"{n} alerts in the history")
        partitions.ensure(conn)  # the history's past months, from the default partition into their own
    return _key(conn, home, "demo-admin.key", "admin", "demo admin", None, progress)


# The demo's phone: the volunteer motorcycle patrol of Agatu, for /field.
DEMO_TEAM = "AGATU-MOTO"


def team_key(conn: psycopg.Connection, home: Path, progress: Callable[[str], None] = lambda _m: None) -> str:
    """The demo team's key (kept in `home/demo-team.key`, made again only if it no longer works)."""
    return _key(conn, home, "demo-team.key", "team", "demo Agatu patrol phone", DEMO_TEAM, progress)


def _key(conn: psycopg.Connection, home: Path, file: str, role: str, name: str, team: str | None,
         progress: Callable[[str], None]) -> str:
    key_file = home / file
    if key_file.exists():
        key = key_file.read_text().strip()
        if key_valid(conn, key):
            return key
    _, key = create_key(conn, role, name, team)
    home.mkdir(parents=True, exist_ok=True)
    key_file.write_text(key + "\n")
    key_file.chmod(0o600)
    progress(f"created a demo {role} key ({key_file})")
    return key
