"""Tests for the sample-world generator (analysis.synth).

Small worlds (a few hundred customers) check the contract, determinism, dirt and the CLI;
one world of 6,000 customers checks marginal rates against the ranges stated in
docs/sample-world.md and recovers a planted hazard ratio with an independent estimator
(Mantel-Haenszel person-time rate ratio stratified by tenure band).
"""

from __future__ import annotations

import hashlib
import json
import math

import numpy as np
import pandas as pd
import pandas.testing as pdt
import pytest

from analysis import contract, synth
from analysis.data.synth import assemble as synth_assemble
from analysis.data.synth import truth as synth_truth
from analysis.data.synth.simulate import _Consts
from analysis.errors import ParamsError

SMALL = 400


@pytest.fixture(scope="module")
def small():
    return synth.generate(n_customers=SMALL, seed=11)


@pytest.fixture(scope="module")
def medium():
    return synth.generate(n_customers=6000, seed=2024)


@pytest.fixture(scope="module")
def dirty():
    return synth.generate(n_customers=SMALL, seed=11, dirty=True)


def _window(world):
    return pd.Timestamp(world.truth["window"]["start"]), pd.Timestamp(
        world.truth["window"]["as_of"]
    )


def _month_index(d: pd.Series, start: pd.Timestamp) -> pd.Series:
    return (d.dt.year - start.year) * 12 + d.dt.month - start.month


# ---------------------------------------------------------------------------
# Contract
# ---------------------------------------------------------------------------

_KIND_CHECK = {
    "id": pd.api.types.is_string_dtype,
    "str": pd.api.types.is_string_dtype,
    "date": pd.api.types.is_datetime64_any_dtype,
    "float": pd.api.types.is_float_dtype,
    "int": pd.api.types.is_integer_dtype,
    "bool": pd.api.types.is_bool_dtype,
}


@pytest.mark.parametrize("name", contract.TABLE_NAMES)
def test_tables_have_contract_columns_and_kinds(small, name):
    df = small.tables[name]
    spec = contract.TABLES[name]
    assert set(spec.required_columns) <= set(df.columns)
    extra = set(df.columns) - set(spec.column_names)
    if name == "customers":
        assert extra == {"value_tier", "region", "channel"}
    else:
        assert extra == set()
    for col in spec.columns:
        if col.name in df.columns:
            assert _KIND_CHECK[col.kind](df[col.name]), (name, col.name, df[col.name].dtype)
        if col.name in df.columns and (col.lo is not None or col.hi is not None):
            v = df[col.name].dropna().astype(float)
            if col.lo is not None:
                assert (v >= col.lo).all(), (name, col.name)
            if col.hi is not None:
                assert (v <= col.hi).all(), (name, col.name)


def test_ids_unique_no_orphans_sorted(small):
    t = small.tables
    cust = t["customers"]
    assert cust["customer_id"].is_unique
    assert len(cust) == SMALL
    assert cust["customer_id"].str.fullmatch(r"C\d{7}").all()
    assert cust["customer_id"].is_monotonic_increasing
    known = set(cust["customer_id"])
    for name in ("transactions", "loyalty", "experience"):
        assert set(t[name]["customer_id"]) <= known, name
        assert t[name]["customer_id"].is_monotonic_increasing, name
    assert t["loyalty"]["customer_id"].is_unique


def test_dates_inside_window_and_customer_lifetime(small):
    start, as_of = _window(small)
    cust = small.tables["customers"].set_index("customer_id")
    # day precision
    for name, cols in (("customers", ["signup_date", "churn_date"]), ("transactions", ["date"])):
        for c in cols:
            d = small.tables[name][c].dropna()
            assert (d == d.dt.normalize()).all()
    assert (cust["signup_date"] <= as_of).all()
    churned = cust["churn_date"].notna()
    assert (cust.loc[churned, "churn_date"] >= start).all()
    assert (cust.loc[churned, "churn_date"] <= as_of).all()
    assert (cust.loc[churned, "churn_date"] >= cust.loc[churned, "signup_date"]).all()
    # left truncation: some customers signed up before the window, all alive at its start
    pre = cust["signup_date"] < start
    assert 0.2 < pre.mean() < 0.5
    for name in ("transactions", "experience"):
        df = small.tables[name]
        su = df["customer_id"].map(cust["signup_date"])
        ch = df["customer_id"].map(cust["churn_date"])
        assert (df["date"] >= start).all() and (df["date"] <= as_of).all(), name
        assert (df["date"] >= su).all(), name
        assert (ch.isna() | (df["date"] <= ch)).all(), name


