"""Figures of the retention (survival) report.

Each function takes the output of an :mod:`analysis.stats` estimator (as held
by :class:`analysis.studies.retention.RetentionResult`) and returns a
matplotlib Figure; nothing is computed here beyond layout.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator, PercentFormatter

from analysis.report.labels import label
from analysis.report.labels import level_label as _level_label


def level_label(column: str, level) -> str:
    """Return "Account size: Small business" (data values with underscores in words)."""
    shown = label(level) if isinstance(level, str) and "_" in level else level
    return _level_label(column, shown)


__all__ = ["plot_cif", "plot_cohort_heatmap", "plot_forest", "plot_hazard", "plot_km"]

_PCT = PercentFormatter(xmax=1.0, decimals=0)
# Okabe-Ito: distinguishable with the common colour-vision deficiencies
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000"]


def _color(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


def _groups(df: pd.DataFrame, group: str | None):
    if group is None or group not in df.columns:
        return [(None, df)]
    return [(g, sub) for g, sub in df.groupby(group, sort=True)]


def plot_km(
    km: pd.DataFrame,
    *,
    group: str | None = None,
    at_risk: pd.DataFrame | None = None,
    max_time: float | None = None,
    title: str = "Share of customers still active",
    xlabel: str = "Tenure (months)",
    overall: pd.DataFrame | None = None,
    overall_at_risk: pd.DataFrame | None = None,
    overall_label: str = "All customers",
):
    """Draw Kaplan-Meier curves with interval bands and a number-at-risk table under the ticks.

    The x-axis ticks are the tenures of the number-at-risk table, so every
    count sits under its tick.

    Parameters
    ----------
    km : pandas.DataFrame
        Output of :func:`analysis.stats.survival.kaplan_meier`.
    group : str, optional
        Grouping column of ``km`` (its label titles the legend).
    at_risk : pandas.DataFrame, optional
        Output of :func:`analysis.stats.survival.at_risk_table` (rows: groups, columns: times).
    max_time : float, optional
        Right end of the x-axis.
    overall, overall_at_risk : pandas.DataFrame, optional
        An ungrouped curve (and its at-risk row) drawn in black over the group curves.

    Returns
    -------
    matplotlib.figure.Figure
    """
    rows = []  # (label, at-risk row, colour)
    curves = []
    if overall is not None:
        curves.append((overall_label, overall, "black"))
        if overall_at_risk is not None and len(overall_at_risk):
            rows.append((overall_label, overall_at_risk.iloc[0], "black"))
    for i, (g, sub) in enumerate(_groups(km, group)):
        name = str(g) if g is not None else overall_label
        colour = _color(i) if (group or overall is not None) else _color(0)
        curves.append((name, sub, colour))
        if at_risk is not None:
            key = g if g is not None else (at_risk.index[0] if len(at_risk) else None)
            if key in at_risk.index:
                rows.append((name, at_risk.loc[key], colour))
    n_rows = len(rows)
    fig = plt.figure(figsize=(8, 4.6 + 0.28 * n_rows))
    grid = fig.add_gridspec(2, 1, height_ratios=[4.6, 0.28 * max(n_rows, 1) + 0.5], hspace=0.35)
    ax = fig.add_subplot(grid[0])
    for name, sub, colour in curves:
        t = np.concatenate([[0.0], sub["time"].to_numpy()])
        s = np.concatenate([[1.0], sub["survival"].to_numpy()])
        lo = np.concatenate([[1.0], sub["ci_lower"].to_numpy()])
        hi = np.concatenate([[1.0], sub["ci_upper"].to_numpy()])
        if max_time is not None:
            keep = t <= max_time
            t, s, lo, hi = t[keep], s[keep], lo[keep], hi[keep]
            t, s, lo, hi = (np.append(a, a[-1]) for a in (t, s, lo, hi))
            t[-1] = min(max_time, max(float(sub["time"].max()), t[-2]))
        width = 2.2 if colour == "black" and overall is not None else 1.6
        ax.step(t, s, where="post", label=name, color=colour, linewidth=width)
        ax.fill_between(t, lo, hi, step="post", alpha=0.15, color=colour, linewidth=0)
    ax.set_ylim(0, 1.02)
    right = max_time if max_time is not None else float(km["time"].max())
    ax.set_xlim(-0.03 * right, right * 1.03)
    ticks = [float(c) for c in (at_risk.columns if at_risk is not None else [])]
    if not ticks and overall_at_risk is not None:
        ticks = [float(c) for c in overall_at_risk.columns]
    ticks = [t for t in ticks if t <= right + 1e-9]
    if ticks:
        ax.xaxis.set_major_locator(FixedLocator(ticks))
        ax.xaxis.set_minor_locator(NullLocator())
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.yaxis.set_major_formatter(_PCT)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("Still active")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    if len(curves) > 1:
        ax.legend(
            frameon=False,
            fontsize=9,
            title=label(group) if group else None,
            title_fontsize=9,
            loc="lower left",
        )
    if rows:
        tab = fig.add_subplot(grid[1], sharex=ax)
        tab.set_title("Number still observed (at risk)", fontsize=9, loc="left")
        for i, (_name, row, colour) in enumerate(rows):
            y = n_rows - 1 - i
            for t, v in row.items():
                if float(t) in ticks or not ticks:
                    tab.text(
                        float(t),
                        y,
                        f"{int(v):,}",
                        ha="center",
                        va="center",
                        fontsize=8,
                        color=colour,
                    )
        tab.set_yticks(range(n_rows))
        tab.set_yticklabels([r[0] for r in rows][::-1], fontsize=8)
        tab.set_ylim(-0.6, n_rows - 0.4)
        tab.grid(False)
        tab.tick_params(axis="x", labelbottom=False, length=0)
        for side in ("top", "right", "bottom", "left"):
            tab.spines[side].set_visible(False)
    return fig


def plot_forest(
    summary: pd.DataFrame,
    *,
    reference_levels: dict | None = None,
    title: str = "Hazard ratios of churn (Cox model)",
):
    """Draw a forest plot of hazard ratios with intervals on a log scale.

    Parameters
    ----------
    summary : pandas.DataFrame
        ``CoxResult.summary`` (indexed by term).
    reference_levels : dict, optional
        Shown in the axis label so the comparison is explicit.

    Returns
    -------
    matplotlib.figure.Figure
    """
    s = summary.iloc[::-1]
    fig, ax = plt.subplots(figsize=(7.5, 0.45 * len(s) + 1.4))
    y = np.arange(len(s))
    ax.errorbar(
        s["hazard_ratio"],
        y,
        xerr=[s["hazard_ratio"] - s["ci_lower"], s["ci_upper"] - s["hazard_ratio"]],
        fmt="o",
        color=PALETTE[0],
        ecolor=PALETTE[0],
        capsize=3,
    )
    ax.axvline(1.0, color="grey", linestyle="--", linewidth=1)
    ax.set_xscale("log")
    ax.set_yticks(y)
    if {"covariate", "level"} <= set(s.columns):
        names = [
            label(c) if lev is None or lev != lev else level_label(c, lev)
            for c, lev in zip(s["covariate"], s["level"], strict=True)
        ]
    else:
        names = [label(t) for t in s.index]
    ax.set_yticklabels(names)
    lo = min(s["ci_lower"].min(), 0.9)
    hi = max(s["ci_upper"].max(), 1.1)
    ax.set_xlim(lo / 1.15, hi * 1.15)
    nice = [0.1, 0.2, 0.3, 0.5, 0.6, 0.7, 0.8, 0.9, 1, 1.25, 1.5, 2, 3, 5, 10]
    ax.xaxis.set_major_locator(FixedLocator([v for v in nice if lo / 1.15 <= v <= hi * 1.15]))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    label_text = "Hazard ratio (< 1: leaves less often; 95% CI)"
    if reference_levels:
        label_text += "\ncompared with: " + "; ".join(
            level_label(k, v) for k, v in reference_levels.items()
        )
    ax.set_xlabel(label_text)
    ax.set_title(title)
    ax.grid(alpha=0.3, axis="x")
    fig.tight_layout()
    return fig


def plot_hazard(
    haz: pd.DataFrame,
    *,
    group: str | None = None,
    title: str = "Monthly churn rate by tenure",
    xlabel: str = "Tenure (months)",
):
    """Draw the smoothed churn rate over tenure with its interval, raw rates as dots.

    Parameters
    ----------
    haz : pandas.DataFrame
        Output of :func:`analysis.stats.hazard.hazard_over_tenure`.

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig, ax = plt.subplots(figsize=(8, 4))
    for i, (g, sub) in enumerate(_groups(haz, group)):
        mid = (sub["start"] + sub["end"]) / 2
        (line,) = ax.plot(
            mid,
            sub["hazard_smooth"],
            label=str(g) if g is not None else "Three-month average",
            color=_color(i),
        )
        ax.fill_between(
            mid,
            sub["smooth_ci_lower"],
            sub["smooth_ci_upper"],
            alpha=0.18,
            color=line.get_color(),
            linewidth=0,
        )
        ax.plot(
            mid,
            sub["hazard"],
            "o",
            ms=3,
            alpha=0.5,
            color=line.get_color(),
            label="Single month" if g is None else None,
        )
    ax.yaxis.set_major_formatter(PercentFormatter(xmax=1.0, decimals=1))
    ax.set_ylim(bottom=0)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("Churned per customer-month")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(frameon=False, fontsize=9)
    fig.tight_layout()
    return fig


