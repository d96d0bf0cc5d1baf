"""PostgreSQL for the suite and the runner: a throwaway cluster, or a server named by a URL.

`postgres_server(url)` yields an admin URL: `url` itself when given (QUIZ_POSTGRES_URL, checked
by connecting), else the admin URL of a `throwaway_cluster()`. That cluster is initdb'd into a
temporary directory, listens only on a Unix socket in a private directory (no TCP port, so no
port to collide on and nobody else to connect), runs with the server's default settings (fsync
on) and, when we run as root, as an unprivileged system user (`postgres`, else `nobody`), since
the server refuses to run as root.

Teardown is one mechanism for every way the owning process can end: a watchdog process, in its
own session, blocks reading a pipe whose only writer is the owner. Leaving the `with` block
closes the pipe and waits for the watchdog; Ctrl-C, SIGTERM or SIGKILL of the owner (or the
runner killing the owner's process group) close it too. Then the watchdog runs
`pg_ctl stop -m immediate` and removes the directory. No signal handler or atexit hook is
needed, and none is installed (they would miss SIGKILL and fight the caller's own handlers).
Should the watchdog die as well (killed with its owner, a machine that stopped mid-run), the
cluster is an orphan: `sweep_dead_clusters`, run whenever a throwaway cluster starts, stops the
server of every `quiz-pg-*` directory whose owner and watchdog (named in its `owner.pid`) are
both gone, and removes the directory.

Also: admin-level helpers to create, clone and drop the databases the test architectures use.
"""

from __future__ import annotations

import glob
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from quiz_architectures.errors import ArchitectureError

# SQLAlchemy is imported inside the functions that need it: the runner and the CLI import this
# module, and SQLAlchemy alone takes ~0.2 s to import.

POSTGRES_URL_ENV = "QUIZ_POSTGRES_URL"
INSTALL_HINT = (
    "install the PostgreSQL server (apt-get install postgresql) or set "
    f"{POSTGRES_URL_ENV} to the admin URL of a running server, "
    "e.g. postgresql+psycopg://postgres:secret@localhost:5432/postgres"
)
SERVER_USERS: tuple[str, ...] = ("postgres", "nobody")
SUPERUSER = "postgres"
# The socket file is named .s.PGSQL.<port>; the directory is private, so any port will do.
SOCKET_PORT = 5432
# Unix socket paths are limited to 107 bytes on Linux.
_MAX_SOCKET_DIR = 90
CLUSTER_PREFIX = "quiz-pg-"
# In a cluster's directory: "<role> <pid> <start time>" of the process that started it and of
# its watchdog; while either lives, the cluster is not an orphan.
OWNER_FILE = "owner.pid"
# A cluster directory without an owner file is younger than this while it is being set up (or
# was made by a version that wrote none): left alone until then, and while its server runs.
SWEEP_GRACE_S = 60.0
# For correctness tests only, never for measurements: nothing is flushed to disk, so CREATE
# DATABASE and every commit stop waiting on fsync (a template clone drops from ~0.4 s to ~0.03 s).
NO_DURABILITY: Mapping[str, str] = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}
# Server settings worth recording next to measurements made on the server.
REPORTED_SETTINGS: tuple[str, ...] = (
    "server_version",
    "fsync",
    "synchronous_commit",
    "full_page_writes",
    "wal_level",
    "shared_buffers",
)

_WATCHDOG = r"""
import os, shutil, subprocess, sys
pg_ctl, data_dir, root_dir, uid = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
sys.stdin.buffer.read()  # returns at EOF: the owner closed the pipe or died
if os.path.exists(os.path.join(data_dir, "postmaster.pid")):
    subprocess.run(
        [pg_ctl, "stop", "-D", data_dir, "-m", "immediate", "-w", "-t", "60"],
        user=uid if uid >= 0 else None, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd="/",
    )
shutil.rmtree(root_dir, ignore_errors=True)
"""


