"""`python -m scheduler` serves the scheduler; `python -m scheduler migrate` migrates and exits."""

from __future__ import annotations

from reminder_runtime.entrypoint import run

from .app import create_app, migrate
from .settings import Settings


def main(argv: list[str] | None = None) -> int:
    return run(Settings, create_app, migrate, argv)
