"""Sentence templates and formatters: edge cases never produce a sentence that contradicts its numbers.

Each template gets negative, zero, missing, interval-spanning inputs, single groups and ties
(issue 15 §3). The assertions are about meaning: the verb follows the sign, the printed
magnitude is never negative after a directional verb, "no clear evidence" appears exactly
when the interval includes no effect, and no nan/inf/None reaches the text.
"""

from __future__ import annotations

import itertools
import math
import re

import pytest

from analysis.report import format as fmt
from analysis.report import labels, sentences

NAN = float("nan")
BAD = re.compile(r"\b(nan|NaN|inf|None|NaT)\b")

CASES = [
    (0.031, 0.020, 0.042),
    (-0.142, -0.20, -0.10),
    (0.010, -0.012, 0.031),
    (-0.010, -0.031, 0.012),
    (0.0, -0.01, 0.01),
    (0.0, None, None),
    (0.05, None, None),
    (-0.05, None, None),
    (NAN, NAN, NAN),
    (0.05, NAN, NAN),
    (None, None, None),
    (0.02, 0.0, 0.04),  # bound exactly at zero: not clear
    (0.03, 0.04, 0.02),  # bounds given in the wrong order
]


@pytest.mark.parametrize(("est", "lo", "hi"), CASES)
@pytest.mark.parametrize("kind", ["pp", "money", "number", "months", "pct"])
def test_effect_sentence_follows_the_sign_and_the_interval(est, lo, hi, kind):
    s = sentences.effect_sentence("Enrolling", "6-month retention", est, lo, hi, kind=kind)
    assert not BAD.search(s), s
    d = sentences.direction(est, lo, hi)
    if d == "missing":
        assert "could not be estimated" in s
        return
    if d == "unclear":
        assert s.startswith("No clear evidence")
        assert "raises" not in s and "lowers" not in s
        return
    if d == "none":
        assert "unchanged" in s
        return
    assert ("raises" in s) == (d == "up") and ("lowers" in s) == (d == "down")
    # after the verb, the magnitude carries no sign: "lowers ... by 14.2 points", never "-14.2"
    after = s.split(" by ", 1)[1]
    assert not after.lstrip().startswith(("-", "−", "+")), s
    if lo is not None and not (isinstance(lo, float) and math.isnan(lo)):
        assert "95% CI" in s


def test_effect_sentence_words_the_issue_example_without_contradiction():
    s = sentences.effect_sentence("enrolling", "6-month retention", -0.142, -0.19, -0.09, kind="pp")
    assert s == "Enrolling lowers 6-month retention by 14.2 points (95% CI 9.0–19.0)."


def test_ratio_effect_uses_one_as_no_effect():
    assert sentences.direction(1.2, 0.9, 1.5, null=1.0) == "unclear"
    s = sentences.effect_sentence("Enrolling", "spend", 1.2, 0.9, 1.5, kind="ratio")
    assert s.startswith("No clear evidence")
    s = sentences.effect_sentence("Enrolling", "spend", 0.8, 0.7, 0.9, kind="ratio")
    assert "lowers spend to 0.80×" in s


@pytest.mark.parametrize(
    ("ratio", "lo", "hi", "expect"),
    [
        (1.44, 1.30, 1.60, "1.44 times as fast as"),
        (0.70, 0.60, 0.80, "at 0.70 times the rate of"),
        (0.95, 0.80, 1.10, "No clear evidence"),
        (1.0, None, None, "as fast as"),
        (NAN, NAN, NAN, "could not be estimated"),
        (2.0, NAN, 3.0, "2.00 times as fast as"),
    ],
)
def test_ratio_sentence(ratio, lo, hi, expect):
    s = sentences.ratio_sentence(
        "Customers in Value tier: low", "those in Value tier: medium", ratio, lo, hi
    )
    assert expect in s and not BAD.search(s)


