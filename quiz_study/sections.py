"""The report's optional sections: SQLite vs PostgreSQL, serial vs parallel, and why it is faster.

`run_all.py --with postgres,parallel,why` (the `full` profile by default) records, after the
main run `<run-id>`, the runs these sections read, named after it so that the report finds them
from the main run alone:

* `<run-id>-environments`: `quiz_study.environments` (PostgreSQL strategies and `-n 2` variants);
* `<run-id>-why-design` (or `-attribution` and `-scaling`) and `<run-id>-why-floor`:
  `quiz_study.why.run_why_study`.

Each `*_blocks` function returns what a notebook cell displays (markdown, HTML tables, PNG
charts), computed from those runs' files; a section whose runs do not exist says so and names
the command that measures it.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pandas as pd

from quiz_study import environments, figures, formatting, why, why_figures
from quiz_study.errors import USER_ERRORS, StudyError
from quiz_study.paths import display_path

SECTIONS: tuple[str, ...] = ("why", "postgres", "parallel")
ENVIRONMENT_SUFFIX = "-environments"
WHY_SUFFIX = "-why"


def parse_sections(text: str) -> tuple[str, ...]:
    """`"postgres,why"` -> ("why", "postgres"); "all" -> every section; "none" or "" -> ().

    Raises
    ------
    StudyError
        An unknown name (the message lists the valid ones).
    """
    names = [name.strip() for name in text.split(",") if name.strip()]
    if names == ["all"]:
        return SECTIONS
    if names in ([], ["none"]):
        return ()
    unknown = [name for name in names if name not in SECTIONS]
    if unknown:
        raise StudyError(f"unknown section {unknown[0]!r}: choose from {', '.join(SECTIONS)}, all or none")
    return tuple(name for name in SECTIONS if name in names)


def environment_run_id(run_id: str) -> str:
    return f"{run_id}{ENVIRONMENT_SUFFIX}"


def why_run_prefix(run_id: str) -> str:
    return f"{run_id}{WHY_SUFFIX}"


def environment_run(run_dir: Path | str) -> Path | None:
    """The environment run recorded beside main run `run_dir`, if any."""
    run_dir = Path(run_dir)
    path = run_dir.parent / environment_run_id(run_dir.name)
    return path if (path / "metadata.json").is_file() else None


def why_runs(run_dir: Path | str) -> list[Path]:
    """The why-study runs recorded beside main run `run_dir` (empty when none)."""
    run_dir = Path(run_dir)
    prefix = why_run_prefix(run_dir.name) + "-"
    return sorted(
        path
        for path in run_dir.parent.glob(f"{prefix}*")
        if path.name.removeprefix(prefix).isidentifier() and (path / "metadata.json").is_file()
    )


# ---------------------------------------------------------------- display blocks


@dataclass(frozen=True)
class Block:
    """One thing a notebook cell shows."""

    kind: Literal["markdown", "html", "png"]
    content: str | bytes


def show(blocks: Iterable[Block]) -> None:
    """Display blocks in a notebook (IPython is imported only here)."""
    from IPython.display import HTML, Image, Markdown, display

    kinds = {"markdown": Markdown, "html": HTML, "png": Image}
    for block in blocks:
        display(kinds[block.kind](block.content) if block.kind != "png" else Image(data=block.content, format="png"))


def _not_measured(section: str, run_dir: Path) -> list[Block]:
    return [
        Block(
            "markdown",
            (
                f"*Not measured in run `{run_dir.name}`.* `python run_all.py --with {section}` adds this section "
                f"(the `full` profile has it by default)."
            ),
        )
    ]


def _table(frame: pd.DataFrame, caption: str, *, columns: Sequence[str] | None = None) -> Block:
    shown = frame if columns is None else frame[[c for c in columns if c in frame.columns]]
    return Block(
        "html", formatting.frame_html(formatting.format_frame(shown), caption=caption, empty=f"({caption}: no rows)")
    )


def _forest(
    frame: pd.DataFrame, *, unit: Iterable[str], value: str, low: str, high: str, title: str, xlabel: str
) -> Block:
    data = pd.DataFrame(
        {
            "unit": list(unit),
            "speedup": frame[value].to_numpy(float),
            "speedup_ci_low": frame[low].to_numpy(float),
            "speedup_ci_high": frame[high].to_numpy(float),
        }
    )
    chart = figures.speedup_forest(data, target_improvement_pct=None, title=title, xlabel=xlabel)
    return Block("png", figures.png_bytes(chart))


def _regenerate(call: str) -> str:
    return f"Regenerate: <code>{call}</code>"


def _environment_tables(run_dir: Path) -> tuple[Path, dict[str, pd.DataFrame]] | None:
    path = environment_run(run_dir)
    if path is None:
        return None
    return path, _tables_of_files(path, *_file_stamps(path))


def _file_stamps(path: Path) -> tuple[int, ...]:
    return tuple(
        (path / name).stat().st_mtime_ns if (path / name).exists() else 0
        for name in ("metadata.json", "repetitions.csv", "timings.csv")
    )


@functools.lru_cache(maxsize=4)
def _tables_of_files(path: Path, *stamps: int) -> dict[str, pd.DataFrame]:
    # The PostgreSQL and parallel sections read the same tables (seconds of bootstrap): computed
    # once per version of the run's files.
    return environments.environment_tables(path)


def _environment_header(path: Path, tables: dict[str, pd.DataFrame]) -> Block:
    run = tables["environment_run"].iloc[0]
    return Block(
        "markdown",
        (
            f"Run `{run['run_id']}` ({run['status']}): {run['selection']}, {run['variants']} variants interleaved in "
            f"the same blocks, {run['measured_repetitions_per_variant']} measured repetitions each (warm-up excluded, "
            f"{run['invalid_measured_repetitions']} invalid). Tables: "
            f"`quiz_study.environments.environment_tables({display_path(path)!r})`."
        ),
    )


def postgres_blocks(run_dir: Path | str) -> list[Block]:
    """SQLite vs PostgreSQL: the architecture speedup on each storage, every isolation strategy on PostgreSQL."""
    run_dir = Path(run_dir)
    found = _environment_tables(run_dir)
    if found is None or found[1]["postgres_strategies"].empty:
        return _not_measured("postgres", run_dir)
    path, tables = found
    call = f"quiz_study.environments.environment_tables({display_path(path)!r})"
    strategies = tables["postgres_strategies"]
    blocks = [_environment_header(path, tables)]
    blocks.append(
        _table(
            tables["storage_speedups"],
            "baseline → transactional on each storage, serial (suite: sum of test totals and process wall time; "
            "median per-test improvement with a repetition bootstrap). " + _regenerate(call + '["storage_speedups"]'),
            columns=(
                "storage",
                "measure",
                "median_base_s",
                "median_cand_s",
                "speedup",
                "speedup_ci_low",
                "speedup_ci_high",
                "mw_p_value",
                "cliffs_delta",
                "median_test_improvement_pct",
                "improvement_ci_low",
                "improvement_ci_high",
            ),
        )
    )
    blocks.append(
        _table(
            strategies,
            "PostgreSQL, per isolation strategy under each preset's wiring: median per-test time, median suite time "
            "(sum of test totals), speedup over the baseline preset on PostgreSQL, and each preset's PostgreSQL / "
            "SQLite time ratio (> 1: PostgreSQL slower). " + _regenerate(call + '["postgres_strategies"]'),
            columns=(
                "wiring_of",
                "isolation",
                "n_reps",
                "n_tests",
                "median_test_s",
                "median_suite_s",
                "speedup_vs_pg_baseline",
                "speedup_ci_low",
                "speedup_ci_high",
                "mw_p_value",
                "median_test_improvement_pct",
                "improvement_ci_low",
                "improvement_ci_high",
                "pg_over_sqlite",
                "pg_over_sqlite_ci_low",
                "pg_over_sqlite_ci_high",
            ),
        )
    )
    compared = strategies.dropna(subset=["speedup_ci_low"])
    if not compared.empty:
        blocks.append(
            _forest(
                compared,
                unit=[f"{w} wiring, {i}" for w, i in zip(compared["wiring_of"], compared["isolation"])],
                value="speedup_vs_pg_baseline",
                low="speedup_ci_low",
                high="speedup_ci_high",
                title="PostgreSQL: suite speedup over the baseline preset (recreate), 95 % bootstrap CIs",
                xlabel="speedup = median baseline-on-PostgreSQL suite time / strategy's (log; > 1: faster)",
            )
        )
    return blocks


def parallel_blocks(run_dir: Path | str) -> list[Block]:
    """Serial vs `pytest -n 2`, next to the architecture speedup at each worker count."""
    run_dir = Path(run_dir)
    found = _environment_tables(run_dir)
    if found is None or found[1]["parallel_speedups"].empty:
        return _not_measured("parallel", run_dir)
    path, tables = found
    call = f'quiz_study.environments.environment_tables({display_path(path)!r})["parallel_speedups"]'
    speedups = tables["parallel_speedups"]
    blocks = [
        _environment_header(path, tables),
        _table(
            speedups,
            "process wall time: each preset serial vs parallel (comparison = parallel), and transactional vs baseline "
            "at the same worker count (comparison = architecture); ratio of medians, 95 % bootstrap CI. "
            + _regenerate(call),
            columns=(
                "storage",
                "comparison",
                "workers",
                "baseline_variant",
                "candidate_variant",
                "n_base",
                "n_cand",
                "median_base_s",
                "median_cand_s",
                "speedup",
                "speedup_ci_low",
                "speedup_ci_high",
            ),
        ),
    ]
    blocks.append(
        _forest(
            speedups,
            unit=[
                f"{s}: {b} → {c}"
                for s, b, c in zip(speedups["storage"], speedups["baseline_variant"], speedups["candidate_variant"])
            ],
            value="speedup",
            low="speedup_ci_low",
            high="speedup_ci_high",
            title="Parallel and architecture speedups of the process wall time, 95 % bootstrap CIs",
            xlabel="speedup = median wall time of the left variant / the right one (log; > 1: right faster)",
        )
    )
    return blocks


WHY_TABLES: tuple[tuple[str, str], ...] = (
    ("attribution_fit", "the attribution model: design, cells, processes, terms, interval basis"),
    ("waterfall", "baseline → transactional: each switch's share of the change in log per-test time"),
    ("effects", "each switch's main effect as a ratio of per-test time (< 1: faster), 95 % CI"),
    ("interactions", "interactions estimated by the design"),
    ("floor_overall", "time above the floor (same test bodies, nothing reset), per architecture"),
    ("floor_categories", "time above the floor per category"),
    ("floor_tests", "time above the floor per test (paired t interval over blocks)"),
    ("scaling_slopes", "fitted slopes per architecture and knob, 95 % CI"),
    ("projection", "PROJECTION to 5,000 tests (not a measurement)"),
)


def why_blocks(run_dir: Path | str) -> list[Block]:
    """Attribution waterfall, floor and scaling from the why-study runs beside the main run."""
    run_dir = Path(run_dir)
    paths = why_runs(run_dir)
    if not paths:
        return _not_measured("why", run_dir)
    try:
        tables = why.why_tables(*paths)
    except USER_ERRORS as problem:
        return [Block("markdown", f"*The why-study runs of `{run_dir.name}` could not be analysed: {problem}*")]
    call = f"quiz_study.why.why_tables({', '.join(repr(display_path(p)) for p in paths)})"
    blocks = [
        Block(
            "markdown",
            (
                "Runs: " + ", ".join(f"`{p.name}`" for p in paths) + f". Every table: `{call}`; the notebook "
                "`05_why_faster` executed beside this report shows them all."
            ),
        )
    ]
    charts = why_figures.why_figures(tables)
    for name, caption in WHY_TABLES:
        if name in tables:
            blocks.append(
                Block(
                    "html",
                    formatting.frame_html(
                        why.display_table(tables, name).astype(str),
                        caption=f"{caption}. {_regenerate(call + f'[{name!r}]')}",
                        empty=f"({name}: no rows)",
                    ),
                )
            )
        chart = {"waterfall": "waterfall", "floor_categories": "floor", "scaling_slopes": "scaling"}.get(name)
        if chart in charts:
            blocks.append(Block("png", figures.png_bytes(charts[chart])))
    return blocks


# ---------------------------------------------------------------- end-of-study summary


def _ci_text(low: float, high: float, spec: str) -> str:
    return "CI n/a" if pd.isna(low) or pd.isna(high) else f"95 % CI {low:{spec}} to {high:{spec}}"


def summary_lines(run_dir: Path | str) -> list[str]:
    """The optional sections' key figures for the end-of-study summary (none when not measured)."""
    run_dir = Path(run_dir)
    lines: list[str] = []
    found = _environment_tables(run_dir)
    if found is not None:
        path, tables = found
        storage = tables["storage_speedups"]
        for row in storage[storage["measure"] == "sum of test totals"].itertuples(index=False):
            lines.append(
                f"  {row.storage}: transactional {row.speedup:.3g}x faster than baseline "
                f"({_ci_text(row.speedup_ci_low, row.speedup_ci_high, '.3g')}), suite sum of test times"
            )
        for row in tables["postgres_strategies"].itertuples(index=False):
            lines.append(
                f"  postgres, {row.wiring_of} wiring, {row.isolation}: median test {row.median_test_s:.4g} s, "
                f"{row.speedup_vs_pg_baseline:.3g}x vs baseline on postgres "
                f"({_ci_text(row.speedup_ci_low, row.speedup_ci_high, '.3g')})"
            )
        for row in tables["parallel_speedups"].itertuples(index=False):
            if row.comparison == "parallel":
                lines.append(
                    f"  {row.storage}: {row.architecture} -n {row.workers} vs serial: {row.speedup:.3g}x "
                    f"({_ci_text(row.speedup_ci_low, row.speedup_ci_high, '.3g')}), process wall time"
                )
        lines.insert(0, f"PostgreSQL / parallel (run {path.name}):")
    paths = why_runs(run_dir)
    if paths:
        try:
            tables = why.why_tables(*paths)
        except USER_ERRORS as problem:
            return [*lines, f"why-study: cannot analyse its runs: {problem}"]
        lines.append(f"why it is faster (runs {', '.join(p.name for p in paths)}):")
        for row in tables.get("waterfall", pd.DataFrame()).itertuples(index=False):
            if pd.notna(row.share):
                lines.append(
                    f"  {row.switch}: {row.share * 100:.0f} % of the change "
                    f"({_ci_text(row.share_ci_low * 100, row.share_ci_high * 100, '.0f')}){' - ' + row.flag if row.flag else ''}"
                )
        for row in tables.get("floor_overall", pd.DataFrame()).itertuples(index=False):
            lines.append(
                f"  {row.architecture}: {row.ratio_to_floor:.3g}x the floor "
                f"({_ci_text(row.ratio_ci_low, row.ratio_ci_high, '.3g')})"
            )
    return lines
