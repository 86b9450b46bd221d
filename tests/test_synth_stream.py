"""Tests for the streaming generator (``analysis.data.synth.stream``, issue 16 §3).

A streamed world is written block by block. Checks: the files are byte-identical
whatever the chunk size (with small blocks and row groups, so that several blocks,
several chunks and several row groups are exercised); the files hold exactly the
blocks' tables; ``truth.json``, built from per-block sums, equals the in-memory truth
code run on the whole streamed world; the world passes contract validation; planted
parameters are recovered by independent estimators (the Mantel-Haenszel person-time
rate ratio, Greenland & Robins 1985, and the Gamma-Gamma mean basket p * gamma / (q - 1),
Fader, Hardie & Lee 2005); and the in-memory path is unchanged.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis import config, data
from analysis.data import synth
from analysis.data.synth import presets, stream
from analysis.data.synth.truth import _truth
from analysis.errors import ParamsError

N = 5000
BLOCK = 700  # 8 blocks (the last one partial)
ROW_GROUP = 4000  # rows per Parquet row group: many groups per table
CHUNKS = (700, 2100, 5000)  # 1, 3 and 7 blocks per chunk
SEED = 7


def _digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def _stream(folder: Path, chunk: int, fmt: str = "parquet", n: int = N) -> dict:
    window = {"start": "2023-01-01", "as_of": "2025-12-31"}
    return stream.stream_world(
        folder,
        n,
        seed=SEED,
        format=fmt,
        chunk_customers=chunk,
        block_customers=BLOCK,
        row_group_rows=ROW_GROUP,
        params_yaml=presets.params_yaml("sample", window),
    )


@pytest.fixture(scope="module")
def streamed(tmp_path_factory):
    """The same world streamed with three chunk sizes: folders and results."""
    root = tmp_path_factory.mktemp("stream")
    return {c: (root / f"chunk_{c}", _stream(root / f"chunk_{c}", c)) for c in CHUNKS}


@pytest.fixture(scope="module")
def world(streamed):
    folder, res = streamed[CHUNKS[0]]
    return folder, res


def test_bytes_identical_across_chunk_sizes(streamed):
    digests = {c: _digests(folder) for c, (folder, _) in streamed.items()}
    first = digests[CHUNKS[0]]
    assert set(first) == {
        "customers.parquet",
        "transactions.parquet",
        "loyalty.parquet",
        "experience.parquet",
        "truth.json",
        "params.yaml",
    }
    for c in CHUNKS[1:]:
        assert digests[c] == first, c


def test_csv_bytes_identical_across_chunk_sizes(tmp_path):
    a = _digests(_stream(tmp_path / "a", 700, "csv", n=2000)["paths"]["truth"].parent)
    b = _digests(_stream(tmp_path / "b", 2000, "csv", n=2000)["paths"]["truth"].parent)
    assert a == b
    assert "transactions.csv" in a


def test_parquet_row_groups_are_fixed_size(world):
    import pyarrow.parquet as pq

    folder, res = world
    meta = pq.ParquetFile(folder / "transactions.parquet").metadata
    sizes = [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]
    assert sum(sizes) == res["rows"]["transactions"] > 3 * ROW_GROUP
    assert all(s == ROW_GROUP for s in sizes[:-1]) and 0 < sizes[-1] <= ROW_GROUP


def _blocks_in_memory(n: int = N):
    """Return the streamed world's blocks, simulated again in memory (one chunk)."""
    setup = stream._Setup(SEED, n, pd.Timestamp("2023-01-01"), 36, BLOCK)
    return setup, list(stream._blocks(setup, per_chunk=len(setup.bounds)))


