"""Planted parameters of the sample world, the :class:`SampleWorld` result, small helpers.

Time units: the simulation step is one calendar month; tenure is counted in whole
calendar months since the signup month. Money is in the data's currency.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

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
    params_yaml : str or None
        A ready-to-run params file for this world (``params.yaml`` beside the tables,
        written by :func:`~analysis.data.synth.write`); set by the presets
        (:func:`~analysis.data.synth.generate_preset`), None for :func:`generate`.
    """

    tables: dict[str, pd.DataFrame]
    truth: dict = field(default_factory=dict)
    sequential_effects: pd.DataFrame | None = None
    params_yaml: str | None = None


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
