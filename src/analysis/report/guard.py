"""Privacy guard of the report runner: customer ids in published HTML, secrets in params.

A report shows aggregates only. Before the runner publishes a page it searches
the page for the data's customer ids (:func:`scan_for_identifiers`) and refuses
to publish when one is found; error messages shown in the index are masked
with :func:`redact_identifiers`, and the index page as a whole with
:func:`redact_page` before it is written; passwords in data-source URLs are masked
before the params are printed in the provenance footer (:func:`_redact_secrets`).
:func:`scan_outputs` checks every page of an output folder after a run.
"""

from __future__ import annotations

import html
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

_URL_PASSWORD = re.compile(r"(://[^:/@\s]+:)[^@\s]+@")


def _redact_secrets(obj: Any) -> Any:
    """Mask passwords in URLs anywhere in a params dict."""
    if isinstance(obj, Mapping):
        return {k: _redact_secrets(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_redact_secrets(v) for v in obj]
    if isinstance(obj, str):
        return _URL_PASSWORD.sub(r"\1***@", obj)
    return obj


_WORD_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_"
_DATA_URI = re.compile(r"data:[A-Za-z0-9.+/-]+;base64,[A-Za-z0-9+/=\s]+")
_TAG = re.compile(r"<[^>]*>")


def identifiers_to_scan(ids: Iterable[Any], *, min_numeric_digits: int = 8) -> set[str]:
    """Return the ids worth searching for in a report.

    Purely numeric ids shorter than ``min_numeric_digits`` digits (CDNOW uses
    1..23570) are left out: they cannot be told apart from counts and amounts
    in a report, so searching for them would refuse every report. Ids with
    letters (the sample world's ``"C0000123"``) and long numbers are kept.
    """
    out = set()
    for i in ids:
        if i is None:
            continue
        s = str(i).strip()
        if not s:
            continue
        if s.isdigit() and len(s) < min_numeric_digits:
            continue
        if len(s) < 3:
            continue
        out.add(s)
    return out


def _id_tokens(text: str, alphabet: str) -> Iterator[str]:
    pattern = re.compile("[" + re.escape(alphabet) + "]+")
    for m in pattern.finditer(text):
        tok = m.group(0)
        yield tok
        stripped = tok.strip(".-_:/")
        if stripped != tok:
            yield stripped


def scan_for_identifiers(html_text: str, ids: Iterable[Any]) -> list[str]:
    """Return the customer ids that occur in an HTML page (empty list: none found).

    The page is searched as markup and as text (entities unescaped, tags
    removed), without embedded base64 images. An id counts as found when it
    appears as a whole token: ``C0000123`` is found in ``"top: C0000123."``
    but not in ``"C00001234"``. Short purely numeric ids are not searched
    (see :func:`identifiers_to_scan`).

    Parameters
    ----------
    html_text : str
        The rendered page.
    ids : iterable
        Customer ids of the data (``analysis.data.customer_ids(params)``).

    Returns
    -------
    list of str
        The ids found, sorted.
    """
    wanted = identifiers_to_scan(ids)
    if not wanted:
        return []
    page = _DATA_URI.sub(" ", html_text)
    text = html.unescape(_TAG.sub(" ", page))
    # Tokens are runs of letters, digits and the ids' own punctuation, so "xC0000123" is
    # one token (no match) while "(C0000123)." yields "C0000123".
    alphabet = _WORD_CHARS + "".join(sorted({ch for i in wanted for ch in i} - set(_WORD_CHARS)))
    found = set()
    for source in (page, html.unescape(page), text):
        for tok in _id_tokens(source, alphabet):
            if tok in wanted:
                found.add(tok)
    return sorted(found)


def redact_identifiers(text: str, ids: Iterable[Any]) -> str:
    """Return ``text`` with every customer id (as found by :func:`scan_for_identifiers`) masked."""
    for found in scan_for_identifiers(text, ids):
        text = re.sub(rf"(?<![A-Za-z0-9]){re.escape(found)}(?![A-Za-z0-9])", "[customer id]", text)
    return text


def redact_page(page: str, ids: Iterable[Any]) -> str:
    """Return an HTML page (the reports index) with every customer id masked.

    The index is written from run state (error lines, problems, headlines),
    not from a notebook, so it is masked rather than refused: an id found
    as a whole token, as written or HTML-escaped, becomes ``[customer id]``.
    """
    for found in scan_for_identifiers(page, ids):
        for form in dict.fromkeys((found, html.escape(found), html.escape(found, quote=False))):
            page = re.sub(
                rf"(?<![A-Za-z0-9]){re.escape(form)}(?![A-Za-z0-9])", "[customer id]", page
            )
    return page


def scan_outputs(
    out_dir: str | os.PathLike, ids: Iterable[Any], *, pattern: str = "*.html"
) -> dict[str, list[str]]:
    """Return the customer ids found in each stakeholder page of an output folder.

    Every file matching ``pattern`` directly in ``out_dir`` (the report pages
    and ``index.html``) is searched with :func:`scan_for_identifiers`.

    Parameters
    ----------
    out_dir : path
        The reports folder.
    ids : iterable
        Customer ids of the data.
    pattern : str, default "*.html"
        Which files to search.

    Returns
    -------
    dict
        File name -> ids found, for the files holding any (empty: all clean).
    """
    wanted = identifiers_to_scan(ids)
    out: dict[str, list[str]] = {}
    for f in sorted(Path(out_dir).glob(pattern)):
        if f.is_file():
            found = scan_for_identifiers(f.read_text(encoding="utf-8", errors="replace"), wanted)
            if found:
                out[f.name] = found
    return out