def test_churn_reason_only_for_churners(small):
    cust = small.tables["customers"]
    active = cust["churn_date"].isna()
    assert cust.loc[active, "churn_reason"].isna().all()
    reasons = cust.loc[~active, "churn_reason"].dropna()
    assert set(reasons) <= set(synth.REASONS)
    assert cust.loc[~active, "churn_reason"].notna().mean() > 0.9


def test_loyalty_rows_are_consistent(small):
    start, as_of = _window(small)
    loy = small.tables["loyalty"]
    cust = small.tables["customers"].set_index("customer_id")
    assert len(loy) > 0
    assert (loy["enrolled_date"] >= start).all()  # programme launched at the window start
    assert (loy["enrolled_date"] >= loy["customer_id"].map(cust["signup_date"])).all()
    ch = loy["customer_id"].map(cust["churn_date"])
    assert (ch.isna() | (loy["enrolled_date"] <= ch)).all()
    left = loy["left_date"].notna()
    assert (loy.loc[left, "left_date"] > loy.loc[left, "enrolled_date"]).all()
    assert (loy.loc[left, "left_date"] <= as_of).all()
    assert set(loy["tier"]) <= set(synth.PROGRAMME_TIERS)
    assert (loy["points_redeemed"] <= loy["points_earned"]).all()
    # points: one per currency unit spent while a member
    tx = small.tables["transactions"].merge(loy, on="customer_id")
    inside = (tx["date"] >= tx["enrolled_date"]) & (
        tx["left_date"].isna() | (tx["date"] < tx["left_date"])
    )
    spent = tx[inside].groupby("customer_id")["amount"].sum()
    pts = loy.set_index("customer_id")["points_earned"]
    np.testing.assert_allclose(pts.loc[spent.index], np.floor(spent + 1e-9), atol=1.0)


def test_experience_rows_follow_their_kind(small):
    e = small.tables["experience"]
    assert set(e["kind"]) == {"ticket", "survey"}
    assert set(e["touchpoint"]) <= set(synth.TOUCHPOINTS)
    tk, sv = e[e["kind"] == "ticket"], e[e["kind"] == "survey"]
    ticket_cols = ["first_contact_resolution", "contacts_to_resolve", "sla_met", "response_hours"]
    assert tk[ticket_cols + ["compensated"]].notna().all().all()
    assert sv[ticket_cols + ["compensated"]].isna().all().all()
    assert tk[["csat", "nps", "ces"]].isna().all().all()
    assert sv[["csat", "nps", "ces"]].notna().any(axis=1).all()
    assert sv["nps"].isna().any()  # some answers missing
    # unresolved at first contact needs more than one contact; SLA is 24 hours
    assert (tk.loc[tk["first_contact_resolution"], "contacts_to_resolve"] == 1).all()
    assert (tk.loc[~tk["first_contact_resolution"], "contacts_to_resolve"] >= 2).all()
    np.testing.assert_array_equal(tk["sla_met"], tk["response_hours"] <= 24)
    # only failures are compensated
    fail = ~tk["first_contact_resolution"] | ~tk["sla_met"]
    assert not tk.loc[~fail, "compensated"].any()
    for c in ("csat", "nps", "ces"):
        v = sv[c].dropna()
        assert (v == np.round(v)).all()


# ---------------------------------------------------------------------------
# Determinism
# ---------------------------------------------------------------------------


