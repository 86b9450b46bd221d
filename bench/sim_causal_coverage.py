"""Simulation study: bias and 95% CI coverage of the loyalty IPW / AIPW estimates.

Repeats the sample-world analysis over many independently seeded small worlds
(analysis.synth), each with its own truth.json, and reports for each design
(pooled sequential trials, the report's headline: retention and spend; landmarks
6 and 12: retention, as in the report), outcome, estimand and method: mean bias,
RMSE, mean standard error vs the empirical standard deviation, and the share of
95% intervals covering the world's truth. The sequential-trial ATE is trimmed by
the Crump et al. (2009) rule as in the report; its truth is the average
individual effect over the person-trials kept (analysis.synth.sequential_truth).
Also: coverage of the planted churn hazard ratio by the IP-weighted Cox interval
at each landmark, and the naive contrast's mean bias.

Usage::

    .venv/bin/python bench/sim_causal_coverage.py [--seeds 200] [--customers 4000] \
        [--workers 1] [--out bench/results/causal_sim.csv]

Prints a markdown table; results are recorded in bench/results/causal.md.
"""

from __future__ import annotations

import argparse
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pandas as pd

from analysis.config import LOYALTY_COVARIATES
from analysis.loyalty import trial_covariates

COVARIATES = list(LOYALTY_COVARIATES)
TRIAL_COVARIATES = trial_covariates(COVARIATES)


def _estimates(
    f, truth, design, seed, covariates, *, outcomes, cluster=None, world=None, ate_trim=None
) -> list[dict]:
    """IPW, AIPW, regression (and naive) estimates of one frame against the world's truth.

    ``ate_trim``: trimming of the ATE (the sequential trials use "crump", as the report
    does); the ATE truth is then the average individual effect over the person-trials kept,
    from ``synth.sequential_truth`` (``world`` required).
    """
    from analysis import causal, synth

    rows = []
    for outcome in outcomes:
        for method in ("naive", "regression", "ipw", "aipw"):
            for estimand in ("ATE", "ATT"):
                if method == "naive" and estimand == "ATE":
                    continue
                trim = ate_trim if estimand == "ATE" else None
                eff = causal.estimate_effect(
                    f,
                    treatment="member",
                    outcome=outcome,
                    covariates=covariates,
                    method=method,
                    estimand=estimand,
                    cluster=cluster,
                    trim=trim,
                )
                target = truth[f"{outcome}_{estimand}"]
                label = estimand
                if trim is not None:
                    kept = f[eff.propensity.notna().to_numpy()]
                    target = synth.sequential_truth(world, kept)[outcome]
                    label = "ATE (overlap-trimmed)"
                rows.append(
                    {
                        "seed": seed,
                        "design": design,
                        "outcome": outcome,
                        "method": method,
                        "estimand": label,
                        "truth": target,
                        "estimate": eff.estimate,
                        "se": eff.se,
                        "se_influence": eff.se_influence,
                        "se_method": eff.se_method,
                        "covered": eff.ci_lower < target < eff.ci_upper,
                        "n": len(f),
                        "n_treated": eff.n_treated,
                        "n_trimmed": eff.n_trimmed,
                    }
                )
    return rows


def one_world(seed: int, n_customers: int, landmarks: tuple[int, ...] = (6, 12)) -> list[dict]:
    """Estimate everything on one world; return one row per estimate."""
    import warnings

    from analysis import causal, loyalty, synth

    warnings.simplefilter("ignore")
    w = synth.generate(n_customers=n_customers, seed=seed)
    rows = []
    win = w.truth["window"]
    tf = loyalty.trial_frame(
        w.tables["customers"],
        w.tables["transactions"],
        w.tables["loyalty"],
        w.tables["experience"],
        window_start=win["start"],
        as_of=win["as_of"],
    )
    seq = w.truth["loyalty"]["sequential"]
    rows += _estimates(
        tf,
        seq,
        "sequential trials",
        seed,
        TRIAL_COVARIATES,
        outcomes=("retained", "spend"),
        cluster="customer_id",
        world=w,
        ate_trim="crump",
    )
    for L in landmarks:
        truth = w.truth["loyalty"]["landmarks"][str(L)]
        f = loyalty.landmark_frame(
            w.tables["customers"],
            w.tables["transactions"],
            w.tables["loyalty"],
            w.tables["experience"],
            landmark_months=L,
            window_start=win["start"],
            as_of=win["as_of"],
        )
        if f["member"].sum() < 20:
            continue
        # the report estimates retention only at the landmarks (spend: sequential trials)
        rows += _estimates(f, truth, f"landmark {L}", seed, COVARIATES, outcomes=("retained",))
        ipw = causal.estimate_effect(
            f, treatment="member", outcome="retained", covariates=COVARIATES, method="ipw"
        )
        cox = loyalty.weighted_cox(f, weights=ipw.weights, horizon=6)
        hr = w.truth["loyalty"]["churn_hazard_ratio"]
        rows.append(
            {
                "seed": seed,
                "design": f"landmark {L}",
                "outcome": "churn hazard ratio",
                "method": "ipw-cox",
                "estimand": "HR (planted, structural)",
                "truth": hr,
                "estimate": cox.hazard_ratio,
                "se": cox.se,
                "se_influence": cox.se,
                "se_method": "robust",
                "covered": cox.ci_lower < hr < cox.ci_upper,
                "n": len(f),
                "n_treated": int(f["member"].sum()),
                "n_trimmed": 0,
            }
        )
    return rows


