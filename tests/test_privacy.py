"""Privacy of the reports: small groups, totals, the CRM export and customer ids.

Hand-made tables check the display helpers against an independent audit. A
hidden group is exposed when the shown totals fix its value: every total is an
equation in the hidden rows, and a row is fixed when no solution of the
equations can change it, that is when the null space of the equations (computed
here with an SVD, not the rank comparison :mod:`analysis.report.display` uses)
has no component on it. A hidden group is also exposed when subtracting the
shown rows from a total leaves fewer than ``min_group_size`` customers.

One small world (400 customers, seed 3) with three segments of 1, 2 and 3
customers then runs through the four reports with group tables, and their HTML
is read back: no row of a small segment shows a number, no shown total minus
the shown rows leaves a handful of customers, and totals still count the small
segments' customers.
"""

from __future__ import annotations

import csv
import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.linalg import null_space

from analysis import runner
from analysis.report import display, guard
from analysis.report import loyalty as loyalty_text
from analysis.report.value import csv_safe, write_export

ROOT = Path(__file__).resolve().parents[1]
K = 10  # min_group_size of the world's params

# Segment labels and sizes; "@" also tests the CRM export (a formula trigger) and makes
# that segment the reference level of the loyalty balance tables (it sorts first).
TINY = {"TinySeg1": 1, "TinySeg2": 2, "@TinySeg3": 3}
REPORTS = ["01_retention_survival", "02_loyalty_programme", "03_experience_revenue",
           "04_customer_value"]  # fmt: skip
MASKED = {"<10", "suppressed", "\u2013", ""}


# --------------------------------------------------------------------------------------
# An independent audit of a suppression pattern
# --------------------------------------------------------------------------------------


def fixed_rows(hidden: np.ndarray, blocks: list[np.ndarray]) -> set[int]:
    """Hidden rows whose value the block totals determine (null-space test)."""
    unknown = np.flatnonzero(hidden)
    if not len(unknown):
        return set()
    a = np.array([[1.0 if u in set(b.tolist()) else 0.0 for u in unknown] for b in blocks])
    ns = null_space(a) if len(blocks) else np.eye(len(unknown))
    return {int(u) for j, u in enumerate(unknown) if np.allclose(ns[j], 0.0, atol=1e-9)}


def one_way(counts, **kw) -> display.Suppression:
    df = pd.DataFrame({"segment": [f"s{i}" for i in range(len(counts))], "customers": counts})
    return display.suppression(
        df, count_col="customers", min_group_size=K, group_col="segment", **kw
    )


# --------------------------------------------------------------------------------------
# Display helpers on hand-made tables
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 2, 3])
def test_a_small_segment_beside_a_total_takes_the_next_smallest_with_it(n):
    counts = np.array([500, n, 40, 300])
    sup = one_way(counts, total=True)
    assert sup.small.tolist() == [False, True, False, False]
    assert sup.complementary.tolist() == [False, False, True, False]  # 40: the next smallest
    hidden = sup.hidden
    # total minus the shown rows: the small segment together with 40 others
    assert counts.sum() - counts[~hidden].sum() == n + 40
    assert fixed_rows(hidden, [np.arange(4)]) == set()


@pytest.mark.parametrize("n", [1, 2, 3])
def test_without_a_total_only_the_small_segment_is_hidden(n):
    sup = one_way([500, n, 40, 300])
    assert sup.hidden.tolist() == [False, True, False, False]
    assert not sup.complementary.any()


def test_small_segments_that_add_up_to_too_few_are_not_enough():
    # 1 + 2 + 3 = 6 customers: two or more hidden, but together still under 10.
    counts = np.array([1, 2, 3, 57, 125])
    sup = one_way(counts, total=True)
    assert sup.hidden.tolist() == [True, True, True, True, False]
    assert counts.sum() - counts[~sup.hidden].sum() >= K


def test_two_small_segments_that_add_up_to_enough_stand_alone():
    counts = np.array([4, 7, 300, 500])  # 4 + 7 = 11 customers
    sup = one_way(counts, total=True)
    assert sup.hidden.tolist() == [True, True, False, False]


