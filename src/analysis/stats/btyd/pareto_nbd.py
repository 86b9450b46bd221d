"""The Pareto/NBD model of repeat purchasing.

Schmittlein, Morrison & Colombo (1987); likelihood as in Fader & Hardie (2005),
"A note on deriving the Pareto/NBD model and related expressions". Fitted by
maximum likelihood on compressed sufficient statistics, with standard errors from
the inverse Hessian. Times are in units of the summary's ``freq``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import special

from analysis.stats.btyd.bgnbd import _PerCustomerPredictions, _require_repeaters
from analysis.stats.btyd.mle import _compress, _fit_mle, _summary_arrays


def _log_hyp2f1(a, b, c, z):
    with np.errstate(all="ignore"):
        return np.log(special.hyp2f1(a, b, c, z))


class _PairIndex:
    """Distinct x values and (x, t_x), (x, T) pairs of per-customer arrays, with the gathers back.

    The hypergeometric terms of the Pareto/NBD likelihood and of the BG/NBD
    conditional expectation depend on only two of (x, t_x, T). Evaluating them once
    per distinct pair and gathering gives exactly the per-customer values (the same
    element-wise operations on the same numbers) at a fraction of the cost: the
    number of distinct pairs grows far more slowly than the number of customers.
    """

    def __init__(self, x, tx, T):
        x, tx, T = np.broadcast_arrays(
            np.asarray(x, float), np.asarray(tx, float), np.asarray(T, float)
        )
        self.shape = x.shape
        self.x, self.tx, self.T = x.ravel(), tx.ravel(), T.ravel()
        cx, xv = pd.factorize(self.x, sort=False, use_na_sentinel=False)
        ctx, txv = pd.factorize(self.tx, sort=False, use_na_sentinel=False)
        cT, Tv = pd.factorize(self.T, sort=False, use_na_sentinel=False)
        self.xv, self.i_x = np.asarray(xv, float), cx
        self.x_tx, self.i_tx = _distinct_pairs(cx, self.xv, ctx, np.asarray(txv, float))
        self.x_T, self.i_T = _distinct_pairs(cx, self.xv, cT, np.asarray(Tv, float))


def _distinct_pairs(code_a, values_a, code_b, values_b):
    """Return ((a, b) of each distinct code pair, index of each row's pair)."""
    nb = max(len(values_b), 1)
    key = code_a.astype(np.int64) * nb + code_b
    uk, inv = np.unique(key, return_inverse=True)
    return (values_a[uk // nb], values_b[uk % nb]), inv.reshape(-1)


def _pnbd_log_parts(params, x, tx, T, pairs: _PairIndex | None = None):
    """Return (log term_alive, log term_dead) of the Pareto/NBD likelihood without the common factor.

    Likelihood (Fader & Hardie 2005 note, eq. 19-22):
    L = Gamma(r+x) alpha^r beta^s / Gamma(r) * [ (alpha+T)^-(r+x) (beta+T)^-s + s/(r+s+x) * A0 ].
    ``pairs`` (built from the same x, t_x, T) lets every term that depends on x and
    one of t_x, T be evaluated once per distinct pair and gathered.
    """
    r, alpha, s, beta = params
    if pairs is None:
        pairs = _PairIndex(x, tx, T)
    (x1, tx1), (x2, T2) = pairs.x_tx, pairs.x_T
    log_alive = (-(r + x2) * np.log(alpha + T2) - s * np.log(beta + T2))[pairs.i_T]
    if alpha >= beta:
        base = alpha
        z1 = (alpha - beta) / (alpha + tx1)
        z2 = (alpha - beta) / (alpha + T2)
        h1 = _log_hyp2f1(r + s + x1, s + 1.0, r + s + x1 + 1, z1)
        h2 = _log_hyp2f1(r + s + x2, s + 1.0, r + s + x2 + 1, z2)
    else:
        base = beta
        z1 = (beta - alpha) / (beta + tx1)
        z2 = (beta - alpha) / (beta + T2)
        h1 = _log_hyp2f1(r + s + x1, r + x1, r + s + x1 + 1, z1)
        h2 = _log_hyp2f1(r + s + x2, r + x2, r + s + x2 + 1, z2)
    la1 = (h1 - (r + s + x1) * np.log(base + tx1))[pairs.i_tx]
    la2 = (h2 - (r + s + x2) * np.log(base + T2))[pairs.i_T]
    with np.errstate(all="ignore"):
        diff = la2 - la1
        log_a0 = la1 + np.log1p(-np.exp(np.minimum(diff, 0.0)))
    log_a0 = np.where(
        diff >= 0, -np.inf, log_a0
    )  # t_x == T: no time to die after the last purchase
    log_dead = (np.log(s) - np.log(r + s + pairs.xv))[pairs.i_x] + log_a0
    return log_alive.reshape(pairs.shape), log_dead.reshape(pairs.shape)


def _pnbd_loglik(params, x, tx, T, pairs: _PairIndex | None = None):
    r, alpha, s, beta = params
    if pairs is None:
        pairs = _PairIndex(x, tx, T)
    xv = pairs.xv
    common = special.gammaln(r + xv) - special.gammaln(r) + r * np.log(alpha) + s * np.log(beta)
    la, ld = _pnbd_log_parts(params, x, tx, T, pairs)
    return common[pairs.i_x].reshape(pairs.shape) + np.logaddexp(la, ld)


@dataclass
class ParetoNBDResult(_PerCustomerPredictions):
    """A fitted Pareto/NBD model (Schmittlein, Morrison & Colombo 1987).

    Attributes
    ----------
    params : pandas.Series
        r, alpha (transaction-rate gamma shape and scale), s, beta (dropout-rate gamma
        shape and scale); alpha and beta in units of ``freq``.
    se, cov, loglik, n_customers, freq
        As for :class:`BGNBDResult`.
    """

    params: pd.Series
    se: pd.Series
    cov: pd.DataFrame
    loglik: float
    n_customers: int
    freq: str = "W"
    model: str = field(default="Pareto/NBD")

    def _p(self):
        return tuple(float(self.params[k]) for k in ("r", "alpha", "s", "beta"))

    def expected_transactions(self, t):
        """Return E[X(t)] for a new customer (Fader & Hardie 2005 note, eq. 17); ``t`` in ``freq`` units."""
        r, alpha, s, beta = self._p()
        t = np.asarray(t, dtype=float)
        if abs(s - 1) < 1e-8:
            return r * beta / alpha * np.log((beta + t) / beta)
        return r * beta / (alpha * (s - 1)) * (1 - (beta / (beta + t)) ** (s - 1))

    def p_alive(self, frequency, recency, T):
        """Return P(alive at T | x, t_x, T) (Fader & Hardie 2005 note, eq. 18)."""
        la, ld = _pnbd_log_parts(self._p(), frequency, recency, T)
        return np.exp(la - np.logaddexp(la, ld))

    def conditional_expected_transactions(self, t, frequency, recency, T):
        """Return E[Y(t) | x, t_x, T], expected transactions in (T, T + t] (SMC 1987; FH note eq. 21)."""
        r, alpha, s, beta = self._p()
        x = np.asarray(frequency, float)
        TT = np.asarray(T, float)
        t = np.asarray(t, float)
        if abs(s - 1) < 1e-8:
            f = (beta + TT) * np.log((beta + TT + t) / (beta + TT))
        else:
            f = (beta + TT) / (s - 1) * (1 - ((beta + TT) / (beta + TT + t)) ** (s - 1))
        return (r + x) / (alpha + TT) * f * self.p_alive(x, recency, TT)

    def _conditional_path(self, ends, pairs: _PairIndex) -> tuple[np.ndarray, np.ndarray]:
        # The same arithmetic as conditional_expected_transactions, per distinct (x, T).
        r, alpha, s, beta = self._p()
        la, ld = _pnbd_log_parts(self._p(), pairs.x, pairs.tx, pairs.T, pairs)
        pa = np.exp(la - np.logaddexp(la, ld))
        x, TT = pairs.x_T
        cum = np.empty((pairs.x.size, len(ends)))
        for j, t in enumerate(ends):
            t = np.asarray(t, float)
            if abs(s - 1) < 1e-8:
                f = (beta + TT) * np.log((beta + TT + t) / (beta + TT))
            else:
                f = (beta + TT) / (s - 1) * (1 - ((beta + TT) / (beta + TT + t)) ** (s - 1))
            cum[:, j] = ((r + x) / (alpha + TT) * f)[pairs.i_T] * pa
        return pa, cum


def fit_pareto_nbd(
    summary: pd.DataFrame, *, frequency="frequency", recency="recency", T="T"
) -> ParetoNBDResult:
    """Fit the Pareto/NBD model by maximum likelihood.

    The log-likelihood is computed in log space with scipy's Gauss hypergeometric
    function, choosing the series argument (alpha >= beta or not) that keeps it in
    [0, 1), and taking the difference of the two hypergeometric terms with
    ``log1p`` to avoid cancellation. Identical (x, t_x, T) rows are weighted.

    Parameters
    ----------
    summary : pandas.DataFrame
        Output of :func:`rfm_summary`.
    frequency, recency, T : str
        Column names (units of the summary's freq).

    Returns
    -------
    ParetoNBDResult

    Raises
    ------
    AnalysisError
        If the fit does not converge or the Hessian is singular.
    """
    x, tx, TT = _summary_arrays(summary, frequency, recency, T)
    _require_repeaters(x, "Pareto/NBD")
    (ux, utx, uT), w = _compress(x, tx, TT)
    n = w.sum()
    pairs = _PairIndex(ux, utx, uT)

    def nll(theta):
        return -np.dot(w, _pnbd_loglik(np.exp(theta), ux, utx, uT, pairs)) / n

    scale = max(float(np.mean(TT)), 1e-3)
    starts = [(1.0, scale / 4, 1.0, scale / 4), (0.5, scale / 2, 0.5, scale)]
    m = _fit_mle(nll, ["r", "alpha", "s", "beta"], starts, n, "Pareto/NBD")
    return ParetoNBDResult(
        m.params, m.se, m.cov, m.loglik, m.n_customers, summary.attrs.get("freq", "W")
    )
