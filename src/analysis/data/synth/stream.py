"""The streaming generator: the sample world written block by block, in bounded memory.

:func:`stream_world` simulates the sample world with the same functions as
:func:`~analysis.data.synth.generate` (population, monthly step, landmark and
sequential-trial branches, assembly into tables) but never holds the whole world:

- **Blocks** of ``block_customers`` consecutive customers (default 50,000) are the unit of
  randomness. Every random stream of a block is keyed by the block's index (its population,
  its monthly draws, its sampling of control person-trials, its output draws), so a block's
  customers and events do not depend on the other blocks.
- **Chunks** of whole blocks (``chunk_customers``, default 200,000 customers) are
  simulated together (vectorised), then cut back into their blocks
  (:func:`~analysis.data.synth.simulate._split_chunk`), assembled into tables block by block
  and appended to the files. Memory is bounded by the chunk size, not by the world's.
- **World-level quantities** are drawn or computed once up front: the calendar and
  seasonality (:class:`~analysis.data.synth.simulate._Consts`), the value-tier cut-offs
  (a fixed reference population), the sampling fraction of control person-trials
  (20,000 / customers), and the number of pre-window customers of each block (the planted
  share of the customers up to the block's end minus that up to its start).
- **Files** are written with fixed row groups (1,000,000 rows; rows are buffered across
  blocks), so the bytes do not depend on the chunk size.
- **truth.json** comes from per-block counts and sums added in block order
  (:mod:`.stream_truth`), never from a whole world in memory.

Two consequences. A streamed world is its own draw: for the same seed it differs from the
in-memory world (whose population is drawn in one piece), and its block size is part of its
definition (recorded in ``truth["params"]["generator"]``). Customer ids follow signup
order within each block, not across the whole world. ``sequential_effects`` (the per
person-trial effects of the in-memory world) are not produced.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from analysis.data.synth.assemble import _assemble, _check_args, _ids
from analysis.data.synth.output import (
    CSV_OPTIONS,
    PARQUET_OPTIONS,
    ROW_GROUP_ROWS,
    arrow_table,
)
from analysis.data.synth.population import _draw_population, _static_lp
from analysis.data.synth.simulate import (
    SEQ_FULL_TRUTH_CUSTOMERS,
    _Consts,
    _simulate_chunk,
    _split_chunk,
)
from analysis.data.synth.stream_truth import add_stats, block_stats, stream_truth
from analysis.data.synth.world import PARAMS, _month_starts, _rng
from analysis.errors import ParamsError

STREAM_THRESHOLD = 2_000_000  # above this many customers `synth` streams by default
BLOCK_CUSTOMERS = 50_000  # customers per block of randomness (part of the world's definition)
CHUNK_CUSTOMERS = 200_000  # customers simulated together (memory, not output)
TABLES = ("customers", "transactions", "loyalty", "experience")
_STREAM_KEY = 20  # first key of every streaming random stream (unused by the in-memory world)
_SIM_KEY = 1_000_000  # simulation stream keys of blocks: _SIM_KEY + block index


class _TableWriter:
    """Append the blocks' tables to one file per table (Parquet row groups or CSV)."""

    def __init__(self, out: Path, fmt: str, row_group_rows: int):
        self.out, self.fmt, self.rg = out, fmt, int(row_group_rows)
        self.tmp = {t: out / f".{t}.{fmt}.tmp" for t in TABLES}
        self.rows = dict.fromkeys(TABLES, 0)
        self.handles: dict = {}
        self.schemas: dict = {}
        self.buf: dict = {t: [] for t in TABLES}
        self.nbuf = dict.fromkeys(TABLES, 0)

    def write(self, tables: dict) -> None:
        for name in TABLES:
            df = tables[name]
            self.rows[name] += len(df)
            if self.fmt == "csv":
                if name not in self.handles:
                    self.handles[name] = open(self.tmp[name], "w", encoding="utf-8", newline="")  # noqa: SIM115
                    df.to_csv(self.handles[name], header=True, **CSV_OPTIONS)
                elif len(df):
                    df.to_csv(self.handles[name], header=False, **CSV_OPTIONS)
                continue
            tab = arrow_table(name, df)
            if name not in self.handles:
                import pyarrow.parquet as pq

                self.schemas[name] = tab.schema
                self.handles[name] = pq.ParquetWriter(self.tmp[name], tab.schema, **PARQUET_OPTIONS)
            self.buf[name].append(tab.cast(self.schemas[name]))
            self.nbuf[name] += tab.num_rows
            if self.nbuf[name] >= self.rg:
                self._flush(name, final=False)

    def _flush(self, name: str, *, final: bool) -> None:
        """Write full row groups (and at the end the rest): contiguous, fixed-size groups."""
        import pyarrow as pa

        if not self.buf[name]:
            return
        tab = pa.concat_tables(self.buf[name]).combine_chunks()
        start = 0
        while tab.num_rows - start >= self.rg or (final and tab.num_rows > start):
            k = min(self.rg, tab.num_rows - start)
            # one contiguous chunk per column: page boundaries depend on the rows only
            self.handles[name].write_table(tab.slice(start, k), row_group_size=self.rg)
            start += k
        rest = tab.slice(start)
        self.buf[name] = [rest] if rest.num_rows else []
        self.nbuf[name] = rest.num_rows

    def close(self) -> dict[str, Path]:
        paths = {}
        for name in TABLES:
            if self.fmt == "parquet" and name in self.handles:
                self._flush(name, final=True)
            if name in self.handles:
                self.handles[name].close()
            path = self.out / f"{name}.{self.fmt}"
            os.replace(self.tmp[name], path)
            paths[name] = path
        return paths

    def abort(self) -> None:
        for name, h in self.handles.items():
            try:
                h.close()
            finally:
                self.tmp[name].unlink(missing_ok=True)