def test_a_known_total_above_the_rows_counts_the_unlisted_customers():
    # 394 customers in the rows, 400 in the text: 6 customers of left-out groups.
    sup = one_way([114, 280], total=400)
    assert sup.hidden.tolist() == [True, False]
    assert one_way([114, 280], total=394).hidden.tolist() == [False, False]
    # 20 customers of left-out groups: several small groups, already safe together
    assert not one_way([114, 280], total=414).hidden.any()


def test_only_two_segments_and_one_is_small_hides_both():
    sup = one_way([2, 700], total=True)
    assert sup.hidden.all()


def test_total_row_is_never_hidden_and_gives_the_total():
    df = pd.DataFrame({"segment": ["all customers", "a", "b", "c"], "n": [400, 3, 97, 300]})
    sup = display.suppression(
        df, count_col="n", min_group_size=K, total_label="all customers", group_col="segment"
    )
    assert sup.hidden.tolist() == [False, True, True, False]
    assert sup.hidden_groups == {"a", "b"} and sup.small_groups == {"a"}


def test_unknown_counts_are_small_and_protected():
    sup = one_way([np.nan, 30, 40], total=True)
    assert sup.small.tolist() == [True, False, False]
    assert sup.complementary.tolist() == [False, True, False]


def test_two_way_table_no_small_cell_follows_from_its_margins():
    # segment x tier, with segment totals, tier totals and the grand total known
    seg = ["A", "A", "A", "B", "B", "B", "C", "C", "C"]
    tier = ["low", "med", "high"] * 3
    counts = np.array([3, 40, 50, 300, 400, 500, 60, 2, 80], dtype=float)
    df = pd.DataFrame({"segment": seg, "tier": tier, "customers": counts})
    sup = display.suppression(
        df, count_col="customers", min_group_size=K, total=True, totals_by=["segment", "tier"]
    )
    hidden = sup.hidden
    assert hidden[[0, 7]].all()  # the two small cells
    blocks = [np.arange(9)]
    blocks += [np.flatnonzero(df.segment == s) for s in "ABC"]
    blocks += [np.flatnonzero(df.tier == t) for t in ("low", "med", "high")]
    assert fixed_rows(hidden, blocks) == set()
    for b in blocks:  # every known total minus its shown cells: nothing or 10+ customers
        left = counts[b][hidden[b]].sum()
        assert left == 0 or left >= K, b


def test_two_way_table_with_a_segment_hidden_elsewhere():
    # X (1 customer) sits in one cell; the segment table hides X and the next smallest, A.
    seg_table = pd.DataFrame({"segment": ["X", "A", "B"], "customers": [1, 120, 1200]})
    seg_sup = display.suppression(
        seg_table, count_col="customers", min_group_size=K, total=True, group_col="segment"
    )
    assert seg_sup.hidden_groups == {"X", "A"}
    df = pd.DataFrame(
        {
            "segment": ["X", "A", "A", "A", "B", "B", "B"],
            "tier": ["low", "low", "med", "high", "low", "med", "high"],
            "customers": [np.nan, 30, 40, 50, 300, 400, 500],  # the study masks X's count
        }
    )
    sup = display.suppression(
        df,
        count_col="customers",
        min_group_size=K,
        total=True,
        totals_by=["segment", "tier"],
        group_col="segment",
        hide=seg_sup,
    )
    hidden = sup.hidden
    assert hidden[:4].all()  # X and all of A, as in the segment table
    # Known: grand total, tier totals, and B's total (X's and A's are hidden).
    blocks = [np.arange(7), np.array([0, 1, 4]), np.array([2, 5]), np.array([3, 6])]
    blocks.append(np.array([4, 5, 6]))
    assert 0 not in fixed_rows(hidden, blocks)


def test_show_table_masks_every_number_of_a_hidden_row_and_keeps_labels():
    df = pd.DataFrame(
        {
            "segment": ["big", "tiny", "mid"],
            "customers": [500, 2, 40],
            "estimate": [
                "16.2 (95% CI 14.1\u201318.3)",
                "9.9 (95% CI 1\u201320)",
                "3.0 (95% CI 1\u20135)",
            ],
            "kind": ["estimate"] * 3,
        }
    )
    html = display.table_html(
        df, count_col="customers", min_group_size=K, total=True, group_col="segment"
    )
    rows = {r.split("</td>")[0].split(">")[-1]: r for r in html.split("<tr")[2:]}
    assert ">&lt;10<" in rows["tiny"] and "9.9" not in rows["tiny"]
    assert ">suppressed<" in rows["mid"] and ">40<" not in rows["mid"] and "3.0" not in rows["mid"]
    assert ">estimate<" in rows["mid"]  # a label, not a number
    assert ">500<" in rows["big"]
    assert "1 group(s) with fewer than 10 customers are suppressed." in html
    assert "1 further row(s) are suppressed so that small groups cannot be worked out" in html


