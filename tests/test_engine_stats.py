"""Per-customer statistics built on the engine (analysis.data.customer_stats).

Each engine-built table is checked against a second implementation: the pandas/numpy
code that computed the same numbers from the event rows in Python (the public
``value.rfm_summary``, ``value.churn_risk_features`` and the array paths of the value
study). The same cases run on Spark and Postgres in tests/test_spark.py and
tests/test_postgres.py (``ENGINE_STATS_CASES``).
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from analysis import data, value
from analysis.data import customer_stats, experience_stats
from analysis.stats.btyd.units import _as_day
from analysis.studies.value import inputs
from analysis.studies.value.churn_risk import (
    _CustomerCoder,
    _cutoff_days,
    _EngineExperience,
    _ExperienceArrays,
    _TxBins,
)


def _split(study):
    """A calibration end, an observation end and a cutoff inside the study's window."""
    ws, ao = pd.Timestamp(study.window_start), pd.Timestamp(study.as_of)
    cal = (ws + (ao - ws) / 2).normalize().date()
    return cal, ao.date(), (ao - pd.Timedelta(days=120)).date()


# name -> function(source, study) returning an Ibis expression; every engine must give
# the same table (tests/test_spark.py and tests/test_postgres.py run these).
ENGINE_STATS_CASES = {
    "rfm_now": lambda s, st: customer_stats.rfm(s, calibration_end=st.as_of, margin=True),
    "rfm_holdout_cohort": lambda s, st: customer_stats.rfm(
        s,
        calibration_end=_split(st)[0],
        observation_end=_split(st)[1],
        since_signup=st.window_start,
    ),
    "repeat_purchases_by_day": lambda s, st: customer_stats.repeat_purchases_by_day(
        s, calibration_end=_split(st)[0], observation_end=_split(st)[1]
    ),
    "window_bins": lambda s, st: customer_stats.window_bins(
        s, [_split(st)[2] - dt.timedelta(days=d) for d in (365, 180, 90, 0)]
    ),
    "value_totals": lambda s, st: customer_stats.value_totals(
        s, recent_since=_split(st)[2], margin=True
    ),
    "experience_features": lambda s, st: customer_stats.experience_features(
        s, cutoff=_split(st)[2]
    ),
    "first_purchase_days": lambda s, st: customer_stats.first_purchase_days(s, 2),
    "monthly_purchases": lambda s, st: customer_stats.monthly_purchases(s),
    "monthly_service": lambda s, st: customer_stats.monthly_service(s),
    # the experience study (analysis.data.experience_stats; tests/test_experience_engine.py)
    "experience_sums": lambda s, st: experience_stats.experience_sums(s),
    "experience_sums_by_month": lambda s, st: experience_stats.experience_sums(s, period="month"),
    "experience_sums_by_segment": lambda s, st: experience_stats.experience_sums(s, by="segment"),
    "driver_sums": lambda s, st: experience_stats.driver_sums(s, window_days=30),
    "latest_nps": lambda s, st: experience_stats.latest_nps(s, before=_split(st)[2]),
    "touchpoint_sums": lambda s, st: experience_stats.touchpoint_sums(s),
    "customer_periods": lambda s, st: experience_stats.customer_periods(
        s, key="month", touchpoints=experience_stats.failed_touchpoints(s)
    ),
    "customer_days": lambda s, st: experience_stats.customer_periods(s, key="day"),
}
ENGINE_STATS_KEYS = {
    "repeat_purchases_by_day": ["date"],
    "window_bins": ["customer_id", "bin"],
    "first_purchase_days": ["customer_id", "date"],
    "monthly_purchases": ["customer_id", "date"],
    "monthly_service": ["customer_id", "date"],
    "experience_sums": ["customers"],
    "experience_sums_by_month": ["period"],
    "experience_sums_by_segment": ["segment"],
    "driver_sums": ["g0_answers"],
    "touchpoint_sums": ["touchpoint"],
    "customer_periods": ["customer_id", "date"],
    "customer_days": ["customer_id", "date"],
}


@pytest.fixture(scope="module")
def study(tiny_world):
    return data.load_study_data(tiny_world.params_file)


@pytest.fixture(scope="module")
def tables(study):
    return {n: study.table(n) for n in ("customers", "transactions", "experience")}


