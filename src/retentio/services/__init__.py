"""Services: one entry per use case between the analytics/actions and the faces (being built)."""
