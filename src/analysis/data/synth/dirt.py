"""Injected data problems of a dirty sample world (for validation tests)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.data.synth.world import _rng

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
