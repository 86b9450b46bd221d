"""Generate the sample world: four contract tables with planted, known effects.

The world is simulated month by month, vectorised over customers (numpy arrays,
chunks of customers), never with Python loops over customers or rows. Every
planted effect is recorded in ``truth`` (written as ``truth.json``) with a
one-line ``definition``. ``docs/sample-world.md`` describes the world in prose.

Time units: the simulation step is one calendar month; tenure is counted in
whole calendar months since the signup month (tenure month 0 = signup month).
Money is in the data's currency (EUR in the default params).
"""

from __future__ import annotations

import argparse
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.errors import DataError, ParamsError, Problem

__all__ = ["SampleWorld", "generate", "write", "main", "PARAMS"]

# ---------------------------------------------------------------------------
# Planted parameters. Everything here is copied into truth.json.
# ---------------------------------------------------------------------------

SEGMENTS = ("consumer", "business")
TIERS = ("high", "medium", "low")
REGIONS = ("north", "south", "east", "west", "central")
ACQ_CHANNELS = ("web", "store", "partner", "referral", "paid_social")
TX_CHANNELS = ("online", "store", "phone")
REASONS = ("service", "price", "competitor", "moved", "other")
TOUCHPOINTS = ("sales", "onboarding", "service", "billing", "retention")
PROGRAMME_TIERS = ("bronze", "silver", "gold")

PARAMS: dict = {
    "acquisition": {
        "pre_window_share": 0.35,  # share of customers who signed up before the window
        "pre_window_months": 72,  # earliest pre-window signup (months before start)
        "trend_per_year": 0.15,  # log growth of monthly intake per year
        "seasonality_amplitude": 0.25,  # intake peaks in January
        "segment_probs": {"consumer": 0.7, "business": 0.3},
        "region_probs": {"north": 0.22, "south": 0.24, "east": 0.18, "west": 0.2, "central": 0.16},
        "channel_probs": {
            "web": 0.4,
            "store": 0.25,
            "partner": 0.12,
            "referral": 0.13,
            "paid_social": 0.1,
        },
        "value_tier_rule": (
            "score = log(purchase_rate) + log(mean_spend) + N(0, 0.4); "
            "low = bottom 30%, high = top 20% of a reference population"
        ),
        "value_tier_quantiles": {"low": 0.3, "high": 0.8},
        "value_tier_noise_sd": 0.4,
    },
    "churn": {
        # reason-specific baseline monthly hazards (reference: consumer, medium tier,
        # non-member, no experience events), tenure t in months
        "baseline_by_reason": {
            "service": "0.028*exp(-t/5) + 0.003",
            "price": "0.005 + 0.005*(1-exp(-t/12))",
            "competitor": "0.004 + 0.004*(1-exp(-t/12))",
            "moved": "0.003",
            "other": "0.004",
        },
        "hazard_ratios": {
            "segment[business]": 0.75,
            "value_tier[high]": 0.70,
            "value_tier[low]": 1.40,
        },
        "churn_reason_missing_share": 0.03,
    },
    "purchases": {
        # lambda_i ~ Gamma(shape r, rate alpha) purchases per month
        "rate_shape_r": 1.1,
        "rate_rate_alpha_per_month": 0.8,
        # amount ~ Gamma(shape p, rate nu_i), nu_i ~ Gamma(shape q, rate gamma)
        "spend_shape_p": 3.0,
        "spend_shape_q": 5.0,
        "spend_rate_gamma": 53.0,
        "seasonality_amplitude": 0.15,  # purchases peak in December
        "margin_rate": {"consumer": 0.32, "business": 0.22},
        "margin_rate_noise_sd": 0.03,
        "channel_probs": {"online": 0.55, "store": 0.35, "phone": 0.10},
        "channel_missing_share": 0.01,
    },
    "loyalty": {
        "launch": "the programme starts at the window start (no enrolments before it)",
        "enrol_logit_intercept": -4.7,
        "enrol_logit_log1p_spend_3m": 0.6,  # per log(1 + spend in last 3 months) unit, tier-centred
        "enrol_spend_centre_by_tier": {"high": 5.85, "medium": 4.6, "low": 2.67},
        "enrol_logit_log1p_tenure": 0.35,
        "enrol_logit_nps": {"none": 0.0, "detractor": -0.8, "passive": 0.0, "promoter": 0.8},
        "enrol_logit_per_ticket_3m": -0.2,
        "leave_monthly_prob": 0.012,
        "churn_hazard_ratio": 0.80,
        "spend_lift_by_tier": {"high": 1.12, "medium": 1.10, "low": 1.08},
        "post_leaving_hazard_ratio": 1.30,
        "programme_tier_rule": "at enrolment: gold if spend_3m >= 400, silver if >= 150, else bronze",
        "points_per_currency_unit": 1.0,
    },
    "experience": {
        "ticket_monthly_prob": "0.1 * propensity_i * (1 + 1.5*exp(-t/2)), propensity ~ Gamma(2, 2)",
        "ticket_base_prob": 0.1,
        "ticket_propensity_shape": 2.0,
        "touchpoint_probs_early": {  # tenure < 3 months
            "sales": 0.15,
            "onboarding": 0.5,
            "service": 0.2,
            "billing": 0.15,
            "retention": 0.0,
        },
        "touchpoint_probs_later": {
            "sales": 0.1,
            "onboarding": 0.02,
            "service": 0.5,
            "billing": 0.28,
            "retention": 0.1,
        },
        "fcr_prob": {
            "sales": 0.8,
            "onboarding": 0.72,
            "service": 0.7,
            "billing": 0.62,
            "retention": 0.75,
        },
        "response_hours_median": {
            "sales": 6,
            "onboarding": 8,
            "service": 9,
            "billing": 10,
            "retention": 5,
        },
        "response_hours_log_sd": 0.9,
        "sla_hours": 24,
        "compensation_prob_given_failure": 0.3,
        "survey_invite_prob_after_ticket": 0.7,
        "survey_invite_prob_relationship": 0.16,
        "survey_response_prob": 0.35,
        "item_missing_prob": {"nps": 0.06, "csat": 0.1, "ces": 0.2},
        "hazard_lags_months": 3,
        "detractor_hazard_ratio": 1.60,
        "passive_hazard_ratio": 1.20,
        "sla_breach_hazard_ratio": 1.30,
        "unresolved_ticket_hazard_ratio": 1.40,
        # log-scale deviations by touchpoint for unresolved tickets (centred on the planned mix)
        "touchpoint_log_delta": {
            "sales": -0.2,
            "onboarding": 0.1,
            "service": 0.0,
            "billing": 0.15,
            "retention": 0.25,
        },
        "compensation_hazard_ratio": 0.70,
        "csat_spend_slope": 0.08,  # next-month purchase rate x (1 + slope * (csat - 3))
    },
    "noise": {"region_missing_share": 0.015},
}

CHUNK = 200_000
PRE_MONTHS = 3  # pre-window months simulated (purchases only) to seed spend history


@dataclass
class SampleWorld:
    """A generated world: the four contract tables and the truth behind them.

    Attributes
    ----------
    tables : dict of str to pandas.DataFrame
        ``customers``, ``transactions``, ``loyalty``, ``experience``.
    truth : dict
        Parameters and true effects (JSON-serialisable), see ``docs/sample-world.md``.
    sequential_effects : pandas.DataFrame or None
        Individual effects of the sequential-trial emulation, one row per simulated
        person-trial: ``customer_id``, ``trial_month`` (0 = window start month),
        ``treated`` (enrolled that month), ``weight`` (1, or 1 / sampling fraction
        for sampled controls of large worlds) and ``spend_effect``,
        ``retained_effect`` (Y(1) - Y(0), common random numbers). Lets a check
        compute the true average effect over any subset of person-trials, such as
        the rows kept after propensity trimming (:func:`sequential_truth`). Not
        written to disk.
    """

    tables: dict[str, pd.DataFrame]
    truth: dict = field(default_factory=dict)
    sequential_effects: pd.DataFrame | None = None


# ---------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------


def _rng(seed: int, *stream: int) -> np.random.Generator:
    return np.random.default_rng([int(seed), *[int(s) for s in stream]])


def _expit(x):
    return 1.0 / (1.0 + np.exp(-x))


def _baseline_by_reason(t: np.ndarray) -> np.ndarray:
    """Return baseline monthly hazards, shape (len(t), 5), reasons in REASONS order."""
    t = np.asarray(t, dtype=np.float64)
    out = np.empty((t.size, len(REASONS)))
    out[:, 0] = 0.028 * np.exp(-t / 5) + 0.003
    out[:, 1] = 0.005 + 0.005 * (1 - np.exp(-t / 12))
    out[:, 2] = 0.004 + 0.004 * (1 - np.exp(-t / 12))
    out[:, 3] = 0.003
    out[:, 4] = 0.004
    return out


def _baseline_total(t):
    return _baseline_by_reason(t).sum(axis=1)


def _cum_baseline(tenure_months: np.ndarray, first_exposure: np.ndarray) -> np.ndarray:
    """Cumulative baseline hazard from signup to the start of tenure month ``tenure_months``."""
    tmax = int(tenure_months.max()) if tenure_months.size else 0
    h = _baseline_total(np.arange(tmax + 1))
    cum = np.concatenate([[0.0], np.cumsum(h)])  # cum[k] = sum_{t<k} h(t)
    # month 0 only partly exposed
    return cum[tenure_months] - h[0] * (1 - first_exposure) * (tenure_months > 0)


def _pois_icdf(u: np.ndarray, mu: np.ndarray) -> np.ndarray:
    """Return Poisson(mu) quantiles at ``u`` (inverse CDF; common random numbers)."""
    k = np.zeros(u.shape, dtype=np.int32)
    p = np.exp(-mu)
    F = p.copy()
    idx = np.flatnonzero(u > F)
    kk = 0
    while idx.size and kk < 200:
        kk += 1
        k[idx] += 1
        p[idx] *= mu[idx] / k[idx]
        F[idx] += p[idx]
        idx = idx[u[idx] > F[idx]]
    return k


