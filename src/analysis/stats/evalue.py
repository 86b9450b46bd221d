"""E-values (VanderWeele & Ding 2017): how strong unmeasured confounding would have to be."""

from __future__ import annotations

import math
from dataclasses import dataclass

from analysis.errors import ParamsError

__all__ = ["EValue", "e_value"]


@dataclass(frozen=True)
class EValue:
    """E-values of VanderWeele & Ding (2017) for an estimate and its interval.

    Attributes
    ----------
    point : float
        Minimum strength of association, on the risk-ratio scale, that an
        unmeasured confounder would need with both treatment and outcome (beyond
        the measured covariates) to fully explain away the point estimate.
    ci : float
        The same for the confidence limit closest to the null (1 if the interval
        already includes the null).
    rr, rr_ci : float
        The estimate and the limit closest to the null, converted to risk ratios
        (for ``scale="HR"``, ``"OR"`` or ``"SMD"``) and oriented above 1.
    scale : str
        Scale of the input.
    """

    point: float
    ci: float
    rr: float
    rr_ci: float
    scale: str


def e_value(
    estimate: float,
    ci_lower: float | None = None,
    ci_upper: float | None = None,
    *,
    scale: str = "RR",
    rare: bool = True,
) -> EValue:
    """Compute E-values for an estimate and its confidence interval.

    The E-value (VanderWeele & Ding 2017, Annals of Internal Medicine 167:268)
    is the minimum strength of association, on the risk-ratio scale, that an
    unmeasured confounder would need to have with both the treatment and the
    outcome, conditional on the measured covariates, to fully explain away the
    observed association: ``E = RR + sqrt(RR * (RR - 1))`` for ``RR >= 1``
    (apply to ``1/RR`` when ``RR < 1``).

    Parameters
    ----------
    estimate, ci_lower, ci_upper : float
        Point estimate and interval on ``scale``.
    scale : {"RR", "HR", "OR", "SMD"}
        Risk ratio; hazard ratio; odds ratio; standardised mean difference
        (difference in means divided by the outcome's standard deviation).
    rare : bool
        For HR and OR: whether the outcome is rare (< 15% by the end of
        follow-up), in which case they approximate a risk ratio directly.
        Otherwise the conversions of VanderWeele (2017) are used:
        ``RR ~ sqrt(OR)``; ``RR ~ (1 - 0.5**sqrt(HR)) / (1 - 0.5**sqrt(1/HR))``.
        SMDs use ``RR ~ exp(0.91 * d)``.

    Returns
    -------
    EValue
        ``point`` and ``ci`` E-values.
    """
    scale = scale.upper()
    if scale not in ("RR", "HR", "OR", "SMD"):
        raise ParamsError(f"Unknown scale {scale!r}; use RR, HR, OR or SMD.")

    def to_rr(v):
        if v is None or (isinstance(v, float) and math.isnan(v)):
            return float("nan")
        if scale == "SMD":
            return math.exp(0.91 * v)
        if v <= 0:
            raise ParamsError(f"{scale} must be positive; got {v}.")
        if scale == "OR" and not rare:
            return math.sqrt(v)
        if scale == "HR" and not rare:
            return (1 - 0.5 ** math.sqrt(v)) / (1 - 0.5 ** math.sqrt(1 / v))
        return float(v)

    def ev(rr):
        if math.isnan(rr):
            return float("nan")
        rr = 1 / rr if rr < 1 else rr
        return rr + math.sqrt(rr * (rr - 1))

    rr = to_rr(estimate)
    lo, hi = to_rr(ci_lower), to_rr(ci_upper)
    if math.isnan(lo) and math.isnan(hi):
        rr_ci = float("nan")
    elif rr >= 1:
        rr_ci = lo if not math.isnan(lo) else float("nan")
        if rr_ci <= 1:
            rr_ci = 1.0
    else:
        rr_ci = hi if not math.isnan(hi) else float("nan")
        if rr_ci >= 1:
            rr_ci = 1.0
    oriented = 1 / rr if rr < 1 else rr
    oriented_ci = (1 / rr_ci if rr_ci < 1 else rr_ci) if not math.isnan(rr_ci) else float("nan")
    return EValue(point=ev(rr), ci=ev(rr_ci), rr=oriented, rr_ci=oriented_ci, scale=scale)
