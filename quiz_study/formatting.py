"""How the report's tables look: number formats, intervals as text, HTML tables, summary lines.

Display helpers turn the tables of :mod:`quiz_study.tables` into text and never compute.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from quiz_study import paths
from quiz_study.errors import StudyError
from quiz_study.tables import CONFIDENCE_LEVEL, TABLE_DESCRIPTIONS, regeneration_call
from quiz_study.targets import verdict_text
from suitebench import stats


def _format_number(value: Any, spec: str) -> str:
    # The engine's cell format, with a missing value (None, pd.NA) shown as n/a rather than blank.
    return "n/a" if value is None or value is pd.NA else stats.format_cell(value, spec)


def number_format(column: str) -> str:
    """The format spec of a column, from its name: ``*_s`` seconds 4 significant digits,
    ``*_pct`` one decimal, speedups and ratios 3 significant digits, p-values 2, counts per
    suite run whole numbers, anything else 4 significant digits."""
    name = column.removesuffix("_ci_low").removesuffix("_ci_high")
    if name.endswith("_pct"):
        return ".1f"
    if name == "rate":
        return ".3f"
    if name.endswith("_s") or name.endswith("_s_mean"):
        return ".4g"
    if "speedup" in name or name in ("hl_ratio",):
        return ".3g"
    if name in ("cliffs_delta",):
        return "+.2f"
    if "p_value" in name or name.startswith("mw_p") or name.startswith("p_holm") or name in ("p_bh", "level"):
        return ".2g"
    if name.endswith("_per_run"):
        return ".0f"
    return ".4g"


def format_measured(value: float, unit: str) -> str:
    """A measured value in its unit's precision: % one decimal, s four significant digits."""
    if unit == "%":
        return _format_number(value, ".1f")
    if unit == "s":
        return _format_number(value, ".4g")
    return (
        _format_number(value, ".0f")
        if isinstance(value, float) and float(value).is_integer()
        else _format_number(value, ".4g")
    )


def interval_cell(low: Any, high: Any, spec: str) -> str:
    """An interval as a table cell, `[low, high]` with the bounds formatted by `spec`; `n/a` when a
    bound is missing."""
    if low is None or high is None or pd.isna(low) or pd.isna(high):
        return "n/a"
    return f"[{format(float(low), spec)}, {format(float(high), spec)}]"


def percent_text(fraction: float, *, suffix: str = " %") -> str:
    """A fraction as a whole percentage (0.237 -> `24 %`); `n/a` when missing."""
    return "n/a" if pd.isna(fraction) else f"{round(fraction * 100) + 0:d}{suffix}"


def ci_text(low: float, high: float, spec: str, *, unit: str = "", missing: str = "CI n/a") -> str:
    """An interval in a sentence: `95 % CI <low> to <high><unit>`, the bounds formatted by `spec`
    (`"%"`: fractions as whole percentages); `missing` when a bound is missing."""
    if pd.isna(low) or pd.isna(high):
        return missing
    if spec == "%":
        return f"95 % CI {percent_text(low, suffix='')} to {percent_text(high)}"
    return f"95 % CI {low:{spec}} to {high:{spec}}{unit}"


def format_frame(frame: pd.DataFrame, *, columns: Sequence[str] | None = None) -> pd.DataFrame:
    """A table for display: numbers formatted by column name (:func:`number_format`), each
    ``X_ci_low``/``X_ci_high`` pair merged into one ``X 95 % CI`` column, booleans yes/no."""
    frame = frame if columns is None else frame[list(columns)]
    out: dict[str, list[str]] = {}
    skip: set[str] = set()
    level = frame.attrs.get("confidence_level", CONFIDENCE_LEVEL) * 100
    for column in frame.columns:
        name = str(column)
        if name in skip:
            continue
        if name.endswith("_ci_low") or name == "ci_low":
            prefix = name.removesuffix("ci_low")
            high = prefix + "ci_high"
            if high in frame.columns:
                base = prefix.removesuffix("_") or "measured"
                spec = number_format(base)
                out[f"{base} {level:.0f} % CI"] = [interval_cell(a, b, spec) for a, b in zip(frame[name], frame[high])]
                skip.add(high)
                continue
        spec = number_format(name)
        out[name] = [_format_number(v, spec) for v in frame[column]]
    return pd.DataFrame(out, index=frame.index)


