"""What `python -m <service>` does, for every service: serve, or migrate and exit."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TypeVar

import uvicorn
from fastapi import FastAPI

from .logging import configure_logging
from .settings import ServiceSettings

S = TypeVar("S", bound=ServiceSettings)


def run(
    settings_type: Callable[[], S],
    create_app: Callable[[S], FastAPI],
    migrate: Callable[[S], None],
    argv: list[str] | None = None,
    *,
    access_log: bool = True,
) -> int:
    """`python -m <pkg>` serves (uvicorn, JSON logs, graceful SIGTERM);
    `python -m <pkg> migrate` applies the service's migrations and exits."""
    args = sys.argv[1:] if argv is None else argv
    settings = settings_type()
    configure_logging(settings.service_name, settings.log_level)
    if args == ["migrate"]:
        migrate(settings)
        return 0
    if args:
        sys.stderr.write(f"usage: python -m {settings.service_name.replace('-', '_')} [migrate]\n")
        return 2
    uvicorn.run(
        create_app(settings),
        host=settings.http_host,
        port=settings.http_port,
        log_config=None,  # JSON logs from configure_logging
        access_log=access_log,  # off where query strings may carry PHI (a service logs its own)
        timeout_graceful_shutdown=20,
    )
    return 0
