"""The ``b2b`` preset: a few hundred accounts on annual contracts with large monthly invoices.

Accounts belong to industries of very different sizes (the ``segment`` column; two
industries always have fewer than 10 accounts) and to a size band (``account_size``).
Contracts renew every 12 months from signup; at each anniversary an account leaves with
an annual non-renewal probability ``q = 1 - (1 - q0)^HR`` (a grouped-time proportional
hazards model: the hazard ratio HR depends on the size band only). Each active month the
account is invoiced a fee that depends on its size, rising 4% a contract year. Half the
accounts signed up before the data window (left truncation: only those still customers at
the window start appear, with invoices from the window start). Tickets and surveys
(touchpoints) have no effect on churn.

Time unit: the calendar month (contracts: years of 12 months). Money in the data's currency.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd

from analysis.data.synth.presets import common as c
from analysis.data.synth.world import SampleWorld

REGIONS = ("north", "south", "east", "west", "central")

B2B: dict = {
    "industry_shares": {
        "manufacturing": 0.40,
        "software": 0.22,
        "healthcare": 0.14,
        "retail": 0.10,
        "finance": 0.07,
        "logistics": 0.04,
        "energy": 0.03,
    },
    "industry_fixed_counts": {"media": 6, "agriculture": 3},
    "size_probs": {"enterprise": 0.2, "mid_market": 0.4, "small_business": 0.4},
    "annual_nonrenewal_reference": 0.15,  # mid_market
    "hazard_ratios": {"account_size[enterprise]": 0.5, "account_size[small_business]": 1.8},
    "monthly_fee_median": {"enterprise": 40000.0, "mid_market": 8000.0, "small_business": 1500.0},
    "fee_log_sd": 0.5,
    "invoice_noise_log_sd": 0.1,
    "annual_price_increase": 0.04,
    "margin_rate": 0.4,
    "margin_rate_noise_sd": 0.05,
    "pre_window_share": 0.5,
    "pre_window_months": 96,
    "region_probs": {"north": 0.22, "south": 0.24, "east": 0.18, "west": 0.2, "central": 0.16},
    "sales_channel_probs": {"direct": 0.7, "partner": 0.3},
    "reason_probs": {
        "budget": 0.3,
        "competitor": 0.25,
        "product_fit": 0.2,
        "acquired": 0.1,
        "other": 0.15,
    },
    "intake": {"trend_per_year": 0.1, "seasonality": 0.2, "peak_month": 1},
    "experience": {
        "touchpoints": ["onboarding", "support", "billing", "account_review", "renewal"],
        "probs_early": [0.5, 0.3, 0.1, 0.1, 0.0],
        "probs_later": [0.02, 0.5, 0.15, 0.2, 0.13],
        "early_periods": 3,
        "ticket_prob": 0.25,
        "ticket_propensity_shape": 2.0,
        "fcr_prob": [0.7, 0.6, 0.7, 0.8, 0.75],
        "response_hours_median": [4.0, 6.0, 10.0, 12.0, 4.0],
        "response_hours_log_sd": 0.8,
        "sla_hours": 8.0,
        "compensation_prob_given_failure": 0.15,
        "survey_prob_after_ticket": 0.2,
        "survey_prob_per_period": 0.08,
    },
}

_SIZES = tuple(B2B["size_probs"])


def nonrenewal_prob() -> np.ndarray:
    """Return the annual non-renewal probability of each size band (in ``_SIZES`` order)."""
    q0 = B2B["annual_nonrenewal_reference"]
    hr = B2B["hazard_ratios"]
    h = np.array([hr.get(f"account_size[{s}]", 1.0) for s in _SIZES])
    return 1 - (1 - q0) ** h


def _draw(g, n, months_lo, months_hi, st0) -> dict:
    P = B2B
    s = c.intake_months(g, n, months_lo, months_hi, st0, **P["intake"])
    signup = c.dates_in_months(g, s, st0)
    size = g.choice(len(_SIZES), n, p=list(P["size_probs"].values()))
    J = g.geometric(nonrenewal_prob()[size]).astype(np.int64)  # anniversary of leaving
    return {"signup": signup, "size": size, "J": J}


def build(n: int, seed: int, start: str, months: int) -> SampleWorld:
    """Simulate the b2b world (see the module docstring)."""
    import pyarrow as pa

    P = B2B
    st0, as_of_ts = c.window(start, months)
    as_of, win_lo = c.day(as_of_ts), c.day(st0)
    g = c.rng(seed, 3, 1)
    n_pre = int(round(P["pre_window_share"] * n))
    new = _draw(g, n - n_pre, 0, months, st0)
    parts, got, rnd = [], 0, 0
    while got < n_pre:
        rnd += 1
        cand = _draw(
            c.rng(seed, 3, 2, rnd), max(4 * (n_pre - got), 200), -P["pre_window_months"], 0, st0
        )
        # only accounts still customers at the window start are in the data
        ok = np.flatnonzero(c.add_months(cand["signup"], 12 * cand["J"]) >= win_lo)[: n_pre - got]
        parts.append({k: v[ok] for k, v in cand.items()})
        got += ok.size
    acc = {k: np.concatenate([p[k] for p in parts] + [new[k]]) for k in new}
    order = np.lexsort((g.random(n), acc["signup"]))
    acc = {k: v[order] for k, v in acc.items()}
    signup, size, J = acc["signup"], acc["size"], acc["J"]
    churn_day = c.add_months(signup, 12 * J)
    churned = churn_day <= as_of

    shares, fixed = P["industry_shares"], P["industry_fixed_counts"]
    counts = c.allocate(n, shares, fixed)
    industry = g.permutation(np.repeat(np.arange(counts.size), counts))
    region = g.choice(len(REGIONS), n, p=list(P["region_probs"].values()))
    chan = g.choice(len(P["sales_channel_probs"]), n, p=list(P["sales_channel_probs"].values()))
    reason = g.choice(len(P["reason_probs"]), n, p=list(P["reason_probs"].values()))
    med = np.array([P["monthly_fee_median"][s] for s in _SIZES])[size]
    fee = med * np.exp(P["fee_log_sd"] * g.standard_normal(n))
    ex = P["experience"]
    shp = ex["ticket_propensity_shape"]
    tprop = g.gamma(shp, 1 / shp, n)
    sat = g.normal(0, 0.8, n)

    ids = c._ids(n)
    id_labels = pa.array(ids)
    customers = pd.DataFrame(
        {
            "customer_id": pd.Series(pd.array(ids, dtype="str")),
            "signup_date": c.dt_us(signup),
            "churn_date": np.where(churned, c.dt_us(churn_day), np.datetime64("NaT", "us")),
            "churn_reason": c._str_col(tuple(P["reason_probs"]), reason, ~churned),
            "segment": c._str_col(tuple(c.levels(shares, fixed)), industry),
            "account_size": c._str_col(_SIZES, size),
            "region": c._str_col(REGIONS, region),
            "sales_channel": c._str_col(tuple(P["sales_channel_probs"]), chan),
        }
    )
    # monthly invoices on the billing day (the signup day of month), inside the window
    last_k = np.where(churned, 12 * J - 1, c.months_between(signup, as_of))
    first_k = np.where(signup >= win_lo, 0, c.months_between(signup, win_lo - 1) + 1)
    cnt = np.maximum(last_k - first_k + 1, 0)
    cix = np.repeat(np.arange(n), cnt)
    k = first_k[cix] + np.arange(cix.size) - np.repeat(np.cumsum(cnt) - cnt, cnt)
    g2 = c.rng(seed, 3, 3)
    amount = np.round(
        fee[cix]
        * (1 + P["annual_price_increase"]) ** (k // 12)
        * np.exp(P["invoice_noise_log_sd"] * g2.standard_normal(cix.size)),
        2,
    )
    rate = np.clip(P["margin_rate"] + g2.normal(0, P["margin_rate_noise_sd"], cix.size), 0.05, 0.8)
    transactions = pd.DataFrame(
        {
            "customer_id": c._id_col(id_labels, cix),
            "date": c.dt_us(c.add_months(signup[cix], k)),
            "amount": amount,
            "margin": np.round(amount * rate, 2),
            "channel": c._str_col(tuple(P["sales_channel_probs"]), chan[cix]),
        }
    )
    end_excl = np.where(churned, churn_day, as_of + 1)
    pc, pk, lo, hi = c.panel(signup, end_excl, win_lo, last_k + 1)
    ev = c.service_events(
        c.rng(seed, 3, 4), cix=pc, lo=lo, hi=hi, k=pk, tprop=tprop, sat=sat, cfg=ex
    )
    experience = c.experience_table(ev, ids, ex["touchpoints"], tickets=True)
    tables = {"customers": customers, "transactions": transactions, "experience": experience}
    truth = _truth(n, seed, st0, as_of_ts, months, tables, signup < win_lo, churned)
    return SampleWorld(tables=tables, truth=truth)


def _truth(n, seed, start, as_of, months, tables, pre, churned) -> dict:
    P = B2B
    q = nonrenewal_prob()
    cust = tables["customers"]
    seg_counts = cust["segment"].value_counts()
    tx = tables["transactions"]
    years = np.arange(0, 11)
    truth = {
        "preset": "b2b",
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
            "definition": "data window [start, as_of], as_of = last day of the last month",
        },
        "survival": {
            "reference_levels": {"account_size": "mid_market"},
            "hazard_ratios": dict(P["hazard_ratios"]),
            "annual_nonrenewal_probability": {s: c.r6(x) for s, x in zip(_SIZES, q, strict=True)},
            "survival_by_contract_years": {
                s: [c.r6(x, 8) for x in (1 - qq) ** years] for s, qq in zip(_SIZES, q, strict=True)
            },
            "log_hazard_ratio_definition": (
                "grouped-time proportional hazards: 1 - q = (1 - q0)^HR, so "
                "log(-log(1 - q)) = log(-log(1 - q0)) + log(HR); a Cox model on tenure in "
                "months (ties at anniversaries) targets these hazard ratios"
            ),
            "definition": (
                "contracts renew every 12 months from signup; an account leaves at its j-th "
                "anniversary (churn_date = signup + 12 j months) with probability q by size "
                "band and never between anniversaries, so survival at t months of tenure is "
                "(1 - q)^floor(t / 12). Industry (segment), region and channel have no effect "
                "on churn. Left truncation: accounts that signed up before the window appear "
                "only if still customers at its start"
            ),
            "median_lifetime_years": {
                s: c.r6(math.log(0.5) / math.log(1 - qq), 3)
                for s, qq in zip(_SIZES, q, strict=True)
            },
        },
        "segments": {
            "column": "segment",
            "counts": {k: int(v) for k, v in seg_counts.items()},
            "below_min_group_size": sorted(k for k, v in seg_counts.items() if v < 10),
            "min_group_size": 10,
            "definition": (
                "accounts per industry (the segment column): the largest industries by share of "
                "accounts, plus media (6 accounts) and agriculture (3 accounts) whatever the world "
                "size; groups below min_group_size must be suppressed in tables but counted in "
                "every total"
            ),
        },
        "invoices": {
            "monthly_fee_median": dict(P["monthly_fee_median"]),
            "fee_log_sd": P["fee_log_sd"],
            "annual_price_increase": P["annual_price_increase"],
            "definition": (
                "one invoice per active month on the billing day: fee_i x (1 + increase)^(contract "
                "year) x lognormal noise (sd 0.1), fee_i = median by size x exp(N(0, fee_log_sd)); "
                "margin = amount x (0.4 + N(0, 0.05))"
            ),
        },
        "experience": {
            "effects_on_churn": "none",
            "definition": "tickets and surveys at touchpoints; no effect on churn (hazard ratio 1)",
        },
        "rates": {
            "pre_window_share": c.r6(pre.mean()),
            "churned_share": c.r6(churned.mean()),
            "invoices": int(len(tx)),
            "median_invoice": c.r6(float(tx["amount"].median()), 2),
            "revenue": c.r6(float(tx["amount"].sum()), 2),
            "definition": "observed in the generated data",
        },
    }
    return json.loads(json.dumps(truth))
