"""A stand-in for the pytest processes the runner starts: it writes the timing plugin's records
for a fake suite whose per-test times follow a known model, so analyses can be checked against
the truth. Pass an instance as `executor=` to `suitebench.runner.run_benchmark` or
`quiz_study.floor.measure_floor`."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from quiz_architectures.architectures import Switches, resolve
from suitebench import runner

FAKE_TESTS: tuple[tuple[str, str], ...] = (("test_auth.py::test_login", "auth"), ("test_crud.py::test_create", "crud"))


class FakeProcesses:
    """`seconds(switches, test_index, workers)` gives each test's time; `wall(switches, tests,
    workers)` the process wall time (default: 1 s + the sum of test times / workers)."""

    def __init__(
        self,
        seconds: Callable[[Switches, int, int], float],
        *,
        tests: Sequence[tuple[str, str]] = FAKE_TESTS,
        wall: Callable[[Switches, float, int], float] | None = None,
    ):
        self.seconds = seconds
        self.tests = tuple(tests)
        self.wall = wall or (lambda switches, total, workers: 1.0 + total / workers)
        self.calls = 0

    def __call__(self, command, *, env, cwd, log_path, timeout_s):
        self.calls += 1
        arch = command[command.index("--arch") + 1]
        overrides = [command[i + 1] for i, arg in enumerate(command) if arg == "--switch"]
        workers = int(command[command.index("-n") + 1]) if "-n" in command else 1
        switches = resolve(arch, overrides)
        target = command[3]
        # A target is the suite directory, or the suite directory joined with one node id.
        tests = [t for t in self.tests if "::" not in target or target.endswith("/" + t[0])]
        raw = Path(next(arg for arg in command if arg.startswith("--suitebench-timings=")).split("=", 1)[1])
        total = 0.0
        with open(raw / "1-main.jsonl", "w") as handle:
            for index, (node, category) in enumerate(tests):
                for copy in range(switches.copies):
                    name = node if switches.copies == 1 else f"{node}[copy{copy}]"
                    seconds = self.seconds(switches, index, workers)
                    total += seconds
                    phase = {"duration_ns": int(seconds * 1e9), "counters": {}}
                    record = {
                        "schema_version": 1,
                        "kind": "test",
                        "nodeid": name,
                        "category": category,
                        "outcome": "passed",
                        "phases": {"setup": {"duration_ns": 1000, "counters": {}}, "call": phase},
                    }
                    handle.write(json.dumps(record) + "\n")
        log_path.write_text("fake\n")
        return runner.ProcessOutcome(exit_code=0, wall_s=self.wall(switches, total, workers), timed_out=False)


# log-time effects of switching each factor from level 0 to level 1; client has none.
EFFECTS = {
    "storage": -0.40,
    "isolation": -0.60,
    "reference_data": -0.20,
    "session_wiring": -0.10,
    "password_hash": 0.70,
    "client": 0.0,
}


TABLE_COST_S = {"recreate": 0.002, "rollback": 0.0, "none": 0.0}


# The level of each switch coded 1 in EFFECTS (the other level, the baseline's, is 0).
SWITCHED = {
    "storage": "memory",
    "isolation": "rollback",
    "reference_data": "per_session",
    "session_wiring": "injected",
    "password_hash": "production",
    "client": "httpx",
}
PATH_SWITCHES = ("storage", "reference_data", "session_wiring", "isolation")


class FakeSuite(FakeProcesses):
    """Pytest processes of a suite whose times follow known effects: log-time effects EFFECTS
    (categorical part, plus `interactions` {(a, b): log effect when both are switched}),
    +TABLE_COST_S per extra table per test, isolation=none = the floor (transactional's time
    minus 5 ms). Wall time: 1 s + 10 ms per test."""

    def __init__(
        self, seed: int = 0, *, interactions: dict[tuple[str, str], float] | None = None, noise_sd: float = 0.01
    ):
        self.rng = np.random.default_rng(seed)
        self.interactions = dict(interactions or {})
        self.noise_sd = noise_sd
        super().__init__(
            self.test_seconds, wall=lambda switches, total, workers: 1.0 + 0.01 * len(FAKE_TESTS) * switches.copies
        )

    @staticmethod
    def codes(switches: Switches) -> dict[str, int]:
        return {name: int(getattr(switches, name) == level) for name, level in SWITCHED.items()}

    def log_shift(self, switches: Switches) -> float:
        codes = self.codes(switches)
        shift = sum(EFFECTS[f] * codes[f] for f in EFFECTS)
        return shift + sum(v * codes[a] * codes[b] for (a, b), v in self.interactions.items())

    def test_seconds(self, switches: Switches, test_index: int, workers: int = 1) -> float:
        if switches.isolation == "none":
            return 0.02 + 0.01 * test_index
        base = 0.02 + 0.01 * test_index + 0.005
        transactional = self.log_shift(resolve("transactional", []))
        time = base * np.exp(self.log_shift(switches) - transactional)
        noise = np.exp(self.rng.normal(0, self.noise_sd))
        return float(time * noise + TABLE_COST_S[switches.isolation] * switches.extra_tables)


def fake_collector(**_options) -> pd.DataFrame:
    """The fake suite's tests, each after two warm-up tests of its category (which the fake suite
    does not time: the study must analyse the sampled tests alone)."""
    tests = [
        row
        for test, category in FAKE_TESTS
        for row in (
            *((f"{test.split('::')[0]}::test_warm_up_{category}_{k}", category) for k in (1, 2)),
            (test, category),
        )
    ]
    return pd.DataFrame(
        {"test": [t for t, _ in tests], "category": [c for _, c in tests], "markers": [()] * len(tests)}
    )
