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

__all__ = ["plot_cif", "plot_cohort_heatmap", "plot_forest", "plot_hazard", "plot_km"]

_PCT = PercentFormatter(xmax=1.0, decimals=0)


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
):
    """Draw Kaplan-Meier curves with interval bands and an optional number-at-risk table.

    Parameters
    ----------
    km : pandas.DataFrame
        Output of :func:`analysis.stats.survival.kaplan_meier`.
    group : str, optional
        Grouping column of ``km``.
    at_risk : pandas.DataFrame, optional
        Output of :func:`analysis.stats.survival.at_risk_table` (rows: groups, columns: times).
    max_time : float, optional
        Right end of the x-axis.

    Returns
    -------
    matplotlib.figure.Figure
    """
    n_rows = 0 if at_risk is None else len(at_risk)
    fig = plt.figure(figsize=(8, 4.6 + 0.28 * n_rows))
    grid = fig.add_gridspec(2, 1, height_ratios=[4.6, 0.28 * max(n_rows, 1) + 0.5], hspace=0.35)
    ax = fig.add_subplot(grid[0])
    colors = {}
    for g, sub in _groups(km, group):
        t = np.concatenate([[0.0], sub["time"].to_numpy()])
        s = np.concatenate([[1.0], sub["survival"].to_numpy()])
        lo = np.concatenate([[1.0], sub["ci_lower"].to_numpy()])
        hi = np.concatenate([[1.0], sub["ci_upper"].to_numpy()])
        if max_time is not None:
            t, s, lo, hi = (np.append(a, a[-1]) for a in (t, s, lo, hi))
            t[-1] = max(max_time, t[-2])
        (line,) = ax.step(t, s, where="post", label=str(g) if g is not None else "all customers")
        colors[g] = line.get_color()
        ax.fill_between(t, lo, hi, step="post", alpha=0.18, color=line.get_color(), linewidth=0)
    ax.set_ylim(0, 1.02)
    right = max_time if max_time is not None else float(km["time"].max())
    ax.set_xlim(-0.05 * right, right * 1.05)  # room for the at-risk counts at 0 and at the end
    ax.yaxis.set_major_formatter(_PCT)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("Still active")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(frameon=False, fontsize=9)
    if at_risk is not None:
        tab = fig.add_subplot(grid[1], sharex=ax)
        tab.set_title("Number at risk", fontsize=9, loc="left")
        for i, (g, row) in enumerate(at_risk.iterrows()):
            y = len(at_risk) - 1 - i
            for t, v in row.items():
                tab.text(
                    float(t),
                    y,
                    f"{int(v):,}",
                    ha="center",
                    va="center",
                    fontsize=8,
                    color=colors.get(g, colors.get(None, "black")),
                )
        tab.set_yticks(range(len(at_risk)))
        tab.set_yticklabels([str(g) for g in at_risk.index[::-1]], fontsize=8)
        tab.set_ylim(-0.6, len(at_risk) - 0.4)
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
        color="#1f4e79",
        ecolor="#1f4e79",
        capsize=3,
    )
    ax.axvline(1.0, color="grey", linestyle="--", linewidth=1)
    ax.set_xscale("log")
    ax.set_yticks(y)
    ax.set_yticklabels(s.index)
    lo = min(s["ci_lower"].min(), 0.9)
    hi = max(s["ci_upper"].max(), 1.1)
    ax.set_xlim(lo / 1.15, hi * 1.15)
    nice = [0.1, 0.2, 0.3, 0.5, 0.6, 0.7, 0.8, 0.9, 1, 1.25, 1.5, 2, 3, 5, 10]
    ax.xaxis.set_major_locator(FixedLocator([v for v in nice if lo / 1.15 <= v <= hi * 1.15]))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    label = "Hazard ratio (< 1: leaves less often; 95% CI)"
    if reference_levels:
        label += "\nreference: " + ", ".join(f"{k} = {v}" for k, v in reference_levels.items())
    ax.set_xlabel(label)
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
    for g, sub in _groups(haz, group):
        mid = (sub["start"] + sub["end"]) / 2
        (line,) = ax.plot(mid, sub["hazard_smooth"], label=str(g) if g is not None else "smoothed")
        ax.fill_between(
            mid,
            sub["smooth_ci_lower"],
            sub["smooth_ci_upper"],
            alpha=0.18,
            color=line.get_color(),
            linewidth=0,
        )
        ax.plot(mid, sub["hazard"], "o", ms=3, alpha=0.5, color=line.get_color())
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
    for cause, sub in cif.groupby("cause", sort=True):
        t = np.concatenate([[0.0], sub["time"].to_numpy()])
        f = np.concatenate([[0.0], sub["cif"].to_numpy()])
        lo = np.concatenate([[0.0], sub["ci_lower"].to_numpy()])
        hi = np.concatenate([[0.0], sub["ci_upper"].to_numpy()])
        (line,) = ax.step(t, f, where="post", label=str(cause))
        ax.fill_between(t, lo, hi, step="post", alpha=0.15, color=line.get_color(), linewidth=0)
    if max_time is not None:
        ax.set_xlim(0, max_time)
    ax.set_ylim(bottom=0)
    ax.yaxis.set_major_formatter(_PCT)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("Share of customers who left for this reason")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(frameon=False, fontsize=9, ncol=2)
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
    labels = [str(c)[:7] for c in table.index]
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