def _gamma_wh(z: np.ndarray, shape: np.ndarray) -> np.ndarray:
    """Return Gamma(shape, 1) / shape from a standard normal via Wilson-Hilferty."""
    a = np.maximum(shape, 1e-9)
    c = 1.0 / (9.0 * a)
    return np.maximum(1.0 - c + z * np.sqrt(c), 0.05) ** 3


def _months_add(start: pd.Timestamp, m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return (year, month) of month offsets ``m`` from ``start``."""
    y = start.year + (start.month - 1 + m) // 12
    mo = (start.month - 1 + m) % 12 + 1
    return y, mo


def _month_starts(start: pd.Timestamp, lo: int, hi: int):
    """Return datetime64[D] month starts and days-in-month for months lo..hi-1."""
    ms = np.arange(lo, hi)
    y, mo = _months_add(start, ms)
    first = (
        ((np.asarray(y) - 1970) * 12 + np.asarray(mo) - 1)
        .astype("datetime64[M]")
        .astype("datetime64[D]")
    )
    nxt = (first.astype("datetime64[M]") + 1).astype("datetime64[D]")
    return first, (nxt - first).astype(np.int64)


# ---------------------------------------------------------------------------
# Customers (static attributes)
# ---------------------------------------------------------------------------


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


def _draw_population(seed: int, n: int, start: pd.Timestamp, months: int) -> dict:
    """Draw static attributes and signup months for ``n`` customers (left-truncated)."""
    acq = PARAMS["acquisition"]
    cut = _tier_cutoffs()
    n_pre = int(round(acq["pre_window_share"] * n))
    n_new = n - n_pre
    rng = _rng(seed, 1)
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
        rr = _rng(seed, 2, rnd)
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
    tie = _rng(seed, 3).random(n)
    order = np.lexsort((tie, allp["f"], allp["s"]))
    return {k: v[order] for k, v in allp.items()}


# ---------------------------------------------------------------------------
# Monthly simulation
# ---------------------------------------------------------------------------

_DRAWS = (
    "churn",
    "churn_day",
    "reason",
    "pois",
    "amt",  # normal
    "enrol",
    "enrol_day",
    "leave",
    "leave_day",
    "ticket",
    "tp",
    "fcr",
    "resp",  # normal
    "contacts",
    "comp",
    "ticket_day",
    "inv_rel",
    "inv_tk",
    "respond",
    "survey_day",
    "stp",
    "nps",  # normal
    "csat",  # normal
    "ces",  # normal
    "miss_nps",
    "miss_csat",
    "miss_ces",
)
_NORMAL = {"amt", "resp", "nps", "csat", "ces"}


def _draws(seed: int, chunk: int, m: int, n: int) -> dict:
    """Return the random numbers of one chunk-month; identical for every regime (CRN)."""
    rng = _rng(seed, 10, chunk, m + 10_000)
    out = {}
    for name in _DRAWS:
        out[name] = rng.standard_normal(n) if name in _NORMAL else rng.random(n)
    return out


def _new_state(n: int) -> dict:
    return {
        "alive": np.ones(n, bool),
        "member": np.zeros(n, bool),
        "ever": np.zeros(n, bool),
        "left": np.zeros(n, bool),
        "spend_h": np.zeros((n, 3)),
        "npur_h": np.zeros((n, 3), np.int32),
        "tlp_h": np.zeros((n, 3)),  # log-hazard contributions of tickets, lags 1..3
        "tn_h": np.zeros((n, 3), np.int8),  # ticket counts, lags 1..3
        "tsat_h": np.zeros((n, 2)),  # survey-score shifts from tickets, lags 1..2
        "nps_cat": np.zeros(n, np.int8),  # 0 none, 1 detractor, 2 passive, 3 promoter
        "csat_prev": np.full(n, np.nan),
    }


def _copy_state(state: dict, rows: np.ndarray) -> dict:
    return {k: v[rows].copy() for k, v in state.items()}


class _Consts:
    """Derived per-run constants for the monthly step."""

    def __init__(self, start: pd.Timestamp, months: int):
        pp = PARAMS["purchases"]
        ex = PARAMS["experience"]
        lo = PARAMS["loyalty"]
        self.months = months
        mm = np.arange(-PRE_MONTHS, months)
        _, mo = _months_add(start, mm)
        self.season = 1 + pp["seasonality_amplitude"] * np.cos(
            2 * np.pi * (np.asarray(mo) - 12) / 12
        )
        self.tp_early = np.cumsum(list(ex["touchpoint_probs_early"].values()))
        self.tp_later = np.cumsum(list(ex["touchpoint_probs_later"].values()))
        self.fcr = np.array(list(ex["fcr_prob"].values()))
        self.resp_med = np.log(np.array(list(ex["response_hours_median"].values()), float))
        d = np.array(list(ex["touchpoint_log_delta"].values()))
        # centre on the planned mix of unresolved tickets (mostly later-tenure mix)
        mix = (
            0.15 * np.array(list(ex["touchpoint_probs_early"].values()))
            + 0.85 * np.array(list(ex["touchpoint_probs_later"].values()))
        ) * (1 - self.fcr)
        mix = mix / mix.sum()
        self.tp_delta = d - float((mix * d).sum())
        self.tp_mix = mix
        self.lhr = {
            "detr": math.log(ex["detractor_hazard_ratio"]),
            "pass": math.log(ex["passive_hazard_ratio"]),
            "sla": math.log(ex["sla_breach_hazard_ratio"]),
            "unres": math.log(ex["unresolved_ticket_hazard_ratio"]),
            "comp": math.log(ex["compensation_hazard_ratio"]),
            "member": math.log(lo["churn_hazard_ratio"]),
            "left": math.log(lo["post_leaving_hazard_ratio"]),
        }
        self.lift = np.array(list(lo["spend_lift_by_tier"].values()))
        self.enrol_centre = np.array(list(lo["enrol_spend_centre_by_tier"].values()))
        self.enrol_nps = np.array(list(lo["enrol_logit_nps"].values()))


def _step(m, rows, state, dr, st, C: _Consts, *, record: bool, no_enrol=None) -> dict:
    """Advance ``state`` (rows of one chunk) through calendar month ``m``, in place.

    ``rows`` index the chunk's static arrays ``st`` and draws ``dr``; ``state`` arrays are
    aligned with ``rows``. Returns per-row outcomes of the month.
    """
    ex = PARAMS["experience"]
    lo = PARAMS["loyalty"]
    pp = PARAMS["purchases"]
    s = st["s"][rows]
    t = m - s
    started = t >= 0
    active = state["alive"] & started
    f_start = np.where(t == 0, st["f"][rows], 0.0)
    n = rows.size
    out: dict = {}
    season = C.season[m + PRE_MONTHS]
    mean_amt = pp["spend_shape_p"] / st["nu"][rows]

    churn = np.zeros(n, bool)
    f_end = np.ones(n)
    if m >= 0:
        tt = np.maximum(t, 0)
        base = _baseline_by_reason(tt)
        lp = st["lp"][rows].copy()
        cat = state["nps_cat"]
        lp += np.where(cat == 1, C.lhr["detr"], 0.0) + np.where(cat == 2, C.lhr["pass"], 0.0)
        lp += state["tlp_h"].sum(axis=1)
        lp += np.where(state["member"], C.lhr["member"], 0.0)
        lp += np.where(state["left"] & ~state["member"], C.lhr["left"], 0.0)
        expo = 1.0 - f_start
        H = base.sum(axis=1) * np.exp(lp) * expo
        churn = active & (dr["churn"][rows] < -np.expm1(-H))
        f_end = np.where(churn, f_start + expo * dr["churn_day"][rows], 1.0)
        if record:
            cp = np.cumsum(base, axis=1)
            cp /= cp[:, -1:]
            out["reason"] = (dr["reason"][rows][:, None] > cp).sum(axis=1).astype(np.int8)
    alive_frac = np.where(active, f_end - f_start, 0.0)

    # purchases (member lift and last month's CSAT act on the purchase rate)
    mult = np.where(state["member"], C.lift[st["tier"][rows]], 1.0)
    cs = state["csat_prev"]
    mult = mult * np.where(np.isnan(cs), 1.0, 1 + ex["csat_spend_slope"] * (np.nan_to_num(cs) - 3))
    mu_base = st["lam"][rows] * season * alive_frac
    mu = mu_base * mult
    k = _pois_icdf(dr["pois"][rows], mu)
    total = np.where(k > 0, k * mean_amt * _gamma_wh(dr["amt"][rows], k * pp["spend_shape_p"]), 0.0)
    out["k"] = k
    out["total"] = total
    out["exp_spend"] = mu * mean_amt
    out["f_start"] = f_start
    out["f_end"] = f_end
    out["churn"] = churn
    out["active"] = active

    ticket = np.zeros(n, bool)
    survey = np.zeros(n, bool)
    enrol = np.zeros(n, bool)
    leave = np.zeros(n, bool)
    tlp = np.zeros(n)
    tsat = np.zeros(n)
    nps_cat_new = state["nps_cat"].copy()
    csat_now = np.full(n, np.nan)
    if m >= 0:
        tt = np.maximum(t, 0)
        # loyalty: leaving (members), then enrolment (never-members alive at month end)
        leave = state["member"] & active & (dr["leave"][rows] < lo["leave_monthly_prob"]) & ~churn
        spend3 = state["spend_h"].sum(axis=1)
        logit = (
            lo["enrol_logit_intercept"]
            + lo["enrol_logit_log1p_spend_3m"]
            * (np.log1p(spend3) - C.enrol_centre[st["tier"][rows]])
            + lo["enrol_logit_log1p_tenure"] * np.log1p(tt)
            + C.enrol_nps[state["nps_cat"]]
            + lo["enrol_logit_per_ticket_3m"] * state["tn_h"].sum(axis=1)
        )
        can = active & ~churn & ~state["ever"]
        if no_enrol is not None:
            can &= ~no_enrol
        enrol = can & (dr["enrol"][rows] < _expit(logit))

        # tickets: at most one per customer-month
        p_t = ex["ticket_base_prob"] * st["tprop"][rows] * (1 + 1.5 * np.exp(-tt / 2))
        ticket = active & (dr["ticket"][rows] < np.minimum(p_t, 0.9) * alive_frac)
        cum = np.where((tt < 3)[:, None], C.tp_early[None, :], C.tp_later[None, :])
        tp = (dr["tp"][rows][:, None] > cum).sum(axis=1).clip(0, 4)
        fcr = dr["fcr"][rows] < C.fcr[tp]
        # recorded to 0.1 hour; the SLA is judged on the recorded value
        resp = np.round(np.exp(C.resp_med[tp] + ex["response_hours_log_sd"] * dr["resp"][rows]), 1)
        sla = resp <= ex["sla_hours"]
        fail = ~fcr | ~sla
        comp = fail & (dr["comp"][rows] < ex["compensation_prob_given_failure"])
        tlp = np.where(
            ticket,
            np.where(~fcr, C.lhr["unres"] + C.tp_delta[tp], 0.0)
            + np.where(~sla, C.lhr["sla"], 0.0)
            + np.where(comp, C.lhr["comp"], 0.0),
            0.0,
        )
        tsat = np.where(ticket, -0.9 * ~fcr - 0.6 * ~sla + 0.4 * comp, 0.0)
        # surveys: invitation after a ticket or relationship survey, then response
        inv = (ticket & (dr["inv_tk"][rows] < ex["survey_invite_prob_after_ticket"])) | (
            active & (dr["inv_rel"][rows] < ex["survey_invite_prob_relationship"] * alive_frac)
        )
        survey = inv & (dr["respond"][rows] < ex["survey_response_prob"])
        shift = tsat + 0.5 * state["tsat_h"][:, 0] + 0.25 * state["tsat_h"][:, 1]
        zs = st["sat"][rows] + shift + 0.5 * dr["nps"][rows]
        nps = np.clip(np.rint(8.2 + 1.9 * zs), 0, 10)
        csat = np.clip(np.rint(4.0 + 0.9 * (0.8 * zs + 0.5 * dr["csat"][rows])), 1, 5)
        ces = np.clip(np.rint(5.3 + 1.2 * (0.7 * zs + 0.7 * dr["ces"][rows])), 1, 7)
        miss = PARAMS["experience"]["item_missing_prob"]
        nps_ok = survey & (dr["miss_nps"][rows] >= miss["nps"])
        csat_ok = survey & (dr["miss_csat"][rows] >= miss["csat"])
        ces_ok = survey & (dr["miss_ces"][rows] >= miss["ces"])
        ncat = np.where(nps <= 6, 1, np.where(nps <= 8, 2, 3)).astype(np.int8)
        nps_cat_new = np.where(nps_ok, ncat, state["nps_cat"]).astype(np.int8)
        csat_now = np.where(csat_ok, csat, np.nan)
        if record:
            span = f_end - f_start
            out["tp"] = tp
            out["fcr"] = fcr
            out["resp"] = resp
            out["sla"] = sla
            out["comp"] = comp
            out["contacts"] = np.where(
                fcr, 1, 2 + np.floor(-np.log(dr["contacts"][rows]) / 1.2)
            ).astype(np.int16)
            tf = f_start + span * dr["ticket_day"][rows]
            out["ticket_frac"] = tf
            post = ticket & (dr["inv_tk"][rows] < ex["survey_invite_prob_after_ticket"])
            sf_rel = f_start + span * dr["survey_day"][rows]
            sf_post = tf + (f_end - tf) * 0.3 * dr["survey_day"][rows]
            out["survey_frac"] = np.where(post, sf_post, sf_rel)
            cum2 = np.where((tt < 3)[:, None], C.tp_early[None, :], C.tp_later[None, :])
            stp = (dr["stp"][rows][:, None] > cum2).sum(axis=1).clip(0, 4)
            out["survey_tp"] = np.where(post, tp, stp)
            out["nps"] = np.where(nps_ok, nps, np.nan)
            out["csat"] = csat_now
            out["ces"] = np.where(ces_ok, ces, np.nan)
            out["enrol_frac"] = f_start + (f_end - f_start) * dr["enrol_day"][rows]
            out["leave_frac"] = f_start + (f_end - f_start) * dr["leave_day"][rows]
            out["spend3"] = spend3
            out["inv"] = inv
    out["ticket"] = ticket
    out["survey"] = survey
    out["enrol"] = enrol
    out["leave"] = leave

    # state update for the next month
    state["alive"] = state["alive"] & ~churn
    state["spend_h"] = np.column_stack([total, state["spend_h"][:, :2]])
    state["npur_h"] = np.column_stack([k, state["npur_h"][:, :2]])
    state["tlp_h"] = np.column_stack([tlp, state["tlp_h"][:, :2]])
    state["tn_h"] = np.column_stack([ticket.astype(np.int8), state["tn_h"][:, :2]])
    state["tsat_h"] = np.column_stack([tsat, state["tsat_h"][:, :1]])
    state["nps_cat"] = nps_cat_new
    state["csat_prev"] = csat_now
    state["member"] = (state["member"] & ~leave) | enrol
    state["left"] = state["left"] | leave
    state["ever"] = state["ever"] | enrol
    return out


def _simulate_chunk(
    seed: int, ci: int, st: dict, C: _Consts, months: int, landmarks, seq_sample: float = 1.0
) -> dict:
    """Simulate one chunk of customers; return event records and landmark outcomes."""
    n = st["s"].size
    state = _new_state(n)
    rec: dict[str, list] = {k: [] for k in ("tx", "tk", "sv")}
    churn_m = np.full(n, -1, np.int32)
    churn_f = np.zeros(n)
    reason = np.full(n, -1, np.int8)
    enrol_m = np.full(n, -1, np.int32)
    enrol_f = np.zeros(n)
    leave_m = np.full(n, -1, np.int32)
    leave_f = np.zeros(n)
    ptier = np.full(n, -1, np.int8)
    csat_acc = {"n": 0, "base_next": 0.0}
    n_inv = 0
    lm_state: dict = {}
    lm_out: dict = {}
    seq_state: dict = {}
    seq_out: dict = {"n_eligible": 0, "n_enrol": 0, "rows": []}
    seq_rng = _rng(seed, 11, ci)  # sampling of control person-trials only (no world draws)
    prev_csat = None  # (chunk rows, member flag) of last month's answered CSAT
    for m in range(-PRE_MONTHS, months):
        dr = _draws(seed, ci, m, n)
        # landmark arms start from the observed state at the start of their landmark month
        if m >= 0:
            for L in landmarks:
                _landmark_open(m, L, st, state, months, lm_state)
        # step only customers who have signed up and not churned (gather, step, scatter)
        act = np.flatnonzero(state["alive"] & (st["s"] <= m))
        sub = _copy_state(state, act)
        ever_before = sub["ever"].copy()
        o = _step(m, act, sub, dr, st, C, record=True)
        for k, v in sub.items():
            state[k][act] = v
        for key in list(lm_state):
            _landmark_step(m, key, lm_state, lm_out, dr, st, C)
        for key in list(seq_state):
            _trial_step(m, key, seq_state, seq_out, dr, st, C)
        if m < 0:
            continue
        # sequential trial of month m: branches start from the state at the end of month m
        if LM_LOOKBACK <= m <= months - 1 - SEQ_FOLLOW:
            eligible = o["active"] & ~o["churn"] & ~ever_before & (st["s"][act] < m)
            _trial_open(
                m, act, eligible, o["enrol"], state, seq_state, seq_out, seq_rng, seq_sample
            )
        full_next = np.zeros(n, bool)
        full_next[act] = ~o["churn"]
        if prev_csat is not None:
            # average marginal effect of CSAT on next-month revenue, intensive margin
            r, mem = prev_csat
            ok = full_next[r]
            lift = np.where(mem, C.lift[st["tier"][r]], 1.0)
            base = (
                st["lam"][r]
                * C.season[m + PRE_MONTHS]
                * lift
                * PARAMS["purchases"]["spend_shape_p"]
                / st["nu"][r]
            )
            csat_acc["n"] += int(ok.sum())
            csat_acc["base_next"] += float(base[ok].sum())
        n_inv += int(o["inv"].sum())
        i = np.flatnonzero(o["churn"])
        churn_m[act[i]] = m
        churn_f[act[i]] = o["f_end"][i]
        reason[act[i]] = o["reason"][i]
        i = np.flatnonzero(o["k"] > 0)
        rec["tx"].append(
            (
                act[i],
                np.full(i.size, m, np.int32),
                o["k"][i],
                o["total"][i],
                o["f_start"][i],
                o["f_end"][i],
            )
        )
        i = np.flatnonzero(o["ticket"])
        rec["tk"].append(
            (
                act[i],
                np.full(i.size, m, np.int32),
                o["ticket_frac"][i],
                o["tp"][i],
                o["fcr"][i],
                o["contacts"][i],
                o["sla"][i],
                o["resp"][i],
                o["comp"][i],
            )
        )
        i = np.flatnonzero(o["survey"])
        rec["sv"].append(
            (
                act[i],
                np.full(i.size, m, np.int32),
                o["survey_frac"][i],
                o["survey_tp"][i],
                o["nps"][i],
                o["csat"][i],
                o["ces"][i],
            )
        )
        i = np.flatnonzero(o["enrol"])
        enrol_m[act[i]] = m
        enrol_f[act[i]] = o["enrol_frac"][i]
        sp = o["spend3"][i]
        ptier[act[i]] = np.where(sp >= 400, 2, np.where(sp >= 150, 1, 0))
        i = np.flatnonzero(o["leave"])
        leave_m[act[i]] = m
        leave_f[act[i]] = o["leave_frac"][i]
        r = act[np.flatnonzero(~np.isnan(o["csat"]) & ~o["churn"])]
        prev_csat = (r, state["member"][r].copy())
    # finish landmark arms still open at the end (should not happen: follow-up inside window)
    return {
        "rec": rec,
        "churn_m": churn_m,
        "churn_f": churn_f,
        "reason": reason,
        "enrol_m": enrol_m,
        "enrol_f": enrol_f,
        "leave_m": leave_m,
        "leave_f": leave_f,
        "ptier": ptier,
        "csat_acc": csat_acc,
        "n_inv": n_inv,
        "landmarks": lm_out,
        "sequential": seq_out,
    }


# ---------------------------------------------------------------------------
# Landmark potential outcomes
# ---------------------------------------------------------------------------

LM_FOLLOW = 6
LM_LOOKBACK = 3
ARMS = ("treat", "control", "control_sustained")


def _landmark_open(m, L, st, state, months, lm_state):
    """Open the landmark-L arms for customers whose landmark month is ``m``."""
    s = st["s"]
    pop = (s + L == m) & state["alive"] & (m >= LM_LOOKBACK) & (m + LM_FOLLOW <= months)
    idx = np.flatnonzero(pop)
    if idx.size == 0:
        return
    treated = state["member"][idx].copy()
    base = {
        "idx": idx,
        "treated": treated,
        "spend3": state["spend_h"][idx].sum(axis=1),
        "ever0": state["ever"][idx] & ~state["member"][idx],
        "end": m + LM_FOLLOW - 1,
    }
    for arm in ARMS:
        sub = _copy_state(state, idx)
        no_enrol = None
        if arm == "treat":
            sub["member"][:] = True
            sub["ever"][:] = True
            sub["left"][:] = False
        elif arm in ("control", "control_sustained"):
            was = sub["member"].copy()
            sub["member"][:] = False
            # members removed as if never enrolled (no post-leaving effect, may enrol later)
            sub["ever"][was] = False
            if arm == "control_sustained":
                no_enrol = np.ones(idx.size, bool)
        key = (L, m, arm)
        lm_state[key] = {
            "state": sub,
            "no_enrol": no_enrol,
            "spend": np.zeros(idx.size),
            "real": np.zeros(idx.size),
            **base,
        }


def _landmark_step(m, key, lm_state, lm_out, dr, st, C):
    d = lm_state[key]
    o = _step(m, d["idx"], d["state"], dr, st, C, record=False, no_enrol=d["no_enrol"])
    d["spend"] += o["exp_spend"]
    d["real"] += o["total"]
    if m == d["end"]:
        L, _, arm = key
        res = lm_out.setdefault(
            (L, arm),
            {
                "treated": [],
                "spend": [],
                "real": [],
                "retained": [],
                "spend3": [],
                "enrolled_fu": [],
            },
        )
        res["enrolled_fu"].append(d["state"]["ever"] & ~d["ever0"])
        res["treated"].append(d["treated"])
        res["spend"].append(d["spend"])
        res["real"].append(d["real"])
        res["retained"].append(d["state"]["alive"].copy())
        res["spend3"].append(d["spend3"])
        del lm_state[key]


# ---------------------------------------------------------------------------
# Sequential-trial potential outcomes (one emulated trial per calendar month)
# ---------------------------------------------------------------------------

SEQ_FOLLOW = 6  # outcome months after the trial month
SEQ_FULL_TRUTH_CUSTOMERS = 20_000  # up to this world size every control person-trial is branched


def _trial_open(m, act, eligible, enrol, state, seq_state, seq_out, rng, q):
    """Open the two arms of the month-``m`` trial for its eligible person-trials.

    Eligible: signed up before month m, never enrolled before month m, alive at the end of
    month m. Treated: enrolled in month m. All treated person-trials are branched; control
    person-trials with probability ``q`` (weight 1/q in the ATE).
    """
    el = np.flatnonzero(eligible)
    if el.size == 0:
        return
    tr = enrol[el]
    seq_out["n_eligible"] += int(el.size)
    seq_out["n_enrol"] += int(tr.sum())
    pick = tr | (rng.random(el.size) < q)
    el, tr = el[pick], tr[pick]
    idx = act[el]
    base = {
        "idx": idx,
        "treated": tr,
        "w": np.where(tr, 1.0, 1.0 / q),
        "month": np.full(idx.size, m, np.int32),
        "end": m + SEQ_FOLLOW,
    }
    for arm in ("treat", "control"):
        sub = _copy_state(state, idx)
        sub["member"][:] = arm == "treat"
        sub["ever"][:] = arm == "treat"
        sub["left"][:] = False
        seq_state[(m, arm)] = {"state": sub, "spend": np.zeros(idx.size), **base}


def _trial_step(m, key, seq_state, seq_out, dr, st, C):
    d = seq_state[key]
    o = _step(m, d["idx"], d["state"], dr, st, C, record=False)
    d["spend"] += o["exp_spend"]
    if m == d["end"]:
        tm, arm = key
        seq_out["rows"].append(
            {
                "arm": arm,
                "idx": d["idx"],
                "month": d["month"],
                "treated": d["treated"],
                "w": d["w"],
                "spend": d["spend"],
                "retained": d["state"]["alive"].copy(),
            }
        )
        del seq_state[key]


# ---------------------------------------------------------------------------
# Assembly: arrays -> contract tables
# ---------------------------------------------------------------------------


def _ids(n: int) -> np.ndarray:
    return np.char.add("C", np.char.zfill(np.arange(1, n + 1).astype(str), 7))


def _str_col(
    values: np.ndarray, codes: np.ndarray | None = None, missing: np.ndarray | None = None
):
    """Return a pandas ``str`` Series from labels (optionally coded) with optional missing mask."""
    arr = (
        np.asarray(values, dtype=object)
        if codes is None
        else np.asarray(values, dtype=object)[codes]
    )
    if missing is not None:
        arr = arr.copy()
        arr[missing] = None
    return pd.Series(pd.array(arr, dtype="str"))


def _id_col(id_labels, idx: np.ndarray) -> pd.Series:
    import pyarrow as pa

    taken = id_labels.take(pa.array(idx.astype(np.int64)))
    return pd.Series(pd.array(taken, dtype="str"))


def _dates(first: np.ndarray, dim: np.ndarray, m_index: np.ndarray, frac: np.ndarray) -> np.ndarray:
    day = np.minimum(np.floor(frac * dim[m_index]).astype(np.int64), dim[m_index] - 1)
    return (first[m_index] + day).astype("datetime64[us]")


def _split_amounts(rng, counts: np.ndarray, totals: np.ndarray, shape_p: float) -> np.ndarray:
    """Split monthly totals into ``counts`` i.i.d. Gamma(p) purchases (Dirichlet shares)."""
    g = rng.gamma(shape_p, 1.0, int(counts.sum()))
    grp = np.repeat(np.arange(counts.size), counts)
    gs = np.bincount(grp, weights=g, minlength=counts.size)
    amt = np.repeat(totals / gs, counts) * g
    return np.maximum(np.round(amt, 2), 0.01)


def generate(
    n_customers: int = 20000,
    seed: int = 42,
    start: str = "2023-01-01",
    months: int = 36,
    dirty: bool = False,
) -> SampleWorld:
    """Generate the sample world with planted effects.

    Parameters
    ----------
    n_customers : int
        Customers in the data (customers who signed up before ``start`` and were still
        active at ``start``, plus customers who signed up inside the window).
    seed : int
        Seed of all randomness; same arguments give identical tables.
    start : str
        First day of the data window (YYYY-MM-DD, first of a month).
    months : int
        Length of the window in calendar months; ``as_of`` is its last day.
    dirty : bool
        Inject duplicate customers, orphan and future-dated transactions, negative
        amounts and out-of-range scores (recorded in ``truth["dirt"]``).

    Returns
    -------
    SampleWorld
        ``tables`` (customers, transactions, loyalty, experience) and ``truth``.
        Dates are datetime64 (day precision), money in currency units.
    """
    import pyarrow as pa

    if int(n_customers) < 10:
        raise ParamsError(f"synth: n_customers must be at least 10, got {n_customers}.")
    if int(months) < 12:
        raise ParamsError(f"synth: months must be at least 12, got {months}.")
    st0 = pd.Timestamp(start)
    if st0.day != 1:
        raise ParamsError(f"synth: start must be the first day of a month, got {start!r}.")
    n = int(n_customers)
    months = int(months)
    pp = PARAMS["purchases"]
    K = PARAMS["acquisition"]["pre_window_months"]
    landmarks = (6, 12)

    pop = _draw_population(seed, n, st0, months)
    pop["lp"] = _static_lp(pop)
    C = _Consts(st0, months)

    first, dim = _month_starts(st0, -K - 1, months + 1)
    off = K + 1  # month m -> index m + off

    chunks = []
    for ci, lo_ in enumerate(range(0, n, CHUNK)):
        hi_ = min(lo_ + CHUNK, n)
        stc = {k: v[lo_:hi_] for k, v in pop.items()}
        res = _simulate_chunk(
            seed, ci, stc, C, months, landmarks, min(1.0, SEQ_FULL_TRUTH_CUSTOMERS / max(n, 1))
        )
        res["offset"] = lo_
        chunks.append(res)

    def cat(key):
        return np.concatenate([c[key] for c in chunks])

    churn_m, churn_f, reason = cat("churn_m"), cat("churn_f"), cat("reason")
    enrol_m, enrol_f = cat("enrol_m"), cat("enrol_f")
    leave_m, leave_f, ptier = cat("leave_m"), cat("leave_f"), cat("ptier")

    ids = _ids(n)
    id_labels = pa.array(ids)
    rng_out = _rng(seed, 4)

    # customers
    signup = _dates(first, dim, pop["s"] + off, pop["f"])
    churned = churn_m >= 0
    cdate = np.full(n, np.datetime64("NaT"), "datetime64[us]")
    cdate[churned] = _dates(first, dim, churn_m[churned] + off, churn_f[churned])
    rmiss = churned & (rng_out.random(n) < PARAMS["churn"]["churn_reason_missing_share"])
    reason_lab = np.where(churned, reason, 0)
    customers = pd.DataFrame(
        {
            "customer_id": pd.Series(pd.array(ids, dtype="str")),
            "signup_date": signup,
            "churn_date": cdate,
            "churn_reason": _str_col(REASONS, reason_lab, ~churned | rmiss),
            "segment": _str_col(SEGMENTS, pop["segment"]),
            "value_tier": _str_col(TIERS, pop["tier"]),
            "region": _str_col(
                REGIONS, pop["region"], rng_out.random(n) < PARAMS["noise"]["region_missing_share"]
            ),
            "channel": _str_col(ACQ_CHANNELS, pop["channel"]),
        }
    )

    # transactions
    parts = []
    for c in chunks:
        for kx, mm, k, tot, fs, fe in c["rec"]["tx"]:
            parts.append((kx + c["offset"], mm, k, tot, fs, fe))
    cix = np.concatenate([p[0] for p in parts])
    mm = np.concatenate([p[1] for p in parts])
    kk = np.concatenate([p[2] for p in parts])
    tot = np.concatenate([p[3] for p in parts])
    fs = np.concatenate([p[4] for p in parts])
    fe = np.concatenate([p[5] for p in parts])
    del parts
    amount = _split_amounts(rng_out, kk, tot, pp["spend_shape_p"])
    t_cix = np.repeat(cix, kk)
    t_m = np.repeat(mm, kk)
    frac = np.repeat(fs, kk) + np.repeat(fe - fs, kk) * rng_out.random(t_cix.size)
    del cix, mm, kk, tot, fs, fe
    t_date = _dates(first, dim, t_m + off, frac)
    mrate = np.array([pp["margin_rate"][s] for s in SEGMENTS])[pop["segment"][t_cix]]
    mrate = np.clip(mrate + rng_out.normal(0, pp["margin_rate_noise_sd"], t_cix.size), 0.02, 0.8)
    margin = np.round(amount * mrate, 2)
    tch = rng_out.choice(len(TX_CHANNELS), t_cix.size, p=list(pp["channel_probs"].values()))
    tmiss = rng_out.random(t_cix.size) < pp["channel_missing_share"]
    order = np.lexsort((amount, t_date, t_cix))
    transactions = pd.DataFrame(
        {
            "customer_id": _id_col(id_labels, t_cix[order]),
            "date": t_date[order],
            "amount": amount[order],
            "margin": margin[order],
            "channel": _str_col(TX_CHANNELS, tch[order], tmiss[order]),
        }
    )
    # points: 1 per currency unit while a member (enrolment date .. leaving date)
    e_date = np.full(n, np.datetime64("NaT"), "datetime64[us]")
    enrolled = enrol_m >= 0
    e_date[enrolled] = _dates(first, dim, enrol_m[enrolled] + off, enrol_f[enrolled])
    l_date = np.full(n, np.datetime64("NaT"), "datetime64[us]")
    lft = leave_m >= 0
    l_date[lft] = _dates(first, dim, leave_m[lft] + off, leave_f[lft])
    ed = e_date[t_cix]
    ld = l_date[t_cix]
    in_prog = ~np.isnat(ed) & (t_date >= ed) & (np.isnat(ld) | (t_date < ld))
    pts = np.floor(
        np.bincount(t_cix[in_prog], weights=amount[in_prog], minlength=n)
        * PARAMS["loyalty"]["points_per_currency_unit"]
    )
    tx_counts = {"n": int(t_cix.size), "sum_amount": float(amount.sum())}
    del t_cix, t_m, frac, t_date, amount, margin, tch, tmiss, order, ed, ld, in_prog, mrate

    # loyalty
    li = np.flatnonzero(enrolled)
    red = np.floor(pts[li] * rng_out.beta(2, 3, li.size))
    loyalty = pd.DataFrame(
        {
            "customer_id": pd.Series(pd.array(ids[li], dtype="str")),
            "enrolled_date": e_date[li],
            "tier": _str_col(PROGRAMME_TIERS, ptier[li]),
            "left_date": l_date[li],
            "points_earned": pts[li].astype(np.float64),
            "points_redeemed": red.astype(np.float64),
        }
    )

    # experience
    tk = [(r[0] + c["offset"],) + tuple(r[1:]) for c in chunks for r in c["rec"]["tk"]]
    sv = [(r[0] + c["offset"],) + tuple(r[1:]) for c in chunks for r in c["rec"]["sv"]]

    def col(lst, i):
        return np.concatenate([r[i] for r in lst])

    k_c, k_m, k_f, k_tp = col(tk, 0), col(tk, 1), col(tk, 2), col(tk, 3)
    s_c, s_m, s_f, s_tp = col(sv, 0), col(sv, 1), col(sv, 2), col(sv, 3)
    nk, ns = k_c.size, s_c.size
    e_cix = np.concatenate([k_c, s_c])
    e_date2 = np.concatenate(
        [_dates(first, dim, k_m + off, k_f), _dates(first, dim, s_m + off, s_f)]
    )
    kind = np.concatenate([np.zeros(nk, np.int8), np.ones(ns, np.int8)])
    order = np.lexsort((kind, e_date2, e_cix))

    def tick(vals, fill):
        return np.concatenate([np.asarray(vals, dtype=float), np.full(ns, fill)])[order]

    def nullable_bool(vals):
        a = pd.array(
            np.concatenate([vals.astype(bool), np.zeros(ns, bool)])[order], dtype="boolean"
        )
        a[kind[order] == 1] = pd.NA
        return a

    contacts = pd.array(
        np.concatenate([col(tk, 5), np.zeros(ns, np.int16)])[order].astype(np.int64), dtype="Int64"
    )
    contacts[kind[order] == 1] = pd.NA
    experience = pd.DataFrame(
        {
            "customer_id": _id_col(id_labels, e_cix[order]),
            "date": e_date2[order],
            "kind": _str_col(("ticket", "survey"), kind[order]),
            "touchpoint": _str_col(TOUCHPOINTS, np.concatenate([k_tp, s_tp])[order]),
            "compensated": nullable_bool(col(tk, 8)),
            "csat": np.concatenate([np.full(nk, np.nan), col(sv, 5)])[order],
            "nps": np.concatenate([np.full(nk, np.nan), col(sv, 4)])[order],
            "ces": np.concatenate([np.full(nk, np.nan), col(sv, 6)])[order],
            "first_contact_resolution": nullable_bool(col(tk, 4)),
            "contacts_to_resolve": contacts,
            "sla_met": nullable_bool(col(tk, 6)),
            "response_hours": tick(np.round(col(tk, 7), 1), np.nan),
        }
    )

    tables = {
        "customers": customers,
        "transactions": transactions,
        "loyalty": loyalty,
        "experience": experience,
    }
    truth = _truth(
        seed=seed,
        n=n,
        start=st0,
        months=months,
        pop=pop,
        churn_m=churn_m,
        enrolled=enrolled,
        chunks=chunks,
        tables=tables,
        tx_counts=tx_counts,
        C=C,
        landmarks=landmarks,
        dirty=dirty,
    )
    if dirty:
        tables, truth["dirt"] = _inject_dirt(tables, seed, st0, months)
    return SampleWorld(
        tables=tables, truth=truth, sequential_effects=_sequential_effects(chunks, ids)
    )


# ---------------------------------------------------------------------------
# Truth
# ---------------------------------------------------------------------------


def _r(x, nd=6):
    return (
        None
        if x is None or (isinstance(x, float) and not math.isfinite(x))
        else round(float(x), nd)
    )


def _landmark_truth(chunks, L: int) -> dict:
    def arm(a, key):
        vals = [c["landmarks"].get((L, a), {}).get(key, []) for c in chunks]
        flat = [v for lst in vals for v in lst]
        return np.concatenate(flat) if flat else np.zeros(0)

    tr = arm("treat", "treated").astype(bool)
    if tr.size == 0:
        return {"n": 0, "n_treated": 0, "definition": "empty population"}
    y1s, y0s, y0ss = (
        arm("treat", "spend"),
        arm("control", "spend"),
        arm("control_sustained", "spend"),
    )
    y1r = arm("treat", "retained").astype(float)
    y0r = arm("control", "retained").astype(float)
    y0rs = arm("control_sustained", "retained").astype(float)
    obs_spend = np.where(tr, arm("treat", "real"), arm("control", "real"))
    obs_ret = np.where(tr, y1r, y0r)
    nt = int(tr.sum())

    def diff(a, b, mask=None):
        d = a - b if mask is None else (a - b)[mask]
        return _r(d.mean()) if d.size else None

    return {
        "n": int(tr.size),
        "n_treated": nt,
        "spend_ATE": diff(y1s, y0s),
        "spend_ATT": diff(y1s, y0s, tr),
        "retained_ATE": diff(y1r, y0r),
        "retained_ATT": diff(y1r, y0r, tr),
        "mean_spend_Y1": _r(y1s.mean()),
        "mean_spend_Y0": _r(y0s.mean()),
        "mean_retained_Y1": _r(y1r.mean()),
        "mean_retained_Y0": _r(y0r.mean()),
        "naive_spend_diff": _r(obs_spend[tr].mean() - obs_spend[~tr].mean())
        if 0 < nt < tr.size
        else None,
        "naive_retained_diff": _r(obs_ret[tr].mean() - obs_ret[~tr].mean())
        if 0 < nt < tr.size
        else None,
        "selection_bias_spend": _r(y0s[tr].mean() - y0s[~tr].mean()) if 0 < nt < tr.size else None,
        "selection_bias_retained": _r(y0r[tr].mean() - y0r[~tr].mean())
        if 0 < nt < tr.size
        else None,
        "selection_bias_definition": (
            "mean Y(0) of the treated minus mean Y(0) of the controls (spend: expected spend); "
            "naive difference = ATT + selection bias (+ purchase noise for spend)"
        ),
        "sustained": {
            "spend_ATE": diff(y1s, y0ss),
            "spend_ATT": diff(y1s, y0ss, tr),
            "retained_ATE": diff(y1r, y0rs),
            "retained_ATT": diff(y1r, y0rs, tr),
            "definition": (
                "as above but Y(0) forbids any enrolment during the 6 follow-up months "
                "(sustained non-membership); not identified by the landmark contrast when "
                "controls enrol during follow-up"
            ),
        },
        "control_enrolled_during_followup_share": None,
        "definition": (
            f"Landmark L={L}: population = customers alive at the start of calendar month "
            f"(signup month + {L}) [the landmark month], with the landmark month >= window month 3 "
            "(3 observed months before it) and landmark month + 5 <= last window month. "
            "Treated = enrolled in a month before the landmark month and not left before it. "
            "Outcomes over the 6 calendar months starting at the landmark month: spend = total "
            "purchase amount (0 after churn), retained = no churn by the end of the 6th month. "
            "Potential outcomes simulated with common random numbers from the landmark month: "
            "Y(1) = member from the landmark month (natural programme leaving possible), "
            "Y(0) = not a member at the landmark month, natural enrolment afterwards (current "
            "members removed as if never enrolled). The observed outcome equals Y(1) for the "
            "treated and Y(0) for controls. Spend potential outcomes are expected spend given "
            "the simulated path (Poisson mean x mean basket), so ATE/ATT carry no basket noise. "
            "ATE averages over the population, ATT over the treated. naive_* = treated minus "
            "control mean in the observed (realised) data."
        ),
    }


def _sequential_effects(chunks, ids) -> pd.DataFrame:
    """Per person-trial individual effects (see ``SampleWorld.sequential_effects``)."""
    parts = {"treat": [], "control": []}
    for c in chunks:
        for r in c["sequential"]["rows"]:
            parts[r["arm"]].append({**r, "idx": r["idx"] + c["offset"]})
    cols = ["customer_id", "trial_month", "treated", "weight", "spend_effect", "retained_effect"]
    if not parts["treat"]:
        return pd.DataFrame(columns=cols)

    def arm(a, key):
        return np.concatenate([r[key] for r in parts[a]])

    # both arms are appended in the same order (trial month, then row), so rows align
    return pd.DataFrame(
        {
            "customer_id": ids[arm("treat", "idx")],
            "trial_month": arm("treat", "month").astype(int),
            "treated": arm("treat", "treated").astype(bool),
            "weight": arm("treat", "w").astype(float),
            "spend_effect": arm("treat", "spend") - arm("control", "spend"),
            "retained_effect": arm("treat", "retained").astype(float)
            - arm("control", "retained").astype(float),
        }
    )[cols]


def sequential_truth(world: SampleWorld, rows: pd.DataFrame) -> dict:
    """True average effects of enrolling over a subset of sequential-trial person-trials.

    Parameters
    ----------
    world : SampleWorld
        A generated world (its ``sequential_effects``).
    rows : pandas.DataFrame
        Person-trials to average over, by ``customer_id`` and ``trial_month`` (for
        example the rows of :func:`analysis.loyalty.trial_frame` kept after
        propensity trimming).

    Returns
    -------
    dict
        ``spend``, ``retained``: the average individual effect over the rows (sampled
        control person-trials of large worlds weighted by 1 / sampling fraction);
        ``n_rows``: rows matched; ``n_unmatched``: rows of ``rows`` without a simulated
        person-trial (0 for worlds of up to 20,000 customers, where every eligible
        person-trial is simulated; otherwise the controls left out of the sample);
        ``sampled``: whether the world's controls were sampled.

    Raises
    ------
    DataError
        If ``rows`` lacks the two key columns.
    """
    missing = [c for c in ("customer_id", "trial_month") if c not in rows.columns]
    if missing:
        raise DataError(
            f"sequential_truth: rows lack {missing}; pass trial_frame rows.",
            [Problem("rows", c, "missing_column", "column not present") for c in missing],
        )
    eff = world.sequential_effects
    key = rows[["customer_id", "trial_month"]].astype({"customer_id": str, "trial_month": int})
    m = key.merge(eff, on=["customer_id", "trial_month"], how="left", indicator=True)
    # sampled worlds: controls that were not branched have no row; the branched ones stand
    # for them through their weights (Horvitz-Thompson)
    hit = (m["_merge"] == "both").to_numpy()
    w = m.loc[hit, "weight"].to_numpy()
    out = {
        "n_rows": int(hit.sum()),
        "n_unmatched": int((~hit).sum()),
        "sampled": bool((eff["weight"] > 1).any()),
    }
    for name in ("spend", "retained"):
        v = m.loc[hit, f"{name}_effect"].to_numpy()
        out[name] = float((w * v).sum() / w.sum()) if w.size else float("nan")
    return out


def _sequential_truth(chunks) -> dict:
    """Truth of the pooled sequential-trial emulation (see the definition string)."""
    rows = {"treat": [], "control": []}
    n_el = sum(c["sequential"]["n_eligible"] for c in chunks)
    n_en = sum(c["sequential"]["n_enrol"] for c in chunks)
    for c in chunks:
        for r in c["sequential"]["rows"]:
            rows[r["arm"]].append({**r, "idx": r["idx"] + c["offset"]})
    if not rows["treat"] or n_en == 0:
        return {"n_person_trials": int(n_el), "n_enrolments": int(n_en), "definition": "empty"}

    def arm(a, key):
        return np.concatenate([r[key] for r in rows[a]])

    # both arms are appended in the same order (trial month, then row), so rows align
    tr = arm("treat", "treated").astype(bool)
    w = arm("treat", "w")
    cid = arm("treat", "idx")
    out = {"n_person_trials": int(n_el), "n_enrolments": int(n_en)}
    q = float(1.0 / w[~tr].min()) if (~tr).any() else 1.0
    for name in ("spend", "retained"):
        y1 = arm("treat", name).astype(float)
        y0 = arm("control", name).astype(float)
        d = y1 - y0
        out[f"{name}_ATT"] = _r(d[tr].mean())
        out[f"{name}_ATE"] = _r(float((w * d).sum() / n_el))
        out[f"mean_{name}_Y1_treated"] = _r(y1[tr].mean())
        out[f"mean_{name}_Y0_treated"] = _r(y0[tr].mean())
        # Poisson-sampling (Horvitz-Thompson) variance of the ATE truth, clustered by customer
        if q < 1:
            contrib = np.where(tr, 0.0, d * np.sqrt(1 - q) / q)
            per_c = np.bincount(np.unique(cid, return_inverse=True)[1], weights=contrib)
            out[f"mc_se_{name}_ATE"] = _r(float(np.sqrt((per_c**2).sum())) / n_el)
        else:
            out[f"mc_se_{name}_ATE"] = 0.0
        if (~tr).any():
            y0c = float((w * y0)[~tr].sum() / w[~tr].sum())
            out[f"selection_bias_{name}"] = _r(y0[tr].mean() - y0c)
    out["control_sample_fraction"] = _r(q)
    out["definition"] = (
        "Pooled sequential trials, one per calendar month m with 3 <= m <= last window month - "
        f"{SEQ_FOLLOW} (window month 0 = start month). Eligible person-trials: customers who "
        "signed up before month m, never enrolled before month m and did not churn by the end of "
        "month m. Treated: enrolled during month m; controls: the other eligible customers "
        "(they may enrol later). Outcomes over the 6 calendar months m+1..m+6: spend = expected "
        "spend given the simulated path (Poisson mean x mean basket, 0 after churn), retained = "
        "no churn by the end of month m+6. Potential outcomes with common random numbers from "
        "the end of month m: Y(1) = enrolled in month m (natural programme leaving), Y(0) = not "
        "enrolled in month m, natural course afterwards (may enrol in a later month). ATT "
        "averages over enrolment events (all of them), ATE over eligible person-trials; a "
        "customer counts once per eligible month. For worlds above "
        f"{SEQ_FULL_TRUTH_CUSTOMERS:,} customers the ATE uses a random sample of control "
        "person-trials (control_sample_fraction, Horvitz-Thompson weights); mc_se_* is its "
        "Monte Carlo standard error (0 when every person-trial is simulated). "
        "selection_bias_* = mean Y(0) of the treated minus mean Y(0) of the controls."
    )
    return out


def _truth(
    *,
    seed,
    n,
    start,
    months,
    pop,
    churn_m,
    enrolled,
    chunks,
    tables,
    tx_counts,
    C,
    landmarks,
    dirty,
):
    as_of = start + pd.DateOffset(months=months) - pd.Timedelta(days=1)
    ex = PARAMS["experience"]
    lo = PARAMS["loyalty"]
    pp = PARAMS["purchases"]
    # exposure in customer-months at risk inside the window
    first_m = np.maximum(pop["s"], 0)
    last_m = np.where(churn_m >= 0, churn_m, months - 1)
    cm_i = (last_m - first_m + 1).clip(0)
    cm = int(cm_i.sum())
    # expected purchases at the base rate; partial first/last months counted whole (small)
    base_purchases = float((pop["lam"] * cm_i).sum())
    n_churn = int((churn_m >= 0).sum())
    exp_tab = tables["experience"]
    tick = exp_tab[exp_tab["kind"] == "ticket"]
    surv = exp_tab[exp_tab["kind"] == "survey"]
    n_inv = 0
    for c in chunks:
        n_inv += c.get("n_inv", 0)
    nps = surv["nps"].dropna()
    cs = {
        "n": sum(c["csat_acc"]["n"] for c in chunks),
        "b": sum(c["csat_acc"]["base_next"] for c in chunks),
    }
    ame = ex["csat_spend_slope"] * cs["b"] / cs["n"] if cs["n"] else None
    unres = tick[~tick["first_contact_resolution"].astype(bool)]
    comp_share_unres = float(unres["compensated"].astype(bool).mean()) if len(unres) else 0.0
    breach = tick[~tick["sla_met"].astype(bool)]
    comp_share_breach = float(breach["compensated"].astype(bool).mean()) if len(breach) else 0.0
    tp_hr = {tp: _r(math.exp(C.lhr["unres"] + C.tp_delta[i])) for i, tp in enumerate(TOUCHPOINTS)}
    unres_tp_share = unres["touchpoint"].value_counts(normalize=True)
    realised_delta = float(
        sum(unres_tp_share.get(tp, 0) * C.tp_delta[i] for i, tp in enumerate(TOUCHPOINTS))
    )
    cust = tables["customers"]
    life_m = None
    # Kaplan-Meier-free summary: share churned and median observed lifetime among churners
    churners = cust["churn_date"].notna()
    if churners.any():
        life_m = float(
            (
                (cust.loc[churners, "churn_date"] - cust.loc[churners, "signup_date"]).dt.days
                / 30.4375
            ).median()
        )
    rates = {
        "monthly_churn_rate": _r(n_churn / cm),
        "purchases_per_customer_month": _r(tx_counts["n"] / cm),
        "transactions_per_customer": _r(tx_counts["n"] / n),
        "revenue_per_customer_month": _r(tx_counts["sum_amount"] / cm),
        "enrolment_share": _r(enrolled.mean()),
        "detractor_share": _r((nps <= 6).mean()) if len(nps) else None,
        "promoter_share": _r((nps >= 9).mean()) if len(nps) else None,
        "survey_response_rate": _r(len(surv) / n_inv) if n_inv else None,
        "nps_answered_share": _r(surv["nps"].notna().mean()) if len(surv) else None,
        "sla_breach_rate": _r((~tick["sla_met"].astype(bool)).mean()) if len(tick) else None,
        "first_contact_resolution_rate": _r(tick["first_contact_resolution"].astype(bool).mean())
        if len(tick)
        else None,
        "compensated_share_of_failures": _r(
            tick.loc[
                ~tick["first_contact_resolution"].astype(bool) | ~tick["sla_met"].astype(bool),
                "compensated",
            ]
            .astype(bool)
            .mean()
        )
        if len(tick)
        else None,
        "tickets_per_customer_month": _r(len(tick) / cm),
        "surveys_per_customer_month": _r(len(surv) / cm),
        "experience_events_per_customer": _r(len(exp_tab) / n),
        "pre_window_customer_share": _r((pop["s"] < 0).mean()),
        "churned_share": _r(churners.mean()),
        "median_months_signup_to_churn_among_churners": _r(life_m, 3),
        "customer_months_at_risk": cm,
        "definition": (
            "observed marginal rates in the generated data: monthly churn = churn events in the window "
            "/ customer-months at risk in the window (calendar months started alive); purchases per "
            "customer-month = transactions / the same exposure; enrolment share = share of customers "
            "ever enrolled; detractor share = NPS 0-6 among answered NPS items; survey response rate = "
            "survey rows / survey invitations (invitations are not in the data); SLA breach rate = "
            "tickets with sla_met false / tickets"
        ),
    }
    lm = {str(L): _landmark_truth(chunks, L) for L in landmarks}
    for L in landmarks:
        lm[str(L)]["control_enrolled_during_followup_share"] = _r(_control_enrol_share(chunks, L))
    r_, a_ = pp["rate_shape_r"], pp["rate_rate_alpha_per_month"]
    truth = {
        "params": {
            "n_customers": n,
            "seed": int(seed),
            "start": start.strftime("%Y-%m-%d"),
            "months": int(months),
            "dirty": bool(dirty),
            "world": PARAMS,
        },
        "window": {
            "start": start.strftime("%Y-%m-%d"),
            "as_of": as_of.strftime("%Y-%m-%d"),
            "definition": "data window [start, as_of], as_of = last day of the last month",
        },
        "survival": {
            "reference_levels": {"segment": "consumer", "value_tier": "medium"},
            "hazard_ratios": dict(PARAMS["churn"]["hazard_ratios"]),
            "definition": (
                "planted conditional churn hazard ratios (all churn reasons, all tenures), "
                "multiplying the tenure-dependent baseline; Cox parametrisation with "
                "covariates segment + value_tier, duration = tenure in months since signup, "
                "left-truncated at the window start. Other hazard modifiers (experience, loyalty) "
                "do not depend on segment or value tier (monthly enrolment rates calibrated equal "
                "across tiers at every tenure); no unobserved frailty. Leaving them out of a Cox "
                "model attenuates these ratios by about 1-2% toward 1 (non-collapsibility, "
                "measured on 150,000 customers; docs/sample-world.md)"
            ),
            "baseline_monthly_hazard_by_reason": PARAMS["churn"]["baseline_by_reason"],
            "baseline_definition": "monthly hazard for consumer / medium / non-member / no experience events",
            "competing_risks": (
                "churn_reason is drawn at churn with probability proportional to the reason's baseline "
                "hazard at that tenure: service is early (onboarding), price and competitor rise with "
                "tenure, moved and other are constant; covariates act on all reasons alike"
            ),
            "median_lifetime_months_reference": _r(_median_lifetime(0.0), 3),
            "median_lifetime_definition": "median of the baseline (reference) survival curve in months",
        },
        "loyalty": {
            "churn_hazard_ratio": lo["churn_hazard_ratio"],
            "churn_hazard_ratio_definition": (
                "structural churn hazard ratio while a member, from the month after the enrolment "
                "month until the month of leaving (same for all value tiers)"
            ),
            "spend_lift": lo["spend_lift_by_tier"]["medium"],
            "spend_lift_definition": (
                "multiplicative lift of the purchase rate (so of expected spend) while a member, "
                "medium tier; by_tier gives each tier"
            ),
            "by_tier": {
                t: {
                    "spend_lift": lo["spend_lift_by_tier"][t],
                    "churn_hazard_ratio": lo["churn_hazard_ratio"],
                }
                for t in TIERS
            },
            "by_tier_definition": (
                "structural effects by value tier: purchase-rate lift while a member differs by tier, "
                "the churn hazard ratio does not"
            ),
            "post_leaving_hazard_ratio": lo["post_leaving_hazard_ratio"],
            "post_leaving_definition": "churn hazard ratio in every month after the month of leaving the programme",
            "enrolment_model": {
                k: lo[k]
                for k in (
                    "enrol_logit_intercept",
                    "enrol_logit_log1p_spend_3m",
                    "enrol_spend_centre_by_tier",
                    "enrol_logit_log1p_tenure",
                    "enrol_logit_nps",
                    "enrol_logit_per_ticket_3m",
                )
            },
            "enrolment_definition": (
                "monthly enrolment probability of never-enrolled customers = expit(intercept + b_spend * "
                "(log1p(spend in the 3 previous months) - centre[value_tier]) + b_tenure * log1p(tenure "
                "months) + b_nps[latest NPS category] + b_ticket * tickets in the 3 previous months); "
                "programme launched at the window start"
            ),
            "landmarks": lm,
            "sequential": _sequential_truth(chunks),
        },
        "experience": {
            "detractor_hazard_ratio": ex["detractor_hazard_ratio"],
            "passive_hazard_ratio": ex["passive_hazard_ratio"],
            "no_survey_hazard_ratio": 1.0,
            "nps_definition": (
                "churn hazard ratio in a month given the latest answered NPS before that month "
                "(detractor 0-6, passive 7-8) versus promoter (9-10); customers without any answered "
                "NPS yet have HR 1 (as promoters)"
            ),
            "sla_breach_hazard_ratio": ex["sla_breach_hazard_ratio"],
            "unresolved_ticket_hazard_ratio": ex["unresolved_ticket_hazard_ratio"],
            "ticket_definition": (
                "multiplicative churn hazard ratio per ticket dated in the 3 calendar months before "
                "the month (about 90 days): per SLA breach (sla_met false) and per unresolved ticket "
                "(first_contact_resolution false, uncompensated, at the average touchpoint mix); "
                "effects of one ticket multiply"
            ),
            "touchpoint_failure_hazard_ratio": tp_hr,
            "touchpoint_definition": (
                "hazard ratio of one uncompensated unresolved ticket at this touchpoint in the 3 previous "
                "months; log-mean over the planned mix of unresolved tickets equals "
                "log(unresolved_ticket_hazard_ratio)"
            ),
            "touchpoint_log_delta_realised_mix": _r(realised_delta),
            "compensation_hazard_ratio": ex["compensation_hazard_ratio"],
            "compensation_definition": (
                "extra hazard ratio of a failed ticket (unresolved or SLA breach) that was compensated, "
                "multiplying its failure hazard ratios, for the same 3 months"
            ),
            "compensated_share_of_unresolved": _r(comp_share_unres),
            "compensated_share_of_breaches": _r(comp_share_breach),
            "unresolved_ticket_hazard_ratio_ignoring_compensation": _r(
                math.exp(C.lhr["unres"] + realised_delta + comp_share_unres * C.lhr["comp"])
            ),
            "sla_breach_hazard_ratio_ignoring_compensation": _r(
                math.exp(C.lhr["sla"] + comp_share_breach * C.lhr["comp"])
            ),
            "ignoring_compensation_definition": (
                "approximate hazard ratio a model without a compensation term targets: log HR "
                "averaged over the realised share of compensated failures (and touchpoint mix)"
            ),
            "revenue_effect_per_csat_point": _r(ame, 4),
            "revenue_effect_definition": (
                "average marginal effect, in currency per customer-month, of one CSAT point in a month "
                "on expected revenue in the next month, over customer-months with an answered CSAT "
                "whose customer is active for the whole next month (planted multiplicatively: next "
                "month's purchase rate x (1 + csat_spend_slope * (csat - 3)))"
            ),
            "csat_spend_slope": ex["csat_spend_slope"],
            "revenue_effect_customer_months": cs["n"],
        },
        "value": {
            "purchase_rate": {
                "distribution": "gamma",
                "shape_r": r_,
                "rate_alpha_per_month": a_,
                # lambda per week = lambda per month * 7 / 30.4375, so the gamma *rate* scales inversely
                "rate_alpha_per_week": _r(a_ * 30.4375 / 7),
                "rate_alpha_per_day": _r(a_ * 30.4375),
                "mean_per_month": _r(r_ / a_),
                "realised_rate_multiplier": _r(tx_counts["n"] / base_purchases),
                "realised_rate_multiplier_definition": (
                    "transactions in the data / sum over customers of lambda x months at risk in the "
                    "window: the average effect of seasonality, membership lift and CSAT on the rate"
                ),
                "definition": (
                    "individual Poisson purchase rate lambda ~ Gamma(shape r, rate alpha) in purchases "
                    "per unit time (before seasonality, membership lift and CSAT effects)"
                ),
            },
            "spend": {
                "model": "gamma-gamma",
                "p": pp["spend_shape_p"],
                "q": pp["spend_shape_q"],
                "gamma": pp["spend_rate_gamma"],
                "mean_amount": _r(
                    pp["spend_shape_p"] * pp["spend_rate_gamma"] / (pp["spend_shape_q"] - 1)
                ),
                "definition": (
                    "amount of a purchase ~ Gamma(shape p, rate nu_i), nu_i ~ Gamma(shape q, rate gamma) "
                    "(Fader-Hardie-Lee gamma-gamma); mean amount = p * gamma / (q - 1)"
                ),
            },
            "dropout": (
                "contractual churn with a tenure-dependent hazard (not the BG/NBD geometric dropout); "
                "purchases stop at churn"
            ),
            "purchase_seasonality_amplitude": pp["seasonality_amplitude"],
        },
        "rates": rates,
    }
    return json.loads(json.dumps(truth))  # plain types only


def _control_enrol_share(chunks, L):
    """Return the share of observed controls at landmark L who enrol during follow-up."""
    tr = [t for c in chunks for t in c["landmarks"].get((L, "control"), {}).get("treated", [])]
    en = [e for c in chunks for e in c["landmarks"].get((L, "control"), {}).get("enrolled_fu", [])]
    if not tr:
        return None
    tr, en = np.concatenate(tr), np.concatenate(en)
    return float(en[~tr].mean()) if (~tr).any() else None


def _median_lifetime(lp: float) -> float:
    t = np.arange(0, 600)
    H = np.concatenate([[0.0], np.cumsum(_baseline_total(t) * math.exp(lp))])
    k = int(np.argmax(H >= math.log(2)))
    # linear interpolation inside month k-1
    h0, h1 = H[k - 1], H[k]
    return float(k - 1 + (math.log(2) - h0) / (h1 - h0))


# ---------------------------------------------------------------------------
# Dirt (for validation tests)
# ---------------------------------------------------------------------------


def _inject_dirt(tables: dict, seed: int, start: pd.Timestamp, months: int):
    """Return tables with injected data problems and a record of what was injected."""
    rng = _rng(seed, 99)
    as_of = start + pd.DateOffset(months=months) - pd.Timedelta(days=1)
    cust = tables["customers"]
    tx = tables["transactions"]
    exp = tables["experience"]
    n_c = len(cust)
    k = max(3, n_c // 1000)

    dup_rows = np.sort(rng.choice(n_c, k, replace=False))
    dups = cust.iloc[dup_rows].copy()
    dups["region"] = pd.array(["unknown"] * k, dtype="str")  # conflicting duplicate
    cust2 = pd.concat([cust, dups], ignore_index=True)

    orphan_ids = [f"X{9_000_000 + i:07d}" for i in range(k)]
    tpl = tx.iloc[rng.choice(len(tx), k, replace=False)].copy() if len(tx) else tx.head(0)
    orphans = tpl.copy()
    orphans["customer_id"] = pd.array(orphan_ids[: len(orphans)], dtype="str")

    fut = tx.iloc[rng.choice(len(tx), k, replace=False)].copy()
    fut["date"] = (as_of + pd.to_timedelta(rng.integers(1, 60, k), unit="D")).values.astype(
        "datetime64[us]"
    )

    neg_rows = np.sort(rng.choice(len(tx), k, replace=False))
    tx2 = tx.copy()
    amt = tx2["amount"].to_numpy().copy()
    amt[neg_rows] = -amt[neg_rows]
    mg = tx2["margin"].to_numpy().copy()
    mg[neg_rows] = -mg[neg_rows]
    tx2["amount"] = amt
    tx2["margin"] = mg
    tx2 = pd.concat([tx2, orphans, fut], ignore_index=True)
    tx2 = tx2.sort_values(["customer_id", "date", "amount"], kind="stable", ignore_index=True)

    exp2 = exp.copy()
    sv = np.flatnonzero((exp2["kind"] == "survey").to_numpy())
    bad = np.sort(rng.choice(sv, min(k, sv.size), replace=False)) if sv.size else np.zeros(0, int)
    for col, val in (("nps", 11.0), ("csat", 6.0), ("ces", 8.0)):
        a = exp2[col].to_numpy().copy()
        a[bad] = val
        exp2[col] = a
    out = dict(tables)
    out["customers"] = cust2.sort_values("customer_id", kind="stable", ignore_index=True)
    out["transactions"] = tx2
    out["experience"] = exp2
    dirt = {
        "duplicate_customer_ids": sorted(cust.iloc[dup_rows]["customer_id"].tolist()),
        "orphan_transaction_customer_ids": orphan_ids[: len(orphans)],
        "future_transactions": int(k),
        "future_transaction_customer_ids": sorted(fut["customer_id"].tolist()),
        "negative_amounts": int(k),
        "negative_amount_customer_ids": sorted(tx.iloc[neg_rows]["customer_id"].tolist()),
        "out_of_range_surveys": int(bad.size),
        "out_of_range_values": {"nps": 11.0, "csat": 6.0, "ces": 8.0},
        "out_of_range_customer_ids": sorted(exp.iloc[bad]["customer_id"].tolist()),
        "definition": (
            "injected only when dirty=True: k duplicate customer rows (same id, region 'unknown'), "
            "k transactions for unknown customer ids (X9...), k transactions dated 1-59 days after "
            "as_of, k existing transactions with negated amount and margin, and survey rows with "
            "nps 11, csat 6, ces 8 (all three on the same rows); k = max(3, n_customers // 1000). "
            "Truth statistics are computed on the clean tables."
        ),
    }
    return out, dirt


# ---------------------------------------------------------------------------
# Writing and CLI
# ---------------------------------------------------------------------------

_DATE_COLS = {
    "customers": ("signup_date", "churn_date"),
    "transactions": ("date",),
    "loyalty": ("enrolled_date", "left_date"),
    "experience": ("date",),
}


def write(world: SampleWorld, out_dir, format: str = "parquet") -> dict[str, Path]:
    """Write the four tables and ``truth.json`` to ``out_dir`` byte-reproducibly.

    Parameters
    ----------
    world : SampleWorld
        Output of :func:`generate`.
    out_dir : str or path-like
        Folder, created if missing; existing files of the same names are replaced.
    format : {"parquet", "csv"}
        Table file format. Parquet stores dates as date32; CSV writes YYYY-MM-DD.

    Returns
    -------
    dict of str to pathlib.Path
        Written file per table name plus ``"truth"``.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    if format not in ("parquet", "csv"):
        raise ParamsError(f"synth: format must be 'parquet' or 'csv', got {format!r}.")
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ParamsError(
            f"synth: output path {str(out)!r} exists and is not a folder; choose another --out."
        )
    out.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    for name, df in world.tables.items():
        path = out / f"{name}.{format}"
        tmp = out / f".{name}.{format}.tmp"
        if format == "parquet":
            tab = pa.Table.from_pandas(df, preserve_index=False)
            for c in _DATE_COLS.get(name, ()):
                i = tab.schema.get_field_index(c)
                tab = tab.set_column(i, c, tab.column(c).cast(pa.timestamp("us")).cast(pa.date32()))
            tab = tab.replace_schema_metadata(None)  # no pandas/version metadata
            pq.write_table(
                tab,
                tmp,
                compression="zstd",
                compression_level=3,
                row_group_size=1_000_000,
                write_statistics=True,
                store_schema=False,
            )
        else:
            df.to_csv(tmp, index=False, date_format="%Y-%m-%d", lineterminator="\n")
        os.replace(tmp, path)
        paths[name] = path
    tpath = out / "truth.json"
    tpath.write_text(json.dumps(world.truth, sort_keys=True, indent=2, allow_nan=False) + "\n")
    paths["truth"] = tpath
    return paths


def main(argv: list[str] | None = None) -> int:
    """Run ``python -m analysis synth``: generate the sample world and write it.

    Parameters
    ----------
    argv : list of str, optional
        Arguments after ``synth`` (defaults to ``sys.argv[1:]``).

    Returns
    -------
    int
        Process exit code (0 on success).
    """
    p = argparse.ArgumentParser(
        prog="analysis synth", description="Generate the sample world (four tables + truth.json)."
    )
    p.add_argument(
        "--customers", type=int, default=20000, help="number of customers (default 20000)"
    )
    p.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--format", choices=("parquet", "csv"), default="parquet")
    p.add_argument(
        "--start", default="2023-01-01", help="window start, YYYY-MM-01 (default 2023-01-01)"
    )
    p.add_argument("--months", type=int, default=36, help="window length in months (default 36)")
    p.add_argument("--dirty", action="store_true", help="inject data problems (see truth['dirt'])")
    a = p.parse_args(argv)
    world = generate(a.customers, a.seed, a.start, a.months, dirty=a.dirty)
    paths = write(world, a.out, format=a.format)
    sizes = ", ".join(f"{k} {len(v):,}" for k, v in world.tables.items())
    print(
        f"sample world written to {Path(a.out)} ({a.format}): {sizes}; truth in {paths['truth'].name}"
    )
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
