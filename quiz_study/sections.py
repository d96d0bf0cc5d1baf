"""The report's sections beside the main run: the answer first, why it is faster, PostgreSQL, parallel.

`run_all.py` records the runs these sections read beside the main run `<run-id>`, named after it
so that the report finds them from the main run alone:

* `<run-id>-why-factorial` and `<run-id>-why-floor` (and `-why-scaling` at full size):
  `quiz_study.why.run_why_study`, measured before the main run by the smoke and standard
  profiles (and `--with why`);
* `<run-id>-environments`: `quiz_study.environments` (PostgreSQL strategies and `-n 2` variants),
  with `--with postgres,parallel` or the `full` profile.

`answer_blocks` is the report's first screen: the verdicts, one figure of where the time went
and one sentence per finding. Each `*_blocks` function returns what a notebook cell displays
(markdown, HTML tables, PNG charts), computed from those runs' files; a section whose runs do not
exist says so and names the command that measures it.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, NamedTuple

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
                f"({'the default, smoke and full profiles have' if section == 'why' else 'the `full` profile has'} "
                "it by default)."
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


class RunTables(NamedTuple):
    """Tables computed from the runs in `paths`."""

    paths: list[Path]
    tables: dict[str, pd.DataFrame]


def _environment_tables(run_dir: Path) -> RunTables | None:
    path = environment_run(run_dir)
    if path is None:
        return None
    return RunTables([path], _tables_of_files(path, *_file_stamps(path)))


def _measured_environment(run_dir: Path, table: str) -> RunTables | None:
    """The environment run's tables when its `table` has rows (None: the section was not measured)."""
    found = _environment_tables(run_dir)
    return found if found is not None and not found.tables[table].empty else None


def _without(columns: Sequence[str], *hidden: str) -> tuple[str, ...]:
    return tuple(column for column in columns if column not in hidden)


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


def _environment_call(path: Path, table: str | None = None) -> str:
    """The call that regenerates the environment run's tables (one of them with `table`)."""
    call = f"quiz_study.environments.environment_tables({display_path(path)!r})"
    return call + (f'["{table}"]' if table else "")


def _environment_header(path: Path, tables: dict[str, pd.DataFrame]) -> Block:
    run = tables["environment_run"].iloc[0]
    return Block(
        "markdown",
        (
            f"Run `{run['run_id']}` ({run['status']}): {run['selection']}, {run['variants']} variants interleaved in "
            f"the same blocks, {run['measured_repetitions_per_variant']} measured repetitions each (warm-up excluded, "
            f"{run['invalid_measured_repetitions']} invalid). Tables: `{_environment_call(path)}`."
        ),
    )


