"""Every report on every business shape: status ok, clean text, fits the page, agrees with the index.

Issues 14 and 15. Each world below is generated small, all five reports are run on it
through the runner, and every page is checked:

* every report has status "ok" (a section the data cannot support is skipped in words);
* :func:`analysis.report.lint.lint_page`: no nan/inf/None/NaT, no snake_case, model-term
  syntax or Python repr, no sign-contradicting sentence, a verdict first, one folded appendix;
* every headline on the index appears in its report, and the tiles show the index's text;
* in Chromium at 1,280 px: no element wider than the content column, no table hiding columns
  behind a horizontal scroll, no console error.

Worlds: the sample world, the generator's presets (subscription, retail, b2b, short, minimal)
and the real CDNOW 1/10 sample. Full-page screenshots of the sample world's reports go to
``reports/screenshots/`` (git-ignored; CI keeps them as artefacts).
"""

from __future__ import annotations

import html
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from analysis.report import lint

ROOT = Path(__file__).resolve().parents[1]
PRESETS = ["subscription", "retail", "b2b", "short", "minimal"]
WORLDS = ["sample", *PRESETS, "cdnow"]
# Each world is rendered once, in the process that runs its tests (pytest -n 2 --dist loadgroup).
WORLD_PARAMS = [pytest.param(w, marks=pytest.mark.xdist_group(f"lint-{w}")) for w in WORLDS]
SIZES = {
    "sample": 1500,
    "subscription": 1200,
    "retail": 1500,
    "b2b": 300,
    "short": 1000,
    "minimal": 800,
}
#: Worlds whose per-customer models use a model sample of this many customers.
SAMPLED = {"retail": 700}
WIDTH = {"width": 1280, "height": 900}
SCREENSHOTS = Path(os.environ.get("REPORT_SCREENSHOTS", ROOT / "reports" / "screenshots"))


def _make(world: str, base: Path) -> Path:
    """Write the world's data and params under ``base``; return the params file."""
    data = base / "data"
    py = sys.executable
    if world == "cdnow":
        subprocess.run(
            [py, "-m", "analysis", "cdnow", "--out", str(data), "--sample"], check=True, cwd=ROOT
        )
        src = ROOT / "params" / "cdnow.yaml"
        params = base / "params.yaml"
        params.write_text(
            f"extends: {src}\ndata:\n  path: {data}\n"
            f"reports:\n  output_dir: {base / 'reports'}\n  jobs: 2\n  kernel_name: python3\n"
        )
        return params
    args = [
        py,
        "-m",
        "analysis",
        "synth",
        "--out",
        str(data),
        "--customers",
        str(SIZES[world]),
        "--seed",
        "7",
    ]
    if world != "sample":
        args += ["--preset", world]
    subprocess.run(args, check=True, cwd=ROOT, capture_output=True)
    own = data / "params.yaml"
    params = base / "params.yaml"
    head = f"extends: {own}\n" if own.is_file() else ""
    params.write_text(
        head + f"data:\n  path: {data}\n"
        f"reports:\n  output_dir: {base / 'reports'}\n  jobs: 2\n  kernel_name: python3\n"
        "  title: Lint world\n"
        # one world's models run on a sample, as large data's do (analysis.data.sample)
         + (f"analysis:\n  model_max_customers: {SAMPLED[world]}\n" if world in SAMPLED else "")
    )
    return params


def _rendered(world: str, tmp_path_factory) -> dict:
    """Run every report on ``world`` once per test session (shared by the xdist workers).

    The first process to need a world renders it under a lock; the others read its outcome.
    """
    from analysis.report import runner
    from tests.test_browser import _exclusive

    shared = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        shared = shared.parent
    base = shared / f"lint_{world}"
    done = base / "outcome.json"
    with _exclusive(shared / f"lint_{world}.lock"):
        if not done.exists():
            shutil.rmtree(base, ignore_errors=True)
            base.mkdir(parents=True)
            params = _make(world, base)
            result = runner.run(params, notebooks_dir=ROOT / "notebooks", kernel_name="python3")
            outcome = {
                "exit_code": result.exit_code,
                "results": {
                    r.name: {
                        "status": r.status,
                        "error": r.error,
                        "headlines": r.headlines,
                        "verdict": r.verdict,
                    }
                    for r in result.reports
                },
            }
            done.write_text(json.dumps(outcome, default=str))
    out = json.loads(done.read_text())
    out["reports"] = base / "reports"
    return out


def _pages(outcome: dict) -> list[Path]:
    return sorted(outcome["reports"].glob("[0-9][0-9]_*.html"))


