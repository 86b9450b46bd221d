"""Plots of the customer value report (04); each returns a matplotlib Figure."""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.studies.value.churn_risk import ChurnRiskResult

# Okabe-Ito colours (colour-blind safe), as the shared plot style
_BLUE, _ORANGE, _GREEN, _GREY = "#0072B2", "#E69F00", "#009E73", "#999999"


def plot_tracking(tracking: pd.DataFrame, *, unit_label: str = "weeks"):
    """Plot actual vs expected repeat purchases over time, the calibration end marked.

    A last period cut short by the end of the data (column ``partial``) is drawn
    dashed with hollow markers and labelled, so that its lower count does not read
    as a collapse; the per-period panel compares purchases per day there.
    """
    import matplotlib.pyplot as plt

    unit = unit_label[:-1] if unit_label.endswith("s") else unit_label
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    t = tracking
    partial = t["partial"].to_numpy(bool) if "partial" in t.columns else np.zeros(len(t), bool)
    full = ~partial
    x = t["period_end"]
    boundary = t.loc[t["calibration"], "period_end"].max()
    for ax, (a, e, title) in zip(
        axes,
        [
            ("actual_cum", "expected_cum", "Cumulative repeat purchases"),
            ("actual", "expected", f"Repeat purchases per {unit}"),
        ],
        strict=True,
    ):
        ax.plot(x[full], t.loc[full, a], label="Actual", color="black")
        ax.plot(x[full], t.loc[full, e], label="Expected (BG/NBD)", color=_BLUE, linestyle="--")
        if partial.any():
            last_full = np.flatnonzero(full)[-1] if full.any() else None
            idx = ([last_full] if last_full is not None else []) + list(np.flatnonzero(partial))
            ax.plot(x.iloc[idx], t[a].iloc[idx], color="black", linestyle=":", linewidth=1)
            ax.plot(
                x[partial],
                t.loc[partial, a],
                linestyle="none",
                marker="o",
                markerfacecolor="white",
                color="black",
            )
            days = int(t.loc[partial, "days"].iloc[-1]) if "days" in t.columns else None
            if a == "actual" and days is not None:
                ax.annotate(
                    f"partial {unit}\n({days} of {int(round(t['days'].max()))} days)",
                    (x[partial].iloc[-1], t.loc[partial, a].iloc[-1]),
                    textcoords="offset points",
                    xytext=(-10, 12),
                    ha="right",
                    fontsize=9,
                )
        ax.axvline(boundary, color=_GREY, linestyle=":", label="End of calibration")
        ax.set_title(title)
        ax.set_ylabel("Repeat purchases")
        ax.legend(frameon=False)
        ax.tick_params(axis="x", rotation=30)
    fig.tight_layout()
    return fig


def plot_holdout_by_frequency(table: pd.DataFrame):
    """Plot mean holdout purchases, actual vs predicted, by calibration purchase count."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    pos = np.arange(len(table))
    ax.plot(pos, table["actual"], marker="o", color="black", label="Actual")
    ax.plot(pos, table["predicted"], marker="s", linestyle="--", color=_BLUE, label="BG/NBD")
    if "predicted_pareto_nbd" in table.columns:
        ax.plot(
            pos,
            table["predicted_pareto_nbd"],
            marker="^",
            linestyle=":",
            color=_ORANGE,
            label="Pareto/NBD",
        )
    ax.set_xticks(pos, table["frequency_group"])
    ax.set_xlabel("Repeat purchases in the calibration period")
    ax.set_ylabel("Mean purchases in the holdout")
    ax.legend(frameon=False)
    fig.tight_layout()
    return fig


def plot_value_curve(values: pd.Series, *, top: float | None = None):
    """Plot the cumulative share of expected value against the share of customers (highest first)."""
    import matplotlib.pyplot as plt

    v = np.sort(np.asarray(values, float))[::-1]
    share_c = np.arange(1, v.size + 1) / v.size
    share_v = np.cumsum(v) / v.sum()
    fig, ax = plt.subplots(figsize=(6, 4))
    # the curve's exact points at most 2,000 customer shares apart: the same picture, where
    # ten million vertices would take most of the report's drawing time
    at = np.unique(np.linspace(0, v.size - 1, min(v.size, 2001)).round().astype(np.int64))
    ax.plot(share_c[at], share_v[at], color=_BLUE)
    ax.plot([0, 1], [0, 1], color=_GREY, linestyle=":", label="Equal value")
    if top:
        k = max(1, int(round(top * v.size)))
        ax.plot([share_c[k - 1]], [share_v[k - 1]], "o", color=_ORANGE)
        ax.annotate(
            f"top {top:.0%}: {share_v[k - 1]:.0%} of value",
            (share_c[k - 1], share_v[k - 1]),
            textcoords="offset points",
            xytext=(10, -14),
        )
    ax.xaxis.set_major_formatter(lambda x, _: f"{x:.0%}")
    ax.yaxis.set_major_formatter(lambda x, _: f"{x:.0%}")
    ax.set_xlabel("Share of customers (highest value first)")
    ax.set_ylabel("Share of expected value")
    fig.tight_layout()
    return fig


def plot_p_alive(scores: pd.DataFrame, *, tier: str = "clv_tier"):
    """Plot the distribution of the chance still active (P(alive)) by value tier."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    bins = np.linspace(0, 1, 21)
    for t, col in (("high", _BLUE), ("medium", _ORANGE), ("low", _GREEN)):
        sub = scores.loc[scores[tier] == t, "p_alive"]
        if len(sub):
            ax.hist(
                sub,
                bins=bins,
                histtype="step",
                density=True,
                label=f"{t.capitalize()} value",
                linewidth=1.5,
                color=col,
            )
    ax.xaxis.set_major_formatter(lambda x, _: f"{x:.0%}")
    ax.set_xlabel("Chance the customer is still active (purchase model)")
    ax.set_ylabel("Density")
    ax.legend(frameon=False)
    fig.tight_layout()
    return fig


