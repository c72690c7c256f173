"""The embedded PostgreSQL + PostGIS cluster that gridwatch runs when no
`GRIDWATCH_DATABASE_URL` is set.

It uses the machine's PostgreSQL binaries. PostgreSQL refuses to run as root, so when
gridwatch runs as root the cluster runs as an unprivileged account (`postgres` by
default); if that account cannot reach `GRIDWATCH_HOME` (a clone in a 0700 folder), the
data folder goes under /var/lib/gridwatch instead, and `cluster.json` in the home says where.
"""

import hashlib
import json
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from gridwatch.errors import GridwatchError

DB_NAME = "gridwatch"
DB_USER = "gridwatch"
# Where root-run clusters go when the unprivileged account cannot reach the home.
SYSTEM_ROOT = Path("/var/lib/gridwatch")
# sun_path holds 108 bytes including the terminating NUL.
MAX_SOCKET_PATH = 107
POSTGIS_PACKAGE = "postgresql-15-postgis-3"

Progress = Callable[[str], None]


class ClusterError(GridwatchError):
    """The embedded cluster cannot be set up or started; the message says how to fix it."""

    title = "Embedded database unavailable"
    status = 503


@dataclass
class ClusterState:
    """What `cluster.json` records about the cluster, so every later command finds it."""

    data_dir: str
    port: int
    password: str
    run_user: str | None  # None: the invoking user runs PostgreSQL

    @property
    def socket_dir(self) -> str | None:
        if len(f"{self.data_dir}/.s.PGSQL.{self.port}.lock") > MAX_SOCKET_PATH:
            return None
        return self.data_dir


def pg_bindir() -> Path:
    """The PostgreSQL server binaries: `pg_config --bindir`, else Debian's versioned folder."""
    candidates: list[Path] = []
    if shutil.which("pg_config"):
        out = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True)
        if out.returncode == 0:
            candidates.append(Path(out.stdout.strip()))
    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: _version_key(p.parent.name),
                         reverse=True)
    for bindir in candidates:
        if (bindir / "initdb").exists() and (bindir / "pg_ctl").exists():
            return bindir
    raise ClusterError(f"PostgreSQL server binaries not found: install them with "
                       f"`apt-get install {POSTGIS_PACKAGE}`, or set GRIDWATCH_DATABASE_URL to an existing server")


def _version_key(name: str) -> tuple[int, ...]:
    return tuple(int(p) for p in name.split(".") if p.isdigit())


def _sharedir(bindir: Path) -> Path:
    pg_config = bindir / "pg_config"
    if pg_config.exists():
        out = subprocess.run([str(pg_config), "--sharedir"], capture_output=True, text=True)
        if out.returncode == 0:
            return Path(out.stdout.strip())
    # Debian: /usr/lib/postgresql/15/bin → /usr/share/postgresql/15
    return Path("/usr/share/postgresql") / bindir.parent.name


def check_postgis(bindir: Path) -> None:
    """Raise with the package to install when PostGIS is missing for these binaries."""
    if not (_sharedir(bindir) / "extension" / "postgis.control").exists():
        version = bindir.parent.name
        raise ClusterError(f"PostGIS is not installed for PostgreSQL {version}: "
                           f"run `apt-get install postgresql-{version}-postgis-3`")


