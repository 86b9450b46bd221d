"""Tests for analysis.loyalty: landmark frame, weighted survival and Cox, event study.

Hand-made frames have answers worked out on paper; the Cox model is checked against
statsmodels' PHReg (independent implementation); the sample world checks that
adjusted estimates recover the effects planted by analysis.synth (truth.json).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis import causal, loyalty
from analysis.stats import effects
from analysis.stats.weighted_survival import _weighted_km

D = pd.Timestamp

# --------------------------------------------------------------------------- hand-made world


@pytest.fixture(scope="module")
def tiny():
    """Six customers, window Jan-Dec 2023, landmark L=3, lookback 3, horizon 3 (see comments)."""
    customers = pd.DataFrame(
        {
            "customer_id": ["A", "B", "C", "D", "E", "F"],
            "signup_date": pd.to_datetime(
                ["2023-01-15", "2022-12-05", "2023-02-01", "2023-02-28", "2023-07-10", "2023-08-01"]
            ),
            "churn_date": pd.to_datetime([None, None, "2023-04-20", "2023-06-15", None, None]),
            "segment": ["consumer", "business", "consumer", "business", "consumer", "consumer"],
            "value_tier": ["high", "low", "low", "medium", "medium", "low"],
        }
    )
    transactions = pd.DataFrame(
        {
            "customer_id": ["A", "A", "A", "A", "A", "D", "E"],
            "date": pd.to_datetime(
                [
                    "2023-01-20",  # A: rel -3 -> prior
                    "2023-03-31",  # A: rel -1 -> prior
                    "2023-04-01",  # A: rel 0 -> outcome
                    "2023-06-30",  # A: rel 2 -> outcome
                    "2023-07-01",  # A: rel 3 -> after the horizon
                    "2023-05-02",  # D: rel 0
                    "2023-06-01",  # E: rel -4 -> before the lookback
                ]
            ),
            "amount": [100.0, 50.0, 30.0, 20.0, 999.0, 12.5, 7.0],
        }
    )
    loyalty_t = pd.DataFrame(
        {
            "customer_id": ["A", "D", "E"],
            "enrolled_date": pd.to_datetime(["2023-02-10", "2023-03-01", "2023-10-01"]),
            "tier": ["gold", "bronze", "silver"],
            "left_date": pd.to_datetime([None, "2023-04-30", None]),
            "points_earned": [200.0, 10.0, 0.0],
            "points_redeemed": [50.0, 0.0, 0.0],
        }
    )
    experience = pd.DataFrame(
        {
            "customer_id": ["E", "E", "E"],
            "date": pd.to_datetime(["2023-08-01", "2023-09-15", "2023-09-30"]),
            "kind": ["survey", "ticket", "survey"],
            "nps": [9.0, np.nan, 3.0],
            "csat": [5.0, np.nan, np.nan],
            "first_contact_resolution": [None, False, None],
            "sla_met": [None, False, None],
        }
    )
    return customers, transactions, loyalty_t, experience


def _frame(tiny, **kw):
    c, t, lo, ex = tiny
    args = dict(
        landmark_months=3,
        window_start="2023-01-01",
        as_of="2023-12-31",
        lookback_months=3,
        horizon_months=3,
    )
    args.update(kw)
    return loyalty.landmark_frame(c, t, lo, ex, **args).set_index("customer_id")


def test_landmark_population_by_hand(tiny):
    f = _frame(tiny)
    # B: landmark month Mar 2023 has only 2 observed months before it; C: churned before its
    # landmark (May 1); F: landmark Nov 2023, horizon would end after Dec 2023.
    assert sorted(f.index) == ["A", "D", "E"]
    assert f.loc["A", "landmark_date"] == D("2023-04-01")
    assert f.loc["D", "landmark_date"] == D("2023-05-01")
    assert f.loc["E", "landmark_date"] == D("2023-10-01")


def test_landmark_treatment_by_hand(tiny):
    f = _frame(tiny)
    assert f.loc["A", "member"] == 1  # enrolled Feb 10, never left
    assert f.loc["D", "member"] == 0 and f.loc["D", "former_member"] == 1  # left Apr 30 < May 1
    assert f.loc["E", "member"] == 0  # enrolled on the landmark day itself: not before it
    assert f.loc["A", "programme_tier"] == "gold"


def test_landmark_spend_windows_by_hand(tiny):
    f = _frame(tiny)
    assert f.loc["A", "prior_spend"] == 150.0 and f.loc["A", "prior_purchases"] == 2
    assert f.loc["A", "spend"] == 50.0 and f.loc["A", "purchases"] == 2
    assert f.loc["D", "spend"] == 12.5
    assert f.loc["E", "prior_spend"] == 0.0  # June purchase is 4 months before October


def test_landmark_outcomes_by_hand(tiny):
    f = _frame(tiny)
    assert f.loc["A", "retained"] == 1 and f.loc["A", "event"] == 0
    assert f.loc["A", "time_months"] == pytest.approx(274 / 30.4375)  # Apr 1 -> Dec 31
    assert f.loc["D", "retained"] == 0 and f.loc["D", "event"] == 1
    assert f.loc["D", "time_months"] == pytest.approx(45 / 30.4375)  # May 1 -> Jun 15
    assert f.loc["A", "tenure_months"] == pytest.approx(76 / 30.4375)  # Jan 15 -> Apr 1


def test_landmark_experience_by_hand(tiny):
    f = _frame(tiny)
    e = f.loc["E"]
    assert (e.prior_tickets, e.prior_unresolved, e.prior_sla_breaches) == (1, 1, 1)
    assert e.prior_nps_category == "detractor"  # latest answer (Sep 30) was 3
    assert e.history_nps_mean == pytest.approx(6.0)
    assert f.loc["A", "prior_nps_category"] == "none"


def test_landmark_without_loyalty_table(tiny):
    c, t, _, ex = tiny
    f = loyalty.landmark_frame(
        c,
        t,
        None,
        ex,
        landmark_months=3,
        window_start="2023-01-01",
        as_of="2023-12-31",
        horizon_months=3,
    )
    assert len(f) == 3 and f["member"].sum() == 0


def test_inputs_not_mutated(tiny):
    before = [x.copy() for x in tiny]
    _frame(tiny)
    for a, b in zip(tiny, before, strict=True):
        pd.testing.assert_frame_equal(a, b)


def test_event_study_panel_by_hand():
    customers = pd.DataFrame(
        {
            "customer_id": ["X", "Y"],
            "signup_date": pd.to_datetime(["2022-11-01", "2023-02-10"]),
            "churn_date": pd.to_datetime([None, "2023-05-03"]),
        }
    )
    tx = pd.DataFrame(
        {
            "customer_id": ["X", "X", "Y", "Y"],
            "date": pd.to_datetime(["2023-01-05", "2023-01-20", "2023-02-11", "2023-04-02"]),
            "amount": [10.0, 5.0, 3.0, 8.0],
        }
    )
    lo = pd.DataFrame({"customer_id": ["Y"], "enrolled_date": pd.to_datetime(["2023-03-15"])})
    p = loyalty.event_study_panel(customers, tx, lo, window_start="2023-01-01", as_of="2023-06-30")
    x = p[p.customer_id == "X"]
    y = p[p.customer_id == "Y"]
    assert list(x.period) == [0, 1, 2, 3, 4, 5]  # pre-window signup: all six window months
    assert x.revenue.iloc[0] == 15.0 and x.purchases.iloc[0] == 2
    # Y: signup month (Feb) and churn month (May) are partial, so only Mar and Apr remain
    assert list(y.period) == [2, 3]
    assert list(y.rel) == [0, 1]  # enrolled in March (period 2)
    assert list(y.revenue) == [0.0, 8.0]
    assert x.cohort.isna().all()


# --------------------------------------------------------------------------- survival by hand


def test_weighted_km_by_hand():
    # times 1, 2, 2(censored), 3: S(1) = 3/4, S(2) = 3/4 * 2/3 = 1/2, S(3) = 0
    s = _weighted_km(
        np.array([1.0, 2, 2, 3]), np.array([1.0, 1, 0, 1]), np.ones(4), np.array([0, 1, 2, 2.5, 3])
    )
    np.testing.assert_allclose(s, [1, 0.75, 0.5, 0.5, 0.0])
    # weight 2 on the first row equals duplicating it: S(1) = 3/5, S(2) = 3/5 * 2/3
    s2 = _weighted_km(
        np.array([1.0, 2, 2, 3]),
        np.array([1.0, 1, 0, 1]),
        np.array([2.0, 1, 1, 1]),
        np.array([1, 2]),
    )
    np.testing.assert_allclose(s2, [0.6, 0.4])


def _cox_data(n=600, seed=5):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 2, n)
    t = rng.exponential(1 / (0.1 * np.exp(np.log(0.6) * x)))
    c = rng.uniform(0, 15, n)
    time = np.round(np.minimum(t, c), 1)  # rounding creates ties
    return pd.DataFrame({"member": x, "time_months": time, "event": (t <= c).astype(int)})


def test_weighted_cox_matches_statsmodels_phreg():
    from statsmodels.duration.hazard_regression import PHReg

    d = _cox_data()
    ours = loyalty.weighted_cox(d)
    model = PHReg(d.time_months, d[["member"]].astype(float), status=d.event, ties="breslow")
    ref = model.fit()
    assert ours.log_hr == pytest.approx(ref.params[0], abs=1e-6)
    assert ours.se_model == pytest.approx(ref.bse[0], rel=1e-4)
    robust = model.fit(groups=np.arange(len(d)))
    assert ours.se == pytest.approx(robust.bse[0], rel=1e-3)


def test_weighted_cox_integer_weights_equal_duplicated_rows():
    d = _cox_data(n=300, seed=9)
    w = np.random.default_rng(1).integers(1, 4, len(d))
    ours = loyalty.weighted_cox(d, weights=w)
    dup = d.loc[d.index.repeat(w)]
    ref = loyalty.weighted_cox(dup)
    assert ours.log_hr == pytest.approx(ref.log_hr, abs=1e-8)


def test_event_study_recovers_known_effect():
    # Staggered adoption, unit and month effects, effect 5 from the month after enrolment and
    # 0 before; no selection, so leads are zero and the post average is 5.
    rng = np.random.default_rng(4)
    n, T = 1500, 24
    alpha = rng.normal(50, 10, n)
    gamma = rng.normal(0, 3, T)
    cohort = np.where(rng.random(n) < 0.5, rng.integers(6, 20, n), np.nan)
    rows = pd.DataFrame(
        {"customer_id": np.repeat(np.arange(n), T), "period": np.tile(np.arange(T), n)}
    )
    rows["cohort"] = np.repeat(cohort, T)
    rows["rel"] = rows.period - rows.cohort
    effect = np.where(rows.rel >= 1, 5.0, 0.0)
    rows["revenue"] = (
        np.repeat(alpha, T) + gamma[rows.period] + effect + rng.normal(0, 5, len(rows))
    )
    es = loyalty.event_study(rows, window=(-6, 6), anticipation=3, n_boot=30, seed=1)
    imp = es.coefficients[es.coefficients.estimator == "imputation"].set_index("rel")
    assert es.post_att["ci_lower"] < 5 < es.post_att["ci_upper"]
    assert imp.loc[-3:0, "estimate"].abs().max() < 1.0
    assert es.pretrend["p_value"] > 0.01


# --------------------------------------------------------------------------- sample world

# prior spend/purchases, tenure, segment, value tier, NPS, tickets (recent and history), log spend
COVARIATES = loyalty.DEFAULT_COVARIATES


@pytest.fixture(scope="module")
def world():
    from analysis import synth

    # the shipped sample world (make data): 20,000 customers, seed 42
    w = synth.generate(n_customers=20_000, seed=42)
    frames = {
        L: loyalty.landmark_frame(
            w.tables["customers"],
            w.tables["transactions"],
            w.tables["loyalty"],
            w.tables["experience"],
            landmark_months=L,
            window_start=w.truth["window"]["start"],
            as_of=w.truth["window"]["as_of"],
        )
        for L in (6, 12)
    }
    return w, frames


@pytest.mark.parametrize("L", [6, 12])
def test_landmark_population_matches_truth_definition(world, L):
    w, frames = world
    truth = w.truth["loyalty"]["landmarks"][str(L)]
    f = frames[L]
    assert len(f) == truth["n"]
    assert int(f["member"].sum()) == truth["n_treated"]
    naive = f.groupby("member")["spend"].mean()
    assert naive[1] - naive[0] == pytest.approx(truth["naive_spend_diff"], abs=0.01)


@pytest.fixture(scope="module")
def small_worlds():
    """Three independent smaller worlds (seeds fixed before looking at any result)."""
    from analysis import synth

    out = []
    for seed in (101, 102, 103):
        w = synth.generate(n_customers=10_000, seed=seed)
        frames = {
            L: loyalty.landmark_frame(
                w.tables["customers"],
                w.tables["transactions"],
                w.tables["loyalty"],
                w.tables["experience"],
                landmark_months=L,
                window_start=w.truth["window"]["start"],
                as_of=w.truth["window"]["as_of"],
            )
            for L in (6, 12)
        }
        out.append((w, frames))
    return out


# Any single world's 95% interval misses its truth 5% of the time (the shipped seed-42 world
# is such a draw for retention: members there happen to have ~2.5 SE better churn draws even
# when the planted effect is set to zero). So each check below runs on three independent
# worlds and requires coverage in at least two; with 95% coverage that fails < 1% of the time.
# Coverage itself is measured over 200 worlds in bench/sim_causal_coverage.py.


# Landmarks: retention only, as in the report (a member's covariate months before the landmark
# are already programme months, so the landmark spend contrast is biased by design; spend
# effects come from the sequential trials below).
@pytest.mark.parametrize("L", [6, 12])
@pytest.mark.parametrize("outcome", ["retained"])
@pytest.mark.parametrize("estimand", ["ATE", "ATT"])
@pytest.mark.parametrize("method", ["ipw", "aipw"])
def test_adjusted_estimates_cover_planted_effects(small_worlds, L, outcome, estimand, method):
    covered = []
    for w, frames in small_worlds:
        target = w.truth["loyalty"]["landmarks"][str(L)][f"{outcome}_{estimand}"]
        eff = causal.estimate_effect(
            frames[L],
            treatment="member",
            outcome=outcome,
            covariates=COVARIATES,
            method=method,
            estimand=estimand,
        )
        covered.append(eff.ci_lower < target < eff.ci_upper)
    assert sum(covered) >= 2, covered


@pytest.mark.parametrize("L", [6, 12])
def test_landmark_hazard_ratio_covers_planted(small_worlds, L):
    covered = []
    for w, frames in small_worlds:
        f = frames[L]
        eff = causal.estimate_effect(
            f, treatment="member", outcome="retained", covariates=COVARIATES, method="ipw"
        )
        cox = loyalty.weighted_cox(f, weights=eff.weights, horizon=6)
        covered.append(cox.ci_lower < w.truth["loyalty"]["churn_hazard_ratio"] < cox.ci_upper)
    assert sum(covered) >= 2, covered


def test_naive_contrast_is_biased_as_selection_implies(world):
    # truth.json records the selection bias (mean Y(0) of members minus non-members). Wherever it
    # is large compared with the naive contrast's standard error, the naive contrast must exceed
    # the ATT in the direction of that bias. Retention at L=6 is such a case in the sample world.
    w, frames = world
    checked = 0
    for L in (6, 12):
        truth = w.truth["loyalty"]["landmarks"][str(L)]
        for outcome in ("retained", "spend"):
            bias = truth[f"selection_bias_{outcome}"]
            naive = causal.estimate_effect(
                frames[L],
                treatment="member",
                outcome=outcome,
                covariates=COVARIATES,
                method="naive",
            )
            if abs(bias) < 2 * naive.se:
                continue
            checked += 1
            assert (naive.estimate - truth[f"{outcome}_ATT"]) * np.sign(bias) > 0.5 * abs(bias)
    assert checked >= 1


def test_weighted_survival_agrees_with_ipw_retention(world):
    # Two routes to the same quantity: the IP-weighted Kaplan-Meier difference at 6 months and the
    # Hajek IPW difference in "retained through the 6 calendar months" (same propensity model).
    # They differ only by calendar-month vs 6 x 30.4-day horizons, so they must agree closely.
    _, frames = world
    f = frames[12]
    sv = loyalty.weighted_survival(f, covariates=COVARIATES, horizon=6, n_boot=40, seed=3)
    row = sv.summary.set_index("quantity").loc["survival_difference"]
    ipw = causal.estimate_effect(
        f, treatment="member", outcome="retained", covariates=COVARIATES, method="ipw"
    )
    assert row.estimate == pytest.approx(ipw.estimate, abs=0.01)
    assert row.ci_lower < row.estimate < row.ci_upper
    assert set(sv.curves.group) == {"member", "non-member"}


def test_heterogeneity_suppresses_small_groups(world):
    _, frames = world
    out = loyalty.heterogeneity(
        frames[6], by="value_tier", outcome="spend", covariates=COVARIATES, min_group_size=150
    )
    assert set(out.value_tier) == {"high", "medium", "low"}
    small = out[(out.n_treated < 150) | (out.n_control < 150)]
    assert small.suppressed.all() and small.estimate.isna().all()
    assert (~out.suppressed).any()


def test_report_without_loyalty_table_ends_cleanly(tiny):
    c, t, _, ex = tiny
    rep = loyalty.programme_report(
        {"customers": c, "transactions": t, "experience": ex},
        window_start="2023-01-01",
        as_of="2023-12-31",
    )
    assert not rep.available
    assert "no loyalty table" in rep.message
    assert rep.landmarks == {} and rep.findings == []


def test_e_value_sentence_from_numbers():
    # HR-like protective ratio 0.5 (0.4, 0.7): E = 2 + sqrt(2) = 3.41; CI limit 1/0.7 -> 2.21
    text = loyalty.e_value_sentence(causal.e_value(0.5, 0.4, 0.7), outcome="churn")
    assert "by a factor of 3.41 each" in text
    assert "2.21 would suffice" in text


# --------------------------------------------------------------------------- sequential trials


def _trials(tiny, **kw):
    c, t, lo, ex = tiny
    args = dict(window_start="2023-01-01", as_of="2023-12-31", lookback_months=3, horizon_months=2)
    args.update(kw)
    return loyalty.trial_frame(c, t, lo, ex, **args)


def test_trial_population_by_hand(tiny):
    f = _trials(tiny)
    # 12 complete months, lookback 3, horizon 2: trials in months 3..9 (Apr..Oct 2023).
    # A and D enrolled before April (never eligible), C churned in April (not alive at the end
    # of any trial month). B (signed up Dec 2022): Apr..Oct; E (signed up Jul): Aug, Sep, Oct,
    # enrolling in Oct; F (signed up Aug): Sep, Oct.
    got = sorted(zip(f.customer_id, f.trial_month, strict=True))
    want = [("B", m) for m in range(3, 10)] + [("E", 7), ("E", 8), ("E", 9), ("F", 8), ("F", 9)]
    assert got == sorted(want)
    assert f.loc[f.member == 1, ["customer_id", "trial_month"]].values.tolist() == [["E", 9]]
    assert f.loc[f.customer_id == "B", "trial_date"].min() == D("2023-04-01")


def test_trial_covariates_and_outcomes_by_hand(tiny):
    f = _trials(tiny).set_index(["customer_id", "trial_month"])
    # E in October (month 9): lookback Jul-Sep has no purchase (the Jun 1 purchase is older),
    # one unresolved ticket with an SLA breach (Sep 15); latest NPS before October: 3 on Sep 30
    # (detractor); mean of answered NPS before October (9, 3) = 6.
    e9 = f.loc[("E", 9)]
    assert e9.prior_spend == 0 and e9.prior_tickets == 1
    assert e9.prior_unresolved == 1 and e9.prior_sla_breaches == 1
    assert e9.prior_nps_category == "detractor" and e9.history_nps_mean == pytest.approx(6.0)
    assert e9.tenure_months == pytest.approx((D("2023-10-01") - D("2023-07-10")).days / 30.4375)
    # E in August (month 7): lookback May-Jul holds the Jun 1 purchase of 7.0; no NPS before Aug
    e7 = f.loc[("E", 7)]
    assert e7.prior_spend == pytest.approx(7.0) and e7.prior_purchases == 1
    assert e7.prior_nps_category == "none" and e7.history_tickets == 0
    # September: the Aug 1 answer (9) is the latest -> promoter
    assert f.loc[("E", 8)].prior_nps_category == "promoter"
    assert e9.log_prior_spend == 0.0
    # outcomes over the 2 months after the trial month; everyone here stays
    assert (f.retained == 1).all() and (f.spend == 0).all()


def test_trial_outcomes_by_hand():
    customers = pd.DataFrame(
        {
            "customer_id": ["P", "Q"],
            "signup_date": pd.to_datetime(["2022-06-01", "2022-06-01"]),
            "churn_date": pd.to_datetime(["2023-07-15", "2023-06-30"]),
        }
    )
    tx = pd.DataFrame(
        {
            "customer_id": ["P", "P", "P", "Q"],
            "date": pd.to_datetime(["2023-04-30", "2023-05-01", "2023-06-30", "2023-06-01"]),
            "amount": [1.0, 10.0, 20.0, 5.0],
        }
    )
    lo = pd.DataFrame({"customer_id": ["P"], "enrolled_date": pd.to_datetime(["2023-04-03"])})
    f = loyalty.trial_frame(
        customers,
        tx,
        lo,
        None,
        window_start="2023-01-01",
        as_of="2023-12-31",
        lookback_months=3,
        horizon_months=2,
    ).set_index(["customer_id", "trial_month"])
    # P enrols in April (month 3): outcomes May-Jun: spend 30, churned Jul 15 -> retained;
    # the April purchase is in the trial month itself: neither covariate nor outcome.
    p = f.loc[("P", 3)]
    assert p.member == 1 and p.spend == pytest.approx(30.0) and p.retained == 1
    assert p.prior_spend == 0
    # Q churns Jun 30: eligible in Apr and May (alive at their ends), not in June
    assert sorted(m for c, m in f.index if c == "Q") == [3, 4]
    assert f.loc[("Q", 3), "retained"] == 0  # churned before the end of June (month 3 + 2)
    assert f.loc[("Q", 3), "spend"] == pytest.approx(5.0)  # Jun 1, inside May-Jun
    assert f.loc[("Q", 4), "spend"] == pytest.approx(5.0)  # Jun 1, inside Jun-Jul
    assert f.loc[("Q", 4), "member"] == 0


def test_trial_frame_matches_truth_definition(world):
    # Generator and frame builder define the trials independently (synth simulates each
    # eligible customer-month; trial_frame reads the contract tables): the populations must
    # agree exactly, and for enrollees the realised retention is their simulated Y(1).
    w, _ = world
    truth = w.truth["loyalty"]["sequential"]
    f = loyalty.trial_frame(
        w.tables["customers"],
        w.tables["transactions"],
        w.tables["loyalty"],
        w.tables["experience"],
        window_start=w.truth["window"]["start"],
        as_of=w.truth["window"]["as_of"],
    )
    assert len(f) == truth["n_person_trials"]
    assert int(f["member"].sum()) == truth["n_enrolments"]
    assert f.loc[f.member == 1, "retained"].mean() == pytest.approx(
        truth["mean_retained_Y1_treated"], abs=1e-6
    )
    # realised spend of enrollees vs their expected spend Y(1): equal up to purchase noise
    assert f.loc[f.member == 1, "spend"].mean() == pytest.approx(
        truth["mean_spend_Y1_treated"], rel=0.05
    )


@pytest.fixture(scope="module")
def small_trials(small_worlds):
    out = []
    for w, _ in small_worlds:
        f = loyalty.trial_frame(
            w.tables["customers"],
            w.tables["transactions"],
            w.tables["loyalty"],
            w.tables["experience"],
            window_start=w.truth["window"]["start"],
            as_of=w.truth["window"]["as_of"],
        )
        out.append((w, f))
    return out


@pytest.mark.parametrize("outcome", ["retained", "spend"])
@pytest.mark.parametrize("estimand", ["ATE", "ATT"])
@pytest.mark.parametrize("method", ["ipw", "aipw"])
def test_sequential_estimates_cover_planted_effects(small_trials, outcome, estimand, method):
    # As in the report: ATT on every person-trial, ATE trimmed by the Crump et al. rule, its
    # truth the average planted individual effect over the person-trials kept.
    from analysis import synth

    covered = []
    for w, f in small_trials:
        eff = causal.estimate_effect(
            f,
            treatment="member",
            outcome=outcome,
            covariates=loyalty.trial_covariates(COVARIATES),
            method=method,
            estimand=estimand,
            cluster="customer_id",
            trim="crump" if estimand == "ATE" else None,
        )
        if estimand == "ATE":
            kept = f[eff.propensity.notna().to_numpy()]
            assert 0 < eff.n_trimmed == len(f) - len(kept)
            target = synth.sequential_truth(w, kept)[outcome]
        else:
            target = w.truth["loyalty"]["sequential"][f"{outcome}_{estimand}"]
        assert eff.n_clusters == f.loc[eff.propensity.notna(), "customer_id"].nunique()
        covered.append(eff.ci_lower < target < eff.ci_upper)
    assert sum(covered) >= 2, covered


def test_programme_report_layout_and_trimmed_ate():
    from analysis import synth

    w = synth.generate(n_customers=4000, seed=7)
    win = w.truth["window"]
    rep = loyalty.programme_report(w.tables, window_start=win["start"], as_of=win["as_of"])
    e = rep.sequential.effects
    got = set(zip(e.method, e.estimand, strict=True))
    assert got == {("naive", "observational contrast")} | {
        (m, est) for m in ("regression", "ipw", "aipw") for est in ("ATE", "ATT")
    }
    assert set(e.outcome) == {"retained", "spend", "purchases"}
    ate, att = e[e.estimand == "ATE"], e[e.estimand == "ATT"]
    # the ATE rows share one Crump-trimmed population; the ATT rows keep every person-trial
    assert (ate.trim_lower > 0).all() and ate.trim_lower.nunique() == 1
    assert (ate.n_trimmed > 0).all() and (att.n_trimmed == 0).all()
    assert ((att.n_treated + att.n_control) == rep.sequential.n_rows).all()
    # landmarks: retention only (no spend contrast by design), no landmark subgroup table
    for r in rep.landmarks.values():
        assert set(r.effects.outcome) == {"retained"} and r.heterogeneity is None
    # the findings: the verdict (the headline design, ATT), then one sentence per section
    verdict, *rest = rep.findings
    assert verdict.startswith(("Yes", "No", "Mixed", "Not clearly"))
    assert "observational: customers were not randomly enrolled" in verdict
    text = " ".join(rest)
    assert "being a member at 6 months of tenure" in text.lower()  # the landmark survival contrast
    assert "before-and-after view overstates the effect" in text  # the event study
    assert text.count("Adjusted for") == 1 and rep.skipped_sections() == []


def test_sequential_naive_spend_is_biased_upward(small_trials):
    # enrolment follows recent spend: the raw contrast overstates the effect on enrollees by
    # about the selection bias recorded in truth.json (~70 on effects of ~40)
    for w, f in small_trials:
        truth = w.truth["loyalty"]["sequential"]
        naive = causal.estimate_effect(
            f,
            treatment="member",
            outcome="spend",
            covariates=[],
            method="naive",
            cluster="customer_id",
        )
        assert truth["selection_bias_spend"] > 30
        assert naive.ci_lower > truth["spend_ATT"]


def test_ate_trimming_that_empties_an_arm_falls_back_with_a_note(monkeypatch):
    from analysis import synth

    w = synth.generate(n_customers=2000, seed=8)
    win = w.truth["window"]
    monkeypatch.setattr(effects, "crump_bound", lambda e: 0.4999)  # keeps no row
    rep = loyalty.programme_report(
        w.tables, window_start=win["start"], as_of=win["as_of"], landmarks=[12]
    )
    assert any("left an arm empty" in n and "untrimmed" in n for n in rep.notes)
    ate = rep.sequential.effects.query("estimand == 'ATE'")
    assert len(ate) == 9 and (ate.n_trimmed == 0).all()
    # without the sequential trials the landmark effects carry the retention findings
    monkeypatch.undo()
    rep = loyalty.programme_report(
        w.tables, window_start=win["start"], as_of=win["as_of"], landmarks=[12], sequential=False
    )
    text = " ".join(rep.findings)
    assert rep.sequential is None
    assert ": being a member at 12 months of tenure " in rep.findings[0]  # the verdict
    assert "being a member at 12 months of tenure" in text.lower() and "6-month retention" in text
    assert "hidden difference" in text  # the E-value of the landmark churn effect


def test_naive_churn_comparison_by_hand(tiny):
    # Window 2023; days in the window: A 350 (member from 10 Feb: 324), B 364, C 78 (churned,
    # never a member), D 107 (churned 15 Jun after leaving 30 Apr; member 1 Mar-30 Apr: 60),
    # E 174 (member from 1 Oct: 91), F 152.
    c, _, lo, _ = tiny
    out = loyalty.naive_churn_comparison(c, lo, window_start="2023-01-01", as_of="2023-12-31")
    out = out.set_index("comparison")
    dpm = loyalty.DAYS_PER_MONTH
    ever = out.loc["ever-members vs never-members"]
    assert ever.member_customer_months == pytest.approx((350 + 107 + 174) / dpm)
    assert ever.non_member_customer_months == pytest.approx((364 + 78 + 152) / dpm)
    assert (ever.member_churn_events, ever.non_member_churn_events) == (1, 1)
    assert ever.rate_ratio == pytest.approx(594 / 631)
    split = out.loc["member months vs non-member months"]
    assert split.member_customer_months == pytest.approx((324 + 60 + 91) / dpm)
    assert split.non_member_customer_months == pytest.approx((1225 - 475) / dpm)
    assert (split.member_churn_events, split.non_member_churn_events) == (0, 2)
    assert split.rate_ratio == 0 and split.ci_lower == 0


def test_naive_churn_comparison_on_the_sample_world(world):
    # The interval inverts statsmodels' exact conditional test (independent implementation): at
    # each bound the one-sided p-value is 2.5%. The dashboard comparison (ever vs never members)
    # is far below the planted structural hazard ratio (selection plus immortal time), the
    # time-split one less so (selection only).
    from statsmodels.stats.rates import test_poisson_2indep

    w, _ = world
    win = w.truth["window"]
    out = loyalty.naive_churn_comparison(
        w.tables["customers"], w.tables["loyalty"], window_start=win["start"], as_of=win["as_of"]
    ).set_index("comparison")
    for _, r in out.iterrows():
        args = (
            int(r.member_churn_events),
            r.member_customer_months,
            int(r.non_member_churn_events),
            r.non_member_customer_months,
        )
        for bound, alt in ((r.ci_lower, "larger"), (r.ci_upper, "smaller")):
            res = test_poisson_2indep(
                *args, value=bound, method="exact-cond", compare="ratio", alternative=alt
            )
            assert res.pvalue == pytest.approx(0.025, abs=1e-6)
    hr = w.truth["loyalty"]["churn_hazard_ratio"]
    ever = out.loc["ever-members vs never-members"]
    split = out.loc["member months vs non-member months"]
    assert ever.ci_upper < split.ci_lower  # immortal time removed: much less flattering
    assert split.ci_upper < hr  # selection still flatters members


def test_covariate_labels():
    assert loyalty.covariate_label("prior_spend") == "spend in the 3 months before"
    assert loyalty.covariate_label("segment[consumer]") == "segment: consumer"
    assert loyalty.covariate_label("prior_nps_category[promoter]") == "latest NPS answer: promoter"
    assert loyalty.covariate_label("some_new_column") == "some new column"
    # every default covariate (and the trial-only one) has a label of its own
    assert set(loyalty.trial_covariates(COVARIATES)) <= set(loyalty.COVARIATE_LABELS)


def test_study_result_holds_caveats_not_sentences(tiny):
    # the study returns data; sentences are written by the report layer
    from analysis.report.loyalty import programme_notes
    from analysis.studies.loyalty import programme_report as study

    c, t, _, ex = tiny
    rep = study(
        {"customers": c, "transactions": t, "experience": ex},
        window_start="2023-01-01",
        as_of="2023-12-31",
    )
    assert rep.caveats == [{"kind": "no_loyalty_table"}]
    assert rep.message == "" and rep.notes == []
    assert "no loyalty table" in programme_notes(rep)[0]