def _digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_same_seed_same_frames_and_bytes(small, tmp_path):
    again = synth.generate(n_customers=SMALL, seed=11)
    for name in small.tables:
        pdt.assert_frame_equal(small.tables[name], again.tables[name])
    assert json.dumps(small.truth, sort_keys=True) == json.dumps(again.truth, sort_keys=True)
    for fmt in ("parquet", "csv"):
        p1 = synth.write(small, tmp_path / f"a_{fmt}", format=fmt)
        p2 = synth.write(again, tmp_path / f"b_{fmt}", format=fmt)
        assert set(p1) == {*contract.TABLE_NAMES, "truth"}
        for k in p1:
            assert _digest(p1[k]) == _digest(p2[k]), (fmt, k)


def test_different_seed_differs(small):
    other = synth.generate(n_customers=SMALL, seed=12)
    assert not small.tables["transactions"]["amount"].equals(other.tables["transactions"]["amount"])
    assert not small.tables["customers"]["signup_date"].equals(
        other.tables["customers"]["signup_date"]
    )


def test_parquet_round_trip_keeps_values(small, tmp_path):
    import pyarrow.parquet as pq

    paths = synth.write(small, tmp_path, format="parquet")
    tab = pq.read_table(paths["transactions"])
    assert str(tab.schema.field("date").type) == "date32[day]"
    assert tab.schema.metadata is None  # nothing run-specific in the file
    back = tab.to_pandas()
    np.testing.assert_array_equal(back["amount"], small.tables["transactions"]["amount"])
    dates = pd.to_datetime(back["date"]).to_numpy()
    np.testing.assert_array_equal(dates, small.tables["transactions"]["date"].to_numpy())
    truth = json.loads(paths["truth"].read_text())
    assert truth == small.truth


# ---------------------------------------------------------------------------
# Truth layout
# ---------------------------------------------------------------------------


def test_truth_layout(small):
    t = small.truth
    assert {"params", "window", "survival", "loyalty", "experience", "value", "rates"} <= set(t)
    assert t["survival"]["reference_levels"] == {"segment": "consumer", "value_tier": "medium"}
    assert set(t["survival"]["hazard_ratios"]) == {
        "segment[business]",
        "value_tier[high]",
        "value_tier[low]",
    }
    for key in (
        "churn_hazard_ratio",
        "spend_lift",
        "by_tier",
        "landmarks",
        "post_leaving_hazard_ratio",
    ):
        assert key in t["loyalty"]
    for L in ("6", "12"):
        lm = t["loyalty"]["landmarks"][L]
        for key in ("n", "n_treated", "spend_ATE", "spend_ATT", "retained_ATE", "retained_ATT"):
            assert key in lm
        assert "definition" in lm
    for key in (
        "detractor_hazard_ratio",
        "passive_hazard_ratio",
        "sla_breach_hazard_ratio",
        "unresolved_ticket_hazard_ratio",
        "revenue_effect_per_csat_point",
        "touchpoint_failure_hazard_ratio",
        "compensation_hazard_ratio",
    ):
        assert key in t["experience"]
    assert set(t["experience"]["touchpoint_failure_hazard_ratio"]) == set(synth.TOUCHPOINTS)
    assert t["value"]["purchase_rate"]["distribution"] == "gamma"
    assert t["params"]["n_customers"] == SMALL and t["params"]["seed"] == 11
    # every section that holds effects explains them
    for sec in ("survival", "experience", "rates", "window"):
        assert any("definition" in k for k in t[sec]), sec


def test_touchpoint_hazard_ratios_average_to_the_pooled_one(small):
    """Log HRs by touchpoint average (over the planned mix) to the pooled unresolved HR."""
    ex = small.truth["experience"]
    tp = ex["touchpoint_failure_hazard_ratio"]
    assert len(set(round(v, 3) for v in tp.values())) > 1  # touchpoints differ
    mix = _Consts(pd.Timestamp("2023-01-01"), 36).tp_mix
    mean_log = sum(w * math.log(tp[k]) for w, k in zip(mix, synth.TOUCHPOINTS, strict=True))
    assert mean_log == pytest.approx(math.log(ex["unresolved_ticket_hazard_ratio"]), abs=2e-6)


