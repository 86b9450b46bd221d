"""The purchase models of the value study: BG/NBD, Pareto/NBD and Gamma-Gamma, each optional.

Each model is fitted with :func:`fit_section`, which returns the fitted model or a
:class:`~analysis.studies.sections.Skipped` that says in words why the data cannot
support it. A likelihood whose maximum lies on the edge of the parameter space
(:class:`~analysis.stats.btyd.mle.BoundaryFit`) is worded by what the edge means:
no dropout visible in the calibration period, every customer buying at the same
rate, or every purchase having the same value (a fixed price).
"""

from __future__ import annotations

import numpy as np

from analysis.errors import AnalysisError
from analysis.stats.btyd.mle import BoundaryFit
from analysis.studies.sections import Skipped, skipped_from

#: Report-facing names of the models.
SECTION = {
    "bgnbd": "Purchase model (BG/NBD)",
    "pareto_nbd": "Purchase model (Pareto/NBD)",
    "gamma_gamma": "Spend-per-purchase model (Gamma-Gamma)",
}

_DROPOUT = {"BG/NBD": ("a", "b"), "Pareto/NBD": ("s", "beta")}


def boundary_reason(exc: BoundaryFit, *, data: str) -> tuple[str, str]:
    """Return (reason, remedy) in plain words for a fit that ended on a boundary."""
    edge = exc.at_edge
    model = exc.model
    drop = _DROPOUT.get(model)
    if drop and (edge.get(drop[0]) == "zero" or edge.get(drop[1]) == "infinity"):
        return (
            f"The {model} model found no customers silently lapsing in the {data}: its estimate of "
            "the chance of dropping out went to zero (a boundary), so it cannot say who has "
            "stopped buying. This is typical of subscriptions, where customers pay every period "
            "until they cancel",
            "Customer value then comes from another model where one fits (the contract-renewal "
            "model, where contracts end with a churn date), or else from observed revenue.",
        )
    if model in _DROPOUT and ("r" in edge or "alpha" in edge):
        return (
            f"The {model} model found that customers in the {data} all buy at much the same "
            "rate: its estimate of the spread of purchase rates went to a boundary, so it "
            "cannot be estimated. This is typical of regular billing (one charge a period)",
            "Customer value then comes from another model where one fits, or else from "
            "observed revenue.",
        )
    if model == "Gamma-Gamma":
        return (
            "Spend per purchase hardly varies, within or between customers (for example one "
            "fixed price), so the spend model's estimates went to a boundary",
            "Each customer's own average spend is used instead.",
        )
    return (
        f"The {model} model's estimates went to the edge of their range on the {data}, so it "
        "cannot be estimated",
        "More customers or a longer history usually allow it.",
    )


def fit_section(key: str, fit, summary, *, data: str):
    """Fit one purchase model; return it, or a :class:`Skipped` explaining why not.

    Parameters
    ----------
    key : {"bgnbd", "pareto_nbd", "gamma_gamma"}
        Which model (names the section).
    fit : callable
        The fitter, called as ``fit(summary)``.
    summary : pandas.DataFrame
        RFM summary.
    data : str
        Words for the data it is fitted on ("calibration period", "whole history").
    """
    try:
        model = fit(summary)
        bad = _unusable_predictions(model, summary)
        if bad:
            return Skipped(
                SECTION[key],
                f"The model's estimates ran to extreme values on the {data}, so its "
                f"predictions for {bad:,} customers cannot be computed",
                "More customers or a longer history usually allow it.",
                detail=", ".join(f"{k} = {v:.4g}" for k, v in model.params.items()),
            )
        return model
    except MemoryError:
        raise
    except BoundaryFit as exc:
        reason, remedy = boundary_reason(exc, data=data)
        return Skipped(SECTION[key], reason, remedy, detail=exc.summary)
    except AnalysisError as exc:
        sk = skipped_from(SECTION[key], exc)
        return Skipped(SECTION[key], sk.reason, sk.remedy, detail=exc.summary)
    except Exception as exc:  # noqa: BLE001 - one model must not fail the report
        return skipped_from(SECTION[key], exc)


def _unusable_predictions(model, summary) -> int:
    """Return how many customers a fitted purchase model gives no finite prediction (0: fine).

    A fit whose estimates run to very large values (e.g. a BG/NBD with a and b in the tens of
    thousands: dropout with no spread between customers) converges, but its per-customer
    predictions overflow to NaN; it must not value anyone.
    """
    if not hasattr(model, "p_alive") or not {"frequency", "recency", "T"} <= set(summary.columns):
        params = np.asarray(getattr(model, "params", []), dtype=float)
        return 0 if np.isfinite(params).all() else len(summary)
    with np.errstate(all="ignore"):
        pa = np.asarray(
            model.p_alive(summary["frequency"], summary["recency"], summary["T"]), dtype=float
        )
        ex = np.asarray(
            model.conditional_expected_transactions(
                1.0, summary["frequency"], summary["recency"], summary["T"]
            ),
            dtype=float,
        )
    return int((~np.isfinite(pa) | ~np.isfinite(ex)).sum())


def fitted(x) -> bool:
    """Return True if ``x`` is a fitted model (not None, not a :class:`Skipped`)."""
    return x is not None and not isinstance(x, Skipped)
