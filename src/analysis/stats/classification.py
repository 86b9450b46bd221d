"""Evaluation of a binary classifier's predicted probabilities.

ROC AUC (with a case-weighted form that sorts once for the bootstrap),
permutation importance, calibration (binned with Wilson intervals; slope and
intercept) and gains by group of predicted risk.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


class _AUCRanks:
    """ROC AUC of fixed scores and outcomes under any case weights, sorting once.

    AUC is the Mann-Whitney probability that a random event scores above a random
    non-event, ties counting one half; it equals the area under the ROC curve that
    ``sklearn.metrics.roc_auc_score`` integrates (to rounding). A bootstrap
    resample is the original cases with integer weights, so all resamples share
    one sort of the scores.
    """

    def __init__(self, scores, y):
        scores = np.asarray(scores, float)
        self.order = np.argsort(scores)  # order within ties does not matter
        s = scores[self.order]
        self.y = np.asarray(y, float)[self.order]
        tie = s[1:] == s[:-1]
        if tie.any():
            new = np.r_[True, ~tie]
            self.group = np.cumsum(new) - 1  # tie group of each sorted case
        else:
            self.group = None

    def auc(self, weights=None) -> float:
        """Return the AUC under case weights (original order); NaN without both outcomes."""
        if weights is None:
            w = np.ones(self.y.size)
        else:
            w = np.asarray(weights, float)[self.order]
        pos = w * self.y
        neg = w - pos
        if self.group is not None:
            k = int(self.group[-1]) + 1
            pos = np.bincount(self.group, weights=pos, minlength=k)
            neg = np.bincount(self.group, weights=neg, minlength=k)
        n_pos, n_neg = pos.sum(), neg.sum()
        if n_pos <= 0 or n_neg <= 0:
            return np.nan
        below = np.cumsum(neg) - neg
        return float(np.dot(pos, below + 0.5 * neg) / (n_pos * n_neg))


def _auc(y, scores) -> float:
    return _AUCRanks(scores, y).auc()


def _transformed_blocks(pre, features, width: int):
    """Return the output columns of each input feature of a fitted ColumnTransformer.

    Handles the churn-risk preprocessing (a per-column numeric pipeline and a
    one-hot encoder without dropped levels); returns None for anything else, so
    the caller falls back to transforming each permuted frame.
    """
    try:
        blocks = {}
        for name, trans, cols in pre.transformers_:
            if name == "remainder" or trans == "drop" or not len(cols):
                continue
            sl = pre.output_indices_[name]
            if name == "num":
                kept = [str(c) for c in trans.get_feature_names_out(list(cols))]
                if len(kept) != sl.stop - sl.start:
                    return None
                for j, c in enumerate(kept):
                    blocks[c] = [sl.start + j]
            elif name == "cat":
                if getattr(trans, "drop_idx_", None) is not None:
                    return None
                start = sl.start
                infrequent = getattr(trans, "infrequent_categories_", [None] * len(cols))
                for c, cats, inf in zip(cols, trans.categories_, infrequent, strict=True):
                    k = len(cats) - (0 if inf is None else len(inf) - 1)
                    blocks[c] = list(range(start, start + k))
                    start += k
                if start != sl.stop:
                    return None
            else:
                return None
        if max((j for b in blocks.values() for j in b), default=-1) >= width:
            return None
        return {f: blocks.get(f, []) for f in features}
    except (AttributeError, KeyError, TypeError, ValueError):
        return None


def _permutation_importance(model, X, y, features, *, n_repeats, seed):
    """Return the drop in test ROC AUC when each feature is shuffled (mean and sd over repeats).

    Preprocessing acts row by row, so shuffling a feature's rows before or after it
    gives the same design matrix: the test frame is transformed once and each
    feature's output columns are shuffled there (many times faster than
    transforming a permuted frame for every repeat).
    """
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(seed)
    pre, clf = model[:-1], model[-1]
    Xt = np.asarray(pre.transform(X), dtype=float)
    p0 = clf.predict_proba(Xt)[:, 1]
    base = roc_auc_score(y, p0)
    blocks = _transformed_blocks(model[0], features, Xt.shape[1]) if len(model) == 2 else None
    rows = []
    for f in features:
        drops = []
        for _ in range(n_repeats):
            perm = rng.permutation(len(X))
            if blocks is not None:
                cols = blocks[f]
                saved = Xt[:, cols].copy()
                Xt[:, cols] = saved[perm]
                p = clf.predict_proba(Xt)[:, 1] if cols else p0
                Xt[:, cols] = saved
            else:
                Xp = X.copy()
                Xp[f] = X[f].to_numpy()[perm]
                p = model.predict_proba(Xp)[:, 1]
            drops.append(base - _auc(y, p))
        rows.append({"feature": f, "importance": float(np.mean(drops)), "sd": float(np.std(drops))})
    return pd.DataFrame(rows).sort_values("importance", ascending=False).reset_index(drop=True)


def calibration_table(y, p, *, n_bins: int = 10) -> pd.DataFrame:
    """Bin predicted probabilities into equal-count groups and compare them with observed rates.

    Cases are sorted by ``p`` (stable sort) and case of rank ``i`` (0-based) goes
    to bin ``floor(i * n_bins / n) + 1``, so bins differ in size by at most one
    and tied predictions may fall into neighbouring bins. With fewer cases than
    bins some bins are empty and have no row.

    Parameters
    ----------
    y : array-like
        Observed 0/1 outcome per case, ``(n,)``.
    p : array-like
        Predicted probability of the outcome per case, ``(n,)``.
    n_bins : int
        Number of bins (10: deciles of predicted risk).

    Returns
    -------
    pandas.DataFrame
        One row per non-empty bin, lowest predictions first: ``bin`` (1 = lowest),
        ``n`` (cases), ``mean_predicted`` (mean of ``p``), ``observed`` (share of
        cases with ``y = 1``), ``ci_lower``, ``ci_upper`` (95% Wilson interval of
        the observed share).
    """
    from statsmodels.stats.proportion import proportion_confint

    y = np.asarray(y, float)
    p = np.asarray(p, float)
    order = np.argsort(p, kind="stable")
    bins = np.empty(p.size, int)
    bins[order] = np.floor(np.arange(p.size) * n_bins / p.size).astype(int)
    df = pd.DataFrame({"bin": bins + 1, "y": y, "p": p})
    out = (
        df.groupby("bin")
        .agg(n=("y", "size"), mean_predicted=("p", "mean"), events=("y", "sum"))
        .reset_index()
    )
    out["observed"] = out["events"] / out["n"]
    lo, hi = proportion_confint(out["events"], out["n"], method="wilson")
    out["ci_lower"], out["ci_upper"] = np.asarray(lo), np.asarray(hi)
    return out[["bin", "n", "mean_predicted", "observed", "ci_lower", "ci_upper"]]


def calibration_slope_intercept(y, p) -> tuple[float, float, dict]:
    """Return the calibration slope and intercept of predicted probabilities, with 95% CIs.

    Slope: coefficient of logit(p) in a logistic regression of the outcome on
    logit(p) (1 = well calibrated; < 1 = predictions too extreme). Intercept:
    calibration-in-the-large, the intercept with logit(p) as an offset (0 = the
    average risk is right). Both are fitted by the package's logistic fit
    (:func:`analysis.stats.logistic.logit_newton`); intervals are Wald intervals
    from the inverse Fisher information (as statsmodels' GLM gives them).

    Parameters
    ----------
    y : array-like
        Observed 0/1 outcome per case, ``(n,)``.
    p : array-like
        Predicted probability per case, ``(n,)``; clipped to [1e-6, 1 - 1e-6]
        before taking logits.

    Returns
    -------
    (float, float, dict)
        ``slope``, ``intercept`` and their 95% Wald intervals,
        ``{"slope": (lower, upper), "intercept": (lower, upper)}``. Without both
        outcomes the fits do not converge (a RuntimeWarning) and the values are
        meaningless.
    """
    from scipy import stats

    from analysis.stats.logistic import logit_covariance, logit_newton

    y = np.asarray(y, float)
    p = np.clip(np.asarray(p, float), 1e-6, 1 - 1e-6)
    lp = np.log(p / (1 - p))
    q = stats.norm.ppf(0.975)
    z1 = np.column_stack([np.ones(y.size), lp])
    b1, fit1 = logit_newton(z1, y)
    z0 = np.ones((y.size, 1))
    b0, fit0 = logit_newton(z0, y, offset=lp)
    se1 = float(np.sqrt(logit_covariance(z1, fit1)[1, 1]))
    se0 = float(np.sqrt(logit_covariance(z0, fit0)[0, 0]))
    slope, intercept = float(b1[1]), float(b0[0])
    return (
        slope,
        intercept,
        {
            "slope": (slope - q * se1, slope + q * se1),
            "intercept": (intercept - q * se0, intercept + q * se0),
        },
    )


def gains_table(y, p, *, n_groups: int = 10) -> pd.DataFrame:
    """Tabulate lift and gains by equal-count group of predicted risk, highest risk first.

    Cases are sorted by decreasing ``p`` (stable sort) and case of rank ``i``
    (0-based) goes to group ``floor(i * n_groups / n) + 1``; groups differ in
    size by at most one.

    Parameters
    ----------
    y : array-like
        Observed 0/1 outcome (1 = churned) per case, ``(n,)``.
    p : array-like
        Predicted probability of the outcome per case, ``(n,)``.
    n_groups : int
        Number of groups (10: deciles of predicted risk).

    Returns
    -------
    pandas.DataFrame
        ``group`` (1 = highest risk), ``n``, ``churners``, ``churn_rate``, ``lift``
        (rate / overall rate; NaN when nobody churned), ``cum_share_customers``,
        ``cum_share_churners`` (gains: shares of all cases and of all churners in
        this and the higher-risk groups).
    """
    y = np.asarray(y, float)
    p = np.asarray(p, float)
    order = np.argsort(-p, kind="stable")
    grp = np.empty(p.size, int)
    grp[order] = np.floor(np.arange(p.size) * n_groups / p.size).astype(int) + 1
    df = pd.DataFrame({"group": grp, "y": y})
    out = df.groupby("group").agg(n=("y", "size"), churners=("y", "sum")).reset_index()
    out["churn_rate"] = out["churners"] / out["n"]
    base = y.mean() if y.size else np.nan
    out["lift"] = out["churn_rate"] / base if base > 0 else np.nan
    out["cum_share_customers"] = out["n"].cumsum() / out["n"].sum()
    out["cum_share_churners"] = out["churners"].cumsum() / max(out["churners"].sum(), 1e-12)
    return out
