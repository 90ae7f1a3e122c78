"""Alembic environment of the lab index: migrations run on the connection handed in."""

from alembic import context

from safeguard.intel.models import IndexBase

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=IndexBase.metadata,
    render_as_batch=True,
)
with context.begin_transaction():
    context.run_migrations()
