"""Fresh pytest processes forked from one interpreter that has already imported the suite's libraries.

A `python -m pytest` process of the quiz suite spends ~2-3 CPU-s before its first test
(interpreter start-up, importing FastAPI, pydantic, SQLAlchemy and the pytest plugins, building
pydantic models) and ~0.1-0.5 s running a handful of tests. The why-study needs ~80 such
processes (12 factorial cells x 3, the floor's one-test processes), which the default budget
cannot pay at ~3 s each. `ForkServer` is an executor for `suitebench.runner.run_benchmark` that
pays the imports once: a *zygote* interpreter imports `preload` (and the pytest plugins
registered by entry point, unless its children are not to load them), then forks one child
per repetition (~0.2 s each); the child is a fresh pytest session (its own process, session,
fixtures, app and database, environment and working directory as the runner asks, `random`
reseeded) that simply does not repeat the imports.

What differs from `python -m pytest`, and why it does not matter to per-test times: imported
modules and the objects built at import time come from the zygote (in a fresh process they
are built before the first test as well); they are frozen out of the cyclic garbage collector
(`gc.freeze`, to avoid copy-on-write of the whole heap), so a full collection in a child scans
less than in a fresh process; pytest warns in the child's log that modules it would have
rewritten for asserts were imported already. The why-study's children also load no
third-party pytest plugin (`NO_PLUGIN_AUTOLOAD`; the suite uses none, the main run's processes
load those installed). Nothing the suite does lazily (the first request through an app,
SQLAlchemy's statement caches, the first password hash) happens in the zygote: that still
costs every child, as in a fresh process. Process wall times are not comparable with fresh
processes' (no start-up); runs measured this way say so in their metadata (`process_model`),
and nothing compares their wall times with other runs'.

Commands it forks: `python -m pytest ARGS` and `python -c SCRIPT ARGS` (a collection script);
anything else (another interpreter, `-n` workers) runs as a normal subprocess.
"""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from quiz_study.errors import StudyError
from suitebench import children
from suitebench.runner import ProcessOutcome, execute_process

