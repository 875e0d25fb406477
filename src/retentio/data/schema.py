"""The canonical input tables (README, "Input format"), with declared types.

Every table a workspace holds has exactly these columns (customers may carry extra
attribute columns). Timestamps are stored as wall-clock time in the workspace's
timezone (naive ``TIMESTAMP``): inputs with an offset are converted on load, inputs
without one are taken as workspace time. That keeps period boundaries ("the month of
March in Moscow") identical on every engine, with no session-timezone surprises.
Money is ``DECIMAL(18,4)`` so that sums (MRR movements, revenue) are exact.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum


class Kind(str, Enum):
    """Logical column kinds; each maps to one SQL type and one parser."""

    ID = "id"
    STRING = "string"
    TIMESTAMP = "timestamp"
    DATE = "date"
    MONEY = "money"
    FLOAT = "float"
    INT = "int"
    BOOL = "bool"


SQL_TYPES: dict[Kind, str] = {
    Kind.ID: "VARCHAR",
    Kind.STRING: "VARCHAR",
    Kind.TIMESTAMP: "TIMESTAMP",
    Kind.DATE: "DATE",
    Kind.MONEY: "DECIMAL(18,4)",
    Kind.FLOAT: "DOUBLE",
    Kind.INT: "BIGINT",
    Kind.BOOL: "BOOLEAN",
}


@dataclass(frozen=True)
class Column:
    name: str
    kind: Kind
    required: bool = False
    #: allowed values (lower-case) for categorical columns
    choices: tuple[str, ...] | None = None
    #: inclusive numeric bounds
    minimum: float | None = None
    maximum: float | None = None
    #: timestamps/dates later than "now" are rejected unless this is set
    future_ok: bool = False
    description: str = ""

    @property
    def sql_type(self) -> str:
        return SQL_TYPES[self.kind]


@dataclass(frozen=True)
class TableSchema:
    name: str
    columns: tuple[Column, ...]
    primary_key: str | None
    #: the column that dates a row (used for date ranges and time filters)
    time_column: str | None
    #: extra columns are stored (as text) instead of being reported and dropped
    keeps_attributes: bool = False
    #: column whose value must be a known customer when a customers table exists
    customer_ref: str | None = "customer_id"
    description: str = ""
    checks: tuple[str, ...] = field(default_factory=tuple)

    @property
    def required(self) -> list[str]:
        return [c.name for c in self.columns if c.required]

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(name)


C = Column

CUSTOMERS = TableSchema(
    name="customers",
    description="one row per customer; extra columns are kept as attributes",
    primary_key="customer_id",
    time_column="signup_at",
    keeps_attributes=True,
    customer_ref=None,
    columns=(
        C("customer_id", Kind.ID, required=True),
        C("signup_at", Kind.TIMESTAMP),
        C("acquisition_channel", Kind.STRING),
        C("acquisition_cost", Kind.MONEY, minimum=0),
        C("birth_date", Kind.DATE),
        C("gender", Kind.STRING),
        C("city", Kind.STRING),
        C("email", Kind.STRING),
        C("phone", Kind.STRING),
        C("consent_email", Kind.BOOL),
        C("consent_sms", Kind.BOOL),
    ),
)

ORDERS = TableSchema(
    name="orders",
    description="one row per order",
    primary_key="order_id",
    time_column="ordered_at",
    columns=(
        C("order_id", Kind.ID, required=True),
        C("customer_id", Kind.ID, required=True),
        C("ordered_at", Kind.TIMESTAMP, required=True),
        C("amount", Kind.MONEY, required=True),
        C("cost", Kind.MONEY, minimum=0),
        C("discount", Kind.MONEY, minimum=0),
        C("status", Kind.STRING, choices=("completed", "returned", "cancelled")),
        C("channel", Kind.STRING),
        C("items", Kind.INT, minimum=0),
        # a campaign's promo code used on this order: marks the code redeemed
        C("promo_code", Kind.STRING),
    ),
    checks=("amount_not_negative_when_completed",),
)

ORDER_ITEMS = TableSchema(
    name="order_items",
    description="one row per item of an order (optional: product picks and replenishment reminders)",
    primary_key=None,
    time_column=None,
    customer_ref=None,
    columns=(
        C("order_id", Kind.ID, required=True),
        C("item_id", Kind.ID, required=True),
        C("quantity", Kind.INT, minimum=1),
        C("amount", Kind.MONEY, minimum=0),
        C("name", Kind.STRING),
        C("category", Kind.STRING),
    ),
)

SUBSCRIPTIONS = TableSchema(
    name="subscriptions",
    description="one row per subscription (a plan change starts a new row)",
    primary_key="subscription_id",
    time_column="started_at",
    columns=(
        C("subscription_id", Kind.ID, required=True),
        C("customer_id", Kind.ID, required=True),
        C("started_at", Kind.TIMESTAMP, required=True),
        C("mrr", Kind.MONEY, required=True, minimum=0),
        C("plan", Kind.STRING),
        # a cancelled subscription may run to the end of its paid term
        C("ended_at", Kind.TIMESTAMP, future_ok=True),
        C("cancel_reason", Kind.STRING),
        C("churn_type", Kind.STRING, choices=("voluntary", "involuntary")),
        C("is_trial", Kind.BOOL),
    ),
    checks=("ended_after_started",),
)

EVENTS = TableSchema(
    name="events",
    description="behavioural events: login, usage, view_item, cart_add, wishlist_add, ...",
    primary_key=None,
    time_column="occurred_at",
    columns=(
        C("customer_id", Kind.ID, required=True),
        C("occurred_at", Kind.TIMESTAMP, required=True),
        C("event_type", Kind.STRING, required=True),
        C("value", Kind.FLOAT),
        C("item_id", Kind.STRING),
    ),
)

SURVEYS = TableSchema(
    name="surveys",
    description="NPS (0-10), CSAT (1-5) and CES (1-7) answers; customer_id empty = anonymous",
    primary_key=None,
    time_column="answered_at",
    columns=(
        C("answered_at", Kind.TIMESTAMP, required=True),
        C("kind", Kind.STRING, required=True, choices=("nps", "csat", "ces")),
        C("score", Kind.FLOAT, required=True),
        C("customer_id", Kind.ID),
        C("comment", Kind.STRING),
    ),
    checks=("score_in_range",),
)

TICKETS = TableSchema(
    name="tickets",
    description="support tickets",
    primary_key=None,
    time_column="opened_at",
    columns=(
        C("customer_id", Kind.ID, required=True),
        C("opened_at", Kind.TIMESTAMP, required=True),
        C("resolved_at", Kind.TIMESTAMP),
        C("topic", Kind.STRING),
        C("satisfaction", Kind.FLOAT, minimum=1, maximum=5),
    ),
    checks=("resolved_after_opened",),
)

TABLES: dict[str, TableSchema] = {
    t.name: t for t in (CUSTOMERS, ORDERS, ORDER_ITEMS, SUBSCRIPTIONS, EVENTS, SURVEYS, TICKETS)
}

#: score scales per survey kind (inclusive); CES is the 7-point scale of Dixon et al. (2010)
SURVEY_SCALES: dict[str, tuple[int, int]] = {"nps": (0, 10), "csat": (1, 5), "ces": (1, 7)}


def table_schema(name: str) -> TableSchema:
    """The schema of a canonical table, or a clear error listing the known ones."""
    from retentio.data.errors import RetentioError

    try:
        return TABLES[name]
    except KeyError:
        raise RetentioError(
            f"unknown table {name!r}; the canonical tables are: {', '.join(TABLES)}"
        ) from None
