"""The HTML retention report (``retentio report``)."""

from retentio.faces.report.build import SECTIONS, build

__all__ = ["SECTIONS", "build"]