def _coder(study, tables):
    """The value study's coder: the source's codes (identifier order)."""
    return _CustomerCoder.from_source(study.source)


def _by_id(frame):
    return frame.sort_values("customer_id", kind="stable").reset_index(drop=True)


def test_rfm_on_the_engine_equals_the_pandas_summary(study, tables):
    tx = tables["transactions"]
    coder = _coder(study, tables)
    as_of = _as_day(study.as_of, "as_of")
    got, who = inputs.rfm_frame(
        inputs.rfm_table(study, cal_end=as_of, obs_end=None, margin=True),
        coder,
        cal_end=as_of,
        obs_end=None,
        freq="W",
    )
    want = value.rfm_summary(tx, calibration_end=study.as_of, margin="margin")
    assert len(want) > 300 and (want.frequency > 0).sum() > 100
    pd.testing.assert_frame_equal(_by_id(got), _by_id(want), check_exact=False, rtol=1e-12)
    np.testing.assert_array_equal(
        np.asarray(coder.ids_of(who), dtype=object), got["customer_id"].to_numpy(dtype=object)
    )
    ids = np.sort(tables["customers"]["customer_id"].to_numpy(dtype=object))
    np.testing.assert_array_equal(ids[who], got["customer_id"].to_numpy(dtype=object))
    assert np.all(np.diff(who) > 0)  # rows in code order


def test_calibration_rfm_with_holdout_and_cohort_equals_pandas(study, tables):
    cal, obs, _ = _split(study)
    cust = tables["customers"]
    cohort = cust.loc[pd.to_datetime(cust.signup_date) >= pd.Timestamp(study.window_start)]
    assert 0 < len(cohort) < len(cust)  # the cohort filter matters on this world
    tx = tables["transactions"]
    tx = tx[tx.customer_id.isin(cohort.customer_id)]
    got, _ = inputs.rfm_frame(
        inputs.rfm_table(
            study,
            cal_end=_as_day(cal, "c"),
            obs_end=_as_day(obs, "o"),
            margin=False,
            since_signup=study.window_start,
        ),
        _coder(study, tables),
        cal_end=_as_day(cal, "c"),
        obs_end=_as_day(obs, "o"),
        freq="D",
    )
    want = value.rfm_summary(tx, calibration_end=cal, observation_end=obs, freq="D")
    assert want.frequency_holdout.sum() > 0
    pd.testing.assert_frame_equal(_by_id(got), _by_id(want), check_exact=False, rtol=1e-12)


def test_repeat_purchase_days_equal_the_event_rows(study, tables):
    cal, obs, _ = _split(study)
    tx = tables["transactions"][["customer_id", "date"]].drop_duplicates()
    tx = tx[pd.to_datetime(tx.date) <= pd.Timestamp(obs)]
    first = tx.groupby("customer_id").date.transform("min")
    rep = tx[(tx.date > first) & (pd.to_datetime(first) <= pd.Timestamp(cal))]
    want = rep.groupby("date").size()
    days, n = inputs.repeat_days(study, cal_end=cal, obs_end=obs, since_signup=None)
    got = pd.Series(n, index=pd.to_datetime(days.astype("datetime64[D]")))
    assert want.sum() > 100
    assert got.to_dict() == {pd.Timestamp(k): float(v) for k, v in want.items()}


def test_window_bins_on_the_engine_equal_the_one_pass_bins(study, tables):
    tx = tables["transactions"]
    coder = _coder(study, tables)
    cuts = [_cutoff_days(_split(study)[2], 3), _cutoff_days(study.as_of, 3)]
    want = _TxBins.from_events(
        coder.codes_of(tx.customer_id),
        _as_day_series(tx.date),
        tx.amount.to_numpy(float),
        len(coder.ids),
        cuts,
    )
    got = inputs.purchase_bins(study, coder, cuts)
    np.testing.assert_array_equal(got.edges, want.edges)
    np.testing.assert_array_equal(got.count, want.count)
    np.testing.assert_allclose(got.amount, want.amount, rtol=1e-12, atol=1e-9)
    # the engine's bins hold day numbers as int32 (int32 min where no purchase)
    none = np.iinfo(np.int64).min
    last = got.last_in.astype(np.int64)
    last[got.last_in == np.iinfo(got.last_in.dtype).min] = none
    np.testing.assert_array_equal(last, want.last_in)
    for day in want.edges:
        np.testing.assert_array_equal(got.last(day), want.last(day))
        for a, b in zip(got.window(None, day), want.window(None, day), strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-9)
    assert got.max_day == want.max_day


