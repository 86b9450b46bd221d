"""Page shape: skipped sections, verdict, tiles, appendix folding, previous-run slots, index."""

from __future__ import annotations

import json

import nbformat
import numpy as np
import pandas as pd
import pytest

from analysis.report import display, html, page
from analysis.report.outputs import ReportResult
from analysis.studies import sections


def _fail(exc):
    raise exc


@pytest.mark.parametrize(
    ("exc", "words"),
    [
        (np.linalg.LinAlgError("Singular matrix"), "never vary"),
        (ValueError("No churn events in the rows"), "No customer left"),
        (RuntimeError("BG/NBD: maximum likelihood did not converge"), "did not settle"),
        (ValueError("too few customers in the treated arm"), "too few"),
        (KeyError("segment"), "unexpected shape"),
        (sections.NotEstimable("Nobody enrolled", remedy="Needs enrolments."), "Nobody enrolled"),
    ],
)
def test_attempt_turns_a_failure_into_one_plain_skipped_section(exc, words):
    out = sections.attempt("Churn drivers", _fail, exc)
    assert sections.is_skipped(out) and not out
    assert words in out.sentence()
    assert out.section == "Churn drivers"
    assert out.detail  # the technical message stays for the appendix
    assert out.sentence().endswith(".")


def test_attempt_returns_the_result_and_keeps_memory_errors():
    assert sections.attempt("x", lambda a, b=0: a + b, 1, b=2) == 3
    with pytest.raises(MemoryError):
        sections.attempt("x", _fail, MemoryError())
    out = sections.attempt("x", _fail, ValueError("boom"), remedy="Give it more rows.")
    assert out.remedy == "Give it more rows."


def test_tile_text_is_the_headline_text():
    t = page.tile(
        "Median time as a customer", 22.74, kind="months", lo=22.0, hi=23.4, note="all customers"
    )
    assert t["head"] == "22.7 months" and t["interval"] == "95% CI 22.0–23.4"
    rec = page.headline_of(t)
    assert rec["text"] == "22.7 months (22.0–23.4)" and rec["value"] == pytest.approx(22.74)
    m = page.tile(
        "Monthly churn",
        0.039,
        kind="pct",
        change=0.004,
        change_label="vs last month",
        good="down",
        spark=[0.03, 0.031, 0.035, 0.039],
        flag="above its usual range (2.1%–3.2%)",
    )
    assert m["change"] == "▲ +0.4 points vs last month" and m["change_dir"] == "bad"
    markup = page.tiles_html([t, m])
    assert "<svg" in markup and "flagged" in markup and "tile-prev" in markup
    nan = page.tile("Revenue at stake", float("nan"), kind="money")
    assert nan["text"] == "not estimable" and nan["value"] is None


def test_page_parts_escape_text_from_data():
    assert "&lt;b&gt;" in page.verdict_html("Segment <b> churns more.")
    assert "&lt;script&gt;" in page.skipped_html("<script>", "x")
    assert page.flags_html([]) == ""
    assert page.sparkline_svg([1.0]) == ""
    assert page.sparkline_svg([1.0, float("nan"), 2.0, 3.0], partial=1).count("<polyline") == 2


def _out(data):
    return nbformat.v4.new_output("display_data", data=data)


def _notebook():
    nb = nbformat.v4.new_notebook()
    md = nbformat.v4.new_markdown_cell("# Title\n\nIntro prose.")
    c1 = nbformat.v4.new_code_cell("x")
    c1.outputs = [
        _out({display.VERDICT_MIME: {"text": "Yes, modestly."}, "text/plain": ""}),
        _out({"text/html": page.verdict_html("Yes, modestly."), "text/plain": ""}),
        _out({display.HEADLINE_MIME: {"name": "Churn", "text": "3.2%"}, "text/plain": ""}),
        _out({display.SKIPPED_MIME: {"section": "Cox", "reason": "No events."}, "text/plain": ""}),
        _out({"text/html": "<p>BODY-PART</p>", "text/plain": ""}),
        _out({display.APPENDIX_MIME: {"title": "For analysts"}, "text/plain": ""}),
        _out({"text/html": "<p>APPENDIX-PART-1</p>", "text/plain": ""}),
    ]
    md2 = nbformat.v4.new_markdown_cell("## Method notes\n\nLong prose.")
    c2 = nbformat.v4.new_code_cell("y")
    c2.outputs = [_out({"text/html": "<p>APPENDIX-PART-2</p>", "text/plain": ""})]
    nb.cells = [md, c1, md2, c2]
    return nb


def test_appendix_marker_folds_everything_after_it_and_records_are_stripped():
    nb = _notebook()
    body = html.notebook_body_html(nb)
    main, _, folded = body.partition('<details class="appendix">')
    assert "BODY-PART" in main and "Yes, modestly." in main
    assert "APPENDIX-PART-1" in folded and "APPENDIX-PART-2" in folded and "Method notes" in folded
    assert "APPENDIX" not in main and '<details class="appendix" open' not in body
    assert "vnd.analysis" not in body and "Intro prose" in main and "Title" not in main
    assert html.collect_verdict(nb) == "Yes, modestly."
    assert html.collect_skipped(nb) == [{"section": "Cox", "reason": "No events."}]


