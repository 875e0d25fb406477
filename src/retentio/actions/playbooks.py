"""Playbooks: a retention campaign as a TOML file in the workspace's ``playbooks/``
folder — **trigger → audience → offer → message → channel**, plus holdout and exclusions.

The kinds are the retention plays of the source articles (see ``docs/campaigns.md``):
win-back of sleeping customers, churn risk, birthday, abandoned cart / wishlist / viewed
items, renewal before a subscription ends, replenishment of consumables, onboarding,
early access for the best customers, thank-you after an order, follow-up of detractors.
A file is validated as a whole when it is read: an unknown key, a wrong type or an
impossible value is refused naming the file and the field (``[trigger] days``).
"""

from __future__ import annotations

import datetime as dt
import re
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from retentio.data.errors import RetentioError

PLAYBOOKS_DIR = "playbooks"
M = TypeVar("M", bound=BaseModel)

Kind = Literal["winback", "churn_risk", "birthday", "abandoned_cart", "wishlist", "viewed_item", "renewal",
               "replenishment", "onboarding", "early_access", "thank_you", "detractor_followup",
               "nps_survey", "csat_after_ticket", "exit_survey", "feedback_reply"]
KINDS: tuple[str, ...] = Kind.__args__  # type: ignore[attr-defined]

#: the kinds that send a survey with a signed answer link, and the question each asks by default
SURVEY_PLAYBOOKS: dict[str, str] = {"nps_survey": "nps", "csat_after_ticket": "csat", "exit_survey": "nps"}
#: days after the trigger's event before a survey goes, per kind (``[trigger] days_after``)
SURVEY_DELAY_DAYS: dict[str, int] = {"nps_survey": 14, "csat_after_ticket": 0, "exit_survey": 0}

#: the event each browsing kind reacts to
BROWSE_EVENTS = {"abandoned_cart": "cart_add", "wishlist": "wishlist_add", "viewed_item": "view_item"}


class TomlFileError(RetentioError):
    """A settings file (playbook, loyalty program) that cannot be used: the file, the
    field and what is wrong."""

    def __init__(self, path: Path | str, message: str, field: str | None = None):
        self.path, self.field = str(path), field
        super().__init__(f"{path}: {field + ': ' if field else ''}{message}")


class PlaybookError(TomlFileError):
    """A playbook that cannot be used."""