def test_show_table_hides_the_groups_another_table_hid():
    sup = one_way([2, 40, 500], total=True)
    df = pd.DataFrame({"segment": ["s0", "s0", "s1", "s2"], "h": [3, 6, 3, 6], "p": [0.5] * 4})
    html = display.table_html(df, group_col="segment", hide=sup)
    body = html.split("<tbody>")[1]
    assert body.count('class="suppressed"') == 3 and body.count(">0.50<") == 1
    assert body.count(">&lt;10<") == 0  # no count column here: numbers say "suppressed"


def test_suppress_small_with_a_total():
    df = pd.DataFrame({"segment": ["a", "b", "c"], "customers": [3, 40, 500], "v": [1.0, 2, 3]})
    out = display.suppress_small(df, count_col="customers", min_group_size=K, total=True)
    assert out["suppressed"].tolist() == [True, True, False]
    assert out["v"].isna().tolist() == [True, True, False]


def test_total_needs_a_count_column():
    with pytest.raises(Exception, match="count_col"):
        display.table_html(pd.DataFrame({"a": ["x"], "n": [1]}), total=True)


def test_visible_rows_for_plots():
    sup = one_way([2, 40, 500], total=True)
    km = pd.DataFrame({"segment": ["s0", "s1", "s2", "s2"], "time": [1, 1, 1, 2]})
    assert sup.visible(km, "segment")["segment"].tolist() == ["s2", "s2"]


# --------------------------------------------------------------------------------------
# Covariate levels (balance tables, member profiles, love plots)
# --------------------------------------------------------------------------------------


def _trial_frame():
    # monthly rows: one customer appears in several months but counts once per level
    rows = []
    for cid in range(200):
        seg = "consumer" if cid < 140 else "business" if cid < 194 else f"Tiny{cid % 3}"
        for month in range(3):
            rows.append({"customer_id": cid, "month": month, "segment": seg, "x": 1.0})
    return pd.DataFrame(rows)


def test_level_sizes_count_customers_not_rows():
    sizes = loyalty_text.level_sizes(_trial_frame(), ["segment", "x"], id_col="customer_id")
    assert sizes["segment[consumer]"] == 140 and sizes["segment[business]"] == 54
    assert sizes["segment[Tiny0]"] == 2 and "x" not in sizes.index


def test_hidden_levels_small_and_complementary():
    f = _trial_frame()  # levels sorted: Tiny0 (2), Tiny1 (2), Tiny2 (2), business, consumer
    assert loyalty_text.hidden_levels(f, ["segment", "x"], min_group_size=K) == {
        "segment[Tiny1]",
        "segment[Tiny2]",
    }  # Tiny0 is the reference level: never a row of a balance table
    hidden = loyalty_text.hidden_levels(f, ["segment"], min_group_size=K, complementary=True)
    # shares add up to one: the reference and the two small levels hold 6 customers, so the
    # next smallest level (business) goes too
    assert hidden == {"segment[Tiny1]", "segment[Tiny2]", "segment[business]"}


def test_hidden_levels_with_a_large_reference_need_no_complement():
    f = pd.DataFrame({"customer_id": range(103), "segment": ["a"] * 60 + ["b"] * 40 + ["c"] * 3})
    assert loyalty_text.hidden_levels(f, ["segment"], min_group_size=K, complementary=True) == {
        "segment[c]"
    }


# --------------------------------------------------------------------------------------
# CRM export
# --------------------------------------------------------------------------------------


