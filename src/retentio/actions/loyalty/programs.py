"""Loyalty programs: one TOML file per program in the workspace's ``loyalty/`` folder.

The kinds are the five the source articles describe (SPEC.md, "Loyalty programs") plus
the two they mention in passing: a **discount card** (fixed, or cumulative by spend and
lowered after inactivity), **bonus points** (earn, pay part of an order, pending and
expiry), a **stamp card**, **paid membership** and **cashback**; **tiers** and
**referral** are sections any points program may add. The vocabulary follows Open
Loyalty's earning rules, pending points, expiry and tier-downgrade policies, and Odoo's
FIFO expiry of points.

A file is validated as a whole when read: an unknown key, a wrong type or an impossible
value is refused naming the file and the field (``[tiers] downgrade``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from retentio.actions.playbooks import StrictSection, TomlFileError, file_name, parse_toml

LOYALTY_DIR = "loyalty"

ProgramKind = Literal["points", "discount", "stamps", "membership", "cashback"]
KINDS: tuple[str, ...] = ProgramKind.__args__  # type: ignore[attr-defined]
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class ProgramError(TomlFileError):
    """A loyalty program that cannot be used: the file, the field and what is wrong."""


class Multiplier(StrictSection):
    """Earn ``factor`` × the base points on orders matching every key given."""

    factor: float = Field(gt=0)
    #: an item category (order_items.category): applies to the amount of those items
    category: str | None = None
    #: an RFM segment of the customer on the order's day
    segment: str | None = None
    #: a day of the week (mon … sun)
    weekday: Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"] | None = None


class Earn(StrictSection):
    """How points are earned."""

    #: points per currency unit of a completed order's amount
    per_amount: float = Field(1.0, ge=0)
    #: the rounding of an order's points: down (never more than earned), half_up, or up
    rounding: Literal["floor", "half_up", "ceil"] = "floor"
    #: orders below this amount earn nothing
    min_amount: float = Field(0.0, ge=0)
    multipliers: tuple[Multiplier, ...] = ()
    #: points when a customer joins
    welcome: int = Field(0, ge=0)
    #: points on the birthday (customers.birth_date), once a year
    birthday: int = Field(0, ge=0)
    #: points for events, e.g. {review = 50, survey = 20} (events.event_type → points)
    events: dict[str, int] = Field(default_factory=dict)
    #: days an order's points stay pending (the return window) before they can be spent
    pending_days: int = Field(0, ge=0)


class Redeem(StrictSection):
    """How points pay for orders."""

    #: the largest share of an order that points may pay
    max_share: float = Field(1.0, gt=0, le=1)
    #: the smallest redemption
    min_points: int = Field(1, ge=1)


class Expiry(StrictSection):
    """When earned points expire: N days after earning, or at the end of the month or
    year they were earned in (plus ``days``, if both are given, whichever is later)."""

    days: int | None = Field(None, ge=1)
    rule: Literal["days", "end_of_month", "end_of_year", "never"] = "days"

    @model_validator(mode="after")
    def _days(self) -> Expiry:
        if self.rule == "days" and self.days is None:
            raise ValueError("days is needed with rule = \"days\" (or rule = \"never\")")
        return self


class Returns(StrictSection):
    """What a return does when the order's points were already spent: allow a negative
    balance, deduct the shortfall from the customer's other points, or write it off."""

    policy: Literal["negative", "other_lots", "write_off"] = "other_lots"


class Tier(StrictSection):
    name: str = Field(min_length=1, max_length=40)
    #: points earned (or spend) in the window that qualifies for this tier
    threshold: float = Field(ge=0)
    discount_pct: float = Field(0.0, ge=0, le=100)
    earn_multiplier: float = Field(1.0, gt=0)
    free_shipping: bool = False


