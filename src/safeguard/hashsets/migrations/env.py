"""Alembic environment of the hash library: migrations run on the connection handed in."""

from alembic import context

from safeguard.hashsets.models import LibraryBase

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=LibraryBase.metadata,
    render_as_batch=True,
)
with context.begin_transaction():
    context.run_migrations()
