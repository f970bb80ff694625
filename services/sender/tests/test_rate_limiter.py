"""The shared send-rate bucket in the database: exact slots under concurrency, with a fake
clock (accuracy) and with the database's own clock (two engines = two replicas)."""

from __future__ import annotations

import itertools
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy.orm import Session, sessionmaker

from reminder_runtime.db import make_engine, make_session_factory
from sender.adapters.rate_limiter import DatabaseTokenBucket, database_clock

pytestmark = pytest.mark.integration


class FakeClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self, _: Session) -> float:
        return self.now


def test_racing_replicas_get_slots_exactly_one_interval_apart_on_a_fake_clock(
    session_factory: sessionmaker[Session], sender_database_url: str
) -> None:
    clock = FakeClock(1_000.0)
    # Two replicas (own engines and pools) hammering the same bucket row.
    other_engine = make_engine(sender_database_url)
    buckets = [
        DatabaseTokenBucket(session_factory, rate=4, burst=1, clock=clock),
        DatabaseTokenBucket(make_session_factory(other_engine), rate=4, burst=1, clock=clock),
    ]
    with ThreadPoolExecutor(max_workers=8) as pool:
        waits = list(pool.map(lambda i: buckets[i % 2].reserve(), range(20)))
    other_engine.dispose()
    # Every caller arrived at the same instant: slots 0, 0.25, 0.5, ... 4.75 s, no two equal.
    assert sorted(waits) == pytest.approx([i / 4 for i in range(20)], abs=1e-9)

    # Time passes on the fake clock: the bucket does not refill beyond its burst.
    clock.now += 60
    assert buckets[0].reserve() == 0
    assert buckets[1].reserve() == pytest.approx(0.25)
    # A two-part SMS takes two slots' worth.
    assert buckets[0].reserve(cost=2) == pytest.approx(0.75)
    assert buckets[1].reserve() == pytest.approx(1.0)


def test_the_database_clock_keeps_the_rate_across_replicas(
    session_factory: sessionmaker[Session], sender_database_url: str
) -> None:
    other_engine = make_engine(sender_database_url)
    buckets = [
        DatabaseTokenBucket(session_factory, rate=10, burst=1, clock=database_clock),
        DatabaseTokenBucket(make_session_factory(other_engine), rate=10, burst=1),
    ]
    with ThreadPoolExecutor(max_workers=4) as pool:
        reserved = list(pool.map(lambda i: buckets[i % 2].reserve_slot(), range(12)))
    other_engine.dispose()
    slots = sorted(now + wait for now, wait in reserved)
    gaps = [b - a for a, b in itertools.pairwise(slots)]
    # No two sends closer than 1/rate (to the database clock's microsecond), and the
    # callers arriving together were not spread out more than needed.
    assert min(gaps) >= 0.1 - 1e-5
    assert max(gaps) < 0.1 + 0.05
