"""The notebooks in JupyterLab, as people open them: every cell run from the page, no error, every figure drawn.

One JupyterLab server on 127.0.0.1 (a free port, a token, its config, runtime, data, settings and
workspaces directories all temporary, nothing fetched from outside), serving a copy of
``notebooks/`` so the committed files stay untouched. The kernels find their data the way a
person's do, through the notebooks' default parameters (``data/runs``, ``data/baselines``), under
a temporary output root (``QUIZ_STUDY_OUTPUT_ROOT``) holding a synthetic run and a why-study
recorded with fake processes, so nothing is measured and the project's ``data/`` and ``reports/``
are not touched. In one page of headless Chromium (Debian's package, /usr/bin/chromium, driven by
Playwright without its browser download) each notebook is opened from the file browser and run
with Run -> Run All Cells from the menu bar, the next opened while the previous one runs; then
each tab is checked (kernel idle, every cell executed, no error output, an image in every figure
cell's output) and screenshotted into the test's temporary directory.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest

from quiz_study import floor, paths, why
from quiz_study import variants as study_variants

CHROMIUM = Path("/usr/bin/chromium")
LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
NOTEBOOK_FILES = sorted(paths.NOTEBOOKS.glob("*.ipynb"))
SERVER_START_TIMEOUT_S = 60.0
# A notebook takes ~5 s under papermill on an idle 2-core machine (half of it imports); the rest
# is margin for the five kernels and the browser sharing those cores.
RUN_ALL_TIMEOUT_S = 120.0
# Loading JupyterLab, opening a notebook, starting its kernel, a click.
ACTION_TIMEOUT_S = 30.0
VIEWPORT = {"width": 1280, "height": 1400}
# Settings a person could set too; they keep the test offline, deterministic and read-only.
USER_SETTINGS = {
    # Never ask for, or fetch, the news feed or JupyterLab updates.
    "@jupyterlab/apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
    # The extension manager would query PyPI.
    "@jupyterlab/extensionmanager-extension/plugin": {"enabled": False},
    # The notebooks get outputs while the test runs; nothing writes them back.
    "@jupyterlab/docmanager-extension/plugin": {"autosave": False},
    # Every cell in the DOM, so each output area can be checked without scrolling it into view.
    "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"},
}

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="needs Chromium at /usr/bin/chromium (apt-get update && apt-get install -y chromium); CI installs it",
)


@dataclass(frozen=True)
class Server:
    """A running JupyterLab: its base URL (``http://127.0.0.1:PORT/``), token, served folder and log."""

    url: str
    token: str
    root_dir: Path
    log: Path

    def api(self, path: str) -> object:
        request = urllib.request.Request(f"{self.url}api/{path}", headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.load(response)


@pytest.fixture(scope="module")
def output_root(tmp_path_factory) -> Path:
    """A study output root with a synthetic main run and a why-study of fake processes (seconds, not minutes)."""
    from fake_processes import FakeSuite, fake_collector
    from test_report import write_synthetic_run

    root = tmp_path_factory.mktemp("study-root")
    runs = root / "data" / "runs"
    write_synthetic_run(runs, "synthetic-run", seed=17)
    fake = FakeSuite()
    why.run_why_study(
        profile_size="smoke",
        output_dir=runs,
        runner=functools.partial(study_variants.run_benchmark, executor=fake),
        floor_runner=functools.partial(floor.measure_floor, executor=fake),
        collector=fake_collector,
    )
    return root


def _write_settings(directory: Path) -> None:
    for plugin, values in USER_SETTINGS.items():
        path = directory / f"{plugin}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))


def _server_info(runtime_dir: Path, pid: int) -> dict | None:
    info = runtime_dir / f"jpserver-{pid}.json"
    try:
        return json.loads(info.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None  # not written yet, or caught half-written


@pytest.fixture(scope="module")
def jupyterlab(output_root: Path, tmp_path_factory) -> Iterator[Server]:
    """JupyterLab serving a copy of notebooks/ on 127.0.0.1; stopped (with its kernels) at the end, also on failure."""
    home = tmp_path_factory.mktemp("jupyter")
    # The kernels' working directory is the notebooks' folder, as under `jupyter lab notebooks/`.
    served = home / "notebooks"
    shutil.copytree(paths.NOTEBOOKS, served, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    directories = {name: home / name for name in ("config", "runtime", "data", "ipython", "settings", "workspaces")}
    for directory in directories.values():
        directory.mkdir()
    _write_settings(directories["settings"])
    token = os.urandom(16).hex()
    env = {
        **os.environ,
        "JUPYTER_CONFIG_DIR": str(directories["config"]),
        "JUPYTER_RUNTIME_DIR": str(directories["runtime"]),
        "JUPYTER_DATA_DIR": str(directories["data"]),
        "IPYTHONDIR": str(directories["ipython"]),
        paths.OUTPUT_ROOT_ENV: str(output_root),
    }
    command = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--no-browser",
        "--ServerApp.ip=127.0.0.1",
        "--ServerApp.port=0",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={served}",
        f"--LabApp.user_settings_dir={directories['settings']}",
        f"--LabApp.workspaces_dir={directories['workspaces']}",
        # Offline: no news feed, no update check, an extension manager that never asks PyPI.
        "--LabApp.news_url=None",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        "--LabApp.extension_manager=readonly",
        # window.jupyterapp lets the test read each cell's outputs from the notebook model.
        "--LabApp.expose_app_in_browser=True",
    ]
    if os.geteuid() == 0:
        command.append("--allow-root")  # CI runs as root; the server only listens on 127.0.0.1
    log = home / "jupyterlab.log"
    with open(log, "wb") as log_file:
        # Its own process group, so the whole server goes even if it ignores SIGTERM.
        process = subprocess.Popen(
            command,
            cwd=home,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        server = _wait_for_server(process, directories["runtime"], token=token, root_dir=served, log=log)
        yield server
    finally:
        _stop(process, token=token, runtime_dir=directories["runtime"])


def _wait_for_server(process: subprocess.Popen, runtime_dir: Path, *, token: str, root_dir: Path, log: Path) -> Server:
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"JupyterLab exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        info = _server_info(runtime_dir, process.pid)
        if info is not None:
            server = Server(url=f"http://127.0.0.1:{info['port']}/", token=token, root_dir=root_dir, log=log)
            try:
                server.api("status")
                return server
            except OSError:
                pass
        time.sleep(0.2)
    pytest.fail(f"JupyterLab did not answer within {SERVER_START_TIMEOUT_S:.0f} s:\n{log.read_text()[-3000:]}")


def _stop(process: subprocess.Popen, *, token: str, runtime_dir: Path) -> None:
    """Ask the server to shut down (it stops its kernels, which run in their own sessions), then make sure."""
    if process.poll() is None:
        info = _server_info(runtime_dir, process.pid)
        if info is not None:
            try:
                request = urllib.request.Request(
                    f"http://127.0.0.1:{info['port']}/api/shutdown",
                    method="POST",
                    headers={"Authorization": f"token {token}"},
                )
                urllib.request.urlopen(request, timeout=10).close()
            except OSError:
                pass
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            pass
    if process.poll() is None:
        # jupyter_client starts each kernel in a session of its own: kill those groups too.
        for group in [*_child_pids(process.pid), process.pid]:
            try:
                os.killpg(group, signal.SIGKILL)
            except ProcessLookupError:
                pass
        process.wait(timeout=10)


def _child_pids(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (Linux /proc)."""
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()  # after "pid (comm)": state, ppid, ...
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid:
            children.append(int(stat.parent.name))
    return children


# ---------------------------------------------------------------- the page

# Page-side lookups, by notebook path, in the JupyterLab application the page runs.
PANEL_JS = """(path) => Array.from(window.jupyterapp.shell.widgets('main')).find(
    (w) => w.context && w.context.path === path)"""
# The kernel status the notebook's toolbar shows is idle.
KERNEL_IDLE_JS = f"""(path) => {{
    const panel = ({PANEL_JS})(path);
    const kernel = panel && panel.sessionContext.session && panel.sessionContext.session.kernel;
    return Boolean(kernel) && kernel.status === 'idle';
}}"""
# Done: every code cell has an execution count, none is queued or running ([*]), the kernel is idle.
ALL_EXECUTED_JS = f"""(path) => {{
    const panel = ({PANEL_JS})(path);
    const cells = panel.content.widgets.filter((cell) => cell.model.type === 'code');
    const prompts = cells.map((cell) => cell.node.querySelector('.jp-InputPrompt').textContent);
    return cells.every((cell) => cell.model.executionCount !== null)
        && prompts.every((prompt) => !prompt.includes('*'))
        && panel.sessionContext.session.kernel.status === 'idle';
}}"""
# Each cell as the page holds it: source; for code cells the execution count, the outputs' types
# (and error names) from the model, and the images in the rendered output area.
CELLS_JS = f"""(path) => ({PANEL_JS})(path).content.widgets.map((cell) => {{
    const model = cell.model;
    const out = {{ type: model.type, source: model.sharedModel.getSource() }};
    if (model.type === 'code') {{
        out.execution_count = model.executionCount;
        out.outputs = model.outputs.toJSON().map((o) => ({{
            output_type: o.output_type, ename: o.ename || null, evalue: o.evalue || null, name: o.name || null,
        }}));
        out.images = Array.from(cell.node.querySelectorAll('.jp-OutputArea-output img')).map(
            (img) => ({{ complete: img.complete, width: img.naturalWidth }}));
    }}
    return out;
}})"""


def _open_from_the_file_browser(page, name: str) -> None:
    page.locator(".jp-DirListing-item", has_text=name).dblclick()
    page.wait_for_function(
        "(name) => window.jupyterapp.shell.currentWidget && window.jupyterapp.shell.currentWidget.title.label === name",
        arg=name,
    )
    page.wait_for_function(KERNEL_IDLE_JS, arg=name)


def _run_all_from_the_menu(page) -> None:
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).click()


def _is_figure_cell(source: str) -> bool:
    return "Image(" in source


def test_each_notebook_runs_all_cells_in_jupyterlab_without_errors_and_draws_its_figures(
    jupyterlab: Server, output_root: Path, tmp_path: Path
):
    # Chromium present but Playwright missing is a broken set-up, not a reason to skip.
    from playwright import sync_api

    started = time.perf_counter()
    project_data_before = _project_data_entries()
    requests: list[str] = []
    page_errors: list[str] = []
    results: dict[str, list[dict]] = {}
    screenshots: list[Path] = []
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        try:
            page = browser.new_page(viewport=VIEWPORT)
            page.set_default_timeout(ACTION_TIMEOUT_S * 1000)
            page.on("request", lambda request: requests.append(request.url))
            page.on("pageerror", lambda error: page_errors.append(str(error)))
            # A fresh workspace: nothing restored from an earlier session.
            page.goto(f"{jupyterlab.url}lab/workspaces/notebooks-test?reset&token={jupyterlab.token}")
            # Each notebook opened and started as a person would, the next opened while it runs.
            for path in NOTEBOOK_FILES:
                _open_from_the_file_browser(page, path.name)
                _run_all_from_the_menu(page)
            for path in NOTEBOOK_FILES:
                page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab", has_text=path.name).click()
                page.wait_for_function(ALL_EXECUTED_JS, arg=path.name, polling=250, timeout=RUN_ALL_TIMEOUT_S * 1000)
                results[path.name] = page.evaluate(CELLS_JS, path.name)
                figure = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-OutputArea-output img").first
                if figure.count():
                    figure.scroll_into_view_if_needed()
                screenshot = tmp_path / f"{path.stem}.png"
                page.screenshot(path=str(screenshot))
                screenshots.append(screenshot)
        finally:
            browser.close()
    elapsed = time.perf_counter() - started
    for screenshot in screenshots:
        print(f"screenshot: {screenshot}")
    print(f"notebooks opened and run in JupyterLab in {elapsed:.1f} s")

    server = urllib.parse.urlsplit(jupyterlab.url).netloc
    parts = [urllib.parse.urlsplit(url) for url in requests]
    outside = [p.geturl() for p in parts if p.scheme not in ("data", "blob", "about") and p.netloc != server]
    assert outside == [], f"the page fetched something from outside: {outside}"
    assert page_errors == [], page_errors
    kernels = jupyterlab.api("kernels")
    assert len(kernels) == len(NOTEBOOK_FILES) and all(k["execution_state"] == "idle" for k in kernels), kernels
    for path in NOTEBOOK_FILES:
        cells = results[path.name]
        committed = nbformat.read(path, as_version=4)
        assert [c["source"] for c in cells] == [c.source for c in committed.cells], f"{path.name}: not as committed"
        code = [c for c in cells if c["type"] == "code"]
        assert all(c["execution_count"] is not None for c in code), f"{path.name}: a cell did not run"
        errors = [o for c in code for o in c["outputs"] if o["output_type"] == "error"]
        assert errors == [], f"{path.name}: {errors}"
        figure_cells = [c for c in code if _is_figure_cell(c["source"])]
        assert figure_cells, f"{path.name}: no figure cell"
        for cell in figure_cells:
            drawn = [image for image in cell["images"] if image["complete"] and image["width"] > 0]
            assert drawn, f"{path.name}: no image drawn by\n{cell['source']}"
    assert _project_data_entries() == project_data_before, "the project's data/ or reports/ changed"
    assert (output_root / "data" / "baselines").is_dir(), "notebook 03 records its baseline under the output root"
    assert not (jupyterlab.root_dir / "data").exists(), "a notebook wrote data beside itself"


def _project_data_entries() -> set[str]:
    return {
        str(entry.relative_to(paths.ROOT))
        for directory in (paths.RUNS, paths.BASELINES, paths.REPORTS)
        if directory.is_dir()
        for entry in directory.iterdir()
    }
