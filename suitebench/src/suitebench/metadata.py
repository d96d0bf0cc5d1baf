"""Describe the machine, interpreter, packages and source tree a measurement ran on.

Each `collect_*` function gathers one kind of fact and tolerates its source being absent
(no /proc, no git, a package not installed): a missing fact is `None`, never an exception.
`collect_metadata` combines them; `CHECKED_KEYS` names the facts that must match before
measurements may be pooled (a resumed run, a baseline comparison).
"""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import os
import platform
import socket
import subprocess
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

# The engine's own stack; a caller adds the packages of the suite it measures (`packages=`).
DEFAULT_PACKAGES: tuple[str, ...] = (
    "pytest",
    "pytest-xdist",
    "sqlalchemy",
    "numpy",
    "pandas",
    "scipy",
    "statsmodels",
)

# Facts that change what a measurement means: runs that differ in any of them are never pooled.
CHECKED_KEYS: tuple[tuple[str, ...], ...] = (
    ("python", "version"),
    ("python", "implementation"),
    ("python", "executable"),
    ("cpu", "model"),
    ("cpu", "logical_cores"),
    ("hostname",),
)

# Facts that must match before timings from two runs are compared (a baseline check): the
# host name and interpreter path may differ (fresh CI machines, virtualenvs), the hardware
# and Python version may not.
COMPARABLE_KEYS: tuple[tuple[str, ...], ...] = (
    ("python", "version"),
    ("python", "implementation"),
    ("cpu", "model"),
    ("cpu", "logical_cores"),
)


def collect_python() -> dict[str, Any]:
    """Interpreter version, implementation and executable."""
    return {
        "version": platform.python_version(),
        "implementation": platform.python_implementation(),
        "executable": sys.executable,
        "compiler": platform.python_compiler(),
    }


def collect_platform() -> dict[str, Any]:
    """Operating system and kernel."""
    return {
        "system": platform.system(),
        "release": platform.release(),
        "machine": platform.machine(),
        "platform": platform.platform(),
    }


def collect_hostname() -> str | None:
    try:
        return socket.gethostname() or None
    except OSError:
        return None


def collect_package_versions(packages: Iterable[str] = DEFAULT_PACKAGES) -> dict[str, str | None]:
    """Installed distribution versions; None for a package that is not installed."""
    versions: dict[str, str | None] = {}
    for name in packages:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None


def parse_cpu_model(cpuinfo: str) -> str | None:
    """The first `model name` (x86) or `Hardware`/`Processor`/`cpu model` (ARM, others) in /proc/cpuinfo text."""
    wanted = ("model name", "hardware", "processor", "cpu model", "cpu")
    found: dict[str, str] = {}
    for line in cpuinfo.splitlines():
        key, sep, value = line.partition(":")
        key, value = key.strip().lower(), value.strip()
        if sep and key in wanted and value and key not in found:
            found[key] = value
    for key in wanted:
        # "processor" on x86 is the CPU's index, not its name.
        if key in found and not found[key].isdigit():
            return found[key]
    return None


def collect_cpu(*, cpuinfo_path: Path = Path("/proc/cpuinfo")) -> dict[str, Any]:
    """CPU model, logical cores, cores this process may use, and the frequency governor."""
    text = _read_text(cpuinfo_path)
    model = parse_cpu_model(text) if text else None
    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable = None
    governor = _read_text(Path("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor"))
    return {
        "model": model or platform.processor() or None,
        "logical_cores": os.cpu_count(),
        "usable_cores": usable,
        "frequency_governor": governor.strip() if governor else None,
    }


def collect_load_average() -> list[float] | None:
    """1, 5 and 15 minute load averages."""
    try:
        return [round(value, 2) for value in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def parse_meminfo(meminfo: str) -> dict[str, int | None]:
    """MemTotal and MemAvailable from /proc/meminfo text, in bytes."""
    values: dict[str, int] = {}
    for line in meminfo.splitlines():
        key, sep, rest = line.partition(":")
        parts = rest.split()
        if sep and parts and parts[0].isdigit():
            factor = 1024 if len(parts) > 1 and parts[1].lower() == "kb" else 1
            values[key.strip()] = int(parts[0]) * factor
    return {"total_bytes": values.get("MemTotal"), "available_bytes": values.get("MemAvailable")}


def collect_memory(*, meminfo_path: Path = Path("/proc/meminfo")) -> dict[str, int | None]:
    text = _read_text(meminfo_path)
    return parse_meminfo(text) if text else {"total_bytes": None, "available_bytes": None}


def _git(args: list[str], *, cwd: Path) -> str | None:
    try:
        completed = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return completed.stdout.strip() if completed.returncode == 0 else None


def collect_git(*, root: Path) -> dict[str, Any]:
    """HEAD commit and whether the work tree differs from it; None where git or a commit is absent."""
    commit = _git(["rev-parse", "--verify", "--quiet", "HEAD"], cwd=root)
    status = _git(["status", "--porcelain", "--untracked-files=no"], cwd=root)
    # Without a commit there is nothing to be dirty against.
    dirty = None if status is None or not commit else bool(status)
    return {"commit": commit or None, "dirty": dirty}


def collect_timestamp() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def collect_metadata(*, packages: Iterable[str] = (), root: Path | None = None) -> dict[str, Any]:
    """Everything above, keyed by kind; `packages` adds to DEFAULT_PACKAGES, `root` is the source
    tree whose git state is recorded (default: the working directory)."""
    return {
        "collected_at": collect_timestamp(),
        "python": collect_python(),
        "platform": collect_platform(),
        "hostname": collect_hostname(),
        "cpu": collect_cpu(),
        "load_average": collect_load_average(),
        "memory": collect_memory(),
        "packages": collect_package_versions(dict.fromkeys([*DEFAULT_PACKAGES, *packages])),
        "git": collect_git(root=Path.cwd() if root is None else root),
    }


def _lookup(data: Mapping[str, Any], key: tuple[str, ...]) -> Any:
    value: Any = data
    for part in key:
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def describe_differences(differences: Mapping[str, tuple[Any, Any]]) -> str:
    """`cpu.model 'A' -> 'B', python.version ...`: the one wording used by every message."""
    return ", ".join(f"{key} {old!r} -> {new!r}" for key, (old, new) in differences.items())


def metadata_differences(
    a: Mapping[str, Any], b: Mapping[str, Any], *, keys: Iterable[tuple[str, ...]] = CHECKED_KEYS
) -> dict[str, tuple[Any, Any]]:
    """The checked facts on which two metadata dicts disagree: {"cpu.model": (a, b), ...}."""
    differences = {}
    for key in keys:
        left, right = _lookup(a, key), _lookup(b, key)
        if left != right:
            differences[".".join(key)] = (left, right)
    return differences