def verdicts_display(verdicts: pd.DataFrame) -> pd.DataFrame:
    """The acceptance checklist for display: criterion, primary measure, measured, CI, target,
    verdict (met / not met / undetermined with the repetitions that would settle it), how."""
    rows = []
    for row in verdicts.itertuples(index=False):
        spec = ".1f" if row.unit == "%" else ".4g"
        unit = "" if row.unit not in ("%", "s") else f" {row.unit}"
        verdict = verdict_text(row.verdict, row.repetitions_to_settle)
        rows.append(
            {
                "criterion": row.criterion,
                "primary measure": row.primary_measure,
                "measured": format_measured(row.measured, row.unit) + unit,
                "95 % CI": interval_cell(row.ci_low, row.ci_high, spec),
                "target": ("< " if row.unit == "s" else ">= " if row.unit == "%" else "= ")
                + format_measured(row.target, row.unit)
                + unit,
                "verdict": verdict,
                "how it was measured": row.how,
            }
        )
    return pd.DataFrame(rows)


def seed_claims_display(claims: pd.DataFrame) -> pd.DataFrame:
    """The seed's claims beside ours, both columns labelled with whose figure they are."""
    rows = []
    for row in claims.itertuples(index=False):
        spec = ".1f" if row.unit == "%" else ".4g"
        rows.append(
            {
                "figure": row.figure,
                "the seed's claim (not measured here)": f"{format(row.seed_claim, 'g')} {row.unit}",
                "where the seed says it": row.seed_says,
                "our measurement": f"{format_measured(row.measured, row.unit)} {row.unit}",
                "our 95 % CI": interval_cell(row.ci_low, row.ci_high, spec),
                "how we measured it": row.how_we_measured,
            }
        )
    return pd.DataFrame(rows)


_TEST_COLUMNS = (*stats.COMPARISON_DISPLAY_COLUMNS, "median_base_s", "median_cand_s", "note")
_DISPLAY: dict[str, Any] = {
    "verdicts": verdicts_display,
    "seed_claims": seed_claims_display,
    "suite": lambda f: format_frame(f, columns=_TEST_COLUMNS),
    "categories": lambda f: format_frame(f, columns=_TEST_COLUMNS),
    "tests": lambda f: format_frame(f, columns=_TEST_COLUMNS),
    "reproducibility": lambda f: format_frame(f.drop(columns=["previous_run_id"], errors="ignore")),
}


def display_frame(tables: Mapping[str, pd.DataFrame], name: str) -> pd.DataFrame:
    """Table ``name`` of :func:`tables_for_run` formatted for display (strings only)."""
    if name not in tables:
        raise StudyError(f"no table {name!r}; tables: {', '.join(tables)}")
    formatter = _DISPLAY.get(name, format_frame)
    return formatter(tables[name])


def frame_html(
    frame: pd.DataFrame, *, table_id: str | None = None, caption: str | None = None, empty: str = "(none)"
) -> str:
    """A display frame as an HTML table (cells escaped; ``caption`` is HTML); ``empty`` for no rows."""
    if frame.empty:
        ident = f' id="{html.escape(table_id)}"' if table_id else ""
        return f'<p class="empty-table"{ident}>{html.escape(empty)}</p>'
    body = frame.to_html(index=False, escape=True, border=0, classes="report-table", table_id=table_id, na_rep="n/a")
    text = f"<figcaption>{caption}</figcaption>" if caption else ""
    return f'<figure class="report-table-figure">{body}{text}</figure>'


def table_html(tables: Mapping[str, pd.DataFrame], name: str, *, caption: bool = True) -> str:
    """Table ``name`` as HTML, captioned with the call that regenerates it."""
    run = tables["run"].iloc[0]
    text = None
    if caption:
        call = html.escape(regeneration_call(run["run_dir"], name))
        text = f"{html.escape(TABLE_DESCRIPTIONS.get(name, name))}. Regenerate: <code>{call}</code>"
    return frame_html(
        display_frame(tables, name), table_id=name, caption=text, empty=f"(table {name} is empty for this run)"
    )


def format_header(tables: Mapping[str, pd.DataFrame]) -> str:
    """Markdown naming the run, its profile and the regeneration call."""
    run = tables["run"].iloc[0]
    return (
        f"**Run `{run['run_id']}`** (profile `{run['profile']}`, status {run['status']}, "
        f"started {run['started_at']}, finished {run['finished_at']}): `{run['candidate']}` compared with "
        f"`{run['baseline']}`.\n\n"
        f"Every table in this report is computed from that run's files; regenerate any of them with "
        f"`{regeneration_call(run['run_dir'])}`."
    )


def format_verdict_summary(tables: Mapping[str, pd.DataFrame]) -> list[str]:
    """One sentence per criterion, plainly."""
    lines = []
    for row in tables["verdicts"].itertuples(index=False):
        status = verdict_text(row.verdict, row.repetitions_to_settle)
        spec = ".1f" if row.unit == "%" else ".4g"
        ci = interval_cell(row.ci_low, row.ci_high, spec)
        ci_part = f" (95 % CI {ci})" if ci != "n/a" else ""
        unit = f" {row.unit}"
        lines.append(
            f"{row.criterion}: {status}; {row.primary_measure}: "
            f"{format_measured(row.measured, row.unit)}{unit}{ci_part}."
        )
    return lines


