"""Architecture switches: one frozen dataclass, the two presets, parsing and validation.

The suite under study reads a `Switches` once (from `--arch`/`--switch` or the environment)
and passes it down: engine factory -> isolation fixture -> `create_app` -> overrides.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, fields, replace
from itertools import product
from typing import Literal, get_args

from quiz_architectures.errors import ArchitectureError

Storage = Literal["disk", "memory", "postgres"]
Isolation = Literal["recreate", "rollback", "truncate", "template", "none"]
ReferenceData = Literal["per_test", "per_session"]
SessionWiring = Literal["own", "injected"]
PasswordHashCost = Literal["test", "production"]
Client = Literal["testclient", "httpx"]

ARCH_ENV = "QUIZ_ARCH"
SWITCHES_ENV = "QUIZ_SWITCHES"


@dataclass(frozen=True)
class Switches:
    """Independent switches of the test architecture.

    storage:        disk = SQLite file; memory = SQLite :memory: on one shared connection;
                    postgres = a PostgreSQL database per process (or xdist worker) on a server
                    given by URL or started for the run (quiz_architectures.pg).
    isolation:      recreate = drop and create tables around every test;
                    rollback = the test runs inside an outer transaction that is rolled back;
                    truncate = empty the tables before every test (SQLite: DELETE FROM);
                    template = restore a copy prepared once per session before every test
                    (PostgreSQL: CREATE DATABASE ... TEMPLATE; SQLite: a file copy or an image);
                    none = nothing is reset (the floor: one test per process, data already there).
    reference_data: per_test = roles, difficulty levels and time periods seeded for each test;
                    per_session = seeded once and never reset.
    session_wiring: own = JWT helpers and middlewares open their own sessions (the seed's
                    Phase 1); injected = they use the session the test architecture provides.
    password_hash:  argon2 cost; both presets use `test` so the headline is about architecture.
    client:         testclient = Starlette's TestClient (app in a portal thread);
                    httpx = httpx.AsyncClient over ASGITransport (app on the test's event loop).

    Scale knobs (integers, for the scaling sweep; defaults leave the suite as written):
    extra_tables:    synthetic tables added to the schema (recreate drops and creates them too).
    reference_rows:  rows of a synthetic reference table, seeded like the other reference data.
    copies:          every test runs this many times (parametrized copies).
    """

    storage: Storage = "memory"
    isolation: Isolation = "rollback"
    reference_data: ReferenceData = "per_session"
    session_wiring: SessionWiring = "injected"
    password_hash: PasswordHashCost = "test"
    client: Client = "testclient"
    extra_tables: int = 0
    reference_rows: int = 0
    copies: int = 1

    def __post_init__(self) -> None:
        for name, allowed in SWITCH_VALUES.items():
            value = getattr(self, name)
            if value not in allowed:
                raise ArchitectureError(
                    f"unknown value {value!r} for switch {name!r}; choose one of {', '.join(allowed)}"
                )
        for name, (low, high) in SCALE_RANGES.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise ArchitectureError(f"scale knob {name!r} must be an integer from {low} to {high}, got {value!r}")
        reason = refusal_reason(self)
        if reason:
            raise ArchitectureError(f"refused combination {self.spec()}: {reason}")

    @property
    def slug(self) -> str:
        """Stable, file-name safe identifier: the values in field order."""
        return "-".join(str(getattr(self, f.name)) for f in fields(self))

    @property
    def label(self) -> str:
        """The preset name when it matches one, else the nearest preset plus its overrides."""
        for name, preset in PRESETS.items():
            if preset == self:
                return name
        base = min(PRESETS, key=lambda n: len(_differences(PRESETS[n], self)))
        return base + "+" + ",".join(f"{k}={v}" for k, v in _differences(PRESETS[base], self).items())

    def spec(self) -> str:
        return ",".join(f"{k}={v}" for k, v in asdict(self).items())

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Switches:
        return cls(**json.loads(text))

    def pytest_args(self) -> list[str]:
        """Command-line arguments that select exactly these switches in the suite under study."""
        base, _, overrides = self.label.partition("+")
        args = ["--arch", base]
        for assignment in filter(None, overrides.split(",")):
            args += ["--switch", assignment]
        return args


_TYPES = {
    "storage": Storage,
    "isolation": Isolation,
    "reference_data": ReferenceData,
    "session_wiring": SessionWiring,
    "password_hash": PasswordHashCost,
    "client": Client,
}

SWITCH_VALUES: dict[str, tuple[str, ...]] = {name: get_args(t) for name, t in _TYPES.items()}
SCALE_RANGES: dict[str, tuple[int, int]] = {
    "extra_tables": (0, 500),
    "reference_rows": (0, 100_000),
    "copies": (1, 100),
}
SINGLE_TEST_REASON = (
    "isolation=none resets nothing between tests, so it measures the floor one test per process; "
    "select exactly one test"
)


def refusal_reason(switches: Switches) -> str | None:
    """Why a combination cannot run the suite, or None when it can."""
    if switches.isolation == "rollback" and switches.session_wiring == "own":
        return (
            "sessions opened by the code under test live outside the test's outer transaction, "
            "so they cannot see its data and rollback cannot undo their writes "
            "(the seed's known limitation); use session_wiring=injected or isolation=recreate"
        )
    return None


def _differences(a: Switches, b: Switches) -> dict[str, str]:
    return {f.name: getattr(b, f.name) for f in fields(a) if getattr(a, f.name) != getattr(b, f.name)}


BASELINE = Switches(storage="disk", isolation="recreate", reference_data="per_test", session_wiring="own")
TRANSACTIONAL = Switches()
PRESETS: dict[str, Switches] = {"baseline": BASELINE, "transactional": TRANSACTIONAL}


def parse_assignment(text: str) -> tuple[str, str | int]:
    """Parse one `name=value` override."""
    name, sep, value = text.partition("=")
    name, value = name.strip().replace("-", "_"), value.strip()
    if not sep or not name or not value:
        raise ArchitectureError(f"bad switch {text!r}: expected name=value, e.g. storage=disk")
    if name in SCALE_RANGES:
        try:
            return name, int(value)
        except ValueError:
            raise ArchitectureError(f"scale knob {name!r} must be an integer, got {value!r}") from None
    if name not in SWITCH_VALUES:
        known = [*SWITCH_VALUES, *SCALE_RANGES]
        raise ArchitectureError(f"unknown switch {name!r}; switches are: {', '.join(known)}")
    return name, value


def resolve(arch: str = "transactional", overrides: Iterable[str] | Mapping[str, str] = ()) -> Switches:
    """A preset by name with single switches overridden ("storage=disk" or a mapping)."""
    if arch not in PRESETS:
        raise ArchitectureError(f"unknown architecture {arch!r}; choose one of {', '.join(PRESETS)}")
    pairs = [f"{k}={v}" for k, v in overrides.items()] if isinstance(overrides, Mapping) else list(overrides)
    return replace(PRESETS[arch], **dict(map(parse_assignment, pairs)))


def parse_spec(spec: str) -> Switches:
    """Parse `baseline`, `transactional`, or `PRESET+name=value,name=value` (the `label` format)."""
    arch, _, rest = spec.strip().partition("+")
    return resolve(arch, [part for part in rest.split(",") if part.strip()])


def from_options(
    arch: str | None = None, overrides: Iterable[str] = (), environ: Mapping[str, str] | None = None
) -> Switches:
    """The suite's switches: `--arch` else QUIZ_ARCH else transactional, then QUIZ_SWITCHES
    (comma-separated name=value), then `--switch` overrides (the last one wins)."""
    environ = os.environ if environ is None else environ
    from_env = [part for part in environ.get(SWITCHES_ENV, "").split(",") if part.strip()]
    return resolve(arch or environ.get(ARCH_ENV) or "transactional", [*from_env, *overrides])


def all_combinations() -> Iterator[tuple[dict[str, str], str | None]]:
    """Every assignment of the (categorical) switches with its refusal reason (None = runs the
    whole suite). isolation=none is refused for more than one test, when the suite is collected."""
    names = list(SWITCH_VALUES)
    for values in product(*SWITCH_VALUES.values()):
        assignment = dict(zip(names, values))
        try:
            Switches(**assignment)
        except ArchitectureError as refused:
            yield assignment, str(refused).split(": ", 1)[1]
        else:
            yield assignment, SINGLE_TEST_REASON if assignment["isolation"] == "none" else None