def test_most_common_is_computed_on_the_numbers_shown_with_ties_and_gaps():
    assert sentences.most_common({"price": 0.31, "service": 0.42}) == "service"
    assert sentences.most_common({"price": 0.3, "service": 0.3}) == "price and service (tied)"
    assert sentences.most_common({"only": 5}) == "only"
    assert sentences.most_common({"a": NAN, "b": None}) == ""
    assert sentences.most_common({}) == ""
    assert sentences.most_common({"a": -2.0, "b": -1.0}) == "b"


def test_small_phrases():
    assert sentences.count_phrase(1, "customer") == "1 customer"
    assert sentences.count_phrase(1234, "customer") == "1,234 customers"
    assert sentences.count_phrase(0, "customer") == "no customers"
    assert "nan" not in sentences.count_phrase(NAN, "customer")
    assert sentences.join_words(["a", "b", "c"]) == "a, b and c"
    assert sentences.join_words(["a"]) == "a" and sentences.join_words([]) == ""
    assert sentences.share_phrase(62, 200) == "31% (62 of 200)"
    assert sentences.share_phrase(1, 0) == "n/a"


@pytest.mark.parametrize(
    ("args", "kw", "expect"),
    [
        ((22.74, 22.0, 23.4), {"kind": "months"}, "22.7 months (22.0–23.4)"),
        ((3, 2, 4), {"kind": "months"}, "3 months (2–4)"),
        ((0.031, 0.020, 0.042), {"kind": "pp"}, "+3.1 points (2.0–4.2)"),
        ((-0.142, -0.2, -0.1), {"kind": "pp"}, "−14.2 points (−20.0 to −10.0)"),
        ((140, 31, 249), {"kind": "money", "currency": "EUR"}, "€140 (€31–€249)"),
        ((4.88, 4.1, 5.2), {"kind": "money", "currency": "USD"}, "$4.88 ($4.10–$5.20)"),
        ((1.4412, 1.3, 1.6), {"kind": "ratio"}, "1.44× (1.30–1.60)"),
        ((0.0316, 0.03, 0.033), {"kind": "pct"}, "3.2% (3.0%–3.3%)"),
        ((NAN, 1, 2), {}, "not estimable"),
        ((5.0, NAN, 6), {"kind": "months"}, "5 months"),
    ],
)
def test_fmt_est_puts_estimate_and_interval_in_one_cell(args, kw, expect):
    assert fmt.fmt_est(*args, **kw) == expect


@pytest.mark.parametrize(
    ("p", "expect"),
    [
        (2.3e-34, "p < 0.001"),
        (0.0, "p < 0.001"),
        (0.0049, "p = 0.005"),
        (0.03, "p = 0.03"),
        (0.048, "p = 0.048"),
        (0.0499, "p = 0.0499"),
        (0.051, "p = 0.051"),
        (0.05, "p = 0.05"),
        (0.4812, "p = 0.48"),
        (1.0, "p > 0.99"),
        (NAN, "p n/a"),
    ],
)
def test_fmt_p(p, expect):
    assert fmt.fmt_p(p) == expect


def test_p_value_text_keeps_the_side_of_alpha():
    # "p = 0.05" for 0.048 would read as not significant at 0.05: the text keeps three decimals
    for p in (0.0449, 0.048, 0.0499, 0.0501, 0.051):
        shown = float(fmt.fmt_p(p).split("= ")[1])
        assert (shown < 0.05) == (p < 0.05), p


def test_units_of_one_concept():
    assert fmt.fmt_months(1) == "1 month" and fmt.fmt_months(3.0) == "3 months"
    assert fmt.fmt_pp(0.01) == "+1.0 points" and fmt.fmt_pp(-0.0004) == "0.0 points"
    assert fmt.fmt_value(0.0316, "pct") == "3.2%"
    assert fmt.fmt_value(-12.5, "money", currency="GBP") == "−£12.50"
    assert fmt.fmt_value(12.0, "count") == "12"
    with pytest.raises(ValueError, match="kind"):
        fmt.fmt_value(1, "furlongs")


