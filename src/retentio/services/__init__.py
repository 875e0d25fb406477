"""Services: one entry per use case between the analytics/actions and the faces, typed
parameters in and typed results out. Every face (the command line, the report, the web
API) calls these and only presents what they return.

==========================================  ===============================================
use case                                    entry
==========================================  ===============================================
create a workspace                          :func:`retentio.services.data.create_workspace`
load a file or frame into a table           :func:`retentio.services.data.load_table`
see what is loaded                          :func:`retentio.services.data.describe_tables`
export the tables                           :func:`retentio.services.data.export_tables`
set up the demo business                    :func:`retentio.services.data.prepare_demo`
retention metrics per period                :func:`retentio.services.retention.retention_metrics`
acquisition cohorts                         :func:`retentio.services.retention.cohort_retention`
RFM segments                                :func:`retentio.services.retention.customer_segments`
lifecycle states                            :func:`retentio.services.retention.customer_lifecycle`
repeat-purchase and subscription funnels    :func:`retentio.services.retention.funnels`
fit a CLV model                             :func:`retentio.services.clv.fit_model`
value customers (one horizon)               :func:`retentio.services.clv.value_customers`
value acquisition channels (LTV : CAC)      :func:`retentio.services.clv.value_channels`
check a CLV model on a holdout              :func:`retentio.services.clv.check_holdout`
train the churn model                       :func:`retentio.services.churn.train_churn`
cross-validate on a snapshot table          :func:`retentio.services.churn.cross_validate_table`
score churn risk (kept as a snapshot)       :func:`retentio.services.churn.score_churn`
gather the report's facts                   :func:`retentio.services.report.report_data`
==========================================  ===============================================
"""
