"""The package's one logistic fit (analysis.stats.logistic) against statsmodels' GLM."""

from __future__ import annotations

import numpy as np
import pytest
import statsmodels.api as sm
from numpy.testing import assert_allclose

from analysis.stats.classification import calibration_slope_intercept
from analysis.stats.logistic import logit_covariance, logit_newton


def _data(n=3000, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 2))
    off = rng.normal(0, 0.5, n)
    eta = -0.7 + x @ np.array([0.8, -0.4]) + off
    y = (rng.random(n) < 1 / (1 + np.exp(-eta))).astype(float)
    return np.column_stack([np.ones(n), x]), y, off


def _glm(z, y, offset=None):
    return sm.GLM(y, z, family=sm.families.Binomial(), offset=offset).fit(tol=1e-14, maxiter=100)


@pytest.mark.parametrize("with_offset", [False, True])
def test_logit_newton_and_covariance_equal_statsmodels_glm(with_offset):
    z, y, off = _data()
    offset = off if with_offset else None
    beta, p = logit_newton(z, y, offset=offset)
    ref = _glm(z, y, offset)
    assert_allclose(beta, ref.params, rtol=1e-9)
    assert_allclose(p, ref.fittedvalues, rtol=1e-9)
    # statsmodels' covariance uses the weights of its last IRLS step: equal to ~1e-8
    assert_allclose(logit_covariance(z, p), ref.cov_params(), rtol=1e-6)


def test_calibration_slope_intercept_equals_statsmodels_glm():
    rng = np.random.default_rng(3)
    n = 4000
    lp = rng.normal(-1.5, 1.2, n)
    y = (rng.random(n) < 1 / (1 + np.exp(-(0.3 + 0.8 * lp)))).astype(float)
    p = 1 / (1 + np.exp(-lp))
    slope, intercept, ci = calibration_slope_intercept(y, p)
    m1 = _glm(np.column_stack([np.ones(n), lp]), y)
    m0 = _glm(np.ones((n, 1)), y, offset=lp)
    assert slope == pytest.approx(m1.params[1], rel=1e-9)
    assert intercept == pytest.approx(m0.params[0], rel=1e-9)
    assert_allclose(ci["slope"], m1.conf_int()[1], rtol=1e-7)
    assert_allclose(ci["intercept"], m0.conf_int()[0], rtol=1e-7)