class Cluster:
    """gridwatch's own cluster under `home`; every method is safe to call again."""

    what = "PostgreSQL"  # how progress and errors name this server

    def __init__(self, home: Path, pg_user: str = "postgres", progress: Progress | None = None) -> None:
        self.home = home.resolve()
        self.state_file = self.home / "cluster.json"
        self.pg_user = pg_user
        self.progress = progress or (lambda _msg: None)

    # -- state ---------------------------------------------------------------------------

    def state(self) -> ClusterState | None:
        """The recorded cluster, or None before the first start."""
        if not self.state_file.exists():
            return None
        return ClusterState(**json.loads(self.state_file.read_text()))

    def _save(self, state: ClusterState) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(state), indent=2))
        tmp.chmod(0o600)
        tmp.replace(self.state_file)

    def url(self, dbname: str = DB_NAME) -> str:
        """A libpq URL for `dbname` (Unix socket when the path allows, else loopback TCP)."""
        state = self.state()
        if state is None:
            raise ClusterError(f"no embedded database in {self.home}: run `gridwatch db start`")
        if state.socket_dir:
            return f"postgresql://{DB_USER}@/{dbname}?host={state.socket_dir}&port={state.port}"
        return f"postgresql://{DB_USER}:{state.password}@127.0.0.1:{state.port}/{dbname}"

    def pid(self) -> int | None:
        """The postmaster's pid if it is running; a pid file naming a dead or foreign
        process (a crash, then the pid reused) counts as not running."""
        state = self.state()
        if state is None:
            return None
        pid_file = Path(state.data_dir) / "postmaster.pid"
        try:
            pid = int(pid_file.read_text().split("\n", 1)[0])
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except (OSError, ValueError):
            return None
        if Path(cmdline[0].decode(errors="replace")).name not in ("postgres", "postmaster"):
            return None
        return pid

    def status(self) -> dict:
        state = self.state()
        pid = self.pid()
        return {
            "home": str(self.home),
            "data_dir": state.data_dir if state else None,
            "port": state.port if state else None,
            "run_user": (state.run_user or _current_user()) if state else None,
            "running": pid is not None,
            "pid": pid,
            "url": self.url() if state else None,
        }

    # -- lifecycle -----------------------------------------------------------------------

    def start(self) -> str:
        """Initialise on first use, start if stopped, create the database; returns the URL."""
        bindir = pg_bindir()
        check_postgis(bindir)
        state = self.state()
        if state is None or not (Path(state.data_dir) / "PG_VERSION").exists():
            state = self._init(bindir)
        if self.pid() is None:
            self._start_server(bindir, state)
        self._create_database()
        return self.url()

    def _start_server(self, bindir: Path, state: ClusterState) -> None:
        self._remove_stale_locks(state)
        if not _port_free(state.port):
            state.port = _free_port()
            self._save(state)
        self.progress(f"starting {self.what} on 127.0.0.1:{state.port} (data in {state.data_dir})")
        sock = state.socket_dir or ""
        log = Path(state.data_dir) / "server.log"
        result = self._run(state, [str(bindir / "pg_ctl"), "start", "-w", "-t", "120", "-D", state.data_dir,
                                   "-l", str(log), "-o", f"-p {state.port} -k '{sock}'"])
        if result.returncode != 0:
            tail = _tail(log)
            raise ClusterError(f"{self.what} did not start (see {log}): {tail}")

    def stop(self) -> bool:
        """Stop the cluster (fast shutdown); returns False if it was not running."""
        state = self.state()
        if state is None or self.pid() is None:
            if state:
                self._remove_stale_locks(state)
            return False
        self.progress(f"stopping {self.what}")
        result = self._run(state, [str(pg_bindir() / "pg_ctl"), "stop", "-w", "-t", "60", "-m", "fast",
                                   "-D", state.data_dir])
        if result.returncode != 0:
            raise ClusterError(f"{self.what} did not stop: {result.stderr.strip() or result.stdout.strip()}")
        return True

    def _init(self, bindir: Path) -> ClusterState:
        run_user = self.pg_user if os.geteuid() == 0 else None
        if run_user is not None:
            try:
                pwd.getpwnam(run_user)
            except KeyError:
                raise ClusterError(f"running as root, but the account {run_user!r} that should run PostgreSQL "
                                   f"does not exist: install {POSTGIS_PACKAGE} (it creates `postgres`) or set "
                                   f"GRIDWATCH_PG_USER") from None
        self.home.mkdir(parents=True, exist_ok=True)
        data_dir = self.home / "pg"
        if run_user is not None and not _can_reach(run_user, self.home):
            digest = hashlib.sha256(str(self.home).encode()).hexdigest()[:16]
            data_dir = SYSTEM_ROOT / digest / "pg"
            self.progress(f"{run_user} cannot reach {self.home}; the data folder goes to {data_dir}")
        if data_dir.exists():
            shutil.rmtree(data_dir)
        data_dir.mkdir(parents=True, mode=0o700)
        state = ClusterState(data_dir=str(data_dir), port=_free_port(), password=secrets.token_hex(16),
                             run_user=run_user)
        if run_user is not None:
            shutil.chown(data_dir, run_user, run_user)
        self.progress(f"initialising a PostgreSQL cluster in {data_dir}")
        pwfile = data_dir.parent / "initdb.pw"
        pwfile.write_text(state.password + "\n")
        if run_user is not None:
            shutil.chown(pwfile, run_user, run_user)
        try:
            result = self._run(state, [str(bindir / "initdb"), "-D", str(data_dir), "-U", DB_USER,
                                       f"--pwfile={pwfile}", "-E", "UTF8", "--locale=C.UTF-8",
                                       "--auth-local=trust", "--auth-host=scram-sha-256"])
        finally:
            pwfile.unlink(missing_ok=True)
        if result.returncode != 0:
            raise ClusterError(f"initdb failed: {(result.stderr or result.stdout).strip()[-500:]}")
        with open(data_dir / "postgresql.conf", "a") as conf:
            conf.write("\n# gridwatch\nlisten_addresses = '127.0.0.1'\nmax_connections = 200\n"
                       "shared_buffers = 256MB\nwork_mem = 16MB\nmaintenance_work_mem = 256MB\n"
                       "max_wal_size = 2GB\ntimezone = 'UTC'\n")
        self._save(state)
        return state

    def _remove_stale_locks(self, state: ClusterState) -> None:
        """After a crash the pid file (and socket lock) may name a pid now used by another
        process; PostgreSQL would refuse to start, so remove them once we know it is dead."""
        data = Path(state.data_dir)
        for lock in [data / "postmaster.pid", *data.glob(".s.PGSQL.*.lock")]:
            if lock.exists():
                self.progress(f"removing stale lock file {lock}")
                lock.unlink()
        for sock in data.glob(".s.PGSQL.*[0-9]"):
            sock.unlink(missing_ok=True)

    def _create_database(self) -> None:
        import psycopg

        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DB_NAME]).fetchone()
            if not exists:
                self.progress(f"creating database {DB_NAME}")
                conn.execute(f"CREATE DATABASE {DB_NAME}")

    def _run(self, state: ClusterState, cmd: list[str], env: dict[str, str] | None = None
             ) -> subprocess.CompletedProcess:
        """`cmd` as the account that runs the cluster, with no PG* variable of ours but `env`."""
        env = {**{k: v for k, v in os.environ.items() if not k.startswith("PG")}, **(env or {})}
        env.update(LANG="C.UTF-8", LC_ALL="C.UTF-8")
        kwargs: dict = {}
        if state.run_user is not None:
            kwargs = {"user": state.run_user, "group": pwd.getpwnam(state.run_user).pw_gid, "extra_groups": []}
        return subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=state.data_dir, **kwargs)


