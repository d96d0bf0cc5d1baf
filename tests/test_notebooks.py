"""The committed notebooks are thin and output-free; `quiz_study.notebooks` runs them and reports failures."""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import nbformat
import pytest
import yaml
from nbformat.v4 import new_code_cell, new_notebook, new_output

from quiz_study import notebooks, paths, pipeline, profiles, why
from suitebench.errors import BenchError

NOTEBOOK_FILES = sorted(paths.NOTEBOOKS.glob("*.ipynb"))
# Notebooks call the study and the engine, and display what they return; nothing else.
ALLOWED_IMPORTS = {"quiz_study", "quiz_study.tables", "suitebench", "IPython.display"}
PRE_COMMIT_CONFIG = paths.ROOT / ".pre-commit-config.yaml"
# The helpers that find (or record) what a notebook shows; each notebook calls one of them first.
RESOLVERS = {"resolve_run", "resolve_why_runs"}


def _code_cells(notebook):
    return [cell for cell in notebook.cells if cell.cell_type == "code"]


def _parameters_cell(notebook):
    tagged = [cell for cell in notebook.cells if "parameters" in cell.metadata.get("tags", [])]
    assert len(tagged) == 1, "exactly one cell tagged `parameters`"
    return tagged[0]


def _parameter_names(notebook) -> dict[str, object]:
    tree = ast.parse(_parameters_cell(notebook).source)
    values = {}
    for statement in tree.body:
        assert isinstance(statement, ast.Assign) and len(statement.targets) == 1, ast.dump(statement)
        target = statement.targets[0]
        assert isinstance(target, ast.Name)
        values[target.id] = ast.literal_eval(statement.value)  # plain literals only
    return values


def test_the_study_notebooks_are_committed():
    assert set(pipeline.NOTEBOOKS) <= {p.stem for p in NOTEBOOK_FILES}


@pytest.mark.parametrize("path", NOTEBOOK_FILES, ids=lambda p: p.stem)
def test_notebook_in_git_carries_no_outputs(path: Path):
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    for cell in _code_cells(notebook):
        assert cell.outputs == [], f"{path.name}: a code cell has outputs"
        assert cell.execution_count is None, f"{path.name}: a code cell has an execution count"
    assert "papermill" not in notebook.metadata, "an executed copy was committed"


def _nbstripout_hook() -> dict:
    config = yaml.safe_load(PRE_COMMIT_CONFIG.read_text())
    hooks = [hook for repo in config["repos"] for hook in repo["hooks"] if hook["id"] == "nbstripout"]
    assert len(hooks) == 1, "one nbstripout hook in .pre-commit-config.yaml"
    return hooks[0]