# What the zygote imports: the suite's libraries and the study's packages the suite's conftest
# imports. The pytest plugins registered by entry point are imported too (see _ZYGOTE).
SUITE_PRELOAD: tuple[str, ...] = (
    "fastapi",
    "sqlalchemy",
    "pydantic",
    "httpx",
    "starlette.testclient",
    "quiz_api.app",
    "quiz_api.deps",
    "quiz_api.models",
    "quiz_api.passwords",
    "quiz_api.settings",
    "quiz_architectures.architectures",
    "quiz_architectures.clients",
    "quiz_architectures.isolation",
    "quiz_architectures.pg",
    "suitebench.plugin",
)
# What the why-study's children add to the runner's environment: the suite uses no third-party
# pytest plugin, so those installed for the project's own tests (hypothesis, schemathesis, xdist,
# pytest-benchmark, anyio, randomly) are not loaded; registering them costs ~0.1 s a process.
# The timing plugin is loaded by name (`-p suitebench_timings`, suitebench.plugin.plugin_args).
NO_PLUGIN_AUTOLOAD: dict[str, str] = {"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
PROCESS_MODEL = "forked from a zygote that imported the suite's libraries (quiz_study.forkserver)"
START_TIMEOUT_S = 120.0

# The zygote: reads one JSON request per line on stdin, forks, answers on stdout with the
# child's pid and then its exit status. The child replaces fds 0-2 before anything can print.
_ZYGOTE = r"""
import gc, importlib, importlib.metadata, json, os, random, sys, time
started = time.perf_counter()
channel = os.fdopen(os.dup(1), "w", buffering=1)
requests = os.fdopen(os.dup(0), "r")
devnull = os.open(os.devnull, os.O_RDONLY)
os.dup2(devnull, 0)
os.dup2(2, 1)
failed = []
for name in json.loads(sys.argv[1]):
    try:
        importlib.import_module(name)
    except Exception as problem:
        failed.append(f"{name}: {problem}")
        break
import pytest
if not failed and not os.environ.get("PYTEST_DISABLE_PLUGIN_AUTOLOAD"):
    for entry in importlib.metadata.entry_points(group="pytest11"):
        try:
            entry.load()
        except Exception as problem:
            failed.append(f"{entry.value}: {problem}")
gc.collect()
gc.freeze()
channel.write(json.dumps({"ready": True, "import_s": time.perf_counter() - started, "failed": failed}) + "\n")
for line in requests:
    request = json.loads(line)
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        code = 70
        try:
            os.setsid()
            log = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.dup2(log, 1)
            os.dup2(log, 2)
            os.close(log)
            channel.close()
            requests.close()
            os.chdir(request["cwd"])
            os.environ.clear()
            os.environ.update(request["env"])
            random.seed()
            argv = request["argv"]
            if argv[:2] == ["-m", "pytest"]:
                sys.argv = ["pytest", *argv[2:]]
                code = int(pytest.main(argv[2:]))
            else:
                sys.argv = ["-c", *argv[2:]]
                try:
                    exec(compile(argv[1], "<string>", "exec"), {"__name__": "__main__"})
                    code = 0
                except SystemExit as exit:
                    code = exit.code if isinstance(exit.code, int) else (0 if exit.code is None else 1)
        except BaseException:
            import traceback
            traceback.print_exc()
        finally:
            try:
                sys.stdout.flush()
                sys.stderr.flush()
            finally:
                os._exit(code)
    channel.write(json.dumps({"pid": pid}) + "\n")
    _, status = os.waitpid(pid, 0)
    channel.write(json.dumps({"pid": pid, "exit_code": os.waitstatus_to_exitcode(status)}) + "\n")
"""


def forkable(command: Sequence[str]) -> bool:
    """True when the zygote can run `command`: this interpreter with `-m pytest` (no xdist
    workers, which would be separate interpreters anyway) or `-c SCRIPT`."""
    command = list(command)
    if not hasattr(os, "fork") or len(command) < 2 or Path(command[0]) != Path(sys.executable):
        return False
    if command[1:3] == ["-m", "pytest"]:
        return "-n" not in command and not any(arg.startswith("--numprocesses") for arg in command)
    return command[1] == "-c" and len(command) >= 3


class ForkServer:
    """An executor (`suitebench.runner.Executor`) that forks fresh pytest processes from a zygote.

    Use as a context manager (the zygote is stopped on exit); the zygote starts at the first
    forkable command, with that command's environment and working directory, and is restarted
    when a later command asks for another environment or directory.

    Parameters
    ----------
    preload : sequence of str
        Modules the zygote imports (default `SUITE_PRELOAD`).
    start_timeout_s : float
        How long the zygote may take to import them.
    child_env : mapping, optional
        Variables added to every forked child's environment (e.g. `NO_PLUGIN_AUTOLOAD`); the
        zygote starts with them too, and then imports no plugin by entry point.
    """

    def __init__(
        self,
        *,
        preload: Sequence[str] = SUITE_PRELOAD,
        start_timeout_s: float = START_TIMEOUT_S,
        child_env: Mapping[str, str] | None = None,
    ):
        self.preload = tuple(preload)
        self.child_env = dict(child_env or {})
        self.start_timeout_s = start_timeout_s
        self.forked = 0
        self.started = 0
        self.import_s: float | None = None
        self._zygote: subprocess.Popen | None = None
        self._key: tuple[tuple[tuple[str, str], ...], str] | None = None
        self._log: Path | None = None
        self._log_kept: Path | None = None
        self._buffer = b""

    def __enter__(self) -> ForkServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def describe(self) -> dict[str, object]:
        """What a run's metadata records about the process model."""
        model = PROCESS_MODEL
        if self.child_env:
            model += "; children's environment adds " + ", ".join(f"{k}={v}" for k, v in self.child_env.items())
        return {"process_model": model, "preload": list(self.preload)}

    # ------------------------------------------------------------ zygote

    def _start(self, *, env: Mapping[str, str], cwd: Path) -> None:
        self.close()
        # The zygote's own output (import warnings, a crash) goes to a file of its own, kept only
        # when something went wrong (the error names it).
        handle, name = tempfile.mkstemp(prefix="quiz-forkserver-", suffix=".log")
        os.close(handle)
        self._log = Path(name)
        with open(self._log, "ab") as log:
            self._zygote = subprocess.Popen(
                [sys.executable, "-c", _ZYGOTE, json.dumps(list(self.preload))],
                env=dict(env),
                cwd=cwd,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                start_new_session=True,
            )
        self._buffer = b""
        self.started += 1
        ready = self._read(timeout_s=self.start_timeout_s)
        if ready is None or not ready.get("ready"):
            self.close(keep_log=True)
            raise StudyError(f"the fork server did not start; see {self._log_kept}")
        if ready.get("failed"):
            self.close(keep_log=True)
            raise StudyError(f"the fork server could not import {ready['failed'][0]}; see {self._log_kept}")
        self.import_s = float(ready["import_s"])
        self._key = (tuple(sorted(env.items())), str(cwd))

    def close(self, *, keep_log: bool = False) -> None:
        """Stop the zygote (children have all been waited for); its log goes unless `keep_log`."""
        zygote, self._zygote = self._zygote, None
        self._key = None
        if self._log is not None and not keep_log:
            self._log.unlink(missing_ok=True)
        if keep_log:
            # Named by the error being raised: a later close must not remove it.
            self._log_kept, self._log = self._log, None
        if zygote is None:
            return
        try:
            if zygote.stdin:
                zygote.stdin.close()
            zygote.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            _kill_group(zygote.pid)
            zygote.wait()
        finally:
            if zygote.stdout:
                zygote.stdout.close()

    def _read(self, *, timeout_s: float | None) -> dict | None:
        """The zygote's next JSON line, or None at end of file or after `timeout_s`."""
        assert self._zygote is not None and self._zygote.stdout is not None
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        stream = self._zygote.stdout
        with selectors.DefaultSelector() as selector:
            selector.register(stream, selectors.EVENT_READ)
            while b"\n" not in self._buffer:
                remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
                if remaining == 0.0 or not selector.select(remaining):
                    return None
                chunk = os.read(stream.fileno(), 65536)
                if not chunk:
                    return None
                self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return json.loads(line)

    # ------------------------------------------------------------ executor

    def __call__(
        self, command: Sequence[str], *, env: Mapping[str, str], cwd: Path, log_path: Path, timeout_s: float | None
    ) -> ProcessOutcome:
        if not forkable(command):
            return execute_process(command, env=env, cwd=cwd, log_path=log_path, timeout_s=timeout_s)
        env = {**env, **self.child_env}
        cwd = Path(cwd)
        if (
            self._zygote is None
            or self._zygote.poll() is not None
            or self._key != (tuple(sorted(env.items())), str(cwd))
        ):
            self._start(env=env, cwd=cwd)
        assert self._zygote is not None and self._zygote.stdin is not None
        request = {"argv": list(command[1:]), "env": dict(env), "cwd": str(cwd), "log": str(log_path)}
        started = time.perf_counter()
        try:
            self._zygote.stdin.write((json.dumps(request) + "\n").encode())
            self._zygote.stdin.flush()
        except OSError:
            self.close(keep_log=True)
            raise StudyError(f"the fork server stopped; see {self._log_kept}") from None
        pid = None
        record = None
        try:
            answer = self._read(timeout_s=self.start_timeout_s)
            if answer is None or "pid" not in answer:
                self.close(keep_log=True)
                raise StudyError(f"the fork server did not fork; see {self._log_kept}")
            pid = int(answer["pid"])
            # Recorded like the runner's own children, so that the run's watchdog (or a resume)
            # kills it should the runner die while it runs.
            record = children.record_child(Path(log_path).parent, pid)
            remaining = None if timeout_s is None else max(0.0, timeout_s - (time.perf_counter() - started))
            result = self._read(timeout_s=remaining)
            if result is None:
                wall_s = time.perf_counter() - started
                _kill_group(pid)
                result = self._read(timeout_s=30.0)
                if result is None:
                    self.close()
                self.forked += 1
                return ProcessOutcome(
                    exit_code=int(result["exit_code"]) if result else -signal.SIGKILL, wall_s=wall_s, timed_out=True
                )
        except BaseException:
            if pid is not None:
                _kill_group(pid)
            self.close()
            raise
        finally:
            if record is not None:
                children.forget_child(record)
        self.forked += 1
        return ProcessOutcome(exit_code=int(result["exit_code"]), wall_s=time.perf_counter() - started, timed_out=False)


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
