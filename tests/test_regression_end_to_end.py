"""The regression gate on the real suite: a genuine slowdown (production-cost argon2 on every
login) is flagged; an identical rerun is not."""

from quiz_study.variants import run_benchmark
from suitebench import regression
from suitebench.store import load_run

SELECTION = {"keyword": "test_login_then_protected_endpoint or test_users_me_returns_profile"}


def measure(tmp_path, run_id, variants):
    run_benchmark(
        variants=variants,
        repetitions=4,
        warmup=0,
        selection=SELECTION,
        output_dir=tmp_path / "runs",
        run_id=run_id,
        seed=1,
        progress=False,
        timeout_s=300,
    )
    return load_run(tmp_path / "runs" / run_id)


def test_real_slowdown_flagged_and_identical_rerun_not(tmp_path):
    reference = measure(tmp_path, "reference", ["transactional"])
    regression.record_baseline(
        reference.timings, reference.repetitions, name="ref", store_dir=tmp_path / "baselines", variant="transactional"
    )
    baseline = regression.load_baseline("ref", tmp_path / "baselines")
    current = measure(tmp_path, "current", ["transactional", "transactional+password_hash=production"])

    rerun = regression.check_regressions(current.timings, baseline=baseline, variant="transactional")
    assert not rerun.regressed, regression.format_check(rerun)

    slowed = regression.check_regressions(
        current.timings, baseline=baseline, variant="transactional+password_hash=production"
    )
    assert slowed.regressed
    flagged = {finding.test for finding in slowed.findings if finding.kind == "timing"}
    assert flagged == {
        "test_integration.py::test_login_then_protected_endpoint",
        "test_auth.py::test_users_me_returns_profile",
    }
    assert not [finding for finding in slowed.findings if finding.kind == "counter"]
