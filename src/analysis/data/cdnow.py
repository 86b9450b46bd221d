"""Load the CDNOW purchase histories (real data) onto the data contract.

CDNOW is the standard benchmark of customer-base analysis (Fader, Hardie & Lee
2005, Marketing Science 24(2) and JMR 42(4)): every customer whose first purchase
at the online music retailer CDNOW was in the first quarter of 1997, followed to
the end of June 1998. The shipped copies live in ``data/external/cdnow/`` (see the
README there for provenance, checksums and the redistribution note).

Mapping onto the contract
-------------------------
customers
    ``customer_id`` (the 5-digit master id, as text), ``signup_date`` = first
    purchase, ``churn_date`` empty (non-contractual: churn is never observed),
    ``churn_reason`` empty, ``segment`` = acquisition month ("1997-01", "1997-02",
    "1997-03"), ``in_sample`` = customer belongs to the 1/10 sample of 2,357 used
    in the papers.
transactions
    ``customer_id``, ``date``, ``amount`` = ``dollar_value`` (US dollars). The
    number of CDs is not part of the contract and is dropped. No margin or channel.

Command line: ``python -m analysis cdnow --out data/cdnow [--format parquet|csv]
[--sample]``.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.errors import AnalysisError, Problem

#: sha256 of the shipped files (README of data/external/cdnow).
SHA256 = {
    "CDNOW_master.txt": "eff6889ed364c5199d6eacbbeb7a6d559971df4406ac876f322c373f00a072ef",
    "CDNOW_sample.txt": "6fae10155c0b0ba363c2c386e30f77990d22328220efd862a5edd1443420d94a",
}

#: Calibration/holdout split of the papers: 39 + 39 weeks.
CALIBRATION_END = "1997-09-30"
OBSERVATION_END = "1998-06-30"


def default_dir() -> Path:
    """Return ``data/external/cdnow`` of the repository this package is installed from."""
    return Path(__file__).resolve().parents[3] / "data" / "external" / "cdnow"


def _check_file(path: Path, verify: bool) -> None:
    if not path.exists():
        raise AnalysisError(
            f"CDNOW file not found: {path}",
            [
                Problem(
                    "cdnow",
                    None,
                    "missing_file",
                    "file not found",
                    fix="pass --dir pointing at the folder with CDNOW_master.txt and CDNOW_sample.txt",
                )
            ],
        )
    if verify:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        want = SHA256.get(path.name)
        if want is not None and digest != want:
            raise AnalysisError(
                f"{path.name} has sha256 {digest[:12]}..., expected {want[:12]}...",
                [
                    Problem(
                        "cdnow",
                        None,
                        "checksum",
                        "file differs from the shipped copy",
                        fix="restore the file from data/external/cdnow (git checkout) or pass verify=False",
                    )
                ],
            )


def read_master(path: str | Path | None = None, *, verify: bool = True) -> pd.DataFrame:
    """Read ``CDNOW_master.txt`` into columns customer_id, date, number_of_cds, dollar_value.

    Parameters
    ----------
    path : path-like, optional
        The file; default ``data/external/cdnow/CDNOW_master.txt``.
    verify : bool
        Check the sha256 against the shipped copy.
    """
    p = Path(path) if path is not None else default_dir() / "CDNOW_master.txt"
    _check_file(p, verify)
    df = pd.read_csv(
        p,
        sep=r"\s+",
        header=0,
        names=["customer_id", "date", "number_of_cds", "dollar_value"],
        dtype={"customer_id": str, "date": str, "number_of_cds": np.int64, "dollar_value": float},
    )
    df["date"] = pd.to_datetime(df["date"], format="%Y%m%d")
    return df


def read_sample(path: str | Path | None = None, *, verify: bool = True) -> pd.DataFrame:
    """Read ``CDNOW_sample.txt`` (the 1/10 sample of the papers).

    Returns columns customer_id (master id, text), sample_id, date, number_of_cds,
    dollar_value.
    """
    p = Path(path) if path is not None else default_dir() / "CDNOW_sample.txt"
    _check_file(p, verify)
    df = pd.read_csv(
        p,
        sep=r"\s+",
        header=None,
        names=["customer_id", "sample_id", "date", "number_of_cds", "dollar_value"],
        dtype={"customer_id": str, "sample_id": str, "date": str},
    )
    df["date"] = pd.to_datetime(df["date"], format="%Y%m%d")
    return df


def load(
    directory: str | Path | None = None, *, sample_only: bool = False, verify: bool = True
) -> dict[str, pd.DataFrame]:
    """Map the CDNOW files onto the data contract.

    Parameters
    ----------
    directory : path-like, optional
        Folder with CDNOW_master.txt and CDNOW_sample.txt; default
        ``data/external/cdnow``.
    sample_only : bool
        Keep only the 2,357 customers of the papers' 1/10 sample.
    verify : bool
        Check file checksums.

    Returns
    -------
    dict
        ``{"customers": DataFrame, "transactions": DataFrame}`` following the
        contract (see the module docstring for the mapping). Dates are
        datetime64 at day precision; amounts in US dollars.
    """
    d = Path(directory) if directory is not None else default_dir()
    master = read_master(d / "CDNOW_master.txt", verify=verify)
    sample = read_sample(d / "CDNOW_sample.txt", verify=verify)
    sample_ids = set(sample["customer_id"].unique())
    if sample_only:
        master = master[master["customer_id"].isin(sample_ids)]
    tx = (
        master[["customer_id", "date", "dollar_value"]]
        .rename(columns={"dollar_value": "amount"})
        .sort_values(["customer_id", "date"], kind="stable")
        .reset_index(drop=True)
    )
    first = tx.groupby("customer_id", sort=True)["date"].min()
    customers = pd.DataFrame(
        {
            "customer_id": first.index.astype(str),
            "signup_date": first.to_numpy(dtype="datetime64[ns]"),
            "churn_date": pd.Series(pd.NaT, index=range(len(first)), dtype="datetime64[ns]"),
            "churn_reason": pd.Series([None] * len(first), dtype="string"),
            "segment": first.dt.strftime("%Y-%m").to_numpy(),
            "in_sample": first.index.isin(list(sample_ids)),
        }
    )
    return {"customers": customers, "transactions": tx}


def write(
    tables: dict[str, pd.DataFrame], out_dir: str | Path, *, format: str = "parquet"
) -> list[Path]:
    """Write contract tables to ``out_dir`` as ``<table>.parquet`` or ``<table>.csv``.

    Dates are written as dates (parquet date32; ISO text in CSV). Returns the paths.
    """
    if format not in ("parquet", "csv"):
        raise AnalysisError(f"format={format!r} must be 'parquet' or 'csv'.")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, df in tables.items():
        df = df.copy()
        date_cols = [c for c in df.columns if pd.api.types.is_datetime64_any_dtype(df[c])]
        if format == "parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq

            table = pa.Table.from_pandas(df, preserve_index=False)
            fields = [
                pa.field(f.name, pa.date32()) if f.name in date_cols else f for f in table.schema
            ]
            table = table.cast(pa.schema(fields))
            p = out / f"{name}.parquet"
            pq.write_table(table, p)
        else:
            for c in date_cols:
                df[c] = df[c].dt.strftime("%Y-%m-%d")
            p = out / f"{name}.csv"
            df.to_csv(p, index=False)
        paths.append(p)
    return paths


def main(argv: list[str] | None = None) -> int:
    """Run ``python -m analysis cdnow``: convert CDNOW to contract tables in a folder."""
    ap = argparse.ArgumentParser(
        prog="python -m analysis cdnow",
        description="Convert the shipped CDNOW purchase histories to data-contract tables "
        "(customers, transactions) that a params file with data.source: folder can read.",
    )
    ap.add_argument("--out", required=True, help="output folder, e.g. data/cdnow")
    ap.add_argument(
        "--dir", default=None, help="folder with CDNOW_master.txt (default data/external/cdnow)"
    )
    ap.add_argument("--format", choices=["parquet", "csv"], default="parquet")
    ap.add_argument(
        "--sample", action="store_true", help="only the 2,357 customers of the 1/10 sample"
    )
    args = ap.parse_args(argv)
    try:
        tables = load(args.dir, sample_only=args.sample)
        paths = write(tables, args.out, format=args.format)
    except AnalysisError as exc:
        print(exc, file=sys.stderr)
        return 2
    n_c = len(tables["customers"])
    n_t = len(tables["transactions"])
    print(f"wrote {n_c:,} customers and {n_t:,} transactions to {', '.join(str(p) for p in paths)}")
    return 0
