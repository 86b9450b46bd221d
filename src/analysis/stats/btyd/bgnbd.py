"""The BG/NBD model of repeat purchasing (Fader, Hardie & Lee 2005, Marketing Science 24(2)).

Fitted by maximum likelihood on compressed sufficient statistics, with standard
errors from the inverse Hessian. Times are in units of the summary's ``freq``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy import special

from analysis.errors import AnalysisError, Problem
from analysis.stats.btyd.mle import _compress, _fit_mle, _summary_arrays

if TYPE_CHECKING:
    from analysis.stats.btyd.pareto_nbd import _PairIndex


def _bgnbd_loglik(params, x, tx, T):
    """Per-customer log-likelihood of the BG/NBD model, FHL (2005) eq. 6, in log space."""
    r, alpha, a, b = params
    common = special.gammaln(r + x) - special.gammaln(r) + r * np.log(alpha)
    l1 = special.betaln(a, b + x) - special.betaln(a, b) - (r + x) * np.log(alpha + T)
    pos = x > 0
    l2 = np.full_like(x, -np.inf)
    xp = x[pos]
    l2[pos] = (
        special.betaln(a + 1, b + xp - 1)
        - special.betaln(a, b)
        - (r + xp) * np.log(alpha + tx[pos])
    )
    return common + np.logaddexp(l1, l2)


def _bgnbd_grad(params, x, tx, T, w):
    """Gradient of the weighted BG/NBD log-likelihood with respect to (r, alpha, a, b)."""
    r, alpha, a, b = params
    dg = special.digamma
    l1 = special.betaln(a, b + x) - (r + x) * np.log(alpha + T)
    pos = x > 0
    l2 = np.full_like(x, -np.inf)
    l2[pos] = special.betaln(a + 1, b + x[pos] - 1) - (r + x[pos]) * np.log(alpha + tx[pos])
    m = np.logaddexp(l1, l2)
    w1 = np.exp(l1 - m)
    w2 = np.exp(l2 - m)
    xm1 = np.where(pos, x - 1, 0.0)
    d_r = dg(r + x) - dg(r) + np.log(alpha) - w1 * np.log(alpha + T) - w2 * np.log(alpha + tx)
    d_alpha = r / alpha - w1 * (r + x) / (alpha + T) - w2 * (r + x) / (alpha + tx)
    base_a = -(dg(a) - dg(a + b))
    base_b = -(dg(b) - dg(a + b))
    d_a = base_a + w1 * (dg(a) - dg(a + b + x)) + w2 * (dg(a + 1) - dg(a + b + x))
    d_b = (
        base_b
        + w1 * (dg(b + x) - dg(a + b + x))
        + w2 * np.where(pos, dg(b + xm1) - dg(a + b + x), 0.0)
    )
    return np.array([np.dot(w, d_r), np.dot(w, d_alpha), np.dot(w, d_a), np.dot(w, d_b)])


class _BGNBDData:
    """Weighted BG/NBD data indexed by distinct x, t_x and T values.

    Terms that depend on the parameters and only one of x, t_x or T are computed
    once per distinct value and gathered, which makes each likelihood evaluation
    on a million customers cost a few vector gathers rather than special functions.
    """

    def __init__(self, x, tx, T, w):
        self.xv, self.ix = np.unique(x, return_inverse=True)
        self.tv, self.it = np.unique(tx, return_inverse=True)
        self.Tv, self.iT = np.unique(T, return_inverse=True)
        self.w = w
        self.pos = self.xv > 0

    def _parts(self, params):
        r, alpha, a, b = params
        xv = self.xv
        rx = (r + xv)[self.ix]
        lT = np.log(alpha + self.Tv)[self.iT]
        lt = np.log(alpha + self.tv)[self.it]
        b1 = special.betaln(a, b + xv) - special.betaln(a, b)
        b2 = np.full_like(xv, -np.inf)
        b2[self.pos] = special.betaln(a + 1, b + xv[self.pos] - 1) - special.betaln(a, b)
        l1 = b1[self.ix] - rx * lT
        l2 = b2[self.ix] - rx * lt
        m = np.logaddexp(l1, l2)
        return rx, lT, lt, l1, l2, m

    def loglik(self, params):
        r, alpha, a, b = params
        common = special.gammaln(r + self.xv) - special.gammaln(r) + r * np.log(alpha)
        _, _, _, _, _, m = self._parts(params)
        return float(np.dot(self.w, common[self.ix] + m))

    def grad(self, params):
        r, alpha, a, b = params
        dg = special.digamma
        xv = self.xv
        rx, lT, lt, l1, l2, m = self._parts(params)
        w1 = np.exp(l1 - m)
        w2 = np.exp(l2 - m)
        w = self.w
        # Per-x sums of weights let the x-only terms be summed once per distinct x.
        nx = np.bincount(self.ix, weights=w, minlength=xv.size)
        s1 = np.bincount(self.ix, weights=w * w1, minlength=xv.size)
        s2 = np.bincount(self.ix, weights=w * w2, minlength=xv.size)
        d_r = np.dot(nx, dg(r + xv) - dg(r) + np.log(alpha)) - np.dot(w, w1 * lT + w2 * lt)
        d_alpha = r / alpha * nx.sum() - np.dot(
            w, rx * (w1 / (alpha + self.Tv[self.iT]) + w2 / (alpha + self.tv[self.it]))
        )
        base_a = -(dg(a) - dg(a + b))
        base_b = -(dg(b) - dg(a + b))
        xm1 = np.where(self.pos, xv - 1, 0.0)
        d_a = (
            nx.sum() * base_a
            + np.dot(s1, dg(a) - dg(a + b + xv))
            + np.dot(s2, dg(a + 1) - dg(a + b + xv))
        )
        d_b = (
            nx.sum() * base_b
            + np.dot(s1, dg(b + xv) - dg(a + b + xv))
            + np.dot(s2, np.where(self.pos, dg(b + xm1) - dg(a + b + xv), 0.0))
        )
        return np.array([d_r, d_alpha, d_a, d_b])


def _bgnbd_log_odds_dead(params, x, tx, T):
    """log of  a/(b+x-1) * ((alpha+T)/(alpha+t_x))^(r+x)  for x > 0, -inf for x = 0."""
    r, alpha, a, b = params
    out = np.full(np.broadcast(x, tx, T).shape, -np.inf)
    x, tx, T = np.broadcast_arrays(
        np.asarray(x, float), np.asarray(tx, float), np.asarray(T, float)
    )
    pos = x > 0
    out[pos] = (
        np.log(a)
        - np.log(b + x[pos] - 1)
        + (r + x[pos]) * (np.log(alpha + T[pos]) - np.log(alpha + tx[pos]))
    )
    return out


class _PerCustomerPredictions:
    """Per-customer predictions shared by the purchase models (BG/NBD, Pareto/NBD).

    Subclasses provide ``conditional_expected_transactions(t, x, t_x, T)`` and
    ``p_alive(x, t_x, T)`` on arrays.
    """

    def predict(self, summary: pd.DataFrame, t: float) -> pd.Series:
        """Return each customer's expected transactions in the next ``t`` time units."""
        x, tx, TT = _summary_arrays(summary)
        return pd.Series(
            self.conditional_expected_transactions(t, x, tx, TT),
            index=summary.index,
            name="expected_transactions",
        )

    def p_alive_summary(self, summary: pd.DataFrame) -> pd.Series:
        """Return each customer's P(alive) at the end of the calibration period."""
        x, tx, TT = _summary_arrays(summary)
        return pd.Series(self.p_alive(x, tx, TT), index=summary.index, name="p_alive")

    def _conditional_path(self, ends, pairs: _PairIndex) -> tuple[np.ndarray, np.ndarray]:
        """Return (P(alive), E[Y(t) | x, t_x, T] for each t in ``ends``) for the rows of ``pairs``.

        Equal, element for element, to calling :meth:`p_alive` and
        :meth:`conditional_expected_transactions` once per t; subclasses compute the
        parts that do not depend on t only once.
        """
        x, tx, T = pairs.x, pairs.tx, pairs.T
        cum = np.empty((x.size, len(ends)))
        for j, t in enumerate(ends):
            cum[:, j] = self.conditional_expected_transactions(t, x, tx, T)
        return self.p_alive(x, tx, T), cum


