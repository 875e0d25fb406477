"""Unsubscribe links, read without writing: what a signed unsubscribe token asks for,
so the confirmation page (GET — mail scanners open links) can say who and which
channel before anything changes; and the unsubscribing itself (the RFC 8058 one-click
POST), which :func:`retentio.services.campaigns.unsubscribe` also calls."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from retentio.data.workspace import Workspace


def unsubscribe_request(ws: Workspace, token: str) -> dict[str, str]:
    """What ``token`` asks for — ``customer_id``, ``channel``, ``campaign`` — checked
    against the workspace's key; :class:`retentio.data.errors.RetentioError` when it was
    not signed with it (tampered, or another workspace's). Nothing is written."""
    from retentio.actions.unsubscribe import verify_token, workspace_secret

    asked = verify_token(workspace_secret(ws.path), token)
    return {"customer_id": asked.customer_id, "channel": asked.channel, "campaign": asked.campaign}


def unsubscribe_by_token(ws: Workspace, token: str) -> dict[str, str | int]:
    """Unsubscribe as the token asks (refused, nothing written, when its signature does
    not match): that customer is suppressed on that channel for good. Repeating it
    changes nothing: ``added`` is 1 the first time, 0 after."""
    from retentio.actions.ledger import add_suppressions

    asked = unsubscribe_request(ws, token)
    added = add_suppressions(ws.store, [{"channel": asked["channel"], "customer_id": asked["customer_id"],
                                         "kind": "unsubscribe"}], f"link:{asked['campaign']}")
    return asked | {"added": added}


__all__ = ["unsubscribe_by_token", "unsubscribe_request"]
