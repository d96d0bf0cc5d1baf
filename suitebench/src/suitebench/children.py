"""No pytest process outlives the runner that started it.

Each repetition's process runs in a session of its own (so Ctrl-C reaches only the runner, which
then kills the child's whole process group, pytest-xdist workers included). That isolation also
means nothing kills the group when the runner itself is killed (SIGKILL, the OOM killer), and a
stale child could go on writing into a repetition's raw directory after a resume re-created it.
Three pieces close that gap:

* `record_child` writes `child.pid` (process group id and the kernel's start time of its leader)
  into the repetition's raw directory while the process runs; `forget_child` removes it.
* `watchdog(run_dir)`: a tiny shell process in its own session, started once per run, blocks
  reading a pipe whose only writer is the runner. When the runner dies, however it dies, the
  pipe closes and the watchdog kills every process group still recorded in the run's raw
  directories (a shell, not Python: it costs about a millisecond to start).
* `reap_stale_children(run_dir)`, called by a resume before it touches anything: kills the
  recorded groups that are still alive (checking the start time, so a reused pid is left alone)
  and waits until they are gone.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

CHILD_FILE = "child.pid"
_RAW_PATTERN = "raw/rep-*/" + CHILD_FILE

_WATCHDOG = r"""
while read -r _; do :; done
for record in "$1"/raw/rep-*/child.pid; do
    [ -f "$record" ] || continue
    read -r group started < "$record" || continue
    kill -s KILL -- "-$group" 2>/dev/null
done
"""


def process_start_ticks(pid: int) -> int | None:
    """When `pid` started, in clock ticks since boot (Linux /proc); None when unknown or gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may hold spaces: split after it.
    fields = text[text.rfind(")") + 2 :].split()
    try:
        return int(fields[19])
    except (IndexError, ValueError):
        return None


def _state(pid: int) -> str | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rfind(")") + 2 :].split(" ", 1)[0]


def _group_alive(group: int) -> bool:
    """Whether any process of the group is still running (zombies do not count: they cannot write,
    and a container's pid 1 may never reap them)."""
    proc = Path("/proc")
    if proc.is_dir():
        for entry in proc.iterdir():
            if not entry.name.isdigit():
                continue
            try:
                text = (entry / "stat").read_text()
            except OSError:
                continue
            fields = text[text.rfind(")") + 2 :].split()
            if len(fields) > 2 and fields[2] == str(group) and fields[0] != "Z":
                return True
        return False
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def record_child(directory: Path, pid: int) -> Path:
    """Write `directory/child.pid`: the group id (the child leads its own group) and start time."""
    path = Path(directory) / CHILD_FILE
    started = process_start_ticks(pid)
    path.write_text(f"{pid} {started if started is not None else '-'}\n")
    return path


def forget_child(path: Path) -> None:
    try:
        Path(path).unlink()
    except FileNotFoundError:
        pass


def _read_record(path: Path) -> tuple[int, int | None] | None:
    try:
        group_text, _, started_text = path.read_text().strip().partition(" ")
        return int(group_text), (int(started_text) if started_text.isdigit() else None)
    except (OSError, ValueError):
        return None


def reap_stale_children(run_dir: Path, *, timeout_s: float = 10.0) -> list[int]:
    """Kill the process groups recorded in `run_dir`'s raw directories that are still running.

    A record whose leader is alive with another start time belongs to a reused pid and is left
    alone; a record whose leader is gone while its group lives on (an xdist worker) is killed,
    since a group id is not reused while any member is alive. Waits until the groups are gone
    and removes their records. Returns the groups killed.

    Raises
    ------
    PermissionError
        A recorded group belongs to another user.
    TimeoutError
        A group was still alive after `timeout_s`.
    """
    if not hasattr(os, "killpg"):  # pragma: no cover - Windows has no process groups
        return []
    killed: list[int] = []
    for path in sorted(Path(run_dir).glob(_RAW_PATTERN)):
        record = _read_record(path)
        if record is not None:
            group, started = record
            now = process_start_ticks(group)
            reused = started is not None and now is not None and now != started
            if not reused and _group_alive(group):
                try:
                    os.killpg(group, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                killed.append(group)
        forget_child(path)
    deadline = time.monotonic() + timeout_s
    for group in killed:
        while _group_alive(group):
            if time.monotonic() > deadline:
                raise TimeoutError(f"process group {group} of an earlier run is still alive after SIGKILL")
            time.sleep(0.01)
    return killed


@contextmanager
def watchdog(run_dir: Path) -> Iterator[None]:
    """Kill the children recorded in `run_dir` if this process dies before leaving the block."""
    if os.name != "posix":  # pragma: no cover - no process groups to kill
        yield
        return
    try:
        process = subprocess.Popen(
            ["/bin/sh", "-c", _WATCHDOG, "suitebench-watchdog", str(Path(run_dir).absolute())],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd="/",
            # Its own session: a Ctrl-C or hang-up meant for the runner's terminal must not reach it.
            start_new_session=True,
        )
    except OSError:
        # No shell to run it: the run goes on without; a resume still reaps what a dead runner left.
        yield
        return
    try:
        yield
    finally:
        # Leaving normally: every child has been waited for and forgotten, so the watchdog finds
        # nothing to kill and exits.
        process.stdin.close()
        process.wait()
