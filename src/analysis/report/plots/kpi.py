"""KPI dashboard plots: one small trend panel per KPI, drawn by what the data can show.

Final values are a solid line. A partial period (cut by the as-of date) and a
provisional count are hollow points on a dashed line. A period whose churn is
not yet observable is a grey hatched band, with no point (never a 0). Targets
from ``kpi.targets`` are a dashed horizontal line.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.report.kpi import KINDS, metric_label
from analysis.report.plots import OKABE_ITO, PARTIAL
from analysis.studies import kpi as study

_COLOR = OKABE_ITO[0]  # blue: the pages' accent
_TARGET = OKABE_ITO[3]  # vermillion
_HIDDEN = PARTIAL


def _unit(metric: str, currency: str) -> str:
    return {
        "churn_rate": "% of customers",
        "retention_rate": "% of customers",
        "member_share": "% of active customers",
        "fcr_rate": "% of tickets",
        "sla_compliance": "% of tickets",
        "revenue": currency,
        "revenue_per_customer": f"{currency} per customer",
        "nps": "NPS (−100 to 100)",
        "csat_mean": "score (1–5)",
    }.get(metric, "customers")


def _spans(periods: pd.Series, ends: pd.Series, mask: np.ndarray) -> list[tuple]:
    """Contiguous [start, end) runs of periods where ``mask`` holds."""
    out, start = [], None
    for i, on in enumerate(mask):
        if on and start is None:
            start = i
        if start is not None and (not on or i == len(mask) - 1):
            last = i if on else i - 1
            out.append((periods.iloc[start], ends.iloc[last]))
            start = None
    return out


def draw_trend(
    ax, kpis: pd.DataFrame, status: pd.DataFrame, metric: str, *, currency: str, target=None
):
    """Draw one KPI's trend on ``ax`` (see the module docstring for the styles)."""
    from matplotlib.ticker import FuncFormatter

    pct = KINDS[metric][0] == "pct"
    scale = 100.0 if pct else 1.0
    x = pd.to_datetime(kpis["period"]).reset_index(drop=True)
    ends = pd.to_datetime(kpis["period_end"]).reset_index(drop=True)
    y = kpis[metric].astype(float).reset_index(drop=True) * scale
    st = status[metric].reset_index(drop=True)
    ok = (st == study.OK).to_numpy()
    soft = st.isin([study.PARTIAL, study.PROVISIONAL]).to_numpy()
    hidden = (st == study.NOT_OBSERVABLE).to_numpy()
    marker = "o" if len(x) <= 40 else None
    ax.plot(x.where(ok), y.where(ok), color=_COLOR, marker=marker, ms=3.5, lw=1.8, label="final")
    if soft.any():
        # a dashed line from the last final point on, hollow markers for the soft points
        idx = np.flatnonzero(soft)
        prev_ok = [i for i in range(idx[0]) if ok[i]]
        join = ([prev_ok[-1]] if prev_ok else []) + list(idx)
        ax.plot(x.iloc[join], y.iloc[join], color=_COLOR, ls="--", lw=1.2, alpha=0.8)
        ax.scatter(
            x[soft],
            y[soft],
            facecolors="white",
            edgecolors=_COLOR,
            zorder=3,
            s=22,
            label="partial or provisional",
        )
    for a, b in _spans(x, ends, hidden):
        ax.axvspan(a, b, facecolor="#eeeeee", edgecolor=_HIDDEN, hatch="///", lw=0, zorder=0)
    if hidden.any():
        ax.fill_between(
            [], [], facecolor="#eeeeee", edgecolor=_HIDDEN, hatch="///", label="not yet observable"
        )
    if target is not None and np.isfinite(target):
        ax.axhline(
            target * scale,
            color=_TARGET,
            ls="--",
            lw=1.2,
            label=f"target {target * scale:g}{'%' if pct else ''}",
        )
    if pct:
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}%"))
    elif KINDS[metric][0] in ("count", "money"):
        lo, hi = ax.get_ylim()
        digits = 0 if hi - lo >= 10 else (1 if hi - lo >= 1 else 2)
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.{digits}f}"))
    ax.set_title(metric_label(metric))
    ax.set_ylabel(_unit(metric, currency))
    ax.set_xlabel("")
    ax.tick_params(axis="x", labelrotation=30)
    if soft.any() or hidden.any() or target is not None:
        ax.legend(loc="best", fontsize=9, frameon=True, framealpha=0.85)


def plot_trends(
    kpis: pd.DataFrame,
    *,
    metrics: list[str],
    granularity: str,
    currency: str,
    ncols: int = 2,
    targets: dict | None = None,
    status: pd.DataFrame | None = None,
    periods: int | None = None,
):
    """Draw one small trend panel per KPI and return the figure (None when no KPI has data).

    Parameters
    ----------
    kpis : DataFrame
        :func:`analysis.studies.kpi.kpi_table`.
    metrics : list of str
        KPIs to draw; those with no value and nothing hidden are left out.
    granularity : str
        Period length (the x axis is the period start).
    currency : str
        ISO code for money axes.
    targets : dict, optional
        ``kpi.targets`` (aliases allowed); drawn as dashed lines.
    status : DataFrame, optional
        :func:`analysis.studies.kpi.kpi_status`; computed when not given.
    periods : int, optional
        Draw only the last ``periods`` periods (``kpi.periods_shown``); default all.
    """
    import matplotlib.pyplot as plt

    k = kpis.reset_index(drop=True)
    status = study.kpi_status(k) if status is None else status.reset_index(drop=True)
    if periods:
        k, status = (
            k.tail(periods).reset_index(drop=True),
            status.tail(periods).reset_index(drop=True),
        )
    known, _ = study.resolve_targets(targets)
    keep = [
        m
        for m in metrics
        if m in k and (k[m].notna().any() or (status[m] == study.NOT_OBSERVABLE).any())
    ]
    if not keep:
        return None
    ncols = min(ncols, len(keep))
    nrows = int(np.ceil(len(keep) / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(11, 3.2 * nrows + 0.3), squeeze=False)
    for ax, m in zip(axes.flat, keep, strict=False):
        draw_trend(ax, k, status, m, currency=currency, target=known.get(m))
    for ax in axes.flat[len(keep) :]:
        ax.set_visible(False)
    fig.tight_layout()
    return fig
