"""Tests of analysis.cdnow: the CDNOW loader maps the real data onto the data contract.

Counts from the README of data/external/cdnow (and Fader, Hardie & Lee 2005): 23,570
customers and 69,659 purchases in the master file; 2,357 customers and 6,919 purchases
in the 1/10 sample; dates 1997-01-01 to 1998-06-30; first purchases in 1997 Q1.
"""

from __future__ import annotations

import shutil

import pandas as pd
import pytest

from analysis import cdnow, value
from analysis.errors import AnalysisError


@pytest.fixture(scope="module")
def tables():
    return cdnow.load()


def test_load_counts_and_mapping(tables):
    c, t = tables["customers"], tables["transactions"]
    assert len(c) == 23570 and c["customer_id"].is_unique
    assert len(t) == 69659
    assert list(t.columns) == ["customer_id", "date", "amount"]
    assert t["date"].min() == pd.Timestamp("1997-01-01")
    assert t["date"].max() == pd.Timestamp("1998-06-30")
    # signup = first purchase; all first purchases in 1997 Q1; no churn dates.
    first = t.groupby("customer_id")["date"].min()
    assert (c.set_index("customer_id")["signup_date"] == first).all()
    assert c["signup_date"].max() <= pd.Timestamp("1997-03-31")
    assert c["churn_date"].isna().all()
    assert sorted(c["segment"].unique()) == ["1997-01", "1997-02", "1997-03"]
    assert c["in_sample"].sum() == 2357


def test_master_restricted_to_sample_equals_sample_file():
    s = cdnow.load(sample_only=True)
    raw = cdnow.read_sample()
    assert len(s["customers"]) == 2357
    a = s["transactions"].sort_values(["customer_id", "date", "amount"]).reset_index(drop=True)
    b = (
        raw.rename(columns={"dollar_value": "amount"})[["customer_id", "date", "amount"]]
        .sort_values(["customer_id", "date", "amount"])
        .reset_index(drop=True)
    )
    pd.testing.assert_frame_equal(a, b)


def test_loaded_sample_reproduces_paper_summary():
    s = cdnow.load(sample_only=True)
    summ = value.rfm_summary(
        s["transactions"],
        calibration_end=cdnow.CALIBRATION_END,
        observation_end=cdnow.OBSERVATION_END,
    )
    assert len(summ) == 2357
    assert (summ["frequency"] > 0).sum() == 946  # Fader & Hardie (2013) gamma-gamma note


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_write_and_cli_round_trip(tmp_path, fmt):
    out = tmp_path / "cdnow"
    rc = cdnow.main(["--out", str(out), "--format", fmt, "--sample"])
    assert rc == 0
    suffix = ".parquet" if fmt == "parquet" else ".csv"
    c = (
        pd.read_parquet(out / f"customers{suffix}")
        if fmt == "parquet"
        else pd.read_csv(out / f"customers{suffix}", dtype={"customer_id": str})
    )
    assert len(c) == 2357
    assert c["customer_id"].str.len().eq(5).all()  # zero-padded ids survive
    if fmt == "parquet":
        import pyarrow.parquet as pq

        schema = pq.read_schema(out / "customers.parquet")
        assert str(schema.field("signup_date").type) == "date32[day]"
        assert str(schema.field("churn_date").type) == "date32[day]"


def test_contract_validation_accepts_output(tmp_path):
    from analysis import config, data

    out = tmp_path / "cdnow"
    cdnow.write(cdnow.load(sample_only=True), out)
    params = config.params_from_dict(
        {"data": {"source": "folder", "path": str(out), "currency": "USD"}}
    )
    src = data.load(params)
    assert str(src.as_of) == "1998-06-30"
    assert not src.has("loyalty") and not src.has("experience")


def test_bad_inputs(tmp_path):
    assert cdnow.main(["--out", str(tmp_path / "x"), "--dir", str(tmp_path / "nowhere")]) == 2
    d = tmp_path / "copy"
    d.mkdir()
    shutil.copy(cdnow.default_dir() / "CDNOW_sample.txt", d)
    (d / "CDNOW_master.txt").write_text(
        " customer_id  date number_of_cds  dollar_value\n 00001 19970101  1   11.77\n"
    )
    with pytest.raises(AnalysisError, match="sha256"):
        cdnow.load(d)
    with pytest.raises(AnalysisError, match="format"):
        cdnow.write({}, tmp_path / "y", format="xlsx")