class StrictSection(BaseModel):
    """A section of a TOML file: unknown keys are refused, values are frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)


_Section = StrictSection


class Trigger(_Section):
    """When a customer qualifies. Which keys matter depends on the kind (see each kind's
    template written by ``retentio playbook new``)."""

    #: winback: days without a completed order — a number, or "auto" (the customer's own
    #: median gap between orders × gap_multiplier, at least min_days)
    days: int | Literal["auto"] | None = None
    gap_multiplier: float = Field(2.0, gt=0)
    min_days: int = Field(30, ge=1)
    #: winback on events instead of orders ("no visit for 5 days"): the event type
    no_event: str | None = None
    #: browsing kinds: hours after the event with no order that make it "abandoned"
    hours: int = Field(24, ge=1)
    #: birthday: days ahead; renewal: days before the end; replenishment: days before due
    days_before: int = Field(3, ge=0)
    #: onboarding: days after the first order (or signup) at which each step is sent
    steps: tuple[int, ...] = (1, 7, 30)
    #: detractor_followup: NPS at most / CSAT at most
    nps_max: int = Field(6, ge=0, le=10)
    csat_max: int = Field(2, ge=1, le=5)
    #: churn_risk: the bands that qualify
    bands: tuple[Literal["low", "medium", "high"], ...] = ("high",)
    #: replenishment: item categories that are consumables (empty: every item bought twice or more)
    categories: tuple[str, ...] = ()
    #: how far back a due trigger is still acted on (a missed daily run catches up)
    within_days: int = Field(3, ge=1)
    #: early_access: a name for this send (one message per customer per occurrence)
    occurrence: str | None = Field(None, min_length=1, max_length=100)
    #: renewal: the billing period of open subscriptions, in months (they renew every
    #: billing_months after they started)
    billing_months: int = Field(1, ge=1, le=36)
    #: nps_survey: the completed order (1st, 2nd, ...) after which the survey goes
    after_order: int = Field(2, ge=1)
    #: survey kinds: days after the event (the order, the ticket's resolution, the end of
    #: the subscription) before the survey goes (default: 14 for nps_survey, else 0)
    days_after: int | None = Field(None, ge=0, le=365)
    #: nps_survey: also ask every customer with an order once every this many months
    #: (e.g. 6 — "relationship NPS"); None: only after the order
    every_months: int | None = Field(None, ge=1, le=60)
    #: exit_survey: only voluntary cancellations (a failed payment is not a decision to leave)
    voluntary_only: bool = True
    #: feedback_reply: reply to answers without a comment only (the default), or to all
    empty_comment_only: bool = True


class Audience(_Section):
    """Who among the triggered customers is targeted (every condition must hold)."""

    segments: tuple[str, ...] = ()
    churn_bands: tuple[Literal["low", "medium", "high"], ...] = ()
    key_customers_only: bool = False
    min_orders: int | None = Field(None, ge=0)
    max_orders: int | None = Field(None, ge=0)
    min_clv: float | None = None
    min_p_alive: float | None = Field(None, ge=0, le=1)
    min_value_at_risk: float | None = None
    last_order_after: dt.date | None = None
    last_order_before: dt.date | None = None
    #: any customer attribute: allowed values, e.g. {city = ["Moscow"], loyalty_member = ["yes"]}
    where: dict[str, tuple[str, ...]] = Field(default_factory=dict)


class Exclude(_Section):
    """Customers left out before randomisation."""

    #: ordered in the last N days
    ordered_within_days: int | None = Field(None, ge=1)
    #: sent (or queued) a message by another campaign in the last N days
    other_campaign_within_days: int | None = Field(None, ge=1)
    #: a file of customer ids (one per line, or a CSV with customer_id), e.g. employees
    customers_file: str | None = None


class OfferVariant(_Section):
    value: float | None = None
    kind: Literal["percent", "fixed", "free_shipping", "gift", "points", "none"] | None = None
    gift: str | None = None


class Offer(_Section):
    kind: Literal["percent", "fixed", "free_shipping", "gift", "points", "none"] = "none"
    value: float = Field(0.0, ge=0)
    gift: str | None = None
    #: days a promo code stays valid
    valid_days: int = Field(14, ge=1)
    #: letters and digits before the code (BACK-7KQ2-M9XD-4TRW)
    code_prefix: str = Field("", pattern=r"^[A-Za-z0-9]{0,12}$")
    #: per RFM segment (or churn band), e.g. {"can't lose them" = {value = 20}}
    variants: dict[str, OfferVariant] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _percent(self) -> Offer:
        if self.kind == "percent" and not 0 < self.value < 100:
            raise ValueError("a percent offer needs 0 < value < 100")
        if self.kind == "fixed" and self.value <= 0:
            raise ValueError("a fixed offer needs value > 0")
        return self

    @property
    def needs_code(self) -> bool:
        """Offers a customer redeems at checkout carry a personal promo code."""
        return self.kind in ("percent", "fixed", "free_shipping", "gift")


class Message(_Section):
    subject: str = ""
    text: str
    html: str | None = None
    #: marketing: consent and frequency caps apply; service: caps exempt, opt-out respected
    message_class: Literal["marketing", "service"] = "marketing"
    #: "product picks" in the message: from the customer's own orders, the items of the
    #: trigger (cart, wishlist, views), or best sellers of their segment
    picks: Literal["bought", "trigger", "segment", "none"] = "bought"
    lang: Literal["en", "ru"] = "en"


class Channel(_Section):
    kind: Literal["email", "webhook", "csv"] = "csv"
    #: whose consent a CSV export or a webhook needs: email or sms
    consent: Literal["email", "sms"] = "email"


class Measure(_Section):
    #: days after the send in which the customer's orders count for this campaign
    #: (default: the workspace's [campaigns] attribution_days)
    window_days: int | None = Field(None, ge=1, le=365)


class Holdout(_Section):
    #: share of eligible customers kept as control (0 must be written explicitly)
    percent: float = Field(..., ge=0, lt=100)


class Survey(_Section):
    """``[survey]`` of the survey kinds (``nps_survey``, ``csat_after_ticket``,
    ``exit_survey``): the question, how long its link stays valid, how often a person may
    be asked, and when the invitations go."""

    #: the question: nps (0-10), csat (1-5) or ces (1-7); default by kind (nps, csat, nps)
    question: Literal["nps", "csat", "ces"] | None = None
    #: days the personal answer link is valid
    valid_days: int = Field(30, ge=1, le=365)
    #: nobody is asked again within this many days — by this playbook or any other survey
    min_days_between: int = Field(90, ge=1, le=3650)
    #: spread the invitations over weekday mornings (workspace time) instead of sending at once
    weekday_mornings: bool = True
    morning_start: int = Field(9, ge=0, le=23)
    morning_end: int = Field(12, ge=1, le=24)

    @model_validator(mode="after")
    def _morning(self) -> Survey:
        if self.morning_end <= self.morning_start:
            raise ValueError("morning_end must be after morning_start")
        return self


class Playbook(_Section):
    """A parsed, validated playbook."""

    kind: Kind
    name: str
    description: str = ""
    trigger: Trigger = Trigger()
    audience: Audience = Audience()
    exclude: Exclude = Exclude()
    offer: Offer = Offer()
    message: Message
    channel: Channel = Channel()
    holdout: Holdout
    measure: Measure = Measure()
    survey: Survey = Survey()
    #: whom to contact among the eligible: everyone, or the persuadable by an uplift model
    target: Literal["all", "uplift"] = "all"
    #: with target = "uplift": the share of eligible customers with the highest predicted uplift ...
    top: float | None = Field(None, gt=0, le=1)
    #: ... or (target_rule = "value") those whose predicted uplift × value exceeds target_cost
    target_rule: Literal["top", "value"] = "top"
    #: what one contact costs with its offer (default: the channel's cost per message)
    target_cost: float | None = Field(None, ge=0)
    #: the share of the rest kept in the experiment, so the model can be checked next time
    explore: float = Field(0.1, ge=0, le=1)
    #: the campaign whose uplift model to use (default: this playbook's own)
    uplift_model: str | None = None
    #: the expected response rate of a message, × the customer's value = the message's
    #: expected value (which message wins when the frequency cap binds)
    expected_uplift: float = Field(0.03, ge=0, le=1)
    path: str = ""

    _name = field_validator("name")(classmethod(lambda cls, value: file_name(value)))

    @model_validator(mode="after")
    def _kind_needs(self) -> Playbook:
        t = self.trigger
        if self.kind == "winback" and t.days is None and t.no_event is None:
            raise ValueError("[trigger] days (a number or \"auto\") or no_event is needed for winback")
        if self.kind == "winback" and t.no_event is not None and not isinstance(t.days, int):
            raise ValueError("[trigger] days must be a number of days with no_event")
        if self.channel.kind == "email" and not self.message.subject:
            raise ValueError("[message] subject is needed for email")
        if self.target == "uplift" and self.target_rule == "top" and self.top is None:
            raise ValueError("target = \"uplift\" needs top (e.g. top = 0.3) or target_rule = \"value\"")
        if self.kind in SURVEY_PLAYBOOKS and "survey_url" not in self.message.text:
            raise ValueError("[message] text must contain {{ survey_url }}: the personal answer link is the survey")
        if self.kind in SURVEY_PLAYBOOKS | {"feedback_reply": ""} and self.offer.kind != "none":
            raise ValueError("[offer] kind must be \"none\" for a survey or a reply to an answer: a reward for an "
                             "answer biases the answers")
        if self.target == "uplift" and (self.kind in SURVEY_PLAYBOOKS or self.kind == "feedback_reply"):
            raise ValueError("target = \"uplift\" does not apply to surveys")
        if self.message.message_class == "service" and self.offer.kind != "none":
            raise ValueError("[message] message_class = \"service\" cannot carry an offer: a promotion is "
                             "marketing (it needs consent and counts under the frequency cap)")
        return self

    def as_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    @property
    def survey_kind(self) -> str | None:
        """The question a survey playbook asks (nps, csat, ces); None for other kinds."""
        if self.kind not in SURVEY_PLAYBOOKS:
            return None
        return self.survey.question or SURVEY_PLAYBOOKS[self.kind]


def playbooks_dir(workspace: Path) -> Path:
    return Path(workspace) / PLAYBOOKS_DIR


def _where(loc: tuple) -> str:
    parts = [str(p) for p in loc]
    if not parts:
        return ""
    if len(parts) == 1:
        return parts[0]
    return f"[{parts[0]}] {'.'.join(parts[1:])}"


def parse_playbook(text: str, path: Path | str, name: str | None = None) -> Playbook:
    """A playbook from its TOML text; :class:`PlaybookError` naming the field."""

    def hint(message: str, where: str | None) -> str:
        if message.startswith("missing") and ((where or "").startswith("[holdout]") or where == "holdout"):
            return message.replace("missing", "missing: write percent = 0 to send to everyone", 1)
        return message

    return parse_toml(text, path, name, Playbook, PlaybookError, hint)


def parse_toml(text: str, path: Path | str, name: str | None, model: type[M], error: type[TomlFileError],
               hint: Callable[[str, str | None], str] | None = None) -> M:
    """A TOML file read into ``model`` as a whole (its ``name`` defaults to the file's
    stem, ``path`` is set); ``error`` naming the file and the first wrong field."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise error(path, f"not valid TOML: {exc}") from None
    raw.setdefault("name", name or Path(path).stem)
    raw["path"] = str(path)
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        message, where = validation_message(exc)
        raise error(path, hint(message, where) if hint else message, where) from None