def test_window_bins_of_some_customers_equal_their_rows_of_everyone(study, tables):
    """The churn-risk model's training windows are binned for the model sample only."""
    coder = _coder(study, tables)
    cuts = [_cutoff_days(_split(study)[2], 3)]
    full = inputs.purchase_bins(study, coder, cuts)
    some = np.arange(0, len(coder.ids), 3)  # every third customer, with and without purchases
    part = inputs.purchase_bins(study, coder, cuts, codes=some[::-1])
    np.testing.assert_array_equal(part.rows, some)
    np.testing.assert_array_equal(part.count, full.count[some])
    np.testing.assert_array_equal(part.amount, full.amount[some])
    np.testing.assert_array_equal(part.last_in, full.last_in[some])
    np.testing.assert_array_equal(part.rows_of(some[[4, 1]]), [4, 1])
    assert (full.count[some].sum(axis=1) == 0).any() and (full.count[some].sum(axis=1) > 0).any()
    with pytest.raises(Exception, match="missing from the transaction bins"):
        part.rows_of([1])
    # a subset taken in Python (a chunk of customers scored) equals the engine's subset,
    # whatever the order and repeats of the codes asked for; every row asked is itself
    sub = full.subset(np.concatenate([some[::-1], some[:5]]))
    for name in ("rows", "count", "amount", "last_in"):
        np.testing.assert_array_equal(getattr(sub, name), getattr(part, name))
    for day in part.edges:
        np.testing.assert_array_equal(sub.last(day), part.last(day))
        np.testing.assert_array_equal(sub.window(None, day)[1], part.window(None, day)[1])
    assert full.subset(np.arange(len(coder.ids))) is full
    with pytest.raises(Exception, match="missing from the transaction bins"):
        part.subset([1, 3])


def test_service_features_of_some_customers_equal_their_values_of_everyone(study, tables):
    """The churn-risk model's training features query the model sample's service only."""
    from analysis.studies.value.churn_risk import _EngineExperience

    coder = _coder(study, tables)
    n = len(coder.ids)
    cut = _cutoff_days(study.as_of, 3)[0]
    full = _EngineExperience(study.source, coder).features(cut, n)
    some = np.arange(1, n, 4)
    part = _EngineExperience(study.source, coder, codes=some).features(cut, n)
    assert full["tickets_90d"][some].sum() > 0
    for name, values in full.items():
        np.testing.assert_array_equal(np.asarray(part[name])[some], np.asarray(values)[some])


def _as_day_series(s):
    return pd.to_datetime(s).to_numpy().astype("datetime64[D]").astype(np.int64)


def test_value_totals_equal_pandas_sums(study, tables):
    tx = tables["transactions"]
    coder = _coder(study, tables)
    since = _split(study)[2]
    total, recent = inputs.value_by_code(study, coder, recent_since=since, margin=True)
    m = tx.margin.fillna(0.0)
    want_total = m.groupby(tx.customer_id).sum()
    want_recent = m[pd.to_datetime(tx.date) >= pd.Timestamp(since)].groupby(tx.customer_id).sum()
    codes = coder.codes_of(want_total.index)
    np.testing.assert_allclose(total[codes], want_total.to_numpy(), rtol=1e-12)
    r = np.zeros(len(coder.ids))
    r[coder.codes_of(want_recent.index)] = want_recent.to_numpy()
    np.testing.assert_allclose(recent, r, rtol=1e-12, atol=1e-9)


