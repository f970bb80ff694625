"""Which appointment a reply is about, and which events it becomes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import pytest

from inbound.domain.keywords import understand
from inbound.domain.matching import (
    AppointmentView,
    Decision,
    NamedReminder,
    Outcome,
    PatientView,
    UnmatchedReason,
    decide,
)

pytestmark = pytest.mark.unit

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
ANA = PatientView(UUID("00000000-0000-4000-8000-00000000000a"), "es")
BOB = PatientView(UUID("00000000-0000-4000-8000-00000000000b"), "en")


def appointment(
    patient: PatientView,
    in_hours: float,
    *,
    reminded: bool = True,
    answered: bool = False,
    cancelled: bool = False,
) -> AppointmentView:
    return AppointmentView(
        appointment_id=uuid4(),
        patient_id=patient.patient_id,
        starts_at=NOW + timedelta(hours=in_hours),
        cancelled=cancelled,
        last_reminder_id=uuid4() if reminded else None,
        answered_at=NOW - timedelta(hours=1) if answered else None,
    )


def one(decisions: list[Decision]) -> Decision:
    assert len(decisions) == 1
    return decisions[0]


def test_yes_confirms_the_soonest_upcoming_reminded_appointment() -> None:
    later = appointment(BOB, 48)
    sooner = appointment(BOB, 24)
    decision = one(decide(understand("yes"), [BOB], [later, sooner], None, NOW))
    assert decision.outcome is Outcome.CONFIRMED
    assert decision.appointment_id == sooner.appointment_id
    assert decision.reminder_id == sooner.last_reminder_id
    assert decision.patient_id == BOB.patient_id
    assert decision.language == "en"


def test_an_unanswered_appointment_is_preferred_to_an_answered_sooner_one() -> None:
    answered = appointment(BOB, 24, answered=True)
    unanswered = appointment(BOB, 48)
    decision = one(decide(understand("no"), [BOB], [answered, unanswered], None, NOW))
    assert (decision.outcome, decision.appointment_id) == (
        Outcome.DECLINED,
        unanswered.appointment_id,
    )


def test_a_later_answer_replaces_an_earlier_one_on_the_same_appointment() -> None:
    # YES was recorded (answered); the patient now says NO: the same appointment, declined.
    only = appointment(BOB, 24, answered=True)
    decision = one(decide(understand("NO"), [BOB], [only], None, NOW))
    assert (decision.outcome, decision.appointment_id) == (Outcome.DECLINED, only.appointment_id)


def test_not_reminded_cancelled_and_past_appointments_are_not_candidates() -> None:
    not_reminded = appointment(BOB, 2, reminded=False)
    cancelled = appointment(BOB, 3, cancelled=True)
    past = appointment(BOB, -1)
    target = appointment(BOB, 30)
    decision = one(
        decide(understand("1"), [BOB], [not_reminded, cancelled, past, target], None, NOW)
    )
    assert decision.appointment_id == target.appointment_id


def test_the_named_reminder_wins_over_the_soonest_appointment() -> None:
    sooner = appointment(BOB, 24)
    named = appointment(BOB, 72, answered=True)
    reminder = NamedReminder(uuid4(), named.appointment_id, BOB.patient_id)
    decision = one(decide(understand("oui"), [BOB], [sooner, named], reminder, NOW))
    assert decision.outcome is Outcome.CONFIRMED
    assert decision.appointment_id == named.appointment_id
    assert decision.reminder_id == reminder.reminder_id
    assert decision.language == "fr"


def test_a_reply_after_the_appointment_is_unmatched_and_names_it() -> None:
    past = appointment(BOB, -2)
    reminder = NamedReminder(uuid4(), past.appointment_id, BOB.patient_id)
    for named in (reminder, None):
        decision = one(decide(understand("yes"), [BOB], [past], named, NOW))
        assert decision.outcome is Outcome.UNMATCHED
        assert decision.reason is UnmatchedReason.NO_UPCOMING_APPOINTMENT
        assert decision.appointment_id == past.appointment_id


def test_a_reply_to_a_reminder_of_a_cancelled_appointment_is_unmatched() -> None:
    cancelled = appointment(BOB, 5, cancelled=True)
    reminder = NamedReminder(uuid4(), cancelled.appointment_id, BOB.patient_id)
    decision = one(decide(understand("yes"), [BOB], [cancelled], reminder, NOW))
    assert (decision.outcome, decision.reason) == (
        Outcome.UNMATCHED,
        UnmatchedReason.NO_UPCOMING_APPOINTMENT,
    )


def test_yes_without_any_appointment_is_unmatched_for_each_patient() -> None:
    decisions = decide(understand("yes"), [ANA, BOB], [], None, NOW)
    assert [(d.outcome, d.reason, d.patient_id, d.appointment_id) for d in decisions] == [
        (Outcome.UNMATCHED, UnmatchedReason.NO_UPCOMING_APPOINTMENT, ANA.patient_id, None),
        (Outcome.UNMATCHED, UnmatchedReason.NO_UPCOMING_APPOINTMENT, BOB.patient_id, None),
    ]


def test_unknown_number_yes_is_unmatched_without_patient() -> None:
    decision = one(decide(understand("sí"), [], [], None, NOW))
    assert (decision.outcome, decision.reason, decision.patient_id) == (
        Outcome.UNMATCHED,
        UnmatchedReason.UNKNOWN_NUMBER,
        None,
    )
    assert decision.language == "es"


@pytest.mark.parametrize(
    ("text", "outcome"),
    [
        ("STOP", Outcome.OPTED_OUT),
        ("Arrêt", Outcome.OPTED_OUT),
        ("start", Outcome.OPTED_IN),
        ("ayuda", Outcome.HELP),
    ],
)
def test_phone_keywords_give_one_event_per_patient_sharing_the_number(
    text: str, outcome: Outcome
) -> None:
    decisions = decide(understand(text), [BOB, ANA], [appointment(BOB, 24)], None, NOW)
    assert [(d.outcome, d.patient_id, d.appointment_id) for d in decisions] == [
        (outcome, ANA.patient_id, None),
        (outcome, BOB.patient_id, None),
    ]


def test_phone_keywords_from_an_unknown_number_give_one_event_without_patient() -> None:
    decision = one(decide(understand("stop"), [], [], None, NOW))
    assert (decision.outcome, decision.patient_id, decision.language) == (
        Outcome.OPTED_OUT,
        None,
        "en",
    )


def test_free_text_is_unmatched_for_each_patient() -> None:
    decisions = decide(understand("not yet"), [ANA, BOB], [appointment(ANA, 5)], None, NOW)
    assert [(d.outcome, d.reason, d.patient_id, d.language) for d in decisions] == [
        (Outcome.UNMATCHED, UnmatchedReason.NOT_UNDERSTOOD, ANA.patient_id, "es"),
        (Outcome.UNMATCHED, UnmatchedReason.NOT_UNDERSTOOD, BOB.patient_id, "en"),
    ]


def test_shared_phone_yes_confirms_the_soonest_appointment_across_patients() -> None:
    bobs = appointment(BOB, 48)
    anas = appointment(ANA, 24)
    decision = one(decide(understand("1"), [ANA, BOB], [bobs, anas], None, NOW))
    assert (decision.patient_id, decision.appointment_id, decision.language) == (
        ANA.patient_id,
        anas.appointment_id,
        "es",
    )


def test_shared_phone_second_yes_confirms_the_other_patients_appointment() -> None:
    # Ana answered already; the next YES on the shared phone is Bob's.
    anas = appointment(ANA, 24, answered=True)
    bobs = appointment(BOB, 48)
    decision = one(decide(understand("yes"), [ANA, BOB], [anas, bobs], None, NOW))
    assert (decision.patient_id, decision.appointment_id) == (BOB.patient_id, bobs.appointment_id)


def test_appointments_of_other_patients_are_never_matched() -> None:
    stranger = PatientView(uuid4(), "en")
    theirs = appointment(stranger, 5)
    decision = one(decide(understand("yes"), [BOB], [theirs], None, NOW))
    assert decision.outcome is Outcome.UNMATCHED


def test_an_answer_to_our_acknowledgement_concerns_its_appointment() -> None:
    # Shared phone: Ana confirmed, we acknowledged; "NO" now answers the acknowledgement,
    # so it is Ana's appointment, not Bob's unanswered one.
    anas = appointment(ANA, 24, answered=True)
    bobs = appointment(BOB, 48)
    acknowledged = NamedReminder(None, anas.appointment_id, ANA.patient_id)
    decision = one(decide(understand("no"), [ANA, BOB], [anas, bobs], acknowledged, NOW))
    assert (decision.outcome, decision.appointment_id, decision.reminder_id) == (
        Outcome.DECLINED,
        anas.appointment_id,
        anas.last_reminder_id,
    )