@pytest.fixture(scope="module")
def whole(world):
    """The streamed world as one in-memory world: tables, arrays and chunk results."""
    setup, blocks = _blocks_in_memory()
    tables = {
        t: pd.concat([b["tables"][t] for b in blocks], ignore_index=True) for t in stream.TABLES
    }
    pop = {k: np.concatenate([b["pop"][k] for b in blocks]) for k in blocks[0]["pop"]}
    chunks = [{**b["res"], "offset": b["lo"]} for b in blocks]
    truth = _truth(
        seed=SEED,
        n=N,
        start=setup.start,
        months=36,
        pop=pop,
        churn_m=np.concatenate([b["churn_m"] for b in blocks]),
        enrolled=np.concatenate([b["enrolled"] for b in blocks]),
        chunks=chunks,
        tables=tables,
        tx_counts={
            "n": sum(b["tx_counts"]["n"] for b in blocks),
            "sum_amount": sum(b["tx_counts"]["sum_amount"] for b in blocks),
        },
        C=setup.C,
        landmarks=setup.landmarks,
        dirty=False,
    )
    return tables, truth


def test_files_hold_the_blocks_tables(world, whole):
    import pyarrow.parquet as pq

    from analysis.data.synth.output import arrow_table

    folder, _ = world
    tables, _ = whole
    for name, df in tables.items():
        got = pq.read_table(folder / f"{name}.parquet")
        want = arrow_table(name, df)
        # no Arrow schema is stored: large strings read back as strings
        assert got.equals(want.cast(got.schema)), name
    ids = tables["customers"]["customer_id"]
    assert ids.is_unique and ids.is_monotonic_increasing
    assert ids.iloc[0] == "C0000001" and ids.iloc[-1] == f"C{N:07d}"


def _leaves(d, prefix=""):
    if isinstance(d, dict):
        for k, v in d.items():
            yield from _leaves(v, f"{prefix}/{k}")
    else:
        yield prefix, d


def test_streamed_truth_equals_the_whole_world_truth(world, whole):
    """Per-block sums give the numbers the in-memory truth code gives on the whole world."""
    folder, _ = world
    got = json.loads((folder / "truth.json").read_text())
    want = whole[1]
    assert got["params"].pop("generator")["block_customers"] == BLOCK
    g, w = dict(_leaves(got)), dict(_leaves(want))
    assert set(g) == set(w)
    for k, v in w.items():
        if isinstance(v, float) and g[k] is not None:
            # both rounded to 6 decimals; sums in another order may differ in the last digit
            assert g[k] == pytest.approx(v, abs=2.1e-6, rel=1e-9), k
        else:
            assert g[k] == v, k
    assert got["loyalty"]["landmarks"]["6"]["n"] > 0
    assert got["loyalty"]["sequential"]["n_enrolments"] > 0


def test_streamed_world_passes_contract_validation(world):
    folder, _ = world
    params = config.load_params(folder / "params.yaml")
    errors = [p for p in data.check(params) if p.severity == "error"]
    assert not errors, errors


def _mh_rate_ratio(cust, start, as_of, exposed):
    """Mantel-Haenszel person-time churn rate ratio over tenure bands, with a 99% interval."""
    days = 30.4375
    bands = [0, 3, 6, 12, 24, 36, 60, 1000]
    entry = ((start - cust["signup_date"]).dt.days / days).clip(lower=0).to_numpy()
    end = cust["churn_date"].fillna(as_of)
    exit_ = ((end - cust["signup_date"]).dt.days / days).to_numpy()
    event = cust["churn_date"].notna().to_numpy()
    num = den = var_num = 0.0
    for a, b in zip(bands[:-1], bands[1:], strict=True):
        t = np.clip(np.minimum(exit_, b) - np.maximum(entry, a), 0, None)
        d = event & (exit_ >= a) & (exit_ < b)
        d1, d0 = d[exposed].sum(), d[~exposed].sum()
        t1, t0 = t[exposed].sum(), t[~exposed].sum()
        tt = t1 + t0
        if tt == 0:
            continue
        num += d1 * t0 / tt
        den += d0 * t1 / tt
        var_num += t1 * t0 * (d1 + d0) / tt**2
    rr = num / den
    half = 2.576 * math.sqrt(var_num / (num * den))
    return rr, rr * math.exp(-half), rr * math.exp(half)


