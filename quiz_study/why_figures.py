"""Charts of the "why is it faster" study: each function takes tables of `quiz_study.why.why_tables`
and returns a matplotlib Figure (built without pyplot, as in `quiz_study.figures`; show one in a
notebook with `IPython.display.Image(figures.png_bytes(fig))`).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from quiz_study.figures import message_figure, new_figure, plain_log_ticks, variant_colour

FASTER = "#55a868"
SLOWER = "#c44e52"
TOTAL = "#4c72b0"
KNOB_TITLES = {
    "extra_tables": "schema width (tables)",
    "reference_rows": "synthetic reference rows",
    "copies": "tests in the suite (copies)",
}


def _finite(*values: float) -> bool:
    return all(np.isfinite(v) for v in values)


SWITCH_TITLES = {
    "storage": "storage\ndisk → memory",
    "reference_data": "reference data\nper test → per session",
    "session_wiring": "session wiring\nown → injected",
    "isolation": "isolation\nrecreate → rollback",
    "isolation_wiring": "isolation + wiring\nrecreate+own → rollback+injected",
}
FORM_COLOURS = {"time-weighted": "#4c72b0", "per-test": "#dd8452"}


def shares_figure(
    shares: pd.DataFrame, totals: pd.DataFrame | None = None, *, view: str = "session wiring, then isolation"
) -> Figure:
    """Where the time went: each switch's share of the baseline -> transactional change.

    One row per switch, one line per form (time-weighted, per-test): the thick bar is the range
    of the switch's share over the orders in which the switches can be applied, the thin line
    the 95 % band over those orders (lowest lower to highest upper bound), the dot the mean over
    the orders. The title carries the model's total speedup and, when given, the main run's."""
    if shares is None or shares.empty:
        return message_figure("No shares: the factorial did not measure every cell.")
    part = shares[shares["view"] == view]
    switches = list(dict.fromkeys(part["switch"]))
    forms = list(dict.fromkeys(part["form"]))
    figure = new_figure(8.5, 1.2 + 0.75 * len(switches))
    axes = figure.subplots()
    offsets = np.linspace(-0.16, 0.16, len(forms)) if len(forms) > 1 else [0.0]
    for offset, form in zip(offsets, forms):
        rows = part[part["form"] == form].set_index("switch").reindex(switches)
        y = np.arange(len(switches)) + offset
        colour = FORM_COLOURS.get(form, TOTAL)
        for position, row in zip(y, rows.itertuples()):
            if _finite(row.band_low, row.band_high):
                axes.plot([row.band_low * 100, row.band_high * 100], [position] * 2, color=colour, lw=1)
            axes.plot(
                [row.share_min * 100, row.share_max * 100],
                [position] * 2,
                color=colour,
                lw=6,
                alpha=0.55,
                solid_capstyle="butt",
            )
            axes.plot(row.share_mean * 100, position, "o", color=colour, markersize=5)
        axes.plot([], [], color=colour, lw=6, alpha=0.55, label=f"{form}: range over the orders, dot = their mean")
    axes.plot([], [], color="#555555", lw=1, label="95 % band over the orders")
    axes.axvline(0, color="black", lw=0.8)
    axes.axvline(100, color="#8c8c8c", lw=0.8, ls=":")
    axes.set_yticks(range(len(switches)), [SWITCH_TITLES.get(s, s) for s in switches], fontsize=8)
    axes.invert_yaxis()
    axes.set_xlabel("share of the baseline → transactional change in log time (%)")
    title = "Where the time went: each switch's share of the speedup"
    if totals is not None and not totals.empty:
        weighted = totals[totals["form"] == "time-weighted"]
        model = weighted[weighted["source"] == "factorial model"]
        direct = weighted[(weighted["source"] != "factorial model") & (weighted["tests"] == "whole suite")]
        parts = []
        for label, frame in (("model", model), ("measured, whole suite", direct)):
            if len(frame):
                row = frame.iloc[0]
                text = f"{label} {row.speedup:.2f}×"
                if _finite(row.speedup_ci_low, row.speedup_ci_high):
                    text += f" [{row.speedup_ci_low:.2f}, {row.speedup_ci_high:.2f}]"
                parts.append(text)
        if parts:
            title += "\n(summed test time: " + "; ".join(parts) + ")"
    axes.set_title(title, fontsize=10)
    axes.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=3, frameon=False)
    return figure


def effects_forest(effects: pd.DataFrame, *, form: str = "time-weighted") -> Figure:
    """Each step's main effect and every interaction as a time ratio with its 95 % interval on a
    log axis (one form); hollow markers: not distinguishable from zero."""
    rows = effects[effects["form"] == form] if "form" in effects.columns else effects
    if rows.empty:
        return message_figure("No effect could be estimated.")
    figure = new_figure(8.0, 0.9 + 0.32 * len(rows))
    axes = figure.subplots()
    y = np.arange(len(rows))[::-1]
    for position, row in zip(y, rows.itertuples(index=False)):
        filled = bool(row.distinguishable_from_zero)
        colour = FASTER if row.time_ratio < 1 else SLOWER
        if _finite(row.ci_low, row.ci_high):
            axes.plot([row.ci_low, row.ci_high], [position, position], color=colour, lw=1.5)
        axes.plot(row.time_ratio, position, "o", color=colour, markerfacecolor=colour if filled else "white")
    axes.axvline(1.0, color="black", lw=0.8)
    axes.set_xscale("log")
    plain_log_ticks(axes.xaxis)
    axes.set_yticks(y, rows["term"], fontsize=8)
    axes.set_xlabel("time ratio (switched / not switched; < 1 = faster), 95 % interval")
    axes.set_title(f"Main effects and interactions, {form} form\n(hollow: not distinguishable from zero)", fontsize=10)
    return figure


def floor_overhead(categories: pd.DataFrame, overall: pd.DataFrame | None = None) -> Figure:
    """Mean per-test time above the floor per category (and overall), per architecture, with
    their 95 % intervals over blocks; each bar labelled with the architecture's ratio to the floor."""
    frame = (
        categories
        if overall is None
        else pd.concat([categories, overall.drop(columns=["caveat"], errors="ignore").assign(category="all tests")])
    )
    if frame is None or frame.empty:
        return message_figure("No floor measurement.")
    groups = list(dict.fromkeys(frame["category"]))
    architectures = list(dict.fromkeys(frame["architecture"]))
    width = 0.8 / len(architectures)
    figure = new_figure(max(6.0, 1.1 * len(groups) + 2), 4.2)
    axes = figure.subplots()
    for i, architecture in enumerate(architectures):
        part = frame[frame["architecture"] == architecture].set_index("category").reindex(groups)
        x = np.arange(len(groups)) + (i - (len(architectures) - 1) / 2) * width
        values = part["overhead_s"].to_numpy() * 1000
        low = part["overhead_ci_low_s"].to_numpy() * 1000
        high = part["overhead_ci_high_s"].to_numpy() * 1000
        errors = np.where(np.isfinite(low), [values - low, high - values], 0.0)
        axes.bar(
            x,
            values,
            width=width,
            color=variant_colour(architecture, architectures),
            label=architecture,
            yerr=errors,
            capsize=3,
            error_kw={"lw": 1},
        )
        for xi, value, ratio in zip(x, values, part["ratio_to_floor"]):
            if np.isfinite(value):
                axes.annotate(
                    f"{ratio:.1f}×",
                    (xi, max(value, 0)),
                    textcoords="offset points",
                    xytext=(0, 2),
                    ha="center",
                    va="bottom",
                    fontsize=7,
                )
    axes.axhline(0, color="black", lw=0.8)
    axes.set_xticks(range(len(groups)), groups, fontsize=8)
    axes.set_ylabel("time above the floor per test (ms)")
    axes.set_title(
        "Time above the floor (nothing reset) per test, 95 % intervals over paired blocks\n"
        "(labels: ratio to the floor; one process per test)",
        fontsize=10,
    )
    axes.legend(fontsize=8)
    return figure


