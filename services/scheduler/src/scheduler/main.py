"""`python -m scheduler` serves the scheduler; `python -m scheduler migrate` migrates and exits."""

from __future__ import annotations

import sys

import uvicorn

from reminder_runtime.logging import configure_logging

from .app import create_app, migrate
from .settings import Settings


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    settings = Settings()
    configure_logging(settings.service_name, settings.log_level)
    if args == ["migrate"]:
        migrate(settings)
        return 0
    if args:
        sys.stderr.write("usage: python -m scheduler [migrate]\n")
        return 2
    uvicorn.run(
        create_app(settings),
        host=settings.http_host,
        port=settings.http_port,
        log_config=None,  # JSON logs from configure_logging
        timeout_graceful_shutdown=20,
    )
    return 0
