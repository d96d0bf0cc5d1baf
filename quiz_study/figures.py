"""The study's charts: each function takes tidy tables and returns a matplotlib Figure.

Figures are built with ``matplotlib.figure.Figure`` directly, never through pyplot, so nothing
here touches a global backend or figure registry (the Agg canvas renders them; a notebook shows
them with ``IPython.display.Image(png_bytes(fig))``). Inputs are the tidy ``timings.csv`` /
``repetitions.csv`` frames or the tables of :func:`quiz_study.tables.tables_for_run`.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from quiz_study.errors import StudyError
from suitebench.stats import speedup_from_improvement

FIXTURE_PREFIX = "<fixture:"
PHASES: tuple[str, ...] = ("setup", "call", "teardown")
# Fixed colours so an architecture looks the same in every chart.
VARIANT_COLOURS: dict[str, str] = {"baseline": "#c44e52", "transactional": "#4c72b0"}
_OTHER_COLOURS = ("#55a868", "#8172b2", "#ccb974", "#64b5cd", "#937860", "#da8bc3")
PHASE_COLOURS: dict[str, str] = {
    "setup": "#dd8452",
    "call": "#4c72b0",
    "teardown": "#937860",
    "session fixtures": "#8c8c8c",
    "outside tests": "#d9d9d9",
}


def variant_colour(variant: str, variants: Sequence[str] = ()) -> str:
    """Colour of a variant: fixed for the presets, then a cycle in the order given."""
    if variant in VARIANT_COLOURS:
        return VARIANT_COLOURS[variant]
    others = [v for v in variants if v not in VARIANT_COLOURS]
    index = others.index(variant) if variant in others else abs(hash(variant))
    return _OTHER_COLOURS[index % len(_OTHER_COLOURS)]


def new_figure(width_in: float, height_in: float) -> Figure:
    """A Figure on the Agg canvas, not registered with pyplot."""
    figure = Figure(figsize=(width_in, height_in), layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def png_bytes(figure: Figure, *, dpi: int = 110) -> bytes:
    """The figure as PNG bytes (what the notebooks display and the HTML report embeds)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def message_figure(text: str, *, width_in: float = 8.0, height_in: float = 1.2) -> Figure:
    """A small figure that only states why a chart cannot be drawn."""
    figure = new_figure(width_in, height_in)
    axes = figure.add_subplot()
    axes.axis("off")
    axes.text(0.5, 0.5, text, ha="center", va="center", wrap=True, fontsize=10)
    return figure


def plain_log_ticks(axis) -> None:
    """Log-axis tick labels as plain numbers (0.01, 0.1, 1, 10) instead of 10^k notation."""

    def label(value: float, _position: object) -> str:
        if value <= 0:
            return ""
        mantissa = round(value / 10 ** math.floor(math.log10(value)), 6)
        return f"{value:g}" if mantissa in (1.0, 2.0, 5.0) else ""

    axis.set_major_formatter(FuncFormatter(label))
    axis.set_minor_formatter(FuncFormatter(label))


def _measured(timings: pd.DataFrame, *, phase: str = "total") -> pd.DataFrame:
    required = {"variant", "test", "phase", "seconds", "valid", "warmup"}
    missing = required - set(timings.columns)
    if missing:
        raise StudyError(f"timings lack column(s) {', '.join(sorted(missing))}")
    valid = timings["valid"].astype(str).str.lower().isin(("true", "1"))
    warmup = timings["warmup"].astype(str).str.lower().isin(("true", "1"))
    keep = valid & ~warmup & (timings["phase"] == phase)
    keep &= ~timings["test"].astype(str).str.startswith(FIXTURE_PREFIX)
    out = timings.loc[keep].copy()
    out["seconds"] = out["seconds"].astype(float)
    return out


def _variants(frame: pd.DataFrame, variants: Sequence[str] | None) -> list[str]:
    present = list(dict.fromkeys(frame["variant"].astype(str)))
    if variants is None:
        ordered = [v for v in ("baseline", "transactional") if v in present]
        return ordered + [v for v in present if v not in ordered]
    return [v for v in variants if v in present]


def _horizontal_boxplot(labels: Sequence[str]) -> dict:
    """Keyword arguments for a labelled horizontal boxplot on matplotlib 3.8 to 3.11+."""
    version = tuple(int(part) for part in matplotlib.__version__.split(".")[:2] if part.isdigit())
    kwargs: dict = {"tick_labels" if version >= (3, 9) else "labels": list(labels)}
    kwargs.update({"orientation": "horizontal"} if version >= (3, 10) else {"vert": False})
    return kwargs


