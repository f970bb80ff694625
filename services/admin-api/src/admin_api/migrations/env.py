"""Alembic environment of the admin API (run through `reminder_runtime.migrations.upgrade`)."""

from admin_api.adapters.tables import metadata
from reminder_runtime.migrations import run_env

run_env(metadata)