# ---------------------------------------------------------------- binaries and users


@dataclass(frozen=True)
class Binaries:
    """The directory holding initdb, pg_ctl and postgres."""

    bindir: Path

    def __getitem__(self, name: str) -> str:
        return str(self.bindir / name)


def find_binaries(*, path: str | None = None, search: str = "/usr/lib/postgresql/*/bin") -> Binaries:
    """initdb and pg_ctl from PATH (`path` overrides it), else the newest directory matching
    `search` (Debian and Ubuntu keep the server programs off PATH).

    Raises
    ------
    ArchitectureError
        No candidate holds initdb, pg_ctl and postgres; the message names the fix.
    """
    found = shutil.which("initdb", path=path)
    candidates = [Path(found).resolve().parent] if found else []
    candidates += sorted((Path(d) for d in glob.glob(search)), key=_version_key, reverse=True)
    for directory in candidates:
        if all((directory / name).is_file() for name in ("initdb", "pg_ctl", "postgres")):
            return Binaries(directory)
    raise ArchitectureError(
        f"PostgreSQL server programs (initdb, pg_ctl) not found on PATH or in {search}; {INSTALL_HINT}"
    )


def _version_key(directory: Path) -> tuple[int, ...]:
    version = directory.parent.name
    return tuple(int(part) for part in version.split(".") if part.isdigit())


@dataclass(frozen=True)
class ServerUser:
    """Who the server processes run as; uid -1 means this process's own user."""

    name: str
    uid: int
    gid: int


def server_user(candidates: tuple[str, ...] = SERVER_USERS) -> ServerUser:
    """This process's user, or when that is root (the server refuses root) the first existing
    unprivileged system user of `candidates`."""
    import pwd  # POSIX only, like the server programs this is for

    if os.geteuid() != 0:
        return ServerUser(pwd.getpwuid(os.geteuid()).pw_name, -1, -1)
    for name in candidates:
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            continue
        return ServerUser(name, entry.pw_uid, entry.pw_gid)
    raise ArchitectureError(
        f"running as root and none of the users {', '.join(candidates)} exists to run PostgreSQL as; "
        f"create one (useradd --system postgres) or set {POSTGRES_URL_ENV}"
    )


# ---------------------------------------------------------------- the throwaway cluster


@dataclass(frozen=True)
class Cluster:
    """A running throwaway cluster."""

    admin_url: str
    root_dir: Path
    data_dir: Path
    socket_dir: Path
    postmaster_pid: int
    watchdog_pid: int
    user: str


def _run_as(user: ServerUser) -> dict[str, Any]:
    if user.uid < 0:
        return {}
    return {"user": user.uid, "group": user.gid, "extra_groups": []}


def _traversable(path: Path, user: ServerUser) -> bool:
    """Whether `user` can reach `path` (execute permission on it and every ancestor)."""
    if user.uid < 0:
        return True
    for directory in (path, *path.parents):
        info = directory.stat()
        if info.st_uid == user.uid:
            bit = 0o100
        elif info.st_gid == user.gid:
            bit = 0o010
        else:
            bit = 0o001
        if not info.st_mode & bit:
            return False
    return True


def _short_temp_dir(user: ServerUser) -> Path:
    """TMPDIR when the server user can reach it and the socket path fits, else /tmp."""
    base = Path(tempfile.gettempdir())
    if len(str(base)) > _MAX_SOCKET_DIR - 30 or not os.access(base, os.W_OK) or not _traversable(base, user):
        base = Path("/tmp")
    return Path(tempfile.mkdtemp(prefix=CLUSTER_PREFIX, dir=base))


# ---------------------------------------------------------------- orphans of dead runs


