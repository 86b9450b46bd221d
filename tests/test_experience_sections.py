"""The experience report on data that cannot support all of its models (issues 14 and 15).

A model the data cannot support costs one section, with a plain sentence, never the
report: no churn events, no variation, surveys or tickets only, no CSAT, no NPS. The
sentences and table cells are sign-aware (a negative effect never reads "more",
an interval spanning zero says "no clear"), and nothing shows nan/inf/None.

Expected behaviour is worked out from the data each test builds (who churned, which
columns exist), not copied from the code's output.
"""

from __future__ import annotations

import math
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

from analysis.errors import AnalysisError
from analysis.report import experience as text
from analysis.report import experience_tables as tables
from analysis.studies import experience as X
from analysis.studies.sections import NotEstimable, Skipped, is_skipped

_BAD = re.compile(r"(?<![A-Za-z])(nan|NaN|NaT|inf|None)(?![A-Za-z])")
_SNAKE = re.compile(r"[A-Za-z0-9]+(?:_[A-Za-z0-9]+)+")


def _clean(s: str) -> None:
    assert not _BAD.search(s), s
    assert not _SNAKE.search(s), s


# --------------------------------------------------------------------------------------
# Known bug: the strata column also among the adjustments
# --------------------------------------------------------------------------------------


def _toy(n=300, seed=4):
    rng = np.random.default_rng(seed)
    seg = rng.choice(["x", "y"], n)
    tier = rng.choice(["a", "b", "c"], n)
    dur = rng.integers(30, 700, n)
    lt = pd.DataFrame(
        {
            "customer_id": np.arange(n),
            "start_date": pd.Timestamp("2023-01-01"),
            "entry_days": 0,
            "duration_days": dur,
            "event": (rng.random(n) < 0.6).astype(int),
            "segment": seg,
            "value_tier": tier,
        }
    )
    k = 3 * n
    ex = pd.DataFrame(
        {
            "customer_id": rng.integers(0, n, k),
            "date": pd.Timestamp("2023-01-01") + pd.to_timedelta(rng.integers(0, 600, k), "D"),
            "kind": rng.choice(["survey", "ticket"], k),
        }
    )
    survey = ex.kind.eq("survey")
    ex["nps"] = np.where(survey, rng.integers(0, 11, k), np.nan)
    ex["first_contact_resolution"] = pd.array(
        np.where(survey, None, rng.random(k) < 0.7), dtype="boolean"
    )
    return lt, ex


def test_counting_process_keeps_a_column_named_twice_once():
    lt, ex = _toy()
    once = X.counting_process(lt, ex, window_days=60, period=None, keep=["segment"])
    twice = X.counting_process(
        lt, ex, window_days=60, period=None, keep=["segment", "value_tier", "segment"]
    )
    assert list(twice.columns).count("segment") == 1
    pd.testing.assert_frame_equal(twice.drop(columns="value_tier"), once)
    # every row carries its customer's own segment
    seg = lt.set_index("customer_id").segment
    assert (twice.segment.astype(str).to_numpy() == seg.loc[twice.customer_id].to_numpy()).all()


def test_strata_column_in_the_covariates_is_its_own_baseline_not_a_term():
    lt, ex = _toy()
    cp = X.counting_process(lt, ex, window_days=60, period=None, keep=["segment", "value_tier"])
    both = X.churn_hazards(
        cp,
        covariates=["nps_category", "unresolved_window", "segment", "value_tier"],
        strata="segment",
    )
    alone = X.churn_hazards(
        cp, covariates=["nps_category", "unresolved_window", "value_tier"], strata="segment"
    )
    assert not any(t.startswith("segment") for t in both.terms)
    assert_allclose(both.summary.coef, alone.summary.coef, rtol=1e-10)
    assert_allclose(both.summary.se, alone.summary.se, rtol=1e-10)


def test_no_churn_event_is_not_estimable_in_plain_words():
    lt, ex = _toy()
    cp = X.counting_process(lt.assign(event=0), ex, window_days=60, period=None)
    with pytest.raises(NotEstimable, match="No customer left"):
        X.churn_hazards(cp, covariates=["unresolved_window"])


def test_revenue_link_checks_its_lags_in_the_study_layer():
    panel = pd.DataFrame(
        {"customer_id": [1, 1, 2, 2], "period": [0, 1, 0, 1], "revenue": [1.0, 2, 3, 4], "x": 1.0}
    )
    with pytest.raises(AnalysisError, match="lags must be non-negative"):
        X.revenue_link(panel, exposures=["x"], lags=[-1])
    from analysis.stats import fixed_effects

    assert not hasattr(fixed_effects, "_check_fe_args")
    src = Path(fixed_effects.__file__).read_text()
    assert "experience" not in src and "lags" not in src


