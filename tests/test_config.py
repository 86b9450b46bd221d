"""Params schema: every kind of params error gets a clear, specific message."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from analysis import config
from analysis.errors import ParamsError

ROOT = Path(__file__).resolve().parents[1]


def _problems(raw: dict) -> list[str]:
    with pytest.raises(ParamsError) as info:
        config.params_from_dict(raw, base_dir=Path("/base"))
    return [str(p) for p in info.value.problems]


def test_default_params_file_loads_and_resolves_paths_relative_to_itself():
    p = config.load_params(ROOT / "params" / "default.yaml")
    assert p.data.path == (ROOT / "data" / "sample").resolve()
    assert p.reports.output_dir == (ROOT / "reports").resolve()
    assert p.analysis.min_group_size == 10
    assert p.survival.horizons_months == [3.0, 6.0, 12.0, 24.0]


def test_every_params_file_in_params_folder_is_valid():
    files = sorted((ROOT / "params").glob("*.yaml"))
    assert files
    for f in files:
        config.load_params(f)


def test_unknown_key_names_the_closest_valid_key():
    msgs = _problems({"data": {"path": "x", "curency": "EUR"}})
    assert len(msgs) == 1
    assert "unknown key 'curency'" in msgs[0] and "did you mean 'currency'" in msgs[0]


def test_unknown_section_names_the_closest_section():
    msgs = _problems({"data": {"path": "x"}, "survivl": {}})
    assert "did you mean 'survival'" in msgs[0]


def test_wrong_type_names_the_key_and_expected_type():
    msgs = _problems({"data": {"path": "x"}, "analysis": {"inactivity_days": "ninety"}})
    assert "analysis.inactivity_days" in msgs[0] and "whole number" in msgs[0]


def test_bad_choice_suggests_the_nearest_choice():
    msgs = _problems({"data": {"path": "x"}, "analysis": {"period": "mnth"}})
    assert "did you mean 'month'" in msgs[0]


def test_out_of_range_value_is_reported_with_bounds():
    msgs = _problems({"data": {"path": "x"}, "analysis": {"min_group_size": 0}})
    assert "outside [1, inf]" in msgs[0]


def test_bad_date_is_reported():
    msgs = _problems({"data": {"path": "x", "as_of": "31/12/2024"}})
    assert "not a date" in msgs[0]


def test_all_problems_are_reported_together():
    msgs = _problems({"data": {"path": "x", "as_of": "bad"}, "kpi": {"granularity": "hourly"},
                      "value": {"discount_rate_annual": 2.0}})
    assert len(msgs) == 3


def test_folder_source_needs_a_path():
    msgs = _problems({"data": {"source": "folder"}})
    assert "needs a path" in msgs[0]


def test_column_mapping_is_checked_against_the_contract():
    msgs = _problems({"data": {"path": "x", "columns": {"transactions": {"amout": "value"}}}})
    assert "did you mean 'amount'" in msgs[0]


def test_customers_may_map_extra_attribute_columns():
    p = config.params_from_dict({"data": {"path": "x", "columns": {"customers": {"region": "r"}}}},
                                base_dir=Path("/base"))
    assert p.data.columns == {"customers": {"region": "r"}}


def test_values_are_coerced_and_paths_resolved(tmp_path):
    f = tmp_path / "sub" / "p.yaml"
    f.parent.mkdir()
    f.write_text("data:\n  path: ../data\n  as_of: 2024-03-31\nsurvival:\n  horizons_months: [3, 6]\n")
    p = config.load_params(f)
    assert p.data.path == (tmp_path / "data").resolve()
    assert p.data.as_of == dt.date(2024, 3, 31)
    assert p.survival.horizons_months == [3.0, 6.0]
    assert p.source_file == f.resolve()


def test_missing_file_and_bad_yaml_are_params_errors(tmp_path):
    with pytest.raises(ParamsError, match="not found"):
        config.load_params(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("data:\n  path: [unclosed\n")
    with pytest.raises(ParamsError, match="not valid YAML"):
        config.load_params(bad)


def test_overrides_merge_over_the_file(tmp_path):
    f = tmp_path / "p.yaml"
    f.write_text("data:\n  path: d\nanalysis:\n  period: month\n")
    p = config.load_params(f, overrides={"analysis": {"period": "week"}})
    assert p.analysis.period == "week" and p.data.path == (tmp_path / "d").resolve()


def test_params_docs_list_every_key():
    doc = (ROOT / "docs" / "params.md").read_text()
    missing = [f"{r['section']}.{r['key']}" for r in config.describe_params()
               if f"`{r['section']}.{r['key']}`" not in doc]
    assert missing == []