@dataclass
class BGNBDResult(_PerCustomerPredictions):
    """A fitted BG/NBD model (Fader, Hardie & Lee 2005).

    Attributes
    ----------
    params : pandas.Series
        r, alpha (transaction-rate gamma shape and scale; alpha in units of ``freq``),
        a, b (beta dropout-probability shape parameters).
    se : pandas.Series
        Standard errors from the inverse Hessian of the log-likelihood.
    cov : pandas.DataFrame
        Covariance matrix of the estimates.
    loglik : float
        Maximised log-likelihood.
    n_customers : int
        Customers in the fit.
    freq : str
        Time unit of the summary.
    """

    params: pd.Series
    se: pd.Series
    cov: pd.DataFrame
    loglik: float
    n_customers: int
    freq: str = "W"
    model: str = field(default="BG/NBD")

    def _p(self):
        return tuple(float(self.params[k]) for k in ("r", "alpha", "a", "b"))

    def expected_transactions(self, t):
        """Return E[X(t)], expected repeat transactions in (0, t] for a new customer.

        FHL (2005) eq. 7, computed with the Euler transformation of Fader & Hardie
        (2013, "Overcoming the BG/NBD model's #NUM! error problem") for stability.
        ``t`` is in units of ``freq``.
        """
        r, alpha, a, b = self._p()
        t = np.asarray(t, dtype=float)
        z = t / (alpha + t)
        with np.errstate(all="ignore"):
            f = (1 - z) ** (a - 1) * special.hyp2f1(a + b - 1 - r, a - 1, a + b - 1, z)
            return (a + b - 1) / (a - 1) * (1 - f)

    def p_alive(self, frequency, recency, T):
        """Return P(alive at T | x, t_x, T): probability the customer has not dropped out.

        FHL (2005) eq. 11 (alive by definition when x = 0).
        """
        lo = _bgnbd_log_odds_dead(
            self._p(),
            np.asarray(frequency, float),
            np.asarray(recency, float),
            np.asarray(T, float),
        )
        return 1.0 / (1.0 + np.exp(lo))

    def conditional_expected_transactions(self, t, frequency, recency, T):
        """Return E[Y(t) | x, t_x, T]: expected transactions in (T, T + t].

        FHL (2005) eq. 10 with the Euler transformation of the hypergeometric term.
        All times in units of ``freq``.
        """
        r, alpha, a, b = self._p()
        x = np.asarray(frequency, dtype=float)
        tx = np.asarray(recency, dtype=float)
        TT = np.asarray(T, dtype=float)
        t = np.asarray(t, dtype=float)
        z = t / (alpha + TT + t)
        with np.errstate(all="ignore"):
            f = (1 - z) ** (a - 1) * special.hyp2f1(a + b - 1 - r, a - 1, a + b + x - 1, z)
            num = (a + b + x - 1) / (a - 1) * (1 - f)
        return num * self.p_alive(x, tx, TT)

    def _conditional_path(self, ends, pairs: _PairIndex) -> tuple[np.ndarray, np.ndarray]:
        # The same arithmetic as conditional_expected_transactions; P(alive) does not
        # depend on t, and the hypergeometric factor depends on (x, T) only.
        r, alpha, a, b = self._p()
        pa = self.p_alive(pairs.x, pairs.tx, pairs.T)
        xp, Tp = pairs.x_T
        cum = np.empty((pairs.x.size, len(ends)))
        for j, t in enumerate(ends):
            t = np.asarray(t, dtype=float)
            z = t / (alpha + Tp + t)
            with np.errstate(all="ignore"):
                f = (1 - z) ** (a - 1) * special.hyp2f1(a + b - 1 - r, a - 1, a + b + xp - 1, z)
                num = (a + b + xp - 1) / (a - 1) * (1 - f)
            cum[:, j] = num[pairs.i_T] * pa
        return pa, cum


