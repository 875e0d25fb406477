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
write / check a playbook                    :func:`retentio.services.campaigns.new_playbook`, ``check_playbook``
plan a campaign (dry run)                   :func:`retentio.services.campaigns.plan_campaign`
run campaigns (record, send exactly once)   :func:`retentio.services.campaigns.run_campaigns`
send what is due                            :func:`retentio.services.campaigns.deliver_due`
look back at runs, explain a customer       :func:`retentio.services.campaigns.list_runs`, ``show_run``, ``why``
suppression lists                           :func:`retentio.services.campaigns.suppress`, ``import_suppressions``
measure campaigns against control groups    :func:`retentio.services.measurement.measure_campaigns`
train an uplift model (file or campaign)    :func:`retentio.services.uplift.train_on_table`, ``train_on_campaign``
answer a survey by its signed link          :func:`retentio.services.surveys.answer_survey`
survey response rates and scores            :func:`retentio.services.surveys.survey_report`
copy link answers into the surveys table    :func:`retentio.services.surveys.sync_answers`
open follow-up tasks from the data          :func:`retentio.services.feedback_tasks.sync_tasks`
list / show / change follow-up tasks        :func:`retentio.services.feedback_tasks.tasks`, ``task``, ``change_task``
follow-up SLA and its effect                :func:`retentio.services.feedback_tasks.sla_report`
themes of comments (ru and en)              :func:`retentio.services.feedback_insights.feedback_themes`
exit reasons                                :func:`retentio.services.feedback_insights.exit_reasons`
==========================================  ===============================================
"""