def file_name(value: str) -> str:
    """A name that is also a file's stem: letters, digits, _ and - (at most 80)."""
    if not re.fullmatch(r"[A-Za-z0-9_\-]{1,80}", value):
        raise ValueError("a name of letters, digits, _ and - (at most 80)")
    return value


def validation_message(exc: ValidationError) -> tuple[str, str | None]:
    """The first error of a TOML file's validation, worded for a person, and its field
    (``[section] key``); how many more errors there are is appended."""
    first = exc.errors()[0]
    where = _where(tuple(first["loc"]))
    message = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        message = "unknown key"
    elif first["type"] == "missing":
        message = "missing"
    elif first["type"] == "literal_error":
        message = f"got {first.get('input')!r}; {message.lower()}"
    more = f" (and {len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
    return message + more, where or None


def read_playbook(workspace: Path, name: str) -> Playbook:
    """The playbook ``name`` of a workspace (``playbooks/NAME.toml``)."""
    path = playbooks_dir(workspace) / f"{name}.toml"
    if not path.exists():
        known = ", ".join(list_playbooks(workspace)) or "none yet; create one with `playbook new KIND NAME`"
        raise PlaybookError(path, f"no such playbook (known: {known})")
    return parse_playbook(path.read_text(encoding="utf-8"), path, name)


def list_playbooks(workspace: Path) -> list[str]:
    folder = playbooks_dir(workspace)
    return sorted(p.stem for p in folder.glob("*.toml")) if folder.is_dir() else []


__all__ = ["BROWSE_EVENTS", "KINDS", "PLAYBOOKS_DIR", "SURVEY_DELAY_DAYS", "SURVEY_PLAYBOOKS", "Playbook", "PlaybookError", "StrictSection", "TomlFileError",
           "list_playbooks", "parse_playbook", "parse_toml", "playbooks_dir", "read_playbook", "validation_message"]
