"""Writing the sample world to files, and the ``python -m analysis synth`` command."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

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
    import pyarrow as pa
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
            tab = pa.Table.from_pandas(df, preserve_index=False)
            for c in _DATE_COLS.get(name, ()):
                i = tab.schema.get_field_index(c)
                if i < 0:  # a preset without this optional column
                    continue
                tab = tab.set_column(i, c, tab.column(c).cast(pa.timestamp("us")).cast(pa.date32()))
            tab = tab.replace_schema_metadata(None)  # no pandas/version metadata
            pq.write_table(
                tab,
                tmp,
                compression="zstd",
                compression_level=3,
                row_group_size=1_000_000,
                write_statistics=True,
                store_schema=False,
            )
        else:
            df.to_csv(tmp, index=False, date_format="%Y-%m-%d", lineterminator="\n")
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
    from analysis.data.synth.presets import PRESETS, generate_preset

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
    a = p.parse_args(argv)
    world = generate_preset(a.preset, a.customers, a.seed, a.start, a.months, dirty=a.dirty)
    paths = write(world, a.out, format=a.format)
    sizes = ", ".join(f"{k} {len(v):,}" for k, v in world.tables.items())
    label = "sample world" if a.preset == "sample" else f"{a.preset} world"
    print(
        f"{label} written to {Path(a.out)} ({a.format}): {sizes}; truth in "
        f"{paths['truth'].name}, params in {paths['params'].name}"
    )
    return 0
