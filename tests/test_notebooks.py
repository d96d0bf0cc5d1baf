"""The committed notebooks are thin and output-free; `harness.notebooks` runs them and reports failures."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from harness import notebooks, paths, profiles, study
from harness.errors import HarnessError

NOTEBOOK_FILES = sorted(paths.NOTEBOOKS.glob("*.ipynb"))
ALLOWED_IMPORTS = {"harness", "IPython.display"}


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
    assert set(study.NOTEBOOKS) <= {p.stem for p in NOTEBOOK_FILES}


@pytest.mark.parametrize("path", NOTEBOOK_FILES, ids=lambda p: p.stem)
def test_notebook_in_git_carries_no_outputs(path: Path):
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    for cell in _code_cells(notebook):
        assert cell.outputs == [], f"{path.name}: a code cell has outputs"
        assert cell.execution_count is None, f"{path.name}: a code cell has an execution count"
    assert "papermill" not in notebook.metadata, "an executed copy was committed"


@pytest.mark.parametrize("path", NOTEBOOK_FILES, ids=lambda p: p.stem)
def test_notebook_has_a_plain_parameters_cell_first_and_a_kernelspec(path: Path):
    notebook = nbformat.read(path, as_version=4)
    assert _code_cells(notebook)[0] is _parameters_cell(notebook), "the parameters cell is the first code cell"
    values = _parameter_names(notebook)
    assert values, "the parameters cell sets parameters"
    kernelspec = notebook.metadata["kernelspec"]
    assert kernelspec["name"] == "python3" and kernelspec["language"] == "python"


@pytest.mark.parametrize("path", NOTEBOOK_FILES, ids=lambda p: p.stem)
def test_notebook_defines_nothing_and_only_calls_harness(path: Path):
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


@pytest.mark.parametrize("name", study.NOTEBOOKS)
def test_the_study_passes_only_parameters_the_notebook_declares(name: str, tmp_path: Path):
    declared = _parameter_names(nbformat.read(paths.NOTEBOOKS / f"{name}.ipynb", as_version=4))
    passed = study._notebook_parameters(
        name, run_dir=tmp_path / "run-1", study_paths=study.StudyPaths.under(tmp_path),
        profile=profiles.get_profile("smoke"),
    )
    assert set(passed) <= set(declared)
    for key, value in passed.items():
        assert type(value) is type(declared[key]), key


@pytest.mark.parametrize("name", study.NOTEBOOKS)
def test_default_parameters_use_the_project_data_directories(name: str):
    values = _parameter_names(nbformat.read(paths.NOTEBOOKS / f"{name}.ipynb", as_version=4))
    assert values["runs_dir"] == "data/runs" and values["run_id"] == ""
    if "baselines_dir" in values:
        assert values["baselines_dir"] == "data/baselines"


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
    with pytest.raises(HarnessError) as failure:
        notebooks.execute_notebook("broken", parameters={}, output_dir=tmp_path / "out", timeout_s=60,
                                   cwd=tmp_path, notebooks_dir=source_dir)
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
    with pytest.raises(HarnessError, match="ipykernel install --user --name no-such-kernel-xyz"):
        notebooks.execute_notebook("ok", parameters={}, output_dir=tmp_path / "out", kernel_name="no-such-kernel-xyz",
                                   notebooks_dir=source_dir)


def test_unknown_notebook_lists_those_present(tmp_path: Path):
    with pytest.raises(HarnessError, match="02_analysis.ipynb"):
        notebooks.notebook_path("99_nothing")
