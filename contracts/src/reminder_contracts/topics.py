"""Topic names. One topic per kind of aggregate and producer; keys are aggregate ids."""

from __future__ import annotations

from typing import Final

PATIENTS: Final = "patients"  # admin-api: PatientRegistered, PatientUpdated
APPOINTMENTS: Final = "appointments"  # admin-api: Appointment* and AttendanceRecorded
REMINDERS: Final = "reminders"  # scheduler: ReminderDue
DELIVERIES: Final = "deliveries"  # sender: ReminderSent / Failed / Skipped, AutoReplySent
REPLIES: Final = "replies"  # inbound: AppointmentConfirmed / Declined, PatientOpted*, ...

ALL_TOPICS: Final = (PATIENTS, APPOINTMENTS, REMINDERS, DELIVERIES, REPLIES)


def dead_letter_topic(consumer_group: str) -> str:
    """Each consumer group has its own dead-letter topic, so a replay reaches only it."""
    return f"dlt.{consumer_group}"
