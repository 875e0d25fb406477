"""Services: one entry per use case between the analytics/actions and the faces, typed
parameters in and typed results out. So far: :mod:`retentio.services.clv` (fit a CLV model,
value customers, value channels, check a holdout) and :mod:`retentio.services.churn` (train,
cross-validate a table, score). Loading, metrics, cohorts, segments and the report
still call the lower layers from the faces."""
