"""Who may do what: the roles of the web app and the API, and masking of personal data.

A role is a set of permissions; every route of the app names the one permission it needs
(:mod:`retentio.faces.web.security`), so this table is the whole policy:

=============  ===================================================================
role           may
=============  ===================================================================
admin          everything, users and API keys, the audit log, settings
analyst        read everything (analytics, customers, campaigns, loyalty,
               feedback), train models — no sending, no changes to customers
marketer       read analytics and customers, edit playbooks, plan, approve and run
               campaigns
support        customer profiles with contacts, feedback tasks, survey answers,
               loyalty look-ups and adjustments (with a reason)
pos            loyalty only: balance, earn, redeem (a till)
integration    a shop's or CRM's system: customers' risk and value, metrics,
               loyalty earn/redeem, survey answers, data loads
=============  ===================================================================

Contacts (email, phone) are shown in full only to roles holding ``contacts``; others
see them masked (:func:`mask_email`, :func:`mask_phone`), following the data
minimisation principle of the GDPR (Art. 5(1)(c)) and Russia's 152-FZ (Art. 5).
"""

from __future__ import annotations

from retentio.data.store.access_tables import ROLES

#: every permission a route can ask for
PERMISSIONS = (
    "analytics",        # KPIs, cohorts, segments, CLV, churn lists
    "customers",        # customer search and profiles
    "contacts",         # unmasked email and phone; exports of personal data
    "models",           # train churn / CLV models
    "campaigns.read",   # playbooks, plans, runs, results
    "campaigns.edit",   # write playbooks
    "campaigns.run",    # approve and run campaigns (sends messages)
    "loyalty.read",     # programs, members, balances, ledgers, stats
    "loyalty.pos",      # earn and redeem at a till
    "loyalty.adjust",   # manual adjustments (with a reason)
    "feedback.read",    # survey results, themes, exits
    "feedback.tasks",   # work the task inbox
    "feedback.answer",  # record a survey answer through the API
    "data.read",        # tables loaded, load history
    "data.load",        # upload / load files
    "admin",            # users, API keys, audit log
)

_READ = {"analytics", "customers", "campaigns.read", "loyalty.read", "feedback.read", "data.read"}

#: what each role may do (see the module docstring)
ROLE_PERMISSIONS: dict[str, frozenset[str]] = {
    "admin": frozenset(PERMISSIONS),
    "analyst": frozenset(_READ | {"models"}),
    "marketer": frozenset(_READ | {"campaigns.edit", "campaigns.run"}),
    "support": frozenset({"customers", "contacts", "loyalty.read", "loyalty.adjust", "loyalty.pos",
                          "feedback.read", "feedback.tasks", "feedback.answer"}),
    "pos": frozenset({"loyalty.pos"}),
    "integration": frozenset({"analytics", "customers", "loyalty.read", "loyalty.pos", "feedback.answer",
                              "data.read", "data.load"}),
}
assert set(ROLE_PERMISSIONS) == set(ROLES)
#: roles an API key may carry (people sign in; machines use keys)
KEY_ROLES = ("pos", "integration", "analyst", "admin")


def allowed(role: str | None, permission: str) -> bool:
    """Whether ``role`` holds ``permission`` (an unknown permission is a programming error)."""
    if permission not in PERMISSIONS:
        raise ValueError(f"unknown permission {permission!r}")
    return role is not None and permission in ROLE_PERMISSIONS.get(role, frozenset())


def mask_email(email: str | None) -> str | None:
    """``anna.petrova@example.com`` → ``a•••@example.com`` (the domain stays: it tells a
    company address from a personal one without naming the person)."""
    if not email:
        return email
    local, at, domain = str(email).partition("@")
    return f"{local[:1]}•••{at}{domain}" if at else f"{local[:1]}•••"


def mask_phone(phone: str | None) -> str | None:
    """``+7 912 345-67-89`` → ``•••89`` (the last two digits, to confirm a number read out)."""
    if not phone:
        return phone
    digits = [c for c in str(phone) if c.isdigit()]
    return "•••" + "".join(digits[-2:])


def mask_contacts(row: dict, role: str | None) -> dict:
    """``row`` with its ``email`` and ``phone`` masked unless ``role`` may see contacts."""
    if allowed(role, "contacts"):
        return row
    out = dict(row)
    if "email" in out:
        out["email"] = mask_email(out["email"])
    if "phone" in out:
        out["phone"] = mask_phone(out["phone"])
    return out


def mask_address(address: str | None, role: str | None) -> str | None:
    """A message's recipient (an email address or a phone number) masked like the
    contact it is, unless ``role`` may see contacts."""
    if not address or allowed(role, "contacts"):
        return address
    return mask_email(address) if "@" in str(address) else mask_phone(address)


def mask_recipients(rows: list[dict], role: str | None, field: str = "to") -> list[dict]:
    """``rows`` (messages, failures) with their recipient masked (see :func:`mask_address`)."""
    return [r | {field: mask_address(r.get(field), role)} if field in r else r for r in rows]


__all__ = ["KEY_ROLES", "PERMISSIONS", "ROLES", "ROLE_PERMISSIONS", "allowed", "mask_address", "mask_contacts",
           "mask_email", "mask_phone", "mask_recipients"]
