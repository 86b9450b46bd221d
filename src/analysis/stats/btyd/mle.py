"""Shared machinery of the buy-till-you-die fits.

The (frequency, recency, T) arrays of a summary, compression of identical rows
into weights, and maximum likelihood over log-parameters with standard errors
from the inverse Hessian.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import optimize
from threadpoolctl import threadpool_limits

from analysis.errors import AnalysisError, Problem


def _summary_arrays(summary: pd.DataFrame, frequency="frequency", recency="recency", T="T"):
    missing = [c for c in (frequency, recency, T) if c not in summary.columns]
    if missing:
        raise AnalysisError(
            f"summary lacks column(s) {missing}; build it with value.rfm_summary().",
        )
    x = summary[frequency].to_numpy(dtype=float)
    tx = summary[recency].to_numpy(dtype=float)
    TT = summary[T].to_numpy(dtype=float)
    bad = (
        ~np.isfinite(x)
        | ~np.isfinite(tx)
        | ~np.isfinite(TT)
        | (x < 0)
        | (tx < 0)
        | (tx > TT + 1e-9)
    )
    if bad.any():
        raise AnalysisError(
            f"{int(bad.sum()):,} summary rows have impossible (frequency, recency, T).",
            [
                Problem(
                    "summary",
                    None,
                    "bad_rfm",
                    "need frequency >= 0 and 0 <= recency <= T",
                    n_rows=int(bad.sum()),
                    fix="rebuild the summary with value.rfm_summary()",
                )
            ],
        )
    return x, tx, TT


def _compress(*cols: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
    """Group identical rows of the given columns and return (unique columns, counts)."""
    df = pd.DataFrame({f"c{i}": c for i, c in enumerate(cols)})
    g = df.groupby(list(df.columns), sort=False, observed=True).size()
    idx = g.index.to_frame(index=False)
    return [idx[c].to_numpy(dtype=float) for c in df.columns], g.to_numpy(dtype=float)


# ---------------------------------------------------------------------------
# Maximum likelihood machinery
# ---------------------------------------------------------------------------


def _numeric_gradient(f, theta, h=1e-5):
    g = np.empty_like(theta)
    for i in range(theta.size):
        e = np.zeros_like(theta)
        e[i] = h
        g[i] = (f(theta + e) - f(theta - e)) / (2 * h)
    return g


def _numeric_hessian(f, theta, h=1e-4):
    k = theta.size
    H = np.empty((k, k))
    f0 = f(theta)
    for i in range(k):
        ei = np.zeros(k)
        ei[i] = h
        H[i, i] = (f(theta + ei) - 2 * f0 + f(theta - ei)) / h**2
        for j in range(i + 1, k):
            ej = np.zeros(k)
            ej[j] = h
            v = (
                f(theta + ei + ej) - f(theta + ei - ej) - f(theta - ei + ej) + f(theta - ei - ej)
            ) / (4 * h**2)
            H[i, j] = H[j, i] = v
    return H


@dataclass
class _MLE:
    params: pd.Series
    se: pd.Series
    cov: pd.DataFrame
    loglik: float
    n_customers: int
    iterations: int


_EDGE = 11.5  # |log parameter| beyond which a fit counts as ending on the boundary
_FAR = 6.0  # |log parameter| beyond which a fit is tested for running off to the boundary


class BoundaryFit(AnalysisError):
    """A likelihood whose maximum lies on the edge of the parameter space.

    Raised when the optimiser runs a parameter towards 0 or infinity instead of
    settling on an interior maximum: the data carry no information that would
    keep it finite (for example no dropout visible in a purchase model's
    calibration period, or no spread of spend between customers).

    Attributes
    ----------
    model : str
        Model name ("BG/NBD", "Pareto/NBD", "Gamma-Gamma").
    log_params : pandas.Series
        Log-parameters where the optimiser stopped.
    at_edge : dict
        Parameter name -> "zero" or "infinity" for each parameter on the boundary.
    """

    def __init__(self, message, problems, *, model: str, log_params: pd.Series, at_edge):
        super().__init__(message, problems)
        self.model = model
        self.log_params = log_params
        self.at_edge = {
            k: ("infinity" if v > 0 else "zero")
            for (k, v), e in zip(log_params.items(), at_edge, strict=True)
            if e
        }


def _fit_mle(nll_mean, names, starts, n_total, model, grad_mean=None) -> _MLE:
    """Run :func:`_fit_mle_impl` with one BLAS/OpenMP thread.

    The vectors are long but the operations are simple; on a shared machine,
    multi-threaded BLAS calls inside the optimiser are many times slower.
    """
    with threadpool_limits(1):
        return _fit_mle_impl(nll_mean, names, starts, n_total, model, grad_mean)


def _fit_mle_impl(nll_mean, names, starts, n_total, model, grad_mean=None) -> _MLE:
    """Minimise a mean negative log-likelihood over log-parameters; SEs from the Hessian.

    ``nll_mean(log_params)`` returns the negative log-likelihood divided by the
    number of customers (better conditioned for the optimiser); ``grad_mean`` its
    gradient with respect to the log-parameters, when available. Each start runs
    L-BFGS-B; Nelder-Mead and BFGS polish only if the gradient check fails.
    """

    def safe(theta):
        with np.errstate(all="ignore"):
            v = nll_mean(theta)
        return v if np.isfinite(v) else 1e100

    def safe_grad(theta):
        with np.errstate(all="ignore"):
            g = grad_mean(theta)
        return g if np.all(np.isfinite(g)) else np.zeros_like(theta)

    def grad_at(theta):
        return safe_grad(theta) if grad_mean is not None else _numeric_gradient(safe, theta)

    def converged(res):
        return (
            np.isfinite(res.fun)
            and res.fun < 1e99
            and np.max(np.abs(grad_at(res.x))) <= 1e-5
            and np.all(np.abs(res.x) < _EDGE)
        )

    def edge_of(res) -> np.ndarray:
        """Return a mask of the parameters that run off to 0 or infinity at ``res.x``.

        At the bounds, or far out (|log p| > 6) with the likelihood no worse (or no
        longer computable) half a log-unit further out: the supremum is on the edge.
        """
        x = res.x
        far = np.abs(x) >= _EDGE - 0.5
        big = (np.abs(x) > _FAR) & ~far
        if big.any():
            out = safe(x + np.where(big, 0.5 * np.sign(x), 0.0))
            if out >= 1e99 or out <= res.fun + 1e-10 * max(abs(res.fun), 1.0):
                far = far | big
        return far

    best = None
    for s in starts:
        theta0 = np.log(np.asarray(s, dtype=float))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            cand = optimize.minimize(
                safe,
                theta0,
                jac=safe_grad if grad_mean is not None else None,
                method="L-BFGS-B",
                bounds=[(-12.0, 12.0)] * len(names),
                options={"maxiter": 3000, "ftol": 1e-15, "gtol": 1e-10},
            )
            # A fit that ran to the bounds has its supremum at 0 or infinity: the
            # polish below cannot bring it back (and on the Pareto/NBD, whose
            # likelihood is expensive, it cost minutes; issue 14).
            edge = np.zeros(len(names), bool) if converged(cand) else edge_of(cand)
            if not converged(cand) and not edge.any():
                res2 = optimize.minimize(
                    safe,
                    cand.x,
                    method="Nelder-Mead",
                    options={"xatol": 1e-10, "fatol": 1e-14, "maxiter": 4000, "maxfev": 8000},
                )
                if res2.fun < cand.fun:
                    cand = res2
                res3 = optimize.minimize(
                    safe,
                    cand.x,
                    jac=safe_grad if grad_mean is not None else None,
                    method="BFGS",
                    options={"gtol": 1e-10},
                )
                if res3.fun <= cand.fun:
                    cand = res3
        if best is None or cand.fun < best.fun:
            best, best_edge = cand, edge
        if converged(best):
            break
    theta = best.x
    fval = best.fun
    if not np.isfinite(fval) or fval >= 1e99:
        raise AnalysisError(
            f"{model}: the likelihood could not be evaluated at any starting value.",
            [
                Problem(
                    "summary",
                    None,
                    "fit_failed",
                    "non-finite log-likelihood",
                    fix="check the summary for extreme values",
                )
            ],
        )
    grad = grad_at(theta)
    if not converged(best) and (best_edge.any() or np.any(np.abs(theta) >= _EDGE)):
        best_edge = best_edge | (np.abs(theta) >= _EDGE)
        lp = pd.Series(theta, index=names)
        edge = [
            f"{k} -> {'infinity' if v > 0 else '0'}"
            for (k, v), e in zip(lp.items(), best_edge, strict=True)
            if e
        ]
        raise BoundaryFit(
            f"{model}: maximum likelihood did not converge: the maximum lies on the boundary "
            f"({', '.join(edge)}; log-parameters {np.round(theta, 2).tolist()}).",
            [
                Problem(
                    "summary",
                    None,
                    "boundary",
                    "the likelihood keeps rising towards the edge of the parameter space",
                    n_rows=int(n_total),
                    fix="the data do not identify this model; use a model that fits them",
                )
            ],
            model=model,
            log_params=lp,
            at_edge=best_edge,
        )
    if np.max(np.abs(grad)) > 1e-4:
        raise AnalysisError(
            f"{model}: maximum likelihood did not converge (max |gradient| = "
            f"{np.max(np.abs(grad)):.2g} per customer; log-parameters {np.round(theta, 2).tolist()}).",
            [
                Problem(
                    "summary",
                    None,
                    "not_converged",
                    "optimiser stopped away from an interior maximum",
                    n_rows=int(n_total),
                    fix="the data may not identify the model (too few repeat purchases or too short a calibration period)",
                )
            ],
        )
    params = np.exp(theta)

    def total_nll(p):
        with np.errstate(all="ignore"):
            return nll_mean(np.log(p)) * n_total

    H = _hessian_natural(total_nll, params)
    try:
        cov = np.linalg.inv(H)
        ok = np.all(np.isfinite(cov)) and np.all(np.diag(cov) > 0)
    except np.linalg.LinAlgError:
        ok = False
    if not ok:
        raise AnalysisError(
            f"{model}: the Hessian at the maximum is not positive definite; standard errors are undefined.",
            [
                Problem(
                    "summary",
                    None,
                    "singular_hessian",
                    "flat or degenerate likelihood",
                    n_rows=int(n_total),
                    fix="use more data or a longer calibration period",
                )
            ],
        )
    se = np.sqrt(np.diag(cov))
    return _MLE(
        params=pd.Series(params, index=names, name="estimate"),
        se=pd.Series(se, index=names, name="se"),
        cov=pd.DataFrame(cov, index=names, columns=names),
        loglik=float(-fval * n_total),
        n_customers=int(n_total),
        iterations=int(getattr(best, "nit", 0)),
    )


def _hessian_natural(f, p):
    """Central-difference Hessian in natural parameters with relative steps."""
    k = p.size
    h = 1e-4 * np.maximum(np.abs(p), 1e-3)
    H = np.empty((k, k))
    f0 = f(p)
    for i in range(k):
        ei = np.zeros(k)
        ei[i] = h[i]
        H[i, i] = (f(p + ei) - 2 * f0 + f(p - ei)) / h[i] ** 2
        for j in range(i + 1, k):
            ej = np.zeros(k)
            ej[j] = h[j]
            v = (f(p + ei + ej) - f(p + ei - ej) - f(p - ei + ej) + f(p - ei - ej)) / (
                4 * h[i] * h[j]
            )
            H[i, j] = H[j, i] = v
    return H
