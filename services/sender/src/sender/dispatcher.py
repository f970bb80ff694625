"""Sends what the handlers claim: plan -> wait for a send slot -> claim -> publish -> record.

The slot is taken before the attempt is recorded, so an attempt marked 'sending' is
followed by the publish within microseconds (see `sender.handlers` for why that matters
after a crash). Throttling and 5xx are retried here with exponential backoff and full
jitter, each retry taking a new slot; after `SNS_MAX_ATTEMPTS` the SMS fails and the
consumer moves on to the next one, so one failure never holds up the queue behind it.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
import time
from collections.abc import Awaitable, Callable, Coroutine
from datetime import timedelta
from typing import Any, Protocol, TypeVar

from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from reminder_contracts.events import ReminderDue
from reminder_runtime.db import transaction

from . import handlers
from .adapters.sns import PublishFailed
from .domain.delivery import PublishError, Skip, backoff_delay, classify_error
from .handlers import AlreadyHandled, ReplyEvent, SenderConfig, SmsJob

log = logging.getLogger(__name__)

T = TypeVar("T")

RECORD_ATTEMPTS = 5


class SmsGateway(Protocol):
    async def publish(self, phone: str, text: str) -> str: ...


class SendSlots(Protocol):
    def reserve(self, cost: float = 1.0) -> float: ...


class Waker(Protocol):
    def wake(self) -> None: ...


class Pacer:
    """Keeps this process's own publishes at least `cost / rate` apart on its monotonic
    clock. The shared bucket grants slots exactly 1/rate apart, but the claim between slot
    and publish takes a few variable milliseconds, which could bring two publishes a
    little closer than that; this closes the gap for the common single-replica case."""

    def __init__(
        self,
        rate: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.rate = rate
        self.clock = clock
        self.sleep = sleep
        self._next = float("-inf")
        self._lock = asyncio.Lock()

    async def wait(self, cost: float) -> None:
        async with self._lock:
            now = self.clock()
            while self._next > now:
                await self.sleep(self._next - now)
                now = self.clock()  # a late wake-up counts from when it really happened
            self._next = now + cost / self.rate


class Dispatcher:
    def __init__(
        self,
        session_factory: sessionmaker[Session],
        config: SenderConfig,
        gateway: SmsGateway,
        slots: SendSlots,
        *,
        max_attempts: int,
        backoff_base: float,
        backoff_max: float,
        stale_after: timedelta,
        relay: Waker | None = None,
        pacer: Pacer | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.session_factory = session_factory
        self.config = config
        self.gateway = gateway
        self.slots = slots
        self.max_attempts = max_attempts
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.stale_after = stale_after
        self.relay = relay
        self.pacer = pacer
        self.rng = rng or random.Random()
        self._closing = False
        self._in_flight: set[asyncio.Task[None]] = set()

    async def _unit_of_work(self, work: Callable[[Session], T]) -> T:
        def run() -> T:
            with transaction(self.session_factory) as session:
                return work(session)

        return await asyncio.to_thread(run)

    async def _wait_for_slot(self, segments: int) -> None:
        wait = await asyncio.to_thread(self.slots.reserve, float(segments))
        if wait > 0:
            await asyncio.sleep(wait)

    # ------------------------------------------------------------------ reminders

    async def reminder_due(self, event: ReminderDue) -> None:
        plan = await self._unit_of_work(lambda s: handlers.plan_reminder(s, event, self.config))
        if isinstance(plan, AlreadyHandled):
            await self._maybe_close_abandoned(plan)
            return
        if isinstance(plan, SmsJob):
            await self._wait_for_slot(plan.sms.segments)
        await self._guarded(self._claim_and_send_reminder(event))

    async def _claim_and_send_reminder(self, event: ReminderDue) -> None:
        try:
            claimed = await self._unit_of_work(
                lambda s: handlers.claim_reminder(s, event, self.config, handlers.utcnow())
            )
        except IntegrityError:
            return  # another worker claimed this reminder first
        self._wake_relay()
        if isinstance(claimed, SmsJob):
            await self._send(claimed)

    async def _guarded(self, work: Coroutine[Any, Any, None]) -> None:
        """Claim -> publish -> record runs to its end even if the consumer is cancelled
        (shutdown): stopping there would leave an SMS sent but not recorded. Once the
        service is stopping no new claim starts: the event stays uncommitted and comes
        again after the restart."""
        if self._closing:
            work.close()
            await asyncio.Event().wait()  # until the consumer is cancelled
        task = asyncio.create_task(work)
        self._in_flight.add(task)
        task.add_done_callback(self._in_flight.discard)
        await asyncio.shield(task)

    async def drain(self) -> None:
        """Let the sends under way finish; start no new one."""
        self._closing = True
        if self._in_flight:
            await asyncio.gather(*self._in_flight, return_exceptions=True)

    # ------------------------------------------------------------------ replies

    async def reply(self, event: ReplyEvent) -> None:
        plan = await self._unit_of_work(lambda s: handlers.plan_reply(s, event, self.config))
        if plan is None or isinstance(plan, Skip):
            if isinstance(plan, Skip):
                await self._unit_of_work(
                    lambda s: handlers.claim_reply(s, event, self.config, handlers.utcnow())
                )
            return
        if isinstance(plan, AlreadyHandled):
            await self._maybe_close_abandoned(plan)
            return
        await self._wait_for_slot(plan.sms.segments)
        await self._guarded(self._claim_and_send_reply(event))

    async def _claim_and_send_reply(self, event: ReplyEvent) -> None:
        try:
            claimed = await self._unit_of_work(
                lambda s: handlers.claim_reply(s, event, self.config, handlers.utcnow())
            )
        except IntegrityError:
            return
        if isinstance(claimed, SmsJob):
            await self._send(claimed)

    # ------------------------------------------------------------------ sending

    async def _send(self, job: SmsJob) -> None:
        attempts, outcome = await self._publish_with_retries(job)
        record: Callable[[Session], bool]
        if isinstance(outcome, str):
            record = functools.partial(
                handlers.record_sent,
                delivery_id=job.delivery_id,
                message_id=outcome,
                attempts=attempts,
                now=handlers.utcnow(),
            )
        else:
            error, failure = outcome
            record = functools.partial(
                handlers.record_failed,
                delivery_id=job.delivery_id,
                error_code=error.code,
                error=failure.message or failure.code,
                retryable=error.retryable,
                attempts=attempts,
                now=handlers.utcnow(),
            )
        await self._record(record)
        self._wake_relay()

    async def _record(self, record: Callable[[Session], bool]) -> None:
        """The outcome of an SMS already published must not be lost to a database blip:
        tried a few times (~6 s in all) before giving up, which leaves the attempt
        'sending' for the sweeper (unknown_outcome)."""
        for attempt in range(RECORD_ATTEMPTS):
            try:
                await self._unit_of_work(record)
                return
            except DBAPIError:
                if attempt == RECORD_ATTEMPTS - 1:
                    raise
                log.warning("recording an sms outcome failed; retrying", exc_info=True)
                await asyncio.sleep(0.2 * 2**attempt)

    async def _publish_with_retries(
        self, job: SmsJob
    ) -> tuple[int, str | tuple[PublishError, PublishFailed]]:
        """(attempts made, the SNS MessageId or the error that ended the attempts)."""
        for attempt in range(1, self.max_attempts + 1):
            if self.pacer is not None:
                await self.pacer.wait(job.sms.segments)
            try:
                return attempt, await self.gateway.publish(job.phone, job.sms.text)
            except PublishFailed as exc:
                error = classify_error(exc.code, exc.http_status)
                if not error.retryable or attempt == self.max_attempts:
                    return attempt, (error, exc)
                delay = backoff_delay(
                    attempt - 1, base=self.backoff_base, cap=self.backoff_max, rng=self.rng
                )
                log.info(
                    "sns publish retried",
                    extra={"error_code": exc.code, "attempt": attempt, "delay": delay},
                )
                await asyncio.sleep(delay)
                await self._wait_for_slot(job.sms.segments)
        raise AssertionError("unreachable: max_attempts >= 1")

    # ------------------------------------------------------------------ crash recovery

    async def _maybe_close_abandoned(self, plan: AlreadyHandled) -> None:
        # A redelivered event whose attempt is stuck in 'sending' is how a crash usually
        # shows up again; close old ones now rather than at the next sweep.
        if plan.state == "sending":
            await self.close_abandoned()

    async def close_abandoned(self) -> int:
        closed = await self._unit_of_work(
            lambda s: handlers.close_abandoned(
                s, now=handlers.utcnow(), stale_after=self.stale_after
            )
        )
        if closed:
            log.warning("closed abandoned sms attempts as unknown_outcome", extra={"count": closed})
            self._wake_relay()
        return closed

    def _wake_relay(self) -> None:
        if self.relay is not None:
            self.relay.wake()


class AbandonedAttemptSweeper:
    """Background worker: periodically closes attempts a crashed replica left 'sending'."""

    def __init__(self, dispatcher: Dispatcher, interval_seconds: float) -> None:
        self.dispatcher = dispatcher
        self.interval = interval_seconds
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="sending-sweeper")

    async def _run(self) -> None:
        while True:
            try:
                await self.dispatcher.close_abandoned()
            except Exception:
                log.exception("sweeping abandoned attempts failed; will try again")
            await asyncio.sleep(self.interval)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    @property
    def healthy(self) -> bool:
        return self._task is not None and not self._task.done()


class DispatcherDrain:
    """Background-worker face of the dispatcher: on shutdown (stopped before the broker
    and its consumers) it lets sends under way finish and recorded."""

    def __init__(self, dispatcher: Dispatcher) -> None:
        self.dispatcher = dispatcher
        self._running = False

    def start(self) -> None:
        self._running = True

    async def stop(self) -> None:
        await self.dispatcher.drain()
        self._running = False

    @property
    def healthy(self) -> bool:
        return self._running
