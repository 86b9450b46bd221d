"""Frequency weights in the survival estimators: rows that stand for several customers
(counts per tenure, entry and group, as the engine builds them) give exactly the results
of one row per customer, which the unweighted estimators compute (checked there against R).
"""

import numpy as np
import pandas as pd
import pytest

from analysis.errors import DataError
from analysis.stats.competing_risks import cumulative_incidence
from analysis.stats.hazard import hazard_over_tenure
from analysis.stats.survival import (
    at_risk_table,
    kaplan_meier,
    logrank,
    median_survival,
    rmst,
    survival_at,
)

KEYS = ["duration", "event", "entry", "segment", "reason"]


def _customers(seed: int, n: int = 3000, late_entry: bool = True) -> pd.DataFrame:
    """One row per customer, tenures on a coarse grid so that many customers share a row."""
    rng = np.random.default_rng(seed)
    seg = rng.choice(["a", "b", "c"], n, p=[0.5, 0.3, 0.2])
    scale = np.where(seg == "a", 14.0, np.where(seg == "b", 10.0, 20.0))
    life = np.round(rng.exponential(scale), 0)
    entry = np.where(rng.random(n) < 0.3, np.round(rng.uniform(0, 12, n), 0), 0.0)
    if not late_entry:
        entry[:] = 0.0
    cens = entry + np.round(rng.uniform(0, 30, n), 0)
    dur = np.minimum(np.maximum(life, entry), cens)
    event = (life <= cens) & (life >= entry)
    dur = np.where(event, life, np.maximum(dur, entry + 1))
    reason = np.where(event, rng.choice(["price", "service", None], n), None)
    return pd.DataFrame(
        {
            "duration": dur,
            "event": event.astype(int),
            "entry": entry,
            "segment": seg,
            "reason": pd.array(reason, dtype="object"),
        }
    )


def _counts(rows: pd.DataFrame) -> pd.DataFrame:
    """The customers collapsed to distinct rows with their number (``customers``), shuffled."""
    out = (
        rows.fillna({"reason": "(none)"})
        .groupby(KEYS, dropna=False)
        .size()
        .rename("customers")
        .reset_index()
    )
    out["reason"] = out["reason"].where(out["reason"] != "(none)", None)
    return out.sample(frac=1.0, random_state=1).reset_index(drop=True)


@pytest.fixture(params=[0, 1, 2], ids=["seed0", "seed1", "seed2"])
def data(request):
    rows = _customers(request.param, late_entry=request.param != 2)
    counts = _counts(rows)
    assert len(counts) < len(rows) / 3  # the counts are much smaller than the customers
    assert counts["customers"].sum() == len(rows)
    return rows, counts


def _eq(a: pd.DataFrame, b: pd.DataFrame):
    pd.testing.assert_frame_equal(
        a.reset_index(drop=True), b.reset_index(drop=True), check_dtype=False, rtol=1e-10
    )


COMMON = {"duration": "duration", "event": "event", "entry": "entry"}


@pytest.mark.parametrize("group", [None, "segment"])
def test_curves_medians_and_shares_from_counts_equal_those_from_customers(data, group):
    rows, counts = data
    w = {"weights": "customers"}
    _eq(kaplan_meier(counts, group=group, **COMMON, **w), kaplan_meier(rows, group=group, **COMMON))
    _eq(
        median_survival(counts, group=group, **COMMON, **w),
        median_survival(rows, group=group, **COMMON),
    )
    times = [0.0, 3.0, 6.0, 12.0, 24.0]
    _eq(
        survival_at(counts, times=times, group=group, **COMMON, **w),
        survival_at(rows, times=times, group=group, **COMMON),
    )
    _eq(
        at_risk_table(counts, duration="duration", entry="entry", group=group, times=times, **w),
        at_risk_table(rows, duration="duration", entry="entry", group=group, times=times),
    )
    _eq(
        rmst(counts, horizon=12.0, group=group, **COMMON, **w),
        rmst(rows, horizon=12.0, group=group, **COMMON),
    )
    _eq(
        hazard_over_tenure(counts, group=group, max_time=24.0, **COMMON, **w),
        hazard_over_tenure(rows, group=group, max_time=24.0, **COMMON),
    )
    _eq(
        cumulative_incidence(counts, cause="reason", group=group, **COMMON, **w),
        cumulative_incidence(rows, cause="reason", group=group, **COMMON),
    )


def test_logrank_from_counts_equals_statsmodels_survdiff_on_customers(data):
    """The weighted log-rank is a second implementation: statsmodels' survdiff runs on
    the customers, the weighted counts on the rows."""
    rows, counts = data
    want = logrank(rows, group="segment", **COMMON)
    got = logrank(counts, group="segment", weights="customers", **COMMON)
    assert got.statistic == pytest.approx(want.statistic, rel=1e-9)
    assert got.p_value == pytest.approx(want.p_value, rel=1e-9, abs=1e-300)
    _eq(got.table, want.table)
    _eq(got.pairwise, want.pairwise)
    assert want.statistic > 1  # the groups differ: a real test, not two zeros


def test_bad_weights_are_named_with_their_count():
    rows = _counts(_customers(0, n=300))
    rows["customers"] = rows["customers"].astype(float)
    rows.loc[:2, "customers"] = [-1, 0.5, np.nan]
    with pytest.raises(DataError) as err:
        kaplan_meier(rows, weights="customers", **COMMON)
    (p,) = [p for p in err.value.problems if p.column == "customers"]
    assert p.rule == "bad_weight" and p.n_rows == 3
