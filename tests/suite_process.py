"""Run the suite under study in a fresh pytest process and read its outcomes back (structured,
from the timing plugin's records, never from printed text)."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from harness import paths
from harness.timing_plugin import plugin_args
from harness.timings_io import read_records, records_to_frame


@dataclass(frozen=True)
class SuiteRun:
    exit_code: int
    output: str
    records: list[dict]

    @property
    def outcomes(self) -> dict[str, str]:
        return {r["nodeid"]: r["outcome"] for r in self.records if r.get("kind") == "test"}

    def frame(self):  # noqa: ANN201
        return records_to_frame(self.records)

    def failed(self) -> set[str]:
        return {node for node, outcome in self.outcomes.items() if outcome in {"failed", "error"}}


def run_suite(*args: str, workdir: Path, target: str | None = None, timeout: float = 600) -> SuiteRun:
    """Run `target` (default: the whole suite; or a node id relative to the project root)."""
    timings = workdir / "timings"
    timings.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUIZ_") and k != "PYTEST_ADDOPTS"}
    # Order is fixed unless the caller asks for pytest-randomly explicitly.
    order = [] if any("randomly" in arg for arg in args) else ["-p", "no:randomly"]
    command = [
        sys.executable, "-m", "pytest", target or str(paths.SUITE), "-p", "no:cacheprovider", "-q", *order,
        "-W", "ignore::DeprecationWarning", *plugin_args(), f"--harness-timings={timings}", *args,
    ]
    result = subprocess.run(command, cwd=paths.ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    return SuiteRun(result.returncode, result.stdout + result.stderr, read_records(timings))
