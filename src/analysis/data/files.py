"""The files of a folder source: where each table is, encodings, headers, stray files.

A folder source holds one file, or one folder of files, per contract table. Before
the engine reads a CSV file this module checks what the engine would otherwise get
wrong silently or report without naming the file:

- the text encoding (``data.encoding``): a byte that is not valid in it is reported
  with the file, the line and a guess of the encoding the file was saved in; files in
  another encoding than UTF-8 are converted to a temporary UTF-8 copy for the engine;
- the header row: duplicated names (``amount,amount``: the engine would rename one and
  the analysis would silently use the other), names that differ only in case, and
  unnamed columns;
- the delimiter (``,``, ``;``, tab or ``|``), taken from the header row.

Parquet files are checked for duplicated column names from their schema (no data is
read). :func:`unmapped_files` lists data files that map to no table, with the table
each one most likely is.
"""

from __future__ import annotations

import atexit
import codecs
import csv
import difflib
import gzip
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from analysis.data.contract import TABLES
from analysis.errors import Problem

SUFFIXES = (".parquet", ".pq", ".csv", ".csv.gz", ".tsv", ".tsv.gz")
PARQUET_SUFFIXES = (".parquet", ".pq")
CSV_SUFFIXES = (".csv", ".csv.gz", ".tsv", ".tsv.gz")
_DELIMITERS = (",", ";", "\t", "|")
_CHUNK = 1 << 24  # 16 MiB per read when checking an encoding
_HEADER_CHARS = 1 << 16  # a header row longer than this is not a header
_NAME_CHARS = 256  # nor is a column name longer than this


@dataclass
class TableFiles:
    """The files of one table in a folder source.

    Attributes
    ----------
    entry : str
        Name of the file or sub-folder inside the data folder (``orders.csv``, ``orders``).
    paths : list of Path
        The data files, in name order.
    format : str
        ``"csv"`` or ``"parquet"``.
    """

    entry: str
    paths: list[Path]
    format: str

    @property
    def location(self) -> str:
        """Return the entry as the user sees it (``orders/*.csv`` for a folder of files)."""
        if len(self.paths) == 1 and self.paths[0].name == self.entry:
            return self.entry
        return f"{self.entry}/*{_suffix(self.paths[0])}"


@dataclass
class CsvLayout:
    """How the engine should read a CSV table: files (UTF-8), delimiter, column names."""

    paths: list[Path]
    delimiter: str
    columns: list[str]
    unnamed: list[str] = field(default_factory=list)


def _suffix(path: Path) -> str:
    name = path.name.lower()
    for suf in sorted(SUFFIXES, key=len, reverse=True):
        if name.endswith(suf):
            return suf
    return path.suffix.lower()


def _stem(path: Path) -> str:
    suf = _suffix(path)
    return path.name[: -len(suf)] if suf and path.name.lower().endswith(suf) else path.name


def find_table_files(folder: Path, stem: str, fmt: str) -> TableFiles | None:
    """Return the files of table ``stem`` inside ``folder`` (``fmt``: auto, parquet, csv), or None."""
    wanted = {"auto": SUFFIXES, "parquet": PARQUET_SUFFIXES, "csv": CSV_SUFFIXES}[fmt]
    for suf in wanted:
        p = folder / f"{stem}{suf}"
        if p.is_file():
            return TableFiles(p.name, [p], "parquet" if suf in PARQUET_SUFFIXES else "csv")
    sub = folder / stem
    if sub.is_dir():
        for suf in wanted:
            files = sorted(f for f in sub.glob(f"*{suf}") if f.is_file())
            if files:
                return TableFiles(stem, files, "parquet" if suf in PARQUET_SUFFIXES else "csv")
    return None


def data_entries(folder: Path) -> dict[str, Path]:
    """Return {stem: path} of every data file or sub-folder of data files in ``folder``."""
    out: dict[str, Path] = {}
    for p in sorted(folder.iterdir()):
        if p.name.startswith("."):
            continue
        if p.is_file() and _suffix(p) in SUFFIXES:
            out.setdefault(_stem(p), p)
        elif p.is_dir() and any(_suffix(f) in SUFFIXES for f in p.iterdir() if f.is_file()):
            out.setdefault(p.name, p)
    return out


