"""Alembic environment of the scheduler (run through `reminder_runtime.migrations.upgrade`)."""

from reminder_runtime.migrations import run_env
from scheduler.adapters.tables import metadata

run_env(metadata)