def postgres_blocks(run_dir: Path | str) -> list[Block]:
    """SQLite vs PostgreSQL: the architecture speedup on each storage, every isolation strategy on PostgreSQL."""
    run_dir = Path(run_dir)
    found = _measured_environment(run_dir, "postgres_strategies")
    if found is None:
        return _not_measured("postgres", run_dir)
    path, tables = found.paths[0], found.tables
    strategies = tables["postgres_strategies"]
    blocks = [_environment_header(path, tables)]
    blocks.append(
        _table(
            tables["storage_speedups"],
            "baseline → transactional on each storage, serial (suite: sum of test totals and process wall time; "
            "median per-test improvement with a delete-one-process jackknife t interval). "
            + _regenerate(_environment_call(path, "storage_speedups")),
            columns=_without(environments.STORAGE_COLUMNS, "baseline_variant", "candidate_variant"),
        )
    )
    blocks.append(
        _table(
            strategies,
            "PostgreSQL, per isolation strategy under each preset's wiring: median per-test time, median suite time "
            "(sum of test totals), speedup over the baseline preset on PostgreSQL, and each preset's PostgreSQL / "
            "SQLite time ratio (> 1: PostgreSQL slower). "
            + _regenerate(_environment_call(path, "postgres_strategies")),
            columns=_without(environments.STRATEGY_COLUMNS, "variant", "vs_sqlite_preset"),
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
    found = _measured_environment(run_dir, "parallel_speedups")
    if found is None:
        return _not_measured("parallel", run_dir)
    path, tables = found.paths[0], found.tables
    speedups = tables["parallel_speedups"]
    blocks = [
        _environment_header(path, tables),
        _table(
            speedups,
            "process wall time: each preset serial vs parallel (comparison = parallel), and transactional vs baseline "
            "at the same worker count (comparison = architecture); ratio of medians, 95 % bootstrap CI. "
            + _regenerate(_environment_call(path, "parallel_speedups")),
            columns=("storage", *_without(environments.SPEEDUP_COLUMNS, "architecture", "ci_method", "note")),
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
    ("attribution_fit", "the attribution model: one value per process, OLS of the 2 x 2 x 3 factorial, residual df"),
    (
        "shares",
        "each switch's share of the baseline → transactional change in log time: range over the orders in "
        "which the switches can be applied, their mean (95 % CI) and the 95 % band over the orders",
    ),
    ("totals", "the model's total speedup beside the directly measured one (main run)"),
    ("effects", "main effects and interactions as time ratios (< 1: faster), 95 % CI on the residual df"),
    ("model", "F tests of every term of the factorial (statsmodels, type III, residual df of processes)"),
    ("design", "the 12 cells, their processes and mean values"),
    ("floor_categories", "time above the floor (nothing reset) per category, 95 % CI over paired blocks"),
    ("floor_overall", "time above the floor over all floor tests, per architecture"),
    ("floor_phases", "where the time above the floor sits: setup, call, teardown"),
    ("floor_tests", "time above the floor per test (paired t interval over blocks)"),
    ("scaling_slopes", "fitted slopes per architecture and knob, 95 % CI"),
    ("projection", "PROJECTION to 5,000 tests (not a measurement)"),
)
# Interval columns renamed so that quiz_study.formatting merges each pair into one "95 % CI" column.
_CI_NAMES: dict[str, str] = {
    "ci_low": "time_ratio_ci_low",
    "ci_high": "time_ratio_ci_high",
    "overhead_ci_low_s": "overhead_s_ci_low",
    "overhead_ci_high_s": "overhead_s_ci_high",
}
WHY_CHARTS: dict[str, str] = {
    "shares": "shares",
    "effects": "effects",
    "floor_categories": "floor",
    "scaling_slopes": "scaling",
}


def _why_paths(run_dir: Path) -> list[Path]:
    """The why runs beside the main run, and the main run itself (its direct contrast)."""
    paths = why_runs(run_dir)
    return [*paths, run_dir] if paths and (run_dir / "metadata.json").is_file() else paths


def why_tables_for(run_dir: Path | str) -> RunTables | None:
    """`why.why_tables` of the runs beside main run `run_dir` (None when there are none),
    computed once per version of their files."""
    paths = _why_paths(Path(run_dir))
    if not paths:
        return None
    stamps = tuple(stamp for path in paths for stamp in _file_stamps(path))
    return RunTables(paths, _why_tables_of_files(tuple(paths), stamps))


@functools.lru_cache(maxsize=4)
def _why_tables_of_files(paths: tuple[Path, ...], stamps: tuple[int, ...]) -> dict[str, pd.DataFrame]:
    return why.why_tables(*paths)


def _why_call(paths: Sequence[Path]) -> str:
    return f"quiz_study.why.why_tables({', '.join(repr(display_path(p)) for p in paths)})"


def why_blocks(run_dir: Path | str) -> list[Block]:
    """Shares with their ranges, the model, the floor (and scaling) from the why runs beside the main run."""
    run_dir = Path(run_dir)
    try:
        found = why_tables_for(run_dir)
    except USER_ERRORS as problem:
        return [Block("markdown", f"*The why-study runs of `{run_dir.name}` could not be analysed: {problem}*")]
    if found is None:
        return _not_measured("why", run_dir)
    paths, tables = found
    call = _why_call(paths)
    fit = tables.get("attribution_fit", pd.DataFrame())
    blocks = [
        Block(
            "markdown",
            (
                "Runs: "
                + ", ".join(f"`{p.name}`" for p in paths)
                + ". "
                + (
                    f"{fit['n_processes'].iloc[0]} processes ({fit['processes_per_cell'].iloc[0]} per cell, "
                    f"interleaved in random order; {fit['process_model'].iloc[0]}) over {fit['n_tests'].iloc[0]} tests; "
                    f"weighting: {fit['weighting'].iloc[0]}. "
                    if len(fit)
                    else ""
                )
                + f"Every table: `{call}`; notebook `05_why_faster` shows them all (executed beside this report by the "
                "full profile; `jupyter lab notebooks/` opens it on these runs)."
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
                        (
                            why.display_table(tables, name)
                            if name == "shares"
                            else formatting.format_frame(why.display_table(tables, name).rename(columns=_CI_NAMES))
                        ).astype(str),
                        caption=f"{caption}. {_regenerate(call + f'[{name!r}]')}",
                        empty=f"({name}: no rows)",
                    ),
                )
            )
        chart = WHY_CHARTS.get(name)
        if chart in charts and chart != "shares":
            blocks.append(Block("png", figures.png_bytes(charts[chart])))
    return blocks


# ---------------------------------------------------------------- the first screen


# A finding's sentence says "no interval" where the end-of-study summary's terse lines say "CI n/a".
_finding_ci = functools.partial(formatting.ci_text, missing="no interval")


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "s")


def why_findings(tables: dict[str, pd.DataFrame]) -> list[str]:
    """One sentence per finding of the why tables: each switch's share (range over the orders),
    the interactions that matter, the model's total beside the direct measurement, the floor."""
    lines: list[str] = []
    shares = tables.get("shares", pd.DataFrame())
    fit = tables.get("attribution_fit", pd.DataFrame())
    if len(shares):
        four = shares[(shares["view"] == "session wiring, then isolation") & (shares["form"] == "time-weighted")]
        for row in four.sort_values("share_mean", ascending=False).itertuples(index=False):
            title = why_figures.SWITCH_TITLES.get(row.switch, row.switch).replace("\n", " (") + ")"
            lines.append(
                f"{title[:1].upper() + title[1:]} accounts for {formatting.percent_text(row.share_min)} to "
                f"{formatting.percent_text(row.share_max)} "
                f"of the speedup of the summed test time, depending on the order the switches are applied in "
                f"(range over {row.n_orders} orders; their mean {formatting.percent_text(row.share_mean)}, "
                f"{_finding_ci(row.share_mean_ci_low, row.share_mean_ci_high, '%')})."
            )
    effects = tables.get("effects", pd.DataFrame())
    if len(effects) and len(fit) and int(fit["residual_df"].iloc[0]) > 0:
        weighted = effects[(effects["form"] == "time-weighted") & (effects["kind"] != "main effect")]
        strong = weighted[weighted["distinguishable_from_zero"].astype(bool)]
        if len(strong):
            parts = [
                f"{row.term} (time ratio {row.time_ratio:.2f}, {_finding_ci(row.ci_low, row.ci_high, '.2f')}: "
                + ("with one switched, the other saves less" if row.time_ratio > 1 else "together they save more")
                + ")"
                for row in strong.itertuples(index=False)
            ]
            lines.append("The switches interact, which is why a share depends on the order: " + "; ".join(parts) + ".")
        else:
            lines.append("No interaction between the switches is distinguishable from zero at this size.")
    totals = tables.get("totals", pd.DataFrame())
    if len(totals):
        weighted = totals[totals["form"] == "time-weighted"]
        model = weighted[weighted["source"] == "factorial model"]
        direct = weighted[(weighted["source"] != "factorial model") & (weighted["tests"] == "whole suite")]
        same_tests = weighted[(weighted["source"] != "factorial model") & (weighted["tests"] != "whole suite")]
        if len(model):
            m = model.iloc[0]
            stratified = len(fit) and "stratified" in str(fit["weighting"].iloc[0])
            text = (
                f"The factorial's model puts the speedup of the summed test time at {m.speedup:.2f}× "
                f"({_finding_ci(m.speedup_ci_low, m.speedup_ci_high, '.2f')}; {_plural(int(m.n_tests), 'test')}"
                + (", weighted to stand for the suite" if stratified else "")
                + ")"
            )
            measured = [
                f"{d.speedup:.2f}× {where} ({_finding_ci(d.speedup_ci_low, d.speedup_ci_high, '.2f')})"
                for rows, where in ((same_tests, "on the same tests, same weights"), (direct, "over the whole suite"))
                for d in rows.head(1).itertuples(index=False)
            ]
            if measured:
                text += "; the main run measured " + " and ".join(measured)
            lines.append(text + ".")
    overall = tables.get("floor_overall", pd.DataFrame())
    categories = tables.get("floor_categories", pd.DataFrame())
    for row in overall.itertuples(index=False):
        name = row.architecture[:1].upper() + row.architecture[1:]
        text = (
            f"{name} spends {row.overhead_s * 1000:.1f} ms per test above the floor (nothing reset; "
            f"{_finding_ci(row.overhead_ci_low_s * 1000, row.overhead_ci_high_s * 1000, '.1f', unit=' ms')}; "
            f"{_plural(int(row.n_tests), 'test')} in {_plural(int(row.n_blocks), 'paired block')}), "
            f"{formatting.percent_text(row.overhead_share)} of its time"
        )
        part = categories[categories["architecture"] == row.architecture] if len(categories) else categories
        if len(part) > 1:
            worst = part.sort_values("overhead_s", ascending=False).iloc[0]
            text += (
                f"; the most in {worst['category']}: {worst['overhead_s'] * 1000:.1f} ms "
                f"({_finding_ci(worst.overhead_ci_low_s * 1000, worst.overhead_ci_high_s * 1000, '.1f', unit=' ms')})"
            )
        lines.append(text + ".")
    return lines


def answer_blocks(run_dir: Path | str, tables: dict[str, pd.DataFrame]) -> list[Block]:
    """The report's first screen: the verdicts, one figure of where the time went, one sentence
    per finding.

    Parameters
    ----------
    run_dir : path
        The main run.
    tables : dict
        `quiz_study.tables.tables_for_run(run_dir)`: the verdicts are read from it through
        `quiz_study.formatting` (never recomputed here).

    Returns
    -------
    list of Block
        The verdict table, the figure (each switch's share with its range over the orders when
        the why section was measured, else setup / call / teardown per architecture) and the
        findings as a bullet list.
    """
    run_dir = Path(run_dir)
    blocks = [Block("html", formatting.table_html(tables, "verdicts"))]
    findings = list(formatting.format_verdict_summary(tables))
    try:
        found = why_tables_for(run_dir)
    except USER_ERRORS as problem:
        found = None
        findings.append(f"Why it is faster could not be analysed: {problem}.")
    why_tables = found.tables if found is not None else {}
    if "shares" in why_tables:
        chart = why_figures.shares_figure(why_tables["shares"], why_tables.get("totals"))
    else:
        chart = figures.phase_breakdown(tables["phases"], tables.get("phases_by_category"))
        if found is None:
            findings.append(
                f"Why it is faster was not measured in run `{run_dir.name}` (`python run_all.py --with why` measures it); "
                "the figure shows where each architecture's process spends its time instead."
            )
    blocks.append(Block("png", figures.png_bytes(chart)))
    findings += why_findings(why_tables)
    blocks.append(Block("markdown", formatting.markdown_lines(findings)))
    return blocks


# ---------------------------------------------------------------- end-of-study summary


def summary_lines(run_dir: Path | str) -> list[str]:
    """The optional sections' key figures for the end-of-study summary (none when not measured)."""
    run_dir = Path(run_dir)
    lines: list[str] = []
    found = _environment_tables(run_dir)
    if found is not None:
        path, tables = found.paths[0], found.tables
        storage = tables["storage_speedups"]
        for row in storage[storage["measure"] == "sum of test totals"].itertuples(index=False):
            lines.append(
                f"  {row.storage}: transactional {row.speedup:.3g}x faster than baseline "
                f"({formatting.ci_text(row.speedup_ci_low, row.speedup_ci_high, '.3g')}), suite sum of test times"
            )
        for row in tables["postgres_strategies"].itertuples(index=False):
            lines.append(
                f"  postgres, {row.wiring_of} wiring, {row.isolation}: median test {row.median_test_s:.4g} s, "
                f"{row.speedup_vs_pg_baseline:.3g}x vs baseline on postgres "
                f"({formatting.ci_text(row.speedup_ci_low, row.speedup_ci_high, '.3g')})"
            )
        for row in tables["parallel_speedups"].itertuples(index=False):
            if row.comparison == "parallel":
                lines.append(
                    f"  {row.storage}: {row.architecture} -n {row.workers} vs serial: {row.speedup:.3g}x "
                    f"({formatting.ci_text(row.speedup_ci_low, row.speedup_ci_high, '.3g')}), process wall time"
                )
        lines.insert(0, f"PostgreSQL / parallel (run {path.name}):")
    try:
        found = why_tables_for(run_dir)
    except USER_ERRORS as problem:
        return [*lines, f"why-study: cannot analyse its runs: {problem}"]
    if found is not None:
        paths, tables = found
        lines.append(f"why it is faster (runs {', '.join(p.name for p in paths)}):")
        lines += [f"  {line}" for line in why_findings(tables)]
    return lines