@pytest.mark.parametrize("world", WORLD_PARAMS)
def test_every_report_is_ok_and_its_text_is_clean(world, tmp_path_factory):
    outcome = _rendered(world, tmp_path_factory)
    bad = {n: r["error"] for n, r in outcome["results"].items() if r["status"] != "ok"}
    assert bad == {}, f"{world}: reports not ok: {bad}"
    assert outcome["exit_code"] == 0
    problems = []
    for page in _pages(outcome):
        problems += lint.lint_page(page.read_text(), name=f"{world}/{page.stem}")
    assert problems == [], "\n".join(problems)


@pytest.mark.xdist_group("lint-retail")
def test_sampled_models_are_disclosed_in_the_reports_that_use_them(tmp_path_factory):
    """Nothing samples silently: the reports whose models ran on the model sample say so, with
    its size, in the body; the others do not claim a sample."""
    import html as html_lib
    import re

    outcome = _rendered("retail", tmp_path_factory)
    n = SIZES["retail"]
    said = f"random sample of {SAMPLED['retail']:,} of the {n:,} customers"
    for page in _pages(outcome):
        body = html_lib.unescape(re.sub(r"<[^>]+>", " ", page.read_text()))
        body = re.sub(r"\s+", " ", body)
        if page.stem.startswith("00_"):  # the KPIs are counts of everyone: no model sample
            assert said not in body, page.stem
        elif page.stem.startswith(("01_", "02_", "03_")) or "How well risk is predicted" in body:
            # before the appendix, beside the sections it concerns
            assert said in body, page.stem
            assert body.index(said) < body.index("For analysts: methods"), page.stem


@pytest.mark.parametrize("world", WORLD_PARAMS)
def test_index_headlines_are_the_reports_numbers(world, tmp_path_factory):
    outcome = _rendered(world, tmp_path_factory)
    index = (outcome["reports"] / "index.html").read_text()
    problems = []
    for page in _pages(outcome):
        r = SimpleNamespace(**outcome["results"][page.stem])
        html_text = page.read_text()
        facts = lint.parse_page(html_text)
        visible = " ".join(" ".join(n.text for n in facts.nodes).split())
        # a report whose table the data lacks (no loyalty table) has a verdict but no figures
        if facts.tiles:
            assert r.headlines, f"{world}/{page.stem}: tiles but no headline numbers"
        else:
            assert r.verdict, f"{world}/{page.stem}: neither figures nor a verdict"
        for h in r.headlines:
            head = h["text"].split(" (")[0]
            if head not in visible:
                problems.append(
                    f"{world}/{page.stem}: index headline {h['name']!r} = {h['text']!r} not in the report"
                )
            if html.escape(h["text"], quote=False) not in index:
                problems.append(f"{world}/{page.stem}: headline {h['text']!r} missing on the index")
        problems += lint.lint_against_index(
            html_text, r.headlines, r.verdict, name=f"{world}/{page.stem}"
        )
    # one name, one quantity: a figure named alike in two reports has the same unit
    units: dict[str, set] = {}
    for r in outcome["results"].values():
        for h in r["headlines"]:
            units.setdefault(h["name"], set()).add(h.get("unit", ""))
    problems += [
        f"{world}: headline {n!r} in units {sorted(u)}" for n, u in units.items() if len(u) > 1
    ]
    assert problems == [], "\n".join(problems)


@pytest.mark.parametrize("world", WORLD_PARAMS)
def test_every_page_fits_the_content_column_in_chromium(world, tmp_path_factory, browser):
    outcome = _rendered(world, tmp_path_factory)
    problems = []
    for page in _pages(outcome):
        visit = browser.open(page, viewport=WIDTH)
        try:
            problems += [f"{world}/{page.stem}: {e}" for e in visit.errors]
            problems += [
                f"{world}/{page.stem}: {p}" for p in visit.page.evaluate(lint.WIDTH_CHECK_JS)
            ]
            if world == "sample":
                SCREENSHOTS.mkdir(parents=True, exist_ok=True)
                visit.page.screenshot(path=str(SCREENSHOTS / f"{page.stem}.png"), full_page=True)
        finally:
            visit.close()
    if world == "sample":
        shutil.copy2(outcome["reports"] / "index.html", SCREENSHOTS / "index.html")
    assert problems == [], "\n".join(problems[:40])


@pytest.mark.xdist_group("lint-sample")
def test_print_stylesheet_expands_the_appendix(tmp_path_factory, browser):
    outcome = _rendered("sample", tmp_path_factory)
    page = _pages(outcome)[0]
    visit = browser.open(page, viewport=WIDTH)
    try:
        visit.page.emulate_media(media="print")
        height = visit.page.evaluate(
            "() => { const d = document.querySelector('details.appendix .appendix-body');"
            " return d ? d.getBoundingClientRect().height : -1; }"
        )
    finally:
        visit.close()
    assert height > 50, "the appendix is not printed expanded"