def test_committed_notebooks_pass_nbstripout_verify():
    """The CI check: what the pre-commit hook would strip, nbstripout --verify refuses."""
    hook = _nbstripout_hook()
    assert hook["entry"] == "nbstripout"
    completed = subprocess.run(
        [sys.executable, "-m", "nbstripout", *hook.get("args", []), "--verify", *map(str, NOTEBOOK_FILES)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 0, (
        f"notebooks committed with outputs or execution metadata; strip them with "
        f"`nbstripout {' '.join(hook.get('args', []))} notebooks/*.ipynb` (or `pre-commit install` once):\n"
        f"{completed.stdout}{completed.stderr}"
    )


def test_pre_commit_hook_strips_an_executed_notebook(tmp_path: Path):
    repo = tmp_path / "repo"
    repo.mkdir()
    shutil.copy(PRE_COMMIT_CONFIG, repo / PRE_COMMIT_CONFIG.name)
    notebook = nbformat.read(NOTEBOOK_FILES[0], as_version=4)
    code = next(cell for cell in notebook.cells if cell.cell_type == "code")
    code.execution_count = 1
    code.outputs = [new_output("stream", name="stdout", text="an output\n")]
    nbformat.write(notebook, repo / "executed.ipynb")
    # The hook runs the nbstripout installed beside this Python; nothing is cloned or downloaded.
    env = {
        **os.environ,
        "PRE_COMMIT_HOME": str(tmp_path / "pre-commit-home"),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }

    def run(*command: str) -> subprocess.CompletedProcess:
        return subprocess.run(command, cwd=repo, env=env, capture_output=True, text=True, timeout=120)

    assert run("git", "init", "-q").returncode == 0
    assert run("git", "add", ".").returncode == 0
    completed = run(sys.executable, "-m", "pre_commit", "run", "--all-files")
    assert completed.returncode == 1 and "files were modified by this hook" in completed.stdout, completed.stdout
    stripped = nbformat.read(repo / "executed.ipynb", as_version=4)
    assert all(c.outputs == [] and c.execution_count is None for c in stripped.cells if c.cell_type == "code")
    assert [c.id for c in stripped.cells] == [c.id for c in notebook.cells], "the hook keeps cell ids"


@pytest.mark.parametrize("path", NOTEBOOK_FILES, ids=lambda p: p.stem)
def test_notebook_has_a_plain_parameters_cell_first_and_a_kernelspec(path: Path):
    notebook = nbformat.read(path, as_version=4)
    assert _code_cells(notebook)[0] is _parameters_cell(notebook), "the parameters cell is the first code cell"
    values = _parameter_names(notebook)
    assert values, "the parameters cell sets parameters"
    kernelspec = notebook.metadata["kernelspec"]
    assert kernelspec["name"] == "python3" and kernelspec["language"] == "python"


@pytest.mark.parametrize("path", NOTEBOOK_FILES, ids=lambda p: p.stem)
def test_notebook_defines_nothing_and_only_calls_the_study(path: Path):
    notebook = nbformat.read(path, as_version=4)
    for cell in _code_cells(notebook):
        assert "def " not in cell.source and "class " not in cell.source, f"{path.name}: definition in a notebook"
        tree = ast.parse(cell.source)
        for node in ast.walk(tree):
            assert not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda))
            if isinstance(node, ast.ImportFrom):
                assert node.module in ALLOWED_IMPORTS, f"{path.name} imports {node.module}"
            if isinstance(node, ast.Import):
                assert {alias.name for alias in node.names} <= ALLOWED_IMPORTS


@pytest.mark.parametrize("name", pipeline.NOTEBOOKS)
def test_the_study_passes_only_parameters_the_notebook_declares(name: str, tmp_path: Path):
    declared = _parameter_names(nbformat.read(paths.NOTEBOOKS / f"{name}.ipynb", as_version=4))
    passed = pipeline._notebook_parameters(
        name,
        run_dir=tmp_path / "run-1",
        study_paths=pipeline.StudyPaths.under(tmp_path),
        profile=profiles.get_profile("smoke"),
    )
    assert set(passed) <= set(declared)
    for key, value in passed.items():
        assert type(value) is type(declared[key]), key


@pytest.mark.parametrize("name", pipeline.NOTEBOOKS)
def test_default_parameters_use_the_project_data_directories(name: str):
    values = _parameter_names(nbformat.read(paths.NOTEBOOKS / f"{name}.ipynb", as_version=4))
    assert values["runs_dir"] == "data/runs" and values["run_id"] == ""
    if "baselines_dir" in values:
        assert values["baselines_dir"] == "data/baselines"


@pytest.mark.parametrize("path", NOTEBOOK_FILES, ids=lambda p: p.stem)
def test_notebook_announces_a_measurement_before_it_starts(path: Path):
    """With no run recorded, the resolver measures one; its announcement is the notebook's first output."""
    notebook = nbformat.read(path, as_version=4)
    calls = [
        node
        for cell in _code_cells(notebook)
        for node in ast.walk(ast.parse(cell.source))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in RESOLVERS
    ]
    assert len(calls) == 1, f"{path.name}: one call that finds its run"
    announce = [k.value for k in calls[0].keywords if k.arg == "announce"]
    assert len(announce) == 1 and isinstance(announce[0], ast.Name) and announce[0].id == "print"


