"""`python -m scheduler`, but killed with SIGKILL at a chosen point (for test_crash.py).

python crashing_scheduler.py before-mark    # timers claimed, ReminderDue written to the
                                            # outbox, timers not yet marked: in the txn
python crashing_scheduler.py after-publish  # the relay published to Kafka, and dies
                                            # before marking the outbox rows published
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy.orm import Session

from reminder_runtime.relay import OutboxRelay
from scheduler.adapters.repository import SchedulerRepository
from scheduler.main import main


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def crash_before_mark() -> None:
    def mark_emitted(
        self: SchedulerRepository, reminder_ids: Sequence[UUID], now: datetime
    ) -> None:
        if reminder_ids:
            self.session.flush()
            _die()

    SchedulerRepository.mark_emitted = mark_emitted  # type: ignore[method-assign]


def crash_after_publish() -> None:
    def _mark(self: OutboxRelay, session: Session, ids: list[int]) -> Any:
        _die()

    OutboxRelay._mark = _mark  # type: ignore[method-assign]


if __name__ == "__main__":
    {"before-mark": crash_before_mark, "after-publish": crash_after_publish}[sys.argv[1]]()
    sys.exit(main([]))