# ---------------------------------------------------------------------------
# Marginal rates: the ranges stated in docs/sample-world.md ("Rates" table)
# ---------------------------------------------------------------------------

RATE_RANGES = {
    "monthly_churn_rate": (0.02, 0.04),
    "purchases_per_customer_month": (1.2, 2.0),
    "transactions_per_customer": (20, 32),
    "enrolment_share": (0.2, 0.45),
    "detractor_share": (0.15, 0.3),
    "survey_response_rate": (0.28, 0.42),
    "sla_breach_rate": (0.08, 0.18),
    "first_contact_resolution_rate": (0.62, 0.78),
    "experience_events_per_customer": (2.4, 3.6),
    "pre_window_customer_share": (0.3, 0.4),
}


@pytest.mark.parametrize("name", sorted(RATE_RANGES))
def test_marginal_rates_in_documented_ranges(medium, name):
    lo, hi = RATE_RANGES[name]
    assert lo <= medium.truth["rates"][name] <= hi


def test_rates_match_the_tables(medium):
    """truth['rates'] agrees with a direct count on the tables."""
    start, as_of = _window(medium)
    cust = medium.tables["customers"]
    first = _month_index(cust["signup_date"], start).clip(lower=0)
    last = _month_index(cust["churn_date"].fillna(as_of), start)
    exposure = int((last - first + 1).sum())
    r = medium.truth["rates"]
    assert r["customer_months_at_risk"] == exposure
    # truth values are rounded to 6 decimals
    assert r["monthly_churn_rate"] == pytest.approx(
        cust["churn_date"].notna().sum() / exposure, abs=1e-6
    )
    nps = medium.tables["experience"]["nps"].dropna()
    assert r["detractor_share"] == pytest.approx((nps <= 6).mean(), abs=1e-6)
    assert r["enrolment_share"] == pytest.approx(
        len(medium.tables["loyalty"]) / len(cust), abs=1e-6
    )


def test_median_lifetime_between_one_and_a_half_and_three_years(medium):
    assert 18 <= medium.truth["survival"]["median_lifetime_months_reference"] <= 36


# ---------------------------------------------------------------------------
# Known-truth recovery with an independent estimator
# ---------------------------------------------------------------------------


def _person_time_by_tenure(cust, start, as_of, bands):
    """Return events and exposure (months) per customer and tenure band (left-truncated)."""
    days = 30.4375
    entry = ((start - cust["signup_date"]).dt.days / days).clip(lower=0).to_numpy()
    end = cust["churn_date"].fillna(as_of)
    exit_ = ((end - cust["signup_date"]).dt.days / days).to_numpy()
    event = cust["churn_date"].notna().to_numpy()
    d = np.zeros((len(cust), len(bands) - 1))
    t = np.zeros_like(d)
    for j, (a, b) in enumerate(zip(bands[:-1], bands[1:], strict=True)):
        t[:, j] = np.clip(np.minimum(exit_, b) - np.maximum(entry, a), 0, None)
        d[:, j] = event & (exit_ >= a) & (exit_ < b)
    return d, t


def _mantel_haenszel_rate_ratio(d, t, exposed):
    """Return the Mantel-Haenszel person-time rate ratio and its 99% interval.

    Variance of log RR from Greenland & Robins (1985), Biometrics 41:55-68, eq. for person-time
    data (also Rothman, Greenland & Lash, Modern Epidemiology 3rd ed., ch. 15).
    """
    d1, d0 = d[exposed].sum(0), d[~exposed].sum(0)
    t1, t0 = t[exposed].sum(0), t[~exposed].sum(0)
    tt = t1 + t0
    num = (d1 * t0 / tt).sum()
    den = (d0 * t1 / tt).sum()
    var = (t1 * t0 * (d1 + d0) / tt**2).sum() / (num * den)
    rr = num / den
    half = 2.576 * math.sqrt(var)  # 99% interval: three checks share one world
    return rr, rr * math.exp(-half), rr * math.exp(half)


