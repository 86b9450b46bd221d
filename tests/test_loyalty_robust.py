"""The loyalty report on data unlike the sample world, and sentences that can't lie (issues 14, 15).

* Every part the data cannot support becomes a ``Skipped`` section with a plain sentence;
  the rest of the study is kept (no churn, too few enrollees, no attribute columns, a
  loyalty table without ``left_date``).
* The text names exactly the covariates the models used (a copied params file that still
  lists ``value_tier`` must not claim an adjustment for it).
* Every sentence function, fed negative, zero, missing and interval-spanning effects, says
  the direction its numbers show: never "raises ... by -14", never ``nan``.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd
import pytest

from analysis.report import loyalty as text
from analysis.stats.effects import Effect
from analysis.stats.evalue import e_value
from analysis.studies import loyalty
from analysis.studies.sections import Skipped, is_skipped

BAD = re.compile(r"(?i:\bnan\b|\binf\b)|\bNone\b|NaT|by [−-]\d|by \+")


def _clean(s: str) -> None:
    assert not BAD.search(s), s


# --------------------------------------------------------------------------- hand-made results


def _effects(ret=(0.033, 0.022, 0.043), spend=(40.0, 30.0, 50.0), naive=(0.04, 126.0)):
    """An effects table like the sequential trials' (only the rows the sentences read)."""
    rows = []
    for y, (e, lo, hi), nv in (("retained", ret, naive[0]), ("spend", spend, naive[1])):
        base = e if math.isfinite(e) else 1.0
        rows.append(
            dict(
                outcome=y,
                method="aipw",
                estimand="ATT",
                estimate=e,
                ci_lower=lo,
                ci_upper=hi,
                ratio=1 + base / 400,
                ratio_ci_lower=1.0,
                ratio_ci_upper=1.2,
            )
        )
        rows.append(
            dict(
                outcome=y,
                method="naive",
                estimand="observational contrast",
                estimate=nv,
                ci_lower=nv - 1,
                ci_upper=nv + 1,
                ratio=1.3,
                ratio_ci_lower=1.2,
                ratio_ci_upper=1.4,
            )
        )
    return pd.DataFrame(rows)


def _report(effects: pd.DataFrame) -> loyalty.ProgrammeReport:
    sq = loyalty.SequentialResult(
        frame=pd.DataFrame(),
        n_rows=1000,
        n_enrolments=100,
        n_customers=500,
        n_trials=12,
        sampled_customers=None,
        propensity=pd.Series(dtype=float),
        balance=pd.DataFrame(),
        effects=effects,
        churn_effect=None,
        e_value=None,
        heterogeneity=None,
        covariates=["prior_spend", "log_prior_spend", "tenure_months", "segment"],
    )
    return loyalty.ProgrammeReport(available=True, sequential=sq, horizon_months=6)


CASES = {
    "positive": ((0.033, 0.022, 0.043), (40.0, 30.0, 50.0)),
    "negative": ((-0.142, -0.183, -0.101), (-25.0, -40.0, -10.0)),
    "spanning": ((0.01, -0.012, 0.031), (5.0, -3.0, 12.0)),
    "zero": ((0.0, 0.0, 0.0), (0.0, 0.0, 0.0)),
    "missing": ((float("nan"),) * 3, (float("nan"),) * 3),
}


@pytest.mark.parametrize("case", list(CASES))
def test_sentences_follow_the_sign_and_the_interval(case):
    ret, spend = CASES[case]
    rep = _report(_effects(ret, spend))
    v, f = text.verdict(rep), text.effects_finding(rep)
    tiles = text.key_tiles(rep)
    for s in (v, f, *(t["text"] for t in tiles), *(t["note"] for t in tiles)):
        _clean(s)
    assert len(re.findall(r"[.!?](?:\s|$)", v)) <= 2, v  # at most two sentences
    if case == "positive":
        assert v.startswith("Yes, modestly: enrolling keeps about 3 more customers in 100")
        assert "(95% CI 2 to 4)" in v and "adds about €40" in v
        assert "overstates the spend effect threefold" in v  # 126 / 40 = 3.15
        assert "observational: customers were not randomly enrolled" in v
        assert "raises 6-month retention by 3.3 points" in f
    if case == "negative":
        assert v.startswith("No: enrolling keeps about 14 fewer customers in 100")
        assert "(95% CI 10 to 18)" in v and "takes away about €25" in v
        assert "lowers 6-month retention by 14.2 points" in f and "raises" not in f
        assert "overstates" not in v  # no adjusted effect above zero to compare with
    if case == "spanning":
        assert v.startswith("Not clearly:") and "no clear effect" in v
        assert f.count("No clear evidence") == 2 and "raises" not in f and "lowers" not in f
    if case == "zero":
        assert "raises" not in f and "lowers" not in f and "adds" not in v
    if case == "missing":
        assert "could not be estimated" in v and "could not be estimated" in f
        assert [t["text"] for t in tiles[:2]] == ["not estimable"] * 2


