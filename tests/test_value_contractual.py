"""The value study on contractual businesses (issue 14 §5, §2): sBG value, boundaries, speed.

Known truth: the ``subscription`` preset plants Beta(gamma, delta) churn probabilities
and fixed monthly margins; truth.json holds the value of the active subscribers at the
planted parameters (``clv.model.clv_margin_total``: margin x DERL, Fader & Hardie 2010
eq. 6, by the generator's own direct sum). Hand-worked frames check the renewal counts
and the life table; direct sums check the finite-horizon DERL and the base total.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose
from scipy import special

from analysis import data
from analysis.data import synth
from analysis.stats.btyd import SBGResult, fit_gamma_gamma, fit_pareto_nbd
from analysis.stats.btyd.life_table import life_table
from analysis.stats.btyd.mle import BoundaryFit
from analysis.studies.sections import Skipped
from analysis.studies.value import contract_lifetimes, rfm_summary, value_study
from analysis.studies.value.purchase import boundary_reason


@pytest.fixture(scope="module")
def subscription(tmp_path_factory):
    out = tmp_path_factory.mktemp("subscription")
    world = synth.generate_preset("subscription", n_customers=3000, seed=5)
    synth.write(world, out, format="parquet")
    return out


@pytest.fixture(scope="module")
def sub_study(subscription):
    study = data.load_study_data(subscription / "params.yaml")
    return study, value_study(study)


def _derl_direct(g, d, m, rate, terms=20000):
    j = np.arange(terms, dtype=float)
    ls = special.betaln(g, d + m + 1 + j) - special.betaln(g, d + m)
    return float(np.exp(ls - j * np.log1p(rate)).sum())


def test_subscription_clv_recovers_planted_truth(sub_study):
    study, vs = sub_study
    truth = json.loads((Path(study.params.data.path) / "truth.json").read_text())
    assert vs.value_source == "contractual"
    c = vs.contract
    # planted parameters inside the 95% Wald intervals (log scale)
    for name in ("gamma", "delta"):
        est, se = c.model.params[name], c.model.se[name]
        z = abs(np.log(est) - np.log(truth["sbg"][name])) / (se / est)
        assert z < 1.96, (name, est, truth["sbg"][name])
    # value of the active base at the planted parameters lies inside the interval
    est, lo, hi = vs.total_clv
    target = truth["clv"]["model"]["clv_margin_total"]
    assert lo < target < hi, (lo, target, hi)
    assert abs(est / target - 1) < 0.15
    assert len(vs.scores) == truth["clv"]["n_active"]
    # each subscriber's value per period is their plan's margin
    margins = {v["margin"] for v in truth["plans"].values()}
    assert set(np.round(vs.scores["value_per_period"], 6)) <= margins
    # mean churn of a new subscriber, with an interval covering the planted one
    mc, mlo, mhi = c.mean_churn
    assert mlo < truth["sbg"]["mean_churn_probability"] < mhi


def test_subscription_purchase_models_fail_in_words_not_errors(sub_study):
    _, vs = sub_study
    names = [s.section for s in vs.skipped]
    assert len(names) == len(set(names))
    for s in vs.skipped:
        assert isinstance(s, Skipped) and s.reason and s.remedy
        assert "nan" not in s.sentence().lower()
    gg = [s for s in vs.skipped if "Gamma-Gamma" in s.section]
    assert gg and "fixed price" in gg[0].reason


def test_contract_lifetimes_by_hand():
    as_of = dt.date(2024, 3, 20)
    customers = pd.DataFrame(
        {
            "customer_id": ["a", "b", "c", "d", "e", "f"],
            "signup_date": pd.to_datetime(
                ["2024-01-15", "2024-01-15", "2024-01-15", "2024-01-31", "2024-01-15", "2023-12-20"]
            ),
            # b left on 20 March (third period), c exactly at its 2nd renewal date,
            # e in its first period, f after as_of (still active)
            "churn_date": pd.to_datetime(
                [None, "2024-03-20", "2024-03-15", None, "2024-01-20", "2024-04-01"]
            ),
        }
    )
    got = contract_lifetimes(customers, as_of=as_of, period="month")
    # a: renewals 15 Feb, 15 Mar -> 2; b: left in period 3 -> 2 renewals; c: did not renew
    # on 15 Mar -> 1 renewal; d: 29 Feb (month end) counts, 31 Mar not yet -> 1;
    # e: left before its first renewal -> 0; f: 20 Jan, 20 Feb, 20 Mar -> 3, active
    assert got["renewals"].tolist() == [2, 2, 1, 1, 0, 3]
    assert got["churned"].tolist() == [False, True, True, False, True, False]


def test_life_table_by_hand():
    # renewals/churned: left at opp 1 (k=0), left at opp 2 (k=1), active after 1, active after 2
    t = life_table([0, 1, 1, 2], [True, True, False, False])
    assert t["t"].tolist() == [1, 2]
    assert t["at_risk"].tolist() == [4, 2]  # opp 2: the k=1 leaver and the k=2 active one
    assert t["churned"].tolist() == [1, 1]
    assert_allclose(t["survival"], [0.75, 0.375])


def test_finite_horizon_and_base_value_match_direct_sums():
    g, d, rate = 1.3, 9.0, 0.008
    model = SBGResult.from_params(g, d)
    m = np.array([0, 3, 3, 10])
    within = model.discounted_value_within(m, rate, 12)
    for mi, w in zip(m, within, strict=True):
        direct = sum(
            np.exp(special.betaln(g, d + mi + 1 + j) - special.betaln(g, d + mi)) / (1 + rate) ** j
            for j in range(12)
        )
        assert_allclose(w, direct, rtol=1e-12)
    margin = np.array([10.0, 20.0, 5.0, 8.0])
    est, lo, hi = model.base_value(margin, m, discount_rate=rate)
    assert_allclose(
        est,
        sum(mg * _derl_direct(g, d, mi, rate) for mg, mi in zip(margin, m, strict=True)),
        rtol=1e-8,
    )
    assert np.isnan(lo) and np.isnan(hi)  # no covariance: no interval
    # a long horizon approaches the lifetime value
    long = model.discounted_value_within(m, rate, 5000)
    assert_allclose(long, model.discounted_residual_lifetime(m, rate), rtol=1e-6)


@pytest.fixture(scope="module")
def sub_summary(subscription):
    study = data.load_study_data(subscription / "params.yaml")
    return rfm_summary(
        study.table("transactions"),
        customer_id="customer_id",
        date="date",
        amount="amount",
        calibration_end=dt.date(2024, 6, 30),
        observation_end=dt.date(2025, 12, 31),
        freq="W",
    )


def test_gamma_gamma_on_fixed_prices_is_a_boundary_in_words(sub_summary):
    """Plan prices never change within a customer: no spend spread, a boundary."""
    with pytest.raises(BoundaryFit) as info:
        fit_gamma_gamma(sub_summary)
    reason, remedy = boundary_reason(info.value, data="calibration period")
    assert "fixed price" in reason and remedy


def test_pareto_nbd_on_regular_billing_fails_fast_at_the_boundary(sub_summary):
    """Was 649 s on 5,000 subscribers (a Nelder-Mead polish of a likelihood running to
    infinity, each evaluation slow at huge shape parameters); now the run-off is detected."""
    summary = sub_summary
    t0 = time.perf_counter()
    with pytest.raises(BoundaryFit) as info:
        fit_pareto_nbd(summary)
    assert time.perf_counter() - t0 < 120
    assert {"r", "alpha"} <= set(info.value.at_edge)
    reason, _ = boundary_reason(info.value, data="calibration period")
    assert "same rate" in reason


def test_value_study_runs_on_a_600_customer_world(tmp_path):
    world = synth.generate(n_customers=600, seed=7)
    synth.write(world, tmp_path / "data", format="parquet")
    (tmp_path / "params.yaml").write_text("data:\n  path: data\n")
    study = data.load_study_data(tmp_path / "params.yaml")
    vs = value_study(study)
    est, lo, hi = vs.total_clv
    assert np.isfinite([est, lo, hi]).all() and lo <= est <= hi
    assert vs.value_source in {"contractual", "purchase"}
    assert np.isfinite(vs.scores["clv"]).all()


def test_report_text_of_a_subscription_world(sub_study):
    """Verdict, tiles and findings: numbers from the study, no missing-value tokens."""
    from analysis.report import value as value_text
    from analysis.report.lint import _BAD_WORD

    study, vs = sub_study
    v = value_text.verdict(vs, currency="EUR", min_group_size=10)
    assert len(v) == 2
    tiles = value_text.key_tiles(vs, currency="EUR", min_group_size=10)
    names = [t["name"] for t in tiles]
    assert names[:4] == [
        "Total expected customer value",
        "Share of value in the top decile",
        "High-value customers at risk",
        "Value at stake among them",
    ]
    # the top-decile tile is the share as a fraction (shown once as a percentage)
    assert tiles[1]["value"] == pytest.approx(vs.concentration["share"])
    assert tiles[0]["value"] == pytest.approx(vs.total_clv[0])
    texts = [
        *v,
        *(t["text"] for t in tiles),
        value_text.tier_finding(vs),
        value_text.protect_finding(vs, currency="EUR", min_group_size=10),
        value_text.contract_finding(vs),
        *value_text.method_notes(vs, min_group_size=10),
    ]
    for t in texts:
        assert not _BAD_WORD.search(t), t
    # the contract finding states the mean churn the tile shows
    assert f"{vs.contract.mean_churn[0]:.1%}" in value_text.contract_finding(vs)


def test_risk_of_leaving_never_comes_from_p_alive_under_contracts(sub_study):
    """Where churn dates exist, 1 - P(alive) (silent lapsing) is no risk of leaving."""
    _, vs = sub_study
    sources = set(vs.scores["risk_source"].unique())
    assert not any("P(alive)" in s for s in sources), sources
    scored = vs.scores["risk"].notna()
    assert scored.any() and (vs.scores.loc[scored, "risk"].between(0, 1)).all()


def test_one_time_buyers_get_no_risk_from_the_bgnbd(tmp_path):
    """BG/NBD P(alive) is 1 for anyone who bought once: that is no risk score (retail preset)."""
    world = synth.generate_preset("retail", n_customers=1500, seed=4)
    synth.write(world, tmp_path, format="parquet")
    study = data.load_study_data(tmp_path / "params.yaml")
    vs = value_study(study)
    once = vs.scores["frequency"] == 0
    assert once.any() and vs.scores.loc[once, "risk"].isna().all()
    assert any(
        c["kind"] == "one_time_risk" and c["customers"] == int(once.sum()) for c in vs.caveats
    )
    repeat = vs.scores.loc[~once, "risk"]
    if "p_alive" in vs.scores.columns:
        assert repeat.notna().all() and repeat.between(0, 1).all()
