"""Figures of the experience-to-revenue report (03).

Trends, Kaplan-Meier curves by NPS answer, churn-rate ratios, dose-response,
lags, touchpoints and revenue at stake. Every axis and title is a plain label
(:mod:`analysis.report.labels`); scales that differ (CSAT 1-5, effort 1-7,
NPS -100 to 100, shares of tickets) get their own panels.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.report.experience import EXPOSURE_LABELS
from analysis.report.labels import label


def _panels(n: int, *, width: float = 11.0, height: float = 3.2, cols: int = 3):
    import matplotlib.pyplot as plt

    cols = max(1, min(cols, n))
    rows = int(np.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(width, height * rows), squeeze=False)
    flat = list(axes.ravel())
    for ax in flat[n:]:
        ax.set_visible(False)
    return fig, flat[:n]


def _dates(ax) -> None:
    """Few, short date ticks ("2024", "Apr", ...) instead of one crowded label per month."""
    import matplotlib.dates as mdates

    loc = mdates.AutoDateLocator(minticks=3, maxticks=6)
    ax.xaxis.set_major_locator(loc)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(loc))


def _plain_log_ticks(ax, lo: float, hi: float) -> None:
    """Label a log-scale ratio axis with plain numbers (0.5, 1, 2) instead of powers of ten."""
    from matplotlib.ticker import FixedLocator, NullFormatter, NullLocator

    cands = [0.1, 0.2, 0.25, 0.33, 0.5, 0.67, 0.75, 1, 1.25, 1.5, 2, 3, 4, 5, 10]
    ticks = [t for t in cands if lo / 1.05 <= t <= hi * 1.05] or [1]
    if len(ticks) > 7:
        ticks = ticks[:: int(np.ceil(len(ticks) / 7))] + ([1] if 1 not in ticks[::2] else [])
    ax.xaxis.set_major_locator(FixedLocator(sorted(set(ticks))))
    ax.xaxis.set_major_formatter(lambda v, _pos: f"{v:g}")
    ax.xaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_minor_formatter(NullFormatter())


def _thousands(ax, axis: str = "x") -> None:
    fmt = lambda v, _pos: f"{v:,.0f}".replace("-", "\u2212")  # noqa: E731
    (ax.xaxis if axis == "x" else ax.yaxis).set_major_formatter(fmt)


def plot_trends(metrics: pd.DataFrame, *, min_answers: int = 10):
    """Plot NPS, CSAT, effort, ticket outcomes and contacts to resolve per period, one scale each.

    Periods with fewer than ``min_answers`` answers (or tickets) are left out; a
    measure the data does not record gets no panel.
    """
    m = metrics.sort_values("period")
    s = m[m["answers"] >= min_answers]
    n = m[m["nps_answers"] >= min_answers]
    t = m[m["tickets"] >= min_answers]
    panels = []
    if n["nps"].notna().any():
        panels.append(("nps", n))
    for col, frame in (("csat_mean", s), ("ces_mean", s)):
        if frame[col].notna().any():
            panels.append((col, frame))
    if t[["fcr_rate", "sla_compliance"]].notna().any().any():
        panels.append(("tickets", t))
    if t["contacts_to_resolve"].notna().any():
        panels.append(("contacts_to_resolve", t))
    fig, axes = _panels(max(len(panels), 1))
    for ax, (what, d) in zip(axes, panels, strict=False):
        if what == "nps":
            ax.plot(d["period"], d["nps"], color="C0")
            ax.fill_between(d["period"], d["nps_ci_lower"], d["nps_ci_upper"], alpha=0.2)
            ax.set_title("Net Promoter Score, 95% CI")
            ax.set_ylabel("NPS (−100 to 100)")
        elif what == "csat_mean":
            ax.plot(d["period"], d["csat_mean"], color="C1")
            ax.set_ylim(1, 5)
            ax.set_title("Satisfaction (CSAT)")
            ax.set_ylabel("mean CSAT (1–5)")
        elif what == "ces_mean":
            ax.plot(d["period"], d["ces_mean"], color="C2")
            ax.set_ylim(1, 7)
            ax.set_title("Customer effort")
            ax.set_ylabel("mean effort score (1–7)")
        elif what == "tickets":
            for col, name, c in (
                ("fcr_rate", "resolved at first contact", "C0"),
                ("sla_compliance", "within SLA", "C3"),
            ):
                if d[col].notna().any():
                    ax.plot(d["period"], 100 * d[col], label=name, color=c)
            ax.set_ylim(0, 100)
            ax.set_title("Ticket outcomes")
            ax.set_ylabel("% of tickets")
            ax.legend(frameon=False, loc="lower left")
        else:
            ax.plot(d["period"], d["contacts_to_resolve"], color="C4")
            ax.set_title("Contacts to resolve a ticket")
            ax.set_ylabel("mean contacts")
        _dates(ax)
    fig.tight_layout()
    return fig


def plot_km(km: pd.DataFrame, *, group: str = "nps_category", title: str = "", since: str = ""):
    """Plot Kaplan-Meier curves (columns time, survival, ci_lower, ci_upper, ``group``)."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.2))
    tcol = "time" if "time" in km.columns else km.columns[1]
    names = {
        "promoter": "promoter",
        "passive": "passive",
        "detractor": "detractor",
        "none": "no answer",
    }
    for i, (lv, g) in enumerate(km.groupby(group, observed=True, sort=False)):
        g = g.sort_values(tcol)
        ax.step(
            g[tcol],
            100 * g["survival"],
            where="post",
            label=names.get(str(lv), str(lv)),
            color=f"C{i}",
        )
        if {"ci_lower", "ci_upper"} <= set(g.columns):
            ax.fill_between(
                g[tcol],
                100 * g["ci_lower"],
                100 * g["ci_upper"],
                step="post",
                alpha=0.15,
                color=f"C{i}",
            )
    ax.set_xlabel(f"months since {since}" if since else "months since the start date")
    ax.set_ylabel("% still customers")
    ax.set_title(title)
    ax.legend(frameon=False, title="latest NPS answer")
    fig.tight_layout()
    return fig


