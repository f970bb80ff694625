"""Every endpoint through HTTP, against the real app on MariaDB and Tansu."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from admin_api.samples import Story
from reminder_contracts import (
    AppointmentCancelled,
    AppointmentRescheduled,
    AppointmentScheduled,
    PatientRegistered,
    PatientUpdated,
    topics,
)
from reminder_runtime.logging import JsonFormatter
from reminder_testkit import async_wait_for
from reminder_testkit.topics import publish_events, publish_raw, read_events, read_topic

pytestmark = pytest.mark.integration

Running = Any  # the `running` fixture's value (conftest.Running)


def future(days: float = 3, hours: float = 0) -> str:
    return (datetime.now(UTC) + timedelta(days=days, hours=hours)).isoformat()


async def new_patient(running: Running, **fields: Any) -> dict[str, Any]:
    body = {
        "name": "Ada Lovelace",
        "phone": "+12025550143",
        "language": "en",
        "timezone": "America/New_York",
        **fields,
    }
    response = await running.admin.post("/v1/patients", json=body)
    assert response.status_code == 201, response.text
    patient: dict[str, Any] = response.json()
    return patient


async def new_appointment(running: Running, patient_id: str, **fields: Any) -> dict[str, Any]:
    body = {"patient_id": patient_id, "starts_at": future(), **fields}
    response = await running.admin.post("/v1/appointments", json=body)
    assert response.status_code == 201, response.text
    appointment: dict[str, Any] = response.json()
    return appointment


def assert_error(response: httpx.Response, status: int, *words: str) -> None:
    assert response.status_code == status, response.text
    detail = response.json()["detail"]
    assert isinstance(detail, str)
    for word in words:
        assert word in detail, f"{word!r} not in {detail!r}"


# --------------------------------------------------------------------------- auth, ops


async def test_tokens_roles_and_operations_endpoints(running: Running) -> None:
    assert_error(await running.anonymous.get("/v1/patients"), 401, "missing")
    wrong = await running.anonymous.get(
        "/v1/patients", headers={"Authorization": "Bearer not-a-token-at-all"}
    )
    assert_error(wrong, 401, "invalid")
    assert wrong.headers["www-authenticate"] == "Bearer"
    assert (await running.viewer.get("/v1/patients")).status_code == 200
    denied = await running.viewer.post(
        "/v1/patients",
        json={"name": "X", "phone": "+12025550143", "language": "en", "timezone": "UTC"},
    )
    assert_error(denied, 403, "viewer")
    assert (await running.viewer.get("/v1/patients?q=X")).json()["items"] == []

    for path in ("/healthz", "/readyz", "/docs", "/openapi.json"):
        assert (await running.anonymous.get(path)).status_code == 200, path
    metrics = await running.anonymous.get("/metrics")
    assert "admin_api_events_projected_total" in metrics.text
    paths = (await running.anonymous.get("/openapi.json")).json()["paths"]
    assert {"/v1/patients", "/v1/appointments/{appointment_id}/cancel", "/v1/stats"} <= set(paths)


# --------------------------------------------------------------------------- patients


async def test_register_find_and_update_a_patient(running: Running) -> None:
    patient = await new_patient(running, name="Grace Hopper", phone="(202) 555-0178")
    assert patient["phone"] == "+12025550178", "national format read with DEFAULT_PHONE_REGION"
    assert (patient["version"], patient["opted_out"]) == (1, False)

    got = await running.viewer.get(f"/v1/patients/{patient['id']}")
    assert got.json() == patient
    by_phone = await running.viewer.get("/v1/patients", params={"phone": "202-555-0178"})
    assert [p["id"] for p in by_phone.json()["items"]] == [patient["id"]]
    by_name = await running.viewer.get("/v1/patients", params={"q": "Hopper Grace"})
    assert by_name.json()["items"] == []
    by_name = await running.viewer.get("/v1/patients", params={"q": "Grace H"})
    assert [p["id"] for p in by_name.json()["items"]] == [patient["id"]]

    patched = await running.admin.patch(
        f"/v1/patients/{patient['id']}", json={"language": "es", "phone": "+34612345678"}
    )
    assert patched.status_code == 200, patched.text
    assert (patched.json()["language"], patched.json()["phone"], patched.json()["version"]) == (
        "es",
        "+34612345678",
        2,
    )

    events = await read_events(
        running.settings.kafka_bootstrap_servers, running.topic(topics.PATIENTS), expect=2
    )
    mine = [
        e
        for e in events
        if isinstance(e, PatientRegistered | PatientUpdated) and str(e.patient_id) == patient["id"]
    ]
    assert [type(e) for e in mine] == [PatientRegistered, PatientUpdated]
    assert isinstance(mine[1], PatientUpdated)
    assert (mine[1].version, mine[1].language) == (2, "es")


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"phone": "+15551234567"}, ["phone", "valid"]),
        ({"phone": "call me"}, ["phone"]),
        ({"language": "de"}, ["language", "en, es, fr"]),
        ({"timezone": "Mars/Olympus_Mons"}, ["timezone", "IANA"]),
        ({"name": "   "}, ["name", "empty"]),
        ({"name": None}, ["name"]),
        ({"nickname": "Ada"}, ["nickname", "not a known field"]),
    ],
)
async def test_invalid_patients_are_refused_with_a_reason(
    running: Running, body: dict[str, Any], words: list[str]
) -> None:
    full = {"name": "Bad Input", "phone": "+12025550143", "language": "en", "timezone": "UTC"}
    response = await running.admin.post("/v1/patients", json={**full, **body})
    assert_error(response, 422, *words)
    assert (await running.viewer.get("/v1/patients?q=Bad Input")).json()["items"] == []


async def test_patient_error_paths(running: Running) -> None:
    missing = await running.admin.post("/v1/patients", json={"name": "No Phone"})
    assert_error(missing, 422, "phone: is required")
    not_json = await running.admin.post(
        "/v1/patients", content=b"{nope", headers={"content-type": "application/json"}
    )
    assert_error(not_json, 422, "JSON")
    unknown = "00000000-0000-4000-8000-000000000000"
    assert_error(await running.viewer.get(f"/v1/patients/{unknown}"), 404, "no patient")
    assert_error(await running.viewer.get("/v1/patients/not-a-uuid"), 422, "patient_id")
    assert_error(
        await running.admin.patch(f"/v1/patients/{unknown}", json={"name": "X"}), 404, "patient"
    )
    patient = await new_patient(running)
    assert_error(
        await running.admin.patch(f"/v1/patients/{patient['id']}", json={}), 422, "nothing"
    )
    assert_error(
        await running.admin.patch(f"/v1/patients/{patient['id']}", json={"phone": "+1555"}),
        422,
        "phone",
    )
    assert_error(await running.viewer.get("/v1/patients?phone=12"), 422, "phone")


# --------------------------------------------------------------------------- appointments


async def test_scheduling_emits_appointment_scheduled(running: Running) -> None:
    patient = await new_patient(running, language="fr", phone="+33612345678")
    starts_at = datetime.now(UTC).replace(microsecond=0) + timedelta(days=2)
    created = await new_appointment(
        running,
        patient["id"],
        starts_at=starts_at.astimezone(timezone_of("-05:00")).isoformat(),
        location="Room 4",
        reminder_offsets=["24h", "2h"],
    )
    assert (created["status"], created["version"], created["confirmation"]) == (
        "scheduled",
        1,
        None,
    )
    assert created["reminder_offsets_minutes"] == [1440, 120]
    assert datetime.fromisoformat(created["starts_at"]) == starts_at

    events = await read_events(
        running.settings.kafka_bootstrap_servers, running.topic(topics.APPOINTMENTS), expect=1
    )
    (event,) = [
        e
        for e in events
        if isinstance(e, AppointmentScheduled) and str(e.appointment_id) == created["id"]
    ]
    assert (event.starts_at, event.location, event.reminder_offsets_minutes) == (
        starts_at,
        "Room 4",
        (1440, 120),
    )
    assert (event.patient.phone, event.patient.language) == ("+33612345678", "fr")

    detail = (await running.viewer.get(f"/v1/appointments/{created['id']}")).json()
    assert [t["event_type"] for t in detail["timeline"]] == ["AppointmentScheduled"]
    assert detail["patient_name"] == "Ada Lovelace"


def timezone_of(offset: str) -> Any:
    return datetime.fromisoformat(f"2030-01-01T00:00:00{offset}").tzinfo


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"starts_at": "2031-01-31T09:30:00"}, ["starts_at", "offset"]),
        ({"starts_at": "2001-01-31T09:30:00Z"}, ["future"]),
        ({"starts_at": "next tuesday"}, ["starts_at"]),
        ({"reminder_offsets": ["soon"]}, ["reminder offset", "soon"]),
        ({"patient_id": "00000000-0000-4000-8000-000000000000"}, ["patient_id", "no patient"]),
        ({"patient_id": "nope"}, ["patient_id"]),
    ],
)
async def test_invalid_appointments_are_refused(
    running: Running, fields: dict[str, Any], words: list[str]
) -> None:
    patient = await new_patient(running)
    body = {"patient_id": patient["id"], "starts_at": future(), **fields}
    assert_error(await running.admin.post("/v1/appointments", json=body), 422, *words)
    page = await running.viewer.get("/v1/appointments", params={"patient_id": patient["id"]})
    assert page.json()["items"] == [], "nothing was stored"


async def test_idempotency_key_returns_the_first_result(running: Running) -> None:
    patient = await new_patient(running)
    body = {"patient_id": patient["id"], "starts_at": future(days=5)}
    headers = {"Idempotency-Key": f"k-{patient['id']}"}
    responses = await asyncio.gather(
        *(running.admin.post("/v1/appointments", json=body, headers=headers) for _ in range(4))
    )
    assert {r.status_code for r in responses} == {201}
    assert len({r.json()["id"] for r in responses}) == 1
    again = await running.admin.post("/v1/appointments", json=body, headers=headers)
    assert again.json() == responses[0].json()
    page = await running.viewer.get("/v1/appointments", params={"patient_id": patient["id"]})
    assert len(page.json()["items"]) == 1, "one appointment, not five"

    other = {**body, "starts_at": future(days=6)}
    reused = await running.admin.post("/v1/appointments", json=other, headers=headers)
    assert_error(reused, 409, "Idempotency-Key")

    appointment_id = responses[0].json()["id"]
    cancel = f"/v1/appointments/{appointment_id}/cancel"
    key = {"Idempotency-Key": f"cancel-{appointment_id}"}
    first = await running.admin.post(cancel, headers=key)
    second = await running.admin.post(cancel, headers=key)
    assert (first.status_code, second.status_code) == (200, 200)
    assert first.json() == second.json()
    assert_error(await running.admin.post(cancel), 409, "already cancelled")


async def test_reschedule_cancel_attendance_and_their_conflicts(running: Running) -> None:
    patient = await new_patient(running)
    appointment = await new_appointment(running, patient["id"])
    path = f"/v1/appointments/{appointment['id']}"
    new_time = datetime.now(UTC).replace(microsecond=0) + timedelta(days=9)

    moved = await running.admin.patch(path, json={"starts_at": new_time.isoformat()})
    assert moved.status_code == 200, moved.text
    assert (moved.json()["version"], moved.json()["status"]) == (2, "scheduled")
    assert datetime.fromisoformat(moved.json()["starts_at"]) == new_time
    assert_error(await running.admin.patch(path, json={"starts_at": future(-1)}), 422, "future")
    assert_error(await running.admin.patch(path, json={}), 422, "starts_at")

    cancelled = await running.admin.post(f"{path}/cancel", json={"reason": "patient called"})
    assert (cancelled.json()["status"], cancelled.json()["cancel_reason"]) == (
        "cancelled",
        "patient called",
    )
    assert_error(await running.admin.patch(path, json={"starts_at": future(4)}), 409, "cancelled")
    assert_error(await running.admin.post(f"{path}/cancel"), 409, "cancelled")
    attend = await running.admin.post(f"{path}/attendance", json={"outcome": "attended"})
    assert_error(attend, 409, "cancelled")

    other = await new_appointment(running, patient["id"])
    other_path = f"/v1/appointments/{other['id']}"
    bad = await running.admin.post(f"{other_path}/attendance", json={"outcome": "maybe"})
    assert_error(bad, 422, "outcome")
    no_show = await running.admin.post(f"{other_path}/attendance", json={"outcome": "no_show"})
    assert no_show.json()["status"] == "no_show"
    assert_error(await running.admin.post(f"{other_path}/cancel"), 409, "taken place")

    unknown = "/v1/appointments/00000000-0000-4000-8000-000000000000"
    assert_error(await running.viewer.get(unknown), 404, "no appointment")
    assert_error(await running.admin.post(f"{unknown}/cancel"), 404, "no appointment")
    assert_error(await running.viewer.post(f"{other_path}/cancel"), 403, "viewer")

    events = await read_events(
        running.settings.kafka_bootstrap_servers, running.topic(topics.APPOINTMENTS), expect=5
    )
    mine = [e for e in events if str(getattr(e, "appointment_id", "")) == appointment["id"]]
    assert [type(e) for e in mine] == [
        AppointmentScheduled,
        AppointmentRescheduled,
        AppointmentCancelled,
    ]
    assert [e.version for e in mine] == [1, 2, 3]  # type: ignore[attr-defined]


async def test_list_pages_through_every_appointment_once(running: Running) -> None:
    patient = await new_patient(running)
    base = datetime.now(UTC).replace(microsecond=0) + timedelta(days=10)
    made = [
        await new_appointment(
            running, patient["id"], starts_at=(base + timedelta(hours=h)).isoformat()
        )
        for h in (5, 1, 3, 1, 2, 4, 0)
    ]
    await running.admin.post(f"/v1/appointments/{made[0]['id']}/cancel")
    seen: list[dict[str, Any]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"patient_id": patient["id"], "limit": 3}
        if cursor:
            params["cursor"] = cursor
        page = (await running.viewer.get("/v1/appointments", params=params)).json()
        seen.extend(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sorted(a["id"] for a in seen) == sorted(a["id"] for a in made), "each exactly once"
    starts = [datetime.fromisoformat(a["starts_at"]) for a in seen]
    assert starts == sorted(starts)
    assert {a["status"] for a in seen} == {"scheduled", "cancelled"}

    cancelled = await running.viewer.get(
        "/v1/appointments", params={"patient_id": patient["id"], "status": "cancelled"}
    )
    assert [a["id"] for a in cancelled.json()["items"]] == [made[0]["id"]]
    window = await running.viewer.get(
        "/v1/appointments",
        params={
            "patient_id": patient["id"],
            "from": (base + timedelta(hours=2)).isoformat(),
            "to": (base + timedelta(hours=4)).isoformat(),
        },
    )
    assert [a["id"] for a in window.json()["items"]] == [made[4]["id"], made[2]["id"]]

    cases: list[tuple[dict[str, Any], list[str]]] = [
        ({"cursor": "garbage"}, ["cursor"]),
        ({"status": "lost"}, ["status"]),
        ({"limit": 0}, ["limit"]),
        ({"from": "2030-01-01T00:00:00"}, ["from", "offset"]),
    ]
    for params, words in cases:
        assert_error(await running.viewer.get("/v1/appointments", params=params), 422, *words)


async def test_events_of_other_services_show_in_detail_and_stats(running: Running) -> None:
    """Replies and deliveries arrive over Kafka, the reply before its ReminderSent."""
    servers = running.settings.kafka_bootstrap_servers
    patient = await new_patient(running)
    starts_at = datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)
    appointment = await new_appointment(running, patient["id"], starts_at=starts_at.isoformat())
    story = Story(
        starts_at=starts_at,
        phone=patient["phone"],
        patient_id=patient_id_of(patient),
        appointment_id=appointment_id_of(appointment),
    )
    sent_at = datetime.now(UTC) - timedelta(minutes=10)
    due, sent = story.due(), story.sent(sent_at, segments=2)
    confirmed = story.confirmed(sent_at + timedelta(minutes=4))

    # garbage and an unknown event type first: they must not stop the projection
    await publish_raw(servers, running.topic(topics.REPLIES), b"{not json", b'{"event_type": "X"}')
    await publish_events(servers, running.topic(topics.REPLIES), confirmed)
    await publish_events(servers, running.topic(topics.REMINDERS), due)
    await publish_events(servers, running.topic(topics.DELIVERIES), sent)
    await publish_events(servers, running.topic(topics.REPLIES), story.opted_out(sent_at))

    path = f"/v1/appointments/{appointment['id']}"

    async def projected() -> bool:
        detail = (await running.viewer.get(path)).json()
        return len(detail["timeline"]) == 4

    await async_wait_for(projected, timeout=30)
    detail = (await running.viewer.get(path)).json()
    assert (detail["status"], detail["confirmation"]) == ("confirmed", "confirmed")
    (reminder,) = detail["reminders"]
    assert (reminder["state"], reminder["sns_message_id"], reminder["segments"]) == (
        "sent",
        sent.sns_message_id,
        2,
    )
    assert [(r["kind"], r["keyword"]) for r in detail["replies"]] == [("confirmed", "YES")]
    timeline = detail["timeline"]
    assert sorted(t["event_type"] for t in timeline) == [
        "AppointmentConfirmed",
        "AppointmentScheduled",
        "ReminderDue",
        "ReminderSent",
    ]
    times = [datetime.fromisoformat(t["occurred_at"]) for t in timeline]
    assert times == sorted(times), "the timeline is in the order things happened"

    await async_wait_for(lambda: patient_opted_out(running, patient["id"]), timeout=15)
    listed = await running.viewer.get("/v1/appointments", params={"patient_id": patient["id"]})
    assert [(a["status"], a["confirmation"]) for a in listed.json()["items"]] == [
        ("confirmed", "confirmed")
    ]

    day = starts_at.astimezone(running.settings.clinic_zone).date().isoformat()
    stats = (await running.viewer.get("/v1/stats", params={"from": day, "to": day})).json()
    assert (stats["from"], stats["to"], stats["timezone"]) == (day, day, "America/New_York")
    (figures,) = stats["days"]
    assert figures["confirmed"] >= 1
    assert figures["sms_segments_sent"] >= 2
    assert stats["total"]["appointments"] == figures["appointments"]

    dead = await read_topic(servers, running.topic("dlt.admin-api"), expect=1, settle=1.0)
    assert [r.value for r in dead] == [b"{not json"], "the unknown type is skipped, not dead"
    assert dead[0].headers["dlt-error-type"] == "MalformedEvent"


async def patient_opted_out(running: Running, patient_id: str) -> bool:
    response = await running.viewer.get(f"/v1/patients/{patient_id}")
    return bool(response.json()["opted_out"])


def patient_id_of(patient: dict[str, Any]) -> Any:
    from uuid import UUID

    return UUID(patient["id"])


def appointment_id_of(appointment: dict[str, Any]) -> Any:
    from uuid import UUID

    return UUID(appointment["id"])


async def test_stats_defaults_and_errors(running: Running) -> None:
    default = await running.viewer.get("/v1/stats")
    assert default.status_code == 200
    assert len(default.json()["days"]) <= 30
    assert_error(
        await running.viewer.get("/v1/stats", params={"from": "2030-03-02", "to": "2030-03-01"}),
        422,
        "before",
    )
    assert_error(await running.viewer.get("/v1/stats", params={"from": "March"}), 422, "from")
    assert_error(
        await running.viewer.get("/v1/stats", params={"from": "2020-01-01", "to": "2030-01-01"}),
        422,
        "days",
    )


async def test_phone_numbers_and_names_stay_out_of_the_logs(
    running: Running, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    await new_patient(running, name="Zelda Fitzgerald", phone="(202) 555-0143")
    found = await running.viewer.get(
        "/v1/patients", params={"phone": "202-555-0143", "q": "Zelda Fitz"}
    )
    assert len(found.json()["items"]) >= 1
    # the service's records only: httpx here is the test's own client
    records = [r for r in caplog.records if not r.name.startswith("httpx")]
    assert any(r.name == "admin_api.access" for r in records)
    logged = "\n".join(JsonFormatter("admin-api").format(r) for r in records)
    for secret in ("555-0143", "5550143", "Zelda"):
        assert secret not in logged, [r.name for r in records if secret in r.getMessage()]