# ---------------------------------------------------------------- where a notebook finds its run


def test_relative_data_paths_are_under_the_output_root_not_the_kernels_directory(tmp_path: Path):
    assert paths.notebook_data_path("data/runs", environ={}) == paths.RUNS
    assert paths.notebook_data_path("data/baselines", environ={}) == paths.BASELINES
    environ = {paths.OUTPUT_ROOT_ENV: str(tmp_path)}
    assert paths.notebook_data_path("data/runs", environ=environ) == tmp_path / "data" / "runs"
    assert paths.notebook_data_path(tmp_path / "elsewhere", environ=environ) == tmp_path / "elsewhere"


def test_resolve_run_ignores_other_studies_runs_that_also_measured_both_presets(tmp_path: Path):
    from test_report import write_synthetic_run

    runs_dir = tmp_path / "runs"
    main = write_synthetic_run(runs_dir, "main", started_at="2025-01-01T10:00:00+00:00", seed=1)
    floor_run = write_synthetic_run(runs_dir, "main-why-floor", started_at="2025-01-01T11:00:00+00:00", seed=2)
    metadata = json.loads((floor_run / "metadata.json").read_text())
    metadata["variants"].append({"label": "transactional+isolation=none", "spec": "", "pytest_args": []})
    (floor_run / "metadata.json").write_text(json.dumps(metadata))
    assert pipeline.resolve_run(runs_dir=runs_dir) == main


def test_resolve_run_with_no_run_announces_what_it_measures_and_the_command_first(tmp_path: Path, monkeypatch):
    from test_report import write_synthetic_run

    events: list[tuple[str, str]] = []

    def fake_measure(*, profile, runs_dir, progress):
        events.append(("measure", profile.name))
        return SimpleNamespace(run_dir=write_synthetic_run(runs_dir, "measured-now"))

    monkeypatch.setattr(pipeline, "measure", fake_measure)
    monkeypatch.setenv(paths.OUTPUT_ROOT_ENV, str(tmp_path))
    run_dir = pipeline.resolve_run(runs_dir="data/runs", announce=lambda line: events.append(("announce", line)))
    assert run_dir == tmp_path / "data" / "runs" / "measured-now"
    assert [kind for kind, _ in events] == ["announce", "measure"]
    message = events[0][1]
    assert "'smoke'" in message and str(tmp_path / "data" / "runs") in message
    assert "python run_all.py" in message and "\n" not in message
    events.clear()
    assert (
        pipeline.resolve_run(runs_dir="data/runs", announce=lambda line: events.append(("announce", line))) == run_dir
    )
    assert events == [], "a recorded run is used without a word"


def test_resolve_why_runs_with_no_study_announces_it_and_the_command_first(tmp_path: Path, monkeypatch):
    events: list[tuple[str, str]] = []

    def fake_study(**options):
        events.append(("study", options["profile_size"]))
        return SimpleNamespace(run_dirs={"design": options["output_dir"] / "why-design"})

    monkeypatch.setattr(why, "run_why_study", fake_study)
    monkeypatch.setenv(paths.OUTPUT_ROOT_ENV, str(tmp_path))
    run_dirs = why.resolve_why_runs(runs_dir="data/runs", announce=lambda line: events.append(("announce", line)))
    assert run_dirs == [tmp_path / "data" / "runs" / "why-design"]
    assert [kind for kind, _ in events] == ["announce", "study"]
    assert "python run_all.py --with why" in events[0][1]


