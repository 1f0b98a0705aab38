"""Alembic environment: uses the engine handed over by pulsecheck.storage.migrate."""

from __future__ import annotations

from alembic import context

from pulsecheck.storage.models import declare_all

config = context.config
engine = config.attributes.get("engine")
if engine is None:  # plain `alembic` command line, with alembic.ini
    from pulsecheck.storage.db import make_engine

    engine = make_engine(config.get_main_option("sqlalchemy.url") or "sqlite:///pulsecheck.db")

with engine.begin() as connection:
    context.configure(
        connection=connection,
        target_metadata=declare_all(),  # every table: most are declared on first use
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    context.run_migrations()
