"""Alembic environment: Hongtu runs migrations on a connection it already holds.

``Store.init_schema`` passes its connection in ``config.attributes['connection']`` so the
SpatiaLite extension is loaded and the upgrade runs inside the store's own transaction.
"""

from alembic import context

from app.store.models import Base

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
context.run_migrations()
