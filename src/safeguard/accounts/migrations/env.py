"""Alembic environment of the accounts database: migrations run on the connection handed in."""

from alembic import context

from safeguard.accounts.models import AccountsBase

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=AccountsBase.metadata,
    render_as_batch=True,
)
with context.begin_transaction():
    context.run_migrations()
