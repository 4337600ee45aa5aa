"""A private PostgreSQL cluster under ``$ROMANARCHIVE_HOME/pgdata``.

The cluster is made with the machine's own ``initdb``/``pg_ctl``; when running as root they run as the
``postgres`` user, because PostgreSQL refuses to run as root.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg

from romanarchive.config import Settings

DB_NAME = "romanarchive"
EXTENSIONS = ("pg_sphere", "q3c")
_INSTALL_HINT = (
    "install the PostgreSQL server and the sky-index extensions, e.g. on Debian/Ubuntu: "
    "apt-get install -y postgresql-15 postgresql-15-pgsphere postgresql-15-q3c"
)


class EmbeddedError(RuntimeError):
    """The embedded cluster cannot be created, started or reached."""


def find_pg_bin(name: str) -> str:
    """Locate a PostgreSQL server binary.

    Parameters
    ----------
    name
        Binary name such as ``initdb`` or ``pg_ctl``.

    Returns
    -------
    str
        Absolute path of the newest version found.
    """
    found = shutil.which(name)
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=_version_key)
    if candidates:
        return candidates[-1]
    if found:
        return found
    raise EmbeddedError(f"PostgreSQL binary '{name}' not found; {_INSTALL_HINT}")


def _version_key(path: str) -> float:
    try:
        return float(Path(path).parts[-3])
    except ValueError:
        return 0.0


@dataclass
class EmbeddedCluster:
    """Manage the private cluster of one archive home."""

    pgdata: Path
    port: int

    @classmethod
    def from_settings(cls, settings: Settings) -> EmbeddedCluster:
        """Build the handle for a settings object."""
        return cls(settings.pgdata, settings.embedded_port)

    @property
    def url(self) -> str:
        """SQLAlchemy URL of the archive database in this cluster."""
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{DB_NAME}"

    @property
    def logfile(self) -> Path:
        """Server log."""
        return self.pgdata.parent / "postgresql.log"

    def _as_postgres(self) -> dict[str, object]:
        # PostgreSQL refuses to run as root: drop to the postgres account for server commands.
        if os.geteuid() != 0:
            return {}
        try:
            pw = pwd.getpwnam("postgres")
        except KeyError as exc:
            raise EmbeddedError(f"running as root but there is no 'postgres' user; {_INSTALL_HINT}") from exc
        return {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": []}

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(list(args), check=False, capture_output=True, text=True, **self._as_postgres())  # type: ignore[call-overload, no-any-return]

    def _prepare_dirs(self) -> None:
        self.pgdata.parent.mkdir(parents=True, exist_ok=True)
        if os.geteuid() != 0:
            return
        pw = pwd.getpwnam("postgres")
        for parent in (*reversed(self.pgdata.parent.parents), self.pgdata.parent):
            st = parent.stat()
            if st.st_uid != pw.pw_uid and not st.st_mode & 0o001:
                raise EmbeddedError(
                    f"the postgres user cannot enter {parent}, so it cannot keep a cluster under it; "
                    f"set ROMANARCHIVE_HOME to a folder it can reach (e.g. /var/lib/romanarchive) "
                    f"or allow traversal with: chmod o+x {parent}"
                )
        self.pgdata.mkdir(mode=0o700, exist_ok=True)
        os.chown(self.pgdata, pw.pw_uid, pw.pw_gid)
        self.logfile.touch(exist_ok=True)
        os.chown(self.logfile, pw.pw_uid, pw.pw_gid)

    def initialised(self) -> bool:
        """Whether initdb has run."""
        return (self.pgdata / "PG_VERSION").exists()

    def running(self) -> bool:
        """Whether the server of this data directory is up."""
        if not self.initialised():
            return False
        return self._run(find_pg_bin("pg_ctl"), "status", "-D", str(self.pgdata)).returncode == 0

    def init(self) -> None:
        """Create the cluster (trust auth on loopback only)."""
        self._prepare_dirs()
        if self.initialised():
            return
        res = self._run(
            find_pg_bin("initdb"), "-D", str(self.pgdata), "-U", "postgres", "--auth=trust",
            "--encoding=UTF8", "--locale=C.UTF-8",
        )
        if res.returncode != 0:
            raise EmbeddedError(f"initdb failed: {res.stderr.strip() or res.stdout.strip()}")
        conf = self.pgdata / "postgresql.conf"
        with conf.open("a") as fh:
            fh.write(
                "\n# romanarchive embedded cluster\n"
                f"port = {self.port}\nlisten_addresses = '127.0.0.1'\n"
                f"unix_socket_directories = '{self.pgdata}'\n"
                "shared_buffers = 512MB\nwork_mem = 64MB\nmaintenance_work_mem = 512MB\n"
                "max_connections = 200\nfsync = on\nsynchronous_commit = off\n"
                # A single-machine archive streams no WAL to replicas: with minimal WAL a table created and loaded
                # in one transaction (catalog loads, Level 5 publication) is written once and synced at commit.
                "wal_level = minimal\nmax_wal_senders = 0\n"
            )

    def start(self, timeout: float = 60.0) -> None:
        """Initialise if needed, start the server and create the database."""
        self.init()
        if not self.running():
            res = self._run(
                find_pg_bin("pg_ctl"), "start", "-D", str(self.pgdata), "-l", str(self.logfile),
                "-w", "-t", str(int(timeout)), "-o", f"-p {self.port}",
            )
            if res.returncode != 0:
                tail = self.logfile.read_text(errors="replace")[-2000:] if self.logfile.exists() else ""
                raise EmbeddedError(f"pg_ctl start failed (port {self.port} in use?): {res.stderr.strip()}\n{tail}")
        self._wait_ready(timeout)
        ensure_database(f"postgresql://postgres@127.0.0.1:{self.port}/postgres", DB_NAME)

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with psycopg.connect(f"postgresql://postgres@127.0.0.1:{self.port}/postgres", connect_timeout=2):
                    return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def stop(self) -> None:
        """Stop the server (fast shutdown)."""
        if self.running():
            res = self._run(find_pg_bin("pg_ctl"), "stop", "-D", str(self.pgdata), "-m", "fast", "-w")
            if res.returncode != 0:
                raise EmbeddedError(f"pg_ctl stop failed: {res.stderr.strip()}")


def ensure_database(admin_url: str, name: str) -> None:
    """Create database ``name`` and the sky extensions in it if missing.

    Parameters
    ----------
    admin_url
        libpq URL of a database on the same server to connect to first.
    name
        Database to create.
    """
    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')
    target = admin_url.rsplit("/", 1)[0] + f"/{name}"
    check_extensions(target)


def check_extensions(url: str) -> None:
    """Check that ``pg_sphere`` and ``q3c`` can be created, or say what to install.

    The extensions themselves are created by the first Alembic migration, the only DDL authority.

    Parameters
    ----------
    url
        libpq URL of the database.
    """
    with psycopg.connect(url, autocommit=True) as conn:
        available = {r[0] for r in conn.execute("SELECT name FROM pg_available_extensions")}
        missing = [e for e in EXTENSIONS if e not in available]
        if missing:
            raise EmbeddedError(f"PostgreSQL extension(s) {', '.join(missing)} not installed; {_INSTALL_HINT}")
