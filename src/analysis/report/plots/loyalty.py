"""Plots of the loyalty-programme report: effects, uptake, survival, event study, subgroups.

Colours are the Okabe-Ito colour-blind-safe palette; axis labels are plain words with
their unit (retention effects in percentage points, spend in money over the horizon).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.report.loyalty import covariate_label, effect_rows
from analysis.stats.event_study import EventStudy
from analysis.stats.weighted_survival import SurvivalContrast

__all__ = [
    "plot_effects",
    "plot_event_study",
    "plot_heterogeneity",
    "plot_love",
    "plot_overlap",
    "plot_post_leaving",
    "plot_survival",
    "plot_survival_panels",
    "plot_uptake",
]

# Okabe-Ito: orange, sky blue, bluish green, blue, vermillion, grey
ORANGE, SKY, GREEN, BLUE, VERMILLION, GREY = (
    "#E69F00",
    "#56B4E9",
    "#009E73",
    "#0072B2",
    "#D55E00",
    "#999999",
)
_SYMBOLS = {"EUR": "€", "USD": "$", "GBP": "£"}


def _money_label(currency: str) -> str:
    return _SYMBOLS.get(currency, currency)


def plot_uptake(up: pd.DataFrame, ax=None):
    """Plot monthly enrolments (bars) and the member share of active customers (line)."""
    import matplotlib.pyplot as plt

    ax = ax or plt.subplots(figsize=(8, 3.2))[1]
    ax.bar(up["month"], up["enrolments"], width=20, color=SKY, label="Enrolments")
    ax.set_ylabel("Enrolments per month")
    ax2 = ax.twinx()
    ax2.plot(up["month"], 100 * up["member_share"], color=BLUE, lw=2, label="Member share")
    ax2.set_ylabel("Members, % of active customers")
    ax2.set_ylim(bottom=0)
    ax.set_title("Enrolments per month (bars) and members' share of active customers (line)")
    ax.figure.autofmt_xdate()
    ax.figure.tight_layout()
    return ax


def plot_effects(effects: pd.DataFrame, *, horizon: int, currency: str = "EUR"):
    """Plot the simple comparison against the adjusted effect, for retention and spend.

    Two panels: retention after ``horizon`` months in percentage points and spend
    over ``horizon`` months in money; each shows the simple (unadjusted) difference
    and the doubly robust effect on those who enrolled, with 95% intervals.
    """
    import matplotlib.pyplot as plt

    panels = [
        (y, t, s)
        for y, t, s in (
            ("retained", f"Retention after {horizon} months (points)", 100.0),
            ("spend", f"Spend over {horizon} months ({_money_label(currency)})", 1.0),
        )
        if effect_rows(effects, y) is not None
    ]
    fig, axes = plt.subplots(1, max(len(panels), 1), figsize=(9, 2.4), squeeze=False)
    for ax, (y, title, scale) in zip(axes[0], panels, strict=False):
        rows = [
            ("Simple comparison\n(not adjusted)", effect_rows(effects, y, "naive"), GREY),
            ("Effect of enrolling\n(adjusted)", effect_rows(effects, y), BLUE),
        ]
        for i, (_, r, color) in enumerate(rows):
            if r is None or not np.isfinite(r.estimate):
                continue
            est, lo, hi = scale * r.estimate, scale * r.ci_lower, scale * r.ci_upper
            ax.errorbar(
                est, i, xerr=[[est - lo], [hi - est]], fmt="o", color=color, capsize=4, ms=7
            )
        ax.axvline(0, color="black", lw=0.8)
        ax.set_yticks(range(len(rows)), [r[0] for r in rows])
        ax.set_ylim(-0.6, len(rows) - 0.4)
        ax.set_title(title, fontsize=10)
    for ax in axes[0][1:]:
        ax.tick_params(labelleft=False)
    fig.tight_layout()
    return axes[0][0]


def plot_overlap(
    frame: pd.DataFrame,
    propensity: pd.Series,
    ax=None,
    *,
    trim=None,
    log: bool = False,
    labels: tuple[str, str] = ("Members", "Non-members"),
    xlabel: str = "Estimated probability of being a member at the landmark",
):
    """Plot the propensity-score distributions of the treated and the controls.

    ``trim`` marks the trimming bounds (dashed); ``log`` puts the score on a log
    axis (rare treatments such as monthly enrolment, where most scores are near 0).
    Rows without a score (e.g. trimmed away) are left out.
    """
    import matplotlib.pyplot as plt

    ax = ax or plt.subplots(figsize=(7, 3.2))[1]
    p = propensity.to_numpy(dtype=float)
    ok = np.isfinite(p)
    hi = float(p[ok].max()) if ok.any() else 1.0
    if log and ok.any() and (p[ok] > 0).any():
        lo = max(float(p[ok & (p > 0)].min()), 1e-6)
        bins = np.geomspace(lo, min(1.0, 1.05 * hi), 41)
        ax.set_xscale("log")
    else:
        bins = np.linspace(0, min(1.0, 1.05 * hi) or 1.0, 41)  # zoom on the observed range
    for val, label, color in ((1, labels[0], ORANGE), (0, labels[1], BLUE)):
        ax.hist(
            propensity[(frame["member"] == val).to_numpy()].dropna(),
            bins=bins,
            density=True,
            alpha=0.5,
            label=label,
            color=color,
        )
    if trim:
        for x in (trim, 1 - trim):
            if bins[0] <= x <= bins[-1]:
                ax.axvline(x, color="grey", ls="--", lw=1)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("Density")
    ax.legend()
    return ax


def plot_love(bal: pd.DataFrame, ax=None):
    """Love plot: |SMD| per covariate before and after weighting, with the 0.1 line."""
    import matplotlib.pyplot as plt

    b = bal.assign(before=bal["smd"].abs(), after=bal["smd_weighted"].abs()).sort_values("before")
    ax = ax or plt.subplots(figsize=(7, 0.3 * len(b) + 1.2))[1]
    y = np.arange(len(b))
    ax.scatter(b["before"], y, marker="o", color=ORANGE, label="Before weighting")
    ax.scatter(b["after"], y, marker="s", color=BLUE, label="After weighting")
    ax.axvline(0.1, color="grey", ls="--", lw=1)
    names = [covariate_label(i) for i in b.index]
    ax.set_yticks(y, [n[:1].upper() + n[1:] for n in names])
    ax.set_xlabel("Absolute standardised difference")
    ax.legend(loc="lower right")
    return ax


def plot_survival(sv: SurvivalContrast, ax=None, *, title: str = ""):
    """Plot IP-weighted survival curves (% still active) of members and similar non-members."""
    import matplotlib.pyplot as plt

    ax = ax or plt.subplots(figsize=(7, 3.2))[1]
    for g, name, color in (
        ("member", "Members", ORANGE),
        ("non-member", "Similar non-members", BLUE),
    ):
        c = sv.curves[sv.curves["group"] == g]
        ax.step(c["time_months"], 100 * c["survival"], where="post", color=color, label=name)
        ax.fill_between(
            c["time_months"],
            100 * c["ci_lower"],
            100 * c["ci_upper"],
            step="post",
            alpha=0.2,
            color=color,
        )
    ax.set_xlabel("Months after the comparison date")
    ax.set_ylabel("Still active (%)")
    if title:
        ax.set_title(title, fontsize=10)
    ax.legend(loc="lower left")
    return ax


def plot_survival_panels(landmarks: dict):
    """One survival panel per landmark (``{L: LandmarkResult}`` with a survival contrast)."""
    import matplotlib.pyplot as plt

    items = [
        (L, r.survival) for L, r in landmarks.items() if isinstance(r.survival, SurvivalContrast)
    ]
    fig, axes = plt.subplots(1, max(len(items), 1), figsize=(9, 3.2), squeeze=False, sharey=True)
    for ax, (L, sv) in zip(axes[0], items, strict=False):
        plot_survival(sv, ax, title=f"Customers at {L} months of tenure")
    fig.tight_layout()
    return axes[0][0]


def plot_event_study(es: EventStudy, ax=None, *, currency: str = "EUR"):
    """Plot event-study coefficients (imputation and two-way FE) with 95% intervals."""
    import matplotlib.pyplot as plt

    ax = ax or plt.subplots(figsize=(8, 3.2))[1]
    for (name, d), off, color in zip(
        es.coefficients.groupby("estimator"), (-0.1, 0.1), (BLUE, GREY), strict=False
    ):
        ax.errorbar(
            d["rel"] + off,
            d["estimate"],
            yerr=[d["estimate"] - d["ci_lower"], d["ci_upper"] - d["estimate"]],
            fmt="o",
            color=color,
            label="Robust estimate" if name == "imputation" else "Conventional estimate",
            capsize=2,
        )
    ax.axhline(0, color="black", lw=0.8)
    ax.axvline(-0.5, color="grey", ls=":", lw=1)
    ax.set_xlabel("Months relative to the month of enrolling (0)")
    ax.set_ylabel(f"Monthly spend vs expected ({_money_label(currency)})")
    ax.legend()
    return ax


def plot_heterogeneity(h: pd.DataFrame, *, by: str, by_label: str, horizon: int, currency="EUR"):
    """Spend effect on enrollees per group, with 95% intervals (suppressed groups left out)."""
    import matplotlib.pyplot as plt

    d = h[~h["suppressed"].astype(bool)].dropna(subset=["estimate"]).reset_index(drop=True)
    ax = plt.subplots(figsize=(7, 0.45 * max(len(d), 1) + 1.2))[1]
    y = np.arange(len(d))
    ax.errorbar(
        d["estimate"],
        y,
        xerr=[d["estimate"] - d["ci_lower"], d["ci_upper"] - d["estimate"]],
        fmt="o",
        color=BLUE,
        capsize=4,
    )
    ax.axvline(0, color="black", lw=0.8)
    ax.set_yticks(y, [f"{by_label}: {v}" for v in d[by].astype(str)])
    ax.set_xlabel(f"Effect on spend over {horizon} months ({_money_label(currency)})")
    return ax


def plot_post_leaving(pl: pd.DataFrame):
    """Monthly churn rate (%) by programme state, with exact 95% intervals (descriptive)."""
    import matplotlib.pyplot as plt

    names = {
        "never enrolled / before enrolling": "Not (yet) a member",
        "member": "While a member",
        "after leaving": "After leaving the programme",
    }
    d = pl[pl["customer_months"] > 0].reset_index(drop=True)
    ax = plt.subplots(figsize=(7, 0.5 * max(len(d), 1) + 1.2))[1]
    y = np.arange(len(d))
    est = 100 * d["monthly_churn_rate"]
    colours = {"member": ORANGE, "after leaving": VERMILLION}
    ax.barh(y, est, color=[colours.get(s, SKY) for s in d["state"]])
    ax.errorbar(
        est,
        y,
        xerr=[est - 100 * d["ci_lower"], 100 * d["ci_upper"] - est],
        fmt="none",
        color="black",
        capsize=4,
    )
    ax.set_yticks(y, [names.get(s, s) for s in d["state"]])
    ax.set_xlabel("Monthly churn rate (%)")
    return ax
