"""The ``subscription`` preset: monthly billing with shifted-beta-geometric churn.

Each subscriber pays a fixed monthly price (by plan) at signup and on each monthly
anniversary while subscribed. At every anniversary (a renewal opportunity) a subscriber
with churn probability ``p_i`` leaves with probability ``p_i``; ``p_i ~ Beta(gamma, delta)``
across subscribers and never changes. This is the shifted-beta-geometric (sBG) model of
Fader & Hardie (2007), "How to project customer retention", J. Interactive Marketing
21(1), 76-90, so the planted gamma, delta, retention curve and residual value can be
recovered from the data. Nothing else (plan, segment, tickets, surveys) affects churn.

Time unit: the renewal period of one calendar month. Money in the data's currency.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
from scipy import special

from analysis.data.synth.presets import common as c
from analysis.data.synth.world import SampleWorld

REGIONS = ("north", "south", "east", "west", "central")

SUBSCRIPTION: dict = {
    "sbg": {"gamma": 1.3, "delta": 14.0},
    "plans": {
        "basic": {"share": 0.5, "price": 12.0, "margin": 8.4},
        "standard": {"share": 0.35, "price": 25.0, "margin": 18.75},
        "premium": {"share": 0.15, "price": 45.0, "margin": 36.0},
    },
    "segment_probs": {"consumer": 0.8, "business": 0.2},
    "region_probs": {"north": 0.22, "south": 0.24, "east": 0.18, "west": 0.2, "central": 0.16},
    "channel_probs": {"web": 0.55, "app": 0.3, "partner": 0.15},
    "payment_probs": {"card": 0.6, "direct_debit": 0.3, "paypal": 0.1},
    "reason_probs": {
        "price": 0.3,
        "not_using": 0.3,
        "competitor": 0.15,
        "payment_failed": 0.15,
        "other": 0.1,
    },
    "churn_reason_missing_share": 0.05,
    "intake": {"trend_per_year": 0.2, "seasonality": 0.2, "peak_month": 1},
    "discount_rate_annual": 0.10,
    "experience": {
        "touchpoints": ["onboarding", "billing", "technical", "account"],
        "probs_early": [0.4, 0.25, 0.25, 0.1],
        "probs_later": [0.05, 0.35, 0.4, 0.2],
        "early_periods": 2,
        "ticket_prob": 0.06,
        "ticket_propensity_shape": 2.0,
        "fcr_prob": [0.75, 0.65, 0.6, 0.7],
        "response_hours_median": [6.0, 10.0, 12.0, 8.0],
        "response_hours_log_sd": 0.9,
        "sla_hours": 24.0,
        "compensation_prob_given_failure": 0.25,
        "survey_prob_after_ticket": 0.3,
        "survey_prob_per_period": 0.03,
    },
}


def survival(gamma: float, delta: float, t) -> np.ndarray:
    """Return the sBG survival S(t) = B(gamma, delta + t) / B(gamma, delta)."""
    t = np.asarray(t, float)
    return np.exp(special.betaln(gamma, delta + t) - special.betaln(gamma, delta))


def derl(gamma: float, delta: float, m: np.ndarray, d: float, terms: int = 20_000) -> np.ndarray:
    """Return the discounted expected residual lifetime of active subscribers with ``m`` renewals.

    ``sum_{j >= 0} S(m + 1 + j) / S(m) / (1 + d)^j`` (Fader & Hardie 2010, eq. 6), summed
    term by term: the next payment (renewal m + 1) counts undiscounted. ``d = 0`` gives
    the undiscounted residual lifetime ``(delta + m) / (gamma - 1)`` (gamma > 1).
    """
    m = np.atleast_1d(np.asarray(m, float))
    if d == 0:
        return (delta + m) / (gamma - 1.0)
    j = np.arange(terms, dtype=float)
    out = np.empty(m.size)
    for i, mm in enumerate(m):
        log_ratio = special.betaln(gamma, delta + mm + 1 + j) - special.betaln(gamma, delta + mm)
        out[i] = float(np.exp(log_ratio - j * np.log1p(d)).sum())
    return out


def build(n: int, seed: int, start: str, months: int) -> SampleWorld:
    """Simulate the subscription world (see the module docstring)."""
    P = SUBSCRIPTION
    st0, as_of_ts = c.window(start, months)
    as_of = c.day(as_of_ts)
    g = c.rng(seed, 1, 1)
    s = c.intake_months(g, n, 0, months, st0, **P["intake"])
    signup = np.sort(c.dates_in_months(g, s, st0))
    gam, dlt = P["sbg"]["gamma"], P["sbg"]["delta"]
    p = g.beta(gam, dlt, n)
    T = g.geometric(p).astype(np.int64)  # payments made over the whole lifetime (>= 1)
    opp = c.months_between(signup, as_of)  # renewal opportunities on or before as_of
    churned = T <= opp
    churn_day = c.add_months(signup, np.where(churned, T, 0))
    n_charges = np.where(churned, T, opp + 1)

    plans = list(P["plans"])
    plan = g.choice(len(plans), n, p=[P["plans"][k]["share"] for k in plans])
    price = np.array([P["plans"][k]["price"] for k in plans])[plan]
    margin = np.array([P["plans"][k]["margin"] for k in plans])[plan]
    seg = g.choice(2, n, p=list(P["segment_probs"].values()))
    region = g.choice(len(REGIONS), n, p=list(P["region_probs"].values()))
    chan = g.choice(len(P["channel_probs"]), n, p=list(P["channel_probs"].values()))
    pay = g.choice(len(P["payment_probs"]), n, p=list(P["payment_probs"].values()))
    reason = g.choice(len(P["reason_probs"]), n, p=list(P["reason_probs"].values()))
    rmiss = ~churned | (g.random(n) < P["churn_reason_missing_share"])
    ex = P["experience"]
    shp = ex["ticket_propensity_shape"]
    tprop = g.gamma(shp, 1 / shp, n)
    sat = g.normal(0, 0.8, n)

    ids = c._ids(n)
    customers = pd.DataFrame(
        {
            "customer_id": pd.Series(pd.array(ids, dtype="str")),
            "signup_date": c.dt_us(signup),
            "churn_date": np.where(churned, c.dt_us(churn_day), np.datetime64("NaT", "us")),
            "churn_reason": c._str_col(tuple(P["reason_probs"]), reason, rmiss),
            "segment": c._str_col(tuple(P["segment_probs"]), seg),
            "plan": c._str_col(tuple(plans), plan),
            "region": c._str_col(REGIONS, region),
            "channel": c._str_col(tuple(P["channel_probs"]), chan),
        }
    )
    import pyarrow as pa

    cix = np.repeat(np.arange(n), n_charges)
    k = np.arange(cix.size) - np.repeat(np.cumsum(n_charges) - n_charges, n_charges)
    transactions = pd.DataFrame(
        {
            "customer_id": c._id_col(pa.array(ids), cix),
            "date": c.dt_us(c.add_months(signup[cix], k)),
            "amount": price[cix],
            "margin": margin[cix],
            "channel": c._str_col(tuple(P["payment_probs"]), pay[cix]),
        }
    )
    end_excl = np.where(churned, churn_day, as_of + 1)
    pc, pk, lo, hi = c.panel(signup, end_excl, c.day(st0), n_charges)
    ev = c.service_events(
        c.rng(seed, 1, 2), cix=pc, lo=lo, hi=hi, k=pk, tprop=tprop, sat=sat, cfg=ex
    )
    experience = c.experience_table(ev, ids, ex["touchpoints"], tickets=True)
    tables = {"customers": customers, "transactions": transactions, "experience": experience}
    truth = _truth(
        n=n,
        seed=seed,
        start=st0,
        as_of=as_of_ts,
        months=months,
        p=p,
        T=T,
        opp=opp,
        churned=churned,
        price=price,
        margin=margin,
        tables=tables,
    )
    return SampleWorld(tables=tables, truth=truth)


def _truth(*, n, seed, start, as_of, months, p, T, opp, churned, price, margin, tables) -> dict:
    P = SUBSCRIPTION
    gam, dlt = P["sbg"]["gamma"], P["sbg"]["delta"]
    t = np.arange(months + 1)
    S = survival(gam, dlt, t)
    d_annual = P["discount_rate_annual"]
    d = (1 + d_annual) ** (1 / 12) - 1
    act = ~churned
    m = opp[act]
    ms, inv = np.unique(m, return_inverse=True)
    derl_m = derl(gam, dlt, ms, d)[inv]
    erl_m = derl(gam, dlt, ms, 0.0)[inv]
    pa_, Ta = p[act], T[act]
    derl_p = (1 - pa_) * (1 + d) / (d + pa_)
    future = Ta - m - 1  # payments still to come (known to the simulator only)
    derl_real = np.where(future > 0, (1 - (1 + d) ** -future.astype(float)) * (1 + d) / d, 0.0)
    hist = {str(int(v)): int(cnt) for v, cnt in zip(*np.unique(m, return_counts=True), strict=True)}
    mhist = {str(int(v)): c.r6(margin[act][m == v].sum(), 2) for v in ms}
    cm = int((np.minimum(T, opp + 1)).sum())  # customer-months paid in the window
    tx = tables["transactions"]

    def totals(values):
        return {
            "clv_margin_total": c.r6((margin[act] * values).sum(), 2),
            "clv_revenue_total": c.r6((price[act] * values).sum(), 2),
            "residual_lifetime_total": c.r6(values.sum(), 3),
            "residual_lifetime_mean": c.r6(values.mean()) if values.size else None,
            "clv_margin_mean": c.r6((margin[act] * values).mean(), 4) if values.size else None,
        }

    truth = {
        "preset": "subscription",
        "params": {
            "n_customers": n,
            "seed": int(seed),
            "start": start.strftime("%Y-%m-%d"),
            "months": int(months),
            "world": P,
        },
        "window": {
            "start": start.strftime("%Y-%m-%d"),
            "as_of": as_of.strftime("%Y-%m-%d"),
            "definition": (
                "data window [start, as_of], as_of = last day of the last month; every "
                "subscriber signed up inside the window (no left truncation), so the data "
                "hold each subscriber's whole history"
            ),
        },
        "sbg": {
            "gamma": gam,
            "delta": dlt,
            "mean_churn_probability": c.r6(gam / (gam + dlt)),
            "definition": (
                "shifted-beta-geometric (Fader & Hardie 2007): subscriber i leaves at each "
                "monthly renewal opportunity with probability p_i ~ Beta(gamma, delta) (FH "
                "alpha = gamma, beta = delta); lifetime in paid months T_i ~ Geometric(p_i), "
                "P(T = t) = p (1 - p)^(t - 1). Per subscriber: renewals made = charges - 1; "
                "churned = churn_date present (the renewal date not taken, signup + T months)"
            ),
        },
        "retention_curve": {
            "periods": t.tolist(),
            "survival": [c.r6(x, 8) for x in S],
            "retention_rate": [c.r6((dlt + x - 1) / (gam + dlt + x - 1), 8) for x in t[1:]],
            "churn_probability_at_renewal": [c.r6(gam / (gam + dlt + x - 1), 8) for x in t[1:]],
            "definition": (
                "expected share of a new cohort still subscribed after t monthly renewal "
                "opportunities, S(t) = B(gamma, delta + t) / B(gamma, delta); equals the "
                "survival at t months of tenure (churn dates fall on monthly anniversaries). "
                "retention_rate[t-1] = r(t) = (delta + t - 1) / (gamma + delta + t - 1) for "
                "t = 1..months; churn_probability_at_renewal = 1 - r(t), the discrete churn hazard"
            ),
        },
        "plans": {
            k: {"price": v["price"], "margin": v["margin"], "share": v["share"]}
            for k, v in P["plans"].items()
        },
        "plans_definition": (
            "fixed monthly price and margin (currency per month) of each plan, charged at signup "
            "and at every monthly anniversary while subscribed; share = probability of the plan "
            "at signup; the plan does not affect churn"
        ),
        "clv": {
            "as_of": as_of.strftime("%Y-%m-%d"),
            "discount_rate_annual": d_annual,
            "discount_rate_per_month": c.r6(d, 10),
            "n_active": int(act.sum()),
            "active_by_renewals": hist,
            "active_margin_by_renewals": mhist,
            "mean_renewals_active": c.r6(m.mean()) if m.size else None,
            "expected_residual_lifetime_total": c.r6(erl_m.sum(), 3),
            "model": totals(derl_m),
            "given_true_p": totals(derl_p),
            "realised": totals(derl_real),
            "definition": (
                "value of the subscribers active at as_of, valued just before each one's next "
                "renewal decision (the next payment undiscounted), monthly discount rate d = "
                "(1 + discount_rate_annual)^(1/12) - 1. model: with the planted gamma, delta, "
                "each active subscriber who has made m renewals has discounted expected residual "
                "lifetime DERL(d | m) = sum_{j>=0} S(m+1+j) / S(m) / (1+d)^j (Fader & Hardie "
                "2010, eq. 6), the target of an sBG estimate; clv_margin_total = sum of plan "
                "margin x DERL, clv_revenue_total = sum of price x DERL, residual_lifetime_* the "
                "DERL sums and mean. given_true_p: the same with each subscriber's own p_i, "
                "(1 - p)(1 + d) / (d + p). realised: the discounted payments each will really "
                "make after as_of (hidden lifetimes). expected_residual_lifetime_total: "
                "undiscounted, sum of (delta + m) / (gamma - 1). active_by_renewals: active "
                "subscribers by renewals made (m = charges - 1); active_margin_by_renewals: "
                "their summed monthly margin, so the total can be recomputed for any discount rate"
            ),
        },
        "survival": {
            "hazard_ratios": {},
            "definition": (
                "no attribute (plan, segment, region, channel) and no service event (ticket, "
                "survey answer) affects churn: every hazard ratio is 1. The population churn "
                "hazard falls with tenure (1 - r(t)) only because subscribers with a high p_i "
                "leave first"
            ),
        },
        "experience": {
            "effects_on_churn": "none",
            "definition": (
                "tickets (monthly probability ticket_prob x propensity ~ Gamma(2, 2), x 1.5 in "
                "the first 2 months) and survey answers are independent of churn; their hazard "
                "ratios are 1"
            ),
        },
        "rates": {
            "churned_share": c.r6(churned.mean()),
            "monthly_churn_rate": c.r6(churned.sum() / max(cm, 1)),
            "charges": int(len(tx)),
            "revenue": c.r6(float(tx["amount"].sum()), 2),
            "customer_months_paid": cm,
            "tickets": int((tables["experience"]["kind"] == "ticket").sum()),
            "surveys": int((tables["experience"]["kind"] == "survey").sum()),
            "definition": (
                "observed in the generated data: churned share of subscribers, churn events / "
                "paid customer-months (= charges), total charges and revenue"
            ),
        },
    }
    return json.loads(json.dumps(truth))