def short_test_name(node_id: str, *, width: int = 70) -> str:
    """``suite/test_x.py::test_name[param]`` -> ``test_x::test_name[param]``, cut to ``width``."""
    path, _, name = str(node_id).partition("::")
    module = path.rsplit("/", 1)[-1].removesuffix(".py")
    text = f"{module}::{name}" if name else module
    return text if len(text) <= width else text[: width - 1] + "…"


# ---------------------------------------------------------------- repetitions


def repetition_walls(repetitions: pd.DataFrame) -> Figure:
    """Process wall time of every repetition in execution order, by variant.

    Warm-ups are hollow markers, invalid repetitions crosses: a drift over the run, or a
    variant whose runs cluster in time, shows up here.
    """
    if repetitions.empty:
        return message_figure("no repetitions recorded")
    frame = repetitions.sort_values("repetition")
    variants = _variants(frame, None)
    figure = new_figure(8.0, 3.2)
    axes = figure.add_subplot()
    warmup = frame["warmup"].astype(str).str.lower().isin(("true", "1"))
    valid = frame["valid"].astype(str).str.lower().isin(("true", "1"))
    for variant in variants:
        colour = variant_colour(variant, variants)
        mine = frame["variant"] == variant
        measured = mine & ~warmup & valid
        axes.plot(frame.loc[measured, "repetition"], frame.loc[measured, "wall_s"], "o", color=colour, label=variant)
        warm = mine & warmup
        if warm.any():
            axes.plot(
                frame.loc[warm, "repetition"],
                frame.loc[warm, "wall_s"],
                "o",
                mfc="none",
                color=colour,
                label=f"{variant} (warm-up)",
            )
        bad = mine & ~valid
        if bad.any():
            axes.plot(
                frame.loc[bad, "repetition"],
                frame.loc[bad, "wall_s"],
                "x",
                color=colour,
                ms=9,
                label=f"{variant} (invalid)",
            )
    axes.set_xlabel("repetition (execution order)")
    axes.set_ylabel("pytest process wall time (s)")
    axes.set_ylim(bottom=0)
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8, ncols=2)
    axes.set_title("Every repetition is a fresh pytest process; architectures interleaved in blocks", fontsize=10)
    return figure


# ---------------------------------------------------------------- distributions


def distributions(timings: pd.DataFrame, *, variants: Sequence[str] | None = None) -> Figure:
    """Per-architecture distribution of per-test time (each test's median total), log scale.

    One point per test (jittered), a box over them; the log axis shows the baseline's
    per-test floor and the candidate's on one chart.
    """
    totals = _measured(timings)
    if totals.empty:
        return message_figure("no valid measured repetitions: nothing to plot")
    chosen = _variants(totals, variants)
    medians = totals.groupby(["variant", "test"], observed=True)["seconds"].median().reset_index()
    figure = new_figure(7.5, 3.6)
    axes = figure.add_subplot()
    rng = np.random.default_rng(0)
    data = [medians.loc[medians["variant"] == v, "seconds"].to_numpy(float) for v in chosen]
    axes.boxplot(data, widths=0.5, showfliers=False, medianprops={"color": "black"}, **_horizontal_boxplot(chosen))
    for position, (variant, values) in enumerate(zip(chosen, data), start=1):
        jitter = rng.uniform(-0.18, 0.18, size=values.size)
        axes.scatter(values, position + jitter, s=10, alpha=0.6, color=variant_colour(variant, chosen), zorder=3)
        if values.size:
            axes.annotate(
                f"median {np.median(values) * 1000:.3g} ms",
                (np.median(values), position + 0.3),
                fontsize=8,
                ha="center",
            )
    axes.set_xscale("log")
    plain_log_ticks(axes.xaxis)
    axes.set_xlabel("per-test time: median total (setup + call + teardown) over repetitions, seconds (log)")
    axes.grid(axis="x", which="both", alpha=0.3)
    axes.set_title(f"Per-test time by architecture ({medians['test'].nunique()} tests)", fontsize=10)
    return figure