def _tie_world(tiny_world, tmp_path):
    """The tiny world with NPS answers on a customer's latest answer day duplicated
    with other scores (same-day ties), and some tickets' flags emptied."""
    src = tiny_world.data_dir
    d = tmp_path / "data"
    d.mkdir()
    for name in ("customers", "transactions", "loyalty"):
        pd.read_parquet(src / f"{name}.parquet").to_parquet(d / f"{name}.parquet")
    ex = pd.read_parquet(src / "experience.parquet")
    answered = ex[ex.nps.notna()]
    latest = answered.sort_values("date").groupby("customer_id").tail(1).head(40).copy()
    latest["nps"] = (latest["nps"] + 5) % 11  # a second, different answer that day
    ex = pd.concat([ex, latest], ignore_index=True)
    tick = ex.index[ex.kind == "ticket"][:30]
    ex.loc[tick, "first_contact_resolution"] = None
    ex.to_parquet(d / "experience.parquet")
    params = tmp_path / "params.yaml"
    params.write_text("data:\n  path: data\nreports:\n  output_dir: reports\n")
    return data.load_study_data(params), ex


@pytest.mark.parametrize("batch_rows", [1_000_000, 7])
def test_experience_features_on_the_engine_equal_the_event_arrays(
    tiny_world, tmp_path, monkeypatch, batch_rows
):
    """Equal to the per-event second implementation whether the engine's rows arrive in
    one batch or in many (7 rows each)."""
    from analysis.studies.value import churn_risk

    monkeypatch.setattr(churn_risk, "_FEATURE_BATCH_ROWS", batch_rows)
    study, ex = _tie_world(tiny_world, tmp_path)
    cust = study.table("customers")
    coder = _CustomerCoder.from_ids(cust.customer_id, cust.customer_id)
    coded = coder.code_frame(study.table("experience"), "customer_id")
    n = len(coder.ids)
    for cutoff in (_split(study)[2], study.as_of):
        cut = _as_day(cutoff, "cutoff")
        want = _ExperienceArrays(coded, "customer_id").features(cut, n)
        got = _EngineExperience(study.source, coder).features(cut, n)
        assert set(got) == set(want)
        for k in want:
            if k == "nps_category":
                np.testing.assert_array_equal(got[k], want[k])
            else:
                np.testing.assert_allclose(got[k], want[k], rtol=1e-12, equal_nan=True)
        assert want["tickets_90d"].sum() > 0 and np.isfinite(want["csat_mean_365d"]).any()
        assert (want["nps_category"] != "none").sum() > 50


def test_same_day_nps_answers_are_averaged_in_both_paths():
    # Customer 0 answered 10 and 0 on its latest day (mean 5: detractor), customer 1 answered
    # 9 earlier and 7 and 8 on its latest day (mean 7.5: passive).
    ex = pd.DataFrame(
        {
            "customer_id": [0, 0, 0, 1, 1, 1],
            "date": pd.to_datetime(
                ["2024-01-01", "2024-02-01", "2024-02-01", "2024-01-01", "2024-02-03", "2024-02-03"]
            ),
            "kind": "survey",
            "nps": [9.0, 10.0, 0.0, 9.0, 7.0, 8.0],
        }
    )
    f = _ExperienceArrays(ex, "customer_id").features(_as_day("2024-03-01", "c"), 2)
    assert f["nps_category"].tolist() == ["detractor", "passive"]


def test_first_purchase_days_give_the_same_return_times(study, tables):
    from analysis.studies import retention

    lt = study.lifetimes("inactivity")
    kw = dict(as_of=study.as_of, inactivity_days=180)
    every = retention.one_time_buyers(lt, transactions=tables["transactions"], **kw)
    two = retention.one_time_buyers(lt, transactions=study.first_purchase_days(2), **kw)
    assert every.n_returned == two.n_returned > 50
    assert every.return_median == two.return_median
    pd.testing.assert_frame_equal(every.returned_by, two.returned_by)
    assert study.first_purchase_days(2).groupby("customer_id").size().max() == 2


def _engine_monthly(study, build):
    from analysis.studies.loyalty import activity

    frame = build(study.source).to_pandas().sort_values(["customer_id", "date"])
    frame["date"] = pd.to_datetime(frame["date"]).astype("datetime64[ns]")
    return activity.mark(frame.reset_index(drop=True))


def _same_monthly(got, want):
    assert list(got.columns) == list(want.columns)
    got, want = got.reset_index(drop=True), want.reset_index(drop=True)
    pd.testing.assert_frame_equal(got, want, check_dtype=False, check_exact=False, rtol=1e-12)