def _start_ticks(pid: int) -> int | None:
    """When `pid` started (clock ticks since boot, Linux /proc); None when unknown or gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rfind(")") + 2 :].split()
    return int(fields[19]) if len(fields) > 19 and fields[19].isdigit() else None


def _running(pid: int, ticks: int | None = None) -> bool:
    """Whether `pid` runs (not a zombie) and, when `ticks` is given, is the process that started then."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    except OSError:
        text = ""
    if text:
        fields = text[text.rfind(")") + 2 :].split()
        if fields[0] == "Z":
            return False
        return ticks is None or _start_ticks(pid) == ticks
    try:  # no /proc: whether the pid exists at all
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _write_owner(root: Path, *, watchdog_pid: int) -> None:
    lines = [
        f"{role} {pid} {_start_ticks(pid) or '-'}" for role, pid in (("owner", os.getpid()), ("watchdog", watchdog_pid))
    ]
    (root / OWNER_FILE).write_text("\n".join(lines) + "\n")


def _owners(root: Path) -> list[tuple[int, int | None]] | None:
    """(pid, start ticks) of the processes named in `root`'s owner file; None without one."""
    try:
        text = (root / OWNER_FILE).read_text()
    except OSError:
        return None
    owners = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1].isdigit():
            owners.append((int(parts[1]), int(parts[2]) if parts[2].isdigit() else None))
    return owners


def _postmaster(data_dir: Path) -> int | None:
    """The pid of the server running on `data_dir`, checked by its working directory (the server
    runs in its data directory), so a pid reused by another process is never signalled."""
    try:
        pid = int((data_dir / "postmaster.pid").read_text().split("\n", 1)[0])
        running_in = Path(os.readlink(f"/proc/{pid}/cwd"))
    except (OSError, ValueError):
        return None
    return pid if running_in == data_dir.resolve() and _running(pid) else None


def _orphaned(root: Path, *, grace_s: float) -> bool:
    owners = _owners(root)
    if owners is not None:
        return not any(_running(pid, ticks) for pid, ticks in owners)
    try:
        age_s = time.time() - root.stat().st_mtime
    except OSError:
        return False
    return age_s > grace_s and _postmaster(root / "data") is None


