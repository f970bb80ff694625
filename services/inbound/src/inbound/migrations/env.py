"""Alembic environment of the inbound service."""

from inbound.adapters.tables import metadata
from reminder_runtime.migrations import run_env

run_env(metadata)
