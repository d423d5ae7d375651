"""Alembic environment: the engine comes from sender.core.db, never from an ini file."""

from alembic import context

from sender.core.db import get_engine
from sender.core.models import Base

config = context.config
engine = config.attributes.get("engine")
if engine is None:  # plain `alembic` command line
    from sender.core.config import get_settings

    engine = get_engine(get_settings().database_url)

with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
