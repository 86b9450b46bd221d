"""The shifted-beta-geometric (sBG) model of contract renewal.

Fader & Hardie (2007), "How to project customer retention", Journal of Interactive
Marketing 21(1), 76-90. In a contractual setting with discrete renewal
opportunities (a customer pays at the start of each period and decides at the end
of it whether to renew), each customer has a constant churn probability ``p`` at
every renewal opportunity, so a customer's lifetime ``T`` (the period in which they
leave) is geometric: P(T = t | p) = p (1 - p)^(t - 1), t = 1, 2, ...; ``p`` varies
across customers as Beta(gamma, delta). Averaging over the beta gives

* survival ``S(t) = B(gamma, delta + t) / B(gamma, delta)``: the share of a new
  cohort that has made ``t`` renewals (FH 2007, eq. 6);
* churn in period ``t``: ``P(T = t) = B(gamma + 1, delta + t - 1) / B(gamma, delta)``;
* retention rate ``r(t) = (delta + t - 1) / (gamma + delta + t - 1)``: the share of
  the customers who made ``t - 1`` renewals that renew at opportunity ``t``
  (FH 2007, eq. 8). It rises with ``t`` even though no customer's own churn
  probability changes: the high-churn customers leave first.

Fader & Hardie name the beta parameters alpha and beta; they are ``gamma`` and
``delta`` here (``gamma`` = FH alpha, ``delta`` = FH beta).

The likelihood of one customer who made ``k`` renewals is ``P(T = k + 1)`` if they
then left and ``S(k)`` if they are still active (right-censored). Both fitters,
:func:`fit_sbg` (one row per customer) and :func:`fit_sbg_counts` (customers still
active at each period of one or more cohorts, as in FH 2007, Table 1), reduce their
input to (renewals, churned, count) rows and maximise that one likelihood.

Customer value uses the discounted expected residual lifetime (DERL) of Fader &
Hardie (2010), "Customer-base valuation in a contractual setting: the perils of
ignoring heterogeneity", Marketing Science 29(1), 85-93, eq. 6.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import optimize, special
from threadpoolctl import threadpool_limits

from analysis.errors import AnalysisError, Problem, examples_of

__all__ = ["SBGResult", "fit_sbg", "fit_sbg_counts"]

_NAMES = ["gamma", "delta"]
_LOG_BOUND = 15.0  # |log parameter| allowed to the optimiser; beyond ~14 is a boundary


# ---------------------------------------------------------------------------
# The likelihood, shared by both fitters
# ---------------------------------------------------------------------------


class _SBGData:
    """Compressed sBG data: distinct (renewals ``k``, churned ``c``) rows with counts ``w``.

    Row log-likelihood: ``betaln(gamma + c, delta + k) - betaln(gamma, delta)``, which
    is log P(T = k + 1) for a customer who left after ``k`` renewals (``c = 1``) and
    log S(k) for one still active after ``k`` renewals (``c = 0``).
    """

    def __init__(self, k: np.ndarray, c: np.ndarray, w: np.ndarray):
        keep = w > 0
        self.k = np.asarray(k, float)[keep]
        self.c = np.asarray(c, float)[keep]
        self.w = np.asarray(w, float)[keep]
        self.n = float(self.w.sum())

    def loglik(self, g: float, d: float) -> float:
        rows = special.betaln(g + self.c, d + self.k)
        return float(np.dot(self.w, rows) - self.n * special.betaln(g, d))

    def grad_hess(self, g: float, d: float) -> tuple[np.ndarray, np.ndarray]:
        """Gradient and Hessian of the log-likelihood in the natural parameters."""
        psi, tri = special.digamma, special.polygamma
        w, c, k = self.w, self.c, self.k
        s = g + d + c + k
        grad = np.array(
            [
                np.dot(w, psi(g + c) - psi(s)) - self.n * (psi(g) - psi(g + d)),
                np.dot(w, psi(d + k) - psi(s)) - self.n * (psi(d) - psi(g + d)),
            ]
        )
        t_s = tri(1, s)
        t_gd = float(tri(1, g + d))
        h_gg = np.dot(w, tri(1, g + c) - t_s) - self.n * (float(tri(1, g)) - t_gd)
        h_gd = -np.dot(w, t_s) + self.n * t_gd
        h_dd = np.dot(w, tri(1, d + k) - t_s) - self.n * (float(tri(1, d)) - t_gd)
        return grad, np.array([[h_gg, h_gd], [h_gd, h_dd]])

    def max_opportunity(self) -> int:
        """Latest renewal opportunity at which some customer was observed at risk."""
        return int(np.max(self.k + self.c)) if self.k.size else 0


def _log_scale(data: _SBGData, theta: np.ndarray):
    """Return (negative log-likelihood, gradient, Hessian) in theta = log(gamma, delta)."""
    p = np.exp(theta)
    with np.errstate(all="ignore"):
        ll = data.loglik(*p)
        g, h = data.grad_hess(*p)
    grad_t = g * p
    hess_t = h * np.outer(p, p) + np.diag(grad_t)
    return -ll, -grad_t, -hess_t


def _fit(data: _SBGData, table: str) -> SBGResult:
    """Run :func:`_fit_impl` with one BLAS thread (a 2 x 2 problem; threads only cost time)."""
    _check_identified(data, table)
    with threadpool_limits(1):
        return _fit_impl(data, table)


def _fit_impl(data: _SBGData, table: str) -> SBGResult:
    """Maximise the sBG likelihood over log-parameters; SEs from the observed information."""
    n = data.n

    def f(theta):
        v = _log_scale(data, theta)[0] / n
        return v if np.isfinite(v) else 1e100

    def jac(theta):
        g = _log_scale(data, theta)[1] / n
        return g if np.all(np.isfinite(g)) else np.zeros(2)

    best = None
    for start in ((1.0, 1.0), (0.5, 3.0), (3.0, 10.0)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            res = optimize.minimize(
                f,
                np.log(start),
                jac=jac,
                method="L-BFGS-B",
                bounds=[(-_LOG_BOUND, _LOG_BOUND)] * 2,
                options={"maxiter": 2000, "ftol": 1e-15, "gtol": 1e-12},
            )
        if best is None or res.fun < best.fun:
            best = res
    theta, iterations = _newton_polish(data, best.x)
    iterations += int(best.nit)
    nll, grad, hess = _log_scale(data, theta)
    interior = np.all(np.abs(theta) < _LOG_BOUND - 1.0)
    try:
        cov_log = np.linalg.inv(hess)
        pd_ok = bool(np.all(np.isfinite(cov_log)) and np.all(np.linalg.eigvalsh(hess) > 0))
    except np.linalg.LinAlgError:
        pd_ok = False
    if not (np.isfinite(nll) and interior and pd_ok and np.max(np.abs(grad)) <= 1e-6 * n):
        raise _boundary_error(theta, grad / n, data, table)
    p = np.exp(theta)
    cov = cov_log * np.outer(p, p)  # delta method: d(gamma, delta)/d(theta) = diag(p)
    return SBGResult(
        params=pd.Series(p, index=_NAMES, name="estimate"),
        se=pd.Series(np.sqrt(np.diag(cov)), index=_NAMES, name="se"),
        cov=pd.DataFrame(cov, index=_NAMES, columns=_NAMES),
        loglik=float(-nll),
        n_customers=int(round(n)),
        n_churned=int(round(float(np.dot(data.w, data.c)))),
        iterations=iterations,
    )


def _newton_polish(data: _SBGData, theta: np.ndarray, steps: int = 50):
    """Newton steps with step halving from ``theta``; returns (theta, steps taken)."""
    theta = np.asarray(theta, float)
    nll, grad, hess = _log_scale(data, theta)
    for i in range(steps):
        if not np.all(np.isfinite(hess)) or np.any(np.linalg.eigvalsh(hess) <= 0):
            return theta, i
        step = np.linalg.solve(hess, grad)
        t = 1.0
        while t > 1e-6:
            cand = np.clip(theta - t * step, -_LOG_BOUND, _LOG_BOUND)
            c_nll, c_grad, c_hess = _log_scale(data, cand)
            if np.isfinite(c_nll) and c_nll <= nll + 1e-12 * abs(nll):
                break
            t /= 2
        else:
            return theta, i
        done = np.max(np.abs(cand - theta)) < 1e-12
        theta, nll, grad, hess = cand, c_nll, c_grad, c_hess
        if done or np.max(np.abs(grad)) < 1e-10 * max(data.n, 1.0):
            return theta, i + 1
    return theta, steps


def _check_identified(data: _SBGData, table: str) -> None:
    """Raise on data whose likelihood has no interior maximum (boundary cases)."""
    if data.n <= 0:
        raise AnalysisError(
            "sBG: there are no customers to fit.",
            [Problem(table, None, "no_rows", "no customers", fix="pass at least one cohort")],
        )
    n_churned = float(np.dot(data.w, data.c))
    if n_churned == 0:
        raise AnalysisError(
            f"sBG: none of the {data.n:,.0f} customers churned; the churn probabilities are "
            "not identified (the likelihood keeps rising as gamma -> 0).",
            [
                Problem(
                    table,
                    None,
                    "no_churn",
                    "no churn observed",
                    n_rows=int(round(data.n)),
                    fix="fit the model once some customers have left, or on a longer history",
                )
            ],
        )
    if n_churned == data.n and np.all(data.k == 0):
        raise AnalysisError(
            f"sBG: all {data.n:,.0f} customers churned at the first renewal opportunity; "
            "the likelihood keeps rising as the mean churn probability goes to 1.",
            [
                Problem(
                    table,
                    None,
                    "all_churned_first_period",
                    "every customer left in period 1",
                    n_rows=int(round(data.n)),
                    fix="check the period and churn definitions (renewals completed before leaving)",
                )
            ],
        )
    if data.max_opportunity() < 2:
        raise AnalysisError(
            "sBG: customers were observed at one renewal opportunity only; one retention "
            "rate cannot separate the two parameters (mean and spread of churn probabilities).",
            [
                Problem(
                    table,
                    None,
                    "not_identified",
                    "need customers observed at two or more renewal opportunities",
                    n_rows=int(round(data.n)),
                    fix="fit on at least two periods of renewals",
                )
            ],
        )


def _boundary_error(theta, grad_per_customer, data: _SBGData, table: str) -> AnalysisError:
    both_large = np.all(theta > _LOG_BOUND - 3.0)
    if both_large:
        why = (
            "retention does not rise with tenure in these data, so they show no spread in "
            "churn probabilities: the estimates run off towards a constant churn probability "
            "(the geometric model, gamma and delta -> infinity)"
        )
        fix = "use a constant churn probability (geometric model) for these customers"
    else:
        why = "the maximum lies on the boundary of the parameter space"
        fix = "check the renewal counts; the model may not fit these data"
    return AnalysisError(
        f"sBG: maximum likelihood did not converge: {why} (log-parameters "
        f"{np.round(theta, 2).tolist()}, max |gradient| per customer "
        f"{np.max(np.abs(grad_per_customer)):.2g}).",
        [
            Problem(
                table,
                None,
                "not_converged",
                "no interior maximum of the likelihood",
                n_rows=int(round(data.n)),
                fix=fix,
            )
        ],
    )


# ---------------------------------------------------------------------------
# Discounted expected residual lifetime
# ---------------------------------------------------------------------------


def _derl(gamma, delta_post, d) -> np.ndarray:
    """Return E[(1 - p)(1 + d) / (d + p)] for p ~ Beta(gamma, delta_post) (arrays, broadcast).

    This is the discounted expected residual lifetime of FH (2010), eq. 6, written as an
    expectation over the churn probability of a customer who made ``m`` renewals
    (posterior Beta(gamma, delta + m)): for a given ``p`` the sum over future renewals
    of ``(1 - p)^(j+1) / (1 + d)^j`` is ``(1 - p)(1 + d) / (d + p)``. For ``d = 0`` it
    is the undiscounted ``delta_post / (gamma - 1)`` (infinite when gamma <= 1).
    """
    g, b, dd = np.broadcast_arrays(
        np.asarray(gamma, float), np.asarray(delta_post, float), np.asarray(d, float)
    )
    shape = g.shape
    g, b, dd = g.ravel(), b.ravel(), dd.ravel()
    out = np.empty(g.size)
    zero = dd == 0
    with np.errstate(divide="ignore"):
        out[zero] = np.where(g[zero] > 1, b[zero] / (g[zero] - 1), np.inf)
    pos = np.flatnonzero(~zero)
    for start in range(0, pos.size, 256):
        idx = pos[start : start + 256]
        out[idx] = _derl_quadrature(g[idx], b[idx], dd[idx])
    return out.reshape(shape)


def _derl_quadrature(g, b, d, rtol: float = 1e-13) -> np.ndarray:
    """Double-exponential (tanh-sinh) quadrature of :func:`_derl` on the logit scale.

    The closed form ``(b / (g + b)) 2F1(1, b + 1; g + b + 1; 1 / (1 + d))`` (FH 2010) has
    its argument near 1 for small ``d``, where ``scipy.special.hyp2f1`` loses accuracy
    (badly so when ``g`` is close to an integer). Instead the expectation is integrated
    over ``x = logit(p) = x0 + s * pi * sinh(t)``, centred on the posterior mean and
    scaled to its spread, with the integrand evaluated in log space; the trapezoid
    step is halved until successive sums agree to ``rtol``.
    """
    g, b, d = g[:, None], b[:, None], d[:, None]
    lB = special.betaln(g, b)
    ld, l1d = np.log(d), np.log1p(d)
    x0 = np.log(g) - np.log(b)
    s = np.minimum(1.0, np.sqrt(1.0 / g + 1.0 / b))
    # Range of t beyond which both tails of the integrand are below exp(-40) of its scale.
    reach = np.abs(x0) + (100.0 + np.abs(lB) + np.abs(ld)) / np.minimum(g, b + 1.0)
    t_max = float(np.max(np.arcsinh(reach / (s * np.pi)))) + 0.5

    def node_sum(t):
        x = x0 + s * np.pi * np.sinh(t)
        lu = -np.logaddexp(0.0, -x)  # log p
        l1u = -np.logaddexp(0.0, x)  # log(1 - p)
        lf = (
            g * lu
            + (b + 1.0) * l1u
            - lB
            + l1d
            - np.logaddexp(ld, lu)
            + np.log(s * np.pi * np.cosh(t))
        )
        return np.exp(lf).sum(axis=1)

    h = 0.25
    total = node_sum(np.arange(-np.ceil(t_max / h), np.ceil(t_max / h) + 1) * h)
    est = h * total
    for _ in range(12):
        n_half = np.ceil(t_max / h)
        mid = (np.arange(-n_half, n_half) + 0.5) * h
        total = total + node_sum(mid)
        h /= 2
        new = h * total
        done = np.all(np.abs(new - est) <= rtol * np.abs(new))
        est = new
        if done:
            break
    return est


def _derl_within(g: float, d: float, m: np.ndarray, rate: float, horizon: int) -> np.ndarray:
    """Return sum_{j<horizon} S(m + 1 + j) / S(m) / (1 + rate)^j for each m (direct sum)."""
    m = np.atleast_1d(np.asarray(m, float))
    j = np.arange(int(horizon), dtype=float)
    ls = special.betaln(g, d + m[:, None] + 1 + j) - special.betaln(g, d + m[:, None])
    return np.exp(ls - j * np.log1p(rate)).sum(axis=1)


# ---------------------------------------------------------------------------
# The fitted model
# ---------------------------------------------------------------------------


def _per_distinct(f, m: np.ndarray) -> np.ndarray:
    """Return ``f`` of each element of the array ``m``, evaluated once per distinct value
    (customers share a few hundred renewal counts: ten million quadratures become a few
    hundred)."""
    u, inv = np.unique(m, return_inverse=True)
    return np.asarray(f(u), float)[inv].reshape(m.shape)


def _as_float(x, name: str, minimum: float) -> tuple[np.ndarray, bool]:
    arr = np.asarray(x, dtype=float)
    if not np.all(np.isfinite(arr)) or np.any(arr < minimum):
        raise AnalysisError(
            f"{name} must be finite and at least {minimum:g}.",
            [
                Problem(
                    "arguments",
                    name,
                    "out_of_range",
                    f"got {x!r}",
                    fix=f"use {name} >= {minimum:g}",
                )
            ],
        )
    return arr, arr.ndim == 0


def _out(arr: np.ndarray, scalar: bool):
    return float(arr) if scalar else arr


@dataclass
class SBGResult:
    """A fitted shifted-beta-geometric model (Fader & Hardie 2007).

    Churn probabilities ``p`` vary across customers as Beta(gamma, delta); each
    customer renews at every opportunity with probability ``1 - p``. Fader & Hardie
    call the two parameters alpha (= ``gamma``) and beta (= ``delta``). The mean churn
    probability of a new cohort is ``gamma / (gamma + delta)``; their spread (the
    polarisation index of FH 2010) is ``1 / (gamma + delta + 1)``.

    Periods are renewal periods (the contract term: a month, a year); ``t`` counts
    renewal opportunities.

    Attributes
    ----------
    params : pandas.Series
        Estimates of ``gamma`` and ``delta``.
    se : pandas.Series
        Standard errors from the observed information: the inverse Hessian of the
        log-likelihood in log(gamma), log(delta), carried to the natural scale by
        the delta method.
    cov : pandas.DataFrame
        Covariance matrix of (gamma, delta) on the natural scale.
    loglik : float
        Maximised log-likelihood.
    n_customers : int
        Customers in the fit.
    n_churned : int
        Customers observed to churn.
    iterations : int
        Optimiser iterations (L-BFGS-B, then Newton).
    """

    params: pd.Series
    se: pd.Series
    cov: pd.DataFrame
    loglik: float
    n_customers: int
    n_churned: int = 0
    iterations: int = 0
    model: str = field(default="sBG")

    @classmethod
    def from_params(cls, gamma: float, delta: float) -> SBGResult:
        """Return an sBG model with given parameters (no data, no standard errors).

        For projections and valuations under assumed parameters, such as the two
        cases of Fader & Hardie (2010).
        """
        p, _ = _as_float([gamma, delta], "gamma, delta", 0.0)
        if np.any(p <= 0):
            raise AnalysisError(
                f"sBG parameters must be positive; got gamma={gamma}, delta={delta}."
            )
        nan = np.full((2, 2), np.nan)
        return cls(
            params=pd.Series(p, index=_NAMES, name="estimate"),
            se=pd.Series([np.nan, np.nan], index=_NAMES, name="se"),
            cov=pd.DataFrame(nan, index=_NAMES, columns=_NAMES),
            loglik=float("nan"),
            n_customers=0,
        )

    def _p(self) -> tuple[float, float]:
        return float(self.params["gamma"]), float(self.params["delta"])

    def survival(self, t):
        """Return S(t) = B(gamma, delta + t) / B(gamma, delta) (FH 2007, eq. 6).

        The share of a new cohort still active after ``t`` renewal opportunities,
        i.e. that has made ``t`` renewals (S(0) = 1).

        Parameters
        ----------
        t : float or array_like
            Renewal opportunities, ``t >= 0`` (integers in the model).

        Returns
        -------
        float or numpy.ndarray
        """
        g, d = self._p()
        tt, scalar = _as_float(t, "t", 0.0)
        return _out(np.exp(special.betaln(g, d + tt) - special.betaln(g, d)), scalar)

    def retention_rate(self, t):
        """Return r(t) = (delta + t - 1) / (gamma + delta + t - 1) (FH 2007, eq. 8).

        The share of the customers who made ``t - 1`` renewals that renew at
        opportunity ``t``: S(t) / S(t - 1). It rises with ``t``.

        Parameters
        ----------
        t : float or array_like
            Renewal opportunity, ``t >= 1``.

        Returns
        -------
        float or numpy.ndarray
        """
        g, d = self._p()
        tt, scalar = _as_float(t, "t", 1.0)
        return _out((d + tt - 1) / (g + d + tt - 1), scalar)

    def expected_residual_lifetime(self, periods_survived):
        """Return the expected number of further renewals of a customer who made ``periods_survived``.

        The undiscounted residual lifetime E[T - 1 - m | T > m] for ``m`` renewals,
        ``(delta + m) / (gamma - 1)``; infinite when ``gamma <= 1`` (the beta mixture
        of geometric lifetimes then has no finite mean).

        Parameters
        ----------
        periods_survived : int or array_like
            Renewals the customer has made, ``m >= 0``.

        Returns
        -------
        float or numpy.ndarray
        """
        return self.discounted_residual_lifetime(periods_survived, 0.0)

    def discounted_residual_lifetime(self, periods_survived, discount_rate):
        """Return the discounted expected residual lifetime (DERL) of an active customer.

        Fader & Hardie (2010), eq. 6: for a customer who has made ``m`` renewals,
        evaluated just before the next renewal decision (so the payment at that
        renewal, if it comes, is not discounted),

            DERL(d | m) = sum_{j >= 0} S(m + 1 + j) / S(m) / (1 + d)^j
                        = (delta + m) / (gamma + delta + m)
                          * 2F1(1, delta + m + 1; gamma + delta + m + 1; 1 / (1 + d)),

        in periods of payments (FH 2010 count renewals as ``n - 1``: their
        DERL(d | gamma, delta, n - 1 renewals) is this with ``m = n - 1``). Evaluated
        as an expectation over the customer's churn probability (posterior
        Beta(gamma, delta + m)) by quadrature, which stays accurate where scipy's
        ``hyp2f1`` does not (argument near 1).

        Parameters
        ----------
        periods_survived : int or array_like
            Renewals made, ``m >= 0``.
        discount_rate : float or array_like
            Discount rate per renewal period, ``d >= 0`` (``d = 0`` gives
            :meth:`expected_residual_lifetime`).

        Returns
        -------
        float or numpy.ndarray
            Expected discounted number of future payments.
        """
        g, d = self._p()
        m, m_scalar = _as_float(periods_survived, "periods_survived", 0.0)
        rate, r_scalar = _as_float(discount_rate, "discount_rate", 0.0)
        if r_scalar and not m_scalar:  # one quadrature per distinct m, not per customer
            return _per_distinct(lambda u: _derl(g, d + u, rate), m)
        return _out(_derl(g, d + m, rate), m_scalar and r_scalar)

    def clv(
        self,
        margin: float,
        *,
        periods_survived=0,
        discount_rate: float,
        level: float = 0.95,
        n_draws: int = 2000,
        seed: int | np.random.Generator = 0,
    ) -> pd.DataFrame:
        """Return the residual value of an active customer: margin x DERL, with an interval.

        ``clv = margin * DERL(discount_rate | periods_survived)``: the expected present
        value of the payments still to come from a customer who has made
        ``periods_survived`` renewals, valued just before their next renewal decision
        (FH 2010). The interval is a parametric bootstrap: (log gamma, log delta) are
        drawn from their asymptotic normal distribution (estimates and observed-information
        covariance) and the value recomputed; it reflects parameter uncertainty only.

        Parameters
        ----------
        margin : float
            Margin (or revenue) per renewal period, in currency.
        periods_survived : int or array_like
            Renewals made by the customer(s) to value.
        discount_rate : float
            Discount rate per renewal period (``>= 0``).
        level : float
            Confidence level of the percentile interval.
        n_draws : int
            Parameter draws.
        seed : int or numpy.random.Generator
            Seed of the draws.

        Returns
        -------
        pandas.DataFrame
            One row per ``periods_survived``: ``periods_survived``, ``residual_lifetime``
            (DERL), ``clv``, ``se`` (standard deviation of the draws), ``ci_lower``,
            ``ci_upper``. Intervals are NaN for a model built with :meth:`from_params`.
        """
        mg, _ = _as_float(margin, "margin", -np.inf)
        if mg.ndim != 0:
            raise AnalysisError("margin must be one number (per period).")
        if not (0 < level < 1) or int(n_draws) < 2:
            raise AnalysisError(
                f"level={level!r} must lie in (0, 1) and n_draws={n_draws!r} be at least 2."
            )
        m, _ = _as_float(periods_survived, "periods_survived", 0.0)
        m = np.atleast_1d(m)
        rate, r_scalar = _as_float(discount_rate, "discount_rate", 0.0)
        if not r_scalar:
            raise AnalysisError("discount_rate must be one number (per period).")
        g, d = self._p()
        derl = _derl(g, d + m, rate)
        out = pd.DataFrame(
            {"periods_survived": m, "residual_lifetime": derl, "clv": float(mg) * derl}
        )
        cov = self.cov.to_numpy(float)
        if not np.all(np.isfinite(cov)):
            out["se"] = out["ci_lower"] = out["ci_upper"] = np.nan
            return out
        p = np.array([g, d])
        rng = np.random.default_rng(seed)
        with threadpool_limits(1):
            z = rng.multivariate_normal(np.log(p), cov / np.outer(p, p), size=int(n_draws))
        draws = np.exp(z)
        values = float(mg) * _derl(draws[:, [0]], draws[:, [1]] + m[None, :], rate)
        a = (1 - level) / 2
        finite = np.all(np.isfinite(values), axis=0)  # d = 0 and gamma <= 1: infinite value
        with np.errstate(invalid="ignore"):
            out["se"] = np.where(finite, np.std(values, axis=0, ddof=1), np.inf)
        # order statistics (no interpolation, so infinite draws stay infinite)
        lo, hi = np.quantile(values, [a, 1 - a], axis=0, method="inverted_cdf")
        out["ci_lower"], out["ci_upper"] = lo, hi
        return out

    def discounted_value_within(self, periods_survived, discount_rate, horizon: int):
        """Return the discounted expected number of payments within the next ``horizon`` renewals.

        The first ``horizon`` terms of :meth:`discounted_residual_lifetime`:
        ``sum_{j=0}^{horizon-1} S(m + 1 + j) / S(m) / (1 + d)^j`` for a customer who
        made ``m`` renewals (a finite-horizon DERL, for comparison with value over a
        fixed horizon).

        Parameters
        ----------
        periods_survived : int or array_like
            Renewals made, ``m >= 0``.
        discount_rate : float
            Discount rate per renewal period, ``d >= 0``.
        horizon : int
            Number of future renewal opportunities counted (``>= 1``).

        Returns
        -------
        float or numpy.ndarray
        """
        g, d = self._p()
        m, m_scalar = _as_float(periods_survived, "periods_survived", 0.0)
        rate, _ = _as_float(discount_rate, "discount_rate", 0.0)
        h, _ = _as_float(horizon, "horizon", 1.0)
        if not m_scalar:  # customers with the same renewals share the value
            return _per_distinct(lambda u: _derl_within(g, d, u, float(rate), int(h)), m)
        return float(_derl_within(g, d, m, float(rate), int(h))[0])

    def base_value(
        self,
        margin,
        periods_survived,
        *,
        discount_rate: float,
        horizon: int | None = None,
        level: float = 0.95,
        n_draws: int = 400,
        seed: int | np.random.Generator = 0,
    ) -> tuple[float, float, float]:
        """Return the total residual value of many active customers with an interval.

        ``sum_i margin_i * DERL(d | m_i)`` (or its first ``horizon`` renewals with
        :meth:`discounted_value_within`), in currency. The interval is a parametric
        bootstrap, as in :meth:`clv`: (log gamma, log delta) are drawn from their
        asymptotic normal distribution and the total recomputed; it reflects
        parameter uncertainty only (not which customers happen to leave).

        Parameters
        ----------
        margin : array_like
            Margin (or revenue) per renewal period of each customer, in currency.
        periods_survived : array_like
            Renewals made by each customer (same length as ``margin``).
        discount_rate : float
            Discount rate per renewal period (``>= 0``).
        horizon : int, optional
            Count only the next ``horizon`` renewals; default: the whole residual lifetime.
        level : float
            Confidence level of the percentile interval.
        n_draws : int
            Parameter draws.
        seed : int or numpy.random.Generator
            Seed of the draws.

        Returns
        -------
        (float, float, float)
            Total, lower and upper bound; the bounds are NaN without a covariance
            (a model from :meth:`from_params`).
        """
        mg = np.asarray(margin, float).ravel()
        m, _ = _as_float(periods_survived, "periods_survived", 0.0)
        m = np.atleast_1d(m).ravel()
        if mg.size != m.size or not np.all(np.isfinite(mg)):
            raise AnalysisError("margin and periods_survived must be finite and of equal length.")
        if not (0 < level < 1) or int(n_draws) < 2:
            raise AnalysisError(
                f"level={level!r} must lie in (0, 1) and n_draws={n_draws!r} be at least 2."
            )
        rate, _ = _as_float(discount_rate, "discount_rate", 0.0)
        # customers with the same renewals share a DERL: sum margins per distinct m
        um, inv = np.unique(m, return_inverse=True)
        weight = np.bincount(inv, weights=mg, minlength=um.size)

        def total(g, d):
            if horizon is None:
                v = _derl(g, d + um, float(rate))
            else:
                v = _derl_within(g, d, um, float(rate), int(horizon))
            return float(np.dot(weight, v))

        g, d = self._p()
        est = total(g, d)
        cov = self.cov.to_numpy(float)
        if not np.all(np.isfinite(cov)):
            return est, float("nan"), float("nan")
        p = np.array([g, d])
        rng = np.random.default_rng(seed)
        with threadpool_limits(1):
            z = rng.multivariate_normal(np.log(p), cov / np.outer(p, p), size=int(n_draws))
        draws = np.exp(z)
        if horizon is None:
            vals = _derl(draws[:, [0]], draws[:, [1]] + um[None, :], float(rate)) @ weight
        else:
            vals = np.array([total(a, b) for a, b in draws])
        a = (1 - level) / 2
        lo, hi = np.quantile(vals, [a, 1 - a], method="inverted_cdf")
        return est, float(lo), float(hi)


# ---------------------------------------------------------------------------
# The fitters
# ---------------------------------------------------------------------------


def fit_sbg(lifetimes: pd.DataFrame, *, periods: str, churned: str) -> SBGResult:
    """Fit the shifted-beta-geometric model to one row per customer.

    Fader & Hardie (2007): each customer's churn probability at a renewal opportunity
    is constant, and varies across customers as Beta(gamma, delta) (FH's alpha and
    beta). A customer who made ``k`` renewals and then left contributes
    P(T = k + 1) = B(gamma + 1, delta + k) / B(gamma, delta) to the likelihood; one
    still active after ``k`` renewals (right-censored) contributes
    S(k) = B(gamma, delta + k) / B(gamma, delta). Customers may have been observed for
    different numbers of periods (joined at different times).

    Maximum likelihood on log(gamma), log(delta) (L-BFGS-B from several starts, then
    Newton steps with the analytic Hessian); standard errors from the observed
    information, on the natural scale by the delta method. The same likelihood as
    :func:`fit_sbg_counts`.

    Parameters
    ----------
    lifetimes : pandas.DataFrame
        One row per customer.
    periods : str
        Column with the number of renewal periods completed (renewals made), an
        integer ``>= 0``.
    churned : str
        Column saying whether the customer has left (bool, or 0/1). Customers not
        churned are still active after ``periods`` renewals.

    Returns
    -------
    SBGResult
        Estimates, standard errors, covariance, log-likelihood, and the model's
        survival, retention, residual-lifetime and value functions.

    Raises
    ------
    AnalysisError
        If a column is missing or holds impossible values, or the data do not identify
        the model: no churn at all, every customer churned in period 1, customers seen
        at only one renewal opportunity, or no interior maximum (for instance
        retention that falls with tenure).
    """
    table = "lifetimes"
    if not isinstance(lifetimes, pd.DataFrame):
        raise AnalysisError(
            f"fit_sbg expects a DataFrame with one row per customer, not {type(lifetimes).__name__}.",
            [Problem(table, None, "not_a_frame", "wrong type", fix="pass a pandas DataFrame")],
        )
    missing = [c for c in (periods, churned) if c not in lifetimes.columns]
    if missing:
        raise AnalysisError(
            f"lifetimes lacks column(s) {missing}.",
            [
                Problem(
                    table,
                    c,
                    "missing_column",
                    "column not found",
                    fix=f"name the columns with periods= and churned= (have {list(lifetimes.columns)[:8]})",
                )
                for c in missing
            ],
        )
    k = pd.to_numeric(lifetimes[periods], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    with np.errstate(invalid="ignore"):
        bad = ~np.isfinite(k) | (k < 0) | (k != np.round(k))
    if bad.any():
        raise AnalysisError(
            f"{int(bad.sum()):,} rows of lifetimes have an impossible {periods!r} "
            "(need a whole number of renewals >= 0).",
            [
                Problem(
                    table,
                    periods,
                    "bad_periods",
                    "not a whole number >= 0",
                    n_rows=int(bad.sum()),
                    examples=examples_of(lifetimes.index[bad]),
                    fix="count the renewal periods each customer completed (0, 1, 2, ...)",
                )
            ],
        )
    c = _churn_flags(lifetimes[churned], table, churned)
    keys, w = np.unique(np.column_stack([k, c]), axis=0, return_counts=True)
    return _fit(_SBGData(keys[:, 0], keys[:, 1], w.astype(float)), table)


def _churn_flags(col: pd.Series, table: str, name: str) -> np.ndarray:
    if col.dtype == bool:
        return col.to_numpy(dtype=float)
    v = pd.to_numeric(col.astype("object"), errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    bad = ~np.isin(v, (0.0, 1.0))
    if bad.any():
        raise AnalysisError(
            f"{int(bad.sum()):,} rows of lifetimes have a {name!r} that is not True/False or 1/0.",
            [
                Problem(
                    table,
                    name,
                    "bad_churned",
                    "not a churn flag",
                    n_rows=int(bad.sum()),
                    examples=examples_of(col.index[bad]),
                    fix="mark churned customers True (1) and active ones False (0); no missing values",
                )
            ],
        )
    return v


def fit_sbg_counts(active_by_period) -> SBGResult:
    """Fit the shifted-beta-geometric model to the customers still active at each period.

    The data of Fader & Hardie (2007, Table 1): for a cohort acquired at period 0,
    ``active_by_period[t]`` customers are still active after ``t`` renewal
    opportunities (``active_by_period[0]`` is the cohort size). Then
    ``active[t - 1] - active[t]`` customers left at opportunity ``t`` (after ``t - 1``
    renewals) and the ``active[-1]`` still active are right-censored; the likelihood
    (FH 2007, eq. 9) is that of :func:`fit_sbg` on those customers. Several cohorts,
    observed for different numbers of periods, may be passed as a list of sequences
    (they share the parameters).

    Parameters
    ----------
    active_by_period : sequence of int, or sequence of sequences of int
        Customers still active at periods 0, 1, 2, ... of one cohort, or one such
        sequence per cohort. Counts of customers, not percentages; non-increasing.

    Returns
    -------
    SBGResult
        As :func:`fit_sbg`.

    Raises
    ------
    AnalysisError
        If the counts are not whole numbers, rise over time, or do not identify the
        model (as :func:`fit_sbg`).
    """
    table = "active_by_period"
    if isinstance(active_by_period, pd.DataFrame):
        raise AnalysisError(
            "fit_sbg_counts expects a sequence of counts (or one sequence per cohort), not a DataFrame.",
            [
                Problem(
                    table,
                    None,
                    "not_a_sequence",
                    "wrong type",
                    fix="pass e.g. frame['active'].tolist()",
                )
            ],
        )
    if isinstance(active_by_period, str) or not hasattr(active_by_period, "__iter__"):
        seq = []
    else:
        seq = list(active_by_period)
    cohorts = [seq] if (seq and not hasattr(seq[0], "__iter__")) else seq
    if not cohorts:
        raise AnalysisError(
            "sBG: no counts given.",
            [
                Problem(
                    table,
                    None,
                    "no_rows",
                    "empty",
                    fix="pass the customers active at periods 0, 1, 2, ...",
                )
            ],
        )
    ks, cs, ws = [], [], []
    for i, cohort in enumerate(cohorts):
        n = _cohort_counts(cohort, table, i)
        churn = n[:-1] - n[1:]
        t = np.arange(n.size - 1, dtype=float)
        ks += [t, [n.size - 1.0]]
        cs += [np.ones(t.size), [0.0]]
        ws += [churn, [n[-1]]]
    return _fit(_SBGData(np.concatenate(ks), np.concatenate(cs), np.concatenate(ws)), table)


def _cohort_counts(cohort, table: str, i: int) -> np.ndarray:
    try:
        n = np.asarray(cohort, dtype=float).ravel()
    except (TypeError, ValueError):
        n = np.array([np.nan])
    label = f"cohort {i}"
    with np.errstate(invalid="ignore"):
        bad = ~np.isfinite(n) | (n < 0) | (n != np.round(n))
    if n.size == 0 or bad.any():
        raise AnalysisError(
            f"sBG: {label} has counts that are not whole numbers >= 0.",
            [
                Problem(
                    table,
                    label,
                    "bad_counts",
                    "need counts of customers",
                    n_rows=int(bad.sum()),
                    examples=examples_of(np.asarray(cohort, dtype=object).ravel()[bad])
                    if n.size
                    else (),
                    fix="pass numbers of customers still active (not percentages)",
                )
            ],
        )
    rises = np.flatnonzero(np.diff(n) > 0)
    if n[0] <= 0 or rises.size:
        raise AnalysisError(
            f"sBG: {label} must start with a positive cohort size and never rise "
            "(customers who left do not come back).",
            [
                Problem(
                    table,
                    label,
                    "not_decreasing",
                    "counts rise or start at 0",
                    n_rows=int(rises.size),
                    examples=tuple(int(j) + 1 for j in rises[:5]),
                    fix="pass the customers of one cohort still active at periods 0, 1, 2, ...",
                )
            ],
        )
    return n
