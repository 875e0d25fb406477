"""The loyalty pages (being built)."""

from __future__ import annotations

from fastapi import FastAPI


def add_routes(app: FastAPI) -> None:
    return None