def format_reproducibility(tables: Mapping[str, pd.DataFrame]) -> list[str]:
    """Plain statements: do the verdicts agree with the previous run, do the speedup CIs overlap."""
    run = tables["run"].iloc[0]
    summary = tables["reproducibility"]
    if summary.empty:
        return [
            f"No earlier complete run of profile '{run['profile']}' in {run['runs_dir']}: "
            "nothing to compare with yet (reproducibility is checked from the second run on)."
        ]
    lines = [f"Compared with the previous '{run['profile']}' run {run['previous_run_id']}:"]
    if run["previous_environment_differences"]:
        lines.append(
            f"Caution: that run was measured on another machine or Python ({run['previous_environment_differences']})."
        )
    verdicts = summary[summary["kind"] == "verdict"]
    disagree = verdicts[~verdicts["verdicts_agree"].astype(bool)]
    if disagree.empty:
        lines.append(f"All {len(verdicts)} verdicts agree.")
    else:
        for row in disagree.itertuples(index=False):
            lines.append(
                f"The verdicts DISAGREE on '{row.item}': {row.current_verdict} now, "
                f"{row.previous_verdict} in the previous run."
            )
    speedups = summary[summary["kind"] == "speedup"]
    for row in speedups.itertuples(index=False):
        now = interval_cell(row.current_ci_low, row.current_ci_high, ".3g")
        before = interval_cell(row.previous_ci_low, row.previous_ci_high, ".3g")
        values = f"{format(row.current, '.3g')}x {now} now, {format(row.previous, '.3g')}x {before} before"
        item = row.item[:1].upper() + row.item[1:]
        if row.cis_overlap is None or (isinstance(row.cis_overlap, float) and math.isnan(row.cis_overlap)):
            lines.append(f"{item}: the intervals cannot be compared, one is missing ({values}).")
        elif row.cis_overlap:
            lines.append(f"{item}: the 95 % intervals overlap ({values}).")
        else:
            lines.append(
                f"{item}: the 95 % intervals do NOT overlap ({values}); the two runs disagree by more than their noise."
            )
    tests = tables["reproducibility_tests"]
    known = tests.dropna(subset=["cis_overlap"]) if len(tests) else tests
    if len(known):
        apart = known[~known["cis_overlap"].astype(bool)]
        text = f"Per test, {len(known) - len(apart)} of {len(known)} speedup intervals overlap with the previous run's"
        if len(apart):
            names = ", ".join(t.rsplit("::", 1)[-1] for t in apart["test"][:5])
            text += (
                f"; {len(apart)} {'does' if len(apart) == 1 else 'do'} NOT ({names}{', ...' if len(apart) > 5 else ''})"
            )
        lines.append(text + ".")
    return lines


def study_command(run_dir: Path | str, *, sections: Sequence[str] | None = None) -> str:
    """The run_all.py command that continues the study of the run in ``run_dir``, or re-renders
    its report when it is complete; ``sections`` adds ``--with`` (an empty one: ``--with none``)."""
    run_dir = Path(run_dir).absolute()
    command = f"python run_all.py --resume {run_dir.name}"
    if sections is not None:
        command += f" --with {','.join(sections) or 'none'}"
    root = run_dir.parent.parent.parent
    if run_dir.parent.name == "runs" and run_dir.parent.parent.name == "data" and root != paths.ROOT:
        command += f" --output-root {paths.display_path(root)}"
    return command


def format_regeneration(tables: Mapping[str, pd.DataFrame]) -> str:
    """Markdown: how to regenerate every table, and the whole report."""
    run = tables["run"].iloc[0]
    names = "\n".join(f"- `{name}`: {text}" for name, text in TABLE_DESCRIPTIONS.items())
    return (
        "Every table above comes from one call on the run's files:\n\n"
        f"```python\nimport quiz_study.tables\ntables = {regeneration_call(run['run_dir'])}\n"
        'tables["verdicts"]\n```\n\n'
        f"The tables it returns:\n\n{names}\n\n"
        f"To re-execute the notebooks and re-export this page from the same run: "
        f"`{study_command(run['run_dir'] if Path(run['run_dir']).is_absolute() else paths.ROOT / run['run_dir'])}`."
    )


def markdown_lines(lines: Sequence[str]) -> str:
    """Lines as a Markdown bullet list."""
    return "\n".join(f"- {line}" for line in lines)
