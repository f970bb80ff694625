"""`python -m admin_api` serves the API; `python -m admin_api migrate` migrates and exits."""

from __future__ import annotations

import sys

import uvicorn

from .app import create_app, migrate
from .settings import Settings


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    settings = Settings()
    if args == ["migrate"]:
        migrate(settings)
        return 0
    if args:
        print("usage: python -m admin_api [migrate]", file=sys.stderr)  # noqa: T201
        return 2
    uvicorn.run(
        create_app(settings),
        host=settings.http_host,
        port=settings.http_port,
        log_config=None,
        access_log=False,  # ours (api.install_access_log) leaves out PHI in query strings
        timeout_graceful_shutdown=20,
    )
    return 0
