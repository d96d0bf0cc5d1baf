"""suitebench.metadata: each collector tolerates a missing source; the whole dict is JSON."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from suitebench import metadata

X86_CPUINFO = """\
processor\t: 0
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R) Gold 6130 CPU @ 2.10GHz
processor\t: 1
model name\t: Intel(R) Xeon(R) Gold 6130 CPU @ 2.10GHz
"""

ARM_CPUINFO = """\
Processor\t: AArch64 Processor rev 4 (aarch64)
processor\t: 0
BogoMIPS\t: 38.40
Hardware\t: Qualcomm Technologies, Inc SDM845
"""


def test_parse_cpu_model_reads_model_name_on_x86():
    assert metadata.parse_cpu_model(X86_CPUINFO) == "Intel(R) Xeon(R) Gold 6130 CPU @ 2.10GHz"


def test_parse_cpu_model_skips_numeric_processor_index_on_arm():
    assert metadata.parse_cpu_model(ARM_CPUINFO) == "Qualcomm Technologies, Inc SDM845"


def test_parse_cpu_model_without_a_model_is_none():
    assert metadata.parse_cpu_model("processor : 0\nflags : fpu\n") is None


def test_collect_cpu_tolerates_missing_cpuinfo(tmp_path):
    cpu = metadata.collect_cpu(cpuinfo_path=tmp_path / "absent")
    assert cpu["logical_cores"] >= 1
    assert "model" in cpu


def test_parse_meminfo_converts_kilobytes():
    memory = metadata.parse_meminfo("MemTotal:       2048 kB\nMemFree:  10 kB\nMemAvailable:   1024 kB\n")
    assert memory == {"total_bytes": 2048 * 1024, "available_bytes": 1024 * 1024}


def test_collect_memory_tolerates_missing_meminfo(tmp_path):
    assert metadata.collect_memory(meminfo_path=tmp_path / "absent") == {"total_bytes": None, "available_bytes": None}


def test_collect_package_versions_reports_installed_and_missing():
    versions = metadata.collect_package_versions(["pytest", "surely-not-an-installed-package-xyz"])
    assert versions["pytest"] == pytest.__version__
    assert versions["surely-not-an-installed-package-xyz"] is None


def test_collect_git_outside_a_repository_is_none(tmp_path):
    assert metadata.collect_git(root=tmp_path) == {"commit": None, "dirty": None}


def test_collect_git_without_git_installed_is_none(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    assert metadata.collect_git(root=tmp_path) == {"commit": None, "dirty": None}


@pytest.mark.skipif(shutil.which("git") is None, reason="git not installed")
def test_collect_git_reports_commit_and_dirty_flag(tmp_path):
    def git(*args: str) -> None:
        subprocess.run(
            ["git", "-c", "user.name=t", "-c", "user.email=t@example.org", *args],
            cwd=tmp_path,
            check=True,
            capture_output=True,
        )

    git("init", "-q")
    tracked = tmp_path / "file.txt"
    tracked.write_text("one\n")
    git("add", "file.txt")
    git("commit", "-q", "-m", "first")

    clean = metadata.collect_git(root=tmp_path)
    assert len(clean["commit"]) == 40 and clean["dirty"] is False

    tracked.write_text("two\n")
    assert metadata.collect_git(root=tmp_path) == {"commit": clean["commit"], "dirty": True}


def test_collect_metadata_is_json_serialisable_and_complete():
    collected = metadata.collect_metadata(packages=["fastapi"])
    assert json.loads(json.dumps(collected)) == collected
    assert {"python", "platform", "hostname", "cpu", "load_average", "memory", "packages", "git"} <= set(collected)
    assert collected["python"]["implementation"]
    # The engine's own stack first, then the caller's packages.
    assert list(collected["packages"]) == [*metadata.DEFAULT_PACKAGES, "fastapi"]
    assert collected["packages"]["pytest"] == pytest.__version__


def test_metadata_differences_names_checked_facts_only():
    a = {
        "python": {"version": "3.11.7"},
        "cpu": {"model": "A", "logical_cores": 2},
        "hostname": "h",
        "load_average": [1],
    }
    b = {
        "python": {"version": "3.12.0"},
        "cpu": {"model": "A", "logical_cores": 2},
        "hostname": "h",
        "load_average": [9],
    }
    assert metadata.metadata_differences(a, b) == {"python.version": ("3.11.7", "3.12.0")}
    assert metadata.metadata_differences(a, a) == {}