def test_monthly_purchases_on_the_engine_equal_pandas(study, tables):
    from analysis.studies import loyalty

    want = loyalty.monthly_purchases(tables["transactions"])
    got = _engine_monthly(study, customer_stats.monthly_purchases)
    assert want["purchases"].sum() == len(tables["transactions"])
    assert (want["purchases"] > 1).any()  # months with several purchases are summed
    _same_monthly(got, want)


def test_monthly_service_on_the_engine_equals_pandas(tiny_world, tmp_path):
    from analysis.studies import loyalty

    study, ex = _tie_world(tiny_world, tmp_path)  # same-day NPS answers, empty FCR flags
    want = loyalty.monthly_service(study.table("experience"))
    got = _engine_monthly(study, customer_stats.monthly_service)
    assert want["tickets"].sum() > 0 and want["nps_n"].sum() > 0 and want["csat_n"].sum() > 0
    assert want["unresolved"].sum() > 0 and want["sla_breaches"].sum() > 0
    # a month with several answers: nps_last is the mean of the latest day's answers only
    assert (want["nps_n"] > 1).any()
    _same_monthly(got, want)


def test_same_day_nps_answers_average_in_the_monthly_table():
    from analysis.studies import loyalty

    ex = pd.DataFrame(
        {
            "customer_id": ["a"] * 4,
            "date": pd.to_datetime(["2024-01-03", "2024-01-20", "2024-01-20", "2024-02-01"]),
            "kind": ["survey", "survey", "survey", "ticket"],
            "nps": [10.0, 2.0, 9.0, np.nan],
            "first_contact_resolution": [None, None, None, False],
        }
    )
    m = loyalty.monthly_service(ex)
    assert m["nps_n"].tolist() == [3, 0] and m["nps_sum"].tolist() == [21.0, 0.0]
    assert m["nps_last"].iloc[0] == 5.5 and np.isnan(m["nps_last"].iloc[1])
    assert m["tickets"].tolist() == [0, 1] and m["unresolved"].tolist() == [0, 1]


def test_loyalty_frames_from_engine_sums_equal_frames_from_events(study, tables):
    # Every loyalty frame uses events only through monthly sums, so the frames built from
    # the engine's monthly tables equal those built from the event rows.
    from analysis.studies import loyalty

    cust, lo = study.table("customers"), study.table("loyalty")
    tx, ex = tables["transactions"], tables["experience"]
    mtx = _engine_monthly(study, customer_stats.monthly_purchases)
    mex = _engine_monthly(study, customer_stats.monthly_service)
    win = dict(window_start=study.window_start, as_of=study.as_of)
    a = loyalty.landmark_frame(cust, tx, lo, ex, landmark_months=6, **win)
    b = loyalty.landmark_frame(cust, mtx, lo, mex, landmark_months=6, **win)
    assert len(a) > 50 and a["prior_purchases"].sum() > 0 and a["prior_tickets"].sum() > 0
    pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=1e-12)
    a = loyalty.trial_frame(cust, tx, lo, ex, **win)
    b = loyalty.trial_frame(cust, mtx, lo, mex, **win)
    assert a["member"].sum() > 0 and (a["prior_nps_category"] != "none").any()
    pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=1e-12)
    a = loyalty.event_study_panel(cust, tx, lo, **win)
    b = loyalty.event_study_panel(cust, mtx, lo, **win)
    pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=1e-12)


# ---------------------------------------------------------------------------
# No study pulls an event-level table
# ---------------------------------------------------------------------------

# A kernel start-up file that logs the number of rows of every table an Ibis expression
# brings into the notebook's process.
_PULL_LOGGER = """
import json, os
import ibis.expr.types as _t

_log = os.environ["ANALYSIS_PULL_LOG"]


def _wrap(cls, name):
    orig = cls.__dict__[name]

    def pull(self, *args, **kwargs):
        out = orig(self, *args, **kwargs)
        rows = getattr(out, "num_rows", None)
        rows = len(out) if rows is None and hasattr(out, "__len__") else rows
        with open(_log, "a") as fh:
            fh.write(json.dumps({"rows": int(rows or 1)}) + "\\n")
        return out

    setattr(cls, name, pull)


for _cls in {_t.Expr, _t.Table, _t.Column}:
    for _name in ("to_pyarrow", "to_pandas", "execute", "to_pyarrow_batches"):
        if _name in _cls.__dict__:
            _wrap(_cls, _name)
"""