def test_previous_run_slot_is_filled_only_for_an_earlier_as_of():
    t = page.tile("Monthly churn", 0.039, kind="pct")
    body = page.tiles_html([t])
    prev = [{"name": "Monthly churn", "text": "3.5%"}]
    filled = html.fill_previous_run(body, prev, "2026-10-31", "2026-11-30")
    assert "previous report (data as of 2026-10-31): 3.5%" in filled
    assert html.fill_previous_run(body, prev, "2026-11-30", "2026-11-30") == body
    assert html.fill_previous_run(body, [], "2026-10-31", "2026-11-30") == body


def test_index_shows_the_verdict_and_the_skipped_sections():
    r = ReportResult(
        name="01_retention_survival",
        status="ok",
        title="Retention",
        html="01.html",
        headlines=[{"name": "Median", "text": "22.7 months (22.0–23.4)"}],
        verdict="Customers stay about two years.",
        skipped=[{"section": "Cox model", "reason": "No customer left <yet>."}],
    )
    out = html.render_index_page(title="Reports", run={"status": "ok"}, reports=[r])
    assert "Customers stay about two years." in out
    assert "Not estimated on this data" in out and "Cox model" in out and "&lt;yet&gt;" in out


def test_show_table_headers_and_code_cells_get_labels():
    df = pd.DataFrame(
        {
            "term": ["segment[business]", "value_tier[T.low]"],
            "p_holm": [0.01, 0.2],
            "note": ["plain text", "customers_to_protect.csv"],
        }
    )
    out = display.table_html(df)
    assert (
        "p-value (Holm-adjusted)" in out and "Segment: business" in out and "Value tier: low" in out
    )
    assert "segment[business]" not in out and "p_holm" not in out
    assert "customers_to_protect.csv" in out  # a file name is not a code


def test_records_are_json_serialisable():
    t = page.tile("Customers", 1234, kind="count")
    json.dumps(page.headline_of(t))
    json.dumps(sections.Skipped("a", "b", "c").record())


def _page_html(main: str) -> str:
    return f"<html><head><style>.a_b{{}}</style></head><body><main>{main}</main><footer>n_boot</footer></body></html>"


GOOD = (
    '<div class="verdict"><p>Yes: enrolling keeps 3 more customers in 100.</p></div>'
    '<div class="tiles"><div class="tile"><div class="tile-name">Effect</div><div class="tile-value">+3.1 points</div>'
    '<div class="tile-ci">95% CI 2.0–4.2</div></div></div>'
    "<h2>Effect</h2><p>Plain words, customers_to_protect.csv and <code>survival.group</code>.</p>"
    '<details class="appendix"><summary>For analysts</summary><p>Set loyalty.n_boot in the params.</p></details>'
)


def test_lint_passes_a_clean_page():
    from analysis.report import lint

    assert lint.lint_page(_page_html(GOOD)) == []
    heads = [{"name": "Effect", "text": "+3.1 points (2.0–4.2)"}]
    assert (
        lint.lint_against_index(
            _page_html(GOOD), heads, "Yes: enrolling keeps 3 more customers in 100."
        )
        == []
    )
    other = [{"name": "Effect", "text": "+3.0 points (2.0–4.2)"}]
    assert lint.lint_against_index(_page_html(GOOD), other, None)


@pytest.mark.parametrize(
    ("bad", "expect"),
    [
        ("<p>Churn was nan% last month.</p>", "missing-value token"),
        ("<table><tr><td>None</td></tr></table>", "missing-value token"),
        ("<table><thead><tr><th>ci_lower</th></tr></thead></table>", "snake_case"),
        ("<p>Customers with value_tier = low leave faster.</p>", "snake_case"),
        ("<p>The term segment[business] matters.</p>", "model-term"),
        ("<p>reference levels: {'segment': 'consumer'}</p>", "Python repr"),
        ("<p>Enrolling raised 6-month retention by -14.2 points.</p>", "contradicts"),
        ("<p>This prevents about -1 fewer churners a year.</p>", "contradicts"),
        ("<p>customers lost: -0.14</p>", "contradicts"),
    ],
)
def test_lint_catches_each_class_of_problem(bad, expect):
    from analysis.report import lint

    problems = lint.lint_page(_page_html(GOOD.replace("<h2>Effect</h2>", "<h2>Effect</h2>" + bad)))
    assert any(expect in p for p in problems), problems


def test_lint_requires_verdict_first_and_one_folded_appendix():
    from analysis.report import lint

    no_verdict = GOOD.replace('class="verdict"', 'class="x"')
    assert any("no verdict" in p for p in lint.lint_page(_page_html(no_verdict)))
    late = (
        GOOD.replace(
            '<div class="verdict"><p>Yes: enrolling keeps 3 more customers in 100.</p></div>', ""
        )
        + ""
    )
    late = "<h2>First</h2>" + GOOD
    assert any("not before" in p for p in lint.lint_page(_page_html(late)))
    opened = GOOD.replace('<details class="appendix">', '<details class="appendix" open>')
    assert any("open" in p for p in lint.lint_page(_page_html(opened)))
    none = GOOD.split("<details")[0]
    assert any("appendices" in p for p in lint.lint_page(_page_html(none)))
    assert lint.lint_page(_page_html("<p>None of the customers left.</p>" + GOOD)) == []
