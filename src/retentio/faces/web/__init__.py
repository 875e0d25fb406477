"""The web app (FastAPI): the team's pages, the REST API under ``/api/v1`` and the public
pages behind customers' links. Build it with :func:`retentio.faces.web.app.create_app`;
``retentio serve`` runs it with uvicorn.

* :mod:`~retentio.faces.web.app` — the factory, the error answers, the public pages
* :mod:`~retentio.faces.web.context` — the workspace and brief analytics access per request
* :mod:`~retentio.faces.web.security` — credentials, permissions per route, CSRF
* :mod:`~retentio.faces.web.auth_pages` — sign-in, sign-out, language
* :mod:`~retentio.faces.web.pages` — the signed-in pages, one module per area
* :mod:`~retentio.faces.web.api` — the REST API, one module per area

Kept import-light on purpose: FastAPI is imported by :mod:`retentio.faces.web.app` only."""
