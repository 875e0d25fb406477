"""The signed-in pages' words, one module per area (merged by retentio.faces.web.i18n_app)."""