def other_files(folder: Path) -> list[str]:
    """Return names of files in ``folder`` that are not data files (README, truth.json...)."""
    return [
        p.name
        for p in sorted(folder.iterdir())
        if p.is_file() and not p.name.startswith(".") and _suffix(p) not in SUFFIXES
    ]


# --------------------------------------------------------------------------------------
# Encodings
# --------------------------------------------------------------------------------------


def _open_bytes(path: Path):
    return gzip.open(path, "rb") if path.name.lower().endswith(".gz") else open(path, "rb")


def file_encoding(path: Path, encoding: str) -> str:
    """Return the encoding to read ``path`` with: its byte-order mark's, else ``encoding``."""
    return bom_encoding(path) or encoding


def _is_utf8(encoding: str) -> bool:
    return codecs.lookup(encoding).name in ("utf-8", "utf-8-sig")


def bom_encoding(path: Path) -> str | None:
    """Return the encoding a byte-order mark at the start of ``path`` names, or None."""
    with _open_bytes(path) as fh:
        head = fh.read(4)
    for bom, enc in (
        (codecs.BOM_UTF32_LE, "utf-32"),
        (codecs.BOM_UTF32_BE, "utf-32"),
        (codecs.BOM_UTF8, "utf-8-sig"),
        (codecs.BOM_UTF16_LE, "utf-16"),
        (codecs.BOM_UTF16_BE, "utf-16"),
    ):
        if head.startswith(bom):
            return enc
    return None