def fit_bgnbd(
    summary: pd.DataFrame, *, frequency="frequency", recency="recency", T="T"
) -> BGNBDResult:
    """Fit the BG/NBD model by maximum likelihood.

    The likelihood (Fader, Hardie & Lee 2005, eq. 6) is evaluated once per distinct
    (x, t_x, T) row and weighted by its count, so large customer bases fit quickly.

    Parameters
    ----------
    summary : pandas.DataFrame
        Output of :func:`rfm_summary` (one row per customer).
    frequency, recency, T : str
        Column names of repeat transactions, recency and age (units of the summary's freq).

    Returns
    -------
    BGNBDResult
        Estimates, standard errors (inverse Hessian), log-likelihood.

    Raises
    ------
    AnalysisError
        If the optimiser does not reach an interior maximum or the Hessian is singular.
    """
    x, tx, TT = _summary_arrays(summary, frequency, recency, T)
    _require_repeaters(x, "BG/NBD")
    (ux, utx, uT), w = _compress(x, tx, TT)
    n = w.sum()
    data = _BGNBDData(ux, utx, uT, w)

    def nll(theta):
        return -data.loglik(np.exp(theta)) / n

    def grad(theta):
        p = np.exp(theta)
        return -data.grad(p) * p / n

    scale = max(float(np.mean(TT)), 1e-3)
    starts = [(1.0, scale / 5, 1.0, 3.0), (0.5, scale / 2, 0.5, 1.0)]
    m = _fit_mle(nll, ["r", "alpha", "a", "b"], starts, n, "BG/NBD", grad_mean=grad)
    return BGNBDResult(
        m.params, m.se, m.cov, m.loglik, m.n_customers, summary.attrs.get("freq", "W")
    )


def _require_repeaters(x, model):
    if x.size == 0:
        raise AnalysisError(f"{model}: the summary has no customers.")
    if (x > 0).sum() < 10:
        raise AnalysisError(
            f"{model}: only {(x > 0).sum()} of {x.size:,} customers made a repeat purchase; the model is not identified.",
            [
                Problem(
                    "summary",
                    "frequency",
                    "too_few_repeaters",
                    "need at least 10 repeat purchasers",
                    n_rows=int(x.size),
                    fix="use a longer calibration period or more customers",
                )
            ],
        )
