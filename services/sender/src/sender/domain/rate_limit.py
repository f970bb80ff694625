"""A token bucket that hands out send slots: the arithmetic, with no clock and no storage.

Reservation style: a caller always takes its tokens at once, the bucket may go negative,
and the caller waits `wait_seconds` for its slot. Taking and waiting are separate so the
bucket (a database row shared by every replica) is locked only for the arithmetic, never
during the wait, and slots come out exactly `cost / rate` seconds apart however many
callers race for them.

Tokens are SMS *parts* (segments): AWS quotas for origination numbers are message parts
per second (10DLC long code about 1, toll-free 3), so a two-segment SMS costs two tokens.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class BucketState:
    tokens: float
    updated_at: float  # seconds on the bucket's clock


@dataclass(frozen=True)
class Reservation:
    state: BucketState
    wait_seconds: float


def reserve(
    state: BucketState | None, *, now: float, rate: float, burst: float, cost: float
) -> Reservation:
    """Take `cost` tokens at `now` from a bucket filling at `rate`/s up to `burst`."""
    if rate <= 0 or burst <= 0 or cost <= 0:
        raise ValueError("rate, burst and cost must be positive")
    if state is None:
        tokens = burst
    else:
        # A clock that steps back (another replica's) must never mint tokens.
        elapsed = max(0.0, now - state.updated_at)
        tokens = min(burst, state.tokens + elapsed * rate)
    updated_at = max(now, state.updated_at) if state is not None else now
    remaining = tokens - cost
    wait = max(0.0, -remaining / rate) + max(0.0, updated_at - now)
    return Reservation(BucketState(tokens=remaining, updated_at=updated_at), wait_seconds=wait)
