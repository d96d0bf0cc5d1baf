"""Execute the study's notebooks with papermill, turning every failure into one clear StudyError.

The committed notebooks (``notebooks/*.ipynb``) carry no outputs; an executed copy, with the
parameters papermill injected after the ``parameters`` cell, is written to ``output_dir``. A
failing cell leaves that partially executed copy on disk (papermill saves after every cell), and
the error names the notebook, the cell and the exception.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from quiz_study import paths
from quiz_study.errors import StudyError

KERNEL_FIX = "python -m ipykernel install --user --name python3"
# ipykernel warns on stderr that its TCP transport is unencrypted (it only listens on
# localhost here); ERROR keeps the study's terminal output to what matters.
KERNEL_ARGUMENTS: tuple[str, ...] = ("--IPKernelApp.log_level=ERROR",)


def notebook_path(name: str, *, notebooks_dir: Path | str = paths.NOTEBOOKS) -> Path:
    """The committed notebook ``name`` (with or without ``.ipynb``).

    Raises
    ------
    StudyError
        No such notebook (the message lists those present).
    """
    filename = name if name.endswith(".ipynb") else f"{name}.ipynb"
    path = Path(notebooks_dir) / filename
    if not path.is_file():
        present = sorted(p.name for p in Path(notebooks_dir).glob("*.ipynb"))
        raise StudyError(f"no notebook {filename!r} in {notebooks_dir}; present: {', '.join(present) or 'none'}")
    return path


def check_kernel(kernel_name: str) -> None:
    """Raise StudyError, saying how to fix it, when the Jupyter kernel is not installed."""
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        KernelSpecManager().get_kernel_spec(kernel_name)
    except NoSuchKernel:
        fix = KERNEL_FIX.replace("python3", kernel_name)
        raise StudyError(
            f"Jupyter kernel {kernel_name!r} is not installed, so the notebooks cannot run; install it with: {fix}"
        ) from None


def _plain(value: Any) -> Any:
    """Parameters as plain literals: paths become strings (papermill writes them as source)."""
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def execute_notebook(
    name: str,
    *,
    parameters: Mapping[str, Any],
    output_dir: Path | str,
    kernel_name: str = "python3",
    timeout_s: float | None = 600.0,
    cwd: Path | str = paths.ROOT,
    notebooks_dir: Path | str = paths.NOTEBOOKS,
    start_timeout_s: float = 120.0,
) -> Path:
    """Execute ``notebooks_dir/name`` with papermill into ``output_dir/name``.

    Parameters
    ----------
    name : str
        Notebook file name, with or without ``.ipynb`` (e.g. ``"02_analysis"``).
    parameters : mapping
        Values injected after the cell tagged ``parameters``; plain literals (paths are
        turned into strings).
    output_dir : path
        Where the executed copy goes (created if missing).
    kernel_name : str
        Jupyter kernel; checked before anything runs.
    timeout_s : float or None
        Longest time one cell may run (None: no limit).
    cwd : path
        Working directory of the kernel (the project root, so ``import harness`` works
        without an install and relative paths in the parameters resolve there).
    notebooks_dir : path
        Where the committed notebooks are.
    start_timeout_s : float
        Longest wait for the kernel to start.

    Returns
    -------
    Path
        The executed notebook.

    Raises
    ------
    StudyError
        Missing notebook or kernel; a cell raised (the message names the notebook, the cell's
        execution count and the exception; the partially executed notebook is kept); a cell
        ran longer than ``timeout_s``; the kernel died or did not start.
    KeyboardInterrupt
        Interrupted (Ctrl-C reaches the kernel too; the partial notebook is kept).
    """
    import papermill
    from papermill.exceptions import PapermillExecutionError

    source = notebook_path(name, notebooks_dir=notebooks_dir)
    check_kernel(kernel_name)
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    target = output_dir / source.name
    try:
        papermill.execute_notebook(
            str(source),
            str(target),
            parameters=_plain(dict(parameters)),
            kernel_name=kernel_name,
            # The kernel's working directory goes to nbclient (which starts the kernel there)
            # instead of papermill's `cwd`, which would os.chdir this whole process and race
            # with notebooks executed in other threads.
            resources={"metadata": {"path": str(Path(cwd).absolute())}},
            execution_timeout=timeout_s,
            start_timeout=start_timeout_s,
            progress_bar=False,
            log_output=False,
            request_save_on_cell_execute=True,
            extra_arguments=list(KERNEL_ARGUMENTS),
        )
    except PapermillExecutionError as failure:
        if failure.ename == "KeyboardInterrupt":
            raise KeyboardInterrupt from None
        evalue = " ".join(str(failure.evalue).split())
        raise StudyError(
            f"notebook {source.name} failed in cell [{failure.exec_count}] (cell {failure.cell_index} of the "
            f"executed copy): {failure.ename}: {evalue}; partially executed notebook kept at {target}"
        ) from None
    except TimeoutError as timeout:
        # nbclient's CellTimeoutError and the kernel start-up timeout both derive from TimeoutError.
        raise StudyError(
            f"notebook {source.name} timed out ({' '.join(str(timeout).split())[:200]}); "
            f"partially executed notebook kept at {target}"
        ) from None
    except RuntimeError as problem:
        # Cell errors arrive as PapermillExecutionError; a RuntimeError here comes from the kernel
        # machinery (nbclient's DeadKernelError, jupyter_client's "Kernel didn't respond").
        raise StudyError(
            f"the kernel running notebook {source.name} failed ({type(problem).__name__}: "
            f"{' '.join(str(problem).split())[:300]}); partially executed notebook kept at {target}"
        ) from None
    return target
