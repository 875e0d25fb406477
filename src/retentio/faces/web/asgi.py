"""The web app as an ASGI application factory for any ASGI server, e.g. several worker
processes behind a proxy::

    RETENTIO_WORKSPACE=/srv/shop uvicorn --factory retentio.faces.web.asgi:app --workers 4 \
        --proxy-headers --forwarded-allow-ips 10.0.0.5

Each worker builds its own app on the workspace named by ``$RETENTIO_WORKSPACE``. Sessions,
sign-in throttling, API keys and the audit log live in the workspace's store, so every
worker sees the same ones (use PostgreSQL for the store when several workers write a lot).
"""

from __future__ import annotations

import os

from fastapi import FastAPI

from retentio.data.errors import RetentioError
from retentio.data.settings import ENV_WORKSPACE

#: "1": cookies are always Secure (else: when the request came over HTTPS, which behind a
#: proxy the server learns from X-Forwarded-Proto — trust the proxy with the ASGI server's
#: forwarded-allow-ips)
ENV_SECURE = "RETENTIO_SECURE_COOKIES"


def app() -> FastAPI:
    """The app on ``$RETENTIO_WORKSPACE`` (cookies Secure when a request came over HTTPS)."""
    from retentio.faces.web.app import create_app

    path = os.environ.get(ENV_WORKSPACE)
    if not path:
        raise RetentioError(f"set ${ENV_WORKSPACE} to the workspace the web app serves")
    return create_app(path, warm=True, secure_cookies=True if os.environ.get(ENV_SECURE) == "1" else None)


__all__ = ["ENV_SECURE", "ENV_WORKSPACE", "app"]
