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
from collections.abc import Set as AbstractSet
from pathlib import Path
from typing import Any

import numpy as np

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


class IdentifierSet(AbstractSet):
    """The customer ids worth searching for (see :func:`identifiers_to_scan`), held compactly.

    A Python set of ten million ids takes about 1.2 GB for the whole run; this keeps
    the ids as one Arrow array (about 13 bytes per id) ordered by a 64-bit hash of
    each, so that a batch of page tokens is looked up with one binary search and
    every hit is confirmed against the id itself (no false matches). It is a read-only
    :class:`collections.abc.Set`: ``in``, ``len``, iteration and comparison with sets work.
    """

    def __init__(self, ids, *, min_numeric_digits: int = 8):
        import pyarrow as pa
        import pyarrow.compute as pc

        if isinstance(ids, pa.ChunkedArray):
            ids = ids.combine_chunks()
        if not isinstance(ids, pa.Array):
            ids = pa.array([None if i is None else str(i) for i in ids], type=pa.string())
        s = pc.utf8_trim_whitespace(pc.cast(ids, pa.string()))
        n = pc.utf8_length(s)
        short_number = pc.and_(pc.utf8_is_digit(s), pc.less(n, min_numeric_digits))
        keep = pc.and_(pc.greater_equal(n, 3), pc.invert(short_number))
        s = pc.unique(pc.filter(s, pc.fill_null(keep, False)))
        hashes = _hash_strings(s)
        order = np.argsort(hashes, kind="stable")
        self._hashes = hashes[order]
        self._ids = s.take(pa.array(order))
        self._alphabet = None

    def __len__(self) -> int:
        return len(self._ids)

    def __iter__(self) -> Iterator[str]:
        for start in range(0, len(self._ids), 65536):
            yield from self._ids.slice(start, 65536).to_pylist()

    def __contains__(self, value) -> bool:
        return isinstance(value, str) and bool(self.contains_many([value])[0])

    def contains_many(self, values) -> np.ndarray:
        """Return, for each string of ``values``, whether it is one of the ids."""
        values = np.asarray(list(values), dtype=object)
        out = np.zeros(len(values), bool)
        if not len(values) or not len(self._ids):
            return out
        h = _hash_strings(values)
        lo = np.searchsorted(self._hashes, h, side="left")
        hi = np.searchsorted(self._hashes, h, side="right")
        for k in np.flatnonzero(hi > lo):  # a hash hit: confirm against the id itself
            out[k] = any(self._ids[j].as_py() == values[k] for j in range(lo[k], hi[k]))
        return out

    @property
    def alphabet(self) -> str:
        """The characters of the ids other than letters, digits and underscore."""
        if self._alphabet is None:
            import pyarrow.compute as pc

            rest = pc.unique(pc.replace_substring_regex(self._ids, r"[A-Za-z0-9_]", ""))
            chars = {ch for r in rest.to_pylist() if r for ch in r}
            self._alphabet = "".join(sorted(chars - set(_WORD_CHARS)))
        return self._alphabet


def _hash_strings(values) -> np.ndarray:
    """64-bit hashes of strings (an Arrow array or a sequence), the same for equal strings."""
    import pandas as pd

    if not isinstance(values, np.ndarray):
        values = values.to_numpy(zero_copy_only=False)
    return pd.util.hash_array(np.asarray(values, dtype=object), categorize=False)


def identifiers_to_scan(ids: Iterable[Any], *, min_numeric_digits: int = 8) -> IdentifierSet:
    """Return the ids worth searching for in a report, as an :class:`IdentifierSet`.

    Purely numeric ids shorter than ``min_numeric_digits`` digits (CDNOW uses
    1..23570) are left out: they cannot be told apart from counts and amounts
    in a report, so searching for them would refuse every report. Ids with
    letters (the sample world's ``"C0000123"``) and long numbers are kept, as are
    ids of 3 characters or more only. ``ids`` may be any iterable or an Arrow array
    (the compact way for millions of customers: no Python string per id).
    """
    if isinstance(ids, IdentifierSet):
        return ids
    return IdentifierSet(ids, min_numeric_digits=min_numeric_digits)


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
    alphabet = _WORD_CHARS + wanted.alphabet
    tokens = {
        tok for source in (page, html.unescape(page), text) for tok in _id_tokens(source, alphabet)
    }
    tokens = sorted(tokens)
    return [t for t, hit in zip(tokens, wanted.contains_many(tokens), strict=True) if hit]


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