def test_export_neutralises_formulas_and_keeps_ids_and_numbers(tmp_path):
    ranked = pd.DataFrame(
        {
            "rank": [1, 2, 3, 4, 5, 6],
            "customer_id": ["-C1", "C2", "C3", "C4", "C5", "C6"],
            "segment": [
                '=HYPERLINK("http://evil.example","x")',
                "+1",
                "-2",
                " @SUM(A1)",
                "\tcmd",
                'plain, with "quotes"',
            ],
            "value": [-12.5, 1.0, 2.0, 3.0, 4.0, 5.0],
            "protect": [True, False, True, False, True, False],
        }
    )
    path = write_export(ranked, tmp_path / "out.csv")
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    segs = [r["segment"] for r in rows]
    assert segs == [
        '\'=HYPERLINK("http://evil.example","x")',
        "'+1",
        "'-2",
        "' @SUM(A1)",
        "'\tcmd",
        'plain, with "quotes"',
    ]
    assert [r["customer_id"] for r in rows] == ranked["customer_id"].tolist()  # the key, intact
    assert [float(r["value"]) for r in rows] == ranked["value"].tolist()
    assert rows[0]["value"] == "-12.5000"  # a number, not text
    assert ranked["segment"].iloc[0].startswith("=")  # the input is not changed


def test_csv_safe_handles_categorical_text():
    df = pd.DataFrame({"tier": pd.Categorical(["=a", "b"]), "n": [1, -2]})
    out = csv_safe(df)
    assert out["tier"].tolist() == ["'=a", "b"] and out["n"].tolist() == [1, -2]
    assert df["tier"].tolist() == ["=a", "b"]  # the input is not changed
    # a neutralised category that equals another one ("=x" and "'=x") still comes out right
    clash = pd.DataFrame({"s": pd.Categorical(["=x", "'=x", "@y", "=x"])})
    assert csv_safe(clash)["s"].tolist() == ["'=x", "'=x", "'@y", "'=x"]


# --------------------------------------------------------------------------------------
# Identifier guard
# --------------------------------------------------------------------------------------


def test_guard_redacts_the_index_and_scans_every_page(tmp_path):
    ids = ["C0000123", "A&B4567"]
    page = "<li>error: C0000123 failed</li><li>A&amp;B4567</li><li>C00001234</li>"
    red = guard.redact_page(page, ids)
    assert "C0000123 " not in red and "A&amp;B4567" not in red and "C00001234" in red
    assert guard.scan_for_identifiers(red, ids) == []
    (tmp_path / "index.html").write_text(page)
    (tmp_path / "00_x.html").write_text("<p>fine</p>")
    assert guard.scan_outputs(tmp_path, ids) == {"index.html": ["A&B4567", "C0000123"]}


# --------------------------------------------------------------------------------------
# One small world through the reports
# --------------------------------------------------------------------------------------


