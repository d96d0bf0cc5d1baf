"""The switches dataclass: presets, parsing, validation, refusal."""

import json

import pytest

from quiz_architectures import architectures
from quiz_architectures.architectures import BASELINE, TRANSACTIONAL, Switches
from quiz_architectures.errors import ArchitectureError


def test_presets_are_the_documented_switch_values():
    assert BASELINE == Switches(
        storage="disk",
        isolation="recreate",
        reference_data="per_test",
        session_wiring="own",
        password_hash="test",
        client="testclient",
    )
    assert TRANSACTIONAL == Switches(
        storage="memory",
        isolation="rollback",
        reference_data="per_session",
        session_wiring="injected",
        password_hash="test",
        client="testclient",
    )


def test_label_names_preset_or_overrides():
    assert BASELINE.label == "baseline"
    assert architectures.resolve("transactional", ["storage=disk"]).label == "transactional+storage=disk"


@pytest.mark.parametrize(
    "spec",
    ["baseline", "transactional", "transactional+storage=disk", "baseline+storage=memory,password_hash=production"],
)
def test_label_round_trips_through_parse_spec(spec):
    switches = architectures.parse_spec(spec)
    assert switches.label == spec
    assert architectures.parse_spec(switches.label) == switches


def test_slug_is_stable_and_file_safe():
    assert BASELINE.slug == "disk-recreate-per_test-own-test-testclient-0-0-1"
    assert all(ch.isalnum() or ch in "-_" for ch in TRANSACTIONAL.slug)


def test_json_round_trip():
    switches = architectures.resolve("baseline", {"storage": "memory"})
    assert Switches.from_json(switches.to_json()) == switches
    assert json.loads(switches.to_json())["storage"] == "memory"


def test_pytest_args_select_the_same_switches():
    switches = architectures.resolve("baseline", ["storage=memory"])
    args = switches.pytest_args()
    assert args == ["--arch", "baseline", "--switch", "storage=memory"]


@pytest.mark.parametrize(
    ("arch", "overrides", "message"),
    [
        ("nonsense", [], "unknown architecture 'nonsense'"),
        ("baseline", ["storage=floppy"], "unknown value 'floppy' for switch 'storage'"),
        ("baseline", ["colour=red"], "unknown switch 'colour'"),
        ("baseline", ["storage"], "expected name=value"),
    ],
)
def test_bad_input_is_one_clear_error(arch, overrides, message):
    with pytest.raises(ArchitectureError, match=message):
        architectures.resolve(arch, overrides)


def test_rollback_with_own_sessions_is_refused_with_reason():
    with pytest.raises(ArchitectureError, match="refused combination .*seed's known limitation"):
        architectures.resolve("transactional", ["session_wiring=own"])


def test_combinations_enumerated_with_reasons():
    combos = list(architectures.all_combinations())
    # storage x isolation x reference_data x session_wiring x password_hash x client
    assert len(combos) == 3 * 5 * 2 * 2 * 2 * 2
    refused = [assignment for assignment, reason in combos if reason]
    # isolation=none (one test per process), and rollback with own sessions on every storage
    assert len(refused) == 48 + 24
    assert all(
        (a["isolation"] == "rollback" and a["session_wiring"] == "own") or a["isolation"] == "none" for a in refused
    )


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("copies=0", "from 1 to 100"),
        ("extra_tables=x", "must be an integer"),
        ("reference_rows=-5", "from 0 to 100000"),
    ],
)
def test_scale_knobs_are_validated(override, message):
    with pytest.raises(ArchitectureError, match=message):
        architectures.resolve("transactional", [override])


def test_scale_knobs_appear_in_label_and_args():
    switches = architectures.parse_spec("baseline+extra_tables=50,copies=3")
    assert (switches.extra_tables, switches.copies) == (50, 3)
    assert switches.pytest_args() == ["--arch", "baseline", "--switch", "extra_tables=50", "--switch", "copies=3"]


def test_options_override_environment():
    env = {"QUIZ_ARCH": "baseline", "QUIZ_SWITCHES": "storage=memory,password_hash=production"}
    assert architectures.from_options(None, [], env) == architectures.resolve(
        "baseline", ["storage=memory", "password_hash=production"]
    )
    assert architectures.from_options("transactional", ["storage=disk"], env).storage == "disk"
    assert architectures.from_options(None, [], {}) == TRANSACTIONAL


@pytest.mark.parametrize(
    "spec",
    [
        "transactional+storage=postgres",
        "baseline+storage=postgres,isolation=truncate",
        "transactional+isolation=template",
        "baseline+isolation=template,storage=memory",
    ],
)
def test_new_storage_and_isolation_values_round_trip(spec):
    switches = architectures.parse_spec(spec)
    assert architectures.parse_spec(switches.label) == switches
    assert Switches.from_json(switches.to_json()) == switches


def test_postgres_and_new_strategies_are_not_refused_except_rollback_with_own_sessions():
    reasons = {
        (a["storage"], a["isolation"], a["session_wiring"]): r
        for a, r in architectures.all_combinations()
        if a["isolation"] != "none"
    }
    for (storage, isolation, wiring), reason in reasons.items():
        if isolation == "rollback" and wiring == "own":
            assert "seed's known limitation" in reason
        else:
            assert reason is None, (storage, isolation, wiring)
