"""Presets built from the sample world: ``sample``, ``short`` (six months) and ``minimal``."""

from __future__ import annotations

import json

from analysis.data.synth.assemble import _generate
from analysis.data.synth.world import SampleWorld

# the columns the data contract requires (analysis.data.contract), by table
MINIMAL_COLUMNS = {
    "customers": ["customer_id", "signup_date"],
    "transactions": ["customer_id", "date", "amount"],
}


def sample(n: int, seed: int, start: str, months: int, dirty: bool = False) -> SampleWorld:
    """Return the sample world (exactly :func:`analysis.data.synth.generate`)."""
    return _generate(n, seed, start, months, dirty, min_months=12)


def short(n: int, seed: int, start: str, months: int, dirty: bool = False) -> SampleWorld:
    """Return the sample world simulated over a short window (six months by default)."""
    world = _generate(n, seed, start, months, dirty, min_months=6)
    world.truth = {"preset": "short", **world.truth}
    world.truth["window"]["definition"] += (
        "; short preset: the sample world's customers and planted effects observed for a few "
        "months only (customers who signed up before the window are left-truncated as in the "
        "sample world; landmark and sequential-trial truths are empty when the window is "
        "shorter than their lookback plus follow-up of 3 + 6 months)"
    )
    return world


def minimal(n: int, seed: int, start: str, months: int) -> SampleWorld:
    """Return the sample world cut down to the required columns of the two required tables."""
    full = _generate(n, seed, start, months, False, min_months=12)
    tables = {t: full.tables[t][cols].copy() for t, cols in MINIMAL_COLUMNS.items()}
    ft = full.truth
    cust = full.tables["customers"]
    rates = ft["rates"]
    truth = {
        "preset": "minimal",
        "params": ft["params"],
        "window": ft["window"],
        "columns": {
            **MINIMAL_COLUMNS,
            "definition": (
                "only the required columns of customers and transactions; no churn dates, "
                "attributes, margins, channels, loyalty or experience tables"
            ),
        },
        "value": ft["value"],
        "hidden_churn": {
            "churned_share": rates["churned_share"],
            "monthly_churn_rate": rates["monthly_churn_rate"],
            "n_churned": int(cust["churn_date"].notna().sum()),
            "definition": (
                "the sample world's contract ends, removed from the data: customers stop buying "
                "at churn, so inactivity churn (no purchase for inactivity_days) approximates "
                "them; monthly_churn_rate = churn events / customer-months at risk in the window"
            ),
        },
        "rates": {
            k: rates[k]
            for k in (
                "purchases_per_customer_month",
                "transactions_per_customer",
                "revenue_per_customer_month",
                "pre_window_customer_share",
                "customer_months_at_risk",
            )
        },
    }
    return SampleWorld(tables=tables, truth=json.loads(json.dumps(truth)))
