"""Alembic environment: migrations run on the connection the store hands over (one
transaction for the whole upgrade, so a failing migration leaves the previous schema)."""

from alembic import context

import retentio.data.store.access_tables  # noqa: F401 - registers the users, sessions, API keys and audit log
import retentio.data.store.campaign_tables  # noqa: F401 - registers the campaign tables on Base.metadata
import retentio.data.store.loyalty_tables  # noqa: F401 - and the loyalty tables
import retentio.data.store.survey_tables  # noqa: F401 - and the survey tables
import retentio.data.store.task_tables  # noqa: F401 - and the follow-up task tables
from retentio.data.store.tables import Base

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    # SQLite cannot ALTER most things: Alembic's batch mode copies the table instead
    render_as_batch=connection.dialect.name == "sqlite",
    transaction_per_migration=False,
)
with context.begin_transaction():
    context.run_migrations()
