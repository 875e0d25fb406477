"""The loyalty API: programs, a member's balance and history, and the till's requests
(earn, redeem) and manual adjustments.

``Idempotency-Key`` (header) is the ledger's idempotency key: the same key with the same
request returns the first answer and writes nothing (the header ``Idempotent-Replayed:
true`` says so); the same key with a different request is 409 ``idempotency_conflict``.
Without the header every call is a new request. A redemption never overdraws: 409
``insufficient_points`` with the CLI's sentence, nothing written. Every request is in
the audit log (``loyalty.earn``, ``loyalty.redeem``, ``loyalty.adjust`` with the balance
before and after).
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Query, Request, Response
from pydantic import BaseModel, Field, field_validator

from retentio.faces.web.api import ErrorBody
from retentio.faces.web.context import web_of
from retentio.faces.web.security import WebError, need
from retentio.services.accounts import Principal, audit

MAX_POINTS = 10_000_000
#: a body that cannot be read (not JSON, not UTF-8)
BODY_ERRORS: dict[int | str, dict[str, Any]] = {400: {"model": ErrorBody, "description": "The body cannot be read"}}
CustomerId = Annotated[str, Path(min_length=1, max_length=200, description="The customer's id")]
KeyHeader = Annotated[str | None, Header(alias="Idempotency-Key", min_length=1, max_length=200,
                                         description="The ledger's idempotency key: a repeat with the same "
                                                     "request returns the first answer and writes nothing")]


# ---------------------------------------------------------------------- models
class ProgramRow(BaseModel):
    name: str
    kind: str | None = None
    point_value: float | None = None
    tiers: str | None = None
    expiry: str | None = None
    returns: str | None = None
    problem: str | None = None


class ProgramList(BaseModel):
    total: int
    items: list[ProgramRow]


class Expiring(BaseModel):
    date: str
    points: int


class Balance(BaseModel):
    program: str
    unit: str
    available: int
    pending: int
    tier: str | None = None
    tier_override: bool
    expiring: list[Expiring]
    discount_pct: float
    free_shipping: bool
    value: float
    referral_code: str | None = None
    member_until: str | None = None


class MemberBalances(BaseModel):
    customer: str
    programs: list[Balance]


class HistoryRow(BaseModel):
    program: str
    at: str
    kind: str
    account: str | None = None
    points: int
    lot: str | None = None
    order: str | None = None
    reason: str | None = None
    policy: str | None = None
    actor: str | None = None
    key: str | None = None


class HistoryPage(BaseModel):
    total: int
    items: list[HistoryRow]


class LotUse(BaseModel):
    lot: str | None = None
    points: int
    expires_at: str | None = None


class EarnRequest(BaseModel):
    points: int = Field(ge=1, le=MAX_POINTS)
    program: str | None = Field(None, min_length=1, max_length=80)
    order_id: str | None = Field(None, min_length=1, max_length=200)
    note: str | None = Field(None, max_length=200)


class RedeemRequest(EarnRequest):
    pass


class AdjustRequest(BaseModel):
    points: int = Field(ge=-MAX_POINTS, le=MAX_POINTS, description="Points to add (negative: to take); not 0",
                        json_schema_extra={"not": {"const": 0}})
    reason: str = Field(min_length=1, max_length=200, description="Why (required; audited)")
    program: str | None = Field(None, min_length=1, max_length=80)

    @field_validator("reason")
    @classmethod
    def _reason(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("an adjustment needs a reason")
        return value.strip()

    @field_validator("points")
    @classmethod
    def _points(cls, value: int) -> int:
        if value == 0:
            raise ValueError("an adjustment of 0 points changes nothing")
        return value


class EarnResult(BaseModel):
    customer: str
    program: str
    key: str
    earned: int
    lot: str
    available: int
    pending: int


class RedeemResult(BaseModel):
    customer: str
    program: str
    key: str
    redeemed: int
    lots: list[LotUse]
    available: int
    value: float


class AdjustResult(BaseModel):
    customer: str
    program: str
    key: str
    adjusted: int
    lots: list[LotUse]
    before: int
    available: int


# ---------------------------------------------------------------------- helpers
def ledger_error(exc: Exception) -> WebError:
    """A refusal of the ledger as the API's answer (the CLI's sentence)."""
    from retentio.actions.loyalty.book import InsufficientPoints
    from retentio.actions.loyalty.ledger import KeyConflict
    from retentio.actions.loyalty.programs import ProgramError

    text = str(exc)
    if isinstance(exc, InsufficientPoints):
        return WebError(409, "insufficient_points", text, field="points")
    if isinstance(exc, KeyConflict):
        return WebError(409, "idempotency_conflict", text, field="Idempotency-Key")
    if isinstance(exc, ProgramError):
        return WebError(404 if "no such loyalty program" in text else 422, "unknown_program", text, field="program")
    if " is not a member of the " in text:
        return WebError(404, "not_a_member", text, field="customer_id")
    return WebError(422, "invalid", text)


def _known(ws: Any, customer: str) -> None:
    from retentio.services.loyalty import is_customer

    if not is_customer(ws, customer):
        raise WebError(404, "unknown_customer", f"no customer {customer!r}", field="customer_id")


def _respond(response: Response, result: dict[str, Any]) -> None:
    response.headers["Idempotent-Replayed"] = "true" if result.get("replayed") else "false"


def _lots(result: dict[str, Any]) -> list[LotUse]:
    return [LotUse(**x) for x in result.get("lots", [])]


# ---------------------------------------------------------------------- routes
def add_routes(router: APIRouter) -> None:
    @router.get("/loyalty/programs", response_model=ProgramList, tags=["loyalty"])
    def programs(request: Request, limit: Annotated[int, Query(ge=1, le=500)] = 50,
                 offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
                 who: Principal = need("loyalty.read")) -> ProgramList:
        """The workspace's loyalty programs (or the problem that keeps one from being read)."""
        from retentio.services.loyalty import program_summaries

        with web_of(request).read() as ws:
            rows = program_summaries(ws)
        return ProgramList(total=len(rows), items=[ProgramRow(**r) for r in rows[offset:offset + limit]])

    @router.get("/loyalty/members/{customer_id}", response_model=MemberBalances, tags=["loyalty"])
    def member(request: Request, customer_id: CustomerId, who: Principal = need("loyalty.pos")) -> MemberBalances:
        """The member's balance in every program they belong to: available and pending
        points, tier, what expires when, the discount. 404 for an unknown customer."""
        from retentio.services.loyalty import member_balances

        with web_of(request).read() as ws:
            rows = member_balances(ws, customer_id)
            if not rows:
                _known(ws, customer_id)
        return MemberBalances(customer=customer_id, programs=[Balance(**{k: v for k, v in r.items()
                                                                         if k != "customer"}) for r in rows])

    @router.get("/loyalty/members/{customer_id}/history", response_model=HistoryPage, tags=["loyalty"])
    def history(request: Request, customer_id: CustomerId,
                program: Annotated[str | None, Query(min_length=1, max_length=80)] = None,
                limit: Annotated[int, Query(ge=1, le=500)] = 50,
                offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
                who: Principal = need("loyalty.read")) -> HistoryPage:
        """The member's ledger entries and state changes, newest first."""
        from retentio.actions.loyalty.programs import ProgramError
        from retentio.services.loyalty import member_history

        with web_of(request).read() as ws:
            try:
                rows = member_history(ws, customer_id, program)
            except ProgramError as exc:
                raise ledger_error(exc) from None
            if not rows:
                _known(ws, customer_id)
        return HistoryPage(total=len(rows), items=[HistoryRow(**r) for r in rows[offset:offset + limit]])

    @router.post("/loyalty/members/{customer_id}/earn", response_model=EarnResult, tags=["loyalty"],
                 responses=BODY_ERRORS | {409: {"model": ErrorBody, "description": "The key was used for another "
                                                                                    "request"}})
    def earn(request: Request, response: Response, customer_id: CustomerId, body: EarnRequest,
             idempotency_key: KeyHeader = None, who: Principal = need("loyalty.pos")) -> EarnResult:
        """Credit points to a customer (a new lot, expiring by the program's rule); a
        customer who is not yet a member joins."""
        from retentio.data.errors import RetentioError
        from retentio.services.loyalty import ledger

        key = idempotency_key or f"api:{uuid.uuid4().hex}"
        web = web_of(request)
        with web.read() as ws:
            _known(ws, customer_id)
            try:
                book = ledger(ws, body.program, actor=who.actor)
                r = book.earn(customer_id, body.points, key=key, order_id=body.order_id,
                              reason=body.note or "manual")
            except RetentioError as exc:
                raise ledger_error(exc) from None
        audit(web.store, who, "loyalty.earn", customer_id,
              {"program": book.program.name, "points": body.points, "key": key, "order_id": body.order_id,
               "available": r["available"], "replayed": bool(r.get("replayed"))})
        _respond(response, r)
        return EarnResult(customer=customer_id, program=book.program.name, key=key, earned=r["earned"], lot=r["lot"],
                          available=r["available"], pending=r["pending"])

    @router.post("/loyalty/members/{customer_id}/redeem", response_model=RedeemResult, tags=["loyalty"],
                 responses=BODY_ERRORS | {409: {"model": ErrorBody, "description": "Not enough points, or the key was "
                                                                           "used for another request"}})
    def redeem(request: Request, response: Response, customer_id: CustomerId, body: RedeemRequest,
               idempotency_key: KeyHeader = None, who: Principal = need("loyalty.pos")) -> RedeemResult:
        """Spend points, oldest-expiring first. Never overdraws: 409 ``insufficient_points``,
        nothing written."""
        from retentio.data.errors import RetentioError
        from retentio.services.loyalty import ledger

        key = idempotency_key or f"api:{uuid.uuid4().hex}"
        web = web_of(request)
        with web.read() as ws:
            try:
                book = ledger(ws, body.program, actor=who.actor)
                r = book.redeem(customer_id, body.points, key=key, order_id=body.order_id,
                                reason=body.note or "redemption")
            except RetentioError as exc:
                raise ledger_error(exc) from None
        audit(web.store, who, "loyalty.redeem", customer_id,
              {"program": book.program.name, "points": body.points, "key": key, "order_id": body.order_id,
               "available": r["available"], "replayed": bool(r.get("replayed"))})
        _respond(response, r)
        return RedeemResult(customer=customer_id, program=book.program.name, key=key, redeemed=r["redeemed"],
                            lots=_lots(r), available=r["available"], value=r["value"])

    @router.post("/loyalty/members/{customer_id}/adjust", response_model=AdjustResult, tags=["loyalty"],
                 responses=BODY_ERRORS | {409: {"model": ErrorBody, "description": "Would overdraw, or the key was used "
                                                                           "for another request"}})
    def adjust(request: Request, response: Response, customer_id: CustomerId, body: AdjustRequest,
               idempotency_key: KeyHeader = None, who: Principal = need("loyalty.adjust")) -> AdjustResult:
        """A manual correction with a required reason (audited with the balance before
        and after): positive adds a lot, negative takes FIFO and may not overdraw."""
        r, before, name, key = do_adjust(request, who, customer_id, body.points, body.reason, body.program,
                                         idempotency_key)
        _respond(response, r)
        return AdjustResult(customer=customer_id, program=name, key=key, adjusted=r["adjusted"], lots=_lots(r),
                            before=before, available=r["available"])


def do_adjust(request: Request, who: Principal, customer_id: str, points: int, reason: str, program: str | None,
              key: str | None) -> tuple[dict[str, Any], int, str, str]:
    """Adjust a member's points (the API's and the member page's form): the ledger's
    result, the available balance before, the program and the key; audited."""
    from retentio.data.errors import RetentioError
    from retentio.services.loyalty import ledger

    key = key or f"api:{uuid.uuid4().hex}"
    web = web_of(request)
    with web.read() as ws:
        _known(ws, customer_id)
        try:
            book = ledger(ws, program, actor=who.actor)
            r = book.adjust(customer_id, points, key=key, reason=reason)
        except RetentioError as exc:
            raise ledger_error(exc) from None
    # the balance before, from the ledger's own answer (a balance read beforehand could be
    # off by an earn or a redemption landing in between)
    before_used = int(r["available"]) - int(r["adjusted"])
    audit(web.store, who, "loyalty.adjust", customer_id,
          {"program": book.program.name, "points": points, "reason": reason, "key": key,
           "before": before_used, "after": int(r["available"]), "replayed": bool(r.get("replayed"))})
    return r, before_used, book.program.name, key


__all__ = ["add_routes", "do_adjust", "ledger_error"]
