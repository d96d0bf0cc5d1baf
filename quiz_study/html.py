"""The report as one self-contained HTML page from an executed notebook.

:func:`export_html` renders an executed notebook without code or prompts, figures as data URIs,
and refuses anything that would be fetched from the network.
"""

from __future__ import annotations

import html
import re
from pathlib import Path

from quiz_study.errors import StudyError

# ---------------------------------------------------------------- HTML export

_PAGE_CSS = """
body { font-family: -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; color: #222;
       max-width: 1100px; margin: 2em auto; padding: 0 1.5em; line-height: 1.45; background: #fff; }
h1, h2, h3 { line-height: 1.2; } h2 { border-bottom: 1px solid #ddd; padding-bottom: .2em; margin-top: 1.8em; }
code, pre { font-family: "SFMono-Regular", Consolas, "Liberation Mono", monospace; font-size: .9em; }
pre { background: #f6f8fa; padding: .8em; overflow-x: auto; border-radius: 4px; }
table.report-table, .rendered_html table { border-collapse: collapse; margin: .6em 0; font-size: .85em; }
table.report-table th, table.report-table td, .rendered_html th, .rendered_html td {
  border: 1px solid #d0d7de; padding: .25em .55em; text-align: left; vertical-align: top; }
table.report-table th { background: #f0f3f6; }
table.report-table tr:nth-child(even) td { background: #fafbfc; }
figure.report-table-figure { margin: 0 0 1.2em 0; overflow-x: auto; }
figcaption { font-size: .8em; color: #555; margin-top: .2em; }
img { max-width: 100%; height: auto; }
.output_stderr, .output_error { display: none; }
a.anchor-link { display: none; }
.jp-OutputPrompt, .prompt, .input_prompt, .output_prompt { display: none; }
"""

_EXTERNAL = re.compile(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", re.IGNORECASE)
_EXTERNAL_CSS = re.compile(r"""(?:@import|url\(\s*["']?\s*(?:https?:)?//)""", re.IGNORECASE)


def external_references(text: str) -> list[str]:
    """``src``/``href`` attributes and CSS imports that point at another host (a self-contained page has none)."""
    found = [text[m.start() : m.start() + 80] for m in _EXTERNAL.finditer(text)]
    found += [text[m.start() : m.start() + 80] for m in _EXTERNAL_CSS.finditer(text)]
    return found


def export_html(executed_notebook_path: Path | str, html_path: Path | str, *, title: str | None = None) -> Path:
    """Render an executed notebook as one self-contained HTML page.

    nbconvert's ``basic`` template (cell bodies only: no MathJax, require.js or font links, which
    the lab/classic templates fetch from CDNs) with inputs and prompts excluded, wrapped in a
    minimal page with inline CSS. Images stay inline as ``data:`` URIs.

    Parameters
    ----------
    executed_notebook_path : path
        A notebook with outputs (e.g. papermill's copy under ``reports/<run-id>/``).
    html_path : path
        Where to write the page.
    title : str, optional
        The page title (default: the notebook's file name).

    Returns
    -------
    Path
        ``html_path``.

    Raises
    ------
    StudyError
        Unreadable notebook, or the page would reference anything outside itself.
    """
    import nbformat
    from nbconvert import HTMLExporter

    source = Path(executed_notebook_path)
    try:
        notebook = nbformat.read(source, as_version=4)
    except (OSError, ValueError) as problem:
        raise StudyError(f"cannot read notebook {source}: {problem}") from None
    for cell in notebook.cells:
        if cell.get("cell_type") == "code":
            # A failed cell's traceback and anything the kernel printed on stderr are not report content.
            cell["outputs"] = [
                o
                for o in cell.get("outputs", [])
                if o.get("output_type") != "error"
                and not (o.get("output_type") == "stream" and o.get("name") == "stderr")
                and not {"application/javascript", "text/javascript"} & set(o.get("data", {}))
            ]
    exporter = HTMLExporter(
        template_name="basic",
        exclude_input=True,
        exclude_input_prompt=True,
        exclude_output_prompt=True,
        exclude_raw=True,
    )
    body, _ = exporter.from_notebook_node(notebook)
    body = re.sub(r"<script\b.*?</script>", "", body, flags=re.DOTALL | re.IGNORECASE)
    title = title or source.stem
    page = (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{html.escape(title)}</title>\n<style>{_PAGE_CSS}</style>\n</head>\n<body>\n{body}\n</body>\n</html>\n"
    )
    external = external_references(page)
    if external:
        raise StudyError(f"the report would load {len(external)} external resource(s), e.g. {external[0]!r}")
    target = Path(html_path)
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.tmp")
    temporary.write_text(page, encoding="utf-8")
    temporary.replace(target)
    return target