# Every report notebook: only per-customer (or per-period, per-group) tables reach them.
ENGINE_NOTEBOOKS = [
    "00_kpi_dashboard",
    "01_retention_survival",
    "02_loyalty_programme",
    "03_experience_revenue",
    "04_customer_value",
]


def _doubled_world(tiny_world, tmp_path):
    """The tiny world with every transaction and service event recorded twice (same day,
    same values): the same customers, with twice the events."""
    d = tmp_path / "data"
    d.mkdir()
    for name in ("customers", "loyalty", "transactions", "experience"):
        t = pd.read_parquet(tiny_world.data_dir / f"{name}.parquet")
        if name in ("transactions", "experience"):
            t = pd.concat([t, t], ignore_index=True)
            for c in ("transaction_id", "event_id"):
                if c in t.columns:
                    t[c] = np.arange(len(t))
        t.to_parquet(d / f"{name}.parquet")
    params = tmp_path / "params.yaml"
    params.write_text("data:\n  path: data\nreports:\n  output_dir: reports\n")
    return params


def _pulls(notebook: str, params_file, tmp_path) -> list[int]:
    import json
    import os
    from pathlib import Path

    import papermill as pm

    root = Path(__file__).resolve().parents[1]
    ipy = tmp_path / "ipython"
    (ipy / "profile_default" / "startup").mkdir(parents=True, exist_ok=True)
    (ipy / "profile_default" / "startup" / "00-pulls.py").write_text(_PULL_LOGGER)
    log = tmp_path / f"pulls-{notebook}.jsonl"
    env = {"IPYTHONDIR": str(ipy), "ANALYSIS_PULL_LOG": str(log)}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        pm.execute_notebook(
            str(root / "notebooks" / f"{notebook}.ipynb"),
            str(tmp_path / f"{notebook}.ipynb"),
            parameters={"params_file": str(params_file), "export_dir": str(tmp_path / "exp")},
            kernel_name="python3",
            progress_bar=False,
            cwd=str(root / "notebooks"),
        )
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    rows = [json.loads(line)["rows"] for line in log.read_text().splitlines()]
    assert rows, f"{notebook}: no pull was logged (is the start-up file read?)"
    return sorted(rows)


@pytest.mark.parametrize("notebook", ENGINE_NOTEBOOKS)
def test_no_study_pulls_an_event_level_table(notebook, tiny_world, tmp_path):
    # Twice the events for the same customers must not make any table that reaches the
    # notebook's process longer: what it reads is per customer, per period or per day.
    tx = pd.read_parquet(tiny_world.data_dir / "transactions.parquet")
    once = _pulls(notebook, tiny_world.params_file, tmp_path / "once")
    twice = _pulls(notebook, _doubled_world(tiny_world, tmp_path), tmp_path / "twice")
    grew = sorted(set(twice) - set(once))
    assert twice == once, f"{notebook}: pulls of {grew} rows appear only with twice the events"
    assert max(once) < len(tx)  # and no pull is as long as the transactions table


def test_each_process_spills_into_its_own_folder(tmp_path):
    # Notebook kernels of one run share a working directory; DuckDB's default spill folder
    # (.tmp there) made two kernels spilling at once corrupt each other's files.
    import os
    import subprocess
    import sys

    code = (
        "import os; from analysis import config; from analysis.data import sources\n"
        "con = sources.connect(config.params_from_dict({'data': {'path': '.'}}))\n"
        "d = con.raw_sql(\"SELECT current_setting('temp_directory')\").fetchone()[0]\n"
        "print(d, os.path.isdir(d))\n"
    )
    env = {**os.environ, "ANALYSIS_ENGINE_TEMP": str(tmp_path / "spill")}
    runs = [
        subprocess.run(
            [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True
        )
        for _ in range(2)
    ]
    dirs = []
    for r in runs:
        assert r.returncode == 0, r.stderr
        d, existed = r.stdout.split()
        assert existed == "True" and d.startswith(str(tmp_path / "spill"))
        dirs.append(d)
    assert dirs[0] != dirs[1]
    assert not any(os.path.exists(d) for d in dirs)  # removed at exit
