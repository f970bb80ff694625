from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest

from reminder_contracts.events import PatientSnapshot, ReminderDue
from sender.domain.delivery import (
    KnownAppointment,
    KnownPatient,
    OptState,
    Send,
    Skip,
    apply_opt,
    backoff_delay,
    classify_error,
    current_patient,
    decide,
)

pytestmark = pytest.mark.unit

STARTS = datetime(2026, 12, 10, 15, 30, tzinfo=UTC)


def reminder(
    version: int = 2, starts_at: datetime = STARTS, patient_version: int = 3
) -> ReminderDue:
    return ReminderDue(
        reminder_id=uuid4(),
        appointment_id=uuid4(),
        patient_id=uuid4(),
        appointment_version=version,
        offset_minutes=1440,
        due_at=starts_at - timedelta(days=1),
        starts_at=starts_at,
        patient=PatientSnapshot(
            patient_id=uuid4(),
            patient_version=patient_version,
            name="Ana Lopez",
            phone="+12025550143",
            language="en",
            timezone="America/New_York",
        ),
    )


def appointment(
    version: int, starts_at: datetime | None = STARTS, cancelled: bool = False
) -> KnownAppointment:
    return KnownAppointment(uuid4(), version=version, starts_at=starts_at, cancelled=cancelled)


def test_a_current_reminder_is_sent_even_for_an_appointment_not_yet_seen() -> None:
    due = reminder()
    patient = current_patient(due, None)
    assert decide(due, None, patient, opted_out=False) == Send(patient)
    assert decide(due, appointment(2), patient, opted_out=False) == Send(patient)
    assert decide(due, appointment(1), patient, opted_out=False) == Send(patient)  # we lag


def test_cancelled_stale_and_opted_out_reminders_are_skipped_with_their_reason() -> None:
    due = reminder(version=2)
    patient = current_patient(due, None)
    assert decide(due, appointment(3, cancelled=True), patient, opted_out=False) == Skip(
        "cancelled"
    )
    assert decide(due, appointment(3), patient, opted_out=False) == Skip("stale")
    moved = appointment(2, starts_at=STARTS + timedelta(hours=2))
    assert decide(due, moved, patient, opted_out=False) == Skip("stale")
    assert decide(due, appointment(2), patient, opted_out=True) == Skip("opted_out")


def test_a_newer_patient_version_wins_over_the_reminders_snapshot() -> None:
    due = reminder(patient_version=3)
    newer = KnownPatient(
        due.patient.patient_id,
        version=4,
        name="Ana Lopez",
        phone="+34612345678",
        language="es",
        timezone="Europe/Madrid",
    )
    older = KnownPatient(
        due.patient.patient_id,
        version=2,
        name="Ana Lopez",
        phone="+33612345678",
        language="fr",
        timezone="Europe/Paris",
    )
    assert current_patient(due, newer).phone == "+34612345678"
    assert current_patient(due, older).phone == "+12025550143"


def test_the_last_reply_wins_whatever_order_the_events_come_in() -> None:
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    out, back_in = OptState(True, t0), OptState(False, t0 + timedelta(minutes=5))
    assert apply_opt(apply_opt(None, out), back_in) == back_in
    assert apply_opt(apply_opt(None, back_in), out) == back_in
    assert apply_opt(OptState(False, t0), OptState(True, t0)).opted_out  # tie: stay quiet


@pytest.mark.parametrize(
    ("code", "status", "retryable", "reported"),
    [
        ("Throttling", 400, True, "Throttling"),
        ("InternalError", 500, True, "InternalError"),
        ("ServiceUnavailable", 503, True, "ServiceUnavailable"),
        ("InvalidParameter", 400, False, "InvalidParameter"),
        ("OptedOutException", 400, False, "OptedOut"),
        ("AuthorizationError", 403, False, "AuthorizationError"),
    ],
)
def test_only_throttling_and_server_errors_are_retried(
    code: str, status: int, retryable: bool, reported: str
) -> None:
    error = classify_error(code, status)
    assert (error.retryable, error.code) == (retryable, reported)


def test_backoff_grows_exponentially_with_full_jitter_and_a_cap() -> None:
    rng = random.Random(1)
    for attempt, ceiling in enumerate([0.2, 0.4, 0.8, 1.6, 2.0, 2.0]):
        delays = [backoff_delay(attempt, base=0.2, cap=2.0, rng=rng) for _ in range(300)]
        assert min(delays) >= 0
        assert max(delays) <= ceiling
        assert max(delays) > ceiling * 0.9  # the whole range is used: jitter, not a constant