def ecdfs(timings: pd.DataFrame, *, variants: Sequence[str] | None = None) -> Figure:
    """Empirical CDFs of every measured per-test total (all tests, all repetitions), log scale."""
    totals = _measured(timings)
    if totals.empty:
        return message_figure("no valid measured repetitions: nothing to plot")
    chosen = _variants(totals, variants)
    figure = new_figure(7.5, 3.6)
    axes = figure.add_subplot()
    for variant in chosen:
        values = np.sort(totals.loc[totals["variant"] == variant, "seconds"].to_numpy(float))
        fraction = np.arange(1, values.size + 1) / values.size
        axes.step(
            values,
            fraction,
            where="post",
            color=variant_colour(variant, chosen),
            label=f"{variant} (n = {values.size})",
        )
    axes.set_xscale("log")
    plain_log_ticks(axes.xaxis)
    axes.set_ylim(0, 1)
    axes.set_xlabel("test total seconds (log)")
    axes.set_ylabel("fraction of test runs at or below")
    axes.grid(which="both", alpha=0.3)
    axes.legend(fontsize=8)
    axes.set_title("ECDF of per-test times (every test x repetition)", fontsize=10)
    return figure


# ---------------------------------------------------------------- speedups


def speedup_forest(
    tests: pd.DataFrame,
    *,
    target_improvement_pct: float | None = 70.0,
    highlight: str | None = None,
    max_tests: int | None = None,
    title: str | None = None,
    xlabel: str = "speedup = geometric mean baseline / candidate over processes (log scale; > 1: candidate faster)",
) -> Figure:
    """Per-test speedup (ratio of geometric means) with its Welch t interval on logs, one row per test (or per
    any other unit: ``title`` and ``xlabel`` name what the rows are).

    Parameters
    ----------
    tests : DataFrame
        :func:`suitebench.stats.compare_tests` output (``unit``, ``speedup``, ``speedup_ci_low``,
        ``speedup_ci_high``).
    target_improvement_pct : float, optional
        Draw the speedup that equals this improvement (70 % -> 3.33x).
    highlight : str, optional
        Node id drawn in bold (the API test).
    max_tests : int, optional
        Show only the slowest-improving and fastest-improving tests, this many in all.
    """
    frame = tests.dropna(subset=["speedup"]).sort_values("speedup")
    if frame.empty:
        return message_figure("no test measured in both architectures")
    if max_tests is not None and len(frame) > max_tests:
        half = max_tests // 2
        frame = pd.concat([frame.head(half), frame.tail(max_tests - half)])
    n = len(frame)
    figure = new_figure(8.5, max(2.5, 0.16 * n + 1.2))
    axes = figure.add_subplot()
    y = np.arange(n)
    low = frame["speedup_ci_low"].to_numpy(float)
    high = frame["speedup_ci_high"].to_numpy(float)
    point = frame["speedup"].to_numpy(float)
    has_ci = ~(np.isnan(low) | np.isnan(high))
    axes.hlines(y[has_ci], low[has_ci], high[has_ci], color="#4c72b0", lw=1.2)
    axes.plot(point, y, "o", color="#4c72b0", ms=3.5)
    axes.axvline(1.0, color="black", lw=0.8, ls="--")
    if target_improvement_pct is not None and target_improvement_pct < 100:
        target = speedup_from_improvement(target_improvement_pct)
        axes.axvline(target, color="#c44e52", lw=0.9, ls=":")
        axes.annotate(
            f"{target_improvement_pct:g} % faster = {target:.2f}x",
            (target, n - 0.5),
            fontsize=7,
            color="#c44e52",
            ha="left",
            va="bottom",
        )
    labels = [short_test_name(u, width=60) for u in frame["unit"]]
    axes.set_yticks(y, labels, fontsize=6.5)
    if highlight is not None:
        for tick, unit in zip(axes.get_yticklabels(), frame["unit"]):
            if unit == highlight:
                tick.set_fontweight("bold")
    axes.set_ylim(-0.7, n - 0.3 + 0.8)
    axes.set_xscale("log")
    plain_log_ticks(axes.xaxis)
    axes.set_xlabel(xlabel)
    axes.grid(axis="x", which="both", alpha=0.3)
    level = tests.attrs.get("confidence_level")
    if title is None:
        title = "Per-test speedup" + (f" with {level * 100:.0f} % CIs" if level else "")
    axes.set_title(title, fontsize=10)
    return figure


# ---------------------------------------------------------------- where the time goes


