"""Deciding what a reply is about: which appointment, which patients, which event.

Pure logic over a snapshot of the service's projections (patients, appointments,
reminders sent), so every rule below is unit-tested without a database.

Rules (also in the service README):

- Opt-out, opt-in and help concern the phone number, not an appointment: AWS opts a
  number out, not a person. Every patient registered with that number gets their own
  event; an unknown number gets one event without a patient.
- Confirm / decline concern one appointment:
  1. `previousPublishedMessageId` names the message replied to (AWS: the last one we
     sent that number): a reminder (its `ReminderSent`) or an auto-reply about an
     appointment (its `AutoReplySent`); that appointment, if it has not started and was
     not cancelled.
  2. Otherwise, across *all* patients sharing the number, the soonest upcoming appointment
     that was reminded and is still unanswered; failing that, the soonest upcoming reminded
     one already answered (so YES then NO ends declined: a later answer replaces an
     earlier one).
  3. No upcoming reminded appointment: unmatched (`no_upcoming_appointment`), naming the
     appointment it most likely concerns (the named reminder's, else the most recent
     reminded one) so staff can follow up. A reply after the appointment is such a case.
- Free text: unmatched (`not_understood`), kept for staff, once per patient sharing the
  number (or once without a patient for an unknown number).
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from .keywords import Intent, Understood


@dataclass(frozen=True, slots=True)
class PatientView:
    patient_id: UUID
    language: str


@dataclass(frozen=True, slots=True)
class AppointmentView:
    appointment_id: UUID
    patient_id: UUID
    starts_at: datetime | None
    cancelled: bool
    #: The latest reminder sent for it (None: never reminded).
    last_reminder_id: UUID | None
    #: When the patient last confirmed or declined it (None: unanswered).
    answered_at: datetime | None

    @property
    def reminded(self) -> bool:
        return self.last_reminder_id is not None

    def upcoming_at(self, instant: datetime) -> bool:
        return not self.cancelled and self.starts_at is not None and self.starts_at > instant


@dataclass(frozen=True, slots=True)
class NamedReminder:
    """What `previousPublishedMessageId` resolved to: a `ReminderSent` we consumed, or an
    `AutoReplySent` about an appointment (reminder_id None: the patient answered our
    acknowledgement, e.g. NO after "Thanks, confirmed")."""

    reminder_id: UUID | None
    appointment_id: UUID
    patient_id: UUID | None


class Outcome(enum.Enum):
    CONFIRMED = "AppointmentConfirmed"
    DECLINED = "AppointmentDeclined"
    OPTED_OUT = "PatientOptedOut"
    OPTED_IN = "PatientOptedIn"
    HELP = "HelpRequested"
    UNMATCHED = "ReplyUnmatched"


class UnmatchedReason(enum.Enum):
    UNKNOWN_NUMBER = "unknown_number"
    NO_UPCOMING_APPOINTMENT = "no_upcoming_appointment"
    NOT_UNDERSTOOD = "not_understood"


@dataclass(frozen=True, slots=True)
class Decision:
    """One event to emit."""

    outcome: Outcome
    patient_id: UUID | None
    language: str
    appointment_id: UUID | None = None
    reminder_id: UUID | None = None
    reason: UnmatchedReason | None = None


_PHONE_OUTCOMES = {
    Intent.OPT_OUT: Outcome.OPTED_OUT,
    Intent.OPT_IN: Outcome.OPTED_IN,
    Intent.HELP: Outcome.HELP,
}


def decide(
    understood: Understood,
    patients: Sequence[PatientView],
    appointments: Sequence[AppointmentView],
    named_reminder: NamedReminder | None,
    received_at: datetime,
    default_language: str = "en",
) -> list[Decision]:
    """The events a reply turns into (at least one)."""
    language_of = {
        p.patient_id: understood.language_for(p.language, default_language) for p in patients
    }
    unknown_language = understood.language_for(None, default_language)

    def per_patient(
        outcome: Outcome, reason: UnmatchedReason | None = None, appointment_id: UUID | None = None
    ) -> list[Decision]:
        if not patients:
            return [Decision(outcome, None, unknown_language, reason=reason)]
        return [
            Decision(
                outcome,
                p.patient_id,
                language_of[p.patient_id],
                appointment_id=appointment_id,
                reason=reason,
            )
            for p in _ordered(patients)
        ]

    if understood.intent in _PHONE_OUTCOMES:
        return per_patient(_PHONE_OUTCOMES[understood.intent])
    if not patients:
        return per_patient(Outcome.UNMATCHED, UnmatchedReason.UNKNOWN_NUMBER)
    if understood.intent is Intent.NOT_UNDERSTOOD:
        return per_patient(Outcome.UNMATCHED, UnmatchedReason.NOT_UNDERSTOOD)

    outcome = Outcome.CONFIRMED if understood.intent is Intent.CONFIRM else Outcome.DECLINED
    ours = {p.patient_id for p in patients}
    mine = [a for a in appointments if a.patient_id in ours]
    by_id = {a.appointment_id: a for a in mine}

    if named_reminder is not None and named_reminder.appointment_id in by_id:
        named = by_id[named_reminder.appointment_id]
        if named.upcoming_at(received_at):
            return [
                Decision(
                    outcome,
                    named.patient_id,
                    language_of[named.patient_id],
                    appointment_id=named.appointment_id,
                    reminder_id=named_reminder.reminder_id or named.last_reminder_id,
                )
            ]
        return [_unmatched_about(named, language_of)]

    chosen = choose_appointment(mine, received_at)
    if chosen is not None:
        return [
            Decision(
                outcome,
                chosen.patient_id,
                language_of[chosen.patient_id],
                appointment_id=chosen.appointment_id,
                reminder_id=chosen.last_reminder_id,
            )
        ]

    likely = _most_recent_reminded(mine)
    if likely is not None:
        return [_unmatched_about(likely, language_of)]
    return per_patient(Outcome.UNMATCHED, UnmatchedReason.NO_UPCOMING_APPOINTMENT)


def choose_appointment(
    appointments: Sequence[AppointmentView], received_at: datetime
) -> AppointmentView | None:
    """The soonest upcoming reminded appointment, unanswered ones first."""
    candidates = [a for a in appointments if a.reminded and a.upcoming_at(received_at)]
    if not candidates:
        return None

    def soonest(a: AppointmentView) -> tuple[datetime, str]:
        assert a.starts_at is not None  # upcoming ones have a start
        return (a.starts_at, str(a.appointment_id))

    unanswered = [a for a in candidates if a.answered_at is None]
    return min(unanswered or candidates, key=soonest)


def _most_recent_reminded(appointments: Sequence[AppointmentView]) -> AppointmentView | None:
    reminded = [a for a in appointments if a.reminded and a.starts_at is not None]
    if not reminded:
        return None
    return max(reminded, key=lambda a: (a.starts_at, str(a.appointment_id)))


def _unmatched_about(appointment: AppointmentView, language_of: dict[UUID, str]) -> Decision:
    return Decision(
        Outcome.UNMATCHED,
        appointment.patient_id,
        language_of[appointment.patient_id],
        appointment_id=appointment.appointment_id,
        reason=UnmatchedReason.NO_UPCOMING_APPOINTMENT,
    )


def _ordered(patients: Sequence[PatientView]) -> list[PatientView]:
    # Stable order, so the same reply always yields the same events in the same order.
    return sorted(patients, key=lambda p: str(p.patient_id))