def test_verdict_says_partly_when_only_one_effect_is_clear():
    v = text.verdict(_report(_effects(ret=(0.01, -0.01, 0.03))))
    assert v.startswith("Partly: enrolling shows no clear effect on how many customers stay")
    assert "adds about €40" in v
    _clean(v)


def test_verdict_when_nothing_could_be_estimated_and_without_a_loyalty_table():
    rep = loyalty.ProgrammeReport(available=True)
    rep.sequential = Skipped(
        loyalty.SECTIONS["sequential"],
        "The monthly comparison has 1 customer who enrolled, too few to compare",
        "It needs at least 10 of each.",
    )
    v = text.verdict(rep)
    assert v.startswith("This data cannot yet say whether the programme works: the monthly comp")
    _clean(v)
    none = text.verdict(loyalty.ProgrammeReport(available=False))
    assert "no loyalty programme table" in none
    assert text.key_tiles(loyalty.ProgrammeReport(available=False)) == []


def test_covariates_sentence_names_exactly_the_used_covariates():
    s = text.covariates_sentence(["prior_spend", "log_prior_spend", "tenure_months", "segment"])
    assert s == "Adjusted for spend in the 3 months before, tenure (months) and segment."
    assert "value tier" not in s
    assert "not adjusted" in text.covariates_sentence([])


def test_compat_effect_sentence_never_writes_a_signed_magnitude():
    def eff(e, lo, hi, method="aipw"):
        return Effect(
            estimate=e,
            se=0.01,
            ci_lower=lo,
            ci_upper=hi,
            p_value=0.01,
            n_treated=10,
            n_control=10,
            method=method,
            estimand="ATT",
            treatment="member",
            outcome="retained",
            mean_treated=0.8,
            mean_control=0.7,
            ratio=1.1,
            ratio_ci_lower=1.0,
            ratio_ci_upper=1.2,
        )

    neg = text.effect_sentence(
        eff(-0.142, -0.183, -0.101), what="6-month retention", scale=100, unit=" points"
    )
    assert "lowered 6-month retention for members by 14.2 points (95% CI 10.1 to 18.3)" in neg
    pos = text.effect_sentence(eff(0.033, 0.022, 0.043), what="retention", scale=100)
    assert "raised" in pos and "lowered" not in pos
    span = text.effect_sentence(eff(0.01, -0.01, 0.03), what="retention", scale=100)
    assert span.startswith("No clear evidence") and "raised" not in span
    gone = text.effect_sentence(eff(float("nan"), float("nan"), float("nan")), what="retention")
    assert "could not be estimated" in gone
    naive = text.effect_sentence(eff(-2.0, -3.0, -1.0, method="naive"), what="spend", unit=" EUR")
    assert "lower among members" in naive and "2.0 EUR" in naive
    for s in (neg, pos, span, gone, naive):
        _clean(s)


def test_e_value_sentences_with_and_without_an_interval():
    # HR-like protective ratio 0.5 (0.4, 0.7): E = 2 + sqrt(2) = 3.41; CI limit 1/0.7 -> 2.21
    s = text.e_value_sentence(e_value(0.5, 0.4, 0.7))
    assert "3.41" in s and "2.21 would suffice" in s
    s = text.e_value_sentence(e_value(0.5))  # no interval: no claim about it
    assert "3.41" in s and "interval" not in s
    s = text.e_value_sentence(e_value(0.9, 0.7, 1.2))
    assert "already includes no effect" in s
    rep = _report(_effects())
    rep.sequential.e_value = e_value(0.9, 0.7, 1.2)
    assert "weak hidden difference" in text.robustness_finding(rep)
    rep.sequential.e_value = e_value(0.5, 0.4, 0.7)
    assert "3.4 times as likely to join" in text.robustness_finding(rep)


