"""The HTML report in a real browser: it loads nothing from outside, logs no errors, and draws something.

The report is built the way the study builds it (notebook 04 executed by papermill on a run, then
`export_html`), on a small synthetic run so no benchmark is needed. Chromium comes from the Debian
package (`apt-get install chromium`, /usr/bin/chromium), driven through Playwright's Python package
without Playwright's own browser download.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from quiz_study import html, notebooks, pipeline

CHROMIUM = Path("/usr/bin/chromium")
LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="needs Chromium at /usr/bin/chromium (apt-get update && apt-get install -y chromium); CI installs it",
)


@pytest.fixture(scope="module")
def report_page(tmp_path_factory) -> Path:
    from test_report import write_synthetic_run

    root = tmp_path_factory.mktemp("browser")
    run_dir = write_synthetic_run(root / "data" / "runs", "browser-run", seed=11)
    executed = notebooks.execute_notebook(
        pipeline.REPORT_NOTEBOOK,
        parameters={"runs_dir": str(run_dir.parent), "run_id": run_dir.name},
        output_dir=root / "reports" / run_dir.name,
        timeout_s=300,
    )
    return html.export_html(executed, executed.parent / pipeline.REPORT_FILE, title="browser test")


def test_report_opens_in_chromium_without_external_or_failed_requests_or_errors(report_page: Path):
    # Chromium present but Playwright missing is a broken set-up, not a reason to skip:
    # `pip install playwright` (its browser download is not needed).
    from PIL import Image
    from playwright import sync_api

    requests, failed, console_errors, page_errors = [], [], [], []
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            page.on("request", lambda request: requests.append(request.url))
            page.on("requestfailed", lambda request: failed.append(f"{request.url} {request.failure}"))
            page.on("console", lambda message: console_errors.append(message.text) if message.type == "error" else None)
            page.on("pageerror", lambda error: page_errors.append(str(error)))
            page.goto(report_page.as_uri(), wait_until="load")
            images_ok = page.evaluate("Array.from(document.images).every(i => i.complete && i.naturalWidth > 0)")
            n_images = page.evaluate("document.images.length")
            verdicts_visible = page.locator("table#verdicts").is_visible()
            title = page.title()
            screenshot = page.screenshot(full_page=True)
        finally:
            browser.close()

    external = [url for url in requests if not url.startswith(("file:", "data:"))]
    assert external == [], f"external requests: {external}"
    assert failed == [], f"failed requests: {failed}"
    assert console_errors == [] and page_errors == [], (console_errors, page_errors)
    assert title == "browser test"
    assert verdicts_visible
    assert n_images >= 4 and images_ok
    image = Image.open(io.BytesIO(screenshot)).convert("RGB")
    colours = image.getcolors(maxcolors=1_000_000)
    assert colours is None or len(colours) > 50, "the screenshot is (nearly) uniform: nothing was drawn"
    extrema = image.getextrema()
    assert any(low < 100 for low, _ in extrema) and any(high > 200 for _, high in extrema)
