"""The customers API: search, one customer's profile, churn risk and value, and the
At-risk list. Email and phone are masked for roles without ``contacts``; a profile
read with contacts in full is audited (``customer.view``), as is a list of them
(``export.customers`` / ``export.at_risk`` with the row count)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request
from pydantic import BaseModel

from retentio.faces.web.context import web_of
from retentio.faces.web.security import WebError, need
from retentio.services.access import allowed, mask_contacts
from retentio.services.accounts import Principal, audit

CustomerId = Annotated[str, Path(max_length=200)]
Limit = Annotated[int, Query(ge=1, le=500)]
Offset = Annotated[int, Query(ge=0, le=10_000_000)]


class CustomerItem(BaseModel):
    customer_id: str
    name: str | None = None
    email: str | None = None
    phone: str | None = None
    signup_date: str | None = None
    acquisition_channel: str | None = None
    orders: int
    revenue: float
    last_order: str | None = None


class CustomerList(BaseModel):
    total: int
    limit: int
    offset: int
    query: str
    items: list[CustomerItem]


class Churn(BaseModel):
    probability: float | None = None
    score: float | None = None
    band: str | None = None
    value_at_risk: float | None = None
    reasons: list[str] = []
    as_of: str | None = None
    model_version: int | None = None
    snapshot_id: int | None = None


class Segment(BaseModel):
    name: str
    r_score: int | None = None
    f_score: int | None = None
    m_score: int | None = None
    key_customer: bool | None = None
    sleeping: bool | None = None
    as_of: str | None = None
    scoring: str | None = None


class Value(BaseModel):
    clv: float | None = None
    p_alive: float | None = None
    expected_purchases: float | None = None
    expected_spend: float | None = None
    model_version: int | None = None
    horizon: int | None = None
    unit: str | None = None


class Summary(BaseModel):
    orders: int
    revenue: float
    aov: float | None = None
    first_order: str | None = None
    last_order: str | None = None
    orders_all_statuses: int


class Profile(BaseModel):
    """Everything known about one customer (lists newest first, at most 200 rows each;
    ``counts`` gives each table's full count; ``notes`` say why a part is missing)."""

    customer_id: str
    customer: dict[str, Any]
    summary: Summary
    orders: list[dict[str, Any]]
    subscriptions: list[dict[str, Any]]
    events: list[dict[str, Any]]
    surveys: list[dict[str, Any]]
    tickets: list[dict[str, Any]]
    counts: dict[str, int]
    segment: Segment | None = None
    clv: Value | None = None
    churn: Churn | None = None
    loyalty: list[dict[str, Any]]
    messages: list[dict[str, Any]]
    campaigns: list[dict[str, Any]]
    tasks: list[dict[str, Any]]
    notes: dict[str, str]


class Risk(BaseModel):
    customer_id: str
    churn: Churn | None = None
    note: str | None = None


class CustomerValue(BaseModel):
    customer_id: str
    value: Value | None = None
    segment: Segment | None = None
    notes: dict[str, str]


class AtRiskItem(BaseModel):
    customer_id: str
    name: str | None = None
    email: str | None = None
    acquisition_channel: str | None = None
    segment: str | None = None
    probability: float | None = None
    score: float | None = None
    band: str | None = None
    value_at_risk: float | None = None
    reasons: list[str] = []


class AtRiskList(BaseModel):
    total: int
    limit: int
    offset: int
    as_of: str | None = None
    model_version: int | None = None
    snapshot_id: int | None = None
    bands: dict[str, int]
    note: str | None = None
    items: list[AtRiskItem]


def _profile(request: Request, customer_id: str) -> dict[str, Any]:
    from retentio.services.customers import UnknownCustomer, customer_profile

    with web_of(request).read() as ws:
        try:
            return customer_profile(ws, customer_id)
        except UnknownCustomer as exc:
            raise WebError(404, "not_found", str(exc), field="customer_id") from None


def add_routes(router: APIRouter) -> None:
    @router.get("/customers", response_model=CustomerList, tags=["customers"])
    def list_customers(request: Request, q: Annotated[str, Query(max_length=200)] = "", limit: Limit = 50,
                       offset: Offset = 0, who: Principal = need("customers")) -> Any:
        """Customers whose id, name or email contains ``q`` (case-insensitive), by id.
        Email and phone are masked, and not searched, unless the role may see contacts
        (then the read is audited as an export)."""
        from retentio.services.customers import search_customers

        with web_of(request).read() as ws:
            found = search_customers(ws, q, limit=limit, offset=offset, match_email=allowed(who.role, "contacts"))
        found["items"] = [mask_contacts(r, who.role) for r in found["items"]]
        if allowed(who.role, "contacts") and found["items"]:
            audit(web_of(request).store, who, "export.customers", q or None,
                  {"rows": len(found["items"]), "query": q, "via": "api"})
        return found

    @router.get("/customers/{customer_id}", response_model=Profile, tags=["customers"])
    def get_customer(request: Request, customer_id: CustomerId, who: Principal = need("customers")) -> Any:
        """Everything known about one customer: details, orders and other history, RFM
        segment, CLV, churn risk with reasons, loyalty, messages, campaigns, open tasks."""
        profile = _profile(request, customer_id)
        profile["customer"] = mask_contacts(profile["customer"], who.role)
        if allowed(who.role, "contacts"):
            audit(web_of(request).store, who, "customer.view", customer_id, {"via": "api"})
        return profile

    @router.get("/customers/{customer_id}/risk", response_model=Risk, tags=["customers"])
    def customer_risk(request: Request, customer_id: CustomerId, who: Principal = need("customers")) -> Any:
        """The customer's churn risk from the newest score snapshot (probability, band,
        value at risk, reasons); ``churn`` is null with the reason in ``note`` when unscored."""
        p = _profile(request, customer_id)
        return {"customer_id": p["customer_id"], "churn": p["churn"], "note": p["notes"].get("churn")}

    @router.get("/customers/{customer_id}/value", response_model=CustomerValue, tags=["customers"])
    def customer_value(request: Request, customer_id: CustomerId, who: Principal = need("customers")) -> Any:
        """The customer's value: CLV and P(alive) from the newest CLV model, and the RFM segment."""
        p = _profile(request, customer_id)
        notes = {k: v for k, v in p["notes"].items() if k in ("clv", "segment")}
        return {"customer_id": p["customer_id"], "value": p["clv"], "segment": p["segment"], "notes": notes}

    @router.get("/at-risk", response_model=AtRiskList, tags=["customers"])
    def list_at_risk(request: Request, band: Annotated[Literal["low", "medium", "high"] | None, Query()] = None,
                     segment: Annotated[str | None, Query(max_length=100)] = None,
                     channel: Annotated[str | None, Query(max_length=200)] = None, limit: Limit = 50,
                     offset: Offset = 0, who: Principal = need("analytics")) -> Any:
        """Customers of the newest churn score snapshot, most value at risk first, by churn
        band, RFM segment and acquisition channel; ``bands`` counts the matches per band."""
        from retentio.services.customers import at_risk

        with web_of(request).read() as ws:
            found = at_risk(ws, band=band, segment=segment or None, channel=channel or None, limit=limit,
                            offset=offset)
        found["items"] = [mask_contacts(r, who.role) for r in found["items"]]
        if allowed(who.role, "contacts") and found["items"]:
            audit(web_of(request).store, who, "export.at_risk", None, {"rows": len(found["items"]), "via": "api"})
        return found
