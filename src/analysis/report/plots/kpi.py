"""KPI dashboard plots: one small trend panel per KPI."""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.report.kpi import METRIC_LABELS


def plot_trends(
    kpis: pd.DataFrame, *, metrics: list[str], granularity: str, currency: str, ncols: int = 2
):
    """Draw one small trend panel per KPI (seaborn line plots) and return the figure."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    metrics = [m for m in metrics if kpis[m].notna().any()]
    nrows = int(np.ceil(len(metrics) / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(11, 2.9 * nrows), squeeze=False)
    for ax, m in zip(axes.flat, metrics, strict=False):
        d = kpis[["period", m, "complete"]].copy()
        y = d[m] * (
            100
            if m in ("churn_rate", "retention_rate", "member_share", "fcr_rate", "sla_compliance")
            else 1
        )
        sns.lineplot(
            x=d["period"], y=y, ax=ax, marker="o" if len(d) <= 40 else None, color="#2a6f97"
        )
        if (~d["complete"]).any():
            last = d[~d["complete"]]
            ax.scatter(
                last["period"],
                y[~d["complete"]],
                facecolors="white",
                edgecolors="#2a6f97",
                zorder=3,
                label="partial period",
            )
            ax.legend(loc="best", fontsize=8)
        unit = {
            "churn_rate": "% of customers",
            "retention_rate": "% of customers",
            "member_share": "% of active",
            "fcr_rate": "% of tickets",
            "sla_compliance": "% of tickets",
            "revenue": currency,
            "revenue_per_customer": currency,
            "nps": "NPS points",
            "csat_mean": "score 1-5",
        }
        ax.set_title(METRIC_LABELS[m])
        ax.set_ylabel(unit.get(m, "customers"))
        ax.set_xlabel(granularity)
        ax.tick_params(axis="x", labelrotation=30)
    for ax in axes.flat[len(metrics) :]:
        ax.set_visible(False)
    fig.tight_layout()
    return fig
