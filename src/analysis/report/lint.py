"""Report lint: what a stakeholder page must never show, checked on the published HTML.

Static checks (:func:`lint_page`), on the text a reader sees in ``<main>``:

* no ``nan``, ``NaN``, ``inf``, ``None`` or ``NaT``;
* no snake_case token, model-term syntax (``segment[business]``) or Python repr
  (``{'segment': ...}``, ``Timestamp(...)``) in headers, captions or sentences
  (the analysts' appendix may quote settings names in ``<code>``);
* no sentence whose sign contradicts its number ("raised retention by -14 points");
* a verdict before the first section, and exactly one folded analysts' appendix;
* the tiles show what the index shows (:func:`lint_against_index`).

Layout checks run in a real browser: :data:`WIDTH_CHECK_JS` returns every element
wider than the content column (tables with columns hidden behind a scroll included),
with the appendix opened. ``tests/test_report_lint.py`` drives Chromium through
Playwright on every report of the sample world, CDNOW and the generator's presets.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html.parser import HTMLParser

from analysis.report.labels import snake_case_tokens

_BAD_WORD = re.compile(r"(?<![A-Za-z])(nan|NaN|NaT|inf|-inf|Infinity)(?![A-Za-z])")
_NONE = re.compile(r"(?<![A-Za-z])None(?![A-Za-z])(?! (?:of|were|was|is|are|had|has|have)\b)")
_TERM = re.compile(r"\b[A-Za-z_][A-Za-z0-9_]*\[(?:T\.)?[^\]\s][^\]]*\]")
_REPR = re.compile(
    r"\{'[^']*'\s*:|\['[^']*',|\b(?:Timestamp|Timedelta|Period|array|np\.float64|np\.int64|"
    r"Decimal)\(|\bdtype[:=]|<[\w.]+ object at 0x"
)
_CONTRADICTION = re.compile(
    r"\b(?:raised|raises|raise|increased|increases|increase|adds|added|add|gains?|gained|lifts?|"
    r"lowered|lowers|lower|reduced|reduces|reduce|cuts?|saves?|saved|prevents?|prevented)\b"
    r"[^.;:]{0,60}?\bby (?:about |around |roughly )?[-\u2212]\s?\d"
    r"|\babout [-\u2212]\s?\d[\d.,]* (?:more|fewer|less)\b"
    r"|[-\u2212]\d[\d.,]* (?:more|fewer) (?:customers|churners|members)\b"
    r"|\b(?:lost|lose|loses|gained|gain|gains): [-\u2212]\d"
)
_FILE_LIKE = re.compile(r"^[\w.-]+\.(?:csv|parquet|html|ipynb|yaml|yml|json|md|py)$")


@dataclass
class _Node:
    text: str
    where: str  # th | caption | heading | text | alt
    in_appendix: bool
    in_code: bool


@dataclass
class PageFacts:
    """What the lint parsed out of one page."""

    nodes: list[_Node] = field(default_factory=list)
    verdicts: list[str] = field(default_factory=list)
    verdict_before_sections: bool = False
    appendix_count: int = 0
    appendix_open: bool = False
    tiles: list[tuple[str, str, str]] = field(default_factory=list)  # name, value, interval


class _Parser(HTMLParser):
    _SKIP = {"style", "script", "footer", "title", "head"}
    _HEADINGS = {"h1", "h2", "h3", "h4", "h5", "h6", "summary"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.facts = PageFacts()
        self.stack: list[tuple[str, dict]] = []
        self.in_main = False
        self.seen_h2 = False
        self._buf: list[str] = []
        self._verdict_depth: int | None = None
        self._tile: dict | None = None
        self._tile_field: str | None = None

    # helpers ----------------------------------------------------------------
    def _classes(self, attrs: dict) -> set[str]:
        return set((attrs.get("class") or "").split())

    def _inside(self, tag: str | None = None, cls: str | None = None) -> bool:
        for t, a in self.stack:
            if (tag is None or t == tag) and (cls is None or cls in self._classes(a)):
                return True
        return False

    def _where(self) -> str:
        for t, a in reversed(self.stack):
            if t == "th":
                return "th"
            if t == "caption" or "analysis-caption" in self._classes(a):
                return "caption"
            if t in self._HEADINGS:
                return "heading"
        return "text"

    # parser -----------------------------------------------------------------
    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "main":
            self.in_main = True
        if tag in ("br", "img", "hr", "meta", "link", "input", "circle", "polyline", "path"):
            if tag == "img" and self.in_main and a.get("alt"):
                self.facts.nodes.append(_Node(a["alt"], "alt", self._inside("details"), False))
            return
        cls = self._classes(a)
        if tag == "details" and "appendix" in cls:
            self.facts.appendix_count += 1
            self.facts.appendix_open = self.facts.appendix_open or "open" in a
        if tag == "h2" and self.in_main and not self._inside("details"):
            self.seen_h2 = True
        if "verdict" in cls and self.in_main:
            self._verdict_depth = len(self.stack)
            self._buf = []
            if not self.seen_h2:
                self.facts.verdict_before_sections = True
        if "tile" in cls:
            self._tile = {"name": "", "value": "", "ci": ""}
        for f, key in (("tile-name", "name"), ("tile-value", "value"), ("tile-ci", "ci")):
            if f in cls:
                self._tile_field = key
        self.stack.append((tag, a))

    def handle_endtag(self, tag):
        while self.stack:
            t, a = self.stack.pop()
            cls = self._classes(a)
            if self._verdict_depth is not None and len(self.stack) == self._verdict_depth:
                self.facts.verdicts.append(" ".join("".join(self._buf).split()))
                self._verdict_depth = None
            if {"tile-name", "tile-value", "tile-ci"} & cls:
                self._tile_field = None
            if "tile" in cls and self._tile is not None:
                self.facts.tiles.append(
                    (
                        self._tile["name"].strip(),
                        self._tile["value"].strip(),
                        self._tile["ci"].strip(),
                    )
                )
                self._tile = None
            if t == tag:
                break
        if tag == "main":
            self.in_main = False

    def handle_data(self, data):
        if not self.in_main or not data.strip():
            return
        if any(t in self._SKIP for t, _ in self.stack):
            return
        if self._verdict_depth is not None:
            self._buf.append(data)
        if self._tile is not None and self._tile_field:
            self._tile[self._tile_field] += data
        self.facts.nodes.append(
            _Node(
                data,
                self._where(),
                self._inside("details"),
                self._inside("code") or self._inside("pre"),
            )
        )


def parse_page(html_text: str) -> PageFacts:
    """Parse a report page into the facts the lint checks."""
    p = _Parser()
    p.feed(html_text)
    p.close()
    return p.facts


def _snake(text: str) -> list[str]:
    out = []
    for tok in snake_case_tokens(text):
        # a file name ("customers_to_protect.csv") or a date-like code is not a code leak
        m = re.search(re.escape(tok) + r"[\w.-]*", text)
        whole = m.group(0) if m else tok
        if _FILE_LIKE.match(whole) or tok.replace("_", "").isdigit():
            continue
        out.append(tok)
    return out


def lint_page(html_text: str, *, name: str = "page") -> list[str]:
    """Return the stakeholder-language problems of one report page (empty list: clean).

    Parameters
    ----------
    html_text : str
        The published HTML.
    name : str
        Report name used in the messages.

    Returns
    -------
    list of str
        One line per problem, quoting the offending text.
    """
    f = parse_page(html_text)
    problems: list[str] = []

    def say(kind: str, node: _Node, token: str) -> None:
        snippet = " ".join(node.text.split())[:140]
        where = f"{node.where}{' (appendix)' if node.in_appendix else ''}"
        problems.append(f"{name}: {kind} {token!r} in {where}: {snippet!r}")

    for node in f.nodes:
        text = node.text
        for m in _BAD_WORD.finditer(text):
            say("missing-value token", node, m.group(0))
        if _NONE.search(text):
            say("missing-value token", node, "None")
        if _REPR.search(text):
            say("Python repr", node, _REPR.search(text).group(0))
        if node.in_code:
            continue  # a name set in code type is one the reader must type (a column, a setting)
        for m in _TERM.finditer(text):
            say("model-term syntax", node, m.group(0))
        if node.in_appendix and node.where == "text":
            continue  # prose for analysts may name settings; its headers and captions may not
        for tok in _snake(text):
            say("snake_case token", node, tok)
    body_text = " ".join(n.text for n in f.nodes)
    for m in _CONTRADICTION.finditer(" ".join(body_text.split())):
        problems.append(f"{name}: sentence whose sign contradicts its number: {m.group(0)!r}")
    if not f.verdicts or not any(v.strip() for v in f.verdicts):
        problems.append(f"{name}: no verdict")
    elif not f.verdict_before_sections:
        problems.append(f"{name}: the verdict is not before the first section")
    if f.appendix_count != 1:
        problems.append(f"{name}: {f.appendix_count} analysts' appendices (expected exactly 1)")
    elif f.appendix_open:
        problems.append(f"{name}: the analysts' appendix is open (it must be folded)")
    return problems


def lint_against_index(
    html_text: str, headlines: list[dict], verdict: str | None, *, name: str = "page"
) -> list[str]:
    """Check that the page's tiles and verdict are what the index shows for the report.

    Parameters
    ----------
    html_text : str
        The published report page.
    headlines : list of dict
        The report's headline records on the index (``name``, ``text``).
    verdict : str or None
        The verdict the index shows.
    """
    f = parse_page(html_text)
    problems = []
    shown = {h.get("name"): h.get("text") for h in headlines}
    for tname, value, ci in f.tiles:
        text = f"{value} ({ci.removeprefix('95% CI ')})" if ci else value
        if tname not in shown:
            problems.append(f"{name}: tile {tname!r} is not on the index")
        elif shown[tname] != text:
            problems.append(f"{name}: tile {tname!r} shows {text!r}, the index {shown[tname]!r}")
    if verdict is not None and f.verdicts and " ".join(verdict.split()) != f.verdicts[0]:
        problems.append(f"{name}: the verdict differs from the index's")
    return problems


#: JavaScript for a Playwright page: open the appendix, then list every element of <main>
#: that is wider than the content column or hides content behind a horizontal scroll.
WIDTH_CHECK_JS = """
() => {
  for (const d of document.querySelectorAll('details')) d.open = true;
  const main = document.querySelector('main');
  if (!main) return ['no <main> element'];
  const box = main.getBoundingClientRect();
  const out = [];
  const describe = (el) => {
    const cls = (el.className && el.className.baseVal === undefined) ? '.' + String(el.className).split(' ').join('.') : '';
    const cap = el.closest('.analysis-table')?.querySelector('.analysis-caption')?.textContent || '';
    return el.tagName.toLowerCase() + cls + ' "' + (cap || el.textContent || '').trim().slice(0, 80) + '"';
  };
  for (const el of main.querySelectorAll('*')) {
    const r = el.getBoundingClientRect();
    if (r.width === 0 || r.height === 0) continue;
    if (r.right > box.right + 1.5 || r.left < box.left - 1.5) {
      out.push('wider than the content column by ' + Math.round(Math.max(r.right - box.right, box.left - r.left)) + ' px: ' + describe(el));
      continue;
    }
    const style = getComputedStyle(el);
    if ((style.overflowX === 'auto' || style.overflowX === 'scroll') && el.scrollWidth > el.clientWidth + 1) {
      out.push('hides ' + (el.scrollWidth - el.clientWidth) + ' px behind a horizontal scroll: ' + describe(el));
    }
  }
  for (const d of document.querySelectorAll('details.appendix')) d.open = false;
  return out;
}
"""
