"""The feedback API (being built)."""

from __future__ import annotations

from fastapi import APIRouter


def add_routes(router: APIRouter) -> None:
    return None
