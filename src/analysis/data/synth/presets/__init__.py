"""A gallery of business shapes: presets of ``python -m analysis synth --preset NAME``.

Each preset returns a :class:`~analysis.data.synth.world.SampleWorld` with contract
tables, its own planted truth (``truth.json``) and a ready-to-run params file
(``params.yaml``: the data are the files beside it, reports go to ``reports/`` there).
``docs/sample-world.md`` ("Presets") describes each one and its truth.

- ``sample``: the sample world (:func:`analysis.data.synth.generate`), unchanged.
- ``subscription``: monthly billing, shifted-beta-geometric churn, tickets, no loyalty.
- ``retail``: non-contractual BG/NBD buying, Gamma-Gamma spend, loyalty, surveys only.
- ``b2b``: a few hundred accounts, annual contracts, large invoices, tiny industries.
- ``short``: the sample world over six months.
- ``minimal``: the sample world cut to the required columns of the two required tables.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from analysis.data.synth.presets import b2b, retail, sample_based, subscription
from analysis.data.synth.world import SampleWorld
from analysis.errors import ParamsError


@dataclass(frozen=True)
class Preset:
    """How to build one preset and how its params file defines churn."""

    build: Callable[..., SampleWorld]  # (n, seed, start, months[, dirty]) -> world
    customers: int  # default world size
    start: str  # default window start (first day of a month)
    months: int  # default window length
    churn_definition: str  # contractual | inactivity
    inactivity_days: int | None  # for inactivity churn
    dirty_allowed: bool
    summary: str


PRESETS: dict[str, Preset] = {
    "sample": Preset(
        build=sample_based.sample,
        customers=20000,
        start="2023-01-01",
        months=36,
        churn_definition="contractual",
        inactivity_days=None,
        dirty_allowed=True,
        summary="the sample world: consumer and business customers, loyalty programme, "
        "tickets and surveys, planted causal effects",
    ),
    "subscription": Preset(
        build=subscription.build,
        customers=20000,
        start="2023-01-01",
        months=36,
        churn_definition="contractual",
        inactivity_days=None,
        dirty_allowed=False,
        summary="monthly subscriptions with shifted-beta-geometric churn, fixed plan prices, "
        "tickets, no loyalty programme",
    ),
    "retail": Preset(
        build=retail.build,
        customers=20000,
        start="2023-01-01",
        months=36,
        churn_definition="inactivity",
        inactivity_days=180,
        dirty_allowed=False,
        summary="non-contractual BG/NBD buying (most customers buy once), Gamma-Gamma spend, "
        "loyalty programme, surveys only",
    ),
    "b2b": Preset(
        build=b2b.build,
        customers=300,
        start="2023-01-01",
        months=36,
        churn_definition="contractual",
        inactivity_days=None,
        dirty_allowed=False,
        summary="a few hundred accounts on annual contracts with large monthly invoices, "
        "industries of very different sizes, touchpoints",
    ),
    "short": Preset(
        build=sample_based.short,
        customers=20000,
        start="2025-07-01",
        months=6,
        churn_definition="contractual",
        inactivity_days=None,
        dirty_allowed=True,
        summary="the sample world observed for six months",
    ),
    "minimal": Preset(
        build=sample_based.minimal,
        customers=20000,
        start="2023-01-01",
        months=36,
        churn_definition="inactivity",
        inactivity_days=90,
        dirty_allowed=False,
        summary="the sample world with only the required columns of customers and transactions",
    ),
}


def generate_preset(
    name: str = "sample",
    n_customers: int | None = None,
    seed: int = 42,
    start: str | None = None,
    months: int | None = None,
    dirty: bool = False,
) -> SampleWorld:
    """Generate the world of one preset, with its truth and params file.

    Parameters
    ----------
    name : str
        One of :data:`PRESETS`.
    n_customers : int, optional
        Customers (accounts for ``b2b``); default: the preset's (20,000; 300 for ``b2b``).
    seed : int
        Seed of all randomness; the same arguments give identical tables.
    start : str, optional
        First day of the data window (YYYY-MM-01); default: the preset's.
    months : int, optional
        Window length in calendar months; default: the preset's (6 for ``short``, else 36).
    dirty : bool
        Inject data problems (``sample`` and ``short`` only).

    Returns
    -------
    SampleWorld
        ``tables``, ``truth`` and ``params_yaml``. ``sample`` is exactly
        :func:`analysis.data.synth.generate` with the same arguments.
    """
    if name not in PRESETS:
        raise ParamsError(f"synth: unknown preset {name!r}; choose one of {', '.join(PRESETS)}.")
    p = PRESETS[name]
    if dirty and not p.dirty_allowed:
        raise ParamsError(
            f"synth: --dirty is available for the sample and short presets, not {name!r}."
        )
    n = p.customers if n_customers is None else int(n_customers)
    if n < 10:
        raise ParamsError(f"synth: n_customers must be at least 10, got {n}.")
    extra = {"dirty": dirty} if p.dirty_allowed else {}
    world = p.build(n, seed, start or p.start, p.months if months is None else int(months), **extra)
    world.params_yaml = params_yaml(name, world.truth["window"])
    return world


def params_yaml(name: str, window: dict) -> str:
    """Return the ready-to-run params file of a preset world (YAML text).

    The data are the files beside the params file (``data.path: .``), reports go to
    ``reports/`` beside them; the as-of date and window are the world's. Every other
    setting keeps its default, which follows the data's own columns.
    """
    p = PRESETS[name]
    churn = f"  churn_definition: {p.churn_definition}"
    if p.churn_definition == "inactivity":
        churn += (
            "  # no churn dates: churned after inactivity_days without a purchase\n"
            f"  inactivity_days: {p.inactivity_days}"
        )
    else:
        churn += "  # churn_date ends the relationship"
    return (
        f"# Run configuration for the '{name}' preset world: {p.summary}.\n"
        f"# Written by `python -m analysis synth --preset {name}`; truth.json beside it holds the\n"
        "# planted truth (docs/sample-world.md, Presets). Relative paths resolve against this\n"
        "# file's folder. Settings not named here take their defaults (docs/params.md).\n"
        "\n"
        "data:\n"
        "  source: folder\n"
        "  path: .                   # the data files beside this file\n"
        "  format: auto\n"
        f"  as_of: {window['as_of']}        # last day of the generated window\n"
        f"  window_start: {window['start']} # first day of the generated window\n"
        "  currency: EUR\n"
        "\n"
        "analysis:\n"
        f"{churn}\n"
        "\n"
        "reports:\n"
        "  output_dir: reports       # beside the data\n"
        f"  title: Customer retention reports ({name} preset)\n"
    )


__all__ = ["PRESETS", "Preset", "generate_preset", "params_yaml"]