# --------------------------------------------------------------------------------------
# Worlds the data cannot fully support
# --------------------------------------------------------------------------------------


def _variant(tiny_world, root: Path, name: str, *, customers=None, experience=None) -> Path:
    d = root / name
    d.mkdir()
    for f in tiny_world.data_dir.iterdir():
        if f.suffix != ".parquet":
            continue
        df = pd.read_parquet(f)
        if f.stem == "customers" and customers is not None:
            df = customers(df)
        if f.stem == "experience" and experience is not None:
            df = experience(df)
        df.to_parquet(d / f.name, index=False)
    params = root / f"{name}.yaml"
    params.write_text(f"data:\n  path: {d}\nanalysis:\n  group: segment\n")
    return params


def _no_churn(c):
    return c.assign(churn_date=pd.NaT, churn_reason=None)


def _surveys_only(e):
    e = e[e.kind == "survey"]
    drop = ["first_contact_resolution", "contacts_to_resolve", "sla_met", "compensated"]
    return e.drop(columns=[c for c in [*drop, "response_hours"] if c in e.columns])


def _tickets_only(e):
    e = e[e.kind == "ticket"]
    return e.drop(columns=[c for c in ("nps", "csat", "ces") if c in e.columns])


@pytest.fixture(scope="module")
def odd_worlds(tiny_world, tmp_path_factory):
    from analysis import data

    root = tmp_path_factory.mktemp("odd_worlds")
    out = {}
    for name, kw in {
        "no_churn": {"customers": _no_churn},
        "surveys_only": {"experience": _surveys_only},
        "tickets_only": {"experience": _tickets_only},
    }.items():
        study = data.load_study_data(_variant(tiny_world, root, name, **kw))
        out[name] = (study, X.run_study(study))
    return out


def _all_text(res, study) -> list[str]:
    out = [*text.verdict(res), *text.method_notes(res, study), *text.study_findings(res)]
    out += [t["text"] + " " + t["name"] + " " + t["note"] for t in text.tiles(res)]
    for attr, fn in (
        ("overall", text.trends_finding),
        ("drivers", text.drivers_finding),
        ("km", text.retention_finding),
        ("hazards", text.hazard_finding),
        ("revenue", text.revenue_finding),
        ("lags", text.lags_finding),
        ("moments", text.moments_finding),
        ("compensation", text.compensation_finding),
        ("stakes", text.stakes_finding),
    ):
        if not is_skipped(getattr(res, attr)):
            out.append(fn(res))
    out += [s.sentence() + " " + s.section for s in res.skipped()]
    claims = text.claims_table(res.claim_numbers)
    out += [str(v) for v in claims[["our_number"]].to_numpy().ravel()]
    return out


def test_a_world_where_nobody_churned_keeps_every_other_section(odd_worlds):
    study, res = odd_worlds["no_churn"]
    for part in (res.hazards, res.moments, res.compensation, res.stakes):
        assert is_skipped(part) and "No customer left" in part.reason
    assert res.n_churn_events == 0
    # the revenue side needs no churn: it is still estimated
    assert not is_skipped(res.revenue) and not is_skipped(res.lags)
    assert not is_skipped(res.trends) and not is_skipped(res.drivers)
    assert res.churn_rate[0] == 0.0
    for s in _all_text(res, study):
        _clean(s)
    # the verdict falls back to the revenue link and says why nothing is at stake
    assert "CSAT" in " ".join(text.verdict(res))


def test_a_surveys_only_table_skips_the_ticket_sections_with_reasons(odd_worlds):
    study, res = odd_worlds["surveys_only"]
    assert is_skipped(res.drivers) and "no tickets" in res.drivers.reason
    assert is_skipped(res.moments) and is_skipped(res.compensation)
    assert not is_skipped(res.hazards)
    assert "nps_category[detractor]" in res.hazards.terms
    assert not any("unresolved" in t or "sla" in t for t in res.hazards.terms)
    sections = [s.section for s in res.scenarios_skipped]
    assert any("first-contact resolution" in s for s in sections)
    assert any("SLA" in s for s in sections)
    # the scenario the data supports is still evaluated
    assert list(res.stakes.scenario) == ["detractors_as_passives"]
    claims = text.claims_table(res.claim_numbers)
    assert claims.our_number.iloc[2].startswith("Not measurable")
    for s in _all_text(res, study):
        _clean(s)


def test_a_tickets_only_table_skips_the_survey_sections_with_reasons(odd_worlds):
    study, res = odd_worlds["tickets_only"]
    assert is_skipped(res.revenue) and "no satisfaction (CSAT) answers" in res.revenue.reason
    assert is_skipped(res.dose) and is_skipped(res.km) and "no NPS answers" in res.km.reason
    assert is_skipped(res.drivers)
    assert not any(t.startswith("nps_category") for t in res.hazards.terms)
    assert any("NPS" in s.reason for s in res.scenarios_skipped)
    for s in _all_text(res, study):
        _clean(s)


