"""The model sample (analysis.data.sample): stratified, seeded, disclosed, and the studies
that use it still recover the planted truth.

Expected allocations are worked out by hand from the largest-remainder rule (Hamilton's
method); inclusion probabilities are checked against k/n, the design's definition.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis.data.sample import stratified_mask


@pytest.mark.parametrize(
    ("sizes", "k", "expected"),
    [
        ([50, 30, 20], 10, [5, 3, 2]),  # exact proportions
        ([3, 3, 3], 4, [2, 1, 1]),  # 4/3 each: one remainder, tie -> lowest stratum
        ([7, 2, 1], 5, [4, 1, 0]),  # 3.5, 1.0, 0.5: the one left over goes to 3.5 (tie, lower)
        ([10, 10], 0, [0, 0]),
        ([10, 10], 20, [10, 10]),
    ],
)
def test_allocation_is_proportional_by_largest_remainder(sizes, k, expected):
    strata = np.repeat(np.arange(len(sizes)), sizes)
    rng = np.random.default_rng(1)
    strata = strata[rng.permutation(len(strata))]  # order of rows must not matter
    mask = stratified_mask(strata, k, seed=5)
    assert mask.sum() == k
    assert [int(mask[strata == s].sum()) for s in range(len(sizes))] == expected


def test_sample_is_seeded_and_every_customer_equally_likely():
    strata = np.repeat([0, 1, 2, 3], [40, 40, 40, 40])
    a, b = stratified_mask(strata, 40, seed=3), stratified_mask(strata, 40, seed=3)
    assert (a == b).all()
    assert not (a == stratified_mask(strata, 40, seed=4)).all()
    hits = np.zeros(len(strata))
    reps = 2000
    for seed in range(reps):
        hits += stratified_mask(strata, 40, seed=seed)
    p = hits / reps
    # inclusion probability k/n = 0.25 for every row; 5 standard errors of a proportion
    se = np.sqrt(0.25 * 0.75 / reps)
    assert np.abs(p - 0.25).max() < 5 * se


def test_bad_sample_size_is_refused():
    with pytest.raises(ValueError):
        stratified_mask(np.zeros(5), 6, seed=0)


@pytest.fixture(scope="module")
def sampled_study(medium_world):
    from analysis import data

    return data.load_study_data(
        medium_world.params_file, overrides={"analysis": {"model_max_customers": 10_000}}
    )


def test_customer_sample_is_stratified_by_the_breakdown_column(medium_world, sampled_study):
    from analysis import data

    s = sampled_study.model_sample()
    assert s is not None and (s.n_sampled, s.n_customers) == (10_000, 20_000)
    cust = pd.read_parquet(medium_world.data_dir / "customers.parquet")
    group = sampled_study.params.analysis.group
    assert s.strata == group
    ids = s.ids.to_pylist()
    assert ids == sorted(ids) and set(ids) <= set(cust["customer_id"])
    chosen = cust[cust["customer_id"].isin(ids)][group].value_counts()
    share = cust[group].value_counts() * 0.5
    assert (chosen.reindex(share.index) - share).abs().max() <= 1
    # the same draw on a second load; no sample when every customer fits
    again = data.load_study_data(
        medium_world.params_file, overrides={"analysis": {"model_max_customers": 10_000}}
    ).model_sample()
    assert again.ids.equals(s.ids)
    assert data.load_study_data(medium_world.params_file).model_sample() is None
    assert "random sample of 10,000 of the 20,000 customers" in s.sentence("the models")


def test_loyalty_models_on_the_sample_recover_the_planted_effects(medium_world, sampled_study):
    from analysis.studies import loyalty

    st = sampled_study
    lp = st.params.loyalty
    tables = loyalty.study_tables(st)
    codes = loyalty.model_customers(st)
    assert len(codes) == 10_000
    # the monthly activity stays on the engine, restricted to the sampled customers
    assert set(tables["transactions"].to_pandas()["customer_id"].unique()) <= set(codes)
    rep = loyalty.programme_report(
        tables,
        window_start=st.window_start,
        as_of=st.as_of,
        landmarks=[int(x) for x in lp.landmarks_months],
        lookback_months=int(lp.lookback_months),
        horizon_months=int(lp.horizon_months),
        covariates=lp.covariates,
        heterogeneity_by=lp.heterogeneity_by,
        min_group_size=st.min_group_size,
        seed=lp.seed,
        trial_max_customers=None,
        model_customers=codes,
    )
    assert rep.model_sample == (10_000, 20_000)
    assert rep.sequential.n_customers <= 10_000
    # descriptive sections use every customer: uptake as on the whole loyalty table
    whole = loyalty.uptake(
        tables["customers"], tables["loyalty"], window_start=st.window_start, as_of=st.as_of
    )
    pd.testing.assert_frame_equal(rep.uptake, whole)
    truth = medium_world.truth["loyalty"]["sequential"]
    eff = rep.sequential.effects
    row = eff[(eff.outcome == "spend") & (eff.estimand == "ATT") & (eff.method == "aipw")].iloc[0]
    assert row.ci_lower <= truth["spend_ATT"] <= row.ci_upper


def test_experience_models_on_the_sample_recover_the_truth_and_scale_to_everyone(
    medium_world, sampled_study
):
    from analysis.studies import experience

    res = experience.run_study(sampled_study)
    truth = medium_world.truth["experience"]
    assert res.hazards.n_customers <= 10_000
    for term, key in [
        ("nps_category[detractor]", "detractor_hazard_ratio"),
        ("sla_breaches_window", "sla_breach_hazard_ratio"),
    ]:
        _, lo, hi = res.hazards.hr(term)
        assert lo <= truth[key] <= hi, (term, lo, truth[key], hi)
    # the yearly scenario figures apply to every customer still active, not to the sample's
    lt = sampled_study.lifetimes()
    active = int((lt["event"] == 0).sum())
    assert (res.stakes["customers_at_risk"] == active).all()
    # descriptive sums still cover every customer
    full = experience.run_study(
        __import__("analysis").data.load_study_data(medium_world.params_file)
    )
    pd.testing.assert_frame_equal(res.trends, full.trends)


def test_churn_risk_model_fitted_on_the_sample_scores_every_customer(medium_world, sampled_study):
    from analysis import data
    from analysis.studies import value

    vs = value.value_study(sampled_study, n_draws=5)
    full = value.value_study(data.load_study_data(medium_world.params_file), n_draws=5)
    # half the customers: about half the labelled rows of each cutoff
    assert abs(vs.churn.n_train / full.churn.n_train - 0.5) < 0.03
    assert abs(vs.churn.n_test / full.churn.n_test - 0.5) < 0.03
    # every customer the full run scores is scored, by the model fitted on the sample
    risky = vs.scores["risk_source"].str.startswith("churn-risk model")
    assert risky.sum() == full.scores["risk_source"].str.startswith("churn-risk model").sum()
    # the sample's model ranks risk as the full one does (both fitted on the same truth)
    both = vs.scores[["customer_id", "risk"]].merge(
        full.scores[["customer_id", "risk"]], on="customer_id"
    )
    assert both["risk_x"].corr(both["risk_y"], method="spearman") > 0.9
    assert abs(vs.churn.auc - full.churn.auc) < 0.05


def test_retention_cox_on_the_sample_recovers_the_planted_hazard_ratios(
    medium_world, sampled_study
):
    from analysis.studies import retention

    st = sampled_study
    truth = medium_world.truth["survival"]
    lt = st.lifetimes()
    kw = dict(
        group="segment",
        horizons=[6, 12],
        rmst_horizon=12,
        covariates=["segment", "value_tier"],
        reference=truth["reference_levels"],
        as_of=st.as_of,
    )
    rep = retention.retention_study(lt, cox_sample=st.model_sample(), **kw)
    full = retention.retention_study(lt, **kw)
    n_cox, n_pop = rep.cox_sample
    assert n_pop == full.n_population and abs(n_cox / n_pop - 0.5) < 0.02
    assert rep.cox.n < 0.55 * full.cox.n
    for term, hr in truth["hazard_ratios"].items():
        lo, hi = rep.cox.summary.loc[term, ["ci_lower", "ci_upper"]]
        assert lo < hr < hi, (term, lo, hr, hi)
    # curves, medians and the log-rank test use every customer
    pd.testing.assert_frame_equal(rep.median, full.median)
    assert rep.logrank.statistic == full.logrank.statistic
    assert full.cox_sample is None


def test_churn_risk_scored_in_chunks_equals_one_pass(tiny_world):
    """Customers are scored a chunk at a time (their features built, scored and dropped);
    each customer's risk is the one a single pass over everyone gives."""
    from analysis import data
    from analysis.studies.value import study as vstudy
    from analysis.studies.value.churn_risk import _CustomerCoder

    st = data.load_study_data(tiny_world.params_file)
    customers = vstudy._customers(st)
    coder = _CustomerCoder.from_source(st.source)
    kw = dict(as_of=pd.Timestamp(st.as_of), risk_horizon_months=3.0, seed=0)
    args = (st, customers, coder, len(coder.ids))
    _, one = vstudy._churn_risk(*args, **kw)
    _, chunked = vstudy._churn_risk(*args, chunk_customers=37, **kw)
    assert np.isfinite(one).sum() > 100 and np.isnan(one).any()  # scored, and not everyone
    # equal up to the last bit of a matrix product over a differently sized block
    np.testing.assert_array_equal(np.isnan(chunked), np.isnan(one))
    np.testing.assert_allclose(chunked, one, rtol=1e-12, atol=0)
