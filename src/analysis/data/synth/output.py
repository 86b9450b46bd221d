"""Writing the sample world to files, and the ``python -m analysis synth`` command."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import pandas as pd

from analysis.data.synth.world import SampleWorld
from analysis.errors import ParamsError

# ---------------------------------------------------------------------------
# Writing and CLI
# ---------------------------------------------------------------------------

_DATE_COLS = {
    "customers": ("signup_date", "churn_date"),
    "transactions": ("date",),
    "loyalty": ("enrolled_date", "left_date"),
    "experience": ("date",),
}


# the file layout of every written table (in memory or streamed)
PARQUET_OPTIONS = {
    "compression": "zstd",
    "compression_level": 3,
    "write_statistics": True,
    "store_schema": False,
}
ROW_GROUP_ROWS = 1_000_000
CSV_OPTIONS = {"index": False, "date_format": "%Y-%m-%d", "lineterminator": "\n"}


def arrow_table(name: str, df):
    """Return table ``name`` as a pyarrow Table: dates as date32, no pandas metadata."""
    import pyarrow as pa

    tab = pa.Table.from_pandas(df, preserve_index=False)
    for c in _DATE_COLS.get(name, ()):
        i = tab.schema.get_field_index(c)
        if i < 0:  # a preset without this optional column
            continue
        tab = tab.set_column(i, c, tab.column(c).cast(pa.timestamp("us")).cast(pa.date32()))
    return tab.replace_schema_metadata(None)  # no pandas/version metadata


def write(world: SampleWorld, out_dir, format: str = "parquet") -> dict[str, Path]:
    """Write the tables, ``truth.json`` and ``params.yaml`` to ``out_dir`` byte-reproducibly.

    Parameters
    ----------
    world : SampleWorld
        Output of :func:`generate`.
    out_dir : str or path-like
        Folder, created if missing; existing files of the same names are replaced.
    format : {"parquet", "csv"}
        Table file format. Parquet stores dates as date32; CSV writes YYYY-MM-DD.

    Returns
    -------
    dict of str to pathlib.Path
        Written file per table name plus ``"truth"`` (and ``"params"``: ``params.yaml``
        when the world carries one, as every preset does).
    """
    import pyarrow.parquet as pq

    if format not in ("parquet", "csv"):
        raise ParamsError(f"synth: format must be 'parquet' or 'csv', got {format!r}.")
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ParamsError(
            f"synth: output path {str(out)!r} exists and is not a folder; choose another --out."
        )
    out.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    for name, df in world.tables.items():
        path = out / f"{name}.{format}"
        tmp = out / f".{name}.{format}.tmp"
        if format == "parquet":
            pq.write_table(
                arrow_table(name, df), tmp, row_group_size=ROW_GROUP_ROWS, **PARQUET_OPTIONS
            )
        else:
            df.to_csv(tmp, **CSV_OPTIONS)
        os.replace(tmp, path)
        paths[name] = path
    tpath = out / "truth.json"
    tpath.write_text(json.dumps(world.truth, sort_keys=True, indent=2, allow_nan=False) + "\n")
    paths["truth"] = tpath
    if world.params_yaml:
        ppath = out / "params.yaml"
        ppath.write_text(world.params_yaml)
        paths["params"] = ppath
    return paths


def main(argv: list[str] | None = None) -> int:
    """Run ``python -m analysis synth``: generate a preset world and write it.

    Parameters
    ----------
    argv : list of str, optional
        Arguments after ``synth`` (defaults to ``sys.argv[1:]``).

    Returns
    -------
    int
        Process exit code (0 on success).
    """
    from analysis.data.synth.presets import PRESETS, generate_preset, params_yaml
    from analysis.data.synth.stream import (
        BLOCK_CUSTOMERS,
        CHUNK_CUSTOMERS,
        STREAM_THRESHOLD,
        stream_world,
    )

    gallery = "; ".join(f"{k}: {v.summary}" for k, v in PRESETS.items())
    p = argparse.ArgumentParser(
        prog="analysis synth",
        description="Generate a world with planted truth: its tables, truth.json and a "
        f"ready-to-run params.yaml. Presets: {gallery}.",
    )
    p.add_argument(
        "--preset",
        choices=tuple(PRESETS),
        default="sample",
        help="business shape (default sample, the sample world; docs/sample-world.md)",
    )
    p.add_argument(
        "--customers",
        type=int,
        default=None,
        help="number of customers (default 20000; 300 accounts for b2b)",
    )
    p.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--format", choices=("parquet", "csv"), default="parquet")
    p.add_argument(
        "--start",
        default=None,
        help="window start, YYYY-MM-01 (default 2023-01-01; 2025-07-01 for short)",
    )
    p.add_argument(
        "--months",
        type=int,
        default=None,
        help="window length in months (default 36; 6 for short)",
    )
    p.add_argument(
        "--dirty",
        action="store_true",
        help="inject data problems (sample and short only; see truth['dirt'])",
    )
    p.add_argument(
        "--chunk-customers",
        type=int,
        default=None,
        help=f"stream the world (sample preset): simulate and write this many customers at "
        f"a time, rounded down to whole blocks of {BLOCK_CUSTOMERS:,}; memory is bounded by "
        f"it, the output does not depend on it. Default: in memory up to "
        f"{STREAM_THRESHOLD:,} customers, streamed in chunks of {CHUNK_CUSTOMERS:,} above "
        "(a streamed world is a different draw from the in-memory one of the same seed; "
        "docs/sample-world.md, Large worlds)",
    )
    a = p.parse_args(argv)
    n = a.customers if a.customers is not None else PRESETS[a.preset].customers
    if a.chunk_customers is not None or (a.preset == "sample" and n > STREAM_THRESHOLD):
        if a.preset != "sample":
            raise ParamsError(
                f"synth: --chunk-customers streams the sample preset only, not {a.preset!r}."
            )
        if a.dirty:
            raise ParamsError(
                "synth: --dirty needs the whole world in memory; it is not available when "
                f"streaming (--chunk-customers, or more than {STREAM_THRESHOLD:,} customers)."
            )
        start = a.start or PRESETS["sample"].start
        months = a.months if a.months is not None else PRESETS["sample"].months
        from analysis.data.synth.assemble import _check_args

        _, st0, months = _check_args(n, start, months, 12)
        as_of = st0 + pd.DateOffset(months=months) - pd.Timedelta(days=1)
        window = {"start": st0.strftime("%Y-%m-%d"), "as_of": as_of.strftime("%Y-%m-%d")}
        res = stream_world(
            a.out,
            n,
            a.seed,
            start,
            months,
            a.format,
            chunk_customers=a.chunk_customers,
            params_yaml=params_yaml("sample", window),
        )
        sizes = ", ".join(f"{k} {v:,}" for k, v in res["rows"].items())
        print(
            f"sample world streamed to {Path(a.out)} ({a.format}): {sizes}; truth in "
            f"{res['paths']['truth'].name}, params in {res['paths']['params'].name}"
        )
        return 0
    world = generate_preset(a.preset, a.customers, a.seed, a.start, a.months, dirty=a.dirty)
    paths = write(world, a.out, format=a.format)
    sizes = ", ".join(f"{k} {len(v):,}" for k, v in world.tables.items())
    label = "sample world" if a.preset == "sample" else f"{a.preset} world"
    print(
        f"{label} written to {Path(a.out)} ({a.format}): {sizes}; truth in "
        f"{paths['truth'].name}, params in {paths['params'].name}"
    )
    return 0