def sweep_dead_clusters(*, temp_dirs: Iterable[Path | str] | None = None, grace_s: float = SWEEP_GRACE_S) -> list[Path]:
    """Stop and remove the throwaway clusters (`quiz-pg-*` in the temporary directories) whose
    owner and watchdog are both gone; those of running owners are left alone. Returns the
    directories removed. A server that does not stop within 10 s of SIGQUIT (PostgreSQL's
    immediate shutdown) is killed."""
    bases = [Path(d) for d in (temp_dirs if temp_dirs is not None else (tempfile.gettempdir(), "/tmp"))]
    removed = []
    for base in dict.fromkeys(bases):
        for root in sorted(base.glob(f"{CLUSTER_PREFIX}*")):
            if root.is_symlink() or not root.is_dir() or not _orphaned(root, grace_s=grace_s):
                continue
            server = _postmaster(root / "data")
            if server is not None:
                try:
                    os.kill(server, signal.SIGQUIT)
                    deadline = time.monotonic() + 10
                    while _running(server) and time.monotonic() < deadline:
                        time.sleep(0.02)
                    if _running(server):
                        os.kill(server, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
            shutil.rmtree(root, ignore_errors=True)
            if not root.exists():
                removed.append(root)
    return removed


def _check(result: subprocess.CompletedProcess, what: str, log: Path | None = None) -> None:
    if result.returncode == 0:
        return
    output = (result.stdout or "") + (result.stderr or "")
    if log is not None and log.exists():
        output += log.read_text(errors="replace")
    tail = " | ".join(line for line in output.strip().splitlines()[-4:])
    raise ArchitectureError(f"{what} failed (exit {result.returncode}): {tail}")


@contextmanager
def throwaway_cluster(
    *, binaries: Binaries | None = None, timeout_s: float = 60.0, server_settings: Mapping[str, str] | None = None
) -> Iterator[Cluster]:
    """Start a private PostgreSQL cluster; stop it and delete its files on exit (however it ends).

    Parameters
    ----------
    binaries
        Where initdb and pg_ctl are (default: `find_binaries()`).
    timeout_s
        How long `pg_ctl start` waits for the server to accept connections.
    server_settings
        Extra `-c name=value` server settings. None keeps the defaults (fsync on), which every
        measurement uses; the project's own correctness tests pass `NO_DURABILITY`.

    Yields
    ------
    Cluster
        `admin_url` connects as the superuser to the `postgres` database over the socket.

    Raises
    ------
    ArchitectureError
        Missing binaries (naming the fix), no unprivileged user, initdb or start-up failure.
    """
    binaries = binaries or find_binaries()
    user = server_user()
    # Orphans of dead runs (owner and watchdog killed together) are removed before adding one.
    sweep_dead_clusters()
    root = _short_temp_dir(user)
    data_dir, socket_dir, log = root / "data", root / "socket", root / "server.log"
    socket_dir.mkdir()
    if user.uid >= 0:
        for path in (root, socket_dir):
            os.chown(path, user.uid, user.gid)
    # Started before anything else exists to clean up, so every later failure is cleaned up too.
    watchdog = subprocess.Popen(
        [sys.executable, "-I", "-c", _WATCHDOG, binaries["pg_ctl"], str(data_dir), str(root), str(user.uid)],
        stdin=subprocess.PIPE,
        start_new_session=True,
        cwd="/",
    )
    try:
        _write_owner(root, watchdog_pid=watchdog.pid)
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C", "HOME": str(root)}
        # --no-sync: the cluster is thrown away, so initdb's own final flush buys nothing; the
        # server itself keeps its defaults (fsync on), as the measurements must.
        initdb = subprocess.run(
            [
                binaries["initdb"],
                "-D",
                str(data_dir),
                "-U",
                SUPERUSER,
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ],
            capture_output=True,
            text=True,
            env=env,
            cwd=root,
            **_run_as(user),
        )
        _check(initdb, "initdb")
        options = f"-c listen_addresses='' -k {shlex.quote(str(socket_dir))} -p {SOCKET_PORT}"
        options += "".join(f" -c {name}={shlex.quote(value)}" for name, value in (server_settings or {}).items())
        # Own session: a Ctrl-C meant for us must not reach the server before we stop it.
        start = subprocess.run(
            [
                binaries["pg_ctl"],
                "start",
                "-D",
                str(data_dir),
                "-l",
                str(log),
                "-w",
                "-t",
                str(int(timeout_s)),
                "-o",
                options,
            ],
            capture_output=True,
            text=True,
            env=env,
            cwd=root,
            start_new_session=True,
            **_run_as(user),
        )
        _check(start, "pg_ctl start", log)
        postmaster_pid = int((data_dir / "postmaster.pid").read_text().split("\n", 1)[0])
        yield Cluster(
            admin_url=f"postgresql+psycopg://{SUPERUSER}@/postgres?host={socket_dir}&port={SOCKET_PORT}",
            root_dir=root,
            data_dir=data_dir,
            socket_dir=socket_dir,
            postmaster_pid=postmaster_pid,
            watchdog_pid=watchdog.pid,
            user=user.name,
        )
    finally:
        watchdog.stdin.close()
        watchdog.wait()


# ---------------------------------------------------------------- a server, given or thrown away


@contextmanager
def postgres_server(url: str | None = None, *, server_settings: Mapping[str, str] | None = None) -> Iterator[str]:
    """An admin URL: `url` when given (as is: `check_connection` it first), else a throwaway
    cluster's (started with `server_settings`), stopped on exit."""
    if url:
        yield normalize_url(url)
        return
    with throwaway_cluster(server_settings=server_settings) as cluster:
        yield cluster.admin_url


def admin_engine(admin_url: str):  # noqa: ANN201 - sqlalchemy.Engine, imported lazily
    """An engine that runs each statement in autocommit (CREATE/DROP DATABASE need it) and keeps
    no connection open between uses (a pooled one would block DROP DATABASE of `postgres`)."""
    from sqlalchemy import create_engine
    from sqlalchemy.pool import NullPool

    return create_engine(admin_url, isolation_level="AUTOCOMMIT", poolclass=NullPool)


def check_connection(admin_url: str) -> dict[str, str]:
    """Connect once; return the server's REPORTED_SETTINGS. ArchitectureError when it cannot connect."""
    from sqlalchemy import text
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError

    try:
        if make_url(admin_url).get_backend_name() != "postgresql":
            raise ArchitectureError(
                f"not a PostgreSQL URL: {hide_password(admin_url)!r}; expected postgresql+psycopg://..."
            )
        engine = admin_engine(normalize_url(admin_url))
    except (ArgumentError, NoSuchModuleError) as problem:
        raise ArchitectureError(f"bad PostgreSQL URL {hide_password(admin_url)!r}: {problem}") from None
    try:
        with engine.connect() as connection:
            return {name: str(connection.execute(text(f"SHOW {name}")).scalar()) for name in REPORTED_SETTINGS}
    except OperationalError as problem:
        first = str(problem.orig or problem).strip().splitlines()[0]
        raise ArchitectureError(f"cannot connect to PostgreSQL at {hide_password(admin_url)}: {first}") from None
    finally:
        engine.dispose()


def normalize_url(url: str) -> str:
    """`postgresql://...` (which SQLAlchemy reads as psycopg2) as `postgresql+psycopg://...`."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def hide_password(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - an unparsable URL is shown as nothing rather than leaked
        return "<unparsable URL>"


def database_url(admin_url: str, database: str) -> str:
    """`admin_url` pointing at another database of the same server."""
    from sqlalchemy.engine import make_url

    return make_url(admin_url).set(database=database).render_as_string(hide_password=False)


def create_database(engine, name: str, *, template: str | None = None) -> None:  # noqa: ANN001
    """CREATE DATABASE, optionally as a copy of `template` (which must have no connections)."""
    from sqlalchemy import text

    quote = engine.dialect.identifier_preparer.quote
    clause = f" TEMPLATE {quote(template)}" if template else ""
    with engine.connect() as connection:
        connection.execute(text(f"CREATE DATABASE {quote(name)}{clause}"))


def drop_database(engine, name: str) -> None:  # noqa: ANN001
    """DROP DATABASE IF EXISTS, ending any session still connected to it (PostgreSQL 13+)."""
    from sqlalchemy import text

    with engine.connect() as connection:
        connection.execute(
            text(f"DROP DATABASE IF EXISTS {engine.dialect.identifier_preparer.quote(name)} WITH (FORCE)")
        )


@contextmanager
def server_environment(
    *, needed: bool, environ: Mapping[str, str]
) -> Iterator[tuple[dict[str, str], dict[str, Any] | None]]:
    """For the runner: `(extra_env, description)` for the child processes of a whole run.

    When `needed`, the children get QUIZ_POSTGRES_URL: the one in `environ` (checked by
    connecting), else that of a throwaway cluster started for the whole run, so server start-up
    is no part of any repetition. `description` (for metadata.json) says which, with the
    server's REPORTED_SETTINGS and the URL's password hidden; None when not `needed`.
    """
    if not needed:
        yield {}, None
        return
    url = environ.get(POSTGRES_URL_ENV) or None
    if url:
        check_connection(url)
    with postgres_server(url) as admin_url:
        description = {
            "source": POSTGRES_URL_ENV if url else "throwaway cluster",
            "url": hide_password(admin_url),
            "settings": check_connection(admin_url),
        }
        yield {POSTGRES_URL_ENV: admin_url}, description
