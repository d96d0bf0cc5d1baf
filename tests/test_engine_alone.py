"""The engine stands alone: `suitebench` installs into a fresh virtual environment without the
quiz's or the study's stack, and measures, compares and gates a pytest suite that knows nothing
of the quiz (no --arch option anywhere).

No network: the environment is made with `venv`, the engine is installed from a wheel built here
(`pip install --no-index --no-deps`), and its dependencies are the distributions this interpreter
already has, copied in file by file; `pip check` then proves the requirements are met and
nothing else is there.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from quiz_study import paths

NOT_FOR_THE_ENGINE = ("fastapi", "uvicorn", "psycopg", "papermill", "nbconvert", "matplotlib", "starlette", "httpx")

SUITE = """\
import time


def test_sleeps_a_little():
    time.sleep(0.002)


def test_sums():
    assert sum(range(10_000)) == 49_995_000
"""


def requirement_closure(name: str) -> set[str]:
    """The distributions `pip install <name>` would install (its extras left out), as installed here."""
    seen: set[str] = set()
    pending = [name]
    while pending:
        current = metadata.distribution(pending.pop()).metadata["Name"].lower().replace("_", "-")
        if current in seen:
            continue
        seen.add(current)
        for text in metadata.requires(current) or []:
            requirement = Requirement(text)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                pending.append(requirement.name)
    return seen


def copy_distribution(name: str, site_packages: Path) -> None:
    """Put an installed distribution's files (and its .dist-info) into another site-packages."""
    distribution = metadata.distribution(name)
    for file in distribution.files or []:
        source = Path(distribution.locate_file(file))
        if file.parts[0] == ".." or not source.is_file():
            continue  # console scripts and the like live outside site-packages
        target = site_packages / file
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(source, target)
        except OSError:
            shutil.copy2(source, target)


@pytest.fixture(scope="module")
def engine_env(tmp_path_factory) -> Path:
    """A fresh venv holding the engine and exactly the distributions it requires."""
    root = tmp_path_factory.mktemp("engine-alone")
    subprocess.run([sys.executable, "-m", "venv", str(root / "venv")], check=True, capture_output=True)
    python = root / "venv" / "bin" / "python"
    site_packages = Path(
        subprocess.run(
            [python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    for name in requirement_closure("suitebench") - {"suitebench"}:
        copy_distribution(name, site_packages)
    wheels = root / "wheels"
    build = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--quiet", "-w", str(wheels)]
    subprocess.run([*build, str(paths.ROOT / "suitebench")], check=True, capture_output=True)
    (wheel,) = wheels.glob("suitebench-*.whl")
    install = [python, "-m", "pip", "install", "--no-index", "--no-deps", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*install, str(wheel)], check=True, capture_output=True)
    return python


def test_installing_the_engine_pulls_none_of_the_quiz_or_study_stack():
    closure = requirement_closure("suitebench")
    assert {"pytest", "numpy", "pandas", "scipy", "statsmodels", "tqdm"} <= closure
    assert not closure & set(NOT_FOR_THE_ENGINE)


def test_the_venv_has_the_engines_requirements_and_nothing_of_ours(engine_env):
    check = subprocess.run([engine_env, "-m", "pip", "check"], capture_output=True, text=True, cwd=engine_env.parent)
    assert check.returncode == 0, check.stdout + check.stderr
    for module in (*NOT_FOR_THE_ENGINE, "quiz_api", "quiz_architectures", "quiz_study", "sqlalchemy"):
        found = subprocess.run(
            [engine_env, "-c", f"import importlib.util as u; print(u.find_spec({module!r}) is None)"],
            capture_output=True,
            text=True,
            cwd=engine_env.parent,
        )
        assert found.stdout.strip() == "True", f"{module} is importable in the engine's venv"


def test_the_engine_alone_measures_records_a_baseline_and_checks_a_run(engine_env, tmp_path):
    suite = tmp_path / "suite"
    suite.mkdir()
    (suite / "test_small.py").write_text(SUITE)
    runs, store = tmp_path / "runs", tmp_path / "baselines"

    def engine(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [engine_env, "-m", "suitebench", *args], cwd=tmp_path, capture_output=True, text=True, timeout=300
        )

    def measure(run_id: str) -> None:
        # Two variants that differ by a pytest option: the assertion rewriting of the test module.
        result = engine(
            "run",
            "--suite",
            str(suite),
            "--variant",
            "plain=",
            "--variant",
            "no-rewrite=--assert=plain",
            "--repetitions",
            "5",
            "--warmup",
            "0",
            "--runs-dir",
            str(runs),
            "--run-id",
            run_id,
            "--no-progress",
        )
        assert result.returncode == 0, result.stdout + result.stderr

    measure("first")
    compared = engine("compare", "--run", "first", "--runs-dir", str(runs), "--level", "suite")
    assert compared.returncode == 0 and "no-rewrite compared with plain" in compared.stdout, compared.stderr
    recorded = engine(
        "baseline",
        "record",
        "main",
        "--run",
        "first",
        "--variant",
        "plain",
        "--runs-dir",
        str(runs),
        "--store-dir",
        str(store),
    )
    assert recorded.returncode == 0, recorded.stderr
    measure("second")
    checked = engine(
        "check", "main", "--run", "second", "--variant", "plain", "--runs-dir", str(runs), "--store-dir", str(store)
    )
    assert checked.returncode in (0, 1), checked.stdout + checked.stderr
    assert "run second" in checked.stdout
