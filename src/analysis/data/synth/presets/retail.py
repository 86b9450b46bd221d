"""The ``retail`` preset: non-contractual buying (BG/NBD) with Gamma-Gamma spend.

A customer's signup is their first purchase. Afterwards, while "alive", they buy as a
Poisson process with rate ``lambda_i ~ Gamma(shape r, rate alpha)`` per week; after each
repeat purchase they drop out for good with probability ``p_i ~ Beta(a, b)`` (the BG/NBD
model of Fader, Hardie & Lee 2005, "Counting your customers the easy way", Marketing
Science 24(2), 275-284). Each purchase amount is ``Gamma(shape p, rate nu_i)`` with
``nu_i ~ Gamma(shape q, rate gamma)`` (the Gamma-Gamma spend model, Fader, Hardie & Lee
2005, "RFM and CLV", J. Marketing Research 42(4), 415-430): heavy-tailed average spend.
There are no churn dates (dropout is never observed) and no tickets. The loyalty
programme and the surveys have no effect on buying.

Time unit of the planted rates: the week (per day and per month also recorded).
Money in the data's currency.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
from scipy import special

from analysis.data.synth.presets import common as c
from analysis.data.synth.world import SampleWorld

REGIONS = ("north", "south", "east", "west", "central")
PROGRAMME_TIERS = ("bronze", "silver", "gold")

RETAIL: dict = {
    "bgnbd": {"r": 0.22, "alpha_per_week": 7.0, "a": 0.8, "b": 2.6},
    "gamma_gamma": {"p": 3.0, "q": 2.8, "gamma": 55.0},
    "segment_probs": {"store": 0.55, "online": 0.45},
    "home_channel_share": 0.85,  # a purchase goes through the customer's home channel
    "region_probs": {"north": 0.22, "south": 0.24, "east": 0.18, "west": 0.2, "central": 0.16},
    "margin_rate": 0.35,
    "margin_rate_noise_sd": 0.05,
    "intake": {"trend_per_year": 0.1, "seasonality": 0.3, "peak_month": 12},
    "loyalty": {
        "enrol_prob_at_first_purchase": 0.1,
        "enrol_prob_at_repeat_purchase": 0.2,
        "leave_mean_months": 30.0,
        "tier_rule": "at enrolment, spend so far: gold if >= 500, silver if >= 150, else bronze",
        "points_per_currency_unit": 1.0,
    },
    "experience": {
        "touchpoints": ["store", "online", "delivery"],
        "probs_early": [0.45, 0.35, 0.2],
        "probs_later": [0.45, 0.35, 0.2],
        "early_periods": 0,
        "ticket_prob": 0.0,
        "ticket_propensity_shape": 2.0,
        "fcr_prob": [0.7, 0.7, 0.7],
        "response_hours_median": [8.0, 8.0, 8.0],
        "response_hours_log_sd": 0.9,
        "sla_hours": 24.0,
        "compensation_prob_given_failure": 0.0,
        "survey_prob_after_ticket": 0.0,
        "survey_prob_per_period": 0.1,  # per purchase: a survey answer within a week after it
    },
}


def expected_repeat(r: float, alpha: float, a: float, b: float, t: np.ndarray) -> np.ndarray:
    """Return the BG/NBD E[X(t)], expected repeat purchases in ``t`` weeks (FHL 2005, eq. 9)."""
    t = np.asarray(t, float)
    h = special.hyp2f1(r, b, a + b - 1, t / (alpha + t))
    return (a + b - 1) / (a - 1) * (1 - (alpha / (alpha + t)) ** r * h)


def _purchases(g, lam, pdrop, T):
    """Simulate BG/NBD repeat purchases before ``T`` weeks after the first purchase.

    Returns (customer index, weeks after the first purchase) of each repeat purchase and
    whether each customer has dropped out by ``T`` (hidden truth).
    """
    n = lam.size
    t = np.zeros(n)
    dropped = np.zeros(n, bool)
    idx = np.arange(n)
    out_c, out_t = [], []
    while idx.size:
        t[idx] += g.exponential(1.0, idx.size) / lam[idx]
        idx = idx[t[idx] < T[idx]]
        out_c.append(idx)
        out_t.append(t[idx])
        # after a repeat purchase the customer drops out with probability p_i
        drop = g.random(idx.size) < pdrop[idx]
        dropped[idx[drop]] = True
        idx = idx[~drop]
    return np.concatenate(out_c), np.concatenate(out_t), dropped


def build(n: int, seed: int, start: str, months: int) -> SampleWorld:
    """Simulate the retail world (see the module docstring)."""
    import pyarrow as pa

    P = RETAIL
    st0, as_of_ts = c.window(start, months)
    as_of = c.day(as_of_ts)
    g = c.rng(seed, 2, 1)
    s = c.intake_months(g, n, 0, months, st0, **P["intake"])
    signup = np.sort(c.dates_in_months(g, s, st0))
    T_days = (as_of + 1 - signup).astype(np.int64)
    T = T_days / c.DAYS_PER_WEEK
    bg, gg = P["bgnbd"], P["gamma_gamma"]
    lam = g.gamma(bg["r"], 1 / bg["alpha_per_week"], n)
    pdrop = g.beta(bg["a"], bg["b"], n)
    nu = g.gamma(gg["q"], 1 / gg["gamma"], n)
    seg = g.choice(2, n, p=list(P["segment_probs"].values()))
    region = g.choice(len(REGIONS), n, p=list(P["region_probs"].values()))
    sat = g.normal(0, 0.8, n)

    rc, rt, dropped = _purchases(c.rng(seed, 2, 2), lam, pdrop, T)
    g2 = c.rng(seed, 2, 3)
    cix = np.concatenate([np.arange(n), rc])
    wk = np.concatenate([np.zeros(n), rt])
    date = signup[cix] + np.floor(wk * c.DAYS_PER_WEEK).astype(np.int64)
    amount = np.maximum(np.round(g2.gamma(gg["p"], 1.0, cix.size) / nu[cix], 2), 0.01)
    order = np.lexsort((amount, wk, cix))
    cix, wk, date, amount = cix[order], wk[order], date[order], amount[order]
    rate = np.clip(P["margin_rate"] + g2.normal(0, P["margin_rate_noise_sd"], cix.size), 0.05, 0.8)
    home = g2.random(cix.size) < P["home_channel_share"]
    chan = np.where(home, seg[cix], 1 - seg[cix])
    ids = c._ids(n)
    id_labels = pa.array(ids)
    customers = pd.DataFrame(
        {
            "customer_id": pd.Series(pd.array(ids, dtype="str")),
            "signup_date": c.dt_us(signup),
            "churn_date": np.full(n, np.datetime64("NaT"), "datetime64[us]"),
            "segment": c._str_col(tuple(P["segment_probs"]), seg),
            "region": c._str_col(REGIONS, region),
        }
    )
    transactions = pd.DataFrame(
        {
            "customer_id": c._id_col(id_labels, cix),
            "date": c.dt_us(date),
            "amount": amount,
            "margin": np.round(amount * rate, 2),
            "channel": c._str_col(tuple(P["segment_probs"]), chan),
        }
    )
    loyalty = _loyalty(c.rng(seed, 2, 4), ids, cix, date, amount, as_of)
    # surveys: one chance per purchase, answered within a week after it
    k = np.arange(cix.size) - np.searchsorted(cix, cix)
    ex = P["experience"]
    ev = c.service_events(
        c.rng(seed, 2, 5),
        cix=cix,
        lo=date,
        hi=np.minimum(date + 7, as_of + 1),
        k=k,
        tprop=np.ones(n),
        sat=sat,
        cfg=ex,
    )
    experience = c.experience_table(ev, ids, ex["touchpoints"], tickets=False)
    tables = {
        "customers": customers,
        "transactions": transactions,
        "loyalty": loyalty,
        "experience": experience,
    }
    n_rep = np.bincount(rc, minlength=n)
    truth = _truth(n, seed, st0, as_of_ts, months, T, n_rep, ~dropped, tables)
    return SampleWorld(tables=tables, truth=truth)


def _loyalty(g, ids, cix, date, amount, as_of) -> pd.DataFrame:
    """Enrol at purchases (first or repeat) with fixed probabilities; no effect on buying."""
    L = RETAIL["loyalty"]
    first = np.r_[True, cix[1:] != cix[:-1]]
    prob = np.where(first, L["enrol_prob_at_first_purchase"], L["enrol_prob_at_repeat_purchase"])
    hit = g.random(cix.size) < prob
    rows = np.flatnonzero(hit)
    # the first hit of each customer is the enrolment
    rows = rows[np.r_[True, cix[rows][1:] != cix[rows][:-1]]] if rows.size else rows
    mem = cix[rows]
    e_date = date[rows]
    cum = np.cumsum(amount)
    start_of = np.searchsorted(cix, cix)  # first row of each purchase's customer
    spend_so_far = cum[rows] - np.where(start_of[rows] > 0, cum[start_of[rows] - 1], 0.0)
    tier = np.where(spend_so_far >= 500, 2, np.where(spend_so_far >= 150, 1, 0))
    leave_days = np.floor(g.exponential(L["leave_mean_months"] * c.DAYS_PER_MONTH, mem.size))
    l_date = e_date + 1 + leave_days.astype(np.int64)
    left = l_date <= as_of
    # points: purchases on or after enrolment and before leaving
    n = ids.size
    ed = np.full(n, np.datetime64("NaT"), "datetime64[D]")
    ld = np.full(n, np.datetime64("NaT"), "datetime64[D]")
    ed[mem] = e_date
    ld[mem[left]] = l_date[left]
    in_prog = ~np.isnat(ed[cix]) & (date >= ed[cix]) & (np.isnat(ld[cix]) | (date < ld[cix]))
    pts = np.floor(
        np.bincount(cix[in_prog], weights=amount[in_prog], minlength=n)
        * L["points_per_currency_unit"]
    )[mem]
    red = np.floor(pts * g.beta(2, 3, mem.size))
    return pd.DataFrame(
        {
            "customer_id": pd.Series(pd.array(ids[mem], dtype="str")),
            "enrolled_date": c.dt_us(e_date),
            "tier": c._str_col(PROGRAMME_TIERS, tier),
            "left_date": np.where(left, c.dt_us(l_date), np.datetime64("NaT", "us")),
            "points_earned": pts.astype(np.float64),
            "points_redeemed": red.astype(np.float64),
        }
    )


def _truth(n, seed, start, as_of, months, T, n_rep, alive, tables) -> dict:
    P = RETAIL
    bg, gg = P["bgnbd"], P["gamma_gamma"]
    r, al, a, b = bg["r"], bg["alpha_per_week"], bg["a"], bg["b"]
    p0 = (al / (al + T)) ** r  # P(no repeat purchase in T weeks)
    ex_rep = expected_repeat(r, al, a, b, T)
    lo = tables["loyalty"]
    ex = tables["experience"]
    tx = tables["transactions"]
    truth = {
        "preset": "retail",
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
                "data window [start, as_of]; every customer's first purchase (= signup_date) "
                "is inside the window, so the data hold whole purchase histories"
            ),
        },
        "bgnbd": {
            "r": r,
            "alpha": al,
            "alpha_per_week": al,
            "alpha_per_day": c.r6(al * c.DAYS_PER_WEEK),
            "alpha_per_month": c.r6(al * c.DAYS_PER_MONTH / c.DAYS_PER_WEEK),
            "a": a,
            "b": b,
            "definition": (
                "BG/NBD (Fader, Hardie & Lee 2005): after the first purchase (signup_date, time "
                "0) a customer buys as a Poisson process with rate lambda ~ Gamma(shape r, rate "
                "alpha) per week while alive, and drops out after each repeat purchase with "
                "probability p ~ Beta(a, b). alpha scales inversely with the time unit "
                "(alpha_per_day = 7 alpha). A purchase at t weeks is dated signup_date + "
                "floor(7 t) days; T = (as_of - signup_date + 1 day) / 7 weeks"
            ),
        },
        "gamma_gamma": {
            "p": gg["p"],
            "q": gg["q"],
            "gamma": gg["gamma"],
            "mean_amount": c.r6(gg["p"] * gg["gamma"] / (gg["q"] - 1)),
            "definition": (
                "every purchase amount (first and repeat) ~ Gamma(shape p, rate nu_i), nu_i ~ "
                "Gamma(shape q, rate gamma), independent of the purchase process; mean amount "
                "= p gamma / (q - 1); amounts rounded to cents"
            ),
        },
        "one_time_buyers": {
            "share_observed": c.r6((n_rep == 0).mean()),
            "share_expected": c.r6(p0.mean()),
            "share_expected_se": c.r6(np.sqrt((p0 * (1 - p0)).sum()) / n),
            "definition": (
                "share of customers with no repeat purchase by as_of (exactly one transaction). "
                "Expected: mean over customers of (alpha / (alpha + T_i))^r, the BG/NBD "
                "probability of no purchase in T_i weeks (no dropout before the first repeat "
                "purchase); se: its binomial sampling standard error given the T_i"
            ),
        },
        "repeat_purchases": {
            "mean_observed": c.r6(n_rep.mean()),
            "mean_expected": c.r6(ex_rep.mean()),
            "definition": (
                "repeat purchases per customer by as_of; expected: mean of the BG/NBD E[X(T_i)] "
                "(Fader, Hardie & Lee 2005, eq. 9)"
            ),
        },
        "alive": {
            "share_alive_at_as_of": c.r6(alive.mean()),
            "definition": (
                "share of customers not yet dropped out at as_of (hidden in the data; the "
                "average P(alive) of a well-fitted BG/NBD should be near it)"
            ),
        },
        "loyalty": {
            "purchase_rate_effect": 1.0,
            "spend_lift": 1.0,
            "dropout_effect": 1.0,
            "enrolment_model": P["loyalty"],
            "definition": (
                "the programme has no effect on buying, spending or dropout (all effects 1). "
                "Customers enrol at a purchase (first or repeat) with a fixed probability, so "
                "frequent buyers are more often members: a naive member / non-member contrast "
                "shows a difference that is selection only; a comparison adjusted for purchase "
                "history before enrolment targets zero"
            ),
        },
        "experience": {
            "effects": "none",
            "definition": (
                "surveys only (no tickets, no ticket columns): each purchase has a "
                f"{P['experience']['survey_prob_per_period']:.0%} chance of a survey answer "
                "in the week after it; scores come from a latent satisfaction independent of "
                "buying"
            ),
        },
        "rates": {
            "transactions": int(len(tx)),
            "transactions_per_customer": c.r6(len(tx) / n),
            "revenue": c.r6(float(tx["amount"].sum()), 2),
            "members": int(len(lo)),
            "member_share": c.r6(len(lo) / n),
            "surveys": int(len(ex)),
            "definition": "observed in the generated data",
        },
    }
    return json.loads(json.dumps(truth))
