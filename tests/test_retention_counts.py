"""The retention study from rows of counts built on the engine equals the study from one
row per customer, under both churn definitions, with and without the model sample.

The per-customer study is the reference (its estimators are checked against R in
tests/test_survival.py); the counts come from ``StudyData.lifetime_counts`` (an engine
group-by), the Cox rows from ``StudyData.model_lifetimes``.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from analysis.stats.cox import CoxResult
from analysis.stats.survival import LogrankResult
from analysis.studies import retention
from analysis.studies.sections import Skipped


def _same(a, b, where: str):
    if isinstance(a, pd.DataFrame):
        pd.testing.assert_frame_equal(
            a.reset_index(drop=True),
            b.reset_index(drop=True),
            check_dtype=False,
            rtol=1e-9,
            obj=where,
        )
    elif isinstance(a, LogrankResult):
        assert a.statistic == pytest.approx(b.statistic, rel=1e-9), where
        assert a.p_value == pytest.approx(b.p_value, rel=1e-8, abs=1e-300), where
        _same(a.table, b.table, where + ".table")
        _same(a.pairwise, b.pairwise, where + ".pairwise")
    elif isinstance(a, CoxResult):
        _same(a.summary, b.summary, where + ".summary")
        assert (a.n, a.n_events) == (b.n, b.n_events), where
    elif isinstance(a, Skipped):
        assert isinstance(b, Skipped) and a.section == b.section, where
    elif dataclasses.is_dataclass(a):
        for f in dataclasses.fields(a):
            _same(getattr(a, f.name), getattr(b, f.name), f"{where}.{f.name}")
    elif isinstance(a, float) and np.isnan(a):
        assert isinstance(b, float) and np.isnan(b), where
    elif isinstance(a, float):
        assert a == pytest.approx(b, rel=1e-9), where
    else:
        assert a == b, (where, a, b)


@pytest.fixture(scope="module")
def studies(medium_world):
    from analysis import data

    full = data.load_study_data(medium_world.params_file)
    sampled = data.load_study_data(
        medium_world.params_file, overrides={"analysis": {"model_max_customers": 8_000}}
    )
    return full, sampled


@pytest.mark.parametrize("definition", ["contractual", "inactivity"])
@pytest.mark.parametrize("use_sample", [False, True], ids=["everyone", "model_sample"])
def test_study_from_engine_counts_equals_study_from_customers(
    medium_world, studies, definition, use_sample
):
    st = studies[1] if use_sample else studies[0]
    truth = medium_world.truth["survival"]
    kw = dict(
        group="segment",
        horizons=[3, 6, 12],
        rmst_horizon=12,
        covariates=["segment", "value_tier"],
        reference=truth["reference_levels"],
        as_of=st.as_of,
        definition=definition,
        inactivity_days=st.params.analysis.inactivity_days,
        min_group_size=st.min_group_size,
        cox_sample=st.model_sample(),
    )
    lt = st.lifetimes(definition)
    want = retention.retention_study(lt, transactions=st.first_purchase_days, **kw)
    counts = st.lifetime_counts(retention.count_columns(definition, "segment"), definition)
    assert counts["customers"].sum() == len(lt)
    assert len(counts) < len(lt)  # fewer rows, and only the columns the study reads
    got = retention.retention_study(
        counts, weights="customers", cox_rows=st.model_lifetimes(definition), **kw
    )
    assert isinstance(want.cox, CoxResult) and not isinstance(want.km_all, Skipped)
    if definition == "inactivity":
        assert want.one_time is not None and want.one_time.n_returned > 0
    assert (want.cox_sample is not None) == use_sample
    _same(got, want, "retention")
