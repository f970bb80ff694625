"""Polling helpers fail with a message, and succeed as soon as the condition holds."""

from __future__ import annotations

import socket

import pytest

from reminder_testkit import async_wait_for, free_port, wait_for

pytestmark = pytest.mark.unit


def test_free_port_can_be_bound() -> None:
    port = free_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))


def test_wait_for_returns_once_true() -> None:
    calls = iter([False, False, True])
    wait_for(lambda: next(calls), timeout=2, interval=0.001)


def test_wait_for_raises_with_message() -> None:
    with pytest.raises(AssertionError, match="never ready"):
        wait_for(lambda: False, timeout=0.05, interval=0.01, message="never ready")


async def test_async_wait_for_accepts_async_predicates() -> None:
    calls = iter([False, True])

    async def ready() -> bool:
        return next(calls)

    await async_wait_for(ready, timeout=2, interval=0.001)
    with pytest.raises(AssertionError, match="condition not met"):
        await async_wait_for(lambda: False, timeout=0.05, interval=0.01)