def _block_population(seed: int, b: int, lo: int, hi: int, start, months: int) -> dict:
    """Draw the customers of block ``b`` (positions ``lo .. hi - 1``), sorted by signup."""
    share = PARAMS["acquisition"]["pre_window_share"]
    n_pre = int(round(share * hi)) - int(round(share * lo))
    return _draw_population(seed, hi - lo, start, months, key=(_STREAM_KEY, b + 1, 0), n_pre=n_pre)


class _Setup:
    """World-level quantities of a streamed world, computed once before the first block."""

    def __init__(self, seed: int, n: int, start, months: int, block_customers: int):
        self.seed, self.n, self.start, self.months = seed, n, start, months
        self.landmarks = (6, 12)
        K = PARAMS["acquisition"]["pre_window_months"]
        self.C = _Consts(start, months)
        self.first, self.dim = _month_starts(start, -K - 1, months + 1)
        self.off = K + 1  # month m -> index m + off
        self.q = min(1.0, SEQ_FULL_TRUTH_CUSTOMERS / n)
        B = block_customers
        self.bounds = [(b, b * B, min((b + 1) * B, n)) for b in range((n + B - 1) // B)]


def _blocks(setup: _Setup, per_chunk: int):
    """Yield each block's population, simulation result and tables, in block order.

    Blocks are simulated ``per_chunk`` at a time; what a block yields does not depend on
    ``per_chunk``.
    """
    seed, st0, months, n = setup.seed, setup.start, setup.months, setup.n
    for c0 in range(0, len(setup.bounds), per_chunk):
        group = setup.bounds[c0 : c0 + per_chunk]
        pops = [_block_population(seed, b, lo, hi, st0, months) for b, lo, hi in group]
        pop = {k: np.concatenate([p[k] for p in pops]) for k in pops[0]}
        del pops
        pop["lp"] = _static_lp(pop)
        res = _simulate_chunk(
            seed,
            0,
            pop,
            setup.C,
            months,
            setup.landmarks,
            setup.q,
            segments=([_SIM_KEY + b for b, _, _ in group], [hi - lo for _, lo, hi in group]),
        )
        parts = _split_chunk(res)
        del res
        base = group[0][1]
        for (b, lo, hi), res_b in zip(group, parts, strict=True):
            pop_b = {k: v[lo - base : hi - base] for k, v in pop.items()}
            tables, tx_counts, churn_m, enrolled = _assemble(
                pop_b,
                [res_b],
                ids=_ids(hi - lo, lo, total=n),
                rng_out=_rng(seed, _STREAM_KEY, b + 1, 4),
                first=setup.first,
                dim=setup.dim,
                off=setup.off,
            )
            yield {
                "block": b,
                "lo": lo,
                "pop": pop_b,
                "res": res_b,
                "tables": tables,
                "tx_counts": tx_counts,
                "churn_m": churn_m,
                "enrolled": enrolled,
            }
        del parts, pop


def stream_world(
    out_dir,
    n_customers: int,
    seed: int = 42,
    start: str = "2023-01-01",
    months: int = 36,
    format: str = "parquet",
    *,
    chunk_customers: int | None = None,
    block_customers: int = BLOCK_CUSTOMERS,
    row_group_rows: int = ROW_GROUP_ROWS,
    params_yaml: str | None = None,
) -> dict:
    """Generate the sample world block by block and write it to ``out_dir``.

    Parameters
    ----------
    out_dir : str or path-like
        Folder, created if missing; ``customers``, ``transactions``, ``loyalty`` and
        ``experience`` (one file each), ``truth.json`` and, if given, ``params.yaml``.
    n_customers : int
        Customers in the world (at least 10).
    seed : int
        Seed of all randomness.
    start : str
        First day of the window (YYYY-MM-01).
    months : int
        Window length in calendar months (at least 12).
    format : {"parquet", "csv"}
        Table file format (as :func:`~analysis.data.synth.write`).
    chunk_customers : int, optional
        Customers simulated together, rounded down to whole blocks (at least one block);
        sets the memory, never the output. Default 200,000.
    block_customers : int
        Customers per block of randomness; part of the world's definition (default
        50,000; smaller blocks only for tests).
    row_group_rows : int
        Rows per Parquet row group (default 1,000,000, as :func:`~analysis.data.synth.write`).
    params_yaml : str, optional
        Text of a params file to write beside the tables.

    Returns
    -------
    dict
        ``paths`` (file per table, ``truth``, ``params``), ``rows`` per table, ``truth``.
    """
    n, st0, months = _check_args(n_customers, start, months, 12)
    if format not in ("parquet", "csv"):
        raise ParamsError(f"synth: format must be 'parquet' or 'csv', got {format!r}.")
    B = int(block_customers)
    chunk = CHUNK_CUSTOMERS if chunk_customers is None else int(chunk_customers)
    if B < 1 or chunk < 1 or int(row_group_rows) < 1:
        raise ParamsError(
            "synth: --chunk-customers, block size and row-group rows must be positive, got "
            f"{chunk}, {B}, {row_group_rows}."
        )
    per_chunk = max(1, chunk // B)
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ParamsError(
            f"synth: output path {str(out)!r} exists and is not a folder; choose another --out."
        )
    out.mkdir(parents=True, exist_ok=True)

    setup = _Setup(seed, n, st0, months, B)
    writer = _TableWriter(out, format, row_group_rows)
    stats = None
    try:
        for blk in _blocks(setup, per_chunk):
            stats = add_stats(
                stats,
                block_stats(
                    blk["pop"],
                    blk["res"],
                    blk["tables"],
                    blk["tx_counts"],
                    blk["churn_m"],
                    blk["enrolled"],
                    months,
                    setup.landmarks,
                    setup.q,
                ),
            )
            writer.write(blk["tables"])
            del blk
        paths = writer.close()
    except BaseException:
        writer.abort()
        raise

    truth = stream_truth(
        stats,
        seed=seed,
        start=st0,
        months=months,
        C=setup.C,
        landmarks=setup.landmarks,
        seq_sample=setup.q,
    )
    truth["params"]["generator"] = {
        "mode": "streaming",
        "block_customers": B,
        "definition": (
            "streamed block by block (analysis.data.synth.stream): every random stream is keyed "
            "by a block of block_customers consecutive customers, so the world depends on the "
            "seed and the block size but not on the chunk size; it is a different draw from "
            "the in-memory world of the same seed. Ids follow signup order within each block."
        ),
    }
    tpath = out / "truth.json"
    tpath.write_text(json.dumps(truth, sort_keys=True, indent=2, allow_nan=False) + "\n")
    paths["truth"] = tpath
    if params_yaml:
        ppath = out / "params.yaml"
        ppath.write_text(params_yaml)
        paths["params"] = ppath
    return {"paths": paths, "rows": dict(writer.rows), "truth": truth}