def test_heterogeneity_finding_on_ties_single_groups_and_overlap():
    rep = _report(_effects())
    rep.sequential.heterogeneity_by = "value_tier"

    def het(est, lo, hi, sup=None):
        n = len(est)
        return pd.DataFrame(
            {
                "value_tier": list("abc")[:n],
                "n_treated": [50] * n,
                "n_control": [50] * n,
                "estimate": est,
                "ci_lower": lo,
                "ci_upper": hi,
                "suppressed": sup or [False] * n,
            }
        )

    rep.sequential.heterogeneity = het([10.0, 80.0], [0.0, 60.0], [20.0, 100.0])
    s = text.heterogeneity_finding(rep)
    assert "largest for value tier b (€80" in s and "clearly larger than for value tier a" in s
    rep.sequential.heterogeneity = het([10.0, 30.0], [-5.0, 5.0], [25.0, 55.0])
    assert "no clear evidence that the groups differ" in text.heterogeneity_finding(rep)
    rep.sequential.heterogeneity = het([-20.0], [-30.0], [-10.0])
    s = text.heterogeneity_finding(rep)
    assert "lowers spend over 6 months by €20" in s
    rep.sequential.heterogeneity = het([np.nan, np.nan], [np.nan] * 2, [np.nan] * 2, [True, True])
    assert "too small" in text.heterogeneity_finding(rep)


# --------------------------------------------------------------------------- degenerate worlds


@pytest.fixture(scope="module")
def small():
    from analysis import synth

    w = synth.generate(n_customers=600, seed=42)
    return w.tables, w.truth["window"]


def _run(tables, win, **kw):
    return loyalty.programme_report(tables, window_start=win["start"], as_of=win["as_of"], **kw)


def test_nobody_churned_no_attributes_no_left_date_copied_params(small):
    # one world with three problems: nobody ever churned, the customers table has only the
    # required columns, and the loyalty table has no left_date; the params were copied from
    # the sample world and still name value_tier (covariate and heterogeneity column)
    t, win = small
    tables = {
        **t,
        "customers": t["customers"][["customer_id", "signup_date", "churn_date"]].assign(
            churn_date=pd.NaT
        ),
        "loyalty": t["loyalty"].drop(columns=["left_date"]),
    }
    rep = _run(tables, win, covariates=loyalty.DEFAULT_COVARIATES, heterogeneity_by="value_tier")
    assert rep.available
    names = {s.section for s in rep.skipped_sections()}
    assert "Effect of enrolling on retention" in names  # no churn: nothing to compare
    assert all(is_skipped(r) for r in rep.landmarks.values())
    assert all("no churn" in r.reason for r in rep.landmarks.values())
    assert is_skipped(rep.sequential.heterogeneity)
    # spend is still estimated, with the covariates this data has
    assert set(rep.sequential.effects.outcome) == {"spend", "purchases"}
    assert "value_tier" not in rep.covariates and "segment" not in rep.covariates
    assert rep.covariates_missing == ["segment", "value_tier"]
    notes = " ".join(text.programme_notes(rep))
    assert "Not in this data, so not adjusted for: segment and value tier." in notes
    sentence = text.covariates_sentence(rep.covariates)
    assert "value tier" not in sentence and "segment" not in sentence
    for s in [text.verdict(rep), *text.programme_findings(rep), *text.programme_notes(rep)]:
        _clean(s)
    assert text.verdict(rep).startswith(("Yes", "No", "Mixed", "Not clearly"))


def test_too_few_enrollees_skips_every_comparison_and_keeps_the_descriptives(small):
    t, win = small
    rep = _run({**t, "loyalty": t["loyalty"].iloc[:3]}, win)
    assert is_skipped(rep.sequential) and is_skipped(rep.event_study)
    assert all(is_skipped(r) for r in rep.landmarks.values())
    assert "too few" in rep.sequential.reason and "at least 10" in rep.sequential.remedy
    assert "3 customers enrolled" in rep.event_study.reason
    assert isinstance(rep.uptake, pd.DataFrame) and isinstance(rep.post_leaving, pd.DataFrame)
    v = text.verdict(rep)
    assert v.startswith("This data cannot yet say whether the programme works")
    _clean(v)
    assert text.key_tiles(rep)  # uptake figures still shown
    for s in rep.skipped_sections():
        assert s.sentence() and "nan" not in s.sentence()


def test_a_failing_model_costs_its_section_only(small, monkeypatch):
    # a singular design in the weighted Cox model and in the event study (as on a 600-customer
    # world): those parts are skipped with a plain reason, everything else is estimated
    from analysis.studies.loyalty import study as mod

    t, win = small

    def singular(*a, **k):
        raise np.linalg.LinAlgError("Singular matrix")

    monkeypatch.setattr(mod, "weighted_cox", singular)
    monkeypatch.setattr(mod, "event_study", singular)
    rep = _run(t, win, landmarks=[12])
    r = rep.landmarks[12]
    assert not is_skipped(r) and is_skipped(r.cox) and not is_skipped(r.survival)
    assert "never vary, or always move together" in r.cox.reason
    assert is_skipped(rep.event_study) and "Singular matrix" in rep.event_study.detail
    assert (
        not is_skipped(rep.sequential) and len(rep.sequential.effects) == 21
    )  # 3 outcomes x 7 rows
