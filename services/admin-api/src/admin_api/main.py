"""`python -m admin_api` serves the API; `python -m admin_api migrate` migrates and exits."""

from __future__ import annotations

from reminder_runtime.entrypoint import run

from .app import create_app, migrate
from .settings import Settings


def main(argv: list[str] | None = None) -> int:
    # uvicorn's access log would show query strings (?phone=, ?q=): the API logs its own.
    return run(Settings, create_app, migrate, argv, access_log=False)
