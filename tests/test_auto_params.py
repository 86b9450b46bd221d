"""Settings left at ``auto`` follow the columns the data has (issue 14, section 3).

Each test writes a small generated world (``analysis.synth``, 300 customers), edits its
customers table the way other businesses' tables differ from the sample's (columns
removed, identifiers, dates, numbers, tiny or half-empty groups, a strategic flag), and
checks which columns ``auto`` chooses, that the choices are stated in words, and that
``validate`` prints them. Expected choices follow from the columns each test plants
and the rule in docs/params.md, not from the code's output.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis import config, data, synth
from analysis.config import AUTO
from analysis.data import params_fit

AUTO_KEYS = params_fit.AUTO_KEYS


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    """The clean sample world as CSV files (written once per module)."""
    d = tmp_path_factory.mktemp("auto_base") / "data"
    synth.write(synth.generate(n_customers=300, seed=2), d, format="csv")
    (d / "truth.json").unlink()
    return d


@pytest.fixture
def world(base, tmp_path):
    """Return a function (edit customers, params text, format) -> params file of a copy."""

    def make(edit=None, params: str = "", *, parquet: bool = False) -> Path:
        d = tmp_path / "data"
        if d.exists():
            shutil.rmtree(d)
        shutil.copytree(base, d)
        c = pd.read_csv(d / "customers.csv", dtype=str, keep_default_na=False)
        if edit is not None:
            c = edit(c)
        if parquet:
            (d / "customers.csv").unlink()
            c.replace("", None).to_parquet(d / "customers.parquet", index=False)
        else:
            c.to_csv(d / "customers.csv", index=False)
        p = tmp_path / "params.yaml"
        p.write_text("data:\n  path: data\n" + params)
        return p

    return make


def _study(p: Path):
    return data.load_study_data(p)


def _chosen(study) -> dict:
    return {k: params_fit._get(study.params, k) for k in AUTO_KEYS}


def _drop_attributes(c: pd.DataFrame) -> pd.DataFrame:
    return c.drop(columns=["segment", "value_tier", "region", "channel"])


def _complete_region(c: pd.DataFrame) -> pd.DataFrame:
    return c.assign(region=c["region"].replace("", "north"))


# --------------------------------------------------------------------------------------
# The defaults are auto
# --------------------------------------------------------------------------------------


def test_every_column_naming_setting_defaults_to_auto():
    p = config.Params()
    assert {k: params_fit._get(p, k) for k in AUTO_KEYS} == dict.fromkeys(AUTO_KEYS, AUTO)
    # strata stay off by default: stratifying is a choice made when hazards are not proportional
    assert p.survival.cox_strata == [] and p.experience.cox_strata is None
    # no default names a column of the sample world
    for row in config.describe_params():
        for name in ("value_tier", "business", "'segment'"):
            assert name not in row["default"], row


def test_explicit_lists_null_and_empty_lists_keep_their_meaning(tmp_path):
    p = tmp_path / "p.yaml"
    p.write_text(
        "data:\n  path: .\nanalysis:\n  group: null\nsurvival:\n  cox_covariates: []\n"
        "  group: region\nloyalty:\n  covariates: prior_spend\n  heterogeneity_by: null\n"
        "value:\n  strategic_segments: [gold]\n  strategic_column: null\n"
    )
    got = config.load_params(p)
    assert got.analysis.group is None and got.survival.cox_covariates == []
    assert got.survival.group == "region" and got.loyalty.covariates == ["prior_spend"]
    assert got.loyalty.heterogeneity_by is None and got.value.strategic_segments == ["gold"]
    assert got.value.strategic_column is None
    assert got.experience.cox_covariates == AUTO


def test_the_sample_params_file_names_the_sample_columns_explicitly():
    p = config.load_params(config.Path(__file__).resolve().parents[1] / "params/default.yaml")
    assert p.survival.cox_covariates == ["segment", "value_tier"]
    assert p.loyalty.covariates == list(config.LOYALTY_COVARIATES)
    assert p.loyalty.heterogeneity_by == "value_tier"
    assert (p.experience.cox_covariates, p.experience.cox_strata) == (["value_tier"], "segment")
    assert p.value.strategic_segments == ["business"] and p.value.strategic_column is None


# --------------------------------------------------------------------------------------
# The rule
# --------------------------------------------------------------------------------------


def test_the_sample_world_gets_its_attribute_columns_never_churn_reason(world):
    study = _study(world(_complete_region))
    got = _chosen(study)
    assert got["analysis.group"] == "segment"  # segment first when it qualifies
    assert got["survival.group"] == got["loyalty.heterogeneity_by"] == "segment"
    attrs = ["segment", "value_tier", "region", "channel"]  # table order; churn_reason never
    assert got["survival.cox_covariates"] == got["experience.cox_covariates"] == attrs
    assert got["loyalty.covariates"] == [
        "prior_spend",
        "prior_purchases",
        "tenure_months",
        *attrs,
        *config.LOYALTY_EXPERIENCE_COVARIATES,
        "log_prior_spend",
    ]
    assert got["value.strategic_column"] is None and got["value.strategic_segments"] == []
    assert study.params_as_written.survival.cox_covariates == AUTO


def test_only_the_required_columns_gives_no_groups_and_no_covariates(world):
    study = _study(world(_drop_attributes))
    got = _chosen(study)
    assert got["analysis.group"] is None and got["survival.group"] is None
    assert got["survival.cox_covariates"] == [] and got["experience.cox_covariates"] == []
    assert "segment" not in got["loyalty.covariates"]
    notes = study.auto_notes("analysis.group", "survival")
    assert notes[0].startswith("No breakdown by customer group: the customers table has no ")
    assert "Set survival.cox_covariates to name some." in notes[2]


def _odd_columns(c: pd.DataFrame) -> pd.DataFrame:
    n = len(c)
    rng = np.random.default_rng(0)
    return c.drop(columns=["segment"]).assign(
        customer_name=[f"Customer {i}" for i in range(n)],  # one value per customer
        last_login=["2025-0" + str(1 + i % 9) + "-15" for i in range(n)],  # dates as text
        vip=["yes" if i < 5 else "no" for i in range(n)],  # one group of 5 (< 10)
        plan=np.where(np.arange(n) < 150, "", rng.choice(["a", "b"], n)),  # half empty
        region=c["region"].replace("", "north"),
        is_strategic=np.where(np.arange(n) % 7 == 0, "true", "false"),
    )


def test_identifiers_dates_tiny_and_half_empty_columns_are_not_chosen(world):
    study = _study(world(_odd_columns))
    got = _chosen(study)
    # segment is gone: the first qualifying column of the table, in its order
    assert got["analysis.group"] == "value_tier"
    assert got["survival.cox_covariates"] == ["value_tier", "region", "channel", "is_strategic"]
    assert got["value.strategic_column"] == "is_strategic"
    left = study.auto_notes()[-1]
    assert left.startswith("Customer columns not chosen automatically: ")
    for col, why in (
        ("customer_name", "300 distinct values, one per customer (an identifier)"),
        ("last_login", "dates written as text"),
        ("vip", "fewer than two of its values have 10 customers or more"),
        ("plan", "50% of customers have no value"),
    ):
        assert f"{col} ({why}" in left, left


def test_numbers_are_covariates_never_groups(world):
    def numbers(c: pd.DataFrame) -> pd.DataFrame:
        c = _complete_region(c).drop(columns=["segment", "value_tier", "channel"])
        return c.assign(employees=[str(5 + 3 * i) for i in range(len(c))])

    p = world(numbers, parquet=True)
    d = p.parent / "data"
    t = pd.read_parquet(d / "customers.parquet")
    t["employees"] = t["employees"].astype("int64")  # a numeric column, as a database gives it
    t.to_parquet(d / "customers.parquet", index=False)
    got = _chosen(_study(p))
    assert got["analysis.group"] == "region"  # employees has 300 values: never a group
    assert got["survival.cox_covariates"] == ["region", "employees"]
    # as text (a CSV file), 300 different numbers are no group and no category either
    got = _chosen(_study(world(numbers)))
    assert got["survival.cox_covariates"] == ["region"]


def test_incomplete_columns_stay_out_of_the_loyalty_model_and_the_note_says_so(world):
    def holes(c: pd.DataFrame) -> pd.DataFrame:
        return c.assign(
            region=["" if i < 6 else "north" if i % 2 else "south" for i in range(len(c))]
        )

    study = _study(world(holes))
    got = _chosen(study)
    assert "region" in got["survival.cox_covariates"]  # 2% missing: Cox drops those rows
    assert "region" not in got["loyalty.covariates"]
    (note,) = study.auto_notes("loyalty.covariates")[:1]
    assert "The column region is left out: some customers have no value there" in note


def test_a_min_group_size_above_the_groups_leaves_no_breakdown(world):
    study = _study(world(params="analysis:\n  min_group_size: 200\n"))
    # segment has two levels of ~65% and ~35% of 300 customers: one level below 200
    assert _chosen(study)["analysis.group"] is None


def test_explicit_settings_are_kept_and_only_auto_ones_are_stated(world):
    p = world(
        _complete_region,
        "analysis:\n  group: region\nsurvival:\n  cox_covariates: [value_tier]\n"
        "value:\n  strategic_segments: [business]\n",
    )
    study = _study(p)
    got = _chosen(study)
    assert got["analysis.group"] == "region" and got["survival.cox_covariates"] == ["value_tier"]
    assert got["survival.group"] == "region"  # auto follows the breakdown column
    assert got["value.strategic_segments"] == ["business"]
    keys = {c.key for c in study.auto}
    assert not keys & {"analysis.group", "survival.cox_covariates", "value.strategic_segments"}
    (note,) = study.auto_notes("survival.group")
    assert note == (
        "Retention curves are compared by the column region, the breakdown column set in "
        "analysis.group (set survival.group to choose another)."
    )


def test_auto_notes_are_plain_sentences_selected_by_section(world):
    study = _study(world(_complete_region))
    assert study.auto_notes("analysis.group") == [
        "Breakdowns use the column segment, chosen automatically from the customers table's "
        "columns (set analysis.group to choose another)."
    ]
    surv = study.auto_notes("survival")
    assert [n.split(" ")[:3] for n in surv] == [
        ["Retention", "curves", "are"],
        ["The", "Cox", "model"],
    ]
    assert study.auto_notes("kpi") == []
    everything = study.auto_notes()
    assert len(everything) == len(AUTO_KEYS)
    for n in everything:
        assert n.endswith(".") and "auto" not in n.split() and "None" not in n


def test_no_setting_reaches_a_study_as_auto(world):
    for edit in (None, _drop_attributes, _odd_columns):
        study = _study(world(edit))
        assert AUTO not in [v for v in _chosen(study).values() if isinstance(v, str)]


def test_the_retention_study_runs_on_a_world_with_only_the_required_columns(world):
    from analysis.studies import retention

    study = _study(world(_drop_attributes))
    sp = study.params.survival
    rep = retention.retention_study(
        study.lifetimes(),
        group=sp.group,
        horizons=[3, 6, 12],
        rmst_horizon=12,
        covariates=sp.cox_covariates,
        strata=sp.cox_strata,
        min_group_size=study.min_group_size,
        max_months=24,
        definition="contractual",
        as_of=study.as_of,
    )
    assert rep.group is None and rep.km_group is None


# --------------------------------------------------------------------------------------
# validate prints the choices
# --------------------------------------------------------------------------------------


def _validate(p: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "analysis", "validate", "--params", str(p)],
        capture_output=True,
        text=True,
    )


def test_validate_prints_tables_unmapped_files_and_auto_choices(world):
    p = world(_odd_columns)
    d = p.parent / "data"
    (d / "loyalty.csv").rename(d / "members.csv")
    r = _validate(p)
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "customers    customers.csv" in out and "300 rows" in out
    assert "data files that map to no table (not read): members.csv" in out
    assert "settings chosen from the data (auto):" in out
    assert "  analysis.group = value_tier" in out
    assert "  value.strategic_column = is_strategic" in out
    assert "loyalty.covariates" not in out  # no loyalty table is read: nothing to choose
    assert "customer_name (300 distinct values" in out


# --------------------------------------------------------------------------------------
# The churn definition follows the data unless the params file sets it
# --------------------------------------------------------------------------------------


def _no_churn_dates(c: pd.DataFrame) -> pd.DataFrame:
    return c.drop(columns=["churn_date", "churn_reason"])


def test_without_churn_dates_the_default_definition_is_inactivity_and_said(world):
    study = _study(world(_no_churn_dates))
    assert study.params.analysis.churn_definition == "inactivity"
    notes = study.auto_notes("survival")  # every report states what churn means
    assert any("no churn dates" in n and "90 days without a purchase" in n for n in notes)
    lt = study.lifetimes()
    assert 0 < lt["event"].mean() < 1  # customers are lost, not all retained forever


def test_with_churn_dates_the_default_stays_contractual_and_no_note(world):
    study = _study(world())
    assert study.params.analysis.churn_definition == "contractual"
    assert not any("churn dates" in n for n in study.auto_notes())


def test_contractual_set_in_the_file_without_churn_dates_is_refused(world):
    p = world(_no_churn_dates, "analysis:\n  churn_definition: contractual\n")
    out = subprocess.run(
        [sys.executable, "-m", "analysis", "validate", "--params", str(p)],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 2, out.stdout + out.stderr
    text = out.stdout + out.stderr
    assert "churn_date" in text and "churn_definition: inactivity" in text
