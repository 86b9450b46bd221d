"""Tests for the gallery of business shapes: ``python -m analysis synth --preset NAME``.

Every preset is generated through the command line at a small size, validated against
the data contract with its own params file, and checked for the shape it promises.
Recovery checks compare the data with the planted truth through independent formulas:
the Beta-geometric survival S(t) = B(gamma, delta + t) / B(gamma, delta) (Fader &
Hardie 2007, eq. 6) for the subscription cohorts, the BG/NBD probability of no repeat
purchase (alpha / (alpha + T))^r and E[X(T)] (Fader, Hardie & Lee 2005, eq. 9) for the
retail buyers, and calendar arithmetic by pandas ``DateOffset`` for billing dates.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy import special

from analysis import config, contract, data
from analysis.data import synth
from analysis.data.synth import presets
from analysis.errors import ParamsError

SIZES = {
    "sample": 300,
    "subscription": 3000,
    "retail": 3000,
    "b2b": None,  # the preset's default: a few hundred accounts
    "short": 300,
    "minimal": 300,
}
SEED = 5


def _run(out: Path, preset: str | None, n: int | None, seed: int = SEED, *extra: str) -> Path:
    argv = ["--out", str(out), "--seed", str(seed), *extra]
    if preset is not None:
        argv += ["--preset", preset]
    if n is not None:
        argv += ["--customers", str(n)]
    assert synth.main(argv) == 0
    return out


def _digest(folder: Path) -> dict[str, str]:
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.iterdir())
        if p.is_file()
    }


@pytest.fixture(scope="module")
def worlds(tmp_path_factory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("presets")
    return {name: _run(base / name, name, n) for name, n in SIZES.items()}


def _tables(folder: Path) -> dict[str, pd.DataFrame]:
    """Read every table of a world, dates as datetime64."""
    import pyarrow.parquet as pq

    return {
        p.stem: pq.read_table(p).to_pandas(date_as_object=False)
        for p in sorted(folder.glob("*.parquet"))
    }


def _truth(folder: Path) -> dict:
    return json.loads((folder / "truth.json").read_text())


# ---------------------------------------------------------------------------
# Every preset: contract, params file, size, determinism
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(SIZES))
def test_preset_passes_contract_validation_with_its_own_params(worlds, name):
    folder = worlds[name]
    params = config.load_params(folder / "params.yaml")
    assert params.data.path == folder
    assert params.reports.output_dir == folder / "reports"
    errors = [p for p in data.check(params) if p.severity == "error"]
    assert errors == [], [str(p) for p in errors]


@pytest.mark.parametrize("name", list(SIZES))
def test_params_file_sets_only_data_location_window_and_churn_definition(worlds, name):
    folder = worlds[name]
    raw = yaml.safe_load((folder / "params.yaml").read_text())
    assert set(raw) == {"data", "analysis", "reports"}
    assert set(raw["analysis"]) <= {"churn_definition", "inactivity_days"}
    assert raw["data"]["path"] == "."
    truth = _truth(folder)
    assert str(raw["data"]["as_of"]) == truth["window"]["as_of"]
    assert str(raw["data"]["window_start"]) == truth["window"]["start"]
    customers = _tables(folder)["customers"]
    has_churn_dates = "churn_date" in customers.columns and customers["churn_date"].notna().any()
    expected = "contractual" if has_churn_dates else "inactivity"
    assert raw["analysis"]["churn_definition"] == expected


@pytest.mark.parametrize("name", list(SIZES))
def test_customers_flag_sets_the_size(worlds, name):
    n = SIZES[name] or presets.PRESETS[name].customers
    assert len(pd.read_parquet(worlds[name] / "customers.parquet")) == n


@pytest.mark.parametrize("name", list(SIZES))
def test_same_seed_gives_identical_bytes_and_another_seed_does_not(worlds, tmp_path, name):
    again = _run(tmp_path / "again", name, SIZES[name])
    assert _digest(again) == _digest(worlds[name])
    other = _run(tmp_path / "other", name, SIZES[name], SEED + 1)
    assert _digest(other)["transactions.parquet"] != _digest(worlds[name])["transactions.parquet"]


def test_sample_preset_is_the_default_world_unchanged(worlds, tmp_path):
    plain = _digest(_run(tmp_path / "plain", None, SIZES["sample"]))
    assert plain == _digest(worlds["sample"])
    api = tmp_path / "api"
    synth.write(synth.generate(n_customers=SIZES["sample"], seed=SEED), api)
    via_api = _digest(api)
    assert "params.yaml" not in via_api
    assert {k: v for k, v in plain.items() if k != "params.yaml"} == via_api


def test_csv_format_writes_every_preset_table(tmp_path):
    out = _run(tmp_path / "csv", "retail", 200, SEED, "--format", "csv")
    assert {p.name for p in out.iterdir()} == {
        "customers.csv",
        "transactions.csv",
        "loyalty.csv",
        "experience.csv",
        "truth.json",
        "params.yaml",
    }
    problems = data.check(config.load_params(out / "params.yaml"))
    assert [p for p in problems if p.severity == "error"] == []


def test_unknown_preset_and_dirty_non_sample_preset_are_refused(tmp_path):
    with pytest.raises(SystemExit):
        synth.main(["--out", str(tmp_path / "x"), "--preset", "nonsense"])
    with pytest.raises(ParamsError, match="dirty"):
        presets.generate_preset("subscription", 100, dirty=True)
    with pytest.raises(ParamsError, match="at least 10"):
        presets.generate_preset("b2b", 5)


# ---------------------------------------------------------------------------
# subscription
# ---------------------------------------------------------------------------


def _renewal_frame(folder: Path) -> pd.DataFrame:
    t = _tables(folder)
    charges = t["transactions"].groupby("customer_id").size().rename("charges")
    return t["customers"].set_index("customer_id").join(charges)


def test_subscription_charges_once_a_month_while_active_and_has_no_loyalty(worlds):
    folder = worlds["subscription"]
    t = _tables(folder)
    assert "loyalty" not in t and not list(folder.glob("loyalty*"))
    assert "ticket" in set(t["experience"]["kind"])
    cust = t["customers"].set_index("customer_id")
    tx = t["transactions"].sort_values(["customer_id", "date"]).reset_index(drop=True)
    as_of = pd.Timestamp(_truth(folder)["window"]["as_of"])
    # charge k is on signup + k months (pandas DateOffset), for k = 0, 1, ... in a row
    k = tx.groupby("customer_id").cumcount()
    signup = cust.loc[tx["customer_id"], "signup_date"].to_numpy()
    expected = [
        pd.Timestamp(s) + pd.DateOffset(months=int(m)) for s, m in zip(signup, k, strict=True)
    ]
    assert (tx["date"].to_numpy() == np.array(expected, dtype="datetime64[ns]")).all()
    # churners paid up to the month before their churn date, the others up to as_of
    n = tx.groupby("customer_id").size().reindex(cust.index, fill_value=0)
    last = tx.groupby("customer_id")["date"].max().reindex(cust.index)
    churned = cust["churn_date"].notna()
    nxt = [
        pd.Timestamp(s) + pd.DateOffset(months=int(m))
        for s, m in zip(cust["signup_date"], n, strict=True)
    ]
    nxt = pd.Series(pd.to_datetime(nxt), index=cust.index)
    assert (nxt[churned] == cust.loc[churned, "churn_date"]).all()
    assert (nxt[~churned] > as_of).all()
    assert (last <= as_of).all()
    # a fixed price per plan
    plans = _truth(folder)["plans"]
    price = tx["customer_id"].map(cust["plan"]).map({k: v["price"] for k, v in plans.items()})
    np.testing.assert_allclose(tx["amount"], price)


def test_subscription_cohort_retention_matches_planted_beta_geometric_survival(worlds):
    folder = worlds["subscription"]
    truth = _truth(folder)
    g, d = truth["sbg"]["gamma"], truth["sbg"]["delta"]
    df = _renewal_frame(folder)
    as_of = pd.Timestamp(truth["window"]["as_of"])
    for t in (1, 3, 6, 12, 24):
        opp = pd.Series(
            [pd.Timestamp(s) + pd.DateOffset(months=t) for s in df["signup_date"]],
            index=df.index,
        )
        at_risk = opp <= as_of  # the t-th renewal opportunity has come
        renewed = (df.loc[at_risk, "charges"] >= t + 1).mean()
        s_t = np.exp(special.betaln(g, d + t) - special.betaln(g, d))
        se = np.sqrt(s_t * (1 - s_t) / at_risk.sum())
        assert abs(renewed - s_t) < 4 * se, (t, renewed, s_t, se)
        assert truth["retention_curve"]["survival"][t] == pytest.approx(s_t, abs=1e-8)


def test_subscription_truth_clv_agrees_with_an_independent_derl_and_an_sbg_fit(worlds):
    from analysis.stats.btyd.sbg import SBGResult, fit_sbg

    folder = worlds["subscription"]
    truth = _truth(folder)
    clv = truth["clv"]
    g, d = truth["sbg"]["gamma"], truth["sbg"]["delta"]
    df = _renewal_frame(folder)
    active = df[df["churn_date"].isna()]
    m = (active["charges"] - 1).to_numpy()
    assert clv["n_active"] == len(active)
    assert {int(k): v for k, v in clv["active_by_renewals"].items()} == dict(
        zip(*np.unique(m, return_counts=True), strict=True)
    )
    rate = clv["discount_rate_per_month"]
    assert rate == pytest.approx(1.1 ** (1 / 12) - 1, rel=1e-8)
    derl = SBGResult.from_params(g, d).discounted_residual_lifetime(m, rate)
    margin = active["plan"].map({k: v["margin"] for k, v in truth["plans"].items()})
    assert clv["model"]["residual_lifetime_total"] == pytest.approx(derl.sum(), rel=1e-6)
    assert clv["model"]["clv_margin_total"] == pytest.approx((margin * derl).sum(), rel=1e-6)
    # the planted parameters are what a maximum-likelihood sBG fit of the data estimates
    frame = df.assign(periods=df["charges"] - 1, churned=df["churn_date"].notna())
    fit = fit_sbg(frame.reset_index(), periods="periods", churned="churned")
    for name, planted in (("gamma", g), ("delta", d)):
        assert abs(fit.params[name] - planted) < 4 * fit.se[name], (name, fit.params[name])


# ---------------------------------------------------------------------------
# retail
# ---------------------------------------------------------------------------


def test_retail_is_non_contractual_with_surveys_only_and_a_loyalty_programme(worlds):
    t = _tables(worlds["retail"])
    cust, tx, exp = t["customers"], t["transactions"], t["experience"]
    assert cust["churn_date"].isna().all()
    assert set(exp["kind"]) == {"survey"}
    assert not {"first_contact_resolution", "sla_met", "response_hours"} & set(exp.columns)
    assert len(t["loyalty"]) > 0
    n_tx = tx.groupby("customer_id").size()
    assert (n_tx == 1).mean() > 0.5  # most customers buy once
    # each customer's first purchase is on the signup date
    first = tx.groupby("customer_id")["date"].min()
    assert (first == cust.set_index("customer_id")["signup_date"].reindex(first.index)).all()
    # heavy-tailed spend: the largest baskets are far above the typical one
    amount = tx["amount"]
    assert amount.quantile(0.999) > 8 * amount.median()


def test_retail_one_time_buyers_and_repeat_purchases_match_planted_bgnbd(worlds):
    folder = worlds["retail"]
    truth = _truth(folder)
    bg = truth["bgnbd"]
    r, alpha, a, b = bg["r"], bg["alpha_per_week"], bg["a"], bg["b"]
    t = _tables(folder)
    cust = t["customers"].set_index("customer_id")
    repeat = t["transactions"].groupby("customer_id").size().reindex(cust.index) - 1
    as_of = pd.Timestamp(truth["window"]["as_of"])
    T = ((as_of - cust["signup_date"]).dt.days + 1).to_numpy() / 7.0
    p0 = (alpha / (alpha + T)) ** r
    share = (repeat == 0).mean()
    se = np.sqrt((p0 * (1 - p0)).sum()) / len(p0)
    assert abs(share - p0.mean()) < 4 * se, (share, p0.mean(), se)
    assert truth["one_time_buyers"]["share_observed"] == pytest.approx(share, abs=1e-6)
    # E[X(T)] of the BG/NBD, eq. 9 of Fader, Hardie & Lee (2005)
    ex = (
        (a + b - 1)
        / (a - 1)
        * (1 - (alpha / (alpha + T)) ** r * special.hyp2f1(r, b, a + b - 1, T / (alpha + T)))
    )
    se_x = repeat.std() / np.sqrt(len(repeat))
    assert abs(repeat.mean() - ex.mean()) < 4 * se_x, (repeat.mean(), ex.mean(), se_x)


# ---------------------------------------------------------------------------
# b2b, short, minimal
# ---------------------------------------------------------------------------


def test_b2b_has_large_invoices_tiny_and_large_segments_and_annual_contracts(worlds):
    folder = worlds["b2b"]
    t = _tables(folder)
    cust, tx = t["customers"], t["transactions"]
    assert 200 <= len(cust) <= 500
    sizes = cust["segment"].value_counts()
    assert sizes.min() < 10 and sizes.max() >= 0.3 * len(cust)
    assert tx["amount"].median() > 1000
    assert {"ticket", "survey"} <= set(t["experience"]["kind"])
    churned = cust[cust["churn_date"].notna()]
    assert len(churned) > 0
    # contracts end on an anniversary of the signup date
    years = [
        (c.year - s.year) * 12 + (c.month - s.month)
        for s, c in zip(churned["signup_date"], churned["churn_date"], strict=True)
    ]
    assert all(y % 12 == 0 and y > 0 for y in years)
    ends = [
        pd.Timestamp(s) + pd.DateOffset(months=y)
        for s, y in zip(churned["signup_date"], years, strict=True)
    ]
    assert (pd.to_datetime(ends) == pd.to_datetime(churned["churn_date"].to_numpy())).all()
    truth = _truth(folder)
    assert set(truth["segments"]["below_min_group_size"]) == set(sizes[sizes < 10].index)


def test_short_covers_six_months(worlds):
    folder = worlds["short"]
    truth = _truth(folder)
    start, as_of = pd.Timestamp(truth["window"]["start"]), pd.Timestamp(truth["window"]["as_of"])
    assert as_of == start + pd.DateOffset(months=6) - pd.Timedelta(days=1)
    t = _tables(folder)
    for name in ("transactions", "experience"):
        dates = t[name]["date"]
        assert dates.min() >= start and dates.max() <= as_of
        assert (dates.max() - dates.min()).days >= 150
    assert set(t) == {"customers", "transactions", "loyalty", "experience"}


def test_minimal_has_only_the_required_columns_of_the_required_tables(worlds):
    folder = worlds["minimal"]
    t = _tables(folder)
    required = {n: s for n, s in contract.TABLES.items() if s.required}
    assert set(t) == set(required)
    for name, spec in required.items():
        assert list(t[name].columns) == spec.required_columns
