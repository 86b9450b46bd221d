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
    msgs = _problems(
        {
            "data": {"path": "x", "as_of": "bad"},
            "kpi": {"granularity": "hourly"},
            "value": {"discount_rate_annual": 2.0},
        }
    )
    assert len(msgs) == 3


def test_folder_source_needs_a_path():
    msgs = _problems({"data": {"source": "folder"}})
    assert "needs a path" in msgs[0]


def test_column_mapping_is_checked_against_the_contract():
    msgs = _problems({"data": {"path": "x", "columns": {"transactions": {"amout": "value"}}}})
    assert "did you mean 'amount'" in msgs[0]


def test_customers_may_map_extra_attribute_columns():
    p = config.params_from_dict(
        {"data": {"path": "x", "columns": {"customers": {"region": "r"}}}}, base_dir=Path("/base")
    )
    assert p.data.columns == {"customers": {"region": "r"}}


def test_values_are_coerced_and_paths_resolved(tmp_path):
    f = tmp_path / "sub" / "p.yaml"
    f.parent.mkdir()
    f.write_text(
        "data:\n  path: ../data\n  as_of: 2024-03-31\nsurvival:\n  horizons_months: [3, 6]\n"
    )
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
    missing = [
        f"{r['section']}.{r['key']}"
        for r in config.describe_params()
        if f"`{r['section']}.{r['key']}`" not in doc
    ]
    assert missing == []


def test_extends_merges_the_base_file_section_by_section(tmp_path):
    (tmp_path / "base.yaml").write_text(
        "data:\n  path: d\n  currency: USD\nkpi:\n  granularity: month\n  periods_shown: 12\n"
    )
    (tmp_path / "sets").mkdir()
    f = tmp_path / "sets" / "daily.yaml"
    f.write_text("extends: ../base.yaml\nkpi:\n  granularity: day\n")
    p = config.load_params(f)
    assert p.kpi.granularity == "day" and p.kpi.periods_shown == 12  # kept from the base
    assert p.data.currency == "USD"
    # relative paths resolve against the extending file's folder
    assert p.data.path == (tmp_path / "sets" / "d").resolve()


def test_extends_errors_name_the_file(tmp_path):
    f = tmp_path / "p.yaml"
    f.write_text("extends: missing.yaml\n")
    with pytest.raises(ParamsError, match=r"missing\.yaml.*extended by"):
        config.load_params(f)
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    a.write_text("extends: b.yaml\n")
    b.write_text("extends: a.yaml\n")
    with pytest.raises(ParamsError, match="loop"):
        config.load_params(a)
    f.write_text("extends: [x]\n")
    with pytest.raises(ParamsError, match="'extends' must be a file name"):
        config.load_params(f)


