"""The web app (FastAPI): the public pages the feedback loop's links open — a survey's
answer page (``/s/TOKEN``) and the unsubscribe page (``/u/TOKEN``, and
``/unsubscribe?token=`` as links carry it) — and ``/health``. Build it with
:func:`retentio.faces.web.app.create_app`; ``retentio serve`` runs it with uvicorn.

Kept import-light on purpose: FastAPI is imported by :mod:`retentio.faces.web.app` only."""