def phase_breakdown(phases: pd.DataFrame, phases_by_category: pd.DataFrame | None = None) -> Figure:
    """Stacked setup / call / teardown time per architecture (and per category).

    Parameters
    ----------
    phases : DataFrame
        ``tables_for_run(...)["phases"]``: per variant ``setup_s, call_s, teardown_s``
        (medians over repetitions of per-repetition sums), ``session_fixtures_s`` and
        ``outside_tests_s`` (process wall time not spent in tests or session fixtures).
    phases_by_category : DataFrame, optional
        ``tables_for_run(...)["phases_by_category"]``: the same per (category, variant).
    """
    if phases.empty:
        return message_figure("no valid measured repetitions: nothing to plot")
    variants = list(phases["variant"])
    panels = 2 if phases_by_category is not None and not phases_by_category.empty else 1
    height = 2.0 + 0.5 * len(variants)
    if panels == 2:
        height = max(height, 1.2 + 0.28 * len(phases_by_category))
    figure = new_figure(10.0 if panels == 2 else 7.5, height)
    axes = figure.subplots(1, panels, squeeze=False)[0]
    parts = [
        ("setup", "setup_s"),
        ("call", "call_s"),
        ("teardown", "teardown_s"),
        ("session fixtures", "session_fixtures_s"),
        ("outside tests", "outside_tests_s"),
    ]
    left = np.zeros(len(variants))
    for label, column in parts:
        if column not in phases:
            continue
        values = phases[column].to_numpy(float)
        values = np.where(np.isnan(values), 0.0, np.clip(values, 0.0, None))
        axes[0].barh(variants, values, left=left, color=PHASE_COLOURS[label], label=label, edgecolor="white")
        left += values
    for position, total in enumerate(left):
        axes[0].annotate(
            f"{total:.2f} s", (total, position), xytext=(3, 0), textcoords="offset points", va="center", fontsize=8
        )
    axes[0].set_xlabel("seconds per suite run (medians over repetitions)")
    axes[0].set_title("Where one pytest process spends its time", fontsize=10)
    axes[0].legend(fontsize=7, loc="lower right")
    axes[0].invert_yaxis()
    axes[0].set_xlim(right=max(left.max() * 1.18, 1e-9))
    if panels == 2:
        frame = phases_by_category.sort_values(["category", "variant"])
        labels = [f"{c} · {v}" for c, v in zip(frame["category"], frame["variant"])]
        left = np.zeros(len(frame))
        for label in PHASES:
            values = np.nan_to_num(frame[f"{label}_s"].to_numpy(float))
            axes[1].barh(labels, values, left=left, color=PHASE_COLOURS[label], label=label, edgecolor="white")
            left += values
        axes[1].tick_params(axis="y", labelsize=7)
        axes[1].invert_yaxis()
        axes[1].set_xlabel("seconds per suite run, tests of the category only")
        axes[1].set_title("By category: setup / call / teardown", fontsize=10)
    return figure


def counters_chart(counters: pd.DataFrame) -> Figure:
    """Database work per test, one small panel per counter, one bar per architecture.

    Parameters
    ----------
    counters : DataFrame
        ``tables_for_run(...)["counters"]``: one row per counter (``counter``) and a
        ``<variant>_per_test`` column per variant.
    """
    columns = [c for c in counters.columns if c.endswith("_per_test")]
    if counters.empty or not columns:
        return message_figure("no counters recorded")
    variants = [c.removesuffix("_per_test") for c in columns]
    n = len(counters)
    ncols = min(3, n)
    nrows = math.ceil(n / ncols)
    figure = new_figure(3.0 * ncols, 2.0 * nrows + 0.4)
    grid = figure.subplots(nrows, ncols, squeeze=False)
    for axes, (_, row) in zip(grid.flat, counters.iterrows()):
        values = [float(row[c]) if not pd.isna(row[c]) else 0.0 for c in columns]
        bars = axes.bar(variants, values, color=[variant_colour(v, variants) for v in variants])
        axes.bar_label(bars, labels=[f"{v:.3g}" for v in values], fontsize=7)
        axes.set_title(str(row["counter"]).replace("_", " "), fontsize=9)
        axes.tick_params(labelsize=7)
        axes.set_ylim(0, max(values + [1e-9]) * 1.25 or 1)
    for axes in list(grid.flat)[n:]:
        axes.axis("off")
    figure.suptitle("Database work per test (mean over tests; deterministic counts)", fontsize=10)
    return figure


# ---------------------------------------------------------------- regression tracking


