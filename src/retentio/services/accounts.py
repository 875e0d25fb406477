"""People and machines that use the web app and the API: users with Argon2id password
hashes, browser sessions, API keys, sign-in throttling and the audit log.

Sources and choices
-------------------
* Passwords: Argon2id (RFC 9106), through argon2-cffi with its default parameters (RFC
  9106's second recommended option, 64 MiB, 3 passes); the PHC string keeps the
  parameters, and a hash made with older ones is replaced at the next successful sign-in
  (``check_needs_rehash``). NIST SP 800-63B §5.1.1.2: at least 8 characters (we ask 10),
  no composition rules, long passphrases allowed (up to 1,024 characters).
* Sessions: a 256-bit random token in the cookie, only its SHA-256 stored; a CSRF token
  per session (OWASP's synchroniser-token pattern); 12 hours absolute and 2 hours idle
  expiry, checked on the server for every request, and ended for good by logout, a
  password reset or a disabled account (OWASP Session Management Cheat Sheet).
* Throttling: 5 failed sign-ins within 15 minutes, counted per account and per address,
  refuse further attempts until the oldest falls out of the window — without looking at
  the password, and with the same message whether or not the account exists (no user
  enumeration; an unknown email still costs a hash verification, so timing tells
  nothing either).
* API keys: ``rk_`` + an 8-character public prefix + ``_`` + 43 characters of secret
  (256 bits); stored as the prefix and the SHA-256 of the whole key.

Every change here (users, keys, sign-ins) is written to the audit log in the same
transaction as the change itself.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from retentio.data.errors import RetentioError
from retentio.data.store.access_tables import LANGUAGES, ROLES, ApiKey, AuditEntry, LoginFailure, User, WebSession
from retentio.services.access import KEY_ROLES

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from retentio.data.store import Store

MIN_PASSWORD = 10
MAX_PASSWORD = 1024
SESSION_HOURS = 12
IDLE_MINUTES = 120
THROTTLE_FAILURES = 5
THROTTLE_MINUTES = 15
#: the last-seen time is written at most this often (every request would be a write)
_TOUCH_SECONDS = 60


class AccessRefused(RetentioError):
    """A sign-in, session or key that is not accepted (the message is safe to show)."""


class Throttled(AccessRefused):
    """Too many failed sign-ins; ``retry_after`` seconds until the next attempt counts."""

    def __init__(self, message: str, retry_after: int):
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True)
class Principal:
    """Who is acting: a signed-in user, an API key, or the command line."""

    kind: str  # "user" | "apikey" | "cli"
    name: str  # the email, the key's prefix, the OS user
    role: str | None
    address: str | None = None
    user_id: int | None = None
    session_id: str | None = None
    csrf_token: str | None = None
    language: str = "en"

    @property
    def actor(self) -> str:
        return f"{self.kind}:{self.name}"


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _aware(t: dt.datetime) -> dt.datetime:
    # SQLite hands back naive datetimes for timezone-aware columns; they were written in UTC
    return t.replace(tzinfo=dt.UTC) if t.tzinfo is None else t


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _hasher():
    from argon2 import PasswordHasher

    return PasswordHasher()  # argon2id, RFC 9106's second recommended parameters


_DUMMY_HASH: list[str] = []


def _dummy_hash() -> str:
    if not _DUMMY_HASH:
        _DUMMY_HASH.append(_hasher().hash(secrets.token_urlsafe(16)))
    return _DUMMY_HASH[0]


def check_password(password: str) -> str:
    """``password`` when acceptable (NIST SP 800-63B lengths), else :class:`RetentioError`."""
    if not isinstance(password, str) or len(password) < MIN_PASSWORD:
        raise RetentioError(f"password: at least {MIN_PASSWORD} characters, please")
    if len(password) > MAX_PASSWORD:
        raise RetentioError(f"password: at most {MAX_PASSWORD} characters")
    return password


def normal_email(email: str) -> str:
    """The email as stored (trimmed, lower-case), or :class:`RetentioError` naming the field."""
    e = (email or "").strip().lower()
    local, at, domain = e.partition("@")
    if not (local and at and "." in domain and " " not in e and len(e) <= 254):
        raise RetentioError(f"email: {email!r} is not an email address")
    return e


def record(session: Session, actor: Principal, action: str, target: str | None = None,
           detail: dict[str, Any] | None = None, *, at: dt.datetime | None = None) -> None:
    """Append one audit entry in ``session`` (the transaction of the change it records)."""
    session.add(AuditEntry(at=at or now(), actor=actor.actor[:300], role=actor.role, address=actor.address,
                           action=action, target=None if target is None else str(target)[:300],
                           detail=detail or {}))


def audit(store: Store, actor: Principal, action: str, target: str | None = None,
          detail: dict[str, Any] | None = None) -> None:
    """Append one audit entry in its own transaction (for actions whose own change lives
    elsewhere, e.g. a campaign run, or that change nothing, e.g. an export)."""
    with store.session() as s:
        record(s, actor, action, target, detail)


def audit_entries(store: Store, *, limit: int = 100, offset: int = 0, actor: str | None = None,
                  action: str | None = None) -> dict[str, Any]:
    """The audit log, newest first: ``{"total", "items": [...]}``."""
    from sqlalchemy import func, select

    q = select(AuditEntry)
    if actor:
        q = q.where(AuditEntry.actor == actor)
    if action:
        q = q.where(AuditEntry.action == action)
    with store.session() as s:
        total = s.scalar(select(func.count()).select_from(q.subquery())) or 0
        rows = s.scalars(q.order_by(AuditEntry.id.desc()).limit(limit).offset(offset)).all()
        items = [{"id": r.id, "at": _aware(r.at).isoformat(), "actor": r.actor, "role": r.role,
                  "address": r.address, "action": r.action, "target": r.target, "detail": r.detail}
                 for r in rows]
    return {"total": int(total), "items": items}


# ---------------------------------------------------------------------- users
def _user_dict(u: User) -> dict[str, Any]:
    return {"id": u.id, "email": u.email, "role": u.role, "language": u.language,
            "created_at": _aware(u.created_at).isoformat(),
            "disabled": u.disabled_at is not None}


def add_user(store: Store, email: str, password: str, role: str, *, actor: Principal,
             language: str = "en") -> dict[str, Any]:
    """Create a user (exit 2 on a taken email, an unknown role or a short password)."""
    from sqlalchemy import select

    e = normal_email(email)
    if role not in ROLES:
        raise RetentioError(f"role: {role!r} is not one of {', '.join(ROLES)}")
    if language not in LANGUAGES:
        raise RetentioError(f"language: {language!r} is not one of {', '.join(LANGUAGES)}")
    digest = _hasher().hash(check_password(password))
    t = now()
    with store.session() as s:
        if s.scalar(select(User.id).where(User.email == e)) is not None:
            raise RetentioError(f"email: a user {e} already exists (reset their password with `retentio user reset`)")
        u = User(email=e, password_hash=digest, role=role, language=language, created_at=t, password_changed_at=t)
        s.add(u)
        s.flush()
        record(s, actor, "user.add", e, {"role": role})
        return _user_dict(u)


def users(store: Store) -> list[dict[str, Any]]:
    from sqlalchemy import select

    with store.session() as s:
        return [_user_dict(u) for u in s.scalars(select(User).order_by(User.email))]


def _user(s: Session, email: str) -> User:
    from sqlalchemy import select

    e = normal_email(email)
    u = s.scalar(select(User).where(User.email == e))
    if u is None:
        raise RetentioError(f"email: no user {e}")
    return u


def _end_sessions(s: Session, user_id: int, at: dt.datetime) -> int:
    from sqlalchemy import update

    result = s.execute(update(WebSession).where(WebSession.user_id == user_id, WebSession.ended_at.is_(None))
                       .values(ended_at=at))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def set_disabled(store: Store, email: str, disabled: bool, *, actor: Principal) -> dict[str, Any]:
    """Disable (ending every session) or re-enable a user."""
    t = now()
    with store.session() as s:
        u = _user(s, email)
        before = u.disabled_at is not None
        u.disabled_at = t if disabled else None
        ended = _end_sessions(s, u.id, t) if disabled else 0
        record(s, actor, "user.disable" if disabled else "user.enable", u.email,
               {"before": {"disabled": before}, "after": {"disabled": disabled}, "sessions_ended": ended})
        return _user_dict(u) | {"sessions_ended": ended}


def reset_password(store: Store, email: str, password: str, *, actor: Principal) -> dict[str, Any]:
    """Set a new password and end every session of the user."""
    digest = _hasher().hash(check_password(password))
    t = now()
    with store.session() as s:
        u = _user(s, email)
        u.password_hash = digest
        u.password_changed_at = t
        ended = _end_sessions(s, u.id, t)
        record(s, actor, "user.reset", u.email, {"sessions_ended": ended})
        return _user_dict(u) | {"sessions_ended": ended}


def set_language(store: Store, user_id: int, language: str, *, actor: Principal) -> None:
    if language not in LANGUAGES:
        raise RetentioError(f"language: {language!r} is not one of {', '.join(LANGUAGES)}")
    with store.session() as s:
        u = s.get(User, user_id)
        if u is not None and u.language != language:
            record(s, actor, "user.language", u.email, {"before": u.language, "after": language})
            u.language = language


# ---------------------------------------------------------------------- sign-in
def _throttle_wait(s: Session, email: str, address: str, t: dt.datetime) -> int:
    """Seconds until ``email`` and ``address`` may try again (0: now)."""
    from sqlalchemy import func, select

    since = t - dt.timedelta(minutes=THROTTLE_MINUTES)
    wait = 0
    for column, value in ((LoginFailure.email, email), (LoginFailure.address, address)):
        q = select(LoginFailure.at).where(column == value, LoginFailure.at > since)
        n = s.scalar(select(func.count()).select_from(q.subquery())) or 0
        if n >= THROTTLE_FAILURES:
            times = sorted(_aware(x) for x in s.scalars(q))
            oldest_counting = times[-THROTTLE_FAILURES]
            wait = max(wait, int((oldest_counting + dt.timedelta(minutes=THROTTLE_MINUTES) - t).total_seconds()) + 1)
    return wait


_THROTTLE_LOCK = 0x52_45_54_4C  # "RETL": PostgreSQL advisory lock of the sign-in bookkeeping


def sign_in(store: Store, email: str, password: str, *, address: str, user_agent: str | None = None,
            at: dt.datetime | None = None, previous: str | None = None) -> tuple[str, Principal]:
    """Check the credentials and open a session: ``(cookie token, principal)``.
    ``previous``: the cookie token the browser still holds, whose session is ended.

    Raises :class:`Throttled` after too many failures (nothing checked) and
    :class:`AccessRefused` with one message for every other refusal.

    Each attempt first records itself as a failure, in the same transaction that counts
    the recent failures (SQLite's BEGIN IMMEDIATE, an advisory lock on PostgreSQL), and
    a correct password removes that record: attempts made at the same moment cannot all
    pass a count taken before any of them was recorded."""
    from argon2.exceptions import InvalidHashError, VerificationError
    from sqlalchemy import delete, select, text

    t = at or now()
    e = (email or "").strip().lower()[:254]
    address = (address or "unknown")[:64]
    with store.session() as s:
        if s.get_bind().dialect.name == "postgresql":
            s.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _THROTTLE_LOCK})
        wait = _throttle_wait(s, e, address, t)
        if not wait:
            attempt = LoginFailure(at=t, email=e, address=address)
            s.add(attempt)
            s.flush()
            attempt_id = attempt.id
            # failures older than a day count for nothing: keep the table small
            s.execute(delete(LoginFailure).where(LoginFailure.at < t - dt.timedelta(days=1)))
    if wait:
        raise Throttled(f"too many failed sign-ins; try again in {(wait + 59) // 60} min", wait)
    hasher = _hasher()
    with store.session() as s:
        u = s.scalar(select(User).where(User.email == e))
        ok = False
        try:
            ok = hasher.verify(u.password_hash if u is not None else _dummy_hash(), password or "")
        except (VerificationError, InvalidHashError):
            ok = False
        if not ok or u is None or u.disabled_at is not None:
            record(s, Principal("user", e or "?", None, address), "signin.failed", e or None)
        else:
            s.execute(delete(LoginFailure).where(LoginFailure.id == attempt_id))
            if hasher.check_needs_rehash(u.password_hash):
                u.password_hash = hasher.hash(password)  # parameters changed since: upgrade the hash
            if previous:
                s.execute(_session_end(previous, t))
            token = secrets.token_urlsafe(32)
            session_row = WebSession(id=_sha256(token), user_id=u.id, csrf_token=secrets.token_urlsafe(32),
                                     created_at=t, expires_at=t + dt.timedelta(hours=SESSION_HOURS),
                                     last_seen_at=t, address=address, user_agent=(user_agent or "")[:300] or None)
            s.add(session_row)
            who = Principal("user", u.email, u.role, address, u.id, session_row.id, session_row.csrf_token,
                            u.language)
            record(s, who, "signin", u.email)
            return token, who
    raise AccessRefused("wrong email or password")


def _session_end(token: str, at: dt.datetime) -> Any:
    """The UPDATE that ends the session of a cookie token (if it is still open)."""
    from sqlalchemy import update

    return (update(WebSession).where(WebSession.id == _sha256(token), WebSession.ended_at.is_(None))
            .values(ended_at=at))


def session_principal(store: Store, token: str | None, *, address: str | None = None,
                      at: dt.datetime | None = None) -> Principal | None:
    """The signed-in user of a session cookie, or None when it is unknown, ended, expired,
    idle too long or its user disabled. Read without the write lock; the last-seen time
    is written at most once a minute."""
    from sqlalchemy import update

    if not token or len(token) > 200:
        return None
    t = at or now()
    sid = _sha256(token)
    with store.reading() as s:
        row = s.get(WebSession, sid)
        if row is None or row.ended_at is not None:
            return None
        last_seen = _aware(row.last_seen_at)
        if t >= _aware(row.expires_at) or t - last_seen > dt.timedelta(minutes=IDLE_MINUTES):
            return None
        u = s.get(User, row.user_id)
        if u is None or u.disabled_at is not None:
            return None
        who = Principal("user", u.email, u.role, address, u.id, sid, row.csrf_token, u.language)
    if (t - last_seen).total_seconds() > _TOUCH_SECONDS:
        with store.session() as s:
            s.execute(update(WebSession).where(WebSession.id == sid, WebSession.last_seen_at < t)
                      .values(last_seen_at=t))
    return who


def sign_out(store: Store, who: Principal) -> None:
    """End the session for good (its cookie no longer signs in, whatever the browser keeps)."""
    from sqlalchemy import update

    if who.session_id is None:
        return
    with store.session() as s:
        s.execute(update(WebSession).where(WebSession.id == who.session_id, WebSession.ended_at.is_(None))
                  .values(ended_at=now()))
        record(s, who, "signout", who.name)


def csrf_matches(expected: str | None, given: str | None) -> bool:
    """Constant-time comparison of CSRF tokens (an empty one never matches)."""
    return bool(expected) and bool(given) and hmac.compare_digest(str(expected), str(given))


# ---------------------------------------------------------------------- API keys
KEY_PREFIX = "rk_"


def create_key(store: Store, name: str, role: str, *, actor: Principal) -> dict[str, Any]:
    """A new API key: the result's ``key`` is the only time it is shown."""
    if role not in KEY_ROLES:
        raise RetentioError(f"role: an API key's role is one of {', '.join(KEY_ROLES)}, not {role!r}")
    name = (name or "").strip()
    if not name or len(name) > 100:
        raise RetentioError("name: 1 to 100 characters, please (e.g. the till or system that uses the key)")
    prefix = secrets.token_hex(4)
    key = f"{KEY_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    t = now()
    with store.session() as s:
        row = ApiKey(prefix=prefix, key_hash=_sha256(key), name=name, role=role, created_at=t,
                     created_by=actor.actor[:300])
        s.add(row)
        s.flush()
        record(s, actor, "apikey.create", prefix, {"name": name, "role": role})
        return {"id": row.id, "prefix": prefix, "name": name, "role": role, "key": key,
                "created_at": t.isoformat()}


def keys(store: Store) -> list[dict[str, Any]]:
    from sqlalchemy import select

    with store.session() as s:
        return [{"id": k.id, "prefix": k.prefix, "name": k.name, "role": k.role,
                 "created_at": _aware(k.created_at).isoformat(), "created_by": k.created_by,
                 "revoked": k.revoked_at is not None,
                 "last_used_at": _aware(k.last_used_at).isoformat() if k.last_used_at else None}
                for k in s.scalars(select(ApiKey).order_by(ApiKey.id))]


def revoke_key(store: Store, prefix: str, *, actor: Principal) -> dict[str, Any]:
    from sqlalchemy import select

    with store.session() as s:
        k = s.scalar(select(ApiKey).where(ApiKey.prefix == (prefix or "").strip()))
        if k is None:
            raise RetentioError(f"prefix: no API key {prefix!r} (see `retentio apikey list`)")
        was = k.revoked_at is not None
        if not was:
            k.revoked_at = now()
            record(s, actor, "apikey.revoke", k.prefix, {"name": k.name, "role": k.role})
        return {"prefix": k.prefix, "name": k.name, "revoked": True, "already": was}


def key_principal(store: Store, key: str | None, *, address: str | None = None) -> Principal | None:
    """The client of an API key, or None when the key is unknown or revoked (read without
    the write lock; the last-used time is written at most once a minute)."""
    from sqlalchemy import select, update

    if not key or not key.startswith(KEY_PREFIX) or len(key) > 200:
        return None
    digest = _sha256(key)
    t = now()
    with store.reading() as s:
        k = s.scalar(select(ApiKey).where(ApiKey.key_hash == digest))
        if k is None or k.revoked_at is not None:
            return None
        who = Principal("apikey", k.prefix, k.role, address)
        stale = k.last_used_at is None or (t - _aware(k.last_used_at)).total_seconds() > _TOUCH_SECONDS
        key_id = k.id
    if stale:
        with store.session() as s:
            s.execute(update(ApiKey).where(ApiKey.id == key_id).values(last_used_at=t))
    return who


def cli_principal() -> Principal:
    """The person at the terminal (the OS user name), for the audit log of CLI changes."""
    import getpass

    try:
        name = getpass.getuser()
    except Exception:  # noqa: BLE001 - no user name in some containers
        name = "unknown"
    return Principal("cli", name, "admin")


__all__ = ["AccessRefused", "IDLE_MINUTES", "KEY_PREFIX", "Principal", "SESSION_HOURS", "THROTTLE_FAILURES",
           "THROTTLE_MINUTES", "Throttled", "add_user", "audit", "audit_entries", "check_password", "cli_principal",
           "create_key", "csrf_matches", "key_principal", "keys", "normal_email", "record", "reset_password",
           "revoke_key", "session_principal", "set_disabled", "set_language", "sign_in", "sign_out", "users"]