class Tiers(StrictSection):
    """Multi-tier status: qualification over a rolling window, upgrade at once,
    re-evaluation every ``review_days`` with a downgrade policy."""

    basis: Literal["points", "spend"] = "spend"
    window_days: int = Field(365, ge=1)
    review_days: int = Field(90, ge=1)
    downgrade: Literal["none", "one_level", "to_qualifying"] = "one_level"
    levels: tuple[Tier, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _ordered(self) -> Tiers:
        thresholds = [t.threshold for t in self.levels]
        if thresholds != sorted(thresholds) or len(set(thresholds)) != len(thresholds):
            raise ValueError("levels must be listed lowest first, with rising thresholds")
        if thresholds[0] != 0:
            raise ValueError("the first level's threshold must be 0 (every member has a tier)")
        if len({t.name for t in self.levels}) != len(self.levels):
            raise ValueError("level names must differ")
        return self


class DiscountLevel(StrictSection):
    threshold: float = Field(ge=0)
    percent: float = Field(gt=0, le=100)


class Discount(StrictSection):
    """A discount card: a fixed ``percent``, or ``levels`` by spend (lifetime or the last
    12 months) that fall back one level after every ``fallback_days`` without a purchase."""

    percent: float | None = Field(None, gt=0, le=100)
    basis: Literal["lifetime", "rolling_12m"] = "lifetime"
    levels: tuple[DiscountLevel, ...] = ()
    fallback_days: int | None = Field(None, ge=1)

    @model_validator(mode="after")
    def _one(self) -> Discount:
        if (self.percent is None) == (not self.levels):
            raise ValueError("give either percent (a fixed card) or levels (a cumulative card)")
        thresholds = [lv.threshold for lv in self.levels]
        if thresholds != sorted(thresholds) or len(set(thresholds)) != len(thresholds):
            raise ValueError("levels must be listed lowest first, with rising thresholds")
        return self


class Stamps(StrictSection):
    """A stamp card: one stamp per qualifying purchase, ``required`` stamps → the reward;
    a card lasts ``period_days`` from its first stamp, then its stamps expire."""

    required: int = Field(ge=1, le=100)
    min_amount: float = Field(0.0, ge=0)
    category: str | None = None
    reward: str = Field(min_length=1)
    period_days: int | None = Field(None, ge=1)


class Perks(StrictSection):
    discount_pct: float = Field(0.0, ge=0, le=100)
    earn_multiplier: float = Field(1.0, gt=0)
    free_shipping: bool = False


class Membership(StrictSection):
    """Paid membership: ``fee`` per ``period_days``; perks while paid; lapse when a
    period ends unpaid (after ``grace_days``)."""

    fee: float = Field(gt=0)
    period_days: int = Field(30, ge=1)
    grace_days: int = Field(0, ge=0)
    perks: Perks = Perks()


class Cashback(StrictSection):
    """A share of each period's completed spend returned at the period's end, as points
    or as balance (a balance is points worth one minor currency unit: point_value 0.01)."""

    share: float = Field(gt=0, le=1)
    period: Literal["month", "quarter", "year"] = "month"
    credit: Literal["points", "balance"] = "points"


class Referral(StrictSection):
    """A code per member; the referee's first completed order rewards both, once."""

    referrer_points: int = Field(ge=0)
    referee_points: int = Field(ge=0)


class Program(BaseModel):
    """A loyalty program (one TOML file)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    kind: ProgramKind
    description: str = ""
    #: money per point (what a point is worth when it pays; what the liability counts)
    point_value: float = Field(0.01, gt=0)
    earn: Earn = Earn()
    redeem: Redeem = Redeem()
    expiry: Expiry = Expiry(rule="never")
    returns: Returns = Returns()
    tiers: Tiers | None = None
    discount: Discount | None = None
    stamps: Stamps | None = None
    membership: Membership | None = None
    cashback: Cashback | None = None
    referral: Referral | None = None
    #: who is a member: "all" customers with an order, or those who "join" explicitly
    enrolment: Literal["all", "join"] = "all"
    path: str = ""

    _name = field_validator("name")(classmethod(lambda cls, value: file_name(value)))

    @model_validator(mode="after")
    def _kind_needs(self) -> Program:
        needs = {"discount": "discount", "stamps": "stamps", "membership": "membership", "cashback": "cashback"}
        section = needs.get(self.kind)
        if section and getattr(self, section) is None:
            raise ValueError(f"a {self.kind} program needs a [{section}] section")
        if self.kind == "cashback" and self.cashback is not None and self.cashback.credit == "balance" \
                and self.point_value != 0.01:
            raise ValueError("cashback credited as balance counts in minor units: point_value must be 0.01")
        return self

    @property
    def unit(self) -> str:
        """What the ledger counts for this program."""
        return "stamps" if self.kind == "stamps" else "points"

    @property
    def negative_ok(self) -> bool:
        return self.returns.policy == "negative"

    def as_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


def loyalty_dir(workspace: Path) -> Path:
    return Path(workspace) / LOYALTY_DIR


def parse_program(text: str, path: Path | str, name: str | None = None) -> Program:
    """A program from its TOML text; :class:`ProgramError` naming the field."""
    return parse_toml(text, path, name, Program, ProgramError)


def list_programs(workspace: Path) -> list[str]:
    folder = loyalty_dir(workspace)
    return sorted(p.stem for p in folder.glob("*.toml")) if folder.is_dir() else []


def read_program(workspace: Path, name: str | None = None) -> Program:
    """The program ``name`` (``loyalty/NAME.toml``); without a name, the workspace's only one."""
    names = list_programs(workspace)
    if name is None:
        if len(names) != 1:
            known = ", ".join(names) or "none yet; create one with `loyalty program add KIND NAME`"
            raise ProgramError(loyalty_dir(workspace), f"say which program with --program (known: {known})")
        name = names[0]
    path = loyalty_dir(workspace) / f"{name}.toml"
    if not path.exists():
        known = ", ".join(names) or "none yet; create one with `loyalty program add KIND NAME`"
        raise ProgramError(path, f"no such loyalty program (known: {known})")
    return parse_program(path.read_text(encoding="utf-8"), path, name)


__all__ = ["KINDS", "LOYALTY_DIR", "Program", "ProgramError", "list_programs", "loyalty_dir", "parse_program",
           "read_program"]