def test_too_few_churn_events_is_a_skipped_section_not_a_model_of_noise():
    from analysis.studies.experience.study import MIN_CHURN_EVENTS, _churn_gate

    with pytest.raises(NotEstimable, match="Only 3 customers left"):
        _churn_gate(3)
    with pytest.raises(NotEstimable, match="Only 1 customer left"):
        _churn_gate(1)
    _churn_gate(MIN_CHURN_EVENTS)  # enough: no error


# --------------------------------------------------------------------------------------
# Sign-aware wording
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("est", "lo", "hi", "want", "never"),
    [
        (0.35, 0.12, 0.58, "0.35 more customers leave", "fewer"),
        (-0.14, -0.26, -0.02, "0.14 fewer customers leave", "−0.14"),
        (-0.14, -0.50, 0.22, "no clear change", "fewer customers"),
        (0.0, -0.1, 0.1, "no clear change", "more customers"),
        (float("nan"), float("nan"), float("nan"), "not estimable", "nan"),
    ],
)
def test_touchpoint_cells_carry_the_sign_in_words(est, lo, hi, want, never):
    cell = tables._signed(est, lo, hi, more="more customers leave", fewer="fewer customers leave")
    assert want in cell and never not in cell
    assert "-0" not in cell and "--" not in cell


def _moments(values):
    rows = []
    for tp, (e, lo, hi) in values.items():
        rows.append(
            {
                "touchpoint": tp,
                "customers": 100,
                "tickets": 120,
                "failure_rate": 0.3,
                "hazard_ratio": 1 + e / 10,
                "ci_lower": 1 + lo / 10,
                "ci_upper": 1 + hi / 10,
                "customers_lost_per_100": e,
                "customers_lost_ci_lower": lo,
                "customers_lost_ci_upper": hi,
                "revenue_lost_per_100": 50 * e,
                "revenue_lost_ci_lower": 50 * lo,
                "revenue_lost_ci_upper": 50 * hi,
            }
        )
    return pd.DataFrame(rows)


class _Res:
    currency = "EUR"
    min_group_size = 10


def test_worst_touchpoint_is_named_from_the_numbers_the_table_shows():
    r = _Res()
    r.moments = _moments({"billing": (2.0, 0.5, 3.5), "service": (3.0, 1.0, 5.0)})
    assert "at service" in text.moments_finding(r)
    r.moments = _moments({"billing": (3.0, 1.0, 5.0), "service": (3.0, 0.5, 5.5)})
    assert "billing and service" in text.moments_finding(r)  # a tie names both
    # a touchpoint whose failures go with fewer departures is never "where they cost most"
    r.moments = _moments({"billing": (-0.14, -0.26, -0.02), "service": (0.5, -0.2, 1.2)})
    s = text.moments_finding(r)
    assert s.startswith("No touchpoint shows clear evidence") and "-0.14" not in s


def _stake(e, lo, hi):
    return pd.Series(
        {
            "scenario": "sla_breaches_reduced",
            "description": "SLA breaches cut by 50%",
            "churners_prevented_per_year": e,
            "churners_ci_lower": lo,
            "churners_ci_upper": hi,
            "revenue_at_stake": 100 * e,
            "revenue_ci_lower": 100 * lo,
            "revenue_ci_upper": 100 * hi,
        }
    )


def test_revenue_at_stake_sentence_follows_the_sign_of_its_numbers():
    up = text.stakes_sentence(_stake(12.0, 3.0, 20.0), "EUR", 12)
    assert "about 12 fewer customers" in up and "keeping about €1,200" in up
    down = text.stakes_sentence(_stake(-5.0, -9.0, -1.0), "EUR", 12)
    assert "about 5 more customers would leave" in down and "losing" in down
    assert "-5" not in down and "−5" not in down
    unclear = text.stakes_sentence(_stake(1.0, -2.0, 3.0), "EUR", 12)
    assert unclear.startswith("No clear evidence")
    for s in (up, down, unclear):
        _clean(s.replace("SLA", ""))


