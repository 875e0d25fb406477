"""The store's access tables: who may use the web app and the API, and what they did.

* ``users`` — a person who signs in: email (lower-cased, unique), an Argon2id password
  hash (the PHC string, which carries its own parameters so an old hash is recognised and
  upgraded on the next sign-in), a role, a language for the pages, and when the account
  was disabled (a disabled account cannot sign in and its sessions end).
* ``web_sessions`` — one signed-in browser. The cookie holds a random token; the table
  holds only its SHA-256, so a copy of the store does not sign anybody in. Each session
  has its own CSRF token, an absolute expiry, the last time it was used (for the idle
  expiry) and when it was ended (logout, password reset, disabled account): a session is
  valid only while ``ended_at`` is empty and neither expiry has passed — checked on the
  server for every request, so logging out really ends it.
* ``api_keys`` — a machine client (a till, the shop, the CRM): a role, a name, the key's
  public prefix (to tell keys apart in lists and logs) and the SHA-256 of the whole key
  (the key is 256 random bits, so a fast hash is as safe as a slow one and keeps every
  API call cheap), when it was revoked and last used. The key itself is shown once.
* ``login_failures`` — failed sign-ins by account and by address, for throttling.
* ``audit_log`` — every state-changing action: when, who (``user:EMAIL``,
  ``apikey:PREFIX``, ``cli:NAME``), with which role, from where, what, on what, and a
  JSON detail (before/after of an adjustment). Append-only: a database trigger refuses
  UPDATE and DELETE (migration ``0007``).

Times are UTC. Created by migration ``0007``.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, CheckConstraint, DateTime, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from retentio.data.store.tables import Base, check_in

#: every role, in the order the app lists them (what each may do: retentio.services.access)
ROLES = ("admin", "analyst", "marketer", "support", "pos", "integration")
#: page languages
LANGUAGES = ("en", "ru")


class User(Base):
    """A person who signs in to the web app."""

    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint(check_in("role", ROLES), name="ck_users_role"),
        CheckConstraint(check_in("language", LANGUAGES), name="ck_users_language"),
        CheckConstraint("email = lower(email)", name="ck_users_email_lower"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(20))
    language: Mapped[str] = mapped_column(String(2), default="en")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    password_changed_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    disabled_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class WebSession(Base):
    """One signed-in browser (see the module docstring)."""

    __tablename__ = "web_sessions"
    __table_args__ = (
        CheckConstraint("expires_at > created_at", name="ck_web_sessions_expiry"),
        Index("ix_web_sessions_user", "user_id"),
    )

    #: SHA-256 (hex) of the cookie's token
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    last_seen_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    address: Mapped[str | None] = mapped_column(String(64), nullable=True)
    user_agent: Mapped[str | None] = mapped_column(String(300), nullable=True)


class ApiKey(Base):
    """A machine client's key (see the module docstring)."""

    __tablename__ = "api_keys"
    __table_args__ = (CheckConstraint(check_in("role", ROLES), name="ck_api_keys_role"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    prefix: Mapped[str] = mapped_column(String(16), unique=True)
    #: SHA-256 (hex) of the whole key
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    created_by: Mapped[str] = mapped_column(String(300))
    revoked_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    last_used_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class LoginFailure(Base):
    """One failed sign-in (for throttling by account and by address)."""

    __tablename__ = "login_failures"
    __table_args__ = (Index("ix_login_failures_email_at", "email", "at"),
                      Index("ix_login_failures_address_at", "address", "at"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    email: Mapped[str] = mapped_column(String(254))
    address: Mapped[str] = mapped_column(String(64))


class AuditEntry(Base):
    """One state-changing action (append-only; see the module docstring)."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_at", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    actor: Mapped[str] = mapped_column(String(300))
    role: Mapped[str | None] = mapped_column(String(20), nullable=True)
    address: Mapped[str | None] = mapped_column(String(64), nullable=True)
    action: Mapped[str] = mapped_column(String(80))
    target: Mapped[str | None] = mapped_column(String(300), nullable=True)
    detail: Mapped[dict] = mapped_column(JSON)