@pytest.mark.parametrize("kind", fmt.KINDS)
@pytest.mark.parametrize("x", [0.0, -1.5, 1e9, -1e-9, NAN, float("inf"), None])
def test_formatters_never_print_python_tokens(kind, x):
    text = fmt.fmt_value(x, kind)
    assert not BAD.search(text) or text == "n/a", text
    for lo, hi in itertools.product([None, NAN, -1.0, 2.0], repeat=2):
        t = fmt.fmt_est(x, lo, hi, kind=kind)
        assert not re.search(r"\b(nan|None)\b", t), t


def test_labels_turn_codes_into_words():
    assert labels.label("ci_lower") == "Lower bound (95%)"
    assert labels.label("segment[business]") == "Segment: business"
    assert labels.label("prior_widget_category[T.detractor]") == "Prior widget category: detractor"
    assert labels.label("value_tier") == "Value tier"
    assert labels.label("churners_prevented_per_year") == "Churners prevented per year"
    assert labels.label("Already words") == "Already words"
    labels.register({"what_the_numbers_say": "What the numbers say"})
    assert labels.label("what_the_numbers_say") == "What the numbers say"
    assert labels.sentence_label("value_tier") == "value tier"
    assert labels.sentence_label("nps") == "NPS (0–10)"
    assert labels.snake_case_tokens("p_holm and smd_weighted, not plain words") == [
        "p_holm",
        "smd_weighted",
    ]


def test_every_report_module_agrees_on_its_labels():
    """One name reads the same in every report, whatever was imported first."""
    import importlib
    import pkgutil

    import analysis.report as report

    for m in pkgutil.walk_packages(report.__path__, "analysis.report."):
        importlib.import_module(m.name)  # register() raises on a clash
    with pytest.raises(ValueError, match="different words"):
        labels.register({"segment": "Something else"})
    labels.register({"segment": labels.label("segment")})  # the same words again are fine


def test_technical_text_reads_cleanly_in_the_appendix():
    from analysis.report.lint import lint_page

    raw = (
        "analysis.errors.AnalysisError: The Cox model on ('failures_window', "
        "'industry[Manufacturing]', 'segment[T.small]') did not converge; se = nan, [1, 2]"
    )
    got = labels.technical_text(raw)
    assert got.startswith("The Cox model on (")
    assert "industry: Manufacturing" in got and "segment: small" in got
    assert not re.search(r"[\[\]'\"]|\bnan\b|analysis\.errors", got)
    page = (
        '<div class="verdict"><p>Verdict.</p></div><details class="appendix"><summary>For '
        f'analysts</summary><div class="appendix-body"><p>{got}</p></div></details>'
    )
    assert not [p for p in lint_page(page, name="t") if "term" in p or "repr" in p]
    assert len(labels.technical_text("x" * 1000)) == 300


@pytest.mark.parametrize(
    ("est", "lo", "hi", "kind"),
    [
        (0.183, -1.842, 2.207, "pp"),  # a difference of shares beyond ±100 points
        (1.365, 0.0, 1.2e19, "ratio"),  # a ratio "interval" spanning 19 orders of magnitude
        (0.9, -0.2, 3.0, "ratio"),  # a negative ratio bound
    ],
)
def test_an_interval_no_such_quantity_can_have_is_not_printed(est, lo, hi, kind):
    got = fmt.fmt_est(est, lo, hi, kind=kind)
    assert got.endswith("(interval not estimable)")
    assert "e+" not in got and "19" not in got.split("(")[1]


def test_ordinary_intervals_are_printed():
    assert fmt.fmt_est(1.44, 1.3, 1.6, kind="ratio") == "1.44× (1.30–1.60)"
    assert fmt.fmt_est(0.031, 0.02, 0.042, kind="pp") == "+3.1 points (2.0–4.2)"
    assert "not estimable" not in fmt.fmt_est(-1.0, -1.0, 0.5, kind="pp")  # at the bound: fine
