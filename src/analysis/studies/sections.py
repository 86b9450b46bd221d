"""A report section whose model cannot be estimated on this data.

A study computes several sections (a Cox model, a propensity model, a
likelihood fit ...). When the data cannot support one of them, for example
no churn events, a design whose factors never vary, or a likelihood that does
not converge, the study keeps every other section and puts a :class:`Skipped`
in the failed section's place. The report layer shows its plain sentence
(what could not be estimated, why, and what data would allow it) and the
runner lists the skipped sections on the index; the run's status stays "ok".

:func:`attempt` runs one section and turns its failure into a :class:`Skipped`;
:func:`explain` words the common causes; :class:`NotEstimable` is what study
code raises when it detects the cause itself.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

from analysis.errors import AnalysisError

log = logging.getLogger(__name__)

T = TypeVar("T")

_GENERIC_REMEDY = "More customers, or a longer history, would usually allow it."


class NotEstimable(AnalysisError):
    """A model that this data cannot support, with a plain reason and what would allow it.

    Parameters
    ----------
    reason : str
        One plain sentence: what cannot be estimated and why.
    remedy : str, optional
        What data would allow it.
    """

    def __init__(self, reason: str, *, remedy: str = ""):
        super().__init__(reason)
        self.reason = reason
        self.remedy = remedy


@dataclass(frozen=True)
class Skipped:
    """A section left out because its model could not be estimated on this data.

    Parameters
    ----------
    section : str
        Human name of the section, e.g. ``"Cox model of churn drivers"``.
    reason : str
        One plain sentence: what could not be estimated and why.
    remedy : str
        What data would allow it.
    detail : str
        Technical message (the exception), for the analysts' appendix.
    """

    section: str
    reason: str
    remedy: str = ""
    detail: str = ""

    def sentence(self) -> str:
        """Return the reason and the remedy as one plain paragraph."""
        parts = [_sentence(self.reason)]
        if self.remedy:
            parts.append(_sentence(self.remedy))
        return " ".join(parts)

    def record(self) -> dict[str, str]:
        """Return the JSON-safe record the runner lists on the index."""
        return {"section": self.section, "reason": self.sentence()}

    def __bool__(self) -> bool:  # a skipped section is "nothing to show"
        return False


def _sentence(text: str) -> str:
    text = str(text).strip()
    if text and text[-1] not in ".!?":
        text += "."
    return text[:1].upper() + text[1:]


def is_skipped(x: Any) -> bool:
    """Return True if ``x`` is a :class:`Skipped` section."""
    return isinstance(x, Skipped)


_PROGRAMMING_ERRORS = (TypeError, AttributeError, NameError, KeyError, IndexError, AssertionError)


def explain(exc: BaseException) -> tuple[str, str]:
    """Return a plain reason and remedy for why a model failed.

    Parameters
    ----------
    exc : BaseException
        The exception a model raised.

    Returns
    -------
    tuple of str
        ``(reason, remedy)``: one plain sentence each.
    """
    if isinstance(exc, NotEstimable):
        return exc.reason, exc.remedy or _GENERIC_REMEDY
    msg = str(exc).lower()
    if isinstance(exc, np.linalg.LinAlgError) or "singular" in msg or "collinear" in msg:
        return (
            "The model could not separate the factors it adjusts for: in this data some of them "
            "never vary, or always move together",
            "More customers, or more variety in the adjusted factors (for example both values of "
            "every attribute in each group), would allow it.",
        )
    if "no churn" in msg or "no events" in msg or "no event" in msg:
        return (
            "No customer left during the period this model looks at, so there is nothing to "
            "estimate a churn effect from",
            "It needs churn events: a longer history, or a period in which some customers leave.",
        )
    if "converge" in msg or "boundary" in msg:
        return (
            "The model's estimation did not settle on a stable answer with this data",
            "More customers or a longer history usually allow it.",
        )
    if "too few" in msg or "at least" in msg or "not enough" in msg or "empty" in msg:
        return (
            "There are too few customers or events for this model",
            "More customers, or a longer history, would allow it.",
        )
    if isinstance(exc, _PROGRAMMING_ERRORS):
        return (
            "This part could not be computed on this data (an unexpected shape of the data; the "
            "analysts' appendix has the technical message)",
            "Please report it with the appendix message.",
        )
    return "This model could not be estimated on this data", _GENERIC_REMEDY


def skipped_from(section: str, exc: BaseException, *, remedy: str | None = None) -> Skipped:
    """Return the :class:`Skipped` for ``section`` failed with ``exc``."""
    reason, default_remedy = explain(exc)
    last = traceback.format_exception_only(type(exc), exc)[-1].strip()
    return Skipped(
        section=section,
        reason=reason,
        remedy=default_remedy if remedy is None else remedy,
        detail=last[:500],
    )


def attempt(
    section: str, fn: Callable[..., T], /, *args: Any, remedy: str | None = None, **kwargs: Any
) -> T | Skipped:
    """Run one section's computation; return its result, or a :class:`Skipped` if it fails.

    Every exception except ``KeyboardInterrupt``, ``SystemExit`` and ``MemoryError``
    is caught: a model this data cannot support costs one section, never the
    report. The technical message is kept in :attr:`Skipped.detail` (and logged),
    so an unexpected failure stays visible to analysts.

    Parameters
    ----------
    section : str
        Human name of the section.
    fn : callable
        The computation; called as ``fn(*args, **kwargs)``.
    remedy : str, optional
        What data would allow it; default: from :func:`explain`.

    Returns
    -------
    object or Skipped
        ``fn``'s result, or the :class:`Skipped` that replaces it.
    """
    try:
        return fn(*args, **kwargs)
    except MemoryError:
        raise
    except Exception as exc:  # noqa: BLE001 - one failed section must not fail the report
        log.info("section %r skipped: %s", section, exc)
        return skipped_from(section, exc, remedy=remedy)