def test_notebook_opened_with_no_run_says_what_it_does_first_and_runs_without_error(tmp_path: Path, monkeypatch):
    """As under `jupyter lab notebooks/` with nothing recorded: the kernel starts in the notebooks'
    folder, the default parameters point at an empty output root; the notebook measures a small run."""
    served = tmp_path / "notebooks"
    shutil.copytree(paths.NOTEBOOKS, served, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    root = tmp_path / "root"
    monkeypatch.setenv(paths.OUTPUT_ROOT_ENV, str(root))
    executed = notebooks.execute_notebook(
        "01_benchmark",
        parameters={},
        output_dir=tmp_path / "out",
        cwd=served,
        notebooks_dir=served,
        timeout_s=300,
    )
    outputs = [o for cell in nbformat.read(executed, as_version=4).cells for o in cell.get("outputs", [])]
    assert outputs, "the notebook showed nothing"
    first = outputs[0]
    assert first.output_type == "stream" and first.name == "stdout", first
    assert "Measuring a new 'smoke' run" in first.text and "python run_all.py" in first.text
    assert [o for o in outputs if o.output_type == "error"] == []
    assert [p.name for p in (root / "data" / "runs").iterdir()], "the small run is recorded under the output root"
    assert not (served / "data").exists(), "nothing written beside the notebook"


# ---------------------------------------------------------------- execute_notebook


def _write_notebook(directory: Path, name: str, sources: list[str]) -> Path:
    cells = [new_code_cell(sources[0], metadata={"tags": ["parameters"]})]
    cells += [new_code_cell(source) for source in sources[1:]]
    notebook = new_notebook(cells=cells)
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.ipynb"
    nbformat.write(notebook, path)
    return path


def test_execute_notebook_injects_parameters_and_runs_in_cwd(tmp_path: Path):
    source_dir = tmp_path / "notebooks"
    _write_notebook(source_dir, "ok", ["value = 1", "import os\nprint(value * 10, os.getcwd())"])
    work = tmp_path / "work"
    work.mkdir()
    out = notebooks.execute_notebook(
        "ok", parameters={"value": 4}, output_dir=tmp_path / "out", timeout_s=60, cwd=work, notebooks_dir=source_dir
    )
    executed = nbformat.read(out, as_version=4)
    text = "".join(o.get("text", "") for cell in executed.cells for o in cell.get("outputs", []))
    assert f"40 {work}" in text
    assert any("injected-parameters" in cell.metadata.get("tags", []) for cell in executed.cells)


def test_failing_cell_names_notebook_and_cell_and_keeps_the_partial_notebook(tmp_path: Path):
    source_dir = tmp_path / "notebooks"
    _write_notebook(source_dir, "broken", ["x = 1", "print('before')", "1 / 0", "print('never')"])
    with pytest.raises(BenchError) as failure:
        notebooks.execute_notebook(
            "broken", parameters={}, output_dir=tmp_path / "out", timeout_s=60, cwd=tmp_path, notebooks_dir=source_dir
        )
    message = str(failure.value)
    assert "broken.ipynb" in message and "ZeroDivisionError" in message
    assert "cell [" in message and "\n" not in message
    partial = tmp_path / "out" / "broken.ipynb"
    assert str(partial) in message and partial.exists()
    outputs = json.loads(partial.read_text())["cells"]
    assert any("before" in "".join(o.get("text", "")) for cell in outputs for o in cell.get("outputs", []))


def test_missing_kernel_explains_how_to_install_it(tmp_path: Path):
    source_dir = tmp_path / "notebooks"
    _write_notebook(source_dir, "ok", ["x = 1"])
    with pytest.raises(BenchError, match="ipykernel install --user --name no-such-kernel-xyz"):
        notebooks.execute_notebook(
            "ok", parameters={}, output_dir=tmp_path / "out", kernel_name="no-such-kernel-xyz", notebooks_dir=source_dir
        )


def test_unknown_notebook_lists_those_present(tmp_path: Path):
    with pytest.raises(BenchError, match="02_analysis.ipynb"):
        notebooks.notebook_path("99_nothing")