def trend(trend_table: pd.DataFrame, *, highlight_run: str | None = None) -> Figure:
    """Median suite time (sum of test totals) of every recorded run, by architecture.

    Parameters
    ----------
    trend_table : DataFrame
        :func:`quiz_study.tables.trend_table` output: ``run_id, started_at, variant, median_s,
        p25_s, p75_s``.
    highlight_run : str, optional
        Run drawn with a vertical marker (the current one).
    """
    if trend_table.empty:
        return message_figure("no complete runs to show a trend")
    runs = list(dict.fromkeys(trend_table.sort_values("started_at")["run_id"]))
    position = {run: i for i, run in enumerate(runs)}
    variants = _variants(trend_table, None)
    figure = new_figure(max(6.0, 0.6 * len(runs) + 3.0), 3.6)
    axes = figure.add_subplot()
    for variant in variants:
        rows = trend_table[trend_table["variant"] == variant].sort_values("started_at")
        x = [position[r] for r in rows["run_id"]]
        median = rows["median_s"].to_numpy(float)
        err = np.vstack([median - rows["p25_s"].to_numpy(float), rows["p75_s"].to_numpy(float) - median])
        axes.errorbar(
            x,
            median,
            yerr=np.clip(err, 0, None),
            fmt="o-",
            capsize=3,
            color=variant_colour(variant, variants),
            label=variant,
        )
    if highlight_run in position:
        axes.axvline(position[highlight_run], color="grey", lw=0.8, ls=":")
    axes.set_xticks(range(len(runs)), runs, rotation=30, ha="right", fontsize=7)
    axes.set_yscale("log")
    plain_log_ticks(axes.yaxis)
    axes.set_ylabel("sum of test totals per run (s, log)\nmedian and interquartile range")
    axes.grid(which="both", alpha=0.3)
    axes.legend(fontsize=8)
    axes.set_title(f"Trend across {len(runs)} recorded run(s)", fontsize=10)
    return figure


def power_curves(rates: pd.DataFrame, *, note: str = "", target_power: float = 0.9) -> Figure:
    """Power curves and false-alarm rates of the regression gate, one panel per source.

    Parameters
    ----------
    rates : DataFrame
        :attr:`suitebench.regression.GateCalibration.rates` and/or
        :func:`suitebench.regression.simulate_gate_calibration` rows (``source, scenario,
        category, slowdown_pct, rate, ci_low, ci_high``).
    note : str
        Drawn instead when ``rates`` is empty (why there is no calibration).
    target_power : float
        Drawn as a dotted line.
    """
    if rates is None or rates.empty:
        return message_figure(note or "no calibration of the regression gate for this run")
    rates = rates.astype({"slowdown_pct": float, "rate": float, "comparisons": int})
    sources = list(dict.fromkeys(rates["source"]))
    figure = new_figure(4.2 * len(sources) + 0.5, 3.8)
    grid = figure.subplots(1, len(sources), squeeze=False, sharey=True)[0]
    for axes, source in zip(grid, sources):
        rows = rates[rates["source"] == source]
        aa = rows[rows["scenario"] == "A/A"]
        for scenario, style in (("call phase, every test", "o-"), ("10 % of the tests", "s--")):
            part = rows[rows["scenario"] == scenario].sort_values("slowdown_pct")
            if len(part):
                axes.plot(part["slowdown_pct"], part["rate"], style, label=scenario)
        categories = rows[rows["scenario"] == "one category"]
        if len(categories):
            by = categories.groupby("slowdown_pct")["rate"]
            x = np.array(sorted(categories["slowdown_pct"].unique()))
            axes.fill_between(x, by.min().reindex(x), by.max().reindex(x), alpha=0.25, label="one category (range)")
        if len(aa):
            axes.axhline(float(aa["rate"].iloc[0]), color="#c44e52", lw=1.0, label="false alarms (A/A)")
        axes.axhline(target_power, color="grey", lw=0.8, ls=":")
        axes.set_xscale("log")
        ticks = sorted(rows.loc[rows["slowdown_pct"] > 0, "slowdown_pct"].unique())
        axes.set_xticks(ticks, [f"{t:g}" for t in ticks])
        axes.xaxis.set_minor_formatter(FuncFormatter(lambda value, position: ""))
        axes.set_xlabel("injected slowdown (%)")
        axes.set_ylim(-0.02, 1.02)
        axes.grid(alpha=0.3, which="both")
        count = int(rows["comparisons"].iloc[0])
        axes.set_title(f"{source}\n({count} comparisons per point)", fontsize=8)
    grid[0].set_ylabel("share of comparisons flagged")
    grid[0].legend(fontsize=7, loc="upper left")
    return figure
