"""The Gamma-Gamma model of spend per purchase.

Fader, Hardie & Lee (2005), JMR 42(4); Fader & Hardie (2013), "The Gamma-Gamma
model of monetary value". Money is in the currency of the input.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import special

from analysis.errors import AnalysisError, Problem
from analysis.stats.btyd.mle import _compress, _fit_mle


def _gg_loglik(params, x, m):
    """Per-customer log-density of the mean spend m of x transactions (Fader & Hardie 2013, eq. 3)."""
    p, q, v = params
    px = p * x
    return (
        special.gammaln(px + q)
        - special.gammaln(px)
        - special.gammaln(q)
        + q * np.log(v)
        + (px - 1) * np.log(m)
        + px * np.log(x)
        - (px + q) * np.log(v + m * x)
    )


@dataclass
class GammaGammaResult:
    """A fitted Gamma-Gamma spend model (Fader, Hardie & Lee 2005 JMR; Fader & Hardie 2013).

    Attributes
    ----------
    params : pandas.Series
        p (shape of transaction values around a customer's mean), q and v (shape and
        scale of the distribution of customer means; v in currency).
    se, cov, loglik, n_customers
        As for :class:`BGNBDResult`. ``n_excluded`` counts repeaters dropped for a
        non-positive mean spend.
    """

    params: pd.Series
    se: pd.Series
    cov: pd.DataFrame
    loglik: float
    n_customers: int
    n_excluded: int = 0
    model: str = field(default="Gamma-Gamma")

    def population_mean_spend(self) -> float:
        """Return E(M) = p v / (q - 1), the mean transaction value of a random customer (currency)."""
        p, q, v = (float(self.params[k]) for k in ("p", "q", "v"))
        return p * v / (q - 1) if q > 1 else np.inf

    def conditional_expected_spend(self, frequency, monetary_value):
        """Return E(M | x, m_x) = (v + m_x x) p / (p x + q - 1) (Fader & Hardie 2013, eq. 5).

        Customers without repeat transactions (x = 0 or m_x missing) get the
        population mean p v / (q - 1). Currency units.
        """
        p, q, v = (float(self.params[k]) for k in ("p", "q", "v"))
        x = np.asarray(frequency, float)
        m = np.nan_to_num(np.asarray(monetary_value, float), nan=0.0)
        x = np.where(m > 0, x, 0.0)
        return (v + m * x) * p / (p * x + q - 1)


def fit_gamma_gamma(
    summary: pd.DataFrame, *, frequency="frequency", monetary_value="monetary_value"
) -> GammaGammaResult:
    """Fit the Gamma-Gamma model of mean transaction value by maximum likelihood.

    Uses customers with at least one repeat transaction and a positive mean value
    of repeat transactions (the spend definition of Fader & Hardie 2013: the first
    purchase is excluded). Identical (x, m_x) pairs are weighted.

    Parameters
    ----------
    summary : pandas.DataFrame
        Output of :func:`rfm_summary`.
    frequency, monetary_value : str
        Column names: repeat transactions and their mean value (currency).

    Returns
    -------
    GammaGammaResult

    Raises
    ------
    AnalysisError
        If fewer than 10 customers qualify or the fit fails; also if q <= 1 (infinite mean).
    """
    for c in (frequency, monetary_value):
        if c not in summary.columns:
            raise AnalysisError(f"summary lacks column {c!r}; build it with value.rfm_summary().")
    x = summary[frequency].to_numpy(dtype=float)
    m = summary[monetary_value].to_numpy(dtype=float)
    rep = x > 0
    use = rep & np.isfinite(m) & (m > 0)
    n_excl = int((rep & ~use).sum())
    if use.sum() < 10:
        raise AnalysisError(
            f"Gamma-Gamma: only {int(use.sum())} customers have repeat purchases with positive value.",
            [
                Problem(
                    "summary",
                    monetary_value,
                    "too_few_repeaters",
                    "need at least 10",
                    fix="use a longer calibration period",
                )
            ],
        )
    (ux, um), w = _compress(x[use], m[use])
    n = w.sum()
    xv, ix = np.unique(ux, return_inverse=True)
    nx = np.bincount(ix, weights=w, minlength=xv.size)
    log_m = np.log(um)
    log_x = np.log(ux)
    wx_logm = np.dot(w * ux, log_m)
    w_logm = np.dot(w, log_m)
    wx_logx = np.dot(w * ux, log_x)
    mx = um * ux

    def nll(theta):
        p, q, v = np.exp(theta)
        px = p * xv
        per_x = special.gammaln(px + q) - special.gammaln(px) - special.gammaln(q) + q * np.log(v)
        ll = (
            np.dot(nx, per_x)
            + p * wx_logm
            - w_logm
            + p * wx_logx
            - np.dot(w * (p * ux + q), np.log(v + mx))
        )
        return -ll / n

    def grad(theta):
        p, q, v = np.exp(theta)
        dg = special.digamma
        px = p * xv
        lv = np.log(v + mx)
        d_p = np.dot(nx * xv, dg(px + q) - dg(px)) + wx_logm + wx_logx - np.dot(w * ux, lv)
        d_q = np.dot(nx, dg(px + q)) - n * dg(q) + n * np.log(v) - np.dot(w, lv)
        d_v = n * q / v - np.dot(w * (p * ux + q), 1.0 / (v + mx))
        return -np.array([d_p, d_q, d_v]) * np.array([p, q, v]) / n

    mean_m = float(np.average(um, weights=w))
    starts = [(2.0, 3.0, mean_m), (6.0, 4.0, 2 * mean_m)]
    fit = _fit_mle(nll, ["p", "q", "v"], starts, n, "Gamma-Gamma", grad_mean=grad)
    if fit.params["q"] <= 1:
        raise AnalysisError(
            f"Gamma-Gamma: q = {fit.params['q']:.3f} <= 1, so the mean spend per customer is infinite.",
            [
                Problem(
                    "summary",
                    monetary_value,
                    "heavy_tail",
                    "spend distribution too heavy-tailed",
                    fix="check for outlying transaction values (e.g. bulk orders) before fitting",
                )
            ],
        )
    return GammaGammaResult(fit.params, fit.se, fit.cov, fit.loglik, fit.n_customers, n_excl)
