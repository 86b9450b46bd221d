"""Plots of the loyalty-programme report: uptake, overlap, balance, survival, event study."""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.report.loyalty import covariate_label
from analysis.stats.event_study import EventStudy
from analysis.stats.weighted_survival import SurvivalContrast

__all__ = ["plot_event_study", "plot_love", "plot_overlap", "plot_survival", "plot_uptake"]


def plot_uptake(up: pd.DataFrame, ax=None):
    """Plot monthly enrolments (bars) and the member share of active customers (line)."""
    import matplotlib.pyplot as plt

    ax = ax or plt.subplots(figsize=(8, 3.5))[1]
    ax.bar(up["month"], up["enrolments"], width=20, color="#9ecae1", label="enrolments")
    ax.set_ylabel("enrolments per month")
    ax2 = ax.twinx()
    ax2.plot(up["month"], 100 * up["member_share"], color="#08519c", label="member share")
    ax2.set_ylabel("members, % of active customers")
    ax.set_title("Programme uptake")
    ax.figure.autofmt_xdate()
    return ax


def plot_overlap(
    frame: pd.DataFrame,
    propensity: pd.Series,
    ax=None,
    *,
    trim=None,
    log: bool = False,
    labels: tuple[str, str] = ("members", "non-members"),
    xlabel: str = "estimated probability of being a member at the landmark",
):
    """Plot the propensity-score distributions of the treated and the controls.

    ``trim`` marks the trimming bounds (dashed); ``log`` puts the score on a log
    axis (rare treatments such as monthly enrolment, where most scores are near 0).
    Rows without a score (e.g. trimmed away) are left out.
    """
    import matplotlib.pyplot as plt

    ax = ax or plt.subplots(figsize=(7, 3.5))[1]
    p = propensity.to_numpy(dtype=float)
    ok = np.isfinite(p)
    hi = float(p[ok].max()) if ok.any() else 1.0
    if log and ok.any():
        lo = max(float(p[ok & (p > 0)].min()), 1e-6)
        bins = np.geomspace(lo, min(1.0, 1.05 * hi), 41)
        ax.set_xscale("log")
    else:
        bins = np.linspace(0, min(1.0, 1.05 * hi), 41)  # zoom on the observed range
    for val, label, color in ((1, labels[0], "#d95f02"), (0, labels[1], "#1b9e77")):
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
    ax.set_ylabel("density")
    ax.legend()
    return ax


def plot_love(bal: pd.DataFrame, ax=None):
    """Love plot: |SMD| per covariate before and after weighting, with the 0.1 line."""
    import matplotlib.pyplot as plt

    b = bal.assign(before=bal["smd"].abs(), after=bal["smd_weighted"].abs()).sort_values("before")
    ax = ax or plt.subplots(figsize=(6, 0.3 * len(b) + 1.2))[1]
    y = np.arange(len(b))
    ax.scatter(b["before"], y, marker="o", color="#d95f02", label="before weighting")
    ax.scatter(b["after"], y, marker="s", color="#1b9e77", label="after weighting")
    ax.axvline(0.1, color="grey", ls="--", lw=1)
    ax.set_yticks(y, [covariate_label(i) for i in b.index])
    ax.set_xlabel("absolute standardised mean difference")
    ax.legend(loc="lower right")
    return ax


def plot_survival(sv: SurvivalContrast, ax=None):
    """Plot IP-weighted survival curves of members and non-members after the landmark."""
    import matplotlib.pyplot as plt

    ax = ax or plt.subplots(figsize=(7, 3.5))[1]
    for g, color in (("member", "#d95f02"), ("non-member", "#1b9e77")):
        c = sv.curves[sv.curves["group"] == g]
        ax.step(c["time_months"], c["survival"], where="post", color=color, label=g)
        ax.fill_between(
            c["time_months"], c["ci_lower"], c["ci_upper"], step="post", alpha=0.2, color=color
        )
    ax.set_xlabel("months after the landmark")
    ax.set_ylabel("share still active (weighted)")
    ax.legend()
    return ax


def plot_event_study(es: EventStudy, ax=None, *, currency: str = "EUR"):
    """Plot event-study coefficients (imputation and TWFE) with 95% intervals."""
    import matplotlib.pyplot as plt

    ax = ax or plt.subplots(figsize=(8, 3.5))[1]
    for (name, d), off, color in zip(
        es.coefficients.groupby("estimator"), (-0.1, 0.1), ("#08519c", "#bdbdbd"), strict=False
    ):
        ax.errorbar(
            d["rel"] + off,
            d["estimate"],
            yerr=[d["estimate"] - d["ci_lower"], d["ci_upper"] - d["estimate"]],
            fmt="o",
            color=color,
            label="imputation (robust)" if name == "imputation" else "two-way FE",
            capsize=2,
        )
    ax.axhline(0, color="black", lw=0.8)
    ax.axvline(-0.5, color="grey", ls=":", lw=1)
    ax.set_xlabel("months relative to the enrolment month")
    ax.set_ylabel(f"spend per month vs untreated ({currency})")
    ax.legend()
    return ax
