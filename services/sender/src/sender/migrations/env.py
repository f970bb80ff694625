"""Alembic environment of the sender service."""

from reminder_runtime.migrations import run_env
from sender.adapters.tables import metadata

run_env(metadata)
