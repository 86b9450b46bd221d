"""Tests of the notebook reporting helpers (analysis.reporting).

Expected strings are written out by hand from the documented formats.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd
import pandas.testing as pdt
import pytest

from analysis import reporting
from analysis.errors import AnalysisError
from analysis.report import display
from analysis.report import format as fmt

XSS = "<img src=x onerror=alert(1)>"


# --------------------------------------------------------------------------------------
# Formatting
# --------------------------------------------------------------------------------------


def test_fmt_ci_uses_en_dash():
    assert reporting.fmt_ci(0.62, 0.55, 0.70) == "0.62 (95% CI 0.55\u20130.70)"
    assert reporting.fmt_ci(1.2345, 1.1, 1.4, digits=1) == "1.2 (95% CI 1.1\u20131.4)"


def test_fmt_ci_percentages_and_level():
    assert reporting.fmt_ci(0.25, 0.2, 0.3, digits=1, pct=True) == "25.0% (95% CI 20.0%\u201330.0%)"
    assert reporting.fmt_ci(2.0, 1.0, 3.0, digits=0, level=0.9) == "2 (90% CI 1\u20133)"


def test_fmt_ci_negative_bounds_use_to():
    assert reporting.fmt_ci(-0.1, -0.2, 0.05) == "-0.10 (95% CI -0.20 to 0.05)"


def test_fmt_ci_missing():
    assert reporting.fmt_ci(float("nan"), 0, 1) == "n/a"
    assert reporting.fmt_ci(0.5, None, 1) == "0.50 (95% CI not available)"


def test_fmt_money():
    assert reporting.fmt_money(1234.5) == "€1,234"
    assert reporting.fmt_money(12.5) == "€12.50"
    assert reporting.fmt_money(-1500, "USD") == "-$1,500"
    assert reporting.fmt_money(1234.5, "CHF") == "1,234 CHF"
    assert reporting.fmt_money(1234.5, digits=2) == "€1,234.50"
    assert reporting.fmt_money(np.nan) == "n/a"


def test_fmt_money_prints_large_amounts_in_words_of_their_scale():
    # A stakeholder reads "€3.71 billion", not "€3,713,514,031": three significant figures
    # from a million on, whatever decimals the caller asked for smaller amounts.
    assert reporting.fmt_money(3_713_514_031) == "€3.71 billion"
    assert reporting.fmt_money(3_713_514_031, digits=0) == "€3.71 billion"
    assert reporting.fmt_money(12_345_678) == "€12.3 million"
    assert reporting.fmt_money(123_456_789, "USD") == "$123 million"
    assert reporting.fmt_money(-2_500_000, "CHF") == "-2.50 million CHF"
    assert reporting.fmt_money(4.2e12, "GBP") == "£4.20 trillion"
    assert reporting.fmt_money(999_960_000) == "€1.00 billion"  # not "€1,000 million"
    assert reporting.fmt_money(999_499) == "€999,499"  # below a million: as before
    assert fmt.fmt_value(3_713_514_031, "money") == "€3.71 billion"


def test_fmt_est_money_interval_shares_the_estimate_scale():
    est = fmt.fmt_est(3_713_514_031, 3_698_142_724, 3_726_948_634, kind="money", digits=0)
    assert est == "€3.71 billion (€3.70–€3.73 billion)"
    # bounds that differ never print alike: more figures where three are not enough
    narrow = fmt.fmt_est(3_713_514_031, 3_713_014_031, 3_713_914_031, kind="money")
    assert narrow == "€3.714 billion (€3.713–€3.714 billion)"
    signed = fmt.fmt_est(-2.5e6, -4.1e6, 0.3e6, kind="money")
    assert signed == "\u2212€2.50 million (\u2212€4.10 to €0.30 million)"
    assert fmt.fmt_est(12.3e6, 9.1e6, 15.2e6, kind="money", currency="CHF") == (
        "12.3 million CHF (9.1–15.2 million CHF)"
    )


def test_fmt_pct():
    assert reporting.fmt_pct(0.1234) == "12.3%"
    assert reporting.fmt_pct(0.5, digits=0) == "50%"
    assert reporting.fmt_pct(None) == "n/a"


# --------------------------------------------------------------------------------------
# Escaping
# --------------------------------------------------------------------------------------


def test_table_escapes_cells_headers_and_caption():
    df = pd.DataFrame({"segment": [XSS, "a & b"], f"n {XSS}": [100, 200]})
    html = reporting.table_html(df, caption=f"Churn {XSS}")
    assert "<img" not in html
    assert html.count("&lt;img src=x onerror=alert(1)&gt;") == 3  # cell, header, caption
    assert "a &amp; b" in html


def test_findings_note_absent_escape():
    box = reporting.findings_html([f"Segment {XSS} churns more."], title="<b>Findings</b>")
    assert "<img" not in box and "<b>Findings" not in box
    assert "Segment &lt;img src=x onerror=alert(1)&gt; churns more." in box
    assert reporting.note_html(XSS) == (
        '<p class="analysis-note">&lt;img src=x onerror=alert(1)&gt;</p>'
    )
    assert "This data has no loyalty table" in reporting.absent_table_html("loyalty")
    assert "<img" not in reporting.absent_table_html(XSS)


# --------------------------------------------------------------------------------------
# Tables: refusals, formats, suppression
# --------------------------------------------------------------------------------------


def test_table_refuses_customer_id_column_and_index():
    with pytest.raises(AnalysisError, match="customer identifier"):
        reporting.table_html(pd.DataFrame({"customer_id": ["C1"], "x": [1]}))
    with pytest.raises(AnalysisError, match="customer identifier"):
        reporting.table_html(pd.DataFrame({"x": [1]}, index=pd.Index(["C1"], name="Customer ID")))


def test_table_refuses_long_tables():
    df = pd.DataFrame({"x": range(101)})
    with pytest.raises(AnalysisError, match="101 rows"):
        reporting.table_html(df)
    assert "<table" in reporting.table_html(df, max_rows=None)


def test_table_formats_and_index():
    df = pd.DataFrame(
        {"rate": [0.125], "days": [3.14159], "n": [1234], "when": [pd.Timestamp("2025-01-31")]},
        index=pd.Index(["consumer"], name="segment"),
    )
    html = reporting.table_html(df, formats={"rate": ".1%", "days": "{:.1f} days"})
    assert ">consumer<" in html  # named index becomes a column
    assert ">12.5%<" in html and ">3.1 days<" in html
    assert ">1,234<" in html and ">2025-01-31<" in html
    assert re.search(r'<th class="num">rate</th>', html, re.I)


def test_numbers_formatted_as_text_are_right_aligned():
    df = pd.DataFrame({"kpi": ["Revenue", "Churn"], "value": ["€1,234 (+3%)", "-0.6 pt"]})
    html = reporting.table_html(df)
    assert '<th class="txt">kpi</th>' in html and '<th class="num">Value</th>' in html
    assert '<td class="num">€1,234 (+3%)</td>' in html


def test_suppress_small_masks_values_and_does_not_mutate():
    df = pd.DataFrame(
        {"segment": ["a", "b", "c"], "customers": [50, 9, 10], "churn_rate": [0.2, 0.5, 0.3]}
    )
    original = df.copy()
    out = reporting.suppress_small(df, count_col="customers", min_group_size=10)
    expected = pd.DataFrame(
        {
            "segment": ["a", "b", "c"],
            "customers": [50.0, np.nan, 10.0],
            "churn_rate": [0.2, np.nan, 0.3],
            "suppressed": [False, True, False],
        }
    )
    pdt.assert_frame_equal(out, expected)
    pdt.assert_frame_equal(df, original)


def test_suppress_small_value_cols_and_missing_counts():
    df = pd.DataFrame({"customers": [5.0, np.nan, 30.0], "revenue": [1.0, 2.0, 3.0]})
    out = reporting.suppress_small(
        df, count_col="customers", min_group_size=10, value_cols=["revenue"]
    )
    assert out["suppressed"].tolist() == [True, True, False]
    assert out["customers"].tolist()[0] == 5.0  # not in value_cols: kept
    assert math.isnan(out["revenue"][0]) and math.isnan(out["revenue"][1])
    assert out["revenue"][2] == 3.0
    with pytest.raises(AnalysisError, match="count column"):
        reporting.suppress_small(df, count_col="n", min_group_size=10)


def test_show_table_suppresses_small_groups():
    df = pd.DataFrame({"segment": ["big", "tiny"], "customers": [120, 3], "rate": [0.25, 1.0]})
    html = reporting.table_html(df, count_col="customers", min_group_size=10)
    rows = html.split("<tr")
    tiny = next(r for r in rows if ">tiny<" in r)
    assert 'class="suppressed"' in tiny
    assert "&lt;10" in tiny and ">suppressed<" in tiny
    assert ">3<" not in tiny and "1.00" not in tiny
    assert "1 group(s) with fewer than 10 customers are suppressed" in html
    big = next(r for r in rows if ">big<" in r)
    assert ">120<" in big and ">0.25<" in big


def test_show_table_default_threshold():
    df = pd.DataFrame({"g": ["x"], "n": [reporting.DEFAULT_MIN_GROUP_SIZE - 1]})
    assert "suppressed" in reporting.table_html(df, count_col="n")


# --------------------------------------------------------------------------------------
# Display, headlines, provenance
# --------------------------------------------------------------------------------------


@pytest.fixture
def published(monkeypatch):
    shown = []
    monkeypatch.setattr(display, "_publish", shown.append)
    return shown


def test_headline_emits_custom_mime(published):
    reporting.headline("Monthly churn", 0.02456, unit="%", digits=1)
    reporting.headline("Customers", np.int64(20000))
    reporting.headline("Revenue", 1234567.8, unit="EUR")
    reporting.headline("Effect", reporting.fmt_ci(0.62, 0.55, 0.70))
    records = [p[reporting.HEADLINE_MIME] for p in published]
    # unit "%": the value is a fraction, shown as a percentage (as fmt_pct does)
    assert records[0] == {"name": "Monthly churn", "value": 0.02456, "unit": "%", "text": "2.5%"}
    assert records[1]["text"] == "20,000" and type(records[1]["value"]) is int
    assert records[2]["text"] == "1,234,568 EUR"
    assert records[3]["text"] == "0.62 (95% CI 0.55\u20130.70)"
    assert published[0]["text/plain"] == "Headline: Monthly churn: 2.5%"


def test_display_helpers_publish_escaped_html(published):
    reporting.findings(["a < b"])
    reporting.note("x & y")
    reporting.absent_table("experience")
    reporting.show_table(pd.DataFrame({"g": ["<i>"], "n": [10]}), caption="T")
    html = [p["text/html"] for p in published]
    assert "a &lt; b" in html[0] and "x &amp; y" in html[1]
    assert "no experience table" in html[2] and "&lt;i&gt;" in html[3]


def test_publish_outside_ipython_prints_text(capsys):
    reporting.note("plain text")
    assert capsys.readouterr().out == "plain text\n"


def test_provenance_html():
    html = reporting.provenance_html(
        params={"analysis": {"min_group_size": 10}, "data": {"path": XSS}},
        fingerprint={
            "rows": {"customers": 20000, "transactions": 123456},
            "content_hash": "abc123",
            "as_of": "2025-12-31",
        },
        package_version="0.1.0",
        git_commit="unknown",
        run_started="2026-01-01T00:00:00Z",
        run_seconds=12.34,
        notebook="00_kpi_dashboard",
    )
    assert "min_group_size: 10" in html
    assert "<dd>abc123</dd>" in html and "<dd>2025-12-31</dd>" in html
    assert ">123,456<" in html and ">20,000<" in html
    assert "<dd>analysis 0.1.0</dd>" in html and "<dd>unknown</dd>" in html
    assert "<dd>12.3 s</dd>" in html and "00_kpi_dashboard.ipynb" in html
    assert "<img" not in html


# --------------------------------------------------------------------------------------
# Table layout (added by the browser-check task; see tests/test_browser.py)
# --------------------------------------------------------------------------------------


def test_sentences_starting_with_a_digit_are_text_not_numbers():
    df = pd.DataFrame(
        {
            "problem": ["9 customers with no activity inside the data window were excluded"],
            "median": ["22.8 months (95% CI 20.1–25.3 months)"],
        }
    )
    html = reporting.table_html(df)
    # headers go through the shared labels (a report module may have registered "Problem")
    assert re.search(r'<th class="txt">problem</th>', html, re.I)
    assert re.search(r'<th class="num">median</th>', html, re.I)


def test_caption_names_the_scrolling_table():
    html = reporting.table_html(pd.DataFrame({"a": [1]}), caption="Churn by segment")
    cap_id = re.search(r'<p class="analysis-caption" id="([^"]+)">Churn by segment</p>', html)
    assert cap_id is not None
    assert f'<table class="analysis" aria-labelledby="{cap_id.group(1)}">' in html
    assert html.index("analysis-caption") < html.index('class="analysis-table-scroll"')
    assert "aria-labelledby" not in reporting.table_html(pd.DataFrame({"a": [1]}))


def test_a_table_with_no_rows_is_not_shown_and_does_not_fail():
    """No group the data can show (e.g. nobody bought twice): no table, no crash."""
    assert reporting.table_html(pd.DataFrame()) == ""
    assert reporting.table_html(pd.DataFrame(columns=["segment", "n"]), count_col="n") == ""
