"""Plots of the customer value report (04); each returns a matplotlib Figure."""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.studies.value.churn_risk import ChurnRiskResult


def plot_tracking(tracking: pd.DataFrame, *, unit_label: str = "weeks"):
    """Plot actual vs expected repeat transactions over time, the calibration end marked."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    x = tracking["period_end"]
    boundary = tracking.loc[tracking["calibration"], "period_end"].max()
    for ax, (a, e, title) in zip(
        axes,
        [
            ("actual_cum", "expected_cum", "Cumulative repeat transactions"),
            ("actual", "expected", f"Repeat transactions per period ({unit_label[:-1]})"),
        ],
        strict=True,
    ):
        ax.plot(x, tracking[a], label="actual", color="black")
        ax.plot(x, tracking[e], label="BG/NBD expected", color="tab:blue", linestyle="--")
        ax.axvline(boundary, color="grey", linestyle=":", label="end of calibration")
        ax.set_title(title)
        ax.legend(frameon=False)
        ax.tick_params(axis="x", rotation=30)
    fig.tight_layout()
    return fig


def plot_holdout_by_frequency(table: pd.DataFrame):
    """Plot mean holdout transactions, actual vs predicted, by calibration frequency group."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    pos = np.arange(len(table))
    ax.plot(pos, table["actual"], marker="o", color="black", label="actual")
    ax.plot(pos, table["predicted"], marker="s", linestyle="--", color="tab:blue", label="BG/NBD")
    if "predicted_pareto_nbd" in table.columns:
        ax.plot(
            pos,
            table["predicted_pareto_nbd"],
            marker="^",
            linestyle=":",
            color="tab:orange",
            label="Pareto/NBD",
        )
    ax.set_xticks(pos, table["frequency_group"])
    ax.set_xlabel("repeat transactions in the calibration period")
    ax.set_ylabel("mean transactions in the holdout")
    ax.legend(frameon=False)
    fig.tight_layout()
    return fig


def plot_value_curve(values: pd.Series):
    """Plot the cumulative share of expected value against the share of customers (highest first)."""
    import matplotlib.pyplot as plt

    v = np.sort(np.asarray(values, float))[::-1]
    share_c = np.arange(1, v.size + 1) / v.size
    share_v = np.cumsum(v) / v.sum()
    fig, ax = plt.subplots(figsize=(5.5, 4))
    ax.plot(share_c, share_v, color="tab:blue")
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":")
    ax.set_xlabel("share of customers (highest value first)")
    ax.set_ylabel("share of expected value")
    fig.tight_layout()
    return fig


def plot_p_alive(scores: pd.DataFrame, *, tier: str = "clv_tier"):
    """Plot the distribution of P(alive) by value tier."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    bins = np.linspace(0, 1, 21)
    for t in ["high", "medium", "low"]:
        sub = scores.loc[scores[tier] == t, "p_alive"]
        if len(sub):
            ax.hist(
                sub, bins=bins, histtype="step", density=True, label=f"{t} value", linewidth=1.5
            )
    ax.set_xlabel("P(alive) at the as-of date")
    ax.set_ylabel("density")
    ax.legend(frameon=False)
    fig.tight_layout()
    return fig


def plot_churn_model(result: ChurnRiskResult):
    """Plot the churn-risk model's calibration (with intervals), gains and permutation importance."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    cal = result.calibration
    ax = axes[0]
    hi = float(max(cal["mean_predicted"].max(), cal["ci_upper"].max())) * 1.05
    ax.plot([0, hi], [0, hi], color="grey", linestyle=":")
    ax.errorbar(
        cal["mean_predicted"],
        cal["observed"],
        # Clipped: at 0 or n events the Wilson bound equals the share up to rounding.
        yerr=[
            np.clip(cal["observed"] - cal["ci_lower"], 0, None),
            np.clip(cal["ci_upper"] - cal["observed"], 0, None),
        ],
        fmt="o",
        color="tab:blue",
    )
    ax.set_xlabel("mean predicted churn probability")
    ax.set_ylabel("observed churn share")
    ax.set_title("Calibration (test cutoff)")
    g = result.gains
    ax = axes[1]
    ax.plot(
        np.r_[0, g["cum_share_customers"]],
        np.r_[0, g["cum_share_churners"]],
        marker="o",
        color="tab:blue",
        label="model",
    )
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", label="random")
    ax.set_xlabel("share of customers contacted (highest risk first)")
    ax.set_ylabel("share of churners reached")
    ax.set_title("Gains")
    ax.legend(frameon=False)
    imp = result.importance.head(10).iloc[::-1]
    ax = axes[2]
    ax.barh(imp["feature"], imp["importance"], xerr=imp["sd"], color="tab:blue")
    ax.set_xlabel("drop in test AUC when shuffled")
    ax.set_title("Permutation importance")
    fig.tight_layout()
    return fig
