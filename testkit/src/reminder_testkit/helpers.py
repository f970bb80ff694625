"""Small helpers every test suite needs: a free TCP port and polling until something holds."""

from __future__ import annotations

import asyncio
import functools
import socket
import time
from collections.abc import Awaitable, Callable


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def port_answers(host: str, port: int, timeout: float = 0.5) -> bool:
    """True when something accepts a TCP connection on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_for(
    predicate: Callable[[], object],
    timeout: float = 10.0,
    interval: float = 0.05,
    message: str | None = None,
) -> None:
    """Poll `predicate` until it returns something truthy; AssertionError after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return
        if time.monotonic() >= deadline:
            raise AssertionError(message or f"condition not met within {timeout}s: {predicate!r}")
        time.sleep(interval)


async def async_wait_for(
    predicate: Callable[[], object | Awaitable[object]],
    timeout: float = 10.0,  # noqa: ASYNC109 - same signature as wait_for
    interval: float = 0.05,
    message: str | None = None,
) -> None:
    """Like `wait_for`, for the event loop; `predicate` may be sync or async."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if isinstance(result, Awaitable):
            result = await result
        if result:
            return
        if time.monotonic() >= deadline:
            raise AssertionError(message or f"condition not met within {timeout}s: {predicate!r}")
        await asyncio.sleep(interval)


@functools.cache
def docker_available(timeout: float = 2.0) -> bool:
    """Does a Docker daemon answer? Asked once, quickly: most machines running these tests
    have none, and a hanging probe would stall every session."""
    try:
        import docker

        client = docker.from_env(timeout=timeout)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:  # any failure means "no usable daemon"
        return False
