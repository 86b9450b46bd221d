"""Figures of the experience-to-revenue report (03): trends, Kaplan-Meier, dose-response, lags."""

from __future__ import annotations

import pandas as pd


def plot_trends(metrics: pd.DataFrame, *, min_answers: int = 10):
    """Plot NPS, CSAT/CES, FCR/SLA compliance and contacts to resolve per period.

    Periods with fewer than ``min_answers`` answers (or tickets) are left out.
    """
    import matplotlib.pyplot as plt

    m = metrics.sort_values("period")
    fig, ax = plt.subplots(2, 2, figsize=(11, 6.5), sharex=True)
    s = m[m["nps_answers"] >= min_answers]
    ax[0, 0].plot(s["period"], s["nps"], color="C0")
    ax[0, 0].fill_between(s["period"], s["nps_ci_lower"], s["nps_ci_upper"], alpha=0.2)
    ax[0, 0].set_title("NPS (% promoters - % detractors), 95% CI")
    s = m[m["answers"] >= min_answers]
    ax[0, 1].plot(s["period"], s["csat_mean"], label="CSAT (1-5)")
    ax[0, 1].plot(s["period"], s["ces_mean"], label="CES (1-7, higher = easier)")
    ax[0, 1].set_title("Satisfaction and effort")
    ax[0, 1].legend(frameon=False)
    t = m[m["tickets"] >= min_answers]
    ax[1, 0].plot(t["period"], 100 * t["fcr_rate"], label="first-contact resolution")
    ax[1, 0].plot(t["period"], 100 * t["sla_compliance"], label="SLA compliance")
    ax[1, 0].set_ylabel("% of tickets")
    ax[1, 0].set_title("Ticket outcomes")
    ax[1, 0].legend(frameon=False)
    ax[1, 1].plot(t["period"], t["contacts_to_resolve"], color="C3")
    ax[1, 1].set_title("Contacts to resolve (mean)")
    fig.autofmt_xdate()
    fig.tight_layout()
    return fig


def plot_km(km: pd.DataFrame, *, group: str = "nps_category", title: str = ""):
    """Plot Kaplan-Meier curves (columns time, survival, ci_lower, ci_upper, ``group``)."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    tcol = "time" if "time" in km.columns else km.columns[1]
    for i, (lv, g) in enumerate(km.groupby(group, observed=True, sort=False)):
        g = g.sort_values(tcol)
        ax.step(g[tcol], g["survival"], where="post", label=str(lv), color=f"C{i}")
        if {"ci_lower", "ci_upper"} <= set(g.columns):
            ax.fill_between(
                g[tcol], g["ci_lower"], g["ci_upper"], step="post", alpha=0.15, color=f"C{i}"
            )
    ax.set_xlabel("months since the landmark date")
    ax.set_ylabel("share still customers")
    ax.set_title(title)
    ax.legend(frameon=False, title="latest NPS answer")
    fig.tight_layout()
    return fig


def plot_dose_response(dr: pd.DataFrame, *, currency: str = "EUR", reference: int = 3):
    """Plot next-month revenue by CSAT level: raw means and fixed-effects contrasts."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, 2, figsize=(11, 4))
    ax[0].errorbar(
        dr["level"],
        dr["next_revenue_mean"],
        yerr=[dr["next_revenue_mean"] - dr["ci_lower"], dr["ci_upper"] - dr["next_revenue_mean"]],
        fmt="o-",
        capsize=3,
    )
    ax[0].set_title("Next-month revenue per customer (raw mean, 95% CI)")
    ax[0].set_xlabel("CSAT this month")
    ax[0].set_ylabel(currency)
    if "fe_difference" in dr.columns:
        ax[1].errorbar(
            dr["level"],
            dr["fe_difference"],
            yerr=[dr["fe_difference"] - dr["fe_ci_lower"], dr["fe_ci_upper"] - dr["fe_difference"]],
            fmt="o-",
            capsize=3,
            color="C1",
        )
    ax[1].axhline(0, color="grey", lw=0.8)
    ax[1].set_title(f"Same customers across months, vs CSAT {reference} (95% CI)")
    ax[1].set_xlabel("CSAT this month")
    ax[1].set_ylabel(f"{currency} difference next month")
    fig.tight_layout()
    return fig


def plot_lags(lag_summary: pd.DataFrame, *, currency: str = "EUR"):
    """Plot coefficients by lag (index ``<exposure>_lag<L>``) with intervals, one panel per exposure."""
    import matplotlib.pyplot as plt

    s = lag_summary.copy()
    if "exposure" not in s.columns:
        s["exposure"] = [t.rsplit("_lag", 1)[0] for t in s.index]
        s["lag"] = [int(t.rsplit("_lag", 1)[1]) for t in s.index]
    ex = list(dict.fromkeys(s["exposure"]))
    fig, axes = plt.subplots(1, len(ex), figsize=(4 * len(ex), 3.5), squeeze=False)
    for ax, e in zip(axes[0], ex, strict=True):
        g = s[s["exposure"] == e]
        ax.errorbar(
            g["lag"],
            g["coef"],
            yerr=[g["coef"] - g["ci_lower"], g["ci_upper"] - g["coef"]],
            fmt="o",
            capsize=3,
        )
        ax.axhline(0, color="grey", lw=0.8)
        ax.set_xticks(g["lag"])
        ax.set_xlabel("months later")
        ax.set_title(e)
        ax.set_ylabel(f"{currency} per customer-month per unit")
    fig.tight_layout()
    return fig
