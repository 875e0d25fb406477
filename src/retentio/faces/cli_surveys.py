"""Commands of the ``feedback`` group (see :mod:`retentio.faces.cli_feedback`)."""

from __future__ import annotations

from retentio.faces.cli_feedback import feedback_app  # noqa: F401 - commands register on it