class Replica(Cluster):
    """A streaming read replica of the embedded cluster, for tests and demos.

    A copy made by `pg_basebackup -R` (which writes standby.signal and the connection to
    the primary), beside the primary's data folder and run by the same account, on its own
    loopback port and socket; `replica.json` in the home says where. The primary's pg_hba
    (initdb: local trust, host scram-sha-256) already admits replication: over the socket
    without a password, over TCP with the cluster's password."""

    what = "the read replica"

    def __init__(self, primary: Cluster, progress: Progress | None = None) -> None:
        super().__init__(primary.home, pg_user=primary.pg_user, progress=progress or primary.progress)
        self.primary = primary
        self.state_file = self.home / "replica.json"

    def url(self, dbname: str = DB_NAME) -> str:
        if self.state() is None:
            raise ClusterError(f"no read replica in {self.home}: run `gridwatch db replica start`")
        return super().url(dbname)

    def status(self) -> dict:
        """As the primary's status, and whether the replica streams from it."""
        status = super().status()
        status["streaming"] = self._receiver() == "streaming" if status["running"] else False
        return status

    def start(self, fresh: bool = False) -> str:
        """Copy the running primary on first use (or with `fresh`, again), start the copy if
        stopped, wait until it streams; returns its URL. With the primary down, a copy made
        before is started all the same (reads go on from it; it streams once the primary is
        back); without one there is nothing to copy."""
        bindir = pg_bindir()
        primary = self.primary.state()
        state = previous = self.state()
        if primary is None or self.primary.pid() is None:
            if fresh or state is None or not (Path(state.data_dir) / "PG_VERSION").exists():
                raise ClusterError(f"the embedded PostgreSQL in {self.home} is not running, so there is nothing "
                                   f"to copy: run `gridwatch db start` first")
            if self.pid() is None:
                self._start_server(bindir, state)
            self.progress("the primary is not running: the replica serves what it has, and streams once the "
                          "primary is back")
            return self.url()
        if state is not None and fresh:
            self.stop()
            state = None
        if state is None or not (Path(state.data_dir) / "PG_VERSION").exists():
            # a new copy keeps the port it had, so GRIDWATCH_READ_DATABASE_URL stays right
            port = previous.port if previous is not None and _port_free(previous.port) else _free_port()
            state = self._copy(bindir, primary, port)
        if self.pid() is None:
            self._start_server(bindir, state)
        self._wait_streaming(Path(state.data_dir) / "server.log")
        return self.url()

    def _copy(self, bindir: Path, primary: ClusterState, port: int) -> ClusterState:
        data_dir = Path(primary.data_dir).parent / "replica"
        if data_dir.exists():
            shutil.rmtree(data_dir)
        data_dir.mkdir(parents=True, mode=0o700)
        if primary.run_user is not None:
            shutil.chown(data_dir, primary.run_user, primary.run_user)
        state = ClusterState(data_dir=str(data_dir), port=port, password=primary.password,
                             run_user=primary.run_user)
        # Over TCP the password is needed, and -R writes it into the replica's primary_conninfo.
        env = {} if primary.socket_dir else {"PGPASSWORD": primary.password}
        self.progress(f"copying the embedded cluster into {data_dir} (pg_basebackup)")
        result = self._run(state, [str(bindir / "pg_basebackup"), "-D", str(data_dir), "-R", "-X", "stream",
                                   "-c", "fast", "-h", primary.socket_dir or "127.0.0.1", "-p", str(primary.port),
                                   "-U", DB_USER, "-w"], env)
        if result.returncode != 0:
            shutil.rmtree(data_dir, ignore_errors=True)
            raise ClusterError(f"pg_basebackup failed: {(result.stderr or result.stdout).strip()[-500:]}")
        # the primary's log and socket lock, copied with the rest
        for copied in [data_dir / "server.log", *data_dir.glob(".s.PGSQL.*")]:
            copied.unlink(missing_ok=True)
        self._save(state)
        return state

    def _receiver(self) -> str | None:
        """The WAL receiver's status (`streaming` once it follows the primary), None if none."""
        import psycopg

        with psycopg.connect(self.url("postgres"), autocommit=True, connect_timeout=5) as conn:
            row = conn.execute("SELECT status FROM pg_stat_wal_receiver").fetchone()
        return row[0] if row else None

    def _wait_streaming(self, log: Path, timeout_s: float = 30.0) -> None:
        """A copy that runs is a replica only once it streams: one of a cluster since made
        anew, or too old for the WAL the primary still keeps, starts but never streams."""
        deadline = time.monotonic() + timeout_s
        while self._receiver() != "streaming":
            if time.monotonic() > deadline:
                raise ClusterError(f"the read replica runs but does not stream from the primary (see {log}: "
                                   f"{_tail(log)}); make a new copy with `gridwatch db replica start --fresh`")
            time.sleep(0.2)


def _current_user() -> str:
    return pwd.getpwuid(os.geteuid()).pw_name


def _can_reach(user: str, path: Path) -> bool:
    """True when `user` may traverse every folder down to `path` (checked as that user)."""
    entry = pwd.getpwnam(user)
    result = subprocess.run(["test", "-x", str(path)], user=entry.pw_uid, group=entry.pw_gid, extra_groups=[])
    return result.returncode == 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _tail(log: Path, lines: int = 5) -> str:
    try:
        text = log.read_text(errors="replace")
    except OSError:
        # The log belongs to the run user and may not be readable here.
        return "(no log)"
    return " | ".join(text.strip().splitlines()[-lines:])

