"""IP-weighted survival curves and RMST, with influence-function or bootstrap intervals.

Each group's curve is a weighted Kaplan-Meier estimate with logistic propensity weights
(:func:`analysis.stats.logistic.logit_newton`); the analytic intervals add the propensity
model's estimation error to the weighted Greenwood term (M-estimation sandwich).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from analysis.stats.design import covariate_matrix
from analysis.stats.logistic import limit_threads, logit_newton, with_intercept

__all__ = ["SurvivalContrast", "weighted_survival"]


@dataclass(frozen=True)
class SurvivalContrast:
    """IP-weighted survival curves and contrasts at a horizon.

    Attributes
    ----------
    curves : pandas.DataFrame
        ``group`` (member / non-member), ``time_months``, ``survival``, with
        pointwise ``ci_lower`` / ``ci_upper``.
    summary : pandas.DataFrame
        One row per quantity: survival at the horizon for each group, their
        difference (members minus non-members, percentage points as a proportion),
        and RMST up to the horizon (months) and its difference, each with an
        analytic (influence-function) or bootstrap percentile interval.
    horizon : float
        Months after the landmark.
    n_boot : int
        Bootstrap replicates (propensity model refitted in each); 0 when the
        intervals are analytic.
    """

    curves: pd.DataFrame
    summary: pd.DataFrame
    horizon: float
    n_boot: int


def _weighted_km(time, event, w, grid):
    """Weighted Kaplan-Meier evaluated on ``grid`` (right-continuous step function)."""
    return _weighted_km_if(time, event, w, grid, influence=False)[0]


def _weighted_km_if(time, event, w, grid, *, influence=True):
    """Weighted Kaplan-Meier on ``grid`` and, optionally, each row's influence on it.

    Returns ``(surv, infl)`` where ``infl`` is an ``(n, len(grid))`` array with
    ``infl[i] = w_i * dS/dw_i`` (the influence of row ``i`` for fixed weights, so
    that ``sum(infl**2)`` is the weighted Greenwood variance), or None.
    """
    time = np.asarray(time, float)
    event = np.asarray(event, float)
    w = np.asarray(w, float)
    ut, inv = np.unique(time, return_inverse=True)
    deaths = np.bincount(inv, weights=w * event, minlength=ut.size)
    removed = np.bincount(inv, weights=w, minlength=ut.size)
    at_risk = np.cumsum(removed[::-1])[::-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        hazard = np.where(at_risk > 0, deaths / at_risk, 0.0)
    surv_t = np.cumprod(1 - hazard)
    pos = np.searchsorted(ut, grid, side="right") - 1
    surv = np.where(pos >= 0, surv_t[np.clip(pos, 0, None)], 1.0)
    if not influence:
        return surv, None
    # d log S(t) / d w_i = -[1{event_i, T_i <= t} / (R_i (1 - h_i)) - sum_{u_j <= min(t, T_i)} h_j / (R_j (1 - h_j))]
    with np.errstate(divide="ignore", invalid="ignore"):
        denom = at_risk * (1 - hazard)
        jump = np.where(denom > 0, 1.0 / denom, 0.0)
        step = np.where(denom > 0, hazard / denom, 0.0)
    cum = np.cumsum(step)
    posc = np.clip(pos, 0, None)
    # index of min(t, T_i) on the unique-time axis, per row and grid point
    upto = np.minimum(inv[:, None], posc[None, :])
    a = np.where(pos[None, :] >= 0, cum[upto], 0.0)
    ev_part = (event[:, None] > 0) & (inv[:, None] <= pos[None, :])
    dlog = -(np.where(ev_part, jump[inv][:, None], 0.0) - a)
    return surv, (w[:, None] * dlog) * surv[None, :]


def _rmst(grid, surv, horizon):
    g = grid[grid <= horizon]
    s = surv[..., : g.size]
    widths = np.diff(np.append(g, horizon))
    return np.sum(s * widths, axis=-1)


def weighted_survival(
    frame: pd.DataFrame,
    *,
    treatment: str = "member",
    covariates: Sequence[str],
    time: str = "time_months",
    event: str = "event",
    horizon: float = 6.0,
    estimand: str = "ATE",
    trim: float | None = None,
    se: str = "analytic",
    n_boot: int = 200,
    seed: int = 0,
    alpha: float = 0.05,
) -> SurvivalContrast:
    """Estimate IP-weighted survival curves for members and comparable non-members.

    Weights come from a logistic propensity model (ATE: ``1/e`` and ``1/(1-e)``;
    ATT: 1 and ``e/(1-e)``); each group's curve is a weighted Kaplan-Meier
    estimate. By default intervals are analytic: each customer's influence on
    the weighted Kaplan-Meier curve (the weighted Greenwood term) plus the
    propensity model's estimation error, propagated through the weights
    (M-estimation sandwich, as for IPW in :func:`analysis.stats.effects.estimate_effect`).
    ``se="bootstrap"`` gives percentile intervals over customers instead,
    refitting the propensity model in each of ``n_boot`` replicates (slow on
    large data; kept as the independent check used in the tests).

    Parameters
    ----------
    frame : pandas.DataFrame
        One row per customer at the landmark, e.g. from
        :func:`analysis.studies.loyalty.landmark_frame`.
    treatment, time, event : str
        Columns: treatment (0/1), months since the landmark, churn indicator.
    covariates : sequence of str
        Confounders for the propensity model.
    horizon : float
        Months after the landmark for survival and RMST contrasts.
    estimand : {"ATE", "ATT"}
    trim : float, optional
        Propensity trimming as in :func:`analysis.stats.effects.estimate_effect`.
    se : {"analytic", "bootstrap"}
        How intervals are computed.
    n_boot : int
        Bootstrap replicates (``se="bootstrap"`` only).
    seed : int
        Seed of the bootstrap.
    alpha : float
        1 - confidence level.

    Returns
    -------
    SurvivalContrast
    """
    if se not in ("analytic", "bootstrap"):
        raise ValueError(f"se must be 'analytic' or 'bootstrap', got {se!r}")
    df = frame.reset_index(drop=True)
    grid = np.linspace(0, horizon, int(round(horizon * 4)) + 1)
    x_all = covariate_matrix(df, list(covariates)).to_numpy(float)
    t_all = df[treatment].to_numpy(float)
    time_all = df[time].to_numpy(float)
    ev_all = df[event].to_numpy(float)
    z = stats.norm.ppf(1 - alpha / 2)

    def weights(e, t):
        keep = np.ones(len(t), bool) if trim is None else (e >= trim) & (e <= 1 - trim)
        if estimand == "ATE":
            w = np.where(t == 1, 1 / e, 1 / (1 - e))
            dw = np.where(t == 1, -(1 - e) / e, e / (1 - e))
        else:
            w = np.where(t == 1, 1.0, e / (1 - e))
            dw = np.where(t == 1, 0.0, e / (1 - e))
        return w * keep, dw * keep

    def one(idx):
        x, t, tt, ev = x_all[idx], t_all[idx], time_all[idx], ev_all[idx]
        _, e = logit_newton(with_intercept(x), t)
        w, _ = weights(e, t)
        s1 = _weighted_km(tt[t == 1], ev[t == 1], w[t == 1], grid)
        s0 = _weighted_km(tt[t == 0], ev[t == 0], w[t == 0], grid)
        return s1, s0

    rm = lambda s: _rmst(grid, s, horizon)  # noqa: E731
    with limit_threads(len(df), user_api=None):
        if se == "bootstrap":
            s1, s0 = one(np.arange(len(df)))
            rng = np.random.default_rng(seed)
            boots = [one(rng.integers(0, len(df), len(df))) for _ in range(n_boot)]
            b1 = np.array([b[0] for b in boots])
            b0 = np.array([b[1] for b in boots])
            q = [100 * alpha / 2, 100 * (1 - alpha / 2)]
            bands = {
                "member": np.percentile(b1, q, axis=0),
                "non-member": np.percentile(b0, q, axis=0),
            }

            def interval(est, draws):
                return tuple(np.percentile(draws, q))

            d1, d0 = b1, b0  # bootstrap replicates of each curve
        else:
            zmat = with_intercept(x_all)
            _, e = logit_newton(zmat, t_all)
            w, dw = weights(e, t_all)
            # logistic score contributions mapped to coefficient influence: H^-1 z_i (t_i - e_i)
            hess = (zmat * (e * (1 - e))[:, None]).T @ zmat
            score = (zmat * (t_all - e)[:, None]).T
            try:
                if_gamma = np.linalg.solve(hess, score).T
            except np.linalg.LinAlgError:
                # (quasi-)separation: some covariate pattern is all members or all non-members,
                # so the information matrix is singular; the pseudo-inverse gives the minimum-norm
                # influence (the fitted propensities there are 0/1 and carry no weight anyway)
                if_gamma = (np.linalg.pinv(hess) @ score).T
            infl = {}
            curves_est = {}
            for name, g in (("member", t_all == 1), ("non-member", t_all == 0)):
                s, inf = _weighted_km_if(time_all[g], ev_all[g], w[g], grid)
                with np.errstate(divide="ignore", invalid="ignore"):
                    dsdw = np.where(w[g][:, None] > 0, inf / w[g][:, None], 0.0)
                grad = (zmat[g] * dw[g][:, None]).T @ dsdw  # dS/dgamma, (k, grid)
                full = if_gamma @ grad
                full[g] += inf
                infl[name] = full
                curves_est[name] = s
            s1, s0 = curves_est["member"], curves_est["non-member"]
            sd = {k: np.sqrt(np.sum(v**2, axis=0)) for k, v in infl.items()}
            bands = {
                k: np.vstack([curves_est[k] - z * sd[k], curves_est[k] + z * sd[k]]).clip(0, 1)
                for k in infl
            }

            def interval(est, draws):
                half = z * float(np.sqrt(np.sum(draws**2)))
                return est - half, est + half

            d1, d0 = infl["member"], infl["non-member"]  # per-customer influence on each curve
    # each quantity with its replicates (bootstrap) or influence values (analytic)
    summ = {
        "survival_member": (s1[-1], d1[:, -1]),
        "survival_non_member": (s0[-1], d0[:, -1]),
        "survival_difference": (s1[-1] - s0[-1], d1[:, -1] - d0[:, -1]),
        "rmst_member": (rm(s1), rm(d1)),
        "rmst_non_member": (rm(s0), rm(d0)),
        "rmst_difference": (rm(s1) - rm(s0), rm(d1) - rm(d0)),
    }
    curves = pd.concat(
        [
            pd.DataFrame(
                {
                    "group": name,
                    "time_months": grid,
                    "survival": s,
                    "ci_lower": bands[name][0],
                    "ci_upper": bands[name][1],
                }
            )
            for name, s in (("member", s1), ("non-member", s0))
        ],
        ignore_index=True,
    )
    units = {"survival": "proportion", "rmst": "months"}
    rows = []
    for name, (est, draws) in summ.items():
        lo, hi = interval(est, draws)
        rows.append(
            {
                "quantity": name,
                "estimate": float(est),
                "ci_lower": float(lo),
                "ci_upper": float(hi),
                "unit": units[name.split("_")[0]],
            }
        )
    return SurvivalContrast(
        curves=curves,
        summary=pd.DataFrame(rows),
        horizon=horizon,
        n_boot=n_boot if se == "bootstrap" else 0,
    )
