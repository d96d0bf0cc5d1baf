"""quiz_architectures.pg.sweep_dead_clusters: the throwaway clusters of dead runs are stopped and
removed, those of live owners are not.

No PostgreSQL needed: a cluster directory is written by hand, and its "server" is a `sleep`
started in the data directory (a server's working directory is its data directory, which is
how the sweep recognises the process named in postmaster.pid).
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

from quiz_architectures import pg


def start_ticks(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat[stat.rfind(")") + 2 :].split()[19])


def running(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat[stat.rfind(")") + 2] != "Z"


def dead_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def cluster(base: Path, name: str, *, owners: list[tuple[int, int | str]] | None, server: int | None = None) -> Path:
    root = base / f"{pg.CLUSTER_PREFIX}{name}"
    (root / "data").mkdir(parents=True)
    (root / "socket").mkdir()
    if owners is not None:
        lines = [f"{role} {pid} {ticks}" for role, (pid, ticks) in zip(("owner", "watchdog"), owners)]
        (root / pg.OWNER_FILE).write_text("\n".join(lines) + "\n")
    if server is not None:
        (root / "data" / "postmaster.pid").write_text(f"{server}\n{root / 'data'}\n")
    return root


def test_sweep_stops_and_removes_clusters_of_dead_owners_only(tmp_path):
    me = (os.getpid(), start_ticks(os.getpid()))
    orphan = cluster(tmp_path, "orphan", owners=[(dead_pid(), "-"), (dead_pid(), "-")])
    server = subprocess.Popen(["sleep", "60"], cwd=orphan / "data", start_new_session=True)
    try:
        (orphan / "data" / "postmaster.pid").write_text(f"{server.pid}\n{orphan / 'data'}\n")
        # This orphan's recorded server pid now belongs to another process (the test): never signalled.
        reused = cluster(tmp_path, "reused", owners=[(dead_pid(), "-")], server=os.getpid())
        live = cluster(tmp_path, "live", owners=[(dead_pid(), "-"), me])
        owner_pid_reused = cluster(tmp_path, "stale-ticks", owners=[(os.getpid(), me[1] + 1)])
        setting_up = cluster(tmp_path, "new", owners=None)
        leftover = cluster(tmp_path, "old", owners=None)
        an_hour_ago = time.time() - 3600
        os.utime(leftover, (an_hour_ago, an_hour_ago))

        removed = pg.sweep_dead_clusters(temp_dirs=[tmp_path])

        assert sorted(path.name for path in removed) == sorted(
            path.name for path in (orphan, reused, owner_pid_reused, leftover)
        )
        assert server.wait(timeout=10) != 0 and not orphan.exists()
        assert live.exists() and setting_up.exists()
    finally:
        server.kill()


def test_a_cluster_records_its_owner_and_watchdog(tmp_path):
    root = tmp_path / f"{pg.CLUSTER_PREFIX}mine"
    root.mkdir()
    watchdog = subprocess.Popen(["sleep", "60"])
    try:
        pg._write_owner(root, watchdog_pid=watchdog.pid)
        owners = dict(line.split(" ", 1) for line in (root / pg.OWNER_FILE).read_text().splitlines())
        assert owners == {
            "owner": f"{os.getpid()} {start_ticks(os.getpid())}",
            "watchdog": f"{watchdog.pid} {start_ticks(watchdog.pid)}",
        }
        assert pg.sweep_dead_clusters(temp_dirs=[tmp_path]) == [] and root.exists()
    finally:
        watchdog.kill()
        watchdog.wait()
