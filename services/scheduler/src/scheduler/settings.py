"""The scheduler's settings: the shared ones plus the reminder policy (UPPER_CASE env)."""

from __future__ import annotations

from pydantic import Field, field_validator

from reminder_runtime.settings import ServiceSettings

from .domain import QuietHours, ReminderPolicy, parse_offsets


class Settings(ServiceSettings):
    service_name: str = "scheduler"
    http_port: int = 8002
    database_url: str = "sqlite:///data/scheduler.db"

    #: Default offsets before each appointment, e.g. `24h`, `48h,2h`, `90m`
    #: (an appointment may carry its own).
    reminder_offsets: str = "24h"
    #: Local-time window in the patient's time zone with no reminders; `off` for none.
    quiet_hours: str = "21:00-08:00"
    #: Timers claimed (and ReminderDue written) per transaction.
    scheduler_batch_size: int = Field(default=500, ge=1, le=10_000)
    #: Longest sleep between looks at the timer table: timers inserted by another
    #: replica are noticed at the latest after this long.
    scheduler_max_sleep_seconds: float = Field(default=30.0, gt=0)

    #: Sent and cancelled timers are deleted this long after their due time.
    scheduler_retention_days: int = Field(default=30, ge=1)

    @field_validator("reminder_offsets")
    @classmethod
    def _readable_offsets(cls, value: str) -> str:
        parse_offsets(value)  # a PolicyError is a ValueError: pydantic reports it by name
        return value

    @field_validator("quiet_hours")
    @classmethod
    def _readable_quiet_hours(cls, value: str) -> str:
        QuietHours.parse(value)
        return value

    @property
    def policy(self) -> ReminderPolicy:
        return ReminderPolicy.parse(self.reminder_offsets, self.quiet_hours)
