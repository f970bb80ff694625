"""`python -m inbound` serves the app; `python -m inbound migrate` migrates and exits."""

from __future__ import annotations

from inbound.app import MIGRATIONS, create_app
from inbound.settings import Settings
from reminder_runtime.entrypoint import run
from reminder_runtime.migrations import upgrade


def migrate(settings: Settings) -> None:
    upgrade(MIGRATIONS, settings.database_url)


def main(argv: list[str] | None = None) -> int:
    return run(Settings, create_app, migrate, argv)