def plot_contract_survival(table: pd.DataFrame, *, period: str = "month"):
    """Plot the share of new customers still active after each renewal: observed vs sBG model.

    ``table`` is the contract model's life table (``t``, ``survival``,
    ``model_survival``, ``at_risk``); renewals with few customers at risk are noisy,
    so the observed curve stops where fewer than 20 customers remain at risk.
    """
    import matplotlib.pyplot as plt

    t = table[table["at_risk"] >= 20]
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.step(
        np.r_[0, t["t"]],
        np.r_[1.0, t["survival"]],
        where="post",
        color="black",
        label="Observed (Kaplan–Meier)",
    )
    ts = np.arange(0, int(table["t"].max()) + 1)
    model = np.r_[1.0, table.set_index("t")["model_survival"].reindex(ts[1:]).to_numpy()]
    ax.plot(ts, model, color=_BLUE, linestyle="--", label="Contract model (sBG)")
    ax.yaxis.set_major_formatter(lambda x, _: f"{x:.0%}")
    ax.set_ylim(0, 1.02)
    ax.set_xlabel(f"Renewals ({period}s since sign-up)")
    ax.set_ylabel("Share of new customers still active")
    ax.legend(frameon=False)
    fig.tight_layout()
    return fig


def plot_stakes_by_segment(table: pd.DataFrame, *, currency: str = "EUR"):
    """Plot value at stake by segment (bars), highest first; ``table`` has segment, value_at_stake."""
    import matplotlib.pyplot as plt

    from analysis.report.format import fmt_money

    t = table.sort_values("value_at_stake")
    fig, ax = plt.subplots(figsize=(7, max(2.2, 0.5 * len(t) + 1)))
    ax.barh(t["segment"].astype(str), t["value_at_stake"], color=_ORANGE)
    ax.xaxis.set_major_formatter(lambda x, _: fmt_money(x, currency, digits=0))
    ax.set_xlabel("Value at stake (value × risk of leaving)")
    fig.tight_layout()
    return fig


def plot_churn_model(result: ChurnRiskResult):
    """Plot the churn-risk model's calibration (with intervals), gains and permutation importance."""
    import matplotlib.pyplot as plt

    from analysis.report.labels import label

    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    cal = result.calibration
    ax = axes[0]
    hi = float(max(cal["mean_predicted"].max(), cal["ci_upper"].max())) * 1.05
    ax.plot([0, hi], [0, hi], color=_GREY, linestyle=":")
    ax.errorbar(
        cal["mean_predicted"],
        cal["observed"],
        # Clipped: at 0 or n events the Wilson bound equals the share up to rounding.
        yerr=[
            np.clip(cal["observed"] - cal["ci_lower"], 0, None),
            np.clip(cal["ci_upper"] - cal["observed"], 0, None),
        ],
        fmt="o",
        color=_BLUE,
    )
    ax.set_xlabel("Mean predicted chance of leaving")
    ax.set_ylabel("Observed share who left")
    ax.set_title("Calibration (later period)")
    g = result.gains
    ax = axes[1]
    ax.plot(
        np.r_[0, g["cum_share_customers"]],
        np.r_[0, g["cum_share_churners"]],
        marker="o",
        color=_BLUE,
        label="Model",
    )
    ax.plot([0, 1], [0, 1], color=_GREY, linestyle=":", label="Random")
    ax.set_xlabel("Share of customers contacted (highest risk first)")
    ax.set_ylabel("Share of leavers reached")
    ax.set_title("Gains")
    ax.legend(frameon=False)
    imp = result.importance.head(10).iloc[::-1]
    ax = axes[2]
    ax.barh([label(f) for f in imp["feature"]], imp["importance"], xerr=imp["sd"], color=_BLUE)
    ax.set_xlabel("Drop in ranking quality when shuffled")
    ax.set_title("What the model relies on")
    fig.tight_layout()
    return fig
