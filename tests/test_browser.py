"""The published reports as a reader sees them: headless Chromium on the tiny world.

One runner run on the tiny sample world (a segment renamed to an HTML snippet),
then every report and the index are opened in Debian's Chromium
(``/usr/bin/chromium``, driven by Playwright; ``.ci/browser.sh`` installs both).
Checked: no console or page errors, every image decoded (naturalWidth > 0), every
index link resolves, no script runs from data text (dialogs hooked, the snippet
visible as text), no horizontal page overflow at laptop and tablet widths.

Screenshots of the index and the KPI dashboard (1366x768 viewport, full page) are
written to ``screenshots/`` in the test session's temporary folder (override with
the environment variable ``BROWSER_SCREENSHOTS``); the path is printed. Nothing is
written into the repository, and every session has its own Chromium profile, so
several sessions (other clones, CI jobs) can run at once.

Also a command for real report folders, e.g. after ``make reports``::

    .venv/bin/python tests/test_browser.py reports/

which runs the same checks on every page there and writes full-page screenshots
to ``reports/screenshots/``.

If Chromium or Playwright is missing or cannot start, the tests FAIL (never skip).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import sys
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path(os.environ.get("BROWSER_CHROMIUM", "/usr/bin/chromium"))  # override: tests only
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
LAPTOP = {"width": 1366, "height": 768}
TABLET = {"width": 820, "height": 1180}
EVIL = "<img src=x onerror=alert(1)>"
INSTALL_HINT = "install them with `bash .ci/browser.sh` (Debian chromium + playwright in .venv)"

# Runs before any script of the page: a dialog opened by data text is recorded, not shown.
HOOK_DIALOGS = """
window.__dialogs = [];
for (const name of ["alert", "confirm", "prompt", "print", "open"]) {
  window[name] = function (...args) { window.__dialogs.push(name + ": " + String(args[0])); };
}
"""


# --------------------------------------------------------------------------------------
# Browser
# --------------------------------------------------------------------------------------


class Browser:
    """A headless Chromium with a fresh profile; pages open with dialogs and errors recorded."""

    def __init__(self, profile_dir: Path):
        try:
            from playwright.sync_api import sync_playwright
        except ImportError as exc:
            raise RuntimeError(
                f"Playwright for Python is not installed ({exc}); {INSTALL_HINT}"
            ) from exc
        if not CHROMIUM.is_file():
            raise RuntimeError(f"{CHROMIUM} does not exist; {INSTALL_HINT}")
        self._pw_cm = sync_playwright()
        self._pw = self._pw_cm.start()
        try:
            self.browser = self._pw.chromium.launch_persistent_context(
                str(profile_dir),  # Playwright passes it as --user-data-dir
                executable_path=str(CHROMIUM),
                headless=True,
                args=CHROMIUM_ARGS,
                viewport=LAPTOP,
                device_scale_factor=1,
                timeout=60_000,
            )
        except Exception as exc:
            self._pw_cm.__exit__(None, None, None)
            raise RuntimeError(f"Chromium at {CHROMIUM} did not start: {exc}") from exc
        self.browser.add_init_script(HOOK_DIALOGS)

    def open(self, path: Path, *, viewport: dict | None = None) -> Visit:
        """Open a local HTML file and return the page with what happened while loading."""
        page = self.browser.new_page()
        visit = Visit(page)
        page.on("console", visit.on_console)
        page.on("pageerror", lambda exc: visit.errors.append(f"page error: {exc}"))
        page.on("requestfailed", lambda r: visit.errors.append(f"request failed: {r.url[:120]}"))
        page.on("dialog", visit.on_dialog)
        if viewport:
            page.set_viewport_size(viewport)
        page.goto(path.resolve().as_uri(), wait_until="load", timeout=30_000)
        # Images are data: URIs, decoded asynchronously; wait until every one settled.
        page.wait_for_function("Array.from(document.images).every(i => i.complete)", timeout=15_000)
        return visit

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.browser.close()
        self._pw_cm.__exit__(None, None, None)


class Visit:
    """A page and the console errors and dialogs it produced."""

    def __init__(self, page):
        self.page = page
        self.errors: list[str] = []
        self.dialogs: list[str] = []

    def on_console(self, msg) -> None:
        if msg.type in ("error", "assert"):
            self.errors.append(f"console {msg.type}: {msg.text[:200]}")

    def on_dialog(self, dialog) -> None:
        self.dialogs.append(f"{dialog.type}: {dialog.message}")
        with contextlib.suppress(Exception):
            dialog.dismiss()

    def all_dialogs(self) -> list[str]:
        return self.dialogs + list(self.page.evaluate("window.__dialogs || []"))

    def broken_images(self) -> list[str]:
        return self.page.evaluate(
            """Array.from(document.images)
                 .filter(i => !(i.complete && i.naturalWidth > 0 && i.naturalHeight > 0))
                 .map(i => (i.getAttribute('src') || '').slice(0, 60))"""
        )

    def n_images(self) -> int:
        return self.page.evaluate("document.images.length")

    def overflow_px(self) -> int:
        """Pixels by which the page is wider than the window (0: no horizontal page scroll)."""
        return self.page.evaluate(
            "Math.max(0, document.documentElement.scrollWidth - window.innerWidth)"
        )

    def overflowing_elements(self) -> list[str]:
        """Elements sticking out of the window on the right (for a readable failure)."""
        return self.page.evaluate(
            """Array.from(document.querySelectorAll('body *'))
                 .filter(e => e.getBoundingClientRect().right > window.innerWidth + 1
                              && !e.closest('.analysis-table-scroll, .output_subarea, pre'))
                 .slice(0, 5)
                 .map(e => e.tagName.toLowerCase() + '.' + e.className + ' right='
                           + Math.round(e.getBoundingClientRect().right))"""
        )

    def screenshot(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(path), full_page=True)

    def close(self) -> None:
        self.page.close()


def check_page(browser: Browser, path: Path) -> list[str]:
    """Return the problems a reader would meet on one page (empty: none)."""
    problems = []
    for size in (LAPTOP, TABLET):
        visit = browser.open(path, viewport=size)
        try:
            if size is LAPTOP:
                problems += visit.errors
                problems += [f"broken image {s}" for s in visit.broken_images()]
                problems += [f"dialog opened: {d}" for d in visit.all_dialogs()]
            if size is TABLET and path.name == "index.html":
                # The index's headline numbers must not hide behind a sideways scroll.
                hidden = visit.page.evaluate(
                    "(e => e ? e.scrollWidth - e.clientWidth : 0)"
                    "(document.querySelector('.index-table'))"
                )
                if hidden > 1:
                    problems.append(f"index table scrolls sideways by {hidden}px at tablet width")
            over = visit.overflow_px()
            if over:
                problems.append(
                    f"page {over}px wider than a {size['width']}px window: "
                    f"{visit.overflowing_elements()}"
                )
        finally:
            visit.close()
    return [f"{path.name}: {p}" for p in problems]


# --------------------------------------------------------------------------------------
# Fixtures
# --------------------------------------------------------------------------------------


@contextlib.contextmanager
def _exclusive(lock_file: Path):
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_file, "a") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


@pytest.fixture(scope="session")
def browser_reports(tiny_world, tmp_path_factory) -> Path:
    """Return the reports folder of one runner run on the tiny world with an evil segment name.

    Under pytest-xdist the run is shared: the first worker runs it, the others reuse it.
    """
    import pandas as pd

    from analysis import runner

    shared = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        shared = shared.parent
    base = shared / "browser_run"
    done = base / "result.json"
    with _exclusive(shared / "browser_run.lock"):
        if not done.exists():
            shutil.rmtree(base, ignore_errors=True)
            data_dir = base / "data"
            shutil.copytree(tiny_world.data_dir, data_dir)
            cust = pd.read_parquet(data_dir / "customers.parquet")
            cust["segment"] = cust["segment"].where(cust.index % 7 != 0, EVIL)
            cust.to_parquet(data_dir / "customers.parquet")
            params = base / "params.yaml"
            params.write_text(
                "data:\n  path: data\nreports:\n  output_dir: reports\n  jobs: 2\n"
                "  title: Customer retention reports (tiny test world)\n"
                "analysis:\n  min_group_size: 5\n"
            )
            result = runner.run(params, notebooks_dir=ROOT / "notebooks", kernel_name="python3")
            done.write_text(
                json.dumps(
                    {
                        "exit_code": result.exit_code,
                        "errors": {r.name: r.error for r in result.reports if r.error},
                    }
                )
            )
    return base / "reports"


def _run_outcome(reports: Path) -> dict:
    return json.loads((reports.parent / "result.json").read_text())


def _pages(reports: Path) -> list[Path]:
    pages = sorted(reports.glob("[0-9][0-9]_*.html"))
    return [reports / "index.html", *pages]


def _screenshot_dir(default: Path) -> Path:
    return Path(os.environ.get("BROWSER_SCREENSHOTS", default))


# --------------------------------------------------------------------------------------
# Tests
# --------------------------------------------------------------------------------------


def test_every_notebook_has_a_page(browser_reports):
    # The other tests browse the pages that were produced; this one names the missing ones.
    outcome = _run_outcome(browser_reports)
    assert outcome["errors"] == {}, f"reports that failed on the tiny world: {outcome['errors']}"
    names = sorted(p.stem for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    assert sorted(p.stem for p in _pages(browser_reports)[1:]) == names
    assert outcome["exit_code"] == 0


def test_pages_load_without_errors_and_images_render(browser, browser_reports):
    problems = []
    for path in _pages(browser_reports):
        problems += check_page(browser, path)
    assert problems == []


def test_every_report_shows_its_plots(browser, browser_reports):
    for path in _pages(browser_reports)[1:]:
        visit = browser.open(path)
        try:
            assert visit.n_images() > 0, f"{path.name} shows no plot"
            sizes = visit.page.evaluate(
                """Array.from(document.images).map(
                     i => [Math.round(i.getBoundingClientRect().width), i.naturalWidth])"""
            )
            # At laptop width a plot shows at its own size: upscaled it blurs, shrunk much
            # below it its labels get too small to read.
            bad = [
                (shown, natural)
                for shown, natural in sizes
                if not 0.7 * natural <= shown <= natural
            ]
            assert bad == [], f"{path.name}: plots shown at (width, natural width) {bad}"
        finally:
            visit.close()


def test_every_index_link_resolves(browser, browser_reports):
    index = browser_reports / "index.html"
    visit = browser.open(index)
    try:
        links = visit.page.evaluate("Array.from(document.links).map(a => a.href)")
    finally:
        visit.close()
    reports = [h for h in links if h.endswith(".html")]
    assert len(reports) == len(_pages(browser_reports)) - 1, links
    for href in links:
        url = urlparse(href)
        assert url.scheme == "file", f"index links outside the report folder: {href}"
        target = Path(unquote(url.path))
        assert target.is_file(), f"index link {href} points to a missing file"
        if target.suffix == ".html":
            page = browser.open(target)
            try:
                # and back: the report's "all reports" link returns to this index
                back = page.page.evaluate(
                    "Array.from(document.links).map(a => a.href).filter(h => h.endsWith('index.html'))"
                )
                assert back and all(Path(unquote(urlparse(h).path)) == index for h in back), back
                assert page.page.title(), f"{target.name} has no title"
            finally:
                page.close()


def test_text_from_data_shows_as_text_and_never_runs(browser, browser_reports):
    shown_on = []
    for path in _pages(browser_reports):
        visit = browser.open(path)
        try:
            assert visit.all_dialogs() == [], f"{path.name} ran script from data"
            assert visit.page.evaluate("document.querySelectorAll('img[src=\"x\"]').length") == 0
            # Reports carry no scripts at all: self-contained, nothing to execute.
            assert visit.page.evaluate("document.scripts.length") == 0, path.name
            hits = visit.page.get_by_text(EVIL)
            if hits.count() and hits.first.is_visible():
                shown_on.append(path.name)
        finally:
            visit.close()
    # The survival report tabulates segments (others may too): the name must be readable there.
    assert shown_on, "the evil segment name is shown as text on no page"
    if (browser_reports / "01_retention_survival.html").is_file():
        assert "01_retention_survival.html" in shown_on, f"segment name shown on {shown_on}"


def test_screenshots_at_laptop_width(browser, browser_reports, tmp_path_factory, capsys):
    out = _screenshot_dir(tmp_path_factory.mktemp("screenshots"))
    written = []
    for name in ("index.html", "00_kpi_dashboard.html"):
        visit = browser.open(browser_reports / name, viewport=LAPTOP)
        try:
            target = out / name.replace(".html", ".png")
            visit.screenshot(target)
            written.append(target)
        finally:
            visit.close()
    with capsys.disabled():
        print(f"\nscreenshots: {', '.join(str(p) for p in written)}")
    assert all(p.stat().st_size > 10_000 for p in written)


# --------------------------------------------------------------------------------------
# Command line: check and screenshot a real report folder
# --------------------------------------------------------------------------------------


def main(argv: list[str]) -> int:
    """Check every page of a reports folder in Chromium; write full-page screenshots."""
    import tempfile

    reports = Path(argv[0] if argv else ROOT / "reports").resolve()
    out = _screenshot_dir(reports / "screenshots")
    with tempfile.TemporaryDirectory() as profile:
        b = Browser(Path(profile))
        try:
            problems = []
            for path in _pages(reports):
                problems += check_page(b, path)
                visit = b.open(path, viewport=LAPTOP)
                visit.screenshot(out / f"{path.stem}.png")
                visit.close()
                print(f"{out / path.stem}.png")
        finally:
            b.close()
    for p in problems:
        print("PROBLEM", p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