def test_revenue_finding_says_no_clear_evidence_when_the_interval_spans_zero():
    from types import SimpleNamespace

    from analysis.stats.fixed_effects import FEResult

    def res(coef, lo, hi):
        summ = pd.DataFrame(
            {"coef": [coef], "ci_lower": [lo], "ci_upper": [hi], "n_customers": [500]},
            index=["csat_mean_lag1"],
        )
        fe = FEResult(summ, pd.DataFrame(), 1, 1, 500, 1, 1.0, 0, True, 60.0)
        return SimpleNamespace(revenue=fe, revenue_term="csat_mean_lag1", currency="EUR")

    assert text.revenue_finding(res(6.57, -0.95, 14.09)).startswith("No clear evidence")
    less = text.revenue_finding(res(-4.0, -6.0, -2.0))
    assert "€4.00 less revenue" in less and "−€4" not in less
    assert "€4.00 more revenue" in text.revenue_finding(res(4.0, 2.0, 6.0))


def test_claims_never_print_a_missing_number():
    from analysis.studies.experience.metrics import ClaimNumbers

    nan3 = (float("nan"),) * 3
    t = text.claims_table(ClaimNumbers(None, nan3, nan3, nan3))
    for v in t.to_numpy().ravel():
        assert not _BAD.search(str(v))
    t = text.claims_table(ClaimNumbers((9.6, -1.4, 20.5), (0.69, 0.67, 0.71), nan3, nan3))
    assert t.our_number.iloc[0].startswith("No clear evidence")
    assert "69.0%" in t.our_number.iloc[1] and not math.isnan(0.69)


def test_skipped_details_have_no_missing_value_words():
    class R:
        def skipped(self):
            return [Skipped("A section", "Reason", "", "KeyError: 'segment[business]' is nan")]

    (detail,) = tables.skipped_details(R()).detail
    assert not _BAD.search(detail) and "segment[business]" not in detail


# --------------------------------------------------------------------------------------
# The rendered page on a world without churn
# --------------------------------------------------------------------------------------


@pytest.mark.notebook
def test_report_page_without_churn_is_ok_and_lint_clean(tiny_world, tmp_path):
    from analysis.report import lint
    from analysis.report.runner import run

    params = _variant(tiny_world, tmp_path, "no_churn_page", customers=_no_churn)
    out = tmp_path / "reports"
    params.write_text(
        params.read_text()
        + f"reports:\n  output_dir: {out}\n  notebooks: [03_experience_revenue]\n"
        "  jobs: 1\n  kernel_name: python3\n"
    )
    root = Path(__file__).resolve().parents[1]
    outcome = run(params, notebooks_dir=root / "notebooks")
    page = out / "03_experience_revenue.html"
    assert page.is_file(), outcome
    html = page.read_text()
    assert lint.lint_page(html, name="03") == []
    assert "Not estimated" in html and "No customer left" in html
    shutil.rmtree(out / "executed", ignore_errors=True)


def test_tiny_levels_of_an_adjustment_column_are_pooled_not_one_term_each(tiny_world, tmp_path):
    """An industry column with many 2-3 customer levels: the churn model still fits, on pooled levels."""
    from analysis import data

    def many_small(c):
        big = np.where(np.arange(len(c)) % 2 == 0, "retail", "services")
        tiny = np.array([f"niche {i // 3}" for i in range(len(c))], dtype=object)
        return c.assign(industry=np.where(np.arange(len(c)) % 5 == 0, tiny, big))

    params = _variant(tiny_world, tmp_path, "small_levels", customers=many_small)
    params.write_text(params.read_text() + "experience:\n  cox_covariates: [industry]\n")
    study = data.load_study_data(params)
    res = X.run_study(study)
    assert not is_skipped(res.hazards), res.hazards
    terms = " ".join(map(str, res.hazards.summary.index))
    assert "niche" not in terms  # no term per tiny level
    assert "industry" in terms


def test_claims_say_what_is_recorded_not_more():
    """First-contact resolution without contacts-to-resolve is reported; no CSAT says 'no answers'."""
    from analysis.studies.experience.metrics import ClaimNumbers

    nan3 = (float("nan"),) * 3
    t = text.claims_table(ClaimNumbers(None, nan3, nan3, (0.688, 0.65, 0.72), csat_answers=0))
    fcr = t.our_number.iloc[2]
    assert fcr.startswith("68.8% at the first contact") and "not recorded" in fcr
    assert "Not measurable" not in fcr
    assert t.our_number.iloc[0] == "Not measurable: the data has no CSAT answers"
    t = text.claims_table(ClaimNumbers(None, nan3, nan3, nan3, csat_answers=12))
    assert t.our_number.iloc[0].startswith("Not estimable: too few CSAT answers")
    assert t.our_number.iloc[2].startswith("Not measurable")


def test_customers_lost_per_100_failures_is_never_bounded_above_100():
    r = _Res()
    r.moments = _moments({"billing": (97.06, 22.13, 340.46)})
    s = text.moments_finding(r)
    assert "97.1 more customers leaving" in s
    assert "340" not in s and "more than 100, which this data cannot narrow down" in s