def _coverage_of(d: pd.DataFrame, target: float) -> float:
    """Share of the rows' 95% intervals covering one fixed target.

    The intervals are rebuilt from estimate and se (normal quantile for the influence-function
    and robust SEs, t on 39 df for the 40-group jackknife). A design whose truth is the same in
    every world (the planted hazard ratio) keeps its recorded ``covered``.
    """
    if d["truth"].nunique() == 1:
        return float(d["covered"].mean())
    from scipy import stats

    q = np.where(d["se_method"] == "jackknife", stats.t.ppf(0.975, 39), stats.norm.ppf(0.975))
    return float((np.abs(d["estimate"] - target) < q * d["se"]).mean())


def summarise(res: pd.DataFrame) -> pd.DataFrame:
    """Aggregate per landmark, outcome, method and estimand."""
    g = res.groupby(["design", "outcome", "method", "estimand"], sort=False)
    out = g.apply(
        lambda d: pd.Series(
            {
                "worlds": len(d),
                "mean_truth": d["truth"].mean(),
                "mean_share_trimmed": (d["n_trimmed"] / d["n"]).mean(),
                "bias": (d["estimate"] - d["truth"]).mean(),
                "rmse": float(np.sqrt(((d["estimate"] - d["truth"]) ** 2).mean())),
                "mean_se": d["se"].mean(),
                "mean_se_influence": d["se_influence"].mean(),
                "sd_estimate_minus_truth": (d["estimate"] - d["truth"]).std(ddof=1),
                "coverage_95": d["covered"].mean(),
                # Monte Carlo (binomial) standard error of the coverage share
                "coverage_mc_se": float(
                    np.sqrt(d["covered"].mean() * (1 - d["covered"].mean()) / len(d))
                ),
                # coverage of the population (super-population) effect, approximated by the
                # mean of the worlds' own truths: the target of the analytic standard error,
                # free of each world's sampling variation in its realised effect
                "coverage_population": _coverage_of(d, d["truth"].mean()),
                "sd_truth": d["truth"].std(ddof=1),
            }
        ),
        include_groups=False,
    )
    return out.reset_index()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=200)
    ap.add_argument("--first-seed", type=int, default=1000)
    ap.add_argument("--customers", type=int, default=4000)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--out", default="bench/results/causal_sim.csv")
    ap.add_argument(
        "--sequential-only",
        action="store_true",
        help="only the sequential-trial design (the headline), e.g. for worlds of the sample "
        "world's size, where the landmark jackknife would dominate the run time",
    )
    ap.add_argument(
        "--summarise",
        nargs="+",
        metavar="CSV",
        help="no simulation: pool the per-world rows of earlier runs (their --out files) and "
        "print the table",
    )
    args = ap.parse_args()

    if args.summarise:
        res = pd.concat([pd.read_csv(f) for f in args.summarise], ignore_index=True)
        seeds = sorted(res["seed"].unique())
        print(f"{len(seeds)} worlds pooled from {', '.join(args.summarise)}\n")
        print_table(summarise(res))
        return

    seeds = list(range(args.first_seed, args.first_seed + args.seeds))
    t0 = time.perf_counter()
    rows: list[dict] = []
    lms = () if args.sequential_only else (6, 12)
    if args.workers > 1:
        with ProcessPoolExecutor(args.workers) as ex:
            n = len(seeds)
            for r in ex.map(one_world, seeds, [args.customers] * n, [lms] * n):
                rows.extend(r)
    else:
        for s in seeds:
            rows.extend(one_world(s, args.customers, lms))
    res = pd.DataFrame(rows)
    res.to_csv(args.out, index=False)
    summ = summarise(res)
    elapsed = time.perf_counter() - t0
    print(
        f"{args.seeds} worlds x {args.customers:,} customers (seeds {seeds[0]}-{seeds[-1]}), "
        f"{elapsed / 60:.1f} min\n"
    )
    print_table(summ)


def print_table(summ: pd.DataFrame) -> None:
    """Print the summary as a markdown table (4 significant digits, coverage in %)."""
    fmt = summ.copy()
    for c in (
        "mean_truth",
        "bias",
        "rmse",
        "mean_se",
        "mean_se_influence",
        "mean_share_trimmed",
        "sd_estimate_minus_truth",
        "sd_truth",
    ):
        fmt[c] = fmt[c].map(lambda v: f"{v:.4g}")
    fmt["coverage_95"] = [
        f"{100 * v:.1f}% ± {100 * e:.1f}"
        for v, e in zip(fmt["coverage_95"], fmt["coverage_mc_se"], strict=True)
    ]
    fmt["coverage_population"] = fmt["coverage_population"].map(lambda v: f"{100 * v:.1f}%")
    fmt = fmt.drop(columns="coverage_mc_se")
    fmt["worlds"] = fmt["worlds"].astype(int)
    print(fmt.to_markdown(index=False))


if __name__ == "__main__":
    main()