def _guess_encoding(raw_line: bytes) -> tuple[str, str]:
    """Return (likely encoding, the line decoded with it) for bytes that are not UTF-8."""
    if raw_line.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16", raw_line.decode("utf-16", errors="replace")
    if raw_line.count(b"\x00") * 3 > len(raw_line):  # every other byte NUL: UTF-16 text
        enc = "utf-16-le" if raw_line[1:2] == b"\x00" else "utf-16-be"
        return enc, raw_line[: len(raw_line) // 2 * 2].decode(enc, errors="replace")
    try:
        return "utf-8", raw_line.decode("utf-8")
    except UnicodeDecodeError:
        pass
    for enc in ("cp1252", "latin-1"):
        try:
            return enc, raw_line.decode(enc)
        except UnicodeDecodeError:
            continue
    return "latin-1", raw_line.decode("latin-1", errors="replace")  # pragma: no cover


def _line_at(path: Path, offset: int) -> tuple[int, bytes]:
    """Return (1-based line number, raw bytes of that line) of byte ``offset`` in ``path``."""
    line_no, line_start, pos = 1, 0, 0
    with _open_bytes(path) as fh:
        while pos <= offset:
            chunk = fh.read(_CHUNK)
            if not chunk:
                break
            upto = max(min(len(chunk), offset - pos), 0)  # bytes before the offset
            line_no += chunk.count(b"\n", 0, upto)
            nl = chunk.rfind(b"\n", 0, upto)
            if nl >= 0:
                line_start = pos + nl + 1
            pos += len(chunk)
        fh.seek(line_start)
        raw = fh.readline(4096)
    return line_no, raw.rstrip(b"\r\n")


def encoding_problem(table: str, path: Path, encoding: str, folder: Path) -> Problem | None:
    """Return a problem if ``path`` is not valid text in ``encoding`` (None when it is).

    The whole file is decoded in chunks; the first offending byte is located by line.
    """
    key = (str(path), *_stat(path), encoding)
    if key in _ENCODING_CACHE:
        return _ENCODING_CACHE[key]
    decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
    wide = codecs.lookup(encoding).name.startswith(("utf-16", "utf-32"))
    pos = 0
    bad_at = None
    try:
        with _open_bytes(path) as fh:
            while True:
                chunk = fh.read(_CHUNK)
                if not chunk:
                    decoder.decode(b"", final=True)
                    break
                nul = -1 if wide else chunk.find(b"\x00")
                if nul >= 0:  # NUL bytes: not text in this encoding (UTF-16 read as 8-bit?)
                    bad_at = (pos + nul, b"\x00")
                    break
                try:
                    decoder.decode(chunk, final=False)
                except UnicodeDecodeError as exc:
                    bad_at = (pos + exc.start, chunk[exc.start : exc.end])
                    break
                except UnicodeError:  # e.g. UTF-16 text without a byte-order mark
                    bad_at = (pos, chunk[:2])
                    break
                pos += len(chunk)
    except UnicodeDecodeError as exc:  # truncated sequence at the very end
        bad_at = (max(pos - 1, 0), exc.object[exc.start : exc.end] if exc.object else b"")
    except UnicodeError:
        bad_at = (0, b"")
    except (OSError, EOFError) as exc:
        out = Problem(
            table,
            None,
            "unreadable",
            f"{_rel(path, folder)} could not be read: {exc}",
            fix="check that the file is complete (a .gz file must be a whole gzip archive)",
        )
        _ENCODING_CACHE[key] = out
        return out
    if bad_at is None:
        _ENCODING_CACHE[key] = None
        return None
    offset, bad = bad_at
    line_no, raw_line = _line_at(path, offset)
    guess, shown = _guess_encoding(raw_line)
    if guess == codecs.lookup(encoding).name:  # pragma: no cover - guess equals the setting
        guess = "latin-1"
    hex_bytes = " ".join(f"0x{b:02X}" for b in bad[:4])
    out = Problem(
        table,
        None,
        "encoding",
        f"{_rel(path, folder)} is not valid {encoding} text (data.encoding): line {line_no:,} "
        f"has the byte(s) {hex_bytes}; the file looks {guess}-encoded",
        examples=(f"line {line_no}: {shown[:120]}",),
        fix=f"set data.encoding: {guess} in the params file, or save the file as UTF-8",
    )
    _ENCODING_CACHE[key] = out
    return out


_ENCODING_CACHE: dict[tuple, Problem | None] = {}
_UTF8_COPIES: dict[tuple, Path] = {}
_TMP_DIR: list[Path] = []


def _stat(path: Path) -> tuple[int, int]:
    st = path.stat()
    return st.st_size, st.st_mtime_ns


def _rel(path: Path, folder: Path) -> str:
    try:
        return str(path.relative_to(folder))
    except ValueError:
        return path.name


def _tmp_dir() -> Path:
    if not _TMP_DIR:
        d = Path(tempfile.mkdtemp(prefix="analysis-utf8-"))
        atexit.register(shutil.rmtree, d, True)
        _TMP_DIR.append(d)
    return _TMP_DIR[0]


def utf8_copy(path: Path, encoding: str) -> Path:
    """Return a UTF-8 copy of ``path`` (read in ``encoding``), made once per process."""
    key = (str(path), *_stat(path), encoding)
    if key not in _UTF8_COPIES:
        suffix = ".tsv" if ".tsv" in path.name.lower() else ".csv"
        out = _tmp_dir() / f"{len(_UTF8_COPIES):04d}_{_stem(path)}{suffix}"
        with _open_bytes(path) as src, open(out, "w", encoding="utf-8", newline="") as dst:
            reader = codecs.getreader(encoding)(src)
            while True:
                text = reader.read(_CHUNK)
                if not text:
                    break
                dst.write(text)
        _UTF8_COPIES[key] = out
    return _UTF8_COPIES[key]


# --------------------------------------------------------------------------------------
# Headers
# --------------------------------------------------------------------------------------


def _first_line(path: Path, encoding: str) -> str | None:
    enc = "utf-8-sig" if _is_utf8(encoding) else encoding
    with _open_bytes(path) as fh:
        text = codecs.getreader(enc)(fh, errors="replace").read(_HEADER_CHARS)
    if not text:
        return None
    return text.lstrip("\ufeff").split("\n", 1)[0].rstrip("\r")


def _delimiter(path: Path, header: str) -> str:
    if ".tsv" in path.name.lower():
        return "\t"
    counts = {d: header.count(d) for d in _DELIMITERS}
    best = max(_DELIMITERS, key=lambda d: (counts[d], d == ","))
    return best if counts[best] else ","


def _header(path: Path, encoding: str) -> tuple[list[str], str] | None:
    line = _first_line(path, encoding)
    if line is None or not line.strip():
        return None
    delim = _delimiter(path, line)
    try:
        names = next(csv.reader([line], delimiter=delim, quotechar='"'))
    except csv.Error:
        names = [line]
    return [n.strip() for n in names], delim


def _garbled(names: list[str]) -> bool:
    """Return True if header names cannot be a header (text read in the wrong encoding)."""
    return any(len(n) > _NAME_CHARS or any(not ch.isprintable() for ch in n) for n in names)


def csv_layout(
    table: str, files: TableFiles, encoding: str, folder: Path
) -> tuple[CsvLayout | None, list[Problem]]:
    """Check a CSV table's files and return how to read them, with every problem found."""
    problems: list[Problem] = []
    paths: list[Path] = []
    for path in files.paths:
        enc = file_encoding(path, encoding)
        p = encoding_problem(table, path, enc, folder)
        if p is not None:
            problems.append(p)
            continue
        paths.append(path if _is_utf8(enc) else utf8_copy(path, enc))
    if problems:
        return None, problems
    header = _header(paths[0], "utf-8")  # the file itself, or its UTF-8 copy
    if header is None:
        return None, [
            Problem(
                table,
                None,
                "empty_file",
                f"{_rel(files.paths[0], folder)} is empty: it has no header row",
                fix="export the table again with a header row naming its columns",
            )
        ]
    names, delim = header
    if _garbled(names):
        return None, [
            Problem(
                table,
                None,
                "encoding",
                f"the header row of {_rel(files.paths[0], folder)} is not readable text in "
                f"{file_encoding(files.paths[0], encoding)} (data.encoding)",
                examples=(names[0][:60],),
                fix="set data.encoding to the encoding the file was saved in (often utf-8, "
                "cp1252 or utf-16), or save the file as UTF-8",
            )
        ]
    for path, readable in zip(files.paths[1:], paths[1:], strict=True):
        other = _header(readable, "utf-8")
        if other is None or other[0] != names:
            problems.append(
                Problem(
                    table,
                    None,
                    "header",
                    f"{_rel(path, folder)} has other columns than {_rel(files.paths[0], folder)}",
                    examples=tuple((other[0] if other else ["(empty file)"])[:5]),
                    fix="give every file of a table the same header row",
                )
            )
    problems += _header_problems(table, _rel(files.paths[0], folder), names)
    if any(p.severity == "error" for p in problems):
        return None, problems
    columns, unnamed = [], []
    for i, n in enumerate(names, start=1):
        if not n:
            n = f"unnamed_{i}"
            unnamed.append(n)
        columns.append(n)
    return CsvLayout(paths, delim, columns, unnamed), problems


def _header_problems(table: str, where: str, names: list[str]) -> list[Problem]:
    out = []
    seen: dict[str, str] = {}
    dups: list[str] = []
    for n in names:
        if not n:
            continue
        k = n.lower()
        if k in seen:
            dups.append(n if seen[k] == n else f"{seen[k]}/{n}")
        seen.setdefault(k, n)
    if dups:
        out.append(
            Problem(
                table,
                dups[0].split("/")[0],
                "duplicate_column",
                f"{where} has the column name(s) {', '.join(sorted(set(dups)))} more than once "
                "(names are compared ignoring case); only one could be read",
                examples=tuple(names[:12]),
                fix="rename or remove the duplicated column in the file's header row",
            )
        )
    blank = [i for i, n in enumerate(names, start=1) if not n]
    if blank:
        out.append(
            Problem(
                table,
                None,
                "unnamed_column",
                f"{where} has {len(blank)} column(s) without a name in the header "
                f"(position {', '.join(map(str, blank[:5]))}); they are ignored",
                fix="name the columns in the header row, or remove them (often a trailing "
                "delimiter in an Excel export)",
                severity="warning",
            )
        )
    return out


def parquet_problems(table: str, files: TableFiles, folder: Path) -> list[Problem]:
    """Return problems of duplicated column names in Parquet files (schema only, no data read)."""
    import pyarrow.parquet as pq

    out = []
    for path in files.paths:
        try:
            names = pq.read_schema(path).names
        except Exception as exc:  # noqa: BLE001 - any reader error: the file is unusable
            out.append(
                Problem(
                    table,
                    None,
                    "unreadable",
                    f"{_rel(path, folder)} is not a readable Parquet file: "
                    f"{str(exc).splitlines()[0][:200]}",
                    fix="export the table again (a whole Parquet file), or point data.tables "
                    "at the right file",
                )
            )
            continue
        out += _header_problems(table, _rel(path, folder), names)
        if out:
            break
    return out


def columns_of(path: Path, encoding: str) -> list[str]:
    """Return the column names of a data file or folder of files (empty if unreadable)."""
    try:
        if path.is_dir():
            files = sorted(f for f in path.iterdir() if f.is_file() and _suffix(f) in SUFFIXES)
            if not files:
                return []
            path = files[0]
        if _suffix(path) in PARQUET_SUFFIXES:
            import pyarrow.parquet as pq

            return list(pq.read_schema(path).names)
        h = _header(path, file_encoding(path, encoding))
        return h[0] if h else []
    except Exception:  # noqa: BLE001 - only used for suggestions
        return []


# --------------------------------------------------------------------------------------
# Files that map to no table
# --------------------------------------------------------------------------------------


def likely_table(columns: list[str], candidates: list[str], mapping: dict) -> str | None:
    """Return the contract table (among ``candidates``) whose columns ``columns`` fit best.

    A table fits when the file has all of its required columns (under the contract
    name or the name mapped in ``data.columns``); among those, the one sharing most
    columns wins. None when no candidate fits.
    """
    have = {c.lower() for c in columns}
    best, best_score = None, -1
    for name in candidates:
        spec = TABLES[name]
        own = mapping.get(name, {}) if isinstance(mapping.get(name), dict) else {}
        names = {c: own.get(c, c).lower() for c in spec.column_names}
        if not all(names[c] in have for c in spec.required_columns):
            continue
        score = sum(1 for c in spec.column_names if names[c] in have)
        if score > best_score:
            best, best_score = name, score
    return best


def unmapped_problems(
    folder: Path,
    used: set[str],
    present_tables: set[str],
    encoding: str,
    mapping: dict,
) -> list[Problem]:
    """Return one warning per data file in ``folder`` that no table reads.

    The warning suggests the ``data.tables`` entry when the file's columns fit a
    table the source lacks (e.g. ``members.csv`` with customer_id and enrolled_date
    when there is no loyalty table).
    """
    out = []
    absent = [t for t in TABLES if t not in present_tables]
    for stem, path in data_entries(folder).items():
        if path.name in used or stem in used:
            continue
        cols = columns_of(path, encoding)
        table = likely_table(cols, absent, mapping)
        shown = path.name + ("/" if path.is_dir() else "")
        if table:
            fix = (
                f"if {shown} is the {table} table, set data.tables: {{{table}: {stem}}} in the "
                "params file; otherwise move it out of the data folder"
            )
        else:
            fix = (
                "move it out of the data folder, or map it to a table with data.tables "
                f"(tables: {', '.join(TABLES)})"
            )
        out.append(
            Problem(
                table or "data",
                None,
                "unmapped_file",
                f"{shown} in the data folder is not read: it maps to no table"
                + (
                    f" (columns: {', '.join(cols[:8])}{', ...' if len(cols) > 8 else ''})"
                    if cols
                    else ""
                ),
                fix=fix,
                severity="warning",
            )
        )
    return out


def missing_mapped_file(table: str, stem: str, folder: Path, fmt: str) -> Problem:
    """Return the error for a ``data.tables`` entry naming a file the folder lacks."""
    entries = data_entries(folder)
    close = difflib.get_close_matches(stem, list(entries), n=1, cutoff=0.7)
    wanted = {"auto": "csv/parquet", "parquet": "parquet", "csv": "csv"}[fmt]
    listing = ", ".join(p.name for p in entries.values()) or "none"
    return Problem(
        table,
        None,
        "missing_file",
        f"data.tables.{table} names '{stem}', but {folder} has no {stem}.{wanted.replace('/', ' or .')} "
        f"file or {stem}/ folder (data files there: {listing})",
        fix=(f"did you mean '{close[0]}'? " if close else "")
        + f"set data.tables.{table} to the name of the file without its suffix",
    )