def plot_cif(
    cif: pd.DataFrame,
    *,
    max_time: float | None = None,
    title: str = "Why customers leave: cumulative share by reason",
    xlabel: str = "Tenure (months)",
):
    """Draw cumulative incidence curves by churn reason with interval bands.

    Parameters
    ----------
    cif : pandas.DataFrame
        Output of :func:`analysis.stats.competing_risks.cumulative_incidence` (one group).

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig, ax = plt.subplots(figsize=(8, 4.2))
    for i, (cause, sub) in enumerate(cif.groupby("cause", sort=True)):
        t = np.concatenate([[0.0], sub["time"].to_numpy()])
        f = np.concatenate([[0.0], sub["cif"].to_numpy()])
        lo = np.concatenate([[0.0], sub["ci_lower"].to_numpy()])
        hi = np.concatenate([[0.0], sub["ci_upper"].to_numpy()])
        name = label(cause) if isinstance(cause, str) and "_" in cause else str(cause)
        (line,) = ax.step(t, f, where="post", label=name, color=_color(i))
        ax.fill_between(t, lo, hi, step="post", alpha=0.15, color=line.get_color(), linewidth=0)
    if max_time is not None:
        ax.set_xlim(0, max_time)
    ax.set_ylim(bottom=0)
    ax.yaxis.set_major_formatter(_PCT)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("Share of customers who left for this reason")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(frameon=False, fontsize=9, ncol=2, title="Reason", title_fontsize=9)
    fig.tight_layout()
    return fig


def plot_cohort_heatmap(
    table: pd.DataFrame,
    *,
    title: str = "Retention by acquisition cohort",
    xlabel: str = "Months since acquisition",
    value_label: str = "Retained",
    vmax: float | None = 1.0,
):
    """Draw a cohort x months-since-acquisition heatmap of shares.

    Parameters
    ----------
    table : pandas.DataFrame
        Index: cohorts; columns: months since acquisition; values: shares (0-1), NaN
        where not observed.

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig, ax = plt.subplots(figsize=(9, 0.22 * len(table) + 1.8))
    data = table.to_numpy(dtype=float)
    im = ax.imshow(np.ma.masked_invalid(data), aspect="auto", cmap="viridis", vmin=0, vmax=vmax)
    ax.set_yticks(range(len(table)))
    labels = [str(c)[:7] for c in table.index]  # "2025-06" for monthly cohorts
    if len(set(labels)) < len(labels):  # weekly or daily cohorts: the day tells them apart
        labels = [str(c)[:10] for c in table.index]
    ax.set_yticklabels(labels, fontsize=7)
    step = max(1, len(table.columns) // 12)
    ax.set_xticks(range(0, len(table.columns), step))
    ax.set_xticklabels(
        [f"{c:g}" if isinstance(c, float) else str(c) for c in table.columns[::step]], fontsize=8
    )
    ax.set_xlabel(xlabel)
    ax.set_ylabel("Cohort")
    ax.set_title(title)
    ax.grid(False)
    cb = fig.colorbar(im, ax=ax, format=_PCT)
    cb.set_label(value_label)
    fig.tight_layout()
    return fig
