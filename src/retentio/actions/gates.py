"""The gates between an eligible customer and a message: one order, one reason.

Every eligible customer is first randomised to treatment or control (:func:`arms`);
then **both arms pass the same gates**, in this order, and the first gate that stops a
customer is their recorded reason:

1. ``no_address`` / ``no_consent`` — no email (or phone) for the channel, or no consent
   for it (marketing messages; service messages need only the address);
2. ``unsubscribed`` / ``bounced`` / ``complained`` / ``suppressed`` — on the channel's
   suppression list (service messages too: an opt-out is respected);
3. ``global_control`` — in the workspace's global control group, which never receives
   any campaign;
4. ``holdout`` — the campaign's control group;
5. ``frequency_cap`` — marketing messages only: the customer already has ``cap``
   messages sent, queued or withheld (a control customer's message counts as if sent,
   so later campaigns treat both arms of this one alike) in the last ``days`` days; the
   messages with the higher expected value keep their places;
6. quiet hours do not stop a message: it waits (``not_before``) until they end.

A control customer is checked against the frequency cap too (``capped``): one who
passes every gate has the message that *would* have been sent recorded (``withheld``),
so treatment and control stay comparable after the same gates (Kohavi, Tang & Xu 2020,
*Trustworthy Online Controlled Experiments*, ch. 3: randomise at eligibility, analyse
by assignment).

The arm is a seeded hash of campaign and customer (BLAKE2b, RFC 7693): the same
customer lands in the same arm on every run and machine, without storing a random
state.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

#: the gates' reasons, in the order they are checked
REASONS = ("no_address", "no_consent", "unsubscribed", "bounced", "complained", "suppressed", "global_control",
           "holdout", "frequency_cap")


def unit_hash(salt: str, ids: pd.Series) -> np.ndarray:
    """A number in [0, 1) per id: the first 8 bytes of BLAKE2b(salt ‖ id) / 2⁶⁴."""
    key = salt.encode() + b"\x00"
    return np.fromiter((int.from_bytes(hashlib.blake2b(key + str(i).encode(), digest_size=8).digest(), "big")
                        for i in ids), dtype="float64", count=len(ids)) / 2.0**64


def arms(campaign: str, customers: pd.Series, control_pct: float, seed: str = "") -> np.ndarray:
    """``control`` for a hashed ``control_pct`` % of customers, else ``treatment``."""
    u = unit_hash(f"holdout:{campaign}:{seed}", customers)
    return np.where(u < control_pct / 100.0, "control", "treatment")


def global_control(customers: pd.Series, pct: float) -> np.ndarray:
    """True for the workspace's global control group (the same customers for every campaign)."""
    if pct <= 0:
        return np.zeros(len(customers), dtype=bool)
    return unit_hash("global-control", customers) < pct / 100.0


def _truthy(series: pd.Series) -> np.ndarray:
    return series.map(lambda v: v is True or (isinstance(v, (int, float, np.bool_)) and bool(v) and v == v)
                      or (isinstance(v, str) and v.strip().lower() in ("true", "1", "yes"))).to_numpy(dtype=bool)


def cap_ranks(frame: pd.DataFrame, open_: np.ndarray) -> np.ndarray:
    """Each open row's place among its customer's open messages, most valuable first
    (1, 2, ...); closed rows get 0."""
    order = frame.assign(_open=open_).sort_values(["_open", "expected_value"], ascending=[False, False],
                                                  kind="stable")
    rank = order.assign(_o=order._open.astype(int)).groupby("customer_id")._o.cumsum()
    return rank.reindex(frame.index).to_numpy() * open_


def apply_gates(frame: pd.DataFrame, *, channel: str, consent: str, message_class: str,
                suppressed: dict[str, set[str]], global_pct: float, sent_recently: pd.Series,
                cap: int) -> tuple[pd.Series, np.ndarray]:
    """The first gate that stops each row of ``frame`` (address, consent columns, arm,
    expected_value, customer_id) — None for a treatment message that goes — and whether
    the frequency cap stops it (for control rows: whether their message would have been
    stopped). ``suppressed`` maps a reason to the addresses and customer ids it covers;
    ``sent_recently`` counts marketing messages per customer in the cap's window."""
    reason = pd.Series([None] * len(frame), index=frame.index, dtype=object)

    def stop(mask: np.ndarray, why: str) -> None:
        reason[mask & reason.isna().to_numpy()] = why

    address = normalize_addresses(frame.address, channel="email" if consent == "email" else "sms")
    stop((address == "").to_numpy(), "no_address")
    if message_class == "marketing":
        column = "consent_email" if consent == "email" else "consent_sms"
        stop(~_truthy(frame[column]), "no_consent")
    for why, targets in suppressed.items():
        stop((address.isin(targets) | frame.customer_id.isin(targets)).to_numpy(), why)
    stop(global_control(frame.customer_id, global_pct), "global_control")
    capped = np.zeros(len(frame), dtype=bool)
    if message_class == "marketing":
        open_ = reason.isna().to_numpy()
        already = frame.customer_id.map(sent_recently).fillna(0).to_numpy()
        capped = open_ & (already + cap_ranks(frame, open_) > cap)
    stop((frame.arm == "control").to_numpy(), "holdout")
    stop(capped, "frequency_cap")
    return reason, capped


def normalize_addresses(addresses: pd.Series, *, channel: str) -> pd.Series:
    """Addresses as suppression lists keep them: email lower-cased, phones as ``+`` and
    digits (``+7 900 000-00-73`` → ``+79000000073``); empty for none."""
    text = addresses.fillna("").astype(str).str.strip()
    if channel == "email":
        return text.str.lower()
    plus = text.str.startswith("+")
    digits = text.str.replace(r"\D", "", regex=True)
    return digits.where(~plus | (digits == ""), "+" + digits)


def normalize_address(address: str | None, *, channel: str) -> str | None:
    """One address in the form of :func:`normalize_addresses` (None for none)."""
    if not address:
        return None
    return normalize_addresses(pd.Series([address]), channel=channel).iloc[0] or None


def quiet_until(now: dt.datetime, timezone: str, start: str, end: str) -> dt.datetime | None:
    """When quiet hours (``start``–``end`` in ``timezone``, e.g. 21:00–09:00) hold at
    ``now``: the UTC time they end; otherwise None."""
    tz = ZoneInfo(timezone)
    local = now.astimezone(tz)
    s_h, s_m = (int(x) for x in start.split(":"))
    e_h, e_m = (int(x) for x in end.split(":"))
    minutes = local.hour * 60 + local.minute
    s, e = s_h * 60 + s_m, e_h * 60 + e_m
    inside = (s <= minutes < e) if s < e else (minutes >= s or minutes < e)
    if not inside or s == e:
        return None
    ends = local.replace(hour=e_h, minute=e_m, second=0, microsecond=0)
    if ends <= local:
        ends += dt.timedelta(days=1)
    return ends.astimezone(dt.UTC)


__all__ = ["REASONS", "apply_gates", "arms", "cap_ranks", "global_control", "normalize_address", "normalize_addresses",
           "quiet_until", "unit_hash"]