def plot_hazard_ratios(table: pd.DataFrame):
    """Plot churn-rate ratios with 95% intervals on a log scale (columns term_label, hazard_ratio, ci_lower, ci_upper)."""
    import matplotlib.pyplot as plt

    d = table.iloc[::-1]
    fig, ax = plt.subplots(figsize=(9, 0.5 * len(d) + 1.3))
    y = np.arange(len(d))
    ax.errorbar(
        d["hazard_ratio"],
        y,
        xerr=[d["hazard_ratio"] - d["ci_lower"], d["ci_upper"] - d["hazard_ratio"]],
        fmt="o",
        capsize=3,
        color="C0",
    )
    ax.axvline(1, color="grey", lw=0.8)
    ax.set_xscale("log")
    lo = float(min(d["ci_lower"].min(), 1.0))
    hi = float(max(d["ci_upper"].max(), 1.0))
    ax.set_xlim(lo / 1.15, hi * 1.15)
    _plain_log_ticks(ax, lo, hi)
    ax.set_yticks(y, d["term_label"])
    ax.set_xlabel("churn rate ratio (1 = no difference; log scale), 95% CI")
    fig.tight_layout()
    return fig


def plot_dose_response(dr: pd.DataFrame, *, currency: str = "EUR", reference: int = 3):
    """Plot next-month revenue by CSAT level: raw means and within-customer differences."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, 2, figsize=(11, 4))
    ax[0].errorbar(
        dr["level"],
        dr["next_revenue_mean"],
        yerr=[dr["next_revenue_mean"] - dr["ci_lower"], dr["ci_upper"] - dr["next_revenue_mean"]],
        fmt="o-",
        capsize=3,
    )
    ax[0].set_title("Next-month revenue per customer, 95% CI")
    ax[0].set_xlabel("CSAT this month (1–5)")
    ax[0].set_ylabel(f"revenue next month ({currency})")
    if "fe_difference" in dr.columns and dr["fe_difference"].notna().any():
        ax[1].errorbar(
            dr["level"],
            dr["fe_difference"],
            yerr=[dr["fe_difference"] - dr["fe_ci_lower"], dr["fe_ci_upper"] - dr["fe_difference"]],
            fmt="o-",
            capsize=3,
            color="C1",
        )
    ax[1].axhline(0, color="grey", lw=0.8)
    ax[1].set_title(f"Same customers across months, vs CSAT {reference}")
    ax[1].set_xlabel("CSAT this month (1–5)")
    ax[1].set_ylabel(f"difference in next-month revenue ({currency})")
    for a in ax:
        a.set_xticks(sorted(dr["level"].astype(int).unique()))
    fig.tight_layout()
    return fig


def plot_lags(lag_summary: pd.DataFrame, *, currency: str = "EUR"):
    """Plot revenue-link coefficients by lag with intervals, one labelled panel per service measure."""
    s = lag_summary.copy()
    if "exposure" not in s.columns:
        s["exposure"] = [t.rsplit("_lag", 1)[0] for t in s.index]
        s["lag"] = [int(t.rsplit("_lag", 1)[1]) for t in s.index]
    ex = list(dict.fromkeys(s["exposure"]))
    fig, axes = _panels(len(ex), height=3.4)
    units = {
        "csat_mean": "per CSAT point",
        "unresolved_tickets": "per ticket",
        "sla_breaches": "per breach",
    }
    for ax, e in zip(axes, ex, strict=True):
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
        ax.set_title(EXPOSURE_LABELS.get(e, label(e)), fontsize=11)
        ax.set_ylabel(f"revenue ({currency}) {units.get(e, 'per unit')}")
    fig.tight_layout()
    return fig


def plot_moments(moments: pd.DataFrame):
    """Plot extra customers leaving per 100 failed tickets by touchpoint, with 95% intervals."""
    import matplotlib.pyplot as plt

    d = moments.iloc[::-1]
    fig, ax = plt.subplots(figsize=(9, 0.5 * len(d) + 1.3))
    y = np.arange(len(d))
    est = d["customers_lost_per_100"]
    ax.errorbar(
        est,
        y,
        xerr=[est - d["customers_lost_ci_lower"], d["customers_lost_ci_upper"] - est],
        fmt="o",
        capsize=3,
        color="C3",
    )
    ax.axvline(0, color="grey", lw=0.8)
    ax.set_yticks(y, [str(t) for t in d["touchpoint"]])
    ax.set_xlabel("extra customers leaving per 100 failed tickets (below 0: fewer), 95% CI")
    fig.tight_layout()
    return fig


def plot_stakes(stakes: pd.DataFrame, *, currency: str = "EUR"):
    """Plot revenue kept a year under each scenario, with 95% intervals."""
    import matplotlib.pyplot as plt

    d = stakes.iloc[::-1]
    fig, ax = plt.subplots(figsize=(9, 0.6 * len(d) + 1.3))
    y = np.arange(len(d))
    est = d["revenue_at_stake"]
    ax.barh(y, est, color="C0", alpha=0.8)
    ax.errorbar(
        est,
        y,
        xerr=[est - d["revenue_ci_lower"], d["revenue_ci_upper"] - est],
        fmt="none",
        capsize=3,
        color="black",
    )
    ax.axvline(0, color="grey", lw=0.8)
    ax.set_yticks(y, [str(t) for t in d["description"]])
    ax.set_xlabel(f"revenue kept a year ({currency}), 95% CI")
    _thousands(ax)
    fig.tight_layout()
    return fig