@pytest.mark.parametrize(
    "key, column, level, reference",
    [
        ("segment[business]", "segment", "business", "consumer"),
        ("value_tier[low]", "value_tier", "low", "medium"),
        ("value_tier[high]", "value_tier", "high", "medium"),
    ],
)
def test_tenure_stratified_rate_ratio_recovers_planted_hazard_ratio(
    medium, key, column, level, reference
):
    start, as_of = _window(medium)
    cust = medium.tables["customers"]
    cust = cust[cust[column].isin([level, reference])]
    bands = [0, 3, 6, 12, 24, 36, 60, 1000]
    d, t = _person_time_by_tenure(cust, start, as_of, bands)
    rr, lo, hi = _mantel_haenszel_rate_ratio(d, t, (cust[column] == level).to_numpy())
    truth = medium.truth["survival"]["hazard_ratios"][key]
    assert lo <= truth <= hi, (rr, lo, hi, truth)
    assert hi / lo < 1.5  # informative


def test_landmark_population_and_naive_contrast_from_tables(medium):
    """The landmark definitions in truth can be rebuilt from the tables alone.

    Population size, treated count and the naive contrasts computed from the four tables
    equal the simulator's; members had higher spend before the landmark (selection on
    recent spend), and the planted effects are positive.
    """
    start, _ = _window(medium)
    months = medium.truth["params"]["months"]
    cust = medium.tables["customers"]
    loy = medium.tables["loyalty"].set_index("customer_id")
    s = _month_index(cust["signup_date"], start)
    ch = _month_index(cust["churn_date"], start).fillna(10**6)
    em = _month_index(cust["customer_id"].map(loy["enrolled_date"]), start).fillna(10**6)
    lm_left = _month_index(cust["customer_id"].map(loy["left_date"]), start).fillna(10**6)
    tx = medium.tables["transactions"]
    tx_m = _month_index(tx["date"], start)
    sid = pd.Series(np.arange(len(cust)), index=cust["customer_id"])
    spend = np.zeros((len(cust), months))
    np.add.at(spend, (sid[tx["customer_id"]].to_numpy(), tx_m.to_numpy()), tx["amount"].to_numpy())
    for L in (6, 12):
        truth = medium.truth["loyalty"]["landmarks"][str(L)]
        lmk = s + L
        pop = (lmk >= 3) & (lmk + 5 <= months - 1) & (ch >= lmk)
        treated = (em < lmk) & (lm_left >= lmk)
        assert int(pop.sum()) == truth["n"]
        assert int((pop & treated).sum()) == truth["n_treated"]
        idx = np.flatnonzero(pop)
        y = np.array([spend[i, lmk.iloc[i] : lmk.iloc[i] + 6].sum() for i in idx])
        ret = (ch.to_numpy()[idx] > lmk.to_numpy()[idx] + 5).astype(float)
        tr = treated.to_numpy()[idx]
        naive_spend = y[tr].mean() - y[~tr].mean()
        naive_ret = ret[tr].mean() - ret[~tr].mean()
        # amounts are rounded to cents after simulation: allow a cent per purchase
        assert naive_spend == pytest.approx(truth["naive_spend_diff"], abs=1.0)
        assert naive_ret == pytest.approx(truth["naive_retained_diff"], abs=1e-6)  # 6 decimals
        pre = np.array([spend[i, lmk.iloc[i] - 3 : lmk.iloc[i]].sum() for i in idx])
        assert np.log1p(pre[tr]).mean() > np.log1p(pre[~tr]).mean() + 0.2
        assert truth["spend_ATE"] > 0 and truth["retained_ATE"] > 0


# ---------------------------------------------------------------------------
# Dirt
# ---------------------------------------------------------------------------


def test_clean_world_has_no_dirt(small):
    assert "dirt" not in small.truth
    assert (small.tables["transactions"]["amount"] > 0).all()


