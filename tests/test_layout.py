"""The house in clear rooms: the import contracts hold (import-linter), the code is linted and
formatted as pyproject.toml says (ruff), and the contracts fail when a room imports what it
must not."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from quiz_study import paths

ROOT = paths.ROOT
BIN = Path(sys.executable).parent


def tool(name: str) -> str:
    found = shutil.which(name, path=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    if found is None:
        pytest.fail(f"{name} is not installed: pip install -e ./suitebench -e '.[dev]'")
    return found


def run(*command: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, env=env, timeout=120)


def test_import_contracts_are_kept():
    result = run(tool("lint-imports"))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "0 broken" in result.stdout


def test_import_contracts_fail_when_the_engine_imports_the_study(tmp_path):
    engine = ROOT / "suitebench" / "src" / "suitebench"
    shutil.copytree(engine, tmp_path / "suitebench", ignore=shutil.ignore_patterns("__pycache__"))
    stats = tmp_path / "suitebench" / "stats.py"
    stats.write_text(stats.read_text() + "\nfrom quiz_study import targets  # noqa: E402,F401\n")
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    result = run(tool("lint-imports"), env=env)
    assert result.returncode == 1
    assert "suitebench.stats -> quiz_study.targets" in result.stdout


def test_ruff_finds_nothing_to_lint():
    result = run(tool("ruff"), "check", ".")
    assert result.returncode == 0, result.stdout[-3000:]


def test_ruff_finds_nothing_to_format():
    result = run(tool("ruff"), "format", "--check", ".")
    assert result.returncode == 0, result.stdout[-3000:]