@pytest.mark.parametrize(
    "key, column, level, reference",
    [
        ("segment[business]", "segment", "business", "consumer"),
        ("value_tier[low]", "value_tier", "low", "medium"),
    ],
)
def test_planted_hazard_ratio_recovered(world, key, column, level, reference):
    folder, _ = world
    truth = json.loads((folder / "truth.json").read_text())
    start, as_of = pd.Timestamp(truth["window"]["start"]), pd.Timestamp(truth["window"]["as_of"])
    cust = pd.read_parquet(folder / "customers.parquet")
    for c in ("signup_date", "churn_date"):
        cust[c] = pd.to_datetime(cust[c])
    cust = cust[cust[column].isin([level, reference])]
    rr, lo, hi = _mh_rate_ratio(cust, start, as_of, (cust[column] == level).to_numpy())
    assert lo <= truth["survival"]["hazard_ratios"][key] <= hi, (rr, lo, hi)


def test_planted_mean_basket_recovered(world):
    """Mean amount per purchase against p * gamma / (q - 1), customer-clustered 99.9% interval."""
    folder, _ = world
    truth = json.loads((folder / "truth.json").read_text())
    tx = pd.read_parquet(folder / "transactions.parquet", columns=["customer_id", "amount"])
    per = tx.groupby("customer_id")["amount"].agg(["sum", "count"])
    est = per["sum"].sum() / per["count"].sum()
    # ratio estimator, linearised: residuals per customer
    e = per["sum"] - est * per["count"]
    se = math.sqrt(len(per) / (len(per) - 1) * (e**2).sum()) / per["count"].sum()
    want = truth["value"]["spend"]["mean_amount"]
    assert abs(est - want) <= 3.3 * se, (est, want, se)
    assert se < 0.03 * want  # informative


def test_default_in_memory_world_unchanged(tmp_path):
    """Below the threshold and without --chunk-customers, synth writes generate()+write()."""
    for fmt in ("parquet", "csv"):
        out = tmp_path / f"cli_{fmt}"
        rc = synth.main(["--customers", "400", "--seed", "3", "--out", str(out), "--format", fmt])
        assert rc == 0
        ref = tmp_path / f"ref_{fmt}"
        synth.write(synth.generate_preset("sample", 400, 3), ref, format=fmt)
        assert _digests(out) == _digests(ref)
        assert "generator" not in json.loads((out / "truth.json").read_text())["params"]
    # generate() itself: a fixed world (ids, counts and the truth's own rates)
    w = synth.generate(n_customers=400, seed=3)
    assert len(w.tables["customers"]) == 400
    assert w.sequential_effects is not None and len(w.sequential_effects) > 0


def test_cli_streams_with_chunk_customers_and_above_the_threshold(tmp_path, monkeypatch):
    a, b = tmp_path / "a", tmp_path / "b"
    assert (
        synth.main(
            ["--customers", "300", "--seed", "5", "--out", str(a), "--chunk-customers", "100"]
        )
        == 0
    )
    monkeypatch.setattr(stream, "STREAM_THRESHOLD", 200)
    assert synth.main(["--customers", "300", "--seed", "5", "--out", str(b)]) == 0
    assert _digests(a) == _digests(b)
    t = json.loads((a / "truth.json").read_text())
    assert t["params"]["generator"]["mode"] == "streaming"
    assert t["params"]["n_customers"] == 300
    assert (a / "params.yaml").exists()


@pytest.mark.parametrize(
    "args, match",
    [
        (["--preset", "retail", "--chunk-customers", "100"], "sample preset only"),
        (["--dirty", "--chunk-customers", "100"], "not available when streaming"),
        (["--chunk-customers", "0"], "must be positive"),
        (["--months", "6", "--chunk-customers", "100"], "at least 12"),
    ],
)
def test_cli_refuses_what_streaming_cannot_do(tmp_path, args, match):
    with pytest.raises(ParamsError, match=match):
        synth.main(["--customers", "300", "--out", str(tmp_path / "x"), *args])


def test_ids_keep_sorting_beyond_ten_million():
    from analysis.data.synth.assemble import _ids

    assert list(_ids(3)) == ["C0000001", "C0000002", "C0000003"]
    ids = _ids(3, 9_999_998, total=10_000_001)
    assert list(ids) == ["C09999999", "C10000000", "C10000001"]
    assert list(ids) == sorted(ids)