def test_dirty_flag_injects_what_it_records(small, dirty):
    rec = dirty.truth["dirt"]
    _, as_of = _window(dirty)
    cust = dirty.tables["customers"]
    dup = cust.loc[cust["customer_id"].duplicated(keep=False), "customer_id"].unique()
    assert sorted(dup) == rec["duplicate_customer_ids"]
    tx = dirty.tables["transactions"]
    orphans = sorted(set(tx["customer_id"]) - set(cust["customer_id"]))
    assert orphans == rec["orphan_transaction_customer_ids"] and len(orphans) >= 3
    assert int((tx["date"] > as_of).sum()) == rec["future_transactions"]
    assert int((tx["amount"] < 0).sum()) == rec["negative_amounts"]
    sv = dirty.tables["experience"]
    bad = (sv["nps"] > 10) | (sv["csat"] > 5) | (sv["ces"] > 7)
    assert int(bad.sum()) == rec["out_of_range_surveys"] > 0
    # the clean part is unchanged and the truth statistics are those of the clean world
    assert dirty.truth["rates"] == small.truth["rates"]
    clean_ids = cust.drop_duplicates("customer_id")
    assert len(clean_ids) == SMALL


# ---------------------------------------------------------------------------
# CLI and parameter errors
# ---------------------------------------------------------------------------


def test_main_writes_tables_and_truth(tmp_path, capsys):
    out = tmp_path / "world"
    rc = synth.main(["--customers", "150", "--seed", "4", "--out", str(out), "--format", "csv"])
    assert rc == 0
    for name in contract.TABLE_NAMES:
        assert (out / f"{name}.csv").is_file()
    truth = json.loads((out / "truth.json").read_text())
    assert truth["params"]["n_customers"] == 150 and truth["params"]["seed"] == 4
    assert truth["window"] == {
        "start": "2023-01-01",
        "as_of": "2025-12-31",
        "definition": truth["window"]["definition"],
    }
    cust = pd.read_csv(out / "customers.csv")
    assert len(cust) == 150
    assert "sample world written" in capsys.readouterr().out


def test_main_start_months_and_dirty(tmp_path):
    out = tmp_path / "w"
    rc = synth.main(
        [
            "--customers",
            "100",
            "--out",
            str(out),
            "--start",
            "2022-07-01",
            "--months",
            "18",
            "--dirty",
        ]
    )
    assert rc == 0
    truth = json.loads((out / "truth.json").read_text())
    assert truth["window"]["as_of"] == "2023-12-31"
    assert "dirt" in truth and truth["params"]["dirty"] is True


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"start": "2023-01-15"}, "first day of a month"),
        ({"n_customers": 5}, "at least 10"),
        ({"months": 6}, "at least 12"),
    ],
)
def test_bad_parameters_raise_params_error(kwargs, match):
    with pytest.raises(ParamsError, match=match):
        synth.generate(**{"n_customers": 50, **kwargs})


def test_write_rejects_unknown_format(small, tmp_path):
    with pytest.raises(ParamsError, match="format"):
        synth.write(small, tmp_path, format="xlsx")


def test_write_refuses_a_file_as_output_folder(small, tmp_path):
    target = tmp_path / "not_a_folder"
    target.write_text("x")
    with pytest.raises(ParamsError, match="not a folder"):
        synth.write(small, target)


def test_value_truth_units_and_mean_basket(medium):
    """Gamma rates convert between time units inversely; the mean basket is p * gamma / (q - 1)."""
    pr = medium.truth["value"]["purchase_rate"]
    per_month = pr["shape_r"] / pr["rate_alpha_per_month"]
    assert pr["shape_r"] / pr["rate_alpha_per_week"] == pytest.approx(
        per_month * 7 / 30.4375, rel=1e-5
    )
    assert pr["shape_r"] / pr["rate_alpha_per_day"] == pytest.approx(per_month / 30.4375, rel=1e-5)
    sp = medium.truth["value"]["spend"]
    assert sp["mean_amount"] == pytest.approx(3.0 * 53.0 / 4.0)
    # each customer's average basket has mean p * gamma / (q - 1) (the purchase-weighted mean
    # is pulled up a little because high-value tiers churn less); heavy tails: 5% tolerance
    per_customer = medium.tables["transactions"].groupby("customer_id")["amount"].mean()
    assert per_customer.mean() == pytest.approx(sp["mean_amount"], rel=0.05)