def test_scheduled_parameter_sets():
    """params/{daily,weekly,monthly}.yaml: the default run with a period and report set each."""
    default = config.load_params(ROOT / "params" / "default.yaml")
    names = {nb.stem for nb in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")}
    expect = {"daily": "day", "weekly": "week", "monthly": "month"}
    outs = set()
    for name, gran in expect.items():
        p = config.load_params(ROOT / "params" / f"{name}.yaml")
        assert p.kpi.granularity == gran
        assert p.data == default.data  # same data, from default.yaml
        assert set(p.reports.notebooks) <= names
        assert "00_kpi_dashboard" in (p.reports.notebooks or names)
        assert p.reports.output_dir == (ROOT / "reports" / name).resolve()
        outs.add(p.reports.output_dir)
    assert len(outs) == 3
    assert config.load_params(ROOT / "params" / "monthly.yaml").reports.notebooks == []  # all


def test_ate_trim_accepts_crump_a_number_or_nothing():
    base = {"data": {"path": "d"}}
    for v in ("crump", 0.02, None):
        p = config.params_from_dict({**base, "loyalty": {"ate_trim": v}}, base_dir=Path("/b"))
        assert p.loyalty.ate_trim == v
    assert any("ate_trim" in s for s in _problems({**base, "loyalty": {"ate_trim": 0.7}}))
    assert any("ate_trim" in s for s in _problems({**base, "loyalty": {"ate_trim": "crumb"}}))


def test_explicit_keys_are_recorded_through_extends_and_overrides(tmp_path):
    # validation refuses a setting the user wrote that does not fit the data, but only
    # warns about a default; so load_params records which keys were written
    (tmp_path / "base.yaml").write_text("data:\n  path: d\nsurvival:\n  group: region\n")
    (tmp_path / "p.yaml").write_text("extends: base.yaml\nvalue:\n  calibration_weeks: 39\n")
    p = config.load_params(tmp_path / "p.yaml", overrides={"loyalty": {"seed": 3}})
    assert p.explicit == {"data.path", "survival.group", "value.calibration_weeks", "loyalty.seed"}
    assert p.is_explicit("survival.group") and not p.is_explicit("survival.cox_covariates")
    assert "explicit" not in p.to_dict() and list(p.to_dict()) == list(config.SECTIONS)


def test_encoding_and_timezone_must_be_known():
    msgs = _problems({"data": {"path": "x", "encoding": "utf8x", "timezone": "Europe/Pariss"}})
    assert any("data.encoding" in m and "did you mean 'utf-8'" in m for m in msgs)
    assert any("data.timezone" in m and "did you mean 'Europe/Paris'" in m for m in msgs)
    ok = config.params_from_dict(
        {"data": {"path": "x", "encoding": "cp1252", "timezone": "America/New_York"}},
        base_dir=Path("/b"),
    )
    assert (ok.data.encoding, ok.data.timezone) == ("cp1252", "America/New_York")
    assert config.Params().data.timezone == "UTC" and config.Params().data.encoding == "utf-8"


def test_two_contract_columns_cannot_map_to_one_column():
    msgs = _problems(
        {"data": {"path": "x", "columns": {"customers": {"signup_date": "d", "churn_date": "d"}}}}
    )
    assert any("maps both 'signup_date' and 'churn_date'" in m for m in msgs)


@pytest.mark.parametrize(
    ("section", "key", "value"),
    [
        ("survival", "horizons_months", [3, -6]),
        ("loyalty", "landmarks_months", [0, 12]),
        ("loyalty", "event_window", [2, 6]),
        ("loyalty", "event_window", [-6]),
        ("experience", "lags", [0, 1]),
        ("value", "tier_quantiles", [0.8, 0.5]),
        ("value", "tier_quantiles", [0.5, 1.2]),
        ("value", "export_name", "../../etc/out.csv"),
    ],
)
def test_list_settings_are_range_checked(section, key, value):
    msgs = _problems({"data": {"path": "x"}, section: {key: value}})
    assert len(msgs) == 1 and f"{section}.{key}" in msgs[0]


def test_new_data_settings_have_safe_defaults():
    d = config.Params().data
    assert d.future_dates_allowed is False and d.extreme_values == "warning"


def test_params_docs_explain_every_auto_setting_and_match_the_code():
    from analysis.data.params_fit import AUTO_KEYS

    doc = (ROOT / "docs" / "params.md").read_text()
    auto = doc[doc.index("## Settings chosen from the data") : doc.index("## Every key")]
    assert [k for k in AUTO_KEYS if f"`{k}`" not in auto] == []
    # the generated table is current: every row as config.params_markdown() writes it
    rows = [line for line in config.params_markdown().splitlines() if line.startswith("| `")]
    assert [r for r in rows if r not in doc] == []
    readme = (ROOT / "README.md").read_text()
    own = readme[readme.index("## Running on your own data") : readme.index("## Bigger data")]
    assert "`auto`" in own and "settings chosen from the data (auto):" in own


def test_auto_in_a_list_setting_is_the_word_not_a_column(tmp_path):
    f = tmp_path / "p.yaml"
    f.write_text("data:\n  path: d\nsurvival:\n  cox_covariates: auto\n  group: auto\n")
    p = config.load_params(f)
    assert p.survival.cox_covariates == config.AUTO and p.survival.group == config.AUTO
    assert p.is_explicit("survival.cox_covariates")
