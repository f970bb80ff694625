"""Alembic, per service: each service keeps its own `migrations/` folder and version table."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import MetaData, engine_from_config, pool


def alembic_config(script_location: str | Path, url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(script_location))
    # `%` would be read as interpolation by configparser.
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(script_location: str | Path, url: str, revision: str = "head") -> None:
    """`alembic upgrade head` for one service's database."""
    command.upgrade(alembic_config(script_location, url), revision)


def run_env(metadata: MetaData) -> None:
    """The body of a service's `migrations/env.py`: online migrations against its URL."""
    from alembic import context

    config = context.config
    connectable = engine_from_config(
        config.get_section(config.config_ini_section, {}),
        prefix="sqlalchemy.",
        poolclass=pool.NullPool,
    )
    with connectable.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=metadata,
            render_as_batch=connection.dialect.name == "sqlite",  # SQLite ALTER TABLE limits
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()