def test_sequential_trial_truth(medium, monkeypatch):
    """Sequential-trial truth: layout, exact when every person-trial is simulated, and an
    unbiased Monte Carlo estimate (within its reported error) when controls are sampled."""
    full = medium.truth["loyalty"]["sequential"]
    for key in ("n_person_trials", "n_enrolments", "spend_ATE", "spend_ATT", "retained_ATE"):
        assert key in full
    assert "definition" in full
    assert full["control_sample_fraction"] == 1.0 and full["mc_se_spend_ATE"] == 0.0
    # enrolment events are the treated person-trials; the programme raises expected spend
    assert 0 < full["n_enrolments"] < full["n_person_trials"]
    assert full["spend_ATT"] > 0 and full["spend_ATE"] > 0
    # enrolment follows recent spend: enrollees would have spent more anyway
    assert full["selection_bias_spend"] > 0
    # sampling controls must not change the world or the ATT, only add Monte Carlo error
    # the generator reads the threshold in assemble, the truth definition in truth
    monkeypatch.setattr(synth_assemble, "SEQ_FULL_TRUTH_CUSTOMERS", 1500)  # fraction 0.25
    monkeypatch.setattr(synth_truth, "SEQ_FULL_TRUTH_CUSTOMERS", 1500)
    sub = synth.generate(n_customers=6000, seed=2024)
    pd.testing.assert_frame_equal(sub.tables["transactions"], medium.tables["transactions"])
    t = sub.truth["loyalty"]["sequential"]
    assert t["control_sample_fraction"] == pytest.approx(0.25)
    assert t["n_person_trials"] == full["n_person_trials"]
    assert t["spend_ATT"] == full["spend_ATT"] and t["retained_ATT"] == full["retained_ATT"]
    for y in ("spend", "retained"):
        assert 0 < t[f"mc_se_{y}_ATE"]
        assert abs(t[f"{y}_ATE"] - full[f"{y}_ATE"]) < 4 * t[f"mc_se_{y}_ATE"]
    # the per-person-trial effects behind it: sampled controls carry weight 1 / 0.25
    eff = sub.sequential_effects
    assert set(eff.loc[~eff.treated, "weight"].round(9)) == {4.0}
    assert (eff.loc[eff.treated, "weight"] == 1).all()


def test_sequential_effects_average_to_the_truth(medium):
    """The per-person-trial effects reproduce truth.json's ATT and ATE, and a subset average
    (what a trimmed estimate targets) is the plain mean of its rows' effects."""
    from analysis import loyalty

    full = medium.truth["loyalty"]["sequential"]
    eff = medium.sequential_effects
    assert len(eff) == full["n_person_trials"] and int(eff.treated.sum()) == full["n_enrolments"]
    win = medium.truth["window"]
    f = loyalty.trial_frame(
        medium.tables["customers"],
        medium.tables["transactions"],
        medium.tables["loyalty"],
        medium.tables["experience"],
        window_start=win["start"],
        as_of=win["as_of"],
    )
    # the analysis frame's person-trials are exactly the simulated ones, with the same treatment
    m = f[["customer_id", "trial_month", "member"]].merge(
        eff, on=["customer_id", "trial_month"], how="outer", indicator=True
    )
    assert (m["_merge"] == "both").all()
    assert (m["member"].astype(bool) == m["treated"]).all()
    every = synth.sequential_truth(medium, f)
    assert every["n_unmatched"] == 0 and not every["sampled"]
    treated = synth.sequential_truth(medium, f[f.member == 1])
    for y in ("spend", "retained"):
        assert every[y] == pytest.approx(full[f"{y}_ATE"], abs=1e-6)
        assert treated[y] == pytest.approx(full[f"{y}_ATT"], abs=1e-6)
    sub = f[f.trial_month % 2 == 0]
    key = sub[["customer_id", "trial_month"]].merge(eff, on=["customer_id", "trial_month"])
    assert synth.sequential_truth(medium, sub)["spend"] == pytest.approx(key["spend_effect"].mean())
    with pytest.raises(Exception, match="trial_month"):
        synth.sequential_truth(medium, f[["customer_id"]])
