"""The data contract: the four input tables, their columns, types and ranges.

See ``docs/data-contract.md`` for the prose version. Column *kinds* are
``id`` (string or integer key), ``date``, ``float``, ``int``, ``bool`` and ``str``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Column:
    """One contract column."""

    name: str
    kind: str  # id | date | float | int | bool | str
    required: bool = False
    lo: float | None = None  # inclusive lower bound for numeric scores
    hi: float | None = None  # inclusive upper bound
    description: str = ""


@dataclass(frozen=True)
class Table:
    """One contract table."""

    name: str
    required: bool
    columns: tuple[Column, ...]
    description: str = ""
    extra_columns_allowed: bool = False  # customers may carry further attributes

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(name)

    @property
    def required_columns(self) -> list[str]:
        return [c.name for c in self.columns if c.required]

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]


CUSTOMERS = Table(
    "customers",
    required=True,
    extra_columns_allowed=True,
    description="One row per customer.",
    columns=(
        Column("customer_id", "id", True, description="Unique customer key."),
        Column("signup_date", "date", True, description="Start of the relationship."),
        Column("churn_date", "date", description="Contract end; empty while active."),
        Column("churn_reason", "str", description="Why the customer left, where known."),
        Column("segment", "str", description="Customer segment, e.g. consumer / business."),
    ),
)

TRANSACTIONS = Table(
    "transactions",
    required=True,
    description="One row per purchase.",
    columns=(
        Column("customer_id", "id", True),
        Column("date", "date", True),
        Column("amount", "float", True, description="Revenue in the data's currency."),
        Column("margin", "float", description="Gross margin in the data's currency."),
        Column("channel", "str"),
    ),
)

LOYALTY = Table(
    "loyalty",
    required=False,
    description="One row per programme membership.",
    columns=(
        Column("customer_id", "id", True),
        Column("enrolled_date", "date", True),
        Column("tier", "str", description="Programme tier, e.g. bronze / silver / gold."),
        Column("left_date", "date", description="Date the member left the programme."),
        Column("points_earned", "float", lo=0),
        Column("points_redeemed", "float", lo=0),
    ),
)

EXPERIENCE = Table(
    "experience",
    required=False,
    description="One row per service event: a survey response or a ticket.",
    columns=(
        Column("customer_id", "id", True),
        Column("date", "date", True),
        Column("kind", "str", True, description="survey, ticket, ..."),
        Column("touchpoint", "str", description="sales, onboarding, service, billing, retention"),
        Column("compensated", "bool", description="A goodwill gesture after a failure."),
        Column("csat", "float", lo=1, hi=5),
        Column("nps", "float", lo=0, hi=10),
        Column("ces", "float", lo=1, hi=7),
        Column("first_contact_resolution", "bool"),
        Column("contacts_to_resolve", "int", lo=1),
        Column("sla_met", "bool"),
        Column("response_hours", "float", lo=0),
    ),
)

TABLES: dict[str, Table] = {t.name: t for t in (CUSTOMERS, TRANSACTIONS, LOYALTY, EXPERIENCE)}
TABLE_NAMES = tuple(TABLES)
