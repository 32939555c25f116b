"""Alembic environment: the portal's models and the app's database URL."""

from __future__ import annotations

import logging
from logging.config import fileConfig

from alembic import context
from flask import current_app

import portal.core.models  # noqa: F401 - registers every table
from portal.core.models.base import in_autogenerate
from portal.extensions import db

config = context.config
if config.config_file_name and not logging.getLogger().handlers:
    fileConfig(config.config_file_name)

target_metadata = db.metadata


def _render_item(type_: str, obj: object, autogen_context: object) -> str | bool:
    # Our UTC type is stored as a plain DateTime: keep migrations free of app imports.
    from portal.core.models.base import UtcDateTime

    if type_ == "type" and isinstance(obj, UtcDateTime):
        return "sa.DateTime()"
    return False


def run_migrations_offline() -> None:
    context.configure(
        url=current_app.config["DATABASE_URL"],
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=True,
        render_item=_render_item,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    # Tests hand in their own connection; otherwise use the app's engine.
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    with db.engine.connect() as connection:
        _run(connection)


def _run(connection: object) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=True,  # SQLite needs batch mode to alter tables
        compare_type=True,
        render_item=_render_item,
        include_object=in_autogenerate,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
