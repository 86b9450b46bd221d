"""Customers of the sample world: static attributes and signup months (left-truncated)."""

from __future__ import annotations

import functools
import math

import numpy as np
import pandas as pd

from analysis.data.synth.world import (
    ACQ_CHANNELS,
    PARAMS,
    REGIONS,
    _cum_baseline,
    _months_add,
    _rng,
)

# ---------------------------------------------------------------------------
# Customers (static attributes)
# ---------------------------------------------------------------------------


@functools.cache
def _tier_cutoffs() -> tuple[float, float]:
    """Return the value-score cut-offs (low/medium, medium/high) of a fixed reference population."""
    pp = PARAMS["purchases"]
    acq = PARAMS["acquisition"]
    rng = _rng(20240601, 1)
    n = 400_000
    lam = rng.gamma(pp["rate_shape_r"], 1 / pp["rate_rate_alpha_per_month"], n)
    nu = rng.gamma(pp["spend_shape_q"], 1 / pp["spend_rate_gamma"], n)
    score = (
        np.log(lam)
        + np.log(pp["spend_shape_p"] / nu)
        + rng.normal(0, acq["value_tier_noise_sd"], n)
    )
    q = acq["value_tier_quantiles"]
    return float(np.quantile(score, q["low"])), float(np.quantile(score, q["high"]))


def _draw_static(rng: np.random.Generator, n: int, cut: tuple[float, float]) -> dict:
    pp = PARAMS["purchases"]
    acq = PARAMS["acquisition"]
    ex = PARAMS["experience"]
    seg = (rng.random(n) < acq["segment_probs"]["business"]).astype(np.int8)  # 1 = business
    lam = rng.gamma(pp["rate_shape_r"], 1 / pp["rate_rate_alpha_per_month"], n)
    nu = rng.gamma(pp["spend_shape_q"], 1 / pp["spend_rate_gamma"], n)
    score = (
        np.log(lam)
        + np.log(pp["spend_shape_p"] / nu)
        + rng.normal(0, acq["value_tier_noise_sd"], n)
    )
    tier = np.where(score >= cut[1], 0, np.where(score < cut[0], 2, 1)).astype(np.int8)
    region = rng.choice(len(REGIONS), n, p=list(acq["region_probs"].values())).astype(np.int8)
    chan = rng.choice(len(ACQ_CHANNELS), n, p=list(acq["channel_probs"].values())).astype(np.int8)
    sat = rng.normal(0, 0.8, n)
    shp = ex["ticket_propensity_shape"]
    tprop = rng.gamma(shp, 1 / shp, n)
    return {
        "segment": seg,
        "tier": tier,
        "lam": lam,
        "nu": nu,
        "region": region,
        "channel": chan,
        "sat": sat,
        "tprop": tprop,
    }


def _static_lp(static: dict) -> np.ndarray:
    hr = PARAMS["churn"]["hazard_ratios"]
    lp = np.where(static["segment"] == 1, math.log(hr["segment[business]"]), 0.0)
    lp = lp + np.where(static["tier"] == 0, math.log(hr["value_tier[high]"]), 0.0)
    lp = lp + np.where(static["tier"] == 2, math.log(hr["value_tier[low]"]), 0.0)
    return lp


def _intake_weights(months: np.ndarray, start: pd.Timestamp) -> np.ndarray:
    acq = PARAMS["acquisition"]
    _, mo = _months_add(start, months)
    w = np.exp(acq["trend_per_year"] * months / 12.0)
    w = w * (1 + acq["seasonality_amplitude"] * np.cos(2 * np.pi * (np.asarray(mo) - 1) / 12))
    return w / w.sum()


def _draw_population(
    seed: int,
    n: int,
    start: pd.Timestamp,
    months: int,
    *,
    key: tuple[int, ...] = (),
    n_pre: int | None = None,
) -> dict:
    """Draw static attributes and signup months for ``n`` customers (left-truncated).

    ``key`` prefixes every random stream (empty for the in-memory world; the streaming
    generator passes one key per block of customers) and ``n_pre`` overrides the number
    of customers who signed up before the window (default: the planted share of ``n``).
    Customers come back sorted by signup (within this call).
    """
    acq = PARAMS["acquisition"]
    cut = _tier_cutoffs()
    if n_pre is None:
        n_pre = int(round(acq["pre_window_share"] * n))
    n_new = n - n_pre
    rng = _rng(seed, *key, 1)
    # in-window signups
    mw = np.arange(months)
    s_new = rng.choice(mw, n_new, p=_intake_weights(mw, start)).astype(np.int32)
    f_new = rng.random(n_new)
    st_new = _draw_static(rng, n_new, cut)
    # pre-window signups: rejection sampling on survival to the window start
    K = acq["pre_window_months"]
    mp = np.arange(-K, 0)
    wp = _intake_weights(mp, start)
    parts: list[dict] = []
    got = 0
    rnd = 0
    while got < n_pre:
        rnd += 1
        rr = _rng(seed, *key, 2, rnd)
        m_c = max(4 * (n_pre - got), 1000)
        s_c = rr.choice(mp, m_c, p=wp).astype(np.int32)
        f_c = rr.random(m_c)
        st_c = _draw_static(rr, m_c, cut)
        H = _cum_baseline((-s_c).astype(np.int64), 1 - f_c) * np.exp(_static_lp(st_c))
        keep = rr.random(m_c) < np.exp(-H)
        sel = np.flatnonzero(keep)[: n_pre - got]
        d = {k: v[sel] for k, v in st_c.items()}
        d["s"] = s_c[sel]
        d["f"] = f_c[sel]
        parts.append(d)
        got += sel.size
    pre = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]} if parts else None
    allp = {k: np.concatenate([pre[k], st_new[k]]) if pre else st_new[k] for k in st_new}
    allp["s"] = np.concatenate([pre["s"], s_new]) if pre else s_new
    allp["f"] = np.concatenate([pre["f"], f_new]) if pre else f_new
    # ids in signup order (ties broken at random, reproducibly)
    tie = _rng(seed, *key, 3).random(n)
    order = np.lexsort((tie, allp["f"], allp["s"]))
    return {k: v[order] for k, v in allp.items()}
