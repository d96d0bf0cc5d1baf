"""Same-session A/B: a git revision and the working tree, measured interleaved in one session.

The revision is checked out into a temporary git worktree (``git worktree add --detach``), removed
afterwards however the run ends. Both become variants of one run: the same pytest arguments,
the revision's processes started in the worktree (so its packages, found first on ``sys.path``
from the working directory, are the ones imported), the working tree's in the repository. The
runner gives every variant the same suite path, so the revision's processes go through an
executor that points pytest at the worktree's copy of the suite instead. Drift between sessions
cannot enter such a comparison: this is the mode for shared CI machines (asv's ``continuous``,
Bencher's relative benchmarking).
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from suitebench import runner
from suitebench.errors import BenchError

WORKING_TREE = "working-tree"


@dataclass(frozen=True)
class ABRun:
    """What :func:`measure_against_revision` recorded: the run and its two variant labels."""

    run_dir: Path
    reference_label: str
    current_label: str
    revision: str
    result: runner.RunResult


def _git(args: Sequence[str], *, cwd: Path) -> str:
    try:
        completed = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False)
    except (OSError, subprocess.SubprocessError) as problem:
        raise BenchError(f"git {' '.join(args)} failed: {problem}") from None
    if completed.returncode != 0:
        message = (completed.stderr or completed.stdout).strip().splitlines()
        raise BenchError(f"git {' '.join(args)}: {message[-1] if message else 'failed'}")
    return completed.stdout.strip()


class _WorktreeExecutor:
    """Runs the revision's processes on the worktree's copy of the suite (see the module docstring)."""

    def __init__(self, inner: runner.Executor, *, worktree: Path, repository: Path) -> None:
        self.inner = inner
        self.worktree = str(worktree)
        self.repository = str(repository)

    def __call__(self, command, *, env, cwd, log_path, timeout_s):  # noqa: ANN001, ANN204 - runner.Executor
        if str(cwd) == self.worktree:
            command = [
                self.worktree + arg[len(self.repository) :] if arg.startswith(self.repository + "/") else arg
                for arg in command
            ]
        return self.inner(command, env=env, cwd=cwd, log_path=log_path, timeout_s=timeout_s)


def measure_against_revision(
    *,
    revision: str,
    suite_path: Path | str,
    pytest_args: Sequence[str] = (),
    runs_dir: Path | str,
    run_id: str | None = None,
    repetitions: int = 5,
    warmup: int = 1,
    seed: int | None = None,
    selection: Mapping[str, str] | None = None,
    timeout_s: float | str | None = None,
    progress: bool = True,
    executor: runner.Executor = runner.execute_process,
) -> ABRun:
    """Measure ``revision`` and the working tree interleaved (random order per block) in one run.

    Parameters
    ----------
    revision : str
        Any git revision (``HEAD``, ``main``, a sha).
    suite_path : path
        The suite, inside a git repository; the revision's copy is at the same relative path.
    pytest_args : sequence of str
        The arguments that make the variant measured (the same for both sides).
    runs_dir, run_id, repetitions, warmup, seed, selection, timeout_s, progress
        As in :func:`suitebench.runner.run_benchmark`.
    executor
        What runs one process (tests pass a fake).

    Returns
    -------
    ABRun
        The run's directory and labels: ``rev-<sha12>`` (reference) and ``working-tree``.

    Raises
    ------
    BenchError
        Not a git repository, unknown revision, a worktree that cannot be made, or the runner's
        errors.
    """
    suite = Path(suite_path).resolve()
    if not suite.exists():
        raise BenchError(f"suite not found: {suite_path}")
    repository = Path(_git(["rev-parse", "--show-toplevel"], cwd=suite if suite.is_dir() else suite.parent)).resolve()
    sha = _git(["rev-parse", "--verify", "--quiet", f"{revision}^{{commit}}"], cwd=repository)
    relative = suite.relative_to(repository)
    scratch = Path(tempfile.mkdtemp(prefix="suitebench-ab-"))
    worktree = scratch / "rev"
    try:
        _git(["worktree", "add", "--detach", str(worktree), sha], cwd=repository)
        if not (worktree / relative).exists():
            raise BenchError(f"revision {revision} has no {relative}")
        reference = f"rev-{sha[:12]}"
        variants = [
            runner.Variant(label=reference, pytest_args=tuple(pytest_args), cwd=str(worktree)),
            runner.Variant(label=WORKING_TREE, pytest_args=tuple(pytest_args), cwd=str(repository)),
        ]
        result = runner.run_benchmark(
            suite_path=suite,
            variants=variants,
            repetitions=repetitions,
            warmup=warmup,
            selection=selection,
            output_dir=runs_dir,
            run_id=run_id,
            seed=seed,
            schedule="random",
            timeout_s=timeout_s,
            progress=progress,
            executor=_WorktreeExecutor(executor, worktree=worktree, repository=repository),
            annotations={"ab": {"revision": revision, "sha": sha, "reference": reference, "current": WORKING_TREE}},
        )
    finally:
        try:
            _git(["worktree", "remove", "--force", str(worktree)], cwd=repository)
        except BenchError:
            pass  # removed below; `git worktree prune` forgets it
        shutil.rmtree(scratch, ignore_errors=True)
        try:
            _git(["worktree", "prune"], cwd=repository)
        except BenchError:
            pass
    return ABRun(
        run_dir=result.run_dir, reference_label=reference, current_label=WORKING_TREE, revision=sha, result=result
    )