def scaling_curves(points: pd.DataFrame, slopes: pd.DataFrame, projection: pd.DataFrame | None = None) -> Figure:
    """One panel per knob: mean per-test time against the knob with each architecture's fitted
    line (slope and interval in the legend); a last panel: whole-process wall time against suite
    size, the fitted line extended dashed to the projected suite, marked PROJECTION."""
    if points is None or points.empty:
        return message_figure("No scaling sweep.")
    knobs = list(dict.fromkeys(points["knob"]))
    panels = len(knobs) + (1 if projection is not None and not projection.empty else 0)
    figure = new_figure(4.2 * panels, 3.8)
    axes_list = np.atleast_1d(figure.subplots(1, panels))
    architectures = list(dict.fromkeys(points["architecture"]))
    for axes, knob in zip(axes_list, knobs):
        for architecture in architectures:
            part = points[(points["architecture"] == architecture) & (points["knob"] == knob)].sort_values("x")
            colour = variant_colour(architecture, architectures)
            axes.plot(part["x"], part["per_test_s"] * 1000, "o", color=colour)
            fit = slopes[
                (slopes["architecture"] == architecture)
                & (slopes["knob"] == knob)
                & (slopes["measure"] == "per_test_s")
            ]
            if len(fit):
                row = fit.iloc[0]
                # The fit's line passes through the mean of the points (per-test fixed effects).
                xs = np.linspace(part["x"].min(), part["x"].max(), 20)
                centre_x, centre_y = part["x"].mean(), part["per_test_s"].mean()
                ys = (centre_y + row.slope_s_per_unit * (xs - centre_x)) * 1000
                label = f"{architecture}: {row.slope_s_per_unit * 1000:.3g} ms/{row.unit}"
                if _finite(row.ci_low_s_per_unit, row.ci_high_s_per_unit):
                    label += f" [{row.ci_low_s_per_unit * 1000:.3g}, {row.ci_high_s_per_unit * 1000:.3g}]"
                axes.plot(xs, ys, "-", color=colour, label=label)
        axes.set_xlabel(KNOB_TITLES.get(knob, knob))
        axes.set_ylabel("mean per-test time (ms)")
        axes.legend(fontsize=7)
    if panels > len(knobs):
        axes = axes_list[-1]
        wall = projection[projection["measure"] == "wall_s"]
        copies = points[points["knob"] == "copies"]
        for architecture in architectures:
            colour = variant_colour(architecture, architectures)
            part = copies[copies["architecture"] == architecture]
            axes.plot(part["x"], part["wall_s"], "o", color=colour)
            fit = slopes[
                (slopes["architecture"] == architecture)
                & (slopes["knob"] == "copies")
                & (slopes["measure"] == "wall_s")
            ]
            row = wall[wall["architecture"] == architecture]
            if len(fit) and len(row):
                slope, intercept = fit.iloc[0].slope_s_per_unit, fit.iloc[0].intercept_s
                target = float(row.iloc[0].n_tests)
                measured = np.array([part["x"].min(), part["x"].max()])
                axes.plot(measured, intercept + slope * measured, "-", color=colour, label=architecture)
                axes.plot(
                    [measured[1], target], intercept + slope * np.array([measured[1], target]), "--", color=colour
                )
                projected = row.iloc[0]
                text = f"PROJECTION {projected.projected_s:.0f} s"
                if _finite(projected.ci_low_s, projected.ci_high_s):
                    text += f"\n[{projected.ci_low_s:.0f}, {projected.ci_high_s:.0f}]"
                axes.errorbar(
                    target,
                    projected.projected_s,
                    fmt="s",
                    color=colour,
                    markerfacecolor="white",
                    yerr=None
                    if not _finite(projected.ci_low_s)
                    else [[projected.projected_s - projected.ci_low_s], [projected.ci_high_s - projected.projected_s]],
                    capsize=3,
                )
                axes.annotate(
                    text,
                    (target, projected.projected_s),
                    textcoords="offset points",
                    xytext=(-6, 0),
                    ha="right",
                    va="center",
                    fontsize=7,
                    color=colour,
                )
        axes.set_xscale("log")
        axes.set_yscale("log")
        axes.set_xlabel("tests in the suite (log)")
        axes.set_ylabel("process wall time, s (log)")
        axes.set_title("dashed: PROJECTION beyond the measured sizes", fontsize=8)
        axes.legend(fontsize=7)
    figure.suptitle("Scaling: fitted slopes per architecture (95 % intervals)", fontsize=10)
    return figure


def why_figures(tables: Mapping[str, pd.DataFrame]) -> dict[str, Figure]:
    """Every chart the tables allow: shares, effects, floor, scaling."""
    charts: dict[str, Figure] = {}
    if "shares" in tables:
        charts["shares"] = shares_figure(tables["shares"], tables.get("totals"))
    if "effects" in tables:
        charts["effects"] = effects_forest(tables["effects"])
    if "floor_categories" in tables:
        charts["floor"] = floor_overhead(tables["floor_categories"], tables.get("floor_overall"))
    charts["scaling"] = (
        scaling_curves(tables["scaling_points"], tables["scaling_slopes"], tables.get("projection"))
        if "scaling_points" in tables
        else message_figure("No scaling sweep in these runs: the full size measures it.")
    )
    return charts
