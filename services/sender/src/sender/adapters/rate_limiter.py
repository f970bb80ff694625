"""The send-rate bucket shared by every replica: one row in the sender's database.

Each reservation locks the row (`SELECT ... FOR UPDATE`), does the token arithmetic of
`sender.domain.rate_limit` on the database server's clock (one clock for all replicas, so
skew between machines cannot squeeze two slots together), writes it back and commits.
The lock is held for that arithmetic only; the caller then sleeps until its slot.
SQLite (the embedded, single-process default) has no row locks; a process-wide lock
serialises reservations there instead.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from prometheus_client import Histogram
from sqlalchemy import insert, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from reminder_runtime.db import transaction

from ..domain.rate_limit import BucketState, reserve
from .tables import rate_buckets

RATE_LIMIT_WAIT = Histogram(
    "sender_rate_limit_wait_seconds",
    "Time an SMS waited for its send slot",
    buckets=(0, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300),
)

Clock = Callable[[Session], float]

_SQLITE_LOCK = threading.Lock()


def database_clock(session: Session) -> float:
    """Seconds since the epoch, as the database server sees them (microseconds)."""
    dialect = session.get_bind().dialect.name
    if dialect == "sqlite":
        # One process uses a SQLite file: its own clock is the only one.
        return time.time()
    value = session.execute(text("SELECT UNIX_TIMESTAMP(NOW(6))")).scalar_one()
    return float(value)


class DatabaseTokenBucket:
    def __init__(
        self,
        session_factory: sessionmaker[Session],
        *,
        rate: float,
        burst: float,
        name: str = "sms",
        clock: Clock = database_clock,
    ) -> None:
        self.session_factory = session_factory
        self.rate = rate
        self.burst = burst
        self.name = name
        self.clock = clock

    def reserve(self, cost: float = 1.0) -> float:
        """Take `cost` tokens; returns how many seconds to wait before sending."""
        return self.reserve_slot(cost)[1]

    def reserve_slot(self, cost: float = 1.0) -> tuple[float, float]:
        """(the bucket clock's now, seconds to wait): the slot is at now + wait."""
        if self.session_factory.kw["bind"].dialect.name == "sqlite":
            with _SQLITE_LOCK:
                return self._reserve(cost)
        try:
            return self._reserve(cost)
        except IntegrityError:
            # Two replicas created the row at the same moment; it exists now.
            return self._reserve(cost)

    def _reserve(self, cost: float) -> tuple[float, float]:
        with transaction(self.session_factory) as session:
            row = session.execute(
                select(rate_buckets.c.tokens, rate_buckets.c.updated_at)
                .where(rate_buckets.c.name == self.name)
                .with_for_update()
            ).one_or_none()
            now = self.clock(session)
            state = None if row is None else BucketState(row.tokens, row.updated_at)
            reservation = reserve(state, now=now, rate=self.rate, burst=self.burst, cost=cost)
            values = {
                "tokens": reservation.state.tokens,
                "updated_at": reservation.state.updated_at,
            }
            if row is None:
                session.execute(insert(rate_buckets).values(name=self.name, **values))
            else:
                session.execute(
                    update(rate_buckets).where(rate_buckets.c.name == self.name).values(**values)
                )
        RATE_LIMIT_WAIT.observe(reservation.wait_seconds)
        return now, reservation.wait_seconds