class _Tables(HTMLParser):
    """Collect the report tables (header, rows) and the text outside them."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tables: list[dict] = []
        self.text: list[str] = []
        self._in_table = self._skip = 0
        self._cell: list[str] | None = None
        self._row: list[str] | None = None
        self._caption: str | None = None
        self._in_caption = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag in ("style", "script") or (
            tag == "section" and "provenance" in (a.get("class") or "")
        ):
            self._skip += 1
        elif tag == "p" and a.get("class") == "analysis-caption":
            self._in_caption, self._caption = True, ""
        elif tag == "table":
            self._in_table += 1
            self.tables.append({"caption": self._caption or "", "rows": [], "header": []})
            self._caption = None
        elif tag == "tr" and self._in_table:
            self._row = []
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("style", "script", "section") and self._skip:
            self._skip -= 1
        elif tag == "p" and self._in_caption:
            self._in_caption = False
        elif tag == "table" and self._in_table:
            self._in_table -= 1
        elif tag in ("td", "th") and self._cell is not None:
            self._row.append("".join(self._cell).strip())
            self._cell = None
        elif tag == "tr" and self._row is not None:
            t = self.tables[-1]
            if not t["header"]:
                t["header"] = self._row
            else:
                t["rows"].append(self._row)
            self._row = None

    def handle_data(self, data):
        if self._skip:
            return
        if self._in_caption:
            self._caption += data
        elif self._cell is not None:
            self._cell.append(data)
        elif not self._in_table:
            self.text.append(data)


def _page(path: Path) -> _Tables:
    p = _Tables()
    p.feed(path.read_text())
    return p


def _table(page: _Tables, caption_start: str) -> pd.DataFrame:
    hits = [t for t in page.tables if t["caption"].startswith(caption_start)]
    assert len(hits) == 1, [t["caption"] for t in page.tables]
    df = pd.DataFrame(hits[0]["rows"], columns=hits[0]["header"])
    # headers are human labels ("Customers"); also reach them by the column names they label
    import importlib
    import pkgutil

    import analysis.report as report
    from analysis.report.labels import LABELS

    for m in pkgutil.walk_packages(report.__path__, "analysis.report."):
        importlib.import_module(m.name)  # every report's labels, as in its kernel
    for key, text in LABELS.items():
        if text in df.columns and key not in df.columns:
            df[key] = df[text]
    return df


def _num(cell: str) -> float | None:
    """A shown count ("1,234"), or None for a masked cell."""
    if cell in MASKED:
        return None
    return float(cell.replace(",", ""))


def _left_over(total: float, shown) -> float:
    """Customers a reader gets by subtracting the shown rows from the total."""
    return total - sum(v for v in (_num(c) for c in shown) if v is not None)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from analysis import synth

    base = tmp_path_factory.mktemp("privacy_world")
    synth.write(synth.generate(n_customers=400, seed=3), base / "data", format="parquet")
    cust = pd.read_parquet(base / "data" / "customers.parquet")
    tx = pd.read_parquet(base / "data" / "transactions.parquet")
    # customers still active who bought something: they appear in every report
    active = cust[cust.customer_id.isin(set(tx.customer_id)) & cust.churn_date.isna()]
    picks = active.customer_id.tolist()[: sum(TINY.values())]
    labels = [lab for lab, n in TINY.items() for _ in range(n)]
    cust.loc[cust.customer_id.isin(picks), "segment"] = cust.customer_id.map(
        dict(zip(picks, labels, strict=True))
    )
    cust.to_parquet(base / "data" / "customers.parquet")
    params = base / "params.yaml"
    params.write_text(
        "data:\n  path: data\nreports:\n  output_dir: reports\n  jobs: 2\n"
        f"  timeout_seconds: 900\nanalysis:\n  min_group_size: {K}\n"
    )
    result = runner.run(
        params, notebooks_dir=ROOT / "notebooks", kernel_name="python3", only=REPORTS
    )
    assert result.exit_code == 0, [(r.name, r.error) for r in result.reports]
    pages = {n: _page(base / "reports" / f"{n}.html") for n in REPORTS}
    return base, cust, pages


def _tiny_in(cell: str) -> bool:
    return any(t in cell for t in TINY)


def test_no_row_of_a_small_segment_shows_a_number(world):
    _, _, pages = world
    seen = 0
    for name, page in pages.items():
        for t in page.tables:
            for row in t["rows"]:
                if not any(_tiny_in(c) for c in row):
                    continue
                seen += 1
                shown = [
                    c for c in row if not _tiny_in(c) and c not in MASKED and re.search(r"\d", c)
                ]
                assert shown == [], f"{name} / {t['caption']}: {row}"
        text = " ".join(page.text)
        assert not any(t in text for t in TINY), f"{name}: a small segment is named in the text"
    assert seen >= 5  # the small segments are in the tables, masked


def test_retention_totals_count_everyone_and_hide_enough(world):
    _, cust, pages = world
    page = pages["01_retention_survival"]
    m = re.search(r"all ([\d,]+) customers as of", " ".join(page.text))
    n_total = float(m.group(1).replace(",", ""))
    assert n_total == len(cust)  # every customer of the world has a lifetime here
    med = _table(page, "Median tenure")
    everyone = med[med.iloc[:, 0] == "all customers"]
    assert _num(everyone["n"].iloc[0]) == n_total  # totals include the small segments
    groups = med[med.iloc[:, 0] != "all customers"]
    assert _left_over(n_total, groups["n"]) >= K
    lr = _table(page, "Observed and expected churn events")
    assert _left_over(n_total, lr["n"]) >= K


def test_value_report_totals_cannot_isolate_a_segment(world):
    _, _, pages = world
    page = pages["04_customer_value"]
    text = " ".join(page.text)
    n_scored = float(re.search(r"Across all ([\d,]+) customers", text).group(1).replace(",", ""))
    by_seg = _table(page, "Expected purchases, spend per purchase and value")
    left = _left_over(n_scored, by_seg["customers"])
    assert left >= K
    for seg in TINY:  # every small segment is among the hidden ones
        row = by_seg[by_seg.segment == seg]
        assert len(row) == 0 or row["customers"].iloc[0] == "<10"
    tiers = _table(page, "Recency, frequency, spend and expected value by value tier")
    groups = _table(page, "Customers, customers at risk, customers to protect")
    assert _left_over(n_scored, groups["customers"]) >= K
    for _, t in tiers.iterrows():
        left = _left_over(
            _num(t["customers"]), groups.loc[groups.clv_tier == t.clv_tier, "customers"]
        )
        assert left == 0 or left >= K, t.clv_tier
    for _, s in by_seg.iterrows():
        if _num(s["customers"]) is None:
            continue
        left = _left_over(
            _num(s["customers"]), groups.loc[groups.segment == s.segment, "customers"]
        )
        assert left == 0 or left >= K, s.segment
    errors = _table(page, "Holdout accuracy")
    freq = _table(page, "Mean holdout purchases by calibration-period frequency")
    left = _left_over(_num(errors["n_customers"].iloc[0]), freq["n_customers"])
    assert left == 0 or left >= K


def test_experience_by_segment_cannot_isolate_a_segment(world):
    base, _, pages = world
    exp = pd.read_parquet(base / "data" / "experience.parquet")
    seg = _table(pages["03_experience_revenue"], "Experience by segment")
    left = _left_over(exp.customer_id.nunique(), seg["customers"])
    assert left == 0 or left >= K


def test_loyalty_profile_hides_enough_segment_levels(world):
    _, cust, pages = world
    prof = _table(pages["02_loyalty_programme"], "Customers in the month they enrolled")
    shown = {
        r.covariate.split(": ", 1)[1]
        for _, r in prof.iterrows()
        if r.covariate.startswith("Segment: ") and r.iloc[1] not in MASKED
    }
    sizes = cust.segment.value_counts()
    # shares add up to one: the levels not shown together hold enough customers
    assert sizes.drop(index=list(shown)).sum() >= K
    text = " ".join(pages["02_loyalty_programme"].text)
    enrolments = float(re.search(r"([\d,]+) enrolments in", text).group(1).replace(",", ""))
    het = _table(pages["02_loyalty_programme"], "Spend effect on customers who enrolled")
    left = _left_over(enrolments, het["n_treated"])
    assert left == 0 or left >= K


def test_crm_export_neutralises_a_formula_like_segment(world):
    base, cust, _ = world
    (path,) = list(base.glob("**/customers_to_protect.csv"))
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    segs = {r["segment"] for r in rows}
    assert "'@TinySeg3" in segs and "@TinySeg3" not in segs
    assert not any(s[:1] in "=+-@\t\r" for s in segs)
    assert {r["customer_id"] for r in rows} <= set(cust.customer_id)


def test_no_customer_id_in_any_page_or_the_index(world):
    base, cust, _ = world
    assert (base / "reports" / "index.html").is_file()
    assert guard.scan_outputs(base / "reports", cust.customer_id) == {}


def test_value_findings_do_not_state_money_of_a_few_customers():
    from analysis.report.value import value_findings

    ranked = pd.DataFrame(
        {
            "clv_tier": ["high"] * 20 + ["low"] * 80,
            "protect": [True] * 3 + [False] * 97,
            "strategic": [True] * 2 + [False] * 98,
            "value": np.linspace(1000, 10, 100),
            "value_at_stake": np.linspace(100, 1, 100),
        }
    )
    conc = {"top": 0.1, "share": 0.3, "ci_lower": 0.25, "ci_upper": 0.35, "n_customers": 100}
    text = " ".join(value_findings(conc, ranked, currency="EUR ", min_group_size=K))
    assert "3 of 20 high-value customers" in text and "fewer than 10 customers" in text
    assert f"{ranked.value[:3].sum():,.0f}" not in text  # their value is not stated
    assert "Fewer than 10 of the customers to protect are in strategic segments." in text
    shown = " ".join(value_findings(conc, ranked, currency="EUR "))  # no threshold: as before
    assert f"EUR {ranked.value[:3].sum():,.0f}" in shown
